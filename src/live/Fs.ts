/**
 * Live `fs.read(path)` → String and `fs.write(path, data)` → Unit on `@effect/platform` `FileSystem`,
 * confined to one root directory (`fs_policy.root`, default the working directory).
 *
 * Confinement, in order: the path is resolved against the root; if it lies outside lexically
 * (`../x`, `/etc/passwd`) it is `denied`. Then symlinks are resolved (`realpath` of the file, or of its
 * directory when the file does not exist yet); if the real path lies outside the (real) root it is
 * `denied`. Writes go to a temp file in the target's directory, are flushed (`fsync`) and renamed
 * over the target, so a crash never leaves a half-written file; writing through a symlink that stays
 * inside the root replaces the file the link points to.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type { PlatformError } from "@effect/platform/Error"
import * as Effect from "effect/Effect"
import { randomBytes } from "node:crypto"
import * as Path from "node:path"
import { HandlerFailure } from "../Errors.js"
import type { Handler } from "../Handlers.js"
import { typeName, Unit, type Value } from "../Value.js"

const fail = (message: string) => Effect.fail(new HandlerFailure({ message }))
const deny = (message: string) => Effect.fail(new HandlerFailure({ message, denied: true }))

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
const encoder = new TextEncoder()

/** The errno code of a platform error (ENOENT, EISDIR, …) or its reason. */
const why = (e: PlatformError): string => {
  if (e._tag === "SystemError") {
    const cause = e.cause
    const code = cause !== null && typeof cause === "object" && "code" in cause && typeof cause.code === "string" ? cause.code : undefined
    return code ?? e.reason
  }
  return e.message
}

const within = (root: string, p: string): boolean =>
  p === root || p.startsWith(root.endsWith(Path.sep) ? root : root + Path.sep)

export interface FsOptions {
  /** the root directory, already resolved to its real path */
  readonly root: string
  readonly readOnly: boolean
  readonly fs: FileSystem.FileSystem
}

const pathArg = (args: ReadonlyArray<Value>, arity: number, sig: string): Effect.Effect<string, HandlerFailure> => {
  if (args.length !== arity) return fail(`expected ${sig}, got ${args.length} arguments`)
  const p = args[0]
  if (typeof p !== "string") return fail(`path must be a String, got ${typeName(p)}`)
  if (p === "" || p.includes("\0")) return fail(`invalid path ${JSON.stringify(p)}`)
  return Effect.succeed(p)
}

export const make = (options: FsOptions): { readonly read: Handler; readonly write: Handler } => {
  const { root, readOnly, fs } = options

  /** Lexical confinement: the absolute path, or `denied`. */
  const lexical = (p: string) => {
    const abs = Path.resolve(root, p)
    return within(root, abs) ? Effect.succeed(abs) : deny(`path '${p}' is outside the fs root`)
  }

  const realInside = (p: string, real: string) =>
    within(root, real) ? Effect.succeed(real) : deny(`path '${p}' resolves outside the fs root (through a symlink)`)

  const read: Handler = (args) =>
    Effect.gen(function*() {
      const p = yield* pathArg(args, 1, "fs.read(path)")
      const abs = yield* lexical(p)
      const real = yield* fs.realPath(abs).pipe(Effect.mapError((e) => new HandlerFailure({ message: `cannot read '${p}': ${why(e)}` })))
      yield* realInside(p, real)
      const bytes = yield* fs.readFile(real).pipe(Effect.mapError((e) => new HandlerFailure({ message: `cannot read '${p}': ${why(e)}` })))
      try {
        return utf8.decode(bytes)
      } catch {
        return yield* fail(`'${p}' is not valid UTF-8 text`)
      }
    })

  /** Where a write lands: the real path of the existing file, or real directory + name. */
  const writeTarget = (p: string, abs: string) =>
    fs.realPath(abs).pipe(
      Effect.flatMap((real) => realInside(p, real)),
      Effect.catchTag("SystemError", (e) =>
        e.reason !== "NotFound"
          ? fail(`cannot write '${p}': ${why(e)}`)
          : fs.realPath(Path.dirname(abs)).pipe(
            Effect.mapError((d) => new HandlerFailure({ message: `cannot write '${p}': directory ${why(d)}` })),
            Effect.flatMap((dir) => realInside(p, dir)),
            // a dangling symlink is replaced by the rename, never followed
            Effect.map((dir) => Path.join(dir, Path.basename(abs)))
          )),
      Effect.catchTag("BadArgument", (e) => fail(`cannot write '${p}': ${e.message}`))
    )

  const write: Handler = (args) =>
    Effect.gen(function*() {
      const p = yield* pathArg(args, 2, "fs.write(path, data)")
      if (readOnly) return yield* deny(`fs_policy.read_only is set: writes are not allowed`)
      const data = args[1]
      if (typeof data !== "string") return yield* fail(`data must be a String, got ${typeName(data)}`)
      const abs = yield* lexical(p)
      if (abs === root) return yield* fail(`cannot write '${p}': it is the fs root directory`)
      const target = yield* writeTarget(p, abs)
      const existing = yield* Effect.option(fs.stat(target))
      if (existing._tag === "Some" && existing.value.type === "Directory") return yield* fail(`cannot write '${p}': EISDIR`)
      const tmp = Path.join(Path.dirname(target), `.${Path.basename(target)}.${randomBytes(6).toString("hex")}.tmp`)
      const mode = existing._tag === "Some" ? existing.value.mode & 0o777 : 0o644
      const io = (e: PlatformError) => new HandlerFailure({ message: `cannot write '${p}': ${why(e)}` })
      yield* Effect.scoped(
        Effect.gen(function*() {
          const file = yield* fs.open(tmp, { flag: "wx", mode })
          yield* file.writeAll(encoder.encode(data))
          yield* file.sync
        })
      ).pipe(
        Effect.zipRight(fs.rename(tmp, target)),
        Effect.mapError(io),
        Effect.tapError(() => Effect.ignore(fs.remove(tmp)))
      )
      return Unit
    })

  return { read, write }
}
