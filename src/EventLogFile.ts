/**
 * The event log on disk: a versioned JSON Lines file, written incrementally and Schema-decoded.
 *
 *   {"format":"boruna-event-log","version":1,"program_hash":"sha256:…","policy_hash":"sha256:…",…}
 *   {"CapCall":{"capability":"net.fetch","args":[{"String":"https://example.com/"}],"site":{…}}}
 *   {"CapResult":{"capability":"net.fetch","result":{"String":"…"}}}
 *
 * Line 1 is the header: format name and version, the program hash, the policy (and its hash), the
 * `capability_set_hash`, the source file and the creation time (informational: no hash covers it).
 * Every further line is one event, externally tagged like the reference's log, with values in the
 * exact JSON form of `ValueJson.ts` (Ints beyond 2^53 as strings, non-finite floats, typed records
 * and enums, maps).
 *
 * Crash safety: each event is written with one `write` as soon as it is appended, and the file is
 * fsynced after every `CapResult` / `CapError` (and after the header), so a crash keeps every event
 * recorded before it. A crash in the middle of a write leaves a last line without its newline: the
 * reader reports that torn line (file:line) as an error, or — with `allowTorn` — returns the
 * complete events and says where the torn line was. It is never dropped silently.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import { capabilitySetHash } from "./Capability.js"
import type { CallSite, Event } from "./Event.js"
import { EventLog, type EventLogService } from "./EventLog.js"
import { decodePolicy, type Policy, policyHash, policyToJson } from "./Policy.js"
import type { Value } from "./Value.js"
import { fromJson, type Json, toJson, ValueJsonError } from "./ValueJson.js"
import { jsonPath, schemaIssues } from "./Json.js"

export const FORMAT = "boruna-event-log"
export const VERSION = 1

// ---------------------------------------------------------------------------------------------
// header

export interface LogHeader {
  readonly format: typeof FORMAT
  readonly version: typeof VERSION
  /** `programHash(program)` of the recorded program */
  readonly program_hash: string
  /** `policyHash(policy)` of the policy the run was under */
  readonly policy_hash: string
  /** the policy itself (defaults filled), so a replay can enforce exactly what the run enforced */
  readonly policy: Policy
  /** `capabilitySetHash()` of the build that recorded the run */
  readonly capability_set_hash: string
  /** the source (or `.axbc`) file, as given on the command line; informational */
  readonly source_file: string
  /** ISO-8601; informational, never part of any hash or comparison */
  readonly created_at: string
}

/** A header for a run of the program with hash `programHash` under `policy`. */
export const makeHeader = (options: {
  readonly programHash: string
  readonly policy: Policy
  readonly sourceFile: string
  readonly createdAt?: Date
}): LogHeader => ({
  format: FORMAT,
  version: VERSION,
  program_hash: options.programHash,
  policy_hash: policyHash(options.policy),
  policy: options.policy,
  capability_set_hash: capabilitySetHash(),
  source_file: options.sourceFile,
  created_at: (options.createdAt ?? new Date()).toISOString()
})

/** A log read back: its header, its events, and where a torn last line was (if `allowTorn`). */
export interface RecordedLog {
  readonly file: string
  readonly header: LogHeader
  readonly events: ReadonlyArray<Event>
  /** set when the last line was torn (a crash mid-write) and the reader was told to allow it */
  readonly torn?: { readonly line: number; readonly bytes: number }
}

// ---------------------------------------------------------------------------------------------
// errors

/** A log that cannot be written or read; the message names the file, line and JSON path. */
export class EventLogFileError extends Data.TaggedError("EventLogFileError")<{
  readonly file: string
  readonly line?: number
  readonly path?: string
  readonly reason: string
}> {
  override get message(): string {
    const where = this.line === undefined ? this.file : `${this.file}:${this.line}`
    return this.path === undefined ? `${where}: ${this.reason}` : `${where}: ${this.path}: ${this.reason}`
  }
}

// ---------------------------------------------------------------------------------------------
// encoding

const siteJson = (s: CallSite): Json =>
  s.fn === undefined ? { file: s.file, line: s.line, col: s.col } : { file: s.file, line: s.line, col: s.col, fn: s.fn }

/** The JSON form of one event (one line of the file). */
export const eventToJson = (e: Event): Json => {
  switch (e.type) {
    case "CapCall":
      return {
        CapCall: e.site === undefined
          ? { capability: e.capability, args: e.args.map(toJson) }
          : { capability: e.capability, args: e.args.map(toJson), site: siteJson(e.site) }
      }
    case "CapResult":
      return { CapResult: { capability: e.capability, result: toJson(e.result) } }
    case "CapError":
      return { CapError: { capability: e.capability, kind: e.kind, message: e.message } }
    case "UiEmit":
      return { UiEmit: { tree: toJson(e.tree) } }
    case "ActorSpawn":
      return { ActorSpawn: { actor_id: e.actorId, function: e.function } }
    case "MessageSend":
      return { MessageSend: { from: e.from, to: e.to, payload: toJson(e.payload) } }
    case "MessageReceive":
      return { MessageReceive: { actor_id: e.actorId, payload: toJson(e.payload) } }
    case "SchedulerTick":
      return { SchedulerTick: { round: e.round, active_actor: e.activeActor } }
  }
}

/** One line of the file, without its newline. */
export const encodeEvent = (e: Event): string => JSON.stringify(eventToJson(e))

/** The header line, without its newline. */
export const encodeHeader = (h: LogHeader): string =>
  JSON.stringify({
    format: h.format,
    version: h.version,
    program_hash: h.program_hash,
    policy_hash: h.policy_hash,
    capability_set_hash: h.capability_set_hash,
    source_file: h.source_file,
    created_at: h.created_at,
    policy: policyToJson(h.policy)
  })

// ---------------------------------------------------------------------------------------------
// decoding (Schema for the structure, ValueJson for the values inside it)

const strict = { onExcessProperty: "error", errors: "all" } as const
const Nat = Schema.Int.pipe(Schema.nonNegative())

const SiteSchema = Schema.Struct({ file: Schema.String, line: Nat, col: Nat, fn: Schema.optional(Schema.String) })

/** A value slot: any JSON here; `ValueJson.fromJson` decodes it (with its own JSON path). */
const V = Schema.Unknown

const Members = {
  CapCall: Schema.Struct({
    CapCall: Schema.Struct({ capability: Schema.String, args: Schema.Array(V), site: Schema.optional(SiteSchema) })
  }),
  CapResult: Schema.Struct({ CapResult: Schema.Struct({ capability: Schema.String, result: V }) }),
  CapError: Schema.Struct({ CapError: Schema.Struct({ capability: Schema.String, kind: Schema.String, message: Schema.String }) }),
  UiEmit: Schema.Struct({ UiEmit: Schema.Struct({ tree: V }) }),
  ActorSpawn: Schema.Struct({ ActorSpawn: Schema.Struct({ actor_id: Nat, function: Schema.String }) }),
  MessageSend: Schema.Struct({ MessageSend: Schema.Struct({ from: Nat, to: Nat, payload: V }) }),
  MessageReceive: Schema.Struct({ MessageReceive: Schema.Struct({ actor_id: Nat, payload: V }) }),
  SchedulerTick: Schema.Struct({ SchedulerTick: Schema.Struct({ round: Nat, active_actor: Nat }) })
}
const EventSchema = Schema.Union(...Object.values(Members))
type EventJson = typeof EventSchema.Type
type Tag = keyof typeof Members

const EVENT_TAGS = Object.keys(Members) as ReadonlyArray<Tag>
const isTag = (k: string): k is Tag => (EVENT_TAGS as ReadonlyArray<string>).includes(k)
/** one decoder per event tag, so an error names the path inside that event, not a union miss */
const decoders = Object.fromEntries(
  EVENT_TAGS.map((t) => [t, Schema.decodeUnknownEither(Members[t] as Schema.Schema<EventJson, EventJson>, strict)])
) as Record<Tag, (u: unknown) => Either.Either<EventJson, ParseResult.ParseError>>

const HeaderSchema = Schema.Struct({
  format: Schema.Literal(FORMAT),
  version: Schema.Literal(VERSION),
  program_hash: Schema.String,
  policy_hash: Schema.String,
  capability_set_hash: Schema.String,
  source_file: Schema.String,
  created_at: Schema.String,
  policy: Schema.Unknown
})

const decodeHeaderJson = Schema.decodeUnknownEither(HeaderSchema, strict)

interface Issue {
  readonly path: string
  readonly reason: string
}

const firstIssue = (e: ParseResult.ParseError): Issue => {
  const [i] = schemaIssues(e)
  return { path: i.path, reason: i.message }
}

class LineError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string
  ) {
    super(reason)
  }
}

const value = (j: unknown, path: string): Value => {
  try {
    return fromJson(j, path)
  } catch (e) {
    if (e instanceof ValueJsonError) throw new LineError(e.path, e.reason)
    throw e
  }
}

const fromEventJson = (j: EventJson): Event => {
  if ("CapCall" in j) {
    const c = j.CapCall
    const args = c.args.map((a, i) => value(a, `$.CapCall.args[${i}]`))
    if (c.site === undefined) return { type: "CapCall", capability: c.capability, args }
    const site: CallSite = c.site.fn === undefined
      ? { file: c.site.file, line: c.site.line, col: c.site.col }
      : { file: c.site.file, line: c.site.line, col: c.site.col, fn: c.site.fn }
    return { type: "CapCall", capability: c.capability, args, site }
  }
  if ("CapResult" in j) return { type: "CapResult", capability: j.CapResult.capability, result: value(j.CapResult.result, "$.CapResult.result") }
  if ("CapError" in j) return { type: "CapError", ...j.CapError }
  if ("UiEmit" in j) return { type: "UiEmit", tree: value(j.UiEmit.tree, "$.UiEmit.tree") }
  if ("ActorSpawn" in j) return { type: "ActorSpawn", actorId: j.ActorSpawn.actor_id, function: j.ActorSpawn.function }
  if ("MessageSend" in j) {
    return { type: "MessageSend", from: j.MessageSend.from, to: j.MessageSend.to, payload: value(j.MessageSend.payload, "$.MessageSend.payload") }
  }
  if ("MessageReceive" in j) {
    return { type: "MessageReceive", actorId: j.MessageReceive.actor_id, payload: value(j.MessageReceive.payload, "$.MessageReceive.payload") }
  }
  return { type: "SchedulerTick", round: j.SchedulerTick.round, activeActor: j.SchedulerTick.active_actor }
}

const isObj = (j: unknown): j is Record<string, unknown> => typeof j === "object" && j !== null && !Array.isArray(j)

/** Decode one event line's JSON; throws `LineError` naming the JSON path. */
const decodeEventValue = (j: unknown): Event => {
  // name the tag problem directly rather than as eight failed union members
  if (!isObj(j)) throw new LineError("$", "expected an event object such as {\"CapCall\": {…}}")
  const keys = Object.keys(j)
  if (keys.length !== 1) throw new LineError("$", `an event has exactly one key (one of ${EVENT_TAGS.join(", ")}), got ${keys.length}`)
  const tag = keys[0]
  if (!isTag(tag)) throw new LineError(jsonPath([tag]), `unknown event '${tag}' (known: ${EVENT_TAGS.join(", ")})`)
  const r = decoders[tag](j)
  if (Either.isLeft(r)) {
    const i = firstIssue(r.left)
    throw new LineError(i.path, i.reason)
  }
  return fromEventJson(r.right)
}

const parseJsonLine = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch (e) {
    throw new LineError("$", `invalid JSON: ${e instanceof Error ? e.message : String(e)}`)
  }
}

/** Decode one event line (the text of a line, without its newline). */
export const decodeEvent = (text: string, file = "event", line = 1): Either.Either<Event, EventLogFileError> => {
  try {
    return Either.right(decodeEventValue(parseJsonLine(text)))
  } catch (e) {
    if (e instanceof LineError) return Either.left(new EventLogFileError({ file, line, path: e.path, reason: e.reason }))
    throw e
  }
}

const decodeHeaderValue = (j: unknown): LogHeader => {
  if (!isObj(j)) throw new LineError("$", "expected the log header object")
  if (j.format !== FORMAT) {
    throw new LineError("$.format", `not a boruna event log (expected format "${FORMAT}", got ${JSON.stringify(j.format) ?? "nothing"})`)
  }
  if (j.version !== VERSION) {
    throw new LineError("$.version", `unsupported event log version ${JSON.stringify(j.version) ?? "(missing)"}: this build reads version ${VERSION}`)
  }
  const r = decodeHeaderJson(j)
  if (Either.isLeft(r)) {
    const i = firstIssue(r.left)
    throw new LineError(i.path, i.reason)
  }
  const p = decodePolicy(r.right.policy, "policy")
  if (Either.isLeft(p)) {
    const i = p.left.issues[0]
    throw new LineError(`$.policy${(i?.path ?? "$").slice(1)}`, i?.message ?? "invalid policy")
  }
  if (policyHash(p.right) !== r.right.policy_hash) {
    throw new LineError("$.policy_hash", `does not match the recorded policy (which hashes to ${policyHash(p.right)})`)
  }
  return { ...r.right, policy: p.right }
}

/**
 * Decode the text of a log file. A last line without its newline is torn (the writer always ends
 * a line with one): an error, or with `allowTorn` reported in `torn` and left out of `events`.
 */
export const parseLog = (
  text: string,
  file: string,
  options: { readonly allowTorn?: boolean } = {}
): Either.Either<RecordedLog, EventLogFileError> => {
  if (text.length === 0) return Either.left(new EventLogFileError({ file, reason: "empty event log (no header line)" }))
  const lines = text.split("\n")
  // text ends with "\n" ⇒ the last element is "" ; otherwise the last line is torn
  const last = lines.pop()!
  let torn: RecordedLog["torn"]
  if (last !== "") {
    const lineNo = lines.length + 1
    if (!options.allowTorn) {
      return Either.left(
        new EventLogFileError({
          file,
          line: lineNo,
          reason: `torn last line (${Buffer.byteLength(last)} bytes without a newline: the run stopped while writing it); ` +
            `the ${Math.max(0, lines.length - 1)} events before it are intact (replay them with --allow-torn)`
        })
      )
    }
    torn = { line: lineNo, bytes: Buffer.byteLength(last) }
  }
  if (lines.length === 0) return Either.left(new EventLogFileError({ file, line: 1, reason: "torn header line: no event was recorded" }))
  let lineNo = 1
  try {
    const header = decodeHeaderValue(parseJsonLine(lines[0]))
    const events: Array<Event> = []
    for (lineNo = 2; lineNo <= lines.length; lineNo++) {
      const l = lines[lineNo - 1]
      if (l.trim() === "") throw new LineError("$", "empty line (every line after the header is one event)")
      events.push(decodeEventValue(parseJsonLine(l)))
    }
    return Either.right(torn === undefined ? { file, header, events } : { file, header, events, torn })
  } catch (e) {
    if (e instanceof LineError) return Either.left(new EventLogFileError({ file, line: lineNo, path: e.path, reason: e.reason }))
    throw e
  }
}

/** Read and decode a log file. */
export const readLog = (
  file: string,
  options: { readonly allowTorn?: boolean } = {}
): Effect.Effect<RecordedLog, EventLogFileError> =>
  Effect.flatMap(
    Effect.try({
      try: () => Fs.readFileSync(file, "utf8"),
      catch: (e) => new EventLogFileError({ file, reason: `cannot read: ${describeIo(e)}` })
    }),
    (text) => parseLog(text, file, options)
  )

// ---------------------------------------------------------------------------------------------
// writing

const describeIo = (e: unknown): string => {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code
    return code === undefined ? e.message : `${code}: ${e.message.replace(/^[A-Z]+: /, "")}`
  }
  return String(e)
}

/** An open log file: `append` writes each event as it comes; `close` fsyncs and closes. */
export interface LogWriter extends EventLogService {
  readonly file: string
  readonly close: () => void
}

/**
 * Open `file` for writing (truncating it), write the header and fsync. Each `append` writes one
 * line at once; a `CapResult` or `CapError` is fsynced before `append` returns. A write failure
 * (disk full, …) throws an `EventLogFileError`: recording must not go on with events missing.
 */
export const openWriter = (file: string, header: LogHeader): Either.Either<LogWriter, EventLogFileError> => {
  let fd: number
  try {
    fd = Fs.openSync(file, "w")
    Fs.writeSync(fd, encodeHeader(header) + "\n")
    Fs.fsyncSync(fd)
  } catch (e) {
    return Either.left(new EventLogFileError({ file, reason: `cannot write event log: ${describeIo(e)}` }))
  }
  const events: Array<Event> = []
  let open = true
  const append = (e: Event): void => {
    events.push(e)
    if (!open) throw new EventLogFileError({ file, reason: `event appended after the log was closed (${e.type})` })
    try {
      Fs.writeSync(fd, encodeEvent(e) + "\n")
      if (e.type === "CapResult" || e.type === "CapError") Fs.fsyncSync(fd)
    } catch (err) {
      throw new EventLogFileError({ file, line: events.length + 1, reason: `cannot write event: ${describeIo(err)}` })
    }
  }
  const close = (): void => {
    if (!open) return
    open = false
    try {
      Fs.fsyncSync(fd)
    } finally {
      Fs.closeSync(fd)
    }
  }
  return Either.right({ file, append, events: () => events, close })
}

/**
 * An `EventLog` recorded to `file` as the run goes (for `boruna run --record`). Scoped: the file
 * is opened and the header written when the layer is built, and closed when it is released.
 */
export const fileLayer = (file: string, header: LogHeader): Layer.Layer<EventLog, EventLogFileError> =>
  Layer.scoped(
    EventLog,
    Effect.acquireRelease(openWriter(file, header), (w) => Effect.sync(() => w.close()))
  )

/** Write a whole log at once (tests, tools that edit logs). */
export const writeLog = (file: string, header: LogHeader, events: ReadonlyArray<Event>): Either.Either<void, EventLogFileError> =>
  Either.flatMap(openWriter(file, header), (w) => {
    try {
      for (const e of events) w.append(e)
      w.close()
      return Either.void
    } catch (e) {
      w.close()
      if (e instanceof EventLogFileError) return Either.left(e)
      throw e
    }
  })

/** The whole log as text (header line, then one line per event, each ending with a newline). */
export const formatLog = (header: LogHeader, events: ReadonlyArray<Event>): string =>
  [encodeHeader(header), ...events.map(encodeEvent)].join("\n") + "\n"
