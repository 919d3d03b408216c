/**
 * Evidence bundles (layout 1.0): a directory a third party can check without boruna's data dir.
 *
 *   bundle.json                 written last: format, run, workflow hash, components, bundle_hash
 *   manifest.json               run summary, audit_log_hash, file_checksums (every file below), bundle_hash
 *   workflow.json               the workflow as it ran
 *   sources/<path>              every step source, at the path workflow.json names
 *   policy.json                 the run policy (defaults filled)
 *   inputs.json                 the run inputs
 *   run.json                    steps, attempts, calls, approvals, triggers, times (what the chain commits to)
 *   audit_log.json              the audit chain (format 1.1), a projection of the run record
 *   env_fingerprint.json        boruna and Node versions, OS, architecture
 *   outputs/<step>/result.json  each completed step's output (compact Value JSON; its SHA-256 is the output hash)
 *   event_logs/<step>.jsonl     each source step's VM event log (an event-log file `boruna replay` reads):
 *                               the last attempt; earlier ones as <step>.attempt-<n>.jsonl
 *
 * Every file is its own entry of `file_checksums` (hex SHA-256 of its bytes), so a large output is
 * just a large file the manifest holds the hash of. `bundle_hash` is the SHA-256 of manifest.json
 * with `bundle_hash` set to "" (pretty JSON, two-space indent, one final newline); the manifest
 * must be byte-for-byte in that form. `bundle.json` is derived entirely from the manifest, so it
 * carries nothing a checker cannot recompute.
 *
 * `buildBundle` is pure (record in, file map out); `createBundle` writes it, bundle.json last.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises"
import { arch, platform } from "node:os"
import { dirname, join } from "node:path"
import * as AuditChain from "./AuditChain.js"
import { capabilitySetHash } from "./Capability.js"
import type { Event } from "./Event.js"
import { formatLog, makeHeader, parseLog } from "./EventLogFile.js"
import type { AttemptRecord, RunRecord, StepRecord } from "./EvidenceRecord.js"
import { inputsHash, sha256Hex, sha256Tagged } from "./EvidenceRecord.js"
import { policyHash, policyToJson } from "./Policy.js"
import type { Value } from "./Value.js"
import { fromJson, toJson } from "./ValueJson.js"
import type { WorkflowStore } from "./WorkflowStore.js"

export const FORMAT_VERSION = "1.0"
export const MANIFEST = "manifest.json"
export const BUNDLE = "bundle.json"
export const DSSE_FILE = "attestation.intoto.dsse.json"
export const SIGSTORE_FILE = "attestation.sigstore.json"
/** Files outside `file_checksums`: the manifest, bundle.json, and the attestations made after them. */
export const UNLISTED: ReadonlyArray<string> = [MANIFEST, BUNDLE, DSSE_FILE, SIGSTORE_FILE]
export const REQUIRED: ReadonlyArray<string> = ["workflow.json", "policy.json", "inputs.json", "run.json", "audit_log.json", "env_fingerprint.json"]

export class EvidenceError extends Data.TaggedError("EvidenceError")<{ readonly message: string }> {}

/** A bundle in memory: path (with `/`) → bytes or text. */
export type BundleFiles = ReadonlyMap<string, string | Uint8Array>

const pretty = (j: unknown): string => JSON.stringify(j, null, 2) + "\n"

/** A step id as a file name: ids are used as they are when safe, else refused. */
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/
const SAFE_PATH = /^(?:[A-Za-z0-9_][A-Za-z0-9_.-]*\/)*[A-Za-z0-9_][A-Za-z0-9_.-]*$/

export const outputFile = (stepId: string): string => `outputs/${stepId}/result.json`
export const eventLogFile = (stepId: string, attempt: number, last: boolean): string =>
  last ? `event_logs/${stepId}.jsonl` : `event_logs/${stepId}.attempt-${attempt}.jsonl`
export const sourceFile = (path: string): string => `sources/${path}`

// ---------------------------------------------------------------------------------------------
// run.json: the record without what other files hold (events, outputs, sources, policy, inputs)

const NullableString = Schema.NullOr(Schema.String)
const Nat = Schema.Int.pipe(Schema.nonNegative())

const CallJson = Schema.Struct({
  seq: Nat,
  capability: Schema.String,
  args_digest: Schema.String,
  decision: Schema.Literal("allowed", "denied", "budget_exceeded", "approval_required"),
  result_digest: NullableString,
  reexecuted: Schema.Boolean,
  started_at: NullableString,
  ended_at: NullableString,
  error: NullableString
})
const AttemptJson = Schema.Struct({
  attempt: Nat,
  status: Schema.Literal("completed", "failed", "running", "paused"),
  started_at: NullableString,
  ended_at: NullableString,
  program_hash: NullableString,
  policy_hash: Schema.String,
  output_hash: NullableString,
  error: NullableString,
  error_kind: NullableString,
  event_log: NullableString,
  calls: Schema.Array(CallJson)
})
const StepJson = Schema.Struct({
  id: Schema.String,
  kind: Schema.Literal("source", "approval_gate", "external_trigger", "typescript"),
  source: NullableString,
  source_file: NullableString,
  depends_on: Schema.Array(Schema.String),
  status: Schema.Literal("pending", "running", "completed", "failed", "skipped", "awaiting_approval", "awaiting_trigger", "cancelled"),
  inputs: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  output_hash: NullableString,
  output: NullableString,
  error: NullableString,
  started_at: NullableString,
  ended_at: NullableString,
  duration_ms: Schema.NullOr(Nat),
  attempts: Schema.Array(AttemptJson)
})
const ApprovalJson = Schema.Struct({
  kind: Schema.Literal("gate", "call"),
  step_id: Schema.String,
  attempt: Schema.NullOr(Nat),
  seq: Schema.NullOr(Nat),
  capability: NullableString,
  digest: Schema.String,
  role: NullableString,
  rendering: NullableString,
  requested_at: NullableString,
  decision: Schema.Literal("granted", "denied", "pending"),
  approver: NullableString,
  reason: NullableString,
  decided_at: NullableString
})
const TriggerJson = Schema.Struct({ step_id: Schema.String, payload_hash: Schema.String, received_at: NullableString })

export const RunJson = Schema.Struct({
  run_id: Schema.String,
  status: Schema.Literal("running", "paused", "completed", "failed", "cancelled"),
  started_at: Schema.String,
  ended_at: NullableString,
  duration_ms: Schema.NullOr(Nat),
  boruna_version: Schema.String,
  workflow: Schema.Struct({ name: Schema.String, version: Schema.String, hash: Schema.String, sources: Schema.Array(Schema.String) }),
  steps: Schema.Array(StepJson),
  approvals: Schema.Array(ApprovalJson),
  triggers: Schema.Array(TriggerJson)
})
export type RunJson = typeof RunJson.Type

const n = <A>(x: A | undefined): A | null => (x === undefined ? null : x)

const attemptJson = (s: StepRecord, a: AttemptRecord, last: boolean) => ({
  attempt: a.attempt,
  status: a.status,
  started_at: n(a.startedAt),
  ended_at: n(a.endedAt),
  program_hash: n(a.programHash),
  policy_hash: policyHash(a.policy),
  output_hash: n(a.outputHash),
  error: n(a.error),
  error_kind: n(a.errorKind),
  event_log: s.kind === "source" ? eventLogFile(s.id, a.attempt, last) : null,
  calls: a.calls.map((c) => ({
    seq: c.seq,
    capability: c.capability,
    args_digest: c.argsDigest,
    decision: c.decision,
    result_digest: n(c.resultDigest),
    reexecuted: c.reexecuted,
    started_at: n(c.startedAt),
    ended_at: n(c.endedAt),
    error: n(c.error)
  }))
})

export const runJson = (r: RunRecord): RunJson => ({
  run_id: r.runId,
  status: r.status,
  started_at: r.startedAt,
  ended_at: n(r.endedAt),
  duration_ms: n(r.durationMs),
  boruna_version: r.borunaVersion,
  workflow: { name: r.workflow.name, version: r.workflow.version, hash: r.workflow.hash, sources: Object.keys(r.workflow.sources).sort() },
  steps: r.steps.map((s) => ({
    id: s.id,
    kind: s.kind,
    source: n(s.source),
    source_file: n(s.sourceFile),
    depends_on: [...s.dependsOn],
    status: s.status,
    inputs: s.inputs,
    output_hash: n(s.outputHash),
    output: s.outputJson === undefined ? null : outputFile(s.id),
    error: n(s.error),
    started_at: n(s.startedAt),
    ended_at: n(s.endedAt),
    duration_ms: n(s.durationMs),
    attempts: s.attempts.map((a, i) => attemptJson(s, a, i === s.attempts.length - 1))
  })),
  approvals: r.approvals.map((a) => ({
    kind: a.kind,
    step_id: a.stepId,
    attempt: n(a.attempt),
    seq: n(a.seq),
    capability: n(a.capability),
    digest: a.digest,
    role: n(a.role),
    rendering: n(a.rendering),
    requested_at: n(a.requestedAt),
    decision: a.decision,
    approver: n(a.approver),
    reason: n(a.reason),
    decided_at: n(a.decidedAt)
  })),
  triggers: r.triggers.map((t) => ({ step_id: t.stepId, payload_hash: t.payloadHash, received_at: n(t.receivedAt) }))
})

// ---------------------------------------------------------------------------------------------
// manifest and bundle.json

export const ManifestSchema = Schema.Struct({
  schema_version: Schema.Literal(1),
  format_version: Schema.String,
  run_id: Schema.String,
  workflow_name: Schema.String,
  workflow_version: Schema.String,
  workflow_hash: Schema.String,
  workflow_file_sha256: Schema.String,
  policy_hash: Schema.String,
  inputs_hash: Schema.String,
  audit_log_hash: Schema.String,
  status: Schema.String,
  started_at: Schema.String,
  completed_at: NullableString,
  created_at: Schema.String,
  boruna_version: Schema.String,
  file_checksums: Schema.Record({ key: Schema.String, value: Schema.String }),
  redactions: Schema.Array(Schema.Struct({
    entry: Nat,
    step_id: NullableString,
    fields: Schema.Array(Schema.String),
    reason: Schema.String,
    files: Schema.Array(Schema.String),
    at: Schema.String
  })),
  bundle_hash: Schema.String
})
export type Manifest = typeof ManifestSchema.Type

/** The exact text of a manifest (its canonical form). */
export const manifestText = (m: Manifest): string => pretty(m)

/** `bundle_hash`: SHA-256 of the manifest's text with `bundle_hash` = "". */
export const bundleHashOf = (m: Manifest): string => sha256Hex(manifestText({ ...m, bundle_hash: "" }))

/** The components of a bundle (top-level names, directories with a trailing `/`), sorted. */
export const components = (paths: Iterable<string>): ReadonlyArray<string> => {
  const set = new Set<string>()
  for (const p of paths) {
    const i = p.indexOf("/")
    set.add(i === -1 ? p : p.slice(0, i + 1))
  }
  set.add(BUNDLE)
  set.add(MANIFEST)
  return [...set].sort()
}

/** bundle.json's exact text: everything in it comes from the manifest. */
export const bundleJsonText = (m: Manifest): string =>
  pretty({
    format_version: m.format_version,
    boruna_version: m.boruna_version,
    created_at: m.created_at,
    run_id: m.run_id,
    workflow_hash: m.workflow_hash,
    components: components(Object.keys(m.file_checksums)),
    bundle_hash: m.bundle_hash
  })

export const sortedRecord = (r: Readonly<Record<string, string>>): Record<string, string> =>
  Object.fromEntries(Object.keys(r).sort().map((k) => [k, r[k]]))

const bytesOf = (x: string | Uint8Array): Uint8Array => (typeof x === "string" ? Buffer.from(x, "utf8") : x)

/** Fill `file_checksums` and `bundle_hash` for the files, and return the manifest. */
export const seal = (files: BundleFiles, base: Omit<Manifest, "file_checksums" | "bundle_hash">): Manifest => {
  const checksums: Record<string, string> = {}
  for (const [p, c] of files) if (!UNLISTED.includes(p)) checksums[p] = sha256Hex(bytesOf(c))
  const m: Manifest = { ...base, file_checksums: sortedRecord(checksums), bundle_hash: "" }
  return { ...m, bundle_hash: bundleHashOf(m) }
}

// ---------------------------------------------------------------------------------------------
// building

export interface BuildOptions {
  /** when the bundle is made (default now) */
  readonly createdAt?: Date
  /** the env fingerprint to write (default: this process's) */
  readonly env?: Readonly<Record<string, string>>
}

export const envFingerprint = (borunaVersion: string): Record<string, string> => ({
  boruna_version: borunaVersion,
  node_version: process.version,
  os: platform(),
  arch: arch(),
  capability_set_hash: capabilitySetHash()
})

const checkName = (what: string, name: string, pattern: RegExp): void => {
  if (!pattern.test(name) || name.split("/").some((s) => s === "." || s === "..")) {
    throw new EvidenceError({ message: `${what} '${name}' cannot be a file name in a bundle` })
  }
}

/** The event-log file of one attempt: the usual header (program, policy) and the VM's events. */
export const eventLogText = (s: StepRecord, a: AttemptRecord): string =>
  formatLog(
    makeHeader({
      programHash: a.programHash ?? "",
      policy: a.policy,
      sourceFile: s.source === undefined ? s.id : sourceFile(s.source),
      createdAt: new Date(a.startedAt ?? "1970-01-01T00:00:00.000Z")
    }),
    a.events
  )

/** Every file of the bundle for a run record (bundle.json and manifest.json included). */
export const buildBundle = (r: RunRecord, options: BuildOptions = {}): Map<string, string> => {
  const files = new Map<string, string>()
  files.set("workflow.json", r.workflow.text)
  for (const [p, text] of Object.entries(r.workflow.sources)) {
    checkName("step source", p, SAFE_PATH)
    files.set(sourceFile(p), text)
  }
  files.set("policy.json", pretty(policyToJson(r.policy)))
  files.set("inputs.json", pretty(r.inputs))
  files.set("run.json", pretty(runJson(r)))
  const entries = AuditChain.project(r)
  files.set("audit_log.json", AuditChain.encode(entries))
  files.set("env_fingerprint.json", pretty(options.env ?? envFingerprint(r.borunaVersion)))
  for (const s of r.steps) {
    checkName("step id", s.id, SAFE_NAME)
    if (s.outputJson !== undefined) files.set(outputFile(s.id), s.outputJson)
    if (s.kind === "source") {
      s.attempts.forEach((a, i) => files.set(eventLogFile(s.id, a.attempt, i === s.attempts.length - 1), eventLogText(s, a)))
    }
  }
  const manifest = seal(files, {
    schema_version: 1,
    format_version: FORMAT_VERSION,
    run_id: r.runId,
    workflow_name: r.workflow.name,
    workflow_version: r.workflow.version,
    workflow_hash: r.workflow.hash,
    workflow_file_sha256: sha256Tagged(r.workflow.text),
    policy_hash: policyHash(r.policy),
    inputs_hash: inputsHash(r.inputs),
    audit_log_hash: AuditChain.head(entries),
    status: r.status,
    started_at: r.startedAt,
    completed_at: n(r.endedAt),
    created_at: (options.createdAt ?? new Date()).toISOString(),
    boruna_version: r.borunaVersion,
    redactions: []
  })
  files.set(MANIFEST, manifestText(manifest))
  files.set(BUNDLE, bundleJsonText(manifest))
  return files
}

// ---------------------------------------------------------------------------------------------
// the directory

const ioReason = (e: unknown): string => {
  const code = (e as { code?: unknown })?.code
  if (code === "ENOENT") return "no such file or directory"
  if (code === "EACCES" || code === "EPERM") return "permission denied"
  if (code === "ENOTDIR") return "a component of the path is not a directory"
  if (code === "EEXIST") return "already exists"
  return e instanceof Error ? e.message : String(e)
}

/**
 * Write the files into `dir` (created; it must not exist or be empty). bundle.json is written
 * last: a directory without it is an unfinished bundle.
 */
export const writeFiles = (dir: string, files: BundleFiles): Effect.Effect<void, EvidenceError> =>
  Effect.tryPromise({
    try: async () => {
      const st = await stat(dir).catch(() => undefined)
      if (st !== undefined) {
        if (!st.isDirectory()) throw new EvidenceError({ message: `${dir}: exists and is not a directory` })
        if ((await readdir(dir)).length > 0) throw new EvidenceError({ message: `${dir}: not empty (an evidence bundle is written into a new or empty directory)` })
      }
      await mkdir(dir, { recursive: true })
      const ordered = [...files.keys()].filter((p) => p !== BUNDLE).sort()
      for (const p of ordered) {
        const full = join(dir, p)
        await mkdir(dirname(full), { recursive: true })
        await writeFile(full, files.get(p)!)
      }
      if (files.has(BUNDLE)) await writeFile(join(dir, BUNDLE), files.get(BUNDLE)!)
    },
    catch: (e) => (e instanceof EvidenceError ? e : new EvidenceError({ message: `cannot write the bundle in ${dir}: ${ioReason(e)}` }))
  })

/** Build a run record's bundle and write it into `dir`; returns the manifest. */
export const createBundle = (r: RunRecord, dir: string, options: BuildOptions = {}): Effect.Effect<Manifest, EvidenceError> =>
  Effect.flatMap(
    Effect.try({ try: () => buildBundle(r, options), catch: (e) => (e instanceof EvidenceError ? e : new EvidenceError({ message: String(e) })) }),
    (files) => Effect.as(writeFiles(dir, files), JSON.parse(files.get(MANIFEST)!) as Manifest)
  )

/** Every file under `dir` (paths with `/`), as bytes. */
export const readFiles = (dir: string): Effect.Effect<Map<string, Uint8Array>, EvidenceError> =>
  Effect.tryPromise({
    try: async () => {
      const st = await stat(dir).catch((e: unknown) => {
        throw new EvidenceError({ message: `${dir}: ${ioReason(e)}` })
      })
      if (!st.isDirectory()) throw new EvidenceError({ message: `${dir}: not a directory (an evidence bundle is a directory)` })
      const out = new Map<string, Uint8Array>()
      const walk = async (rel: string): Promise<void> => {
        for (const d of await readdir(join(dir, rel), { withFileTypes: true })) {
          const p = rel === "" ? d.name : `${rel}/${d.name}`
          if (d.isDirectory()) await walk(p)
          else if (d.isFile()) out.set(p, await readFile(join(dir, p)))
          else out.set(p, new Uint8Array(0))
        }
      }
      await walk("")
      return out
    },
    catch: (e) => (e instanceof EvidenceError ? e : new EvidenceError({ message: `cannot read the bundle ${dir}: ${ioReason(e)}` }))
  })

/**
 * Replace some files of an existing bundle (redaction, attestation): each is written next to its
 * target and renamed over it; `remove` lists files to delete.
 */
export const updateFiles = (dir: string, changed: BundleFiles, remove: ReadonlyArray<string> = []): Effect.Effect<void, EvidenceError> =>
  Effect.tryPromise({
    try: async () => {
      for (const [p, c] of changed) {
        if (p === BUNDLE) continue
        const full = join(dir, p)
        await mkdir(dirname(full), { recursive: true })
        await writeFile(full + ".tmp", c)
        await rename(full + ".tmp", full)
      }
      for (const p of remove) await rm(join(dir, p), { force: true })
      const b = changed.get(BUNDLE)
      if (b !== undefined) {
        await writeFile(join(dir, BUNDLE) + ".tmp", b)
        await rename(join(dir, BUNDLE) + ".tmp", join(dir, BUNDLE))
      }
    },
    catch: (e) => new EvidenceError({ message: `cannot update the bundle ${dir}: ${ioReason(e)}` })
  })

// ---------------------------------------------------------------------------------------------
// redaction

const REDACTED_TEXT = AuditChain.REDACTED

/** Blank the strings of a Value's JSON form (`{"String": …}`), keeping its shape and type names. */
const blankValueJson = (j: unknown): unknown => {
  if (Array.isArray(j)) return j.map(blankValueJson)
  if (j !== null && typeof j === "object") {
    return Object.fromEntries(Object.entries(j).map(([k, v]) => [k, k === "String" && typeof v === "string" ? REDACTED_TEXT : blankValueJson(v)]))
  }
  return j
}

const blankValue = (v: Value): Value => fromJson(blankValueJson(toJson(v)))

/**
 * Blank the arguments and the outcome of call `seq` (counting calls made and refused) in an
 * event-log file's text; the log is written again with its hash chain re-sealed.
 */
const redactCallInLog = (text: string, file: string, seq: number): string | undefined => {
  const log = parseLog(text, file)
  if (Either.isLeft(log)) return undefined
  const events: Array<Event> = [...log.right.events]
  let n = -1
  let capability: string | undefined
  for (let i = 0; i < events.length; i++) {
    const e = events[i]
    if (capability === undefined && (e.type === "CapCall" || e.type === "CapRefused")) {
      n++
      if (n !== seq) continue
      if (e.type === "CapRefused") {
        events[i] = { ...e, args: e.args.map(blankValue), message: REDACTED_TEXT }
        return formatLog(log.right.header, events)
      }
      events[i] = { ...e, args: e.args.map(blankValue) }
      capability = e.capability
    } else if (capability !== undefined && (e.type === "CapResult" || e.type === "CapError") && e.capability === capability) {
      events[i] = e.type === "CapResult" ? { ...e, result: blankValue(e.result) } : { ...e, message: REDACTED_TEXT }
      return formatLog(log.right.header, events)
    }
  }
  return capability === undefined ? undefined : formatLog(log.right.header, events)
}

export interface RedactResult {
  readonly entry: number
  readonly event: string
  readonly stepId: string | undefined
  readonly fields: ReadonlyArray<string>
  /** files changed besides audit_log.json, manifest.json and bundle.json */
  readonly files: ReadonlyArray<string>
  /** attestation files removed (they covered the unredacted bytes) */
  readonly removed: ReadonlyArray<string>
  readonly files_out: Map<string, string>
}

/**
 * Redact audit entry `entry` of a bundle's files: the entry itself (its commitment kept), and the
 * same content where the bundle holds it again — run.json's error / approver / reason / rendering,
 * and for a capability call its arguments and result in the step's event log. The manifest records
 * the redaction, its checksums and bundle hash are recomputed, and the attestation (which signed
 * the unredacted bytes) is removed.
 */
export const redactFiles = (
  files: BundleFiles,
  options: { readonly entry: number; readonly field?: string | undefined; readonly reason: string; readonly at?: Date }
): Either.Either<RedactResult, EvidenceError> => {
  const text = (p: string): string | undefined => {
    const c = files.get(p)
    return c === undefined ? undefined : typeof c === "string" ? c : Buffer.from(c).toString("utf8")
  }
  const mText = text(MANIFEST)
  const aText = text("audit_log.json")
  const rText = text("run.json")
  if (mText === undefined || aText === undefined || rText === undefined) {
    return Either.left(new EvidenceError({ message: "not an evidence bundle (manifest.json, audit_log.json or run.json missing)" }))
  }
  let manifest: Manifest
  let entries: ReadonlyArray<AuditChain.Entry>
  let run: Record<string, unknown>
  try {
    manifest = Schema.decodeUnknownSync(ManifestSchema)(JSON.parse(mText))
    const d = AuditChain.decode(JSON.parse(aText))
    if (Either.isLeft(d)) return Either.left(new EvidenceError({ message: `audit_log.json: ${d.left.path}: ${d.left.message}` }))
    entries = d.right
    run = JSON.parse(rText) as Record<string, unknown>
  } catch (e) {
    return Either.left(new EvidenceError({ message: `cannot read the bundle: ${e instanceof Error ? e.message : String(e)} (verify it first)` }))
  }
  let redacted: ReadonlyArray<AuditChain.Entry>
  try {
    redacted = AuditChain.redact(entries, options.entry, { field: options.field, reason: options.reason })
  } catch (e) {
    return Either.left(new EvidenceError({ message: e instanceof Error ? e.message : String(e) }))
  }
  const e = redacted[options.entry]
  const tag = AuditChain.eventTag(e.event)
  const body = AuditChain.eventBody(entries[options.entry].event)
  const fields = e.redacted!.fields.filter((f) => !(entries[options.entry].redacted?.fields ?? []).includes(f))
  const stepId = typeof body.step_id === "string" ? body.step_id : undefined
  const out = new Map<string, string>()
  const changed: Array<string> = []
  // run.json: the same strings
  const steps = (run.steps ?? []) as Array<Record<string, unknown>>
  const step = steps.find((s) => s.id === stepId)
  const approvals = (run.approvals ?? []) as Array<Record<string, unknown>>
  let runChanged = false
  const blankIn = (o: Record<string, unknown> | undefined, key: string) => {
    if (o !== undefined && typeof o[key] === "string") {
      o[key] = REDACTED_TEXT
      runChanged = true
    }
  }
  if (tag === "StepFailed" && fields.includes("error") && step !== undefined) {
    blankIn(step, "error")
    for (const a of (step.attempts ?? []) as Array<Record<string, unknown>>) if (a.attempt === body.attempt) blankIn(a, "error")
  }
  if (tag === "ApprovalGranted" || tag === "ApprovalDenied" || tag === "ApprovalRequested") {
    for (const a of approvals) {
      if (a.step_id !== stepId || a.digest !== body.digest) continue
      if (fields.includes("approver")) blankIn(a, "approver")
      if (fields.includes("reason")) blankIn(a, "reason")
      if (fields.includes("rendering")) blankIn(a, "rendering")
    }
  }
  if (tag === "CapabilityInvoked" && step !== undefined) {
    const attempt = ((step.attempts ?? []) as Array<Record<string, unknown>>).find((a) => a.attempt === body.attempt)
    const call = ((attempt?.calls ?? []) as Array<Record<string, unknown>>).find((c) => c.seq === body.sequence)
    blankIn(call, "error")
    const logFile = attempt?.event_log
    if (typeof logFile === "string") {
      const t = text(logFile)
      const r = t === undefined ? undefined : redactCallInLog(t, logFile, Number(body.sequence))
      if (r !== undefined && r !== t) {
        out.set(logFile, r)
        changed.push(logFile)
      }
    }
  }
  if (runChanged) {
    out.set("run.json", JSON.stringify(run, null, 2) + "\n")
    changed.push("run.json")
  }
  out.set("audit_log.json", AuditChain.encode(redacted))
  const next = new Map<string, string | Uint8Array>(files)
  for (const [p, c] of out) next.set(p, c)
  const removed = [DSSE_FILE, SIGSTORE_FILE].filter((p) => next.has(p))
  for (const p of removed) next.delete(p)
  const { file_checksums: _c, bundle_hash: _b, ...base } = manifest
  const sealed = seal(next, {
    ...base,
    redactions: [...manifest.redactions, {
      entry: options.entry,
      step_id: stepId ?? null,
      fields,
      reason: options.reason,
      files: changed.sort(),
      at: (options.at ?? new Date()).toISOString()
    }]
  })
  out.set(MANIFEST, manifestText(sealed))
  out.set(BUNDLE, bundleJsonText(sealed))
  return Either.right({ entry: options.entry, event: tag, stepId, fields, files: changed.sort(), removed, files_out: out })
}

/** `boruna evidence redact DIR --event N [--field PATH] --reason TEXT`. */
export const redactDir = (
  dir: string,
  options: { readonly entry: number; readonly field?: string | undefined; readonly reason: string }
): Effect.Effect<RedactResult, EvidenceError> =>
  Effect.gen(function*() {
    const files = yield* readFiles(dir)
    const r = redactFiles(files, options)
    if (Either.isLeft(r)) return yield* Effect.fail(new EvidenceError({ message: `${dir}: ${r.left.message}` }))
    yield* updateFiles(dir, r.right.files_out, r.right.removed)
    return r.right
  })

// ---------------------------------------------------------------------------------------------
// from the workflow runner's store

/**
 * The record of run `runId` from the workflow store in context, with the step sources read from
 * where the run read them.
 */
export const recordOf = (runId: string): Effect.Effect<RunRecord, EvidenceError, WorkflowStore> =>
  Effect.gen(function*() {
    const [S, WF, Runner, EventLogFile, Compiler, Bytecode, Policy, Version, Fs, Path] = yield* Effect.promise(() =>
      Promise.all([
        import("./WorkflowStore.js"),
        import("./WorkflowFile.js"),
        import("./WorkflowRunner.js"),
        import("./EventLogFile.js"),
        import("./Compiler.js"),
        import("./Bytecode.js"),
        import("./Policy.js"),
        import("./cli/version.js"),
        import("node:fs"),
        import("node:path")
      ])
    )
    const view = yield* Effect.mapError(S.readRun(runId), (e) => new EvidenceError({ message: `cannot read run ${runId}: ${e.message}` }))
    if (view === undefined) return yield* Effect.fail(new EvidenceError({ message: `unknown run ${runId}` }))
    const wf = WF.decodeWorkflow(JSON.parse(view.run.workflow_json))
    if (Either.isLeft(wf)) return yield* Effect.fail(new EvidenceError({ message: `run ${runId}: its stored workflow does not decode: ${wf.left[0]?.message}` }))
    const base = view.run.workflow_path.endsWith(".ax") ? Path.dirname(view.run.workflow_path) : view.run.workflow_path
    const { fromView, RecordError } = yield* Effect.promise(() => import("./EvidenceRecord.js"))
    return yield* Effect.try({
      try: () =>
        fromView(view, wf.right, {
          decodeEvent: (line, file, n) => EventLogFile.decodeEvent(line, file, n),
          stepPolicy: Runner.stepPolicy,
          decodePolicy: (j) => Either.getOrThrow(Policy.decodePolicy(j)),
          order: (w) => WF.topoOrder(w).order,
          // the sources the run compiled from, stored with it at submit; only a run stored before
          // sources were kept falls back to the directory
          readSource: (p) => {
            const stored = view.sources.find((s) => s.path === p)
            if (stored !== undefined) return stored.source
            if (view.sources.length > 0) return undefined
            try {
              return Fs.readFileSync(Path.join(base, p), "utf8").replace(/^\uFEFF/, "")
            } catch {
              return undefined
            }
          },
          programHash: (file, source) => {
            const c = Compiler.compileSource(file, source)
            return c.ok ? Bytecode.programHash(c.program) : undefined
          },
          borunaVersion: Version.VERSION
        }),
      catch: (e) => new EvidenceError({ message: `run ${runId}: ${e instanceof RecordError || e instanceof Error ? e.message : String(e)}` })
    })
  })

/**
 * `boruna workflow run … --evidence DIR` and `boruna evidence create RUN -o DIR`: write the bundle
 * of run `runId` (from the workflow store in context) into `dir`.
 */
export const writeEvidence = (runId: string, dir: string, options: BuildOptions = {}): Effect.Effect<Manifest, EvidenceError, WorkflowStore> =>
  Effect.flatMap(recordOf(runId), (r) => createBundle(r, dir, options))
