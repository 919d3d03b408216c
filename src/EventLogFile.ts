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
import { createHash, type Hash } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { capabilitySetHash } from "./Capability.js"
import type { CallSite, Event } from "./Event.js"
import { EventLog, type EventLogService } from "./EventLog.js"
import { decodePolicy, type Policy, policyHash, policyToJson } from "./Policy.js"
import type { Value } from "./Value.js"
import { fromJson, type Json, scalarJsonText, stringifyJson, toJson, ValueJsonError } from "./ValueJson.js"
import { jsonPath, schemaIssues } from "./Json.js"

export const FORMAT = "boruna-event-log"
/** 2: with `Seal` lines (the hash chain); version 1 logs (no chain) are still read */
export const VERSION = 2
export const VERSIONS: ReadonlyArray<number> = [1, 2]

/**
 * The hash chain: a `Seal` line carries the SHA-256 of every byte of the file before it (the
 * header, the events, the earlier seals), and the number of events before it. One is written after
 * the header, one at every fsync, and a `final` one at close. Bytes are hashed once, in one
 * `update` per window.
 */
class Chain {
  private readonly hash: Hash = createHash("sha256")
  private pending = ""
  add(text: string): void {
    this.pending += text
  }
  /** the bytes `buf[start, end)`, after any text added before */
  addBytes(buf: Buffer, start: number, end: number): void {
    if (this.pending !== "") {
      this.hash.update(this.pending, "utf8")
      this.pending = ""
    }
    if (end > start) this.hash.update(buf.subarray(start, end))
  }
  digest(): string {
    if (this.pending !== "") {
      this.hash.update(this.pending, "utf8")
      this.pending = ""
    }
    return `sha256:${this.hash.copy().digest("hex")}`
  }
  seal(events: number, final = false): string {
    const digest = this.digest()
    return JSON.stringify({ Seal: final ? { events, digest, final: true } : { events, digest } })
  }
}

// ---------------------------------------------------------------------------------------------
// header

export interface LogHeader {
  readonly format: typeof FORMAT
  /** 2 for what this build writes; 1 for an older log (read without a hash chain) */
  readonly version: 1 | 2
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
  /** what the hash chain vouches for (a broken chain is an error, never a log); set by `parseLog` */
  readonly chain?: ChainStatus
}

export interface ChainStatus {
  /** false for a version 1 log, which has no chain */
  readonly chained: boolean
  /** `Seal` lines checked */
  readonly seals: number
  /** events after the last seal: written, but no seal covers them (the run did not close the log) */
  readonly unsealed: number
  /** the log ends with its final seal: the run closed it */
  readonly closed: boolean
  /** with `allowBrokenChain`: where the chain broke (later seals are not checked) */
  readonly broken?: { readonly line: number; readonly reason: string }
}

export interface ReadOptions {
  /** a torn last line is reported in `torn` instead of failing the read */
  readonly allowTorn?: boolean
  /**
   * a broken hash chain is reported in `chain.broken` instead of failing the read (for tools and
   * tests that edit logs on purpose; replay and simulate never set it)
   */
  readonly allowBrokenChain?: boolean
}

// ---------------------------------------------------------------------------------------------
// errors

/** A log that cannot be written or read; the message names the file, line and JSON path. */
export class EventLogFileError extends Data.TaggedError("EventLogFileError")<{
  readonly file: string
  readonly line?: number
  readonly path?: string
  readonly reason: string
  /** the hash chain (or the header's own policy hash) shows the file was changed after recording */
  readonly tampered?: boolean
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
    case "CapRefused": {
      const body = { capability: e.capability, args: e.args.map(toJson), kind: e.kind, message: e.message }
      return { CapRefused: e.site === undefined ? body : { ...body, site: siteJson(e.site) } }
    }
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
// stringifyJson, not JSON.stringify: V8's overflows the stack on a value nested a few thousand levels deep
export const encodeEvent = (e: Event): string => stringifyJson(eventToJson(e))

// The writer's fast forms of `encodeEvent` for the gateway's two events, byte for byte the same text
// (test/EventLogFile.test.ts checks them against `encodeEvent`): the common values and the call site
// are written directly, without building the JSON objects first.
const jsonStrings = new Map<string, string>()
const quoted = (s: string): string => {
  let q = jsonStrings.get(s)
  if (q === undefined) {
    q = JSON.stringify(s)
    if (jsonStrings.size < 4096) jsonStrings.set(s, q)
  }
  return q
}
const valueText = (v: Value): string => scalarJsonText(v) ?? jsonText(toJson(v))
/** V8's `JSON.stringify` (fast), or for a value nested too deep for it the iterative `stringifyJson` (same text) */
const jsonText = (j: Json): string => {
  try {
    return JSON.stringify(j)
  } catch (e) {
    if (e instanceof RangeError) return stringifyJson(j)
    throw e
  }
}
const argsText = (args: ReadonlyArray<Value>): string => {
  if (args.length === 0) return "[]"
  let t = "["
  for (let i = 0; i < args.length; i++) t += (i === 0 ? "" : ",") + valueText(args[i])
  return t + "]"
}
const siteText = (s: CallSite): string =>
  `{"file":${quoted(s.file)},"line":${s.line},"col":${s.col}${s.fn === undefined ? "" : `,"fn":${quoted(s.fn)}`}}`

/**
 * The text of a `CapCall` line around its arguments, per call site: a loop calls from the same few
 * sites, so the line is built once per site (and, without arguments, is the same string each time).
 */
interface CallText {
  readonly capability: string
  readonly file: string | undefined
  readonly fn: string | undefined
  readonly line: number
  readonly col: number
  /** `{"CapCall":{"capability":…,"args":` */
  readonly head: string
  /** `,"site":{…}}}` */
  readonly tail: string
  /** the whole line for no arguments */
  readonly empty: string
  /** `tail` and `empty` with the newline: what the writer writes */
  readonly tailNl: string
  readonly emptyNl: string
}
const callTexts = new Map<number, CallText>()
const noSite = new Map<string, CallText>()
const callText = (capability: string, site: CallSite | undefined): CallText => {
  if (site === undefined) {
    let t = noSite.get(capability)
    if (t === undefined) {
      const head = `{"CapCall":{"capability":${quoted(capability)},"args":`
      t = { capability, file: undefined, fn: undefined, line: 0, col: 0, head, tail: "}}", empty: `${head}[]}}`, tailNl: "}}\n", emptyNl: `${head}[]}}\n` }
      if (noSite.size < 4096) noSite.set(capability, t)
    }
    return t
  }
  const key = site.line * 65536 + (site.col & 0xffff)
  const t = callTexts.get(key)
  if (t !== undefined && t.capability === capability && t.file === site.file && t.fn === site.fn && t.line === site.line && t.col === site.col) {
    return t
  }
  const head = `{"CapCall":{"capability":${quoted(capability)},"args":`
  const tail = `,"site":${siteText(site)}}}`
  const made: CallText = {
    capability,
    file: site.file,
    fn: site.fn,
    line: site.line,
    col: site.col,
    head,
    tail,
    empty: `${head}[]${tail}`,
    tailNl: `${tail}\n`,
    emptyNl: `${head}[]${tail}\n`
  }
  if (t !== undefined || callTexts.size < 4096) callTexts.set(key, made)
  return made
}
const resultHeads = new Map<string, string>()
/** `{"CapResult":{"capability":…,"result":` */
const resultHead = (capability: string): string => {
  let h = resultHeads.get(capability)
  if (h === undefined) {
    h = `{"CapResult":{"capability":${quoted(capability)},"result":`
    if (resultHeads.size < 4096) resultHeads.set(capability, h)
  }
  return h
}

/** `encodeEvent` of a `CapCall`. */
export const encodeCall = (capability: string, args: ReadonlyArray<Value>, site: CallSite | undefined): string => {
  const t = callText(capability, site)
  return args.length === 0 ? t.empty : t.head + argsText(args) + t.tail
}

/** The JSON text of a value's JSON form (`JSON.stringify(toJson(v))`, any depth), as the lines hold it. */
export const encodeValue = (v: Value): string => valueText(v)

/** `encodeEvent` of a `CapResult`. */
export const encodeResult = (capability: string, result: Value): string => `${resultHead(capability)}${valueText(result)}}}`

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
  CapRefused: Schema.Struct({
    CapRefused: Schema.Struct({
      capability: Schema.String,
      args: Schema.Array(V),
      kind: Schema.Literal("denied", "budget_exceeded"),
      message: Schema.String,
      site: Schema.optional(SiteSchema)
    })
  }),
  UiEmit: Schema.Struct({ UiEmit: Schema.Struct({ tree: V }) }),
  ActorSpawn: Schema.Struct({ ActorSpawn: Schema.Struct({ actor_id: Nat, function: Schema.String }) }),
  MessageSend: Schema.Struct({ MessageSend: Schema.Struct({ from: Nat, to: Nat, payload: V }) }),
  MessageReceive: Schema.Struct({ MessageReceive: Schema.Struct({ actor_id: Nat, payload: V }) }),
  SchedulerTick: Schema.Struct({ SchedulerTick: Schema.Struct({ round: Nat, active_actor: Nat }) })
}
type Tag = keyof typeof Members
type EventJson = (typeof Members)[Tag]["Type"]

const EVENT_TAGS = Object.keys(Members) as ReadonlyArray<Tag>
const isTag = (k: string): k is Tag => (EVENT_TAGS as ReadonlyArray<string>).includes(k)
/** A value made on first use: decoders are compiled when a log is first read, not when a run that only writes one starts. */
const lazy = <A>(make: () => A): () => A => {
  let a: A | undefined
  return () => (a ??= make())
}
type Decoder = (u: unknown) => Either.Either<EventJson, ParseResult.ParseError>
/** one decoder per event tag, so an error names the path inside that event, not a union miss */
const decoders = new Map<Tag, Decoder>()
const decoderOf = (t: Tag): Decoder => {
  let d = decoders.get(t)
  if (d === undefined) {
    d = Schema.decodeUnknownEither(Members[t] as Schema.Schema<EventJson, EventJson>, strict)
    decoders.set(t, d)
  }
  return d
}

const HeaderSchema = Schema.Struct({
  format: Schema.Literal(FORMAT),
  version: Schema.Literal(1, 2),
  program_hash: Schema.String,
  policy_hash: Schema.String,
  capability_set_hash: Schema.String,
  source_file: Schema.String,
  created_at: Schema.String,
  policy: Schema.Unknown
})

const decodeHeaderJson = lazy(() => Schema.decodeUnknownEither(HeaderSchema, strict))

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
    readonly reason: string,
    readonly tampered = false,
    readonly line?: number
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

const siteOf = (s: typeof SiteSchema.Type): CallSite =>
  s.fn === undefined ? { file: s.file, line: s.line, col: s.col } : { file: s.file, line: s.line, col: s.col, fn: s.fn }

const fromEventJson = (j: EventJson): Event => {
  if ("CapCall" in j) {
    const c = j.CapCall
    const args = c.args.map((a, i) => value(a, `$.CapCall.args[${i}]`))
    if (c.site === undefined) return { type: "CapCall", capability: c.capability, args }
    return { type: "CapCall", capability: c.capability, args, site: siteOf(c.site) }
  }
  if ("CapRefused" in j) {
    const c = j.CapRefused
    const args = c.args.map((a, i) => value(a, `$.CapRefused.args[${i}]`))
    const base = { type: "CapRefused" as const, capability: c.capability, args, kind: c.kind, message: c.message }
    return c.site === undefined ? base : { ...base, site: siteOf(c.site) }
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
  const r = decoderOf(tag)(j)
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
  if (!VERSIONS.includes(j.version as number)) {
    throw new LineError("$.version", `unsupported event log version ${JSON.stringify(j.version) ?? "(missing)"}: this build reads versions ${VERSIONS.join(" and ")}`)
  }
  const r = decodeHeaderJson()(j)
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
    throw new LineError("$.policy_hash", `does not match the recorded policy (which hashes to ${policyHash(p.right)})`, true)
  }
  return { ...r.right, policy: p.right }
}

const SealSchema = Schema.Struct({
  Seal: Schema.Struct({ events: Nat, digest: Schema.String, final: Schema.optional(Schema.Literal(true)) })
})
const decodeSeal = lazy(() => Schema.decodeUnknownEither(SealSchema, strict))

/**
 * Decode the text of a log file. A last line without its newline is torn (the writer always ends
 * a line with one): an error, or with `allowTorn` reported in `torn` and left out of `events`.
 *
 * In a version 2 log every `Seal` must match the SHA-256 of the bytes before it and count the events
 * before it; the header must be followed by a seal, and nothing may follow the final one. Otherwise
 * the error is `tampered` and names the seal's line and the lines it covers.
 */
export const parseLog = (
  text: string,
  file: string,
  options: ReadOptions = {}
): Either.Either<RecordedLog, EventLogFileError> => {
  if (text.length === 0) return Either.left(new EventLogFileError({ file, reason: "empty event log (no header line)" }))
  const lines = text.split("\n")
  // text ends with "\n" ⇒ the last element is "" ; otherwise the last line is torn
  const last = lines.pop()!
  let torn: RecordedLog["torn"]
  if (last !== "") {
    const lineNo = lines.length + 1
    if (!options.allowTorn) {
      const before = lines.slice(1).filter((l) => !l.startsWith(`{"Seal":`)).length
      return Either.left(
        new EventLogFileError({
          file,
          line: lineNo,
          reason: `torn last line (${Buffer.byteLength(last)} bytes without a newline: the run stopped while writing it); ` +
            `the ${before} events before it are intact (replay them with --allow-torn)`
        })
      )
    }
    torn = { line: lineNo, bytes: Buffer.byteLength(last) }
  }
  if (lines.length === 0) return Either.left(new EventLogFileError({ file, line: 1, reason: "torn header line: no event was recorded" }))
  let lineNo = 1
  try {
    const header = decodeHeaderValue(parseJsonLine(lines[0]))
    const chained = header.version >= 2
    const chain = new Chain()
    chain.add(lines[0] + "\n")
    let seals = 0
    let sealedAt = 1 // the line of the last seal (1: the header)
    let sealedEvents = 0
    let closed = false
    let broken: ChainStatus["broken"]
    const events: Array<Event> = []
    for (lineNo = 2; lineNo <= lines.length; lineNo++) {
      const l = lines[lineNo - 1]
      if (l.trim() === "") throw new LineError("$", "empty line (every line after the header is one event)")
      if (closed) throw new LineError("$", "a line after the final seal: something was appended to the closed log", true)
      if (chained && l.startsWith(`{"Seal":`)) {
        const r = decodeSeal()(parseJsonLine(l))
        if (Either.isLeft(r)) {
          const i = firstIssue(r.left)
          throw new LineError(i.path, i.reason)
        }
        if (broken !== undefined) {
          seals++
          closed = r.right.Seal.final === true
          continue
        }
        const covered = sealedAt + 1 >= lineNo ? `line ${sealedAt}` : `lines ${sealedAt + 1}–${lineNo - 1}`
        const want = chain.digest()
        const problem = r.right.Seal.digest !== want
          ? new LineError(
            "$.Seal.digest",
            `hash chain broken: ${seals === 0 ? "the header" : covered} changed after recording ` +
              `(the seal was written for content hashing to ${r.right.Seal.digest}, the file now hashes to ${want})`,
            true
          )
          : r.right.Seal.events !== events.length
          ? new LineError(
            "$.Seal.events",
            `hash chain broken: the seal counts ${r.right.Seal.events} events before it, the file has ${events.length}`,
            true
          )
          : undefined
        if (problem !== undefined) {
          if (!options.allowBrokenChain) throw problem
          broken = { line: lineNo, reason: problem.reason }
          seals++
          closed = r.right.Seal.final === true
          continue
        }
        seals++
        sealedAt = lineNo
        sealedEvents = events.length
        closed = r.right.Seal.final === true
        chain.add(l + "\n")
        continue
      }
      if (chained && seals === 0) {
        throw new LineError("$", "hash chain broken: no seal after the header (the log was not written by boruna, or was changed)", true)
      }
      events.push(decodeEventValue(parseJsonLine(l)))
      chain.add(l + "\n")
    }
    if (chained && seals === 0) {
      lineNo = 1
      throw new LineError("$", "hash chain broken: no seal after the header (the log was not written by boruna, or was changed)", true)
    }
    const status: ChainStatus = broken === undefined
      ? { chained, seals, unsealed: events.length - sealedEvents, closed }
      : { chained, seals, unsealed: events.length - sealedEvents, closed, broken }
    return Either.right(torn === undefined ? { file, header, events, chain: status } : { file, header, events, torn, chain: status })
  } catch (e) {
    if (e instanceof LineError) {
      return Either.left(
        new EventLogFileError(
          e.tampered ? { file, line: lineNo, path: e.path, reason: e.reason, tampered: true } : { file, line: lineNo, path: e.path, reason: e.reason }
        )
      )
    }
    throw e
  }
}

/** Read and decode a log file. */
export const readLog = (
  file: string,
  options: ReadOptions = {}
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

/** errors that mean "this directory cannot be fsynced here", not "the data may be lost" */
const NO_DIRECTORY_SYNC: ReadonlySet<string> = new Set(["EINVAL", "ENOTSUP", "EOPNOTSUPP", "EACCES", "EPERM", "EISDIR"])

/**
 * fsync a directory: its entries (a file created or renamed in it) survive a power loss only then.
 * A file system that cannot fsync a directory (EINVAL, ENOTSUP), or a directory the process may
 * create files in but not open (EACCES, EPERM), is left as it is.
 */
export const syncDirectory = (dir: string): void => {
  let fd: number
  try {
    fd = Fs.openSync(dir, "r")
  } catch (e) {
    if (NO_DIRECTORY_SYNC.has((e as NodeJS.ErrnoException).code ?? "")) return
    throw e
  }
  try {
    Fs.fsyncSync(fd)
  } catch (e) {
    if (!NO_DIRECTORY_SYNC.has((e as NodeJS.ErrnoException).code ?? "")) throw e
  } finally {
    Fs.closeSync(fd)
  }
}

/** An open log file: `append` writes each event as it comes; `close` seals, fsyncs and closes. */
export interface LogWriter extends EventLogService {
  readonly file: string
  readonly close: () => void
  /** the first write that failed, if one did: the run must fail with it (nothing after it is recorded) */
  readonly failure: () => EventLogFileError | undefined
  /** events written to the file so far */
  readonly written: () => number
}

/** The file operations the writer uses; tests inject failures and count the syncs. */
export interface WriterIo {
  readonly open: (file: string) => number
  /** write some of `data` (UTF-8) at the end; returns how many bytes were written */
  readonly write: (fd: number, data: string | Buffer) => number
  /** optional: `write` of `buf[offset, offset + length)` without a view of it (the writer's usual write) */
  readonly writeBytes?: (fd: number, buf: Buffer, offset: number, length: number) => number
  readonly fsync: (fd: number) => void
  /**
   * optional: fsync off the JS thread (libuv's pool), for the window's syncs, so a slow disk does
   * not stall the program; the sync at open and at close is always `fsync`
   */
  readonly fsyncAsync?: (fd: number, done: (err: Error | null) => void) => void
  readonly close: (fd: number) => void
  /** optional: fsync the directory `dir` (after the file was created in it) */
  readonly syncDir?: (dir: string) => void
  /** milliseconds, monotonic */
  readonly now: () => number
}

export const nodeIo: WriterIo = {
  open: (file) => Fs.openSync(file, "w"),
  write: (fd, data) => (typeof data === "string" ? Fs.writeSync(fd, data) : Fs.writeSync(fd, data)),
  writeBytes: (fd, buf, offset, length) => Fs.writeSync(fd, buf, offset, length),
  fsync: (fd) => Fs.fsyncSync(fd),
  fsyncAsync: (fd, done) => Fs.fsync(fd, done),
  close: (fd) => Fs.closeSync(fd),
  syncDir: (dir) => syncDirectory(dir),
  now: () => performance.now()
}

/** The group-commit window: an event written to the file is fsynced at most this long after. */
export const SYNC_WINDOW_MS = 100

export interface WriterOptions {
  readonly io?: WriterIo
  /** default `SYNC_WINDOW_MS` */
  readonly syncWindowMs?: number
}

/** the writer's buffer: events are encoded into it, written from it, and hashed from it once it fills or at a seal */
const BUFFER_BYTES = 256 * 1024

/**
 * `buf.write(text, offset)` as UTF-8: Buffer's own native `utf8Write` where the runtime has it
 * (Node does), without `Buffer.prototype.write`'s argument parsing, which cost as much as the
 * encoding itself in the writer's profile (three calls per capability call).
 */
type NativeBuffer = Buffer & { readonly utf8Write: (text: string, offset: number) => number }
const hasUtf8Write = typeof (Buffer.prototype as Partial<NativeBuffer>).utf8Write === "function"

/**
 * Open `file` for writing (truncating it), write the header and its seal, fsync it and its
 * directory (so the file itself survives a power loss). Then:
 *
 * - Every event reaches the file (one `write`) before its result returns to the program: a
 *   `CapResult` / `CapError` / `CapRefused` is written before `append` returns, and so is any other
 *   event. The `CapCall` of the gateway's `appendCall` is written with its outcome in the same
 *   `write`, or on `flush()`, which the gateway calls before it runs a handler that does not answer
 *   at once (so a slow call is on record before any of its effects can happen). A process killed
 *   with SIGKILL therefore loses no event: the kernel has every written byte.
 * - Group commit: the file is fsynced (after a `Seal` line covering everything before it) at most
 *   `SYNC_WINDOW_MS` after an event was written — by an unref'd timer, which fires during a long
 *   computation too (the VM gives the event loop a turn every `DEFAULT_TURN_MS`), or, when the
 *   event loop has not turned since the window opened (a synchronous caller), by the first append
 *   once the window has passed — and at `close` / process exit. A power loss or kernel crash can
 *   lose at most the events of the last window. docs/replay.md.
 * - A write failure (disk full, …) throws an `EventLogFileError` from `append` and from every later
 *   one, after a last fsync of what was written: recording must not go on with events missing, and
 *   every event before the failed one stays in the file.
 *
 * Events are encoded (UTF-8) straight into one reused buffer and written from it, and the hash
 * chain hashes that buffer when it fills or at a seal: no string per window, one hash update per
 * buffer. The bytes hashed are exactly the bytes written.
 */
export const openWriter = (
  file: string,
  header: LogHeader,
  options: WriterOptions = {}
): Either.Either<LogWriter, EventLogFileError> => {
  const io = options.io ?? nodeIo
  const windowMs = options.syncWindowMs ?? SYNC_WINDOW_MS
  const chain = new Chain()
  let fd = -1
  try {
    fd = io.open(file)
    const head = encodeHeader(header) + "\n"
    chain.add(head)
    const seal = chain.seal(0) + "\n"
    chain.add(seal)
    writeAll(io, fd, head + seal)
    io.fsync(fd)
    // the file's name is an entry of its directory: on disk only once the directory is fsynced
    io.syncDir?.(Path.dirname(file))
  } catch (e) {
    if (fd >= 0) {
      try {
        io.close(fd)
      } catch {
        // the error that stopped the open is the one to report
      }
    }
    return Either.left(new EventLogFileError({ file, reason: `cannot write event log: ${describeIo(e)}` }))
  }
  let open = true
  let count = 0 // events written
  let line = 2 // the file's last line so far
  // buf[0, written): in the file, not yet hashed; buf[written, end): encoded, not yet written (the
  // held CapCall of appendCall, then the event being appended)
  let buf = Buffer.allocUnsafe(BUFFER_BYTES)
  let written = 0
  let end = 0
  let heldCount = 0 // events in buf[written, end): 0 or 1 (the held CapCall)
  let failed: EventLogFileError | undefined
  let dirtySince = -1 // when the first event not yet fsynced was written; -1: none
  // the event loop has had a turn since the window opened: it turns, so the window's timer will end
  // the window, and appends need not read the clock (a clock read per event is measurable)
  let turned = false
  let probe: ReturnType<typeof setImmediate> | undefined
  const onTurn = (): void => {
    probe = undefined
    turned = true
  }
  let timer: ReturnType<typeof setTimeout> | undefined

  /** Room for `bytes` more at `end`: hash what is written, move what is not to the front, or grow. */
  const room = (bytes: number): void => {
    if (buf.length - end >= bytes) return
    chain.addBytes(buf, 0, written)
    const pending = end - written
    if (pending + bytes <= BUFFER_BYTES && buf.length === BUFFER_BYTES) {
      buf.copyWithin(0, written, end)
    } else {
      const next = Buffer.allocUnsafe(Math.max(BUFFER_BYTES, pending + bytes))
      buf.copy(next, 0, written, end)
      buf = next
    }
    written = 0
    end = pending
  }
  /** Encode `text` (UTF-8) at `end`. */
  const encode = (text: string): void => {
    // a UTF-16 code unit is at most 3 bytes of UTF-8; a long text is measured instead
    room(text.length <= 16384 ? text.length * 3 : Buffer.byteLength(text, "utf8"))
    end += hasUtf8Write ? (buf as NativeBuffer).utf8Write(text, end) : buf.write(text, end, "utf8")
  }

  const fail = (err: unknown, what: string): never => {
    failed = new EventLogFileError({ file, line: line + 1, reason: `cannot write event (${what}): ${describeIo(err)}; the ${count} events before it are recorded` })
    end = written
    heldCount = 0
    try {
      io.fsync(fd)
    } catch {
      // the write already failed; that is the error to report
    }
    throw failed
  }

  /** Write `buf[written, end)` (`events` events) in one write. */
  const commit = (events: number, what: string): void => {
    if (end === written) return
    try {
      writeBytes(io, fd, buf, written, end)
    } catch (e) {
      fail(e, what)
    }
    written = end
    heldCount = 0
    count += events
    line += events
    if (dirtySince < 0) {
      dirtySince = io.now()
      timer = setTimeout(onTimer, windowMs)
      timer.unref?.()
      turned = false
      probe = setImmediate(onTurn)
      probe.unref?.()
    } else if (!turned && io.now() - dirtySince >= windowMs) {
      // nothing has yielded since the window opened (a synchronous caller): its timer cannot fire
      sync()
    }
  }

  /** A seal covering every byte before it: hash what is written, then write the seal line. */
  const writeSeal = (final: boolean): void => {
    chain.addBytes(buf, 0, written)
    written = 0
    end = 0
    if (buf.length !== BUFFER_BYTES) buf = Buffer.allocUnsafe(BUFFER_BYTES)
    encode(chain.seal(count, final) + "\n")
    writeBytes(io, fd, buf, 0, end)
    written = end
  }

  const sync = (): void => {
    if (timer !== undefined) {
      clearTimeout(timer)
      timer = undefined
    }
    if (probe !== undefined) {
      clearImmediate(probe)
      probe = undefined
    }
    if (!open || failed !== undefined) return
    try {
      if (heldCount > 0) commit(heldCount, "CapCall")
      if (dirtySince < 0) return
      writeSeal(false)
      line++
      dirtySince = -1
      startSync()
    } catch (e) {
      if (e instanceof EventLogFileError) throw e
      fail(e, "fsync")
    }
  }
  let inflight = false
  let again = false
  /** fsync now: off the JS thread when the io can (one at a time; a request meanwhile runs after it) */
  const startSync = (): void => {
    const async = io.fsyncAsync
    if (async === undefined) return io.fsync(fd)
    if (inflight) {
      again = true
      return
    }
    inflight = true
    async(fd, (err) => {
      inflight = false
      if (!open) return
      if (err !== null && failed === undefined) {
        failed = new EventLogFileError({ file, reason: `cannot fsync the event log: ${describeIo(err)}; the ${count} events written before are in the file` })
      }
      if (again) {
        again = false
        startSync()
      }
    })
  }
  const onTimer = (): void => {
    timer = undefined
    try {
      sync()
    } catch {
      // kept in `failed`: the next append (or close) fails the run with it
    }
  }

  const guard = (what: string): void => {
    if (failed !== undefined) throw failed
    if (!open) throw new EventLogFileError({ file, reason: `event appended after the log was closed (${what})` })
  }

  const append = (e: Event): void => {
    guard(e.type)
    encode(encodeEvent(e) + "\n")
    commit(heldCount + 1, e.type)
  }
  const appendCall = (capability: string, args: ReadonlyArray<Value>, site: CallSite | undefined): void => {
    guard("CapCall")
    if (heldCount > 0) commit(heldCount, "CapCall")
    const t = callText(capability, site)
    if (args.length === 0) encode(t.emptyNl)
    else {
      encode(t.head)
      encode(argsText(args))
      encode(t.tailNl)
    }
    heldCount = 1
  }
  const appendResult = (capability: string, result: Value): void => {
    guard("CapResult")
    encode(resultHead(capability))
    encode(typeof result === "number" ? `{"Int":${result}}}}\n` : `${valueText(result)}}}\n`)
    commit(heldCount + 1, "CapResult")
  }
  const flush = (): void => {
    if (heldCount > 0 && failed === undefined && open) commit(heldCount, "CapCall")
  }

  const onExit = (): void => close()
  process.on("exit", onExit)

  function close(): void {
    if (!open) return
    process.removeListener("exit", onExit)
    try {
      if (failed === undefined) {
        if (heldCount > 0) commit(heldCount, "CapCall")
        // the final seal covers everything: one write and one fsync at close
        writeSeal(true)
        io.fsync(fd)
      }
    } catch (e) {
      if (failed === undefined) {
        failed = new EventLogFileError({ file, reason: `cannot close event log: ${describeIo(e)}` })
      }
    } finally {
      open = false
      if (timer !== undefined) clearTimeout(timer)
      if (probe !== undefined) clearImmediate(probe)
      io.close(fd)
    }
  }

  return Either.right({
    file,
    append,
    appendCall,
    appendResult,
    flush,
    // not kept in memory (retaining every event was most of a long recorded run's GC): read back
    events: () => {
      flush()
      const r = parseLog(Fs.readFileSync(file, "utf8"), file, { allowTorn: true })
      return Either.isRight(r) ? r.right.events : []
    },
    close,
    failure: () => failed,
    written: () => count
  })
}

/** Write all of `text`, resuming after a short write. */
const writeAll = (io: WriterIo, fd: number, text: string): void => {
  const n = io.write(fd, text)
  const total = Buffer.byteLength(text, "utf8")
  if (n >= total) return
  if (n <= 0) throw new Error(`write returned ${n}`)
  resume(io, fd, Buffer.from(text, "utf8").subarray(n))
}

/** Write all of `buf[start, end)`, resuming after a short write. */
const writeBytes = (io: WriterIo, fd: number, buf: Buffer, start: number, end: number): void => {
  const n = io.writeBytes === undefined ? io.write(fd, buf.subarray(start, end)) : io.writeBytes(fd, buf, start, end - start)
  if (n >= end - start) return
  if (n <= 0) throw new Error(`write returned ${n}`)
  resume(io, fd, buf.subarray(start + n, end))
}

const resume = (io: WriterIo, fd: number, rest: Buffer): void => {
  let bytes = rest
  for (;;) {
    const m = io.write(fd, bytes)
    if (m >= bytes.length) return
    if (m <= 0) throw new Error(`write returned ${m}`)
    bytes = bytes.subarray(m)
  }
}

/**
 * An `EventLog` recorded to `file` as the run goes (for `boruna run --record`). Scoped: the file
 * is opened and the header written when the layer is built, and sealed and closed when it is released.
 */
export const fileLayer = (file: string, header: LogHeader, options: WriterOptions = {}): Layer.Layer<EventLog, EventLogFileError> =>
  Layer.scoped(
    EventLog,
    Effect.acquireRelease(openWriter(file, header, options), (w) => Effect.sync(() => w.close()))
  )

/** Write a whole log at once (tests, tools that edit logs). */
export const writeLog = (file: string, header: LogHeader, events: ReadonlyArray<Event>): Either.Either<void, EventLogFileError> =>
  Either.flatMap(openWriter(file, header), (w) => {
    try {
      for (const e of events) w.append(e)
      w.close()
      const f = w.failure()
      return f === undefined ? Either.void : Either.left(f)
    } catch (e) {
      w.close()
      if (e instanceof EventLogFileError) return Either.left(e)
      throw e
    }
  })

/**
 * The whole log as text, exactly as the writer writes it when every event comes in one window:
 * the header line, its seal, one line per event, and the final seal.
 */
export const formatLog = (header: LogHeader, events: ReadonlyArray<Event>): string => {
  const chain = new Chain()
  let text = ""
  const add = (l: string): void => {
    chain.add(l)
    text += l
  }
  add(encodeHeader(header) + "\n")
  add(chain.seal(0) + "\n")
  if (events.length > 0) add(events.map((e) => encodeEvent(e) + "\n").join(""))
  return text + chain.seal(events.length, true) + "\n"
}
