/**
 * Durability of live fs.write (issue 16): the data is flushed (fsync of the temp file) before the
 * rename makes it visible, and the directory is flushed after, so a power loss leaves the old file or
 * the new one, never an empty or half-written one. Checked twice: on the calls the handler makes
 * (an injected file-system layer) and on the system calls the process makes (strace).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawnSync } from "node:child_process"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Fs from "../../src/live/Fs.js"

const tmpRoot = Effect.acquireRelease(
  Effect.sync(() => NodeFs.realpathSync(NodeFs.mkdtempSync(Path.join(Os.tmpdir(), "boruna-sec-dur-")))),
  (dir) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
)

describe("security: fs.write durability", () => {
  it.scoped("the temp file is synced before the rename, the directory after", () =>
    Effect.gen(function*() {
      const root = yield* tmpRoot
      const calls: Array<string> = []
      const handles = new Map<number, string>()
      const io: Fs.FsIo = {
        ...Fs.nodeIo,
        open: async (p, flags, mode) => {
          const h = await Fs.nodeIo.open(p, flags, mode)
          handles.set(h.fd, p.endsWith(".tmp") ? "tmp" : "dir")
          return h
        },
        rename: async (a, b) => {
          calls.push(`rename ${Path.basename(a).endsWith(".tmp") ? "tmp" : "?"} -> ${Path.basename(b)}`)
          return Fs.nodeIo.rename(a, b)
        },
        sync: async (h) => {
          calls.push(`sync ${handles.get(h.fd)}`)
          return Fs.nodeIo.sync(h)
        }
      }
      const h = Fs.make({ root, readOnly: false, io })
      yield* h.write(["a.txt", "one"], {} as never)
      expect(calls).toEqual(["sync tmp", "rename tmp -> a.txt", "sync dir"])
      expect(NodeFs.readFileSync(Path.join(root, "a.txt"), "utf8")).toBe("one")
    }))

  it.scoped("under strace: fsync(temp fd) between its creation and the rename, fsync(directory fd) after", () =>
    Effect.gen(function*() {
      const root = yield* tmpRoot
      const trace = Path.join(root, "..", `${Path.basename(root)}.strace`)
      const fixture = Path.join(import.meta.dirname, "fixtures", "fs-write.ts")
      const viteNode = Path.join(import.meta.dirname, "..", "..", "node_modules", ".bin", "vite-node")
      const r = spawnSync("strace", ["-f", "-qq", "-e", "trace=openat,fsync,fdatasync,rename,renameat,renameat2", "-o", trace, viteNode, fixture, root, "b.txt", "durable"], {
        encoding: "utf8",
        timeout: 50_000
      })
      expect(r.stdout).toContain("written")
      const lines = NodeFs.readFileSync(trace, "utf8").split("\n")
      NodeFs.rmSync(trace)
      const created = lines.findIndex((l) => /openat\(.*\/\.b\.txt\.[0-9a-f]+\.tmp", O_WRONLY\|O_CREAT\|O_EXCL/.test(l))
      expect(created).toBeGreaterThanOrEqual(0)
      const tmpFd = /= (\d+)$/.exec(lines[created])![1]
      const renamed = lines.findIndex((l) => /rename(at2?)?\(.*\.b\.txt\.[0-9a-f]+\.tmp".*\/proc\/self\/fd\/\d+\/b\.txt"/.test(l))
      expect(renamed).toBeGreaterThan(created)
      const dirFd = /\/proc\/self\/fd\/(\d+)\/b\.txt"/.exec(lines[renamed])![1]
      const between = lines.slice(created + 1, renamed)
      expect(between.some((l) => new RegExp(`(fsync|fdatasync)\\(${tmpFd}\\)\\s+= 0`).test(l))).toBe(true)
      expect(lines.slice(renamed + 1).some((l) => new RegExp(`(fsync|fdatasync)\\(${dirFd}\\)\\s+= 0`).test(l))).toBe(true)
      expect(NodeFs.readFileSync(Path.join(root, "b.txt"), "utf8")).toBe("durable")
    }), 60_000)
})
