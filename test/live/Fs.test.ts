import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Gateway from "../../src/Gateway.js"
import * as Live from "../../src/Live.js"
import type { Policy } from "../../src/Policy.js"
import { Unit } from "../../src/Value.js"
import { capSpans, events, setup } from "./support.js"

/**
 * tmp/root/a.txt, tmp/root/sub/b.txt, tmp/outside/secret.txt, and links inside the root:
 * `out-link` → outside/secret.txt, `out-dir` → outside/, `in-link` → root/a.txt, `dangling` → outside/nope.txt
 */
const sandbox = Effect.acquireRelease(
  Effect.sync(() => {
    const tmp = NodeFs.realpathSync(NodeFs.mkdtempSync(Path.join(Os.tmpdir(), "boruna-fs-")))
    const root = Path.join(tmp, "root")
    const outside = Path.join(tmp, "outside")
    NodeFs.mkdirSync(Path.join(root, "sub"), { recursive: true })
    NodeFs.mkdirSync(outside)
    NodeFs.writeFileSync(Path.join(root, "a.txt"), "alpha")
    NodeFs.writeFileSync(Path.join(root, "sub", "b.txt"), "beta")
    NodeFs.writeFileSync(Path.join(outside, "secret.txt"), "top secret")
    NodeFs.symlinkSync(Path.join(outside, "secret.txt"), Path.join(root, "out-link"))
    NodeFs.symlinkSync(outside, Path.join(root, "out-dir"))
    NodeFs.symlinkSync(Path.join(root, "a.txt"), Path.join(root, "in-link"))
    NodeFs.symlinkSync(Path.join(outside, "nope.txt"), Path.join(root, "dangling"))
    return { tmp, root, outside }
  }),
  ({ tmp }) => Effect.sync(() => NodeFs.rmSync(tmp, { recursive: true, force: true }))
)

const fsPolicy = (root: string, readOnly = false): Policy => ({
  schema_version: 1,
  default_allow: false,
  rules: { "fs.read": { allow: true, budget: 0 }, "fs.write": { allow: true, budget: 0 } },
  fs_policy: { root, read_only: readOnly }
})

describe("live fs.read / fs.write", () => {
  it.scoped("reads inside the root (relative, nested, absolute, through an inside symlink)", () =>
    Effect.gen(function*() {
      const { root } = yield* sandbox
      yield* Effect.gen(function*() {
        expect(yield* Gateway.call("fs.read", ["a.txt"])).toBe("alpha")
        expect(yield* Gateway.call("fs.read", ["sub/../sub/b.txt"])).toBe("beta")
        expect(yield* Gateway.call("fs.read", [Path.join(root, "a.txt")])).toBe("alpha")
        expect(yield* Gateway.call("fs.read", ["in-link"])).toBe("alpha")
        const spans = yield* capSpans
        expect(spans.map((s) => [s.attributes["cap.name"], s.status, s.attributes["bytes_out"]])).toEqual([
          ["fs.read", "ok", 5],
          ["fs.read", "ok", 4],
          ["fs.read", "ok", 5],
          ["fs.read", "ok", 5]
        ])
      }).pipe(Effect.provide(setup(fsPolicy(root))))
    }))

  it.scoped("traversal, absolute paths outside the root and symlinks resolving outside are denied", () =>
    Effect.gen(function*() {
      const { root, outside } = yield* sandbox
      yield* Effect.gen(function*() {
        const cases: Array<[string, string]> = [
          ["../outside/secret.txt", "is outside the fs root"],
          ["sub/../../outside/secret.txt", "is outside the fs root"],
          [Path.join(outside, "secret.txt"), "is outside the fs root"],
          ["/etc/passwd", "is outside the fs root"],
          ["out-link", "resolves outside the fs root (through a symlink)"],
          ["out-dir/secret.txt", "resolves outside the fs root (through a symlink)"]
        ]
        for (const [p, msg] of cases) {
          const e = yield* Effect.flip(Gateway.call("fs.read", [p]))
          expect([p, e._tag]).toEqual([p, "Denied"])
          expect(e.message).toContain(msg)
          expect(e.message).not.toContain("top secret")
        }
        const spans = yield* capSpans
        expect(spans.map((s) => s.attributes["error.kind"])).toEqual(Array(cases.length).fill("denied"))
        expect(spans.every((s) => s.status === "error")).toBe(true)
        const log = yield* events
        expect(log.filter((e) => e.type === "CapError").map((e) => e.type === "CapError" && e.kind)).toEqual(Array(cases.length).fill("denied"))
      }).pipe(Effect.provide(setup(fsPolicy(root))))
    }))

  it.scoped("a missing file or a directory is a runtime_error naming the path", () =>
    Effect.gen(function*() {
      const { root } = yield* sandbox
      yield* Effect.gen(function*() {
        const a = yield* Effect.flip(Gateway.call("fs.read", ["nope.txt"]))
        expect(a._tag).toBe("RuntimeError")
        expect(a.message).toBe("fs.read failed: cannot read 'nope.txt': ENOENT")
        const b = yield* Effect.flip(Gateway.call("fs.read", ["sub"]))
        expect(b.message).toBe("fs.read failed: cannot read 'sub': EISDIR")
        expect((yield* capSpans).map((s) => s.attributes["error.kind"])).toEqual(["runtime_error", "runtime_error"])
      }).pipe(Effect.provide(setup(fsPolicy(root))))
    }))

  it.scoped("writes are atomic: temp file + rename replaces the inode, leaves no temp file, keeps the mode", () =>
    Effect.gen(function*() {
      const { root } = yield* sandbox
      const a = Path.join(root, "a.txt")
      NodeFs.chmodSync(a, 0o600)
      NodeFs.linkSync(a, Path.join(root, "hard.txt")) // a second name for the old inode
      const inodeBefore = NodeFs.statSync(a).ino
      yield* Effect.gen(function*() {
        expect(yield* Gateway.call("fs.write", ["a.txt", "ALPHA v2"])).toBe(Unit)
        expect(yield* Gateway.call("fs.write", ["sub/new.txt", "brand new ✓"])).toBe(Unit)
        expect(yield* Gateway.call("fs.read", ["sub/new.txt"])).toBe("brand new ✓")
        const spans = yield* capSpans
        expect(spans.map((s) => [s.attributes["cap.name"], s.status])).toEqual([["fs.write", "ok"], ["fs.write", "ok"], ["fs.read", "ok"]])
        expect(spans[0].attributes["bytes_in"]).toBe("a.txt".length + "ALPHA v2".length)
      }).pipe(Effect.provide(setup(fsPolicy(root))))
      expect(NodeFs.readFileSync(a, "utf8")).toBe("ALPHA v2")
      expect(NodeFs.readFileSync(Path.join(root, "hard.txt"), "utf8")).toBe("alpha") // never written in place
      expect(NodeFs.statSync(a).ino).not.toBe(inodeBefore)
      expect(NodeFs.statSync(a).mode & 0o777).toBe(0o600)
      expect(NodeFs.readdirSync(root).filter((n) => n.endsWith(".tmp"))).toEqual([])
      expect(NodeFs.readdirSync(Path.join(root, "sub")).filter((n) => n.endsWith(".tmp"))).toEqual([])
    }))

  it.scoped("writes through a symlink: inside the root it updates the target; outside it is denied and nothing changes", () =>
    Effect.gen(function*() {
      const { root, outside } = yield* sandbox
      yield* Effect.gen(function*() {
        yield* Gateway.call("fs.write", ["in-link", "via link"])
        for (const p of ["out-link", "out-dir/new.txt", "../outside/x.txt", "/tmp/boruna-should-not-exist.txt"]) {
          const e = yield* Effect.flip(Gateway.call("fs.write", [p, "pwned"]))
          expect([p, e._tag]).toEqual([p, "Denied"])
        }
        // a dangling link pointing outside is replaced by the rename, never followed
        yield* Gateway.call("fs.write", ["dangling", "stays inside"])
        expect((yield* capSpans).map((s) => s.attributes["error.kind"])).toEqual([undefined, "denied", "denied", "denied", "denied", undefined])
      }).pipe(Effect.provide(setup(fsPolicy(root))))
      expect(NodeFs.readFileSync(Path.join(root, "a.txt"), "utf8")).toBe("via link")
      expect(NodeFs.lstatSync(Path.join(root, "in-link")).isSymbolicLink()).toBe(true)
      expect(NodeFs.readFileSync(Path.join(outside, "secret.txt"), "utf8")).toBe("top secret")
      expect(NodeFs.readdirSync(outside)).toEqual(["secret.txt"])
      expect(NodeFs.existsSync("/tmp/boruna-should-not-exist.txt")).toBe(false)
      expect(NodeFs.lstatSync(Path.join(root, "dangling")).isFile()).toBe(true)
    }))

  it.scoped("read_only denies every write; a missing directory or a wrong argument is a runtime_error", () =>
    Effect.gen(function*() {
      const { root } = yield* sandbox
      yield* Effect.gen(function*() {
        const e = yield* Effect.flip(Gateway.call("fs.write", ["a.txt", "x"]))
        expect(e._tag).toBe("Denied")
        expect(e.message).toBe("capability denied: fs.write: fs_policy.read_only is set: writes are not allowed")
        expect(yield* Gateway.call("fs.read", ["a.txt"])).toBe("alpha")
        expect((yield* capSpans).map((s) => s.attributes["error.kind"])).toEqual(["denied", undefined])
      }).pipe(Effect.provide(setup(fsPolicy(root, true))))
      yield* Effect.gen(function*() {
        const a = yield* Effect.flip(Gateway.call("fs.write", ["no/such/dir/f.txt", "x"]))
        expect(a._tag).toBe("RuntimeError")
        expect(a.message).toContain("cannot write 'no/such/dir/f.txt': directory ENOENT")
        const b = yield* Effect.flip(Gateway.call("fs.write", ["f.txt", 42]))
        expect(b.message).toContain("data must be a String, got Int")
        const c = yield* Effect.flip(Gateway.call("fs.write", ["sub", "x"]))
        expect(c.message).toContain("EISDIR")
      }).pipe(Effect.provide(setup(fsPolicy(root))))
      expect(NodeFs.readFileSync(Path.join(root, "a.txt"), "utf8")).toBe("alpha")
    }))

  it.scoped("a root that does not exist fails the live layer with LiveConfigError", () =>
    Effect.gen(function*() {
      const { tmp } = yield* sandbox
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(Live.layer(fsPolicy(Path.join(tmp, "missing"))))))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) expect(String(exit.cause)).toContain(`fs_policy.root '${Path.join(tmp, "missing")}' does not exist`)
    }))
})
