/**
 * Security suite, fs.read / fs.write (issue 11): confinement decided on what was opened (a swapper
 * process races every call), hard links, non-regular files, size caps, a trailing '/'.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Gateway from "../../src/Gateway.js"
import * as Fs from "../../src/live/Fs.js"
import type { Policy } from "../../src/Policy.js"
import { setup } from "../live/support.js"

const sandbox = Effect.acquireRelease(
  Effect.sync(() => {
    // on tmpfs when there is one: the race is the same, and 6,000 fsyncs of the write scenarios cost nothing
    const base = NodeFs.existsSync("/dev/shm") ? "/dev/shm" : Os.tmpdir()
    const tmp = NodeFs.realpathSync(NodeFs.mkdtempSync(Path.join(base, "boruna-sec-fs-")))
    const root = Path.join(tmp, "root")
    const outside = Path.join(tmp, "outside")
    NodeFs.mkdirSync(Path.join(root, "sub"), { recursive: true })
    NodeFs.mkdirSync(outside)
    NodeFs.writeFileSync(Path.join(root, "sub", "f"), "inside")
    NodeFs.writeFileSync(Path.join(outside, "f"), "SECRET")
    return { tmp, root, outside }
  }),
  ({ tmp }) => Effect.sync(() => NodeFs.rmSync(tmp, { recursive: true, force: true }))
)

type FsKnobs = NonNullable<Policy["fs_policy"]>
const fsPolicy = (root: string, knobs: Partial<FsKnobs> = {}): Policy => ({
  schema_version: 1,
  default_allow: false,
  rules: { "fs.read": { allow: true, budget: 0 }, "fs.write": { allow: true, budget: 0 } },
  fs_policy: { root, read_only: false, ...knobs }
})

const outcome = (cap: "fs.read" | "fs.write", args: ReadonlyArray<string>) =>
  Effect.match(Gateway.call(cap, [...args]), { onFailure: (e) => `${e._tag}: ${e.message}`, onSuccess: (v) => v })

/** Every file under `dir` with its content (what an attacker would want changed or created). */
const snapshot = (dir: string): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const e of NodeFs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const p = Path.join(e.parentPath, e.name)
    out[Path.relative(dir, p)] = e.isFile() ? NodeFs.readFileSync(p, "utf8") : e.isSymbolicLink() ? "link" : "dir"
  }
  return out
}

/** The swapper: a separate process flipping a folder or a file between inside and a symlink out. */
const SWAPPER = String.raw`
const fs = require("fs");
const [mode, root, outside] = process.argv.slice(1);
const tryDo = (f) => { try { f(); } catch {} };
if (mode === "folder") {
  const sub = root + "/sub", real = root + "/sub.real", link = root + "/sub.link";
  fs.symlinkSync(outside, link);
  for (;;) {
    tryDo(() => fs.renameSync(sub, real));
    tryDo(() => fs.renameSync(link, sub));
    tryDo(() => fs.renameSync(sub, link));
    tryDo(() => fs.renameSync(real, sub));
  }
} else {
  const f = root + "/sub/f";
  for (;;) {
    tryDo(() => fs.symlinkSync(outside + "/f", f + ".l"));
    tryDo(() => fs.renameSync(f + ".l", f));
    tryDo(() => fs.writeFileSync(f + ".r", "inside"));
    tryDo(() => fs.renameSync(f + ".r", f));
  }
}
`

const swapper = (mode: "folder" | "file", root: string, outside: string) =>
  Effect.acquireRelease(
    Effect.async<ChildProcess>((resume) => {
      const child = spawn(process.execPath, ["-e", SWAPPER, mode, root, outside], { stdio: "ignore" })
      child.once("spawn", () => resume(Effect.succeed(child)))
    }),
    (child) =>
      Effect.async<void>((resume) => {
        if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
        child.once("exit", () => resume(Effect.void))
        child.kill("SIGKILL")
      })
  )

const ATTEMPTS = 3000

/** Restore the layout the swapper may have left half-way. */
const settle = (root: string) => {
  const sub = Path.join(root, "sub")
  if (NodeFs.lstatSync(sub, { throwIfNoEntry: false })?.isSymbolicLink()) NodeFs.unlinkSync(sub)
  if (!NodeFs.existsSync(sub)) NodeFs.renameSync(Path.join(root, "sub.real"), sub)
}

describe("security: fs confinement under a racing swapper", () => {
  for (const mode of ["folder", "file"] as const) {
    it.scoped(`${mode} swap, read: ${ATTEMPTS} attempts, 0 outside reads`, () =>
      Effect.gen(function*() {
        const { root, outside } = yield* sandbox
        const results = yield* Effect.scoped(Effect.gen(function*() {
          yield* swapper(mode, root, outside)
          const seen = new Map<string, number>()
          for (let i = 0; i < ATTEMPTS; i++) {
            const r = yield* outcome("fs.read", ["sub/f"])
            const key = typeof r === "string" && r.startsWith("Denied") ? "denied" : typeof r === "string" && r.includes("failed") ? "error" : String(r)
            seen.set(key, (seen.get(key) ?? 0) + 1)
          }
          return seen
        })).pipe(Effect.provide(setup(fsPolicy(root))))
        expect(results.get("SECRET") ?? 0).toBe(0)
        // the race was real: the swapper made some attempts see the outside (denied) and some the inside
        expect((results.get("inside") ?? 0) + (results.get("denied") ?? 0) + (results.get("error") ?? 0)).toBe(ATTEMPTS)
        expect(results.get("denied") ?? 0).toBeGreaterThan(0)
      }), 60_000)

    it.scoped(`${mode} swap, write: ${ATTEMPTS} attempts, 0 files created or changed outside`, () =>
      Effect.gen(function*() {
        const { root, outside } = yield* sandbox
        const before = snapshot(outside)
        let denied = 0
        yield* Effect.scoped(Effect.gen(function*() {
          yield* swapper(mode, root, outside)
          for (let i = 0; i < ATTEMPTS; i++) {
            const r = yield* outcome("fs.write", [i % 2 === 0 ? "sub/f" : `sub/new-${i}`, "pwned"])
            if (typeof r === "string" && r.startsWith("Denied")) denied++
            if (i % 100 === 0) expect(snapshot(outside)).toEqual(before)
          }
        })).pipe(Effect.provide(setup(fsPolicy(root))))
        expect(snapshot(outside)).toEqual(before)
        expect(denied).toBeGreaterThan(0)
        if (mode === "folder") settle(root)
        // no temp file left behind either
        expect(Object.keys(snapshot(root)).filter((n) => n.endsWith(".tmp"))).toEqual([])
      }), 60_000)
  }
})

describe("security: fs file kinds, links and sizes", () => {
  it.scoped("a hard link inside the root is refused unless fs_policy.allow_hardlinks", () =>
    Effect.gen(function*() {
      const { root, outside } = yield* sandbox
      NodeFs.linkSync(Path.join(outside, "f"), Path.join(root, "hard"))
      const r = yield* outcome("fs.read", ["hard"]).pipe(Effect.provide(setup(fsPolicy(root))))
      expect(r).toBe("Denied: capability denied: fs.read: 'hard' has 2 hard links (one may be outside the fs root); set fs_policy.allow_hardlinks to read it")
      const ok = yield* outcome("fs.read", ["hard"]).pipe(Effect.provide(setup(fsPolicy(root, { allow_hardlinks: true }))))
      expect(ok).toBe("SECRET")
    }))

  it.scoped("a FIFO is refused at once, also when it is swapped in after the type check (O_NONBLOCK)", () =>
    Effect.gen(function*() {
      const { root } = yield* sandbox
      const fifo = Path.join(root, "pipe")
      expect(spawnSync("mkfifo", [fifo]).status).toBe(0)
      expect(yield* outcome("fs.read", ["pipe"]).pipe(Effect.provide(setup(fsPolicy(root)))))
        .toBe("RuntimeError: fs.read failed: cannot read 'pipe': not a regular file")
      // the last-moment swap: the type check sees a regular file, the open finds the FIFO
      const regular = NodeFs.lstatSync(Path.join(root, "sub", "f"))
      const io: Fs.FsIo = { ...Fs.nodeIo, lstat: (p) => p === fifo ? Promise.resolve(regular) : Fs.nodeIo.lstat(p) }
      const h = Fs.make({ root, readOnly: false, io })
      const e = yield* Effect.flip(h.read(["pipe"], {} as never))
      expect(e.message).toBe("cannot read 'pipe': not a regular file")
      expect(yield* outcome("fs.write", ["pipe", "x"]).pipe(Effect.provide(setup(fsPolicy(root)))))
        .toBe("RuntimeError: fs.write failed: cannot write 'pipe': not a regular file")
    }))

  it.scoped("max_read_bytes (default 10 MiB) is enforced before and while reading", () =>
    Effect.gen(function*() {
      const { root } = yield* sandbox
      const big = Path.join(root, "big")
      NodeFs.writeFileSync(big, "")
      NodeFs.truncateSync(big, 1024 * 1024 * 1024) // sparse: 1 GiB that costs no disk
      const rss = process.memoryUsage().rss
      expect(yield* outcome("fs.read", ["big"]).pipe(Effect.provide(setup(fsPolicy(root)))))
        .toBe("RuntimeError: fs.read failed: cannot read 'big': larger than 10485760 bytes (fs_policy.max_read_bytes)")
      expect(process.memoryUsage().rss - rss).toBeLessThan(100 * 1024 * 1024)
      NodeFs.writeFileSync(Path.join(root, "ten"), "0123456789")
      yield* Effect.gen(function*() {
        expect(yield* outcome("fs.read", ["ten"])).toBe("0123456789")
        NodeFs.writeFileSync(Path.join(root, "eleven"), "0123456789A")
        expect(yield* outcome("fs.read", ["eleven"])).toContain("larger than 10 bytes (fs_policy.max_read_bytes)")
      }).pipe(Effect.provide(setup(fsPolicy(root, { max_read_bytes: 10 }))))
      // while reading: a file that grows after fstat is cut at the cap, not read to its end
      const growing: Fs.FsIo = {
        ...Fs.nodeIo,
        open: async (p, flags, mode) => {
          const h = await Fs.nodeIo.open(p, flags, mode)
          if (p.endsWith("ten")) {
            const stat = h.stat.bind(h)
            Object.defineProperty(h, "stat", {
              value: async () => {
                const s = await stat()
                NodeFs.appendFileSync(Path.join(root, "ten"), "more")
                return s
              }
            })
          }
          return h
        }
      }
      const h = Fs.make({ root, readOnly: false, maxReadBytes: 10, io: growing })
      expect((yield* Effect.flip(h.read(["ten"], {} as never))).message).toBe("cannot read 'ten': larger than 10 bytes (fs_policy.max_read_bytes)")
    }))

  it.scoped("max_write_bytes (default 10 MiB), and a path ending in '/' is an error", () =>
    Effect.gen(function*() {
      const { root } = yield* sandbox
      yield* Effect.gen(function*() {
        expect(yield* outcome("fs.write", ["newdir/", "x"]))
          .toBe("RuntimeError: fs.write failed: cannot write 'newdir/': a path ending in '/' names a directory, not a file")
        NodeFs.writeFileSync(Path.join(root, "file.txt"), "text")
        expect(yield* outcome("fs.read", ["file.txt/"]))
          .toBe("RuntimeError: fs.read failed: cannot read 'file.txt/': a path ending in '/' names a directory, not a file")
        expect(yield* outcome("fs.write", ["big", "x".repeat(10 * 1024 * 1024 + 1)]))
          .toBe("RuntimeError: fs.write failed: cannot write 'big': 10485761 bytes is more than 10485760 (fs_policy.max_write_bytes)")
        expect(yield* outcome("fs.write", ["exact", "x".repeat(10 * 1024 * 1024)])).toEqual({ _tag: "Unit" })
      }).pipe(Effect.provide(setup(fsPolicy(root))))
      yield* Effect.gen(function*() {
        expect(yield* outcome("fs.write", ["four", "ab✓"])).toContain("5 bytes is more than 4 (fs_policy.max_write_bytes)")
      }).pipe(Effect.provide(setup(fsPolicy(root, { max_write_bytes: 4 }))))
      expect(NodeFs.existsSync(Path.join(root, "newdir"))).toBe(false)
      expect(NodeFs.existsSync(Path.join(root, "big"))).toBe(false)
      expect(NodeFs.existsSync(Path.join(root, "four"))).toBe(false)
      expect(NodeFs.statSync(Path.join(root, "exact")).size).toBe(10 * 1024 * 1024)
    }))
})
