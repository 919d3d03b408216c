/**
 * Live `fs.read(path)` → String and `fs.write(path, data)` → Unit, confined to one root directory
 * (`fs_policy.root`, default the working directory).
 *
 * Confinement is decided on what was opened, never on a path string checked earlier (another
 * process may swap a folder or a file for a symlink between a check and a use):
 *
 * - the path is first resolved against the root lexically; `../x` or `/etc/passwd` outside it is
 *   `denied`;
 * - `fs.read` opens the file with `O_NOFOLLOW | O_NONBLOCK` (a symlink as the last component is
 *   resolved once, checked lexically, and its target opened the same way; a FIFO cannot block),
 *   then checks the *descriptor*: its real path (`/proc/self/fd/N`) must lie inside the real root,
 *   `fstat` must say regular file, with one link unless `fs_policy.allow_hardlinks`; it reads at
 *   most `fs_policy.max_read_bytes` (default 10 MiB), counted while reading;
 * - `fs.write` opens the target's directory and checks that descriptor's real path; everything after
 *   goes through the descriptor (`/proc/self/fd/N/name`, Linux's equivalent of `openat`), so a
 *   folder swapped later changes nothing: a temp file is created there (`O_EXCL | O_NOFOLLOW`),
 *   checked the same way, written, flushed (`fsync`), renamed over the target, checked again (the
 *   name now holds the temp file's inode) and the directory is flushed (`fsync`). A crash never
 *   leaves a half-written file, and a hard-linked or symlinked target is replaced, never written in
 *   place. A symlink target that stays inside the root is followed (its target is replaced); a
 *   dangling one is replaced by the rename. Data above `fs_policy.max_write_bytes` (default 10 MiB)
 *   is refused; a path ending in `/` is an error.
 *
 * Needs Linux's `/proc/self/fd`; the layer refuses to start without it.
 */
import * as Effect from "effect/Effect"
import { randomBytes } from "node:crypto"
import { constants } from "node:fs"
import * as Fsp from "node:fs/promises"
import * as Path from "node:path"
import { HandlerFailure } from "../Errors.js"
import type { Handler } from "../Handlers.js"
import { typeName, Unit, type Value } from "../Value.js"

const fail = (message: string) => Effect.fail(new HandlerFailure({ message }))
const deny = (message: string) => Effect.fail(new HandlerFailure({ message, denied: true }))

export const DEFAULT_MAX_READ_BYTES = 10 * 1024 * 1024
export const DEFAULT_MAX_WRITE_BYTES = 10 * 1024 * 1024

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
const encoder = new TextEncoder()

/**
 * The file-system calls the handlers make, so that a test can watch them (the durability test
 * checks that `sync` happens before `rename`, and the directory is synced after).
 */
export interface FsIo {
  readonly open: (path: string, flags: number, mode?: number) => Promise<Fsp.FileHandle>
  readonly lstat: (path: string) => Promise<import("node:fs").Stats>
  readonly realpath: (path: string) => Promise<string>
  readonly readlink: (path: string) => Promise<string>
  readonly rename: (from: string, to: string) => Promise<void>
  readonly unlink: (path: string) => Promise<void>
  /** fsync of an open file or directory */
  readonly sync: (handle: Fsp.FileHandle) => Promise<void>
}

export const nodeIo: FsIo = {
  open: (p, flags, mode) => Fsp.open(p, flags, mode),
  lstat: (p) => Fsp.lstat(p),
  realpath: (p) => Fsp.realpath(p),
  readlink: (p) => Fsp.readlink(p),
  rename: (a, b) => Fsp.rename(a, b),
  unlink: (p) => Fsp.unlink(p),
  sync: (h) => h.sync()
}

const codeOf = (e: unknown): string =>
  e !== null && typeof e === "object" && "code" in e && typeof e.code === "string" ? e.code : e instanceof Error ? e.message : String(e)

const within = (root: string, p: string): boolean =>
  p === root || p.startsWith(root.endsWith(Path.sep) ? root : root + Path.sep)

export interface FsOptions {
  /** the root directory, already resolved to its real path */
  readonly root: string
  readonly readOnly: boolean
  readonly allowHardlinks?: boolean | undefined
  readonly maxReadBytes?: number | undefined
  readonly maxWriteBytes?: number | undefined
  /** the file-system calls (default `nodeIo`) */
  readonly io?: FsIo | undefined
}

const pathArg = (args: ReadonlyArray<Value>, arity: number, sig: string): Effect.Effect<string, HandlerFailure> => {
  if (args.length !== arity) return fail(`expected ${sig}, got ${args.length} arguments`)
  const p = args[0]
  if (typeof p !== "string") return fail(`path must be a String, got ${typeName(p)}`)
  if (p === "" || p.includes("\0")) return fail(`invalid path ${JSON.stringify(p)}`)
  return Effect.succeed(p)
}

/** A handler outcome decided inside the promise: a value, or a failure (denied or not). */
class Refusal {
  constructor(readonly message: string, readonly denied: boolean) {}
}
const refuse = (message: string): never => {
  throw new Refusal(message, false)
}
const refuseDenied = (message: string): never => {
  throw new Refusal(message, true)
}

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = constants

export const make = (options: FsOptions): { readonly read: Handler; readonly write: Handler } => {
  const { root, readOnly } = options
  const io = options.io ?? nodeIo
  const allowHardlinks = options.allowHardlinks ?? false
  const maxRead = options.maxReadBytes ?? DEFAULT_MAX_READ_BYTES
  const maxWrite = options.maxWriteBytes ?? DEFAULT_MAX_WRITE_BYTES

  const run = <A>(f: () => Promise<A>, what: string): Effect.Effect<A, HandlerFailure> =>
    Effect.tryPromise({
      try: f,
      catch: (e) =>
        e instanceof Refusal
          ? new HandlerFailure({ message: e.message, denied: e.denied })
          : new HandlerFailure({ message: `${what}: ${codeOf(e)}` })
    })

  /** Lexical confinement: the absolute path, or `denied`. */
  const lexical = (p: string) => {
    const abs = Path.resolve(root, p)
    return within(root, abs) ? Effect.succeed(abs) : deny(`path '${p}' is outside the fs root`)
  }

  const outside = (p: string) => `path '${p}' resolves outside the fs root (through a symlink)`

  /** The real path of an open descriptor: what was opened, whatever the path said. */
  const fdPath = (h: Fsp.FileHandle) => io.readlink(`/proc/self/fd/${h.fd}`)

  /** Open `abs` for reading without following a final symlink; `undefined` when it is one. */
  const openNoFollow = async (abs: string): Promise<Fsp.FileHandle | undefined> => {
    try {
      return await io.open(abs, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
    } catch (e) {
      if (codeOf(e) === "ELOOP") return undefined
      throw e
    }
  }

  const readFile = async (p: string, abs: string): Promise<string> => {
    // refuse what is not a regular file before opening it (a FIFO, a device)
    const pre = await io.lstat(abs)
    if (pre.isDirectory()) refuse(`cannot read '${p}': EISDIR`)
    if (!pre.isFile() && !pre.isSymbolicLink()) refuse(`cannot read '${p}': not a regular file`)
    let h = await openNoFollow(abs)
    if (h === undefined) {
      // the last component is a symlink: resolve it once, and open its target the same way
      const real = await io.realpath(abs)
      if (!within(root, real)) refuseDenied(outside(p))
      h = await openNoFollow(real)
      if (h === undefined) refuse(`cannot read '${p}': ELOOP`)
    }
    const fh = h as Fsp.FileHandle
    try {
      const real = await fdPath(fh)
      if (!within(root, real)) refuseDenied(outside(p))
      const st = await fh.stat()
      if (st.isDirectory()) refuse(`cannot read '${p}': EISDIR`)
      if (!st.isFile()) refuse(`cannot read '${p}': not a regular file`)
      if (st.nlink > 1 && !allowHardlinks) {
        refuseDenied(`'${p}' has ${st.nlink} hard links (one may be outside the fs root); set fs_policy.allow_hardlinks to read it`)
      }
      const tooBig = () => refuse(`cannot read '${p}': larger than ${maxRead} bytes (fs_policy.max_read_bytes)`)
      if (st.size > maxRead) tooBig()
      const chunks: Array<Buffer> = []
      let total = 0
      for (;;) {
        const buf = Buffer.allocUnsafe(Math.min(64 * 1024, maxRead + 1 - total))
        const { bytesRead } = await fh.read(buf, 0, buf.length, null)
        if (bytesRead === 0) break
        total += bytesRead
        if (total > maxRead) tooBig()
        chunks.push(buf.subarray(0, bytesRead))
      }
      try {
        return utf8.decode(Buffer.concat(chunks, total))
      } catch {
        return refuse(`'${p}' is not valid UTF-8 text`)
      }
    } finally {
      await fh.close()
    }
  }

  const read: Handler = (args) =>
    Effect.gen(function*() {
      const p = yield* pathArg(args, 1, "fs.read(path)")
      // resolving would drop the '/', and 'file.txt/' read the file
      if (p.endsWith("/")) return yield* fail(`cannot read '${p}': a path ending in '/' names a directory, not a file`)
      const abs = yield* lexical(p)
      return yield* run(() => readFile(p, abs), `cannot read '${p}'`)
    })

  /** Open a directory and check that the descriptor lies inside the root. */
  const openDir = async (p: string, dir: string) => {
    let dh: Fsp.FileHandle
    try {
      dh = await io.open(dir, O_RDONLY | O_DIRECTORY)
    } catch (e) {
      return refuse(`cannot write '${p}': directory ${codeOf(e)}`)
    }
    try {
      const real = await fdPath(dh)
      if (!within(root, real)) refuseDenied(outside(p))
      return { dh, real }
    } catch (e) {
      await dh.close()
      throw e
    }
  }

  const writeFile = async (p: string, abs: string, bytes: Uint8Array): Promise<void> => {
    let dir = Path.dirname(abs)
    let name = Path.basename(abs)
    for (let hop = 0;; hop++) {
      const { dh, real: dirReal } = await openDir(p, dir)
      try {
        const D = `/proc/self/fd/${dh.fd}`
        let mode = 0o644
        const existing = await io.lstat(`${D}/${name}`).catch((e) => (codeOf(e) === "ENOENT" ? undefined : Promise.reject(e)))
        if (existing !== undefined) {
          if (existing.isSymbolicLink()) {
            const target = await io.realpath(`${D}/${name}`).catch((e) => (codeOf(e) === "ENOENT" ? undefined : Promise.reject(e)))
            // a dangling link is replaced by the rename, never followed
            if (target !== undefined) {
              if (!within(root, target)) refuseDenied(outside(p))
              if (hop > 0) refuse(`cannot write '${p}': the path changed while writing`)
              dir = Path.dirname(target)
              name = Path.basename(target)
              continue
            }
          } else if (existing.isDirectory()) {
            refuse(`cannot write '${p}': EISDIR`)
          } else if (!existing.isFile()) {
            refuse(`cannot write '${p}': not a regular file`)
          } else {
            mode = existing.mode & 0o777
          }
        }
        const tmp = `.${name}.${randomBytes(6).toString("hex")}.tmp`
        const fh = await io.open(`${D}/${tmp}`, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode)
        let renamed = false
        try {
          const tmpReal = await fdPath(fh)
          if (tmpReal !== Path.join(dirReal, tmp) || !within(root, tmpReal)) refuseDenied(outside(p))
          const ino = (await fh.stat()).ino
          await fh.writeFile(bytes)
          await io.sync(fh)
          await fh.close()
          await io.rename(`${D}/${tmp}`, `${D}/${name}`)
          renamed = true
          const now = await io.lstat(`${D}/${name}`)
          if (now.ino !== ino) refuse(`cannot write '${p}': the file changed while writing`)
          await io.sync(dh)
          return
        } finally {
          await fh.close().catch(() => undefined)
          if (!renamed) await io.unlink(`${D}/${tmp}`).catch(() => undefined)
        }
      } finally {
        await dh.close()
      }
    }
  }

  const write: Handler = (args) =>
    Effect.gen(function*() {
      const p = yield* pathArg(args, 2, "fs.write(path, data)")
      if (readOnly) return yield* deny(`fs_policy.read_only is set: writes are not allowed`)
      const data = args[1]
      if (typeof data !== "string") return yield* fail(`data must be a String, got ${typeName(data)}`)
      if (p.endsWith("/")) return yield* fail(`cannot write '${p}': a path ending in '/' names a directory, not a file`)
      const bytes = encoder.encode(data)
      if (bytes.length > maxWrite) return yield* fail(`cannot write '${p}': ${bytes.length} bytes is more than ${maxWrite} (fs_policy.max_write_bytes)`)
      const abs = yield* lexical(p)
      if (abs === root) return yield* fail(`cannot write '${p}': it is the fs root directory`)
      yield* run(() => writeFile(p, abs, bytes), `cannot write '${p}'`)
      return Unit
    })

  return { read, write }
}
