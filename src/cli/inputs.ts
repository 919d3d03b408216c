/**
 * Reading what a command is given: source and bytecode files, policies. Every failure is a
 * `CliError` naming the file (and line:column or JSON path) — never a stack trace.
 *
 * Files are read with `node:fs/promises` rather than the platform `FileSystem` service: providing
 * that service means loading `@effect/platform-node`, ~0.25 s of start-up `boruna run` cannot afford.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { constants, statSync } from "node:fs"
import { access, readFile, stat, writeFile } from "node:fs/promises"
import { dirname, resolve } from "node:path"
import type { Diagnostic } from "../Diagnostic.js"
import type { Policy } from "../Policy.js"
import { allowAll, denyAll } from "../PolicyCore.js"
import { CliError, ExitCode, input, usage } from "./CliError.js"
import type { Engine, Program } from "./engine.js"

const reason = (e: unknown, writing = false): string => {
  const o = e as { code?: unknown; message?: unknown }
  if (o?.code === "ENOENT") return writing ? "its directory does not exist" : "no such file"
  if (o?.code === "ENOTDIR") return "a component of the path is not a directory"
  if (o?.code === "EISDIR") return "is a directory"
  if (o?.code === "EACCES" || o?.code === "EPERM") return "permission denied"
  if (o?.code === "EROFS") return "read-only file system"
  if (o?.code === "ENOSPC") return "no space left on the device"
  return typeof o?.message === "string" ? o.message : String(e)
}

/**
 * A file's bytes as text: UTF-8 with a leading byte-order mark dropped (editors on Windows add one).
 * Bytes that are not UTF-8 are an error at their line:column, never silently replaced with U+FFFD.
 */
export const decodeText = (file: string, bytes: Uint8Array): Either.Either<string, CliError> => {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const bom = buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0
  const text = buf.toString("utf8", bom)
  // a U+FFFD in the decoded text is either written in the file (bytes EF BF BD) or a replaced bad sequence
  for (let j = text.indexOf("\uFFFD"); j !== -1; j = text.indexOf("\uFFFD", j + 1)) {
    const prefix = text.slice(0, j)
    const at = bom + Buffer.byteLength(prefix, "utf8")
    if (buf[at] === 0xef && buf[at + 1] === 0xbf && buf[at + 2] === 0xbd) continue
    const line = prefix.split("\n").length
    const col = j - prefix.lastIndexOf("\n")
    return Either.left(input(
      "invalid_utf8",
      `${file} is not UTF-8 text: byte 0x${buf[at].toString(16).padStart(2, "0")} at offset ${at} is not valid UTF-8`,
      { file, line, col }
    ))
  }
  return Either.right(text)
}

export const readText = (file: string): Effect.Effect<string, CliError> =>
  Effect.flatMap(
    Effect.tryPromise({
      try: () => readFile(file),
      catch: (e) => input("io_error", `cannot read ${file}: ${reason(e)}`)
    }),
    (bytes) => decodeText(file, bytes)
  )

export const writeText = (file: string, text: string): Effect.Effect<void, CliError> =>
  Effect.tryPromise({
    try: () => writeFile(file, text, "utf8"),
    catch: (e) => input("io_error", `cannot write ${file}: ${reason(e, true)}`)
  })

/** Whether two paths name the same file (the same inode when both exist, else the same absolute path). */
export const sameFile = (a: string, b: string): boolean => {
  const sa = statSync(a, { throwIfNoEntry: false })
  const sb = statSync(b, { throwIfNoEntry: false })
  return sa !== undefined && sb !== undefined ? sa.dev === sb.dev && sa.ino === sb.ino : resolve(a) === resolve(b)
}

/**
 * A usage error when an output path names one of the inputs (or another output): `--record`
 * or `-o` pointed at the program would overwrite the user's source before it is even read.
 */
export const refuseOverwrite = (
  outputs: ReadonlyArray<readonly [option: string, path: string | undefined]>,
  inputs: ReadonlyArray<readonly [what: string, path: string | undefined]>
): Effect.Effect<void, CliError> => {
  const outs = outputs.filter((o): o is readonly [string, string] => o[1] !== undefined)
  for (const [i, [option, path]] of outs.entries()) {
    for (const [what, other] of inputs) {
      if (other !== undefined && sameFile(path, other)) {
        return Effect.fail(usage(`${option} ${path} is ${what}: refusing to overwrite it`))
      }
    }
    for (const [option2, path2] of outs.slice(i + 1)) {
      if (sameFile(path, path2)) return Effect.fail(usage(`${option} and ${option2} name the same file ${path}`))
    }
  }
  return Effect.void
}

/** A file to be read by another module exists and is a file (so its errors are worded like readText's). */
export const checkReadable = (file: string, option?: string): Effect.Effect<void, CliError> =>
  Effect.tryPromise({
    try: async () => {
      if ((await stat(file)).isDirectory()) throw Object.assign(new Error("is a directory"), { code: "EISDIR" })
    },
    catch: (e) => input("io_error", `${option === undefined ? "" : `${option}: `}cannot read ${file}: ${reason(e)}`)
  })

/** Before any effect: the file can be created or replaced (its directory exists and is writable). */
export const checkWritable = (option: string, file: string): Effect.Effect<void, CliError> =>
  Effect.tryPromise({
    try: async () => {
      const st = statSync(file, { throwIfNoEntry: false })
      if (st?.isDirectory()) throw Object.assign(new Error("is a directory"), { code: "EISDIR" })
      await access(dirname(resolve(file)), constants.W_OK)
    },
    catch: (e) => input("io_error", `${option}: cannot write ${file}: ${reason(e, true)}`)
  })

/** `allow-all`, `deny-all` or a JSON policy file. */
export const loadPolicy = (arg: string): Effect.Effect<Policy, CliError> => {
  if (arg === "allow-all") return Effect.succeed(allowAll)
  if (arg === "deny-all") return Effect.succeed(denyAll)
  return Effect.flatMap(
    Effect.mapError(readText(arg), (e) =>
      e.kind === "io_error" && e.message.endsWith(": no such file")
        ? input("io_error", `${e.message} (--policy takes allow-all, deny-all or a policy JSON file)`)
        : e),
    (text) => parsePolicyFile(arg, text)
  )
}

/** Decode a policy file's text (the Schema decoder is loaded only now: shorthands never need it). */
export const parsePolicyFile = (file: string, text: string): Effect.Effect<Policy, CliError> =>
  Effect.flatMap(Effect.promise(() => import("../Policy.js")), ({ parsePolicy }) => {
    const r = parsePolicy(text, file)
    if (Either.isRight(r)) return Effect.succeed(r.right)
    const [first, ...rest] = r.left.issues.map((i) => input("invalid_policy", `${file}: ${i.path}: ${i.message}`))
    return Effect.fail(new CliError({ kind: first.kind, message: first.message, exitCode: ExitCode.input, more: rest }))
  })

export const diagnosticError = (d: Diagnostic): CliError =>
  new CliError({
    kind: d.kind,
    message: `${d.code} ${d.message}`,
    exitCode: ExitCode.input,
    location: { file: d.file, line: d.line, col: d.col },
    ...(d.suggestion ? { help: [d.suggestion] } : {})
  })

/** At most this many compile diagnostics are printed by `run`/`compile`/`replay` (`check` prints all). */
export const MAX_DIAGNOSTIC_LINES = 20

/** One CliError for a list of compile diagnostics (each printed on its own line, at most `MAX_DIAGNOSTIC_LINES`). */
export const diagnosticsError = (ds: ReadonlyArray<Diagnostic>): CliError => {
  const [first, ...rest] = ds.slice(0, MAX_DIAGNOSTIC_LINES).map(diagnosticError)
  if (first === undefined) return input("compile_error", "compilation failed")
  const hidden = ds.length - MAX_DIAGNOSTIC_LINES
  const more = hidden > 0
    ? [...rest, input("compile_error", `${hidden} more error(s) in ${first.location!.file} not shown (boruna check ${first.location!.file} lists them all)`)]
    : rest
  return new CliError({ kind: first.kind, message: first.message, exitCode: first.exitCode, location: first.location!, ...(first.help ? { help: first.help } : {}), more })
}

export const compile = (engine: Engine, file: string): Effect.Effect<Program, CliError> =>
  Effect.flatMap(readText(file), (source) => {
    const r = engine.compileSource(file, source)
    return r.ok ? Effect.succeed(r.program) : Effect.fail(diagnosticsError(r.diagnostics))
  })

export const decode = (engine: Engine, file: string): Effect.Effect<Program, CliError> =>
  Effect.flatMap(readText(file), (text) =>
    Effect.flatMap(Effect.promise(() => engine.decodeAxbc(text, file)), (r) =>
      Effect.mapError(r, (e) => input("invalid_bytecode", e.message))))

/** Compile a `.ax` file or decode a `.axbc` file; any other extension is a usage error. */
export const loadProgram = (engine: Engine, file: string): Effect.Effect<Program, CliError> =>
  file.endsWith(".ax")
    ? compile(engine, file)
    : file.endsWith(".axbc")
    ? decode(engine, file)
    : Effect.fail(usage(`unknown file extension: ${file} (expected .ax or .axbc)`))
