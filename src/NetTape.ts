/**
 * `net.fetch` tapes: record a run's HTTP exchanges once, replay them in CI with no network.
 *
 * The file is the reference's tape format, a complete JSON document:
 *
 *   { "format_version": 1,
 *     "transactions": [ { "method": "GET", "url": "https://api.example.com/users/42",
 *                         "request_body": null, "response_body": "{\"id\": 42}" } ] }
 *
 * A request is described from the `net.fetch` arguments as the live handler reads them —
 * `net.fetch(url)` is a GET with no body, `net.fetch(method, url, body)` upper-cases the method
 * and treats an empty body as none — and keyed by method + URL + SHA-256 of the body. The URL is
 * taped and keyed with its userinfo replaced by `REDACTED` (`https://REDACTED@host/`): credentials
 * never reach the file, and replay keys the program's request the same way.
 *
 * - `record(path, base)`: every `net.fetch` goes to `base`'s handler; each successful exchange is
 *   appended to the tape, and the file is rewritten (write to a temporary file, fsync, rename,
 *   fsync the directory) after every exchange, so a crash keeps every exchange completed before
 *   it. Failed calls are not taped. The tape is written (empty) before the first call, so an unwritable path fails at once.
 * - `replay(path, base)`: `net.fetch` never touches the network: a request is answered by the
 *   earliest unconsumed transaction with its key (identical requests consume separate
 *   transactions, in recorded order; requests with different keys may come in any order, e.g. from
 *   concurrent fibers). A request with no transaction left fails the call naming its key. Other
 *   capabilities go to `base`.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { syncDirectory } from "./EventLogFile.js"
import { HandlerFailure } from "./Errors.js"
import { type Handler, Handlers, type HandlersService, override } from "./Handlers.js"
import { display, type Value } from "./Value.js"
import { parseJson, schemaIssues } from "./Json.js"
import { redactUrl } from "./live/Userinfo.js"

export const FORMAT_VERSION = 1

export const Transaction = Schema.Struct({
  method: Schema.String,
  url: Schema.String,
  request_body: Schema.NullOr(Schema.String),
  response_body: Schema.String
})
export type Transaction = typeof Transaction.Type

export const TapeSchema = Schema.Struct({
  format_version: Schema.Literal(FORMAT_VERSION),
  transactions: Schema.Array(Transaction)
})
export type Tape = typeof TapeSchema.Type

export class NetTapeError extends Data.TaggedError("NetTapeError")<{
  readonly file: string
  readonly path?: string
  readonly reason: string
}> {
  override get message(): string {
    return this.path === undefined ? `tape '${this.file}': ${this.reason}` : `tape '${this.file}': ${this.path}: ${this.reason}`
  }
}

// ---------------------------------------------------------------------------------------------
// requests

export interface Request {
  readonly method: string
  readonly url: string
  readonly body: string | null
}

/**
 * The request a `net.fetch` call makes, read from its arguments the way the live handler reads them,
 * with any userinfo of the URL replaced by `REDACTED` (credentials are never taped, and the tape key
 * of a replayed call is computed the same way, so replay matches the redacted form).
 */
export const requestOf = (args: ReadonlyArray<Value>): Request | undefined => {
  if (args.length === 1) return typeof args[0] === "string" ? { method: "GET", url: redactUrl(args[0]), body: null } : undefined
  if (args.length === 2 || args.length === 3) {
    const [m, u, b] = args
    if (typeof m !== "string" || typeof u !== "string" || (b !== undefined && typeof b !== "string")) return undefined
    return { method: m.toUpperCase(), url: redactUrl(u), body: b === undefined || b === "" ? null : b }
  }
  return undefined
}

const bodyHash = (body: string | null): string =>
  body === null ? "none" : "sha256:" + createHash("sha256").update(body, "utf8").digest("hex")

/** The key a transaction is found by: method, URL and the SHA-256 of the body. */
export const keyOf = (r: Request): string => `${r.method} ${r.url} body=${bodyHash(r.body)}`

const describeRequest = (r: Request): string =>
  `${r.method} ${r.url}${r.body === null ? "" : ` with a ${Buffer.byteLength(r.body)}-byte body (${bodyHash(r.body)})`}`

// ---------------------------------------------------------------------------------------------
// files

const describeIo = (e: unknown): string => (e instanceof Error ? e.message : String(e))

const decodeTape = Schema.decodeUnknownEither(TapeSchema, { onExcessProperty: "error", errors: "all" })

/** Decode tape text (`file` names it in errors). */
export const parseTape = (text: string, file: string): Either.Either<Tape, NetTapeError> => {
  const parsed = parseJson(text)
  if (!parsed.ok) return Either.left(new NetTapeError({ file, path: parsed.where, reason: parsed.message }))
  const json = parsed.value
  if (typeof json === "object" && json !== null && "format_version" in json && json.format_version !== FORMAT_VERSION) {
    return Either.left(
      new NetTapeError({
        file,
        path: "$.format_version",
        reason: `format_version=${JSON.stringify(json.format_version)} but this build supports ${FORMAT_VERSION}`
      })
    )
  }
  return Either.mapLeft(decodeTape(json), (e) => {
    const [i] = schemaIssues(e)
    return new NetTapeError({ file, path: i.path, reason: i.message })
  })
}

/** Read a tape file. */
export const load = (file: string): Effect.Effect<Tape, NetTapeError> =>
  Effect.flatMap(
    Effect.try({
      try: () => Fs.readFileSync(file, "utf8"),
      catch: (e) => new NetTapeError({ file, reason: `failed to read: ${describeIo(e)}` })
    }),
    (text) => parseTape(text, file)
  )

/** The tape as text: pretty JSON, like the reference writes it. */
export const formatTape = (tape: Tape): string => JSON.stringify(tape, null, 2) + "\n"

/**
 * Write `tape` to `file` atomically and durably: a temporary file beside it, fsynced, renamed over
 * `file`, then the directory fsynced, so that after a power loss the name points at the new tape
 * (the rename is an entry of the directory, which only the directory's fsync puts on disk). A file
 * system that cannot fsync a directory (EINVAL, ENOTSUP), or a directory the process may rename in
 * but not open (EACCES, EPERM), keeps the rename without that last step.
 */
export const save = (file: string, tape: Tape): Either.Either<void, NetTapeError> => {
  const tmp = `${file}.tmp-${process.pid}`
  try {
    const fd = Fs.openSync(tmp, "w")
    try {
      const bytes = Buffer.from(formatTape(tape), "utf8")
      for (let at = 0; at < bytes.length;) at += Fs.writeSync(fd, bytes, at, bytes.length - at)
      Fs.fsyncSync(fd)
    } finally {
      Fs.closeSync(fd)
    }
    Fs.renameSync(tmp, file)
  } catch (e) {
    try {
      Fs.rmSync(tmp, { force: true })
    } catch {
      // the temporary file may not exist
    }
    return Either.left(new NetTapeError({ file, reason: `cannot write: ${describeIo(e)}` }))
  }
  try {
    syncDirectory(Path.dirname(file))
    return Either.void
  } catch (e) {
    return Either.left(new NetTapeError({ file, reason: `cannot fsync its directory after the rename: ${describeIo(e)}` }))
  }
}


// ---------------------------------------------------------------------------------------------
// recording

/** `net.fetch` of `base`, taping each successful exchange to `file`; other capabilities unchanged. */
export const record = (file: string, base: HandlersService): Effect.Effect<HandlersService, NetTapeError> =>
  Effect.suspend(() => {
    const transactions: Array<Transaction> = []
    const placeholder = save(file, { format_version: FORMAT_VERSION, transactions })
    if (Either.isLeft(placeholder)) return Effect.fail(placeholder.left)
    const live = base.get("net.fetch")
    const handler: Handler = (args, ctx) => {
      const run = live === undefined
        ? Effect.fail(new HandlerFailure({ message: "no net.fetch handler to record" }))
        : live(args, ctx)
      return Effect.tap(run, (result) => {
        const req = requestOf(args)
        if (req === undefined) return Effect.void // the live handler accepted arguments we cannot key: not taped
        transactions.push({
          method: req.method,
          url: req.url,
          request_body: req.body,
          response_body: typeof result === "string" ? result : display(result)
        })
        const saved = save(file, { format_version: FORMAT_VERSION, transactions })
        return Either.isLeft(saved) ? Effect.fail(new HandlerFailure({ message: `net.fetch: ${saved.left.message}` })) : Effect.void
      })
    }
    return Effect.succeed(override(base, { "net.fetch": handler }))
  })

// ---------------------------------------------------------------------------------------------
// replaying

/** `net.fetch` answered from `tape` (never the network); other capabilities from `base`. */
export const fromTape = (tape: Tape, file: string, base: HandlersService): HandlersService => {
  const queues = new Map<string, Array<{ readonly position: number; readonly tx: Transaction }>>()
  tape.transactions.forEach((tx, position) => {
    const k = keyOf({ method: tx.method.toUpperCase(), url: redactUrl(tx.url), body: tx.request_body === "" ? null : tx.request_body })
    const q = queues.get(k) ?? []
    q.push({ position, tx })
    queues.set(k, q)
  })
  let consumed = 0
  const handler: Handler = (args) =>
    Effect.suspend(() => {
      const req = requestOf(args)
      if (req === undefined) {
        return Effect.fail(
          new HandlerFailure({ message: `net.fetch replay: cannot read a request from the arguments (${args.map(display).join(", ")})` })
        )
      }
      const hit = queues.get(keyOf(req))?.shift()
      if (hit === undefined) {
        const total = tape.transactions.length
        return Effect.fail(
          new HandlerFailure({
            message: `net.fetch replay: tape '${file}' has no transaction left for ${describeRequest(req)} ` +
              `(${consumed} of ${total} transactions consumed)`
          })
        )
      }
      consumed++
      return Effect.succeed(hit.tx.response_body)
    })
  return override(base, { "net.fetch": handler })
}

/** `net.fetch` replayed from the tape in `file`; other capabilities from `base`. */
export const replay = (file: string, base: HandlersService): Effect.Effect<HandlersService, NetTapeError> =>
  Effect.map(load(file), (tape) => fromTape(tape, file, base))

/** Wrap the `Handlers` in context: record its `net.fetch` to `file`. */
export const recordLayer = (file: string): Layer.Layer<Handlers, NetTapeError, Handlers> =>
  Layer.effect(Handlers, Effect.flatMap(Handlers, (base) => record(file, base)))

/** Wrap the `Handlers` in context: answer `net.fetch` from the tape in `file`. */
export const replayLayer = (file: string): Layer.Layer<Handlers, NetTapeError, Handlers> =>
  Layer.effect(Handlers, Effect.flatMap(Handlers, (base) => replay(file, base)))
