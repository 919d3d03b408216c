/**
 * The audit chain (format 1.1): a hash-chained list of what happened in a run.
 *
 *   { sequence, prev_hash, content_sha256, event, [redacted], entry_hash }
 *
 * `content_sha256 = hex(SHA-256(canonical JSON of event))`;
 * `entry_hash = hex(SHA-256(u64_le(sequence) ‖ prev_hash ‖ content_sha256))` (the hashes as their
 * ASCII hex); `prev_hash` of entry 0 is 64 zeros, and the chain's head is the last `entry_hash`.
 *
 * The chain is a **pure projection** of the run record (`project`): computed once the run has ended
 * (or whenever evidence is made), never appended while calls happen, so a run resumed after a crash
 * or replayed can never add an entry twice, and the same record always gives the same chain.
 *
 * Redaction (`redact`) blanks string leaves of one entry's event to `"[REDACTED]"` and keeps its
 * `content_sha256`, recording the commitment again in `redacted: {content_sha256, reason, fields}`;
 * `verify` then checks that entry by its commitment instead of its (no longer original) content, so
 * the chain still verifies. What a redacted entry says is no longer covered by its hash: `verify`
 * reports every redacted entry so no reader mistakes it for checked content.
 */
import * as Either from "effect/Either"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { ApprovalRecord, AttemptRecord, CallRecord, RunRecord, StepRecord } from "./EvidenceRecord.js"
import { inputsHash, sha256Hex, sha256Tagged } from "./EvidenceRecord.js"
import { schemaIssues } from "./Json.js"
import { policyHash } from "./Policy.js"
import { canonicalJson } from "./ValueJson.js"

export const FORMAT_VERSION = "1.1"
export const ZERO_HASH = "0".repeat(64)
export const REDACTED = "[REDACTED]"

// ---------------------------------------------------------------------------------------------
// events (externally tagged, as the reference writes them)

const NullableString = Schema.NullOr(Schema.String)
const Nat = Schema.Int.pipe(Schema.nonNegative())

const Bodies = {
  WorkflowStarted: Schema.Struct({
    run_id: Schema.String,
    workflow_name: Schema.String,
    workflow_hash: Schema.String,
    /** sha256 of workflow.json's bytes */
    workflow_file_sha256: Schema.String,
    policy_hash: Schema.String,
    inputs_hash: Schema.String,
    started_at: Schema.String
  }),
  StepStarted: Schema.Struct({
    step_id: Schema.String,
    attempt: Nat,
    kind: Schema.String,
    input_hash: Schema.String,
    /** sha256 of the step source's bytes (source steps) */
    source_sha256: NullableString,
    program_hash: NullableString,
    policy_hash: NullableString,
    started_at: NullableString
  }),
  CapabilityInvoked: Schema.Struct({
    step_id: Schema.String,
    attempt: Nat,
    sequence: Nat,
    capability: Schema.String,
    args_digest: Schema.String,
    decision: Schema.String,
    result_digest: NullableString,
    reexecuted: Schema.Boolean,
    started_at: NullableString,
    ended_at: NullableString
  }),
  ApprovalRequested: Schema.Struct({
    step_id: Schema.String,
    kind: Schema.String,
    digest: Schema.String,
    role: NullableString,
    attempt: Schema.NullOr(Nat),
    sequence: Schema.NullOr(Nat),
    capability: NullableString,
    /** a readable rendering of the call's arguments */
    rendering: NullableString,
    requested_at: NullableString
  }),
  ApprovalGranted: Schema.Struct({
    step_id: Schema.String,
    digest: Schema.String,
    approver: Schema.String,
    decided_at: NullableString
  }),
  ApprovalDenied: Schema.Struct({
    step_id: Schema.String,
    digest: Schema.String,
    approver: Schema.String,
    reason: NullableString,
    decided_at: NullableString
  }),
  ExternalTriggerReceived: Schema.Struct({
    step_id: Schema.String,
    payload_hash: Schema.String,
    received_at: NullableString
  }),
  StepCompleted: Schema.Struct({
    step_id: Schema.String,
    attempt: Nat,
    output_hash: Schema.String,
    duration_ms: Schema.NullOr(Nat)
  }),
  StepFailed: Schema.Struct({
    step_id: Schema.String,
    attempt: Nat,
    error: Schema.String
  }),
  WorkflowCompleted: Schema.Struct({
    status: Schema.String,
    /** digest of the map step id → output hash of the completed steps */
    result_hash: Schema.String,
    total_duration_ms: Schema.NullOr(Nat),
    ended_at: NullableString
  })
}

export type EventTag = keyof typeof Bodies
export const EVENT_TAGS = Object.keys(Bodies) as ReadonlyArray<EventTag>
type Bodies = { [K in EventTag]: typeof Bodies[K]["Type"] }

/** One audit event: `{ "<Tag>": { …fields } }`. */
export type AuditEvent = { [K in EventTag]: { readonly [P in K]: Bodies[K] } }[EventTag]

export const eventTag = (e: AuditEvent): EventTag => Object.keys(e)[0] as EventTag
export const eventBody = (e: AuditEvent): Record<string, unknown> => (e as unknown as Record<string, Record<string, unknown>>)[eventTag(e)]

export interface Redaction {
  readonly content_sha256: string
  readonly reason: string
  /** the paths (inside the event body) whose strings were blanked */
  readonly fields: ReadonlyArray<string>
}

export interface Entry {
  readonly sequence: number
  readonly prev_hash: string
  readonly content_sha256: string
  readonly event: AuditEvent
  readonly redacted?: Redaction | undefined
  readonly entry_hash: string
}

// ---------------------------------------------------------------------------------------------
// hashing

export const contentHash = (event: AuditEvent): string => sha256Hex(canonicalJson(event))

const u64le = (n: number): Buffer => {
  const b = Buffer.alloc(8)
  b.writeBigUInt64LE(BigInt(n))
  return b
}

export const entryHash = (sequence: number, prevHash: string, content: string): string =>
  sha256Hex(Buffer.concat([u64le(sequence), Buffer.from(prevHash, "ascii"), Buffer.from(content, "ascii")]))

/** Chain a list of events. */
export const chain = (events: ReadonlyArray<AuditEvent>): ReadonlyArray<Entry> => {
  const out: Array<Entry> = []
  let prev = ZERO_HASH
  events.forEach((event, sequence) => {
    const content = contentHash(event)
    const h = entryHash(sequence, prev, content)
    out.push({ sequence, prev_hash: prev, content_sha256: content, event, entry_hash: h })
    prev = h
  })
  return out
}

/** The chain's head: the last entry's hash (64 zeros when empty). */
export const head = (entries: ReadonlyArray<Entry>): string => entries.length === 0 ? ZERO_HASH : entries[entries.length - 1].entry_hash

// ---------------------------------------------------------------------------------------------
// the projection of a run record

const ms = (a: string | undefined, b: string | undefined): number | null => {
  if (a === undefined || b === undefined) return null
  const d = Date.parse(b) - Date.parse(a)
  return Number.isFinite(d) && d >= 0 ? Math.round(d) : null
}

const approvalEvents = (a: ApprovalRecord): ReadonlyArray<AuditEvent> => {
  const requested: AuditEvent = {
    ApprovalRequested: {
      step_id: a.stepId,
      kind: a.kind,
      digest: a.digest,
      role: a.role ?? null,
      attempt: a.attempt ?? null,
      sequence: a.seq ?? null,
      capability: a.capability ?? null,
      rendering: a.rendering ?? null,
      requested_at: a.requestedAt ?? null
    }
  }
  if (a.decision === "granted") {
    return [requested, { ApprovalGranted: { step_id: a.stepId, digest: a.digest, approver: a.approver ?? "", decided_at: a.decidedAt ?? null } }]
  }
  if (a.decision === "denied") {
    return [requested, {
      ApprovalDenied: { step_id: a.stepId, digest: a.digest, approver: a.approver ?? "", reason: a.reason ?? null, decided_at: a.decidedAt ?? null }
    }]
  }
  return [requested]
}

const callEvent = (step: StepRecord, attempt: number, c: CallRecord): AuditEvent => ({
  CapabilityInvoked: {
    step_id: step.id,
    attempt,
    sequence: c.seq,
    capability: c.capability,
    args_digest: c.argsDigest,
    decision: c.decision,
    result_digest: c.resultDigest ?? null,
    reexecuted: c.reexecuted,
    started_at: c.startedAt ?? null,
    ended_at: c.endedAt ?? null
  }
})

/** The digest of a step's inputs, as StepStarted records it. */
export const stepInputHash = (step: StepRecord): string => inputsHash(step.inputs)

/** The digest WorkflowCompleted records: step id → output hash of every completed step. */
export const resultHash = (record: RunRecord): string => {
  const outputs: Record<string, string> = {}
  for (const s of record.steps) if (s.status === "completed" && s.outputHash !== undefined) outputs[s.id] = s.outputHash
  return sha256Tagged(canonicalJson(outputs))
}

const TERMINAL = new Set(["completed", "failed", "cancelled"])

const stepEvents = (record: RunRecord, step: StepRecord): ReadonlyArray<AuditEvent> => {
  const approvals = record.approvals.filter((a) => a.stepId === step.id)
  const triggers = record.triggers.filter((t) => t.stepId === step.id)
  if (step.attempts.length === 0 && approvals.length === 0 && triggers.length === 0 && (step.status === "pending" || step.status === "skipped")) {
    return []
  }
  const sourceSha = step.source !== undefined && record.workflow.sources[step.source] !== undefined
    ? sha256Tagged(record.workflow.sources[step.source])
    : null
  const started = (attempt: number, a: AttemptRecord | undefined): AuditEvent => ({
    StepStarted: {
      step_id: step.id,
      attempt,
      kind: step.kind,
      input_hash: stepInputHash(step),
      source_sha256: sourceSha,
      program_hash: a?.programHash ?? null,
      policy_hash: a === undefined ? null : policyHash(a.policy),
      started_at: a?.startedAt ?? step.startedAt ?? null
    }
  })
  const out: Array<AuditEvent> = []
  const gateAndTrigger = (): void => {
    for (const a of approvals) if (a.kind === "gate") out.push(...approvalEvents(a))
    for (const t of triggers) out.push({ ExternalTriggerReceived: { step_id: step.id, payload_hash: t.payloadHash, received_at: t.receivedAt ?? null } })
  }
  const ended = (attempt: number, status: string, outputHash: string | undefined, error: string | undefined, duration: number | null): void => {
    if (status === "completed") {
      out.push({ StepCompleted: { step_id: step.id, attempt, output_hash: outputHash ?? step.outputHash ?? "", duration_ms: duration } })
    } else if (status === "failed" || status === "cancelled") {
      out.push({ StepFailed: { step_id: step.id, attempt, error: error ?? step.error ?? status } })
    }
  }
  if (step.attempts.length === 0) {
    out.push(started(1, undefined))
    gateAndTrigger()
    ended(1, step.status, step.outputHash, step.error, step.durationMs ?? ms(step.startedAt, step.endedAt))
    return out
  }
  step.attempts.forEach((a, i) => {
    const last = i === step.attempts.length - 1
    out.push(started(a.attempt, a))
    const callApprovals = approvals.filter((x) => x.kind === "call" && (x.attempt ?? a.attempt) === a.attempt)
    const seen = new Set<number>()
    for (const c of a.calls) {
      for (const x of callApprovals) {
        if (x.seq === c.seq) {
          out.push(...approvalEvents(x))
          seen.add(c.seq)
        }
      }
      out.push(callEvent(step, a.attempt, c))
    }
    // approvals asked for a call that never ran (pending, or denied before the handler)
    for (const x of callApprovals) if (x.seq === undefined || !seen.has(x.seq)) out.push(...approvalEvents(x))
    if (last) gateAndTrigger()
    // an attempt cut short by cancelling the run ends as failed; otherwise the attempt says how it ended
    const status = last && (a.status === "running" || a.status === "paused") && step.status === "cancelled" ? "cancelled" : a.status
    ended(a.attempt, status, a.outputHash, a.error, ms(a.startedAt, a.endedAt))
  })
  return out
}

/** The audit events of a run record, in order. Pure: the same record always gives the same list. */
export const events = (record: RunRecord): ReadonlyArray<AuditEvent> => {
  const out: Array<AuditEvent> = [{
    WorkflowStarted: {
      run_id: record.runId,
      workflow_name: record.workflow.name,
      workflow_hash: record.workflow.hash,
      workflow_file_sha256: sha256Tagged(record.workflow.text),
      policy_hash: policyHash(record.policy),
      inputs_hash: inputsHash(record.inputs),
      started_at: record.startedAt
    }
  }]
  for (const s of record.steps) out.push(...stepEvents(record, s))
  if (TERMINAL.has(record.status)) {
    out.push({
      WorkflowCompleted: {
        status: record.status,
        result_hash: resultHash(record),
        total_duration_ms: record.durationMs ?? ms(record.startedAt, record.endedAt),
        ended_at: record.endedAt ?? null
      }
    })
  }
  return out
}

/** The audit chain of a run record. */
export const project = (record: RunRecord): ReadonlyArray<Entry> => chain(events(record))

// ---------------------------------------------------------------------------------------------
// verification

export interface ChainProblem {
  readonly sequence: number
  readonly reason: string
}

export interface ChainReport {
  readonly ok: boolean
  readonly head: string
  readonly entries: number
  readonly problems: ReadonlyArray<ChainProblem>
  /** sequences of redacted entries (their content is not covered by their hash any more) */
  readonly redacted: ReadonlyArray<number>
}

const HEX64 = /^[0-9a-f]{64}$/

/** Every string leaf of `j` at or under `path` equals `[REDACTED]`. */
const allRedacted = (j: unknown): boolean => {
  if (typeof j === "string") return j === REDACTED
  if (Array.isArray(j)) return j.every(allRedacted)
  if (j !== null && typeof j === "object") return Object.values(j).every(allRedacted)
  return true
}

/** Walk the chain: sequence, link, content commitment and entry hash of every entry. */
export const verify = (entries: ReadonlyArray<Entry>): ChainReport => {
  const problems: Array<ChainProblem> = []
  const redacted: Array<number> = []
  let prev = ZERO_HASH
  entries.forEach((e, i) => {
    const p = (reason: string) => problems.push({ sequence: i, reason })
    if (e.sequence !== i) p(`sequence is ${e.sequence}, expected ${i}`)
    if (e.prev_hash !== prev) p(`prev_hash ${e.prev_hash} does not link to the previous entry (${prev})`)
    if (!HEX64.test(e.content_sha256)) p("content_sha256 is not a lower-case SHA-256 hex digest")
    if (e.redacted !== undefined) {
      redacted.push(i)
      if (e.redacted.content_sha256 !== e.content_sha256) p("redacted.content_sha256 differs from the entry's content_sha256")
      if (e.redacted.fields.length === 0) p("redacted entry names no field")
      const body = eventBody(e.event)
      for (const f of e.redacted.fields) {
        const at = getPath(body, f)
        if (at === undefined || !allRedacted(at)) p(`redacted field ${f} is not blanked`)
      }
    } else {
      const c = contentHash(e.event)
      if (c !== e.content_sha256) p(`content_sha256 does not match the event (it hashes to ${c})`)
    }
    const h = entryHash(e.sequence, e.prev_hash, e.content_sha256)
    if (h !== e.entry_hash) p(`entry_hash does not match (recomputed ${h})`)
    prev = e.entry_hash
  })
  return { ok: problems.length === 0, head: head(entries), entries: entries.length, problems, redacted }
}

// ---------------------------------------------------------------------------------------------
// redaction

const splitPath = (path: string): Array<string> =>
  path.replace(/^\$\.?/, "").split(".").filter((s) => s.length > 0)

const getPath = (j: unknown, path: string): unknown => {
  let cur: unknown = j
  for (const k of splitPath(path)) {
    if (cur === null || typeof cur !== "object") return undefined
    cur = (cur as Record<string, unknown>)[k]
  }
  return cur
}

const blank = (j: unknown): unknown => {
  if (typeof j === "string") return REDACTED
  if (Array.isArray(j)) return j.map(blank)
  if (j !== null && typeof j === "object") return Object.fromEntries(Object.entries(j).map(([k, v]) => [k, blank(v)]))
  return j
}

/** `event` with the strings at `fields` blanked as a redaction blanks them (for comparing a redacted entry). */
export const blankFields = (event: AuditEvent, fields: ReadonlyArray<string>): AuditEvent => {
  const tag = eventTag(event)
  const body = JSON.parse(JSON.stringify(eventBody(event))) as Record<string, unknown>
  for (const f of fields) {
    const parts = splitPath(f)
    let cur: unknown = body
    for (const k of parts.slice(0, -1)) cur = cur !== null && typeof cur === "object" ? (cur as Record<string, unknown>)[k] : undefined
    if (cur !== null && typeof cur === "object") {
      const last = parts[parts.length - 1]
      const o = cur as Record<string, unknown>
      if (last in o) o[last] = blank(o[last])
    }
  }
  return { [tag]: body } as unknown as AuditEvent
}

/** Fields never blanked by a whole-entry redaction: they say where the entry belongs. */
const STRUCTURAL = new Set(["step_id"])

export class RedactError extends Error {
  readonly _tag = "RedactError"
}

/**
 * Redact entry `sequence`: blank the strings at `field` (a dotted path inside the event body, e.g.
 * `error` or `approver`), or every string field but `step_id` when no field is given. The entry's
 * `content_sha256` and `entry_hash` are kept, so the chain still verifies.
 */
export const redact = (
  entries: ReadonlyArray<Entry>,
  sequence: number,
  options: { readonly field?: string | undefined; readonly reason: string }
): ReadonlyArray<Entry> => {
  const e = entries[sequence]
  if (e === undefined) throw new RedactError(`no audit entry ${sequence} (the chain has ${entries.length}, numbered 0–${entries.length - 1})`)
  if (options.reason.trim().length === 0) throw new RedactError("a redaction needs a reason")
  const tag = eventTag(e.event)
  const body = { ...eventBody(e.event) }
  const fields: Array<string> = [...(e.redacted?.fields ?? [])]
  if (options.field !== undefined) {
    const parts = splitPath(options.field)
    if (parts[0] === tag) parts.shift()
    if (parts.length === 0) throw new RedactError(`--field ${options.field}: names no field of ${tag}`)
    const path = parts.join(".")
    const at = getPath(body, path)
    if (at === undefined) throw new RedactError(`--field ${options.field}: ${tag} has no field ${path} (it has ${Object.keys(body).join(", ")})`)
    if (typeof at !== "string" && (at === null || typeof at !== "object")) {
      throw new RedactError(`--field ${options.field}: ${tag}.${path} is not a string (only strings are redacted)`)
    }
    let cur: Record<string, unknown> = body
    for (const k of parts.slice(0, -1)) {
      const next = { ...(cur[k] as Record<string, unknown>) }
      cur[k] = next
      cur = next
    }
    cur[parts[parts.length - 1]] = blank(at)
    if (!fields.includes(path)) fields.push(path)
  } else {
    for (const [k, v] of Object.entries(body)) {
      if (STRUCTURAL.has(k) || typeof v !== "string") continue
      body[k] = REDACTED
      if (!fields.includes(k)) fields.push(k)
    }
    if (fields.length === 0) throw new RedactError(`entry ${sequence} (${tag}) has no string field to redact`)
  }
  const reason = e.redacted === undefined ? options.reason : `${e.redacted.reason}; ${options.reason}`
  const next: Entry = {
    sequence: e.sequence,
    prev_hash: e.prev_hash,
    content_sha256: e.content_sha256,
    event: { [tag]: body } as unknown as AuditEvent,
    redacted: { content_sha256: e.content_sha256, reason, fields },
    entry_hash: e.entry_hash
  }
  return entries.map((x, i) => (i === sequence ? next : x))
}

// ---------------------------------------------------------------------------------------------
// the file (audit_log.json): pretty JSON, fields in a fixed order

const entryJson = (e: Entry): unknown => ({
  sequence: e.sequence,
  prev_hash: e.prev_hash,
  content_sha256: e.content_sha256,
  event: e.event,
  ...(e.redacted === undefined ? {} : { redacted: e.redacted }),
  entry_hash: e.entry_hash
})

export const encode = (entries: ReadonlyArray<Entry>): string => JSON.stringify(entries.map(entryJson), null, 2) + "\n"

/** one decoder per tag, so an error names the path inside that event rather than a union miss */
const eventDecoders = Object.fromEntries(
  EVENT_TAGS.map((t) => [t, Schema.decodeUnknownEither(Schema.Struct({ [t]: Bodies[t] }) as Schema.Schema<unknown, unknown>, { onExcessProperty: "error", errors: "all" })])
) as Record<EventTag, (u: unknown) => Either.Either<unknown, ParseResult.ParseError>>

const EntrySchema = Schema.Struct({
  sequence: Nat,
  prev_hash: Schema.String,
  content_sha256: Schema.String,
  event: Schema.Unknown,
  redacted: Schema.optional(Schema.Struct({ content_sha256: Schema.String, reason: Schema.String, fields: Schema.Array(Schema.String) })),
  entry_hash: Schema.String
})
const strict = { onExcessProperty: "error", errors: "all" } as const
const decodeEntries = Schema.decodeUnknownEither(Schema.Array(EntrySchema), strict)

export interface DecodeIssue {
  readonly path: string
  readonly message: string
}

/** Decode audit_log.json's parsed JSON; problems carry their JSON path. */
export const decode = (json: unknown): Either.Either<ReadonlyArray<Entry>, DecodeIssue> => {
  const r = decodeEntries(json)
  if (Either.isLeft(r)) return Either.left(schemaIssues(r.left)[0])
  const out: Array<Entry> = []
  for (let i = 0; i < r.right.length; i++) {
    const e = r.right[i]
    const ev = e.event
    if (ev === null || typeof ev !== "object" || Array.isArray(ev) || Object.keys(ev).length !== 1) {
      return Either.left({ path: `$[${i}].event`, message: `expected one event object such as {"StepStarted": {…}}` })
    }
    const tag = Object.keys(ev)[0]
    if (!(EVENT_TAGS as ReadonlyArray<string>).includes(tag)) {
      return Either.left({ path: `$[${i}].event`, message: `unknown audit event '${tag}'` })
    }
    const d = eventDecoders[tag as EventTag](ev)
    if (Either.isLeft(d)) {
      const issue = schemaIssues(d.left)[0]
      return Either.left({ path: `$[${i}].event${issue.path.slice(1)}`, message: issue.message })
    }
    out.push({
      sequence: e.sequence,
      prev_hash: e.prev_hash,
      content_sha256: e.content_sha256,
      event: d.right as AuditEvent,
      ...(e.redacted === undefined ? {} : { redacted: { content_sha256: e.redacted.content_sha256, reason: e.redacted.reason, fields: [...e.redacted.fields] } }),
      entry_hash: e.entry_hash
    })
  }
  return Either.right(out)
}
