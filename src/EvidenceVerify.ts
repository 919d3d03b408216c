/**
 * Verifying an evidence bundle, offline. The checks, in order (each failure names the file, the
 * audit entry or the step):
 *
 *  1. bundle     bundle.json exists, is format 1.x, and is exactly what the manifest implies
 *  2. manifest   manifest.json decodes, is in its canonical form, and `bundle_hash` recomputes
 *                (and equals `--expected-bundle-hash` when one is given)
 *  3. checksums  every `file_checksums` entry exists and hashes to its value; no file is unlisted
 *  4. chain      audit_log.json decodes, its hash chain holds, its head is `audit_log_hash`
 *  5. record     the chain is exactly the projection of the bundled record (run.json, workflow,
 *                sources, policy, inputs, event-log headers): nothing in one disagrees with the other;
 *                each output file hashes to its step's output hash; each step's recorded calls are
 *                the calls in its event log; each step input is the upstream output it names; each
 *                step's policy is policy.json narrowed to the step as workflow.json declares it
 *  6. signature  the DSSE attestation and the Sigstore bundle, when present or required
 *  7. reexecute  every source step is run again from its bundled source, under its recorded
 *                policy, against its bundled event log (replay: no network, model or clock): the
 *                calls must be the recorded ones and the output must hash to the recorded hash
 *                (a failed attempt must fail again the same way)
 *
 * `ok` only when every check holds. Redacted entries and steps are reported: a step whose event
 * log was redacted is not re-executed, and the report says so.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as AuditChain from "./AuditChain.js"
import { programHash } from "./Bytecode.js"
import { compileSource } from "./Compiler.js"
import type { Event } from "./Event.js"
import { parseLog, type RecordedLog } from "./EventLogFile.js"
import {
  BUNDLE,
  bundleHashOf,
  bundleJsonText,
  DSSE_FILE,
  type Manifest,
  MANIFEST,
  ManifestSchema,
  outputFile,
  REQUIRED,
  RunJson,
  SIGSTORE_FILE,
  sourceFile,
  UNLISTED
} from "./EvidenceBundle.js"
import type { AttemptRecord, RunRecord, StepRecord } from "./EvidenceRecord.js"
import { argsDigest, inputsHash, inputText, outputHashOf, outputJsonOf, sha256Hex, sha256Tagged } from "./EvidenceRecord.js"
import { parseJson, schemaIssues } from "./Json.js"
import { decodePolicy, type Policy, policyHash } from "./Policy.js"
import { isCapabilityName } from "./Capability.js"
import * as EventLog from "./EventLog.js"
import * as Gateway from "./Gateway.js"
import { needsApproval } from "./PolicyCore.js"
import * as Replay from "./Replay.js"
import { canonicalJson, type Json } from "./ValueJson.js"
import { Vm } from "./Vm.js"
import { decodeWorkflow, workflowHash } from "./WorkflowFile.js"
import { stepPolicy } from "./WorkflowRunner.js"

export type CheckName = "bundle" | "manifest" | "checksums" | "chain" | "record" | "signature" | "reexecute"
export const CHECKS: ReadonlyArray<CheckName> = ["bundle", "manifest", "checksums", "chain", "record", "signature", "reexecute"]

export interface Problem {
  readonly check: CheckName
  readonly file?: string | undefined
  readonly entry?: number | undefined
  readonly step?: string | undefined
  readonly message: string
}

export interface Check {
  readonly name: CheckName
  /** `skipped`: nothing to check (no signature and none required), or an earlier failure prevents it */
  readonly status: "ok" | "failed" | "skipped"
  readonly problems: ReadonlyArray<Problem>
  readonly notes: ReadonlyArray<string>
}

export interface VerifyReport {
  readonly ok: boolean
  readonly runId: string | undefined
  readonly bundleHash: string | undefined
  readonly checks: ReadonlyArray<Check>
  /** steps re-executed with an identical result */
  readonly reexecuted: ReadonlyArray<string>
  /** audit entries that are redacted */
  readonly redacted: ReadonlyArray<number>
}

export interface VerifyOptions {
  /** a PEM public key (or its file's text): the attestation must verify under it */
  readonly verifyKey?: string | undefined
  /** fail when the bundle carries no signature */
  readonly requireSignature?: boolean | undefined
  /** the bundle hash the caller expects (from a trusted place) */
  readonly expectedBundleHash?: string | undefined
  /** re-execute the steps (default true) */
  readonly reexecute?: boolean | undefined
  /**
   * stop after the checksums when anything failed so far (the verdict is the same: a later check
   * can only add problems); for callers that only need the verdict, such as the tamper sweep
   */
  readonly stopEarly?: boolean | undefined
}

export type Files = ReadonlyMap<string, string | Uint8Array>

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** One collector per check. */
class Collector {
  readonly problems: Array<Problem> = []
  readonly notes: Array<string> = []
  skipped = false
  constructor(readonly name: CheckName) {}
  fail(message: string, where: { file?: string; entry?: number; step?: string } = {}): void {
    this.problems.push({ check: this.name, ...where, message })
  }
  result(): Check {
    return { name: this.name, status: this.problems.length > 0 ? "failed" : this.skipped ? "skipped" : "ok", problems: this.problems, notes: this.notes }
  }
}

const textOf = (files: Files, path: string, c: Collector): string | undefined => {
  const raw = files.get(path)
  if (raw === undefined) return undefined
  if (typeof raw === "string") return raw
  try {
    return utf8.decode(raw)
  } catch {
    c.fail("not UTF-8 text", { file: path })
    return undefined
  }
}

const jsonOf = (files: Files, path: string, c: Collector): unknown => {
  const t = textOf(files, path, c)
  if (t === undefined) return undefined
  const j = parseJson(t)
  if (!j.ok) {
    c.fail(`${j.where}: ${j.message}`, { file: path })
    return undefined
  }
  return j.value
}

const bytes = (x: string | Uint8Array): Uint8Array => (typeof x === "string" ? Buffer.from(x, "utf8") : x)

const stripTag = (h: string): string => h.replace(/^sha256:/, "").toLowerCase()

// ---------------------------------------------------------------------------------------------
// the record, rebuilt from the bundle

interface Rebuilt {
  readonly record: RunRecord
  readonly run: RunJson
  /** event logs by file */
  readonly logs: ReadonlyMap<string, RecordedLog>
}

const rebuild = (files: Files, m: Manifest, c: Collector): Rebuilt | undefined => {
  const runRaw = jsonOf(files, "run.json", c)
  if (runRaw === undefined) return undefined
  const decoded = Schema.decodeUnknownEither(RunJson, { onExcessProperty: "error", errors: "all" })(runRaw)
  if (Either.isLeft(decoded)) {
    const i = schemaIssues(decoded.left)[0]
    c.fail(`${i.path}: ${i.message}`, { file: "run.json" })
    return undefined
  }
  const run = decoded.right
  const workflowText = textOf(files, "workflow.json", c)
  const policyRaw = jsonOf(files, "policy.json", c)
  const inputsRaw = jsonOf(files, "inputs.json", c)
  if (workflowText === undefined || policyRaw === undefined || inputsRaw === undefined) return undefined
  const policy = decodePolicy(policyRaw, "policy.json")
  if (Either.isLeft(policy)) {
    c.fail(policy.left.issues.map((i) => `${i.path}: ${i.message}`).join("; "), { file: "policy.json" })
    return undefined
  }
  if (inputsRaw === null || typeof inputsRaw !== "object" || Array.isArray(inputsRaw)) {
    c.fail("$: expected an object of run inputs", { file: "inputs.json" })
    return undefined
  }
  const sources: Record<string, string> = {}
  for (const p of run.workflow.sources) {
    const t = textOf(files, sourceFile(p), c)
    if (t === undefined) c.fail(`the step source ${p} is missing`, { file: sourceFile(p) })
    else sources[p] = t
  }
  const logs = new Map<string, RecordedLog>()
  const steps: Array<StepRecord> = []
  for (const s of run.steps) {
    const attempts: Array<AttemptRecord> = []
    for (const a of s.attempts) {
      let events: ReadonlyArray<Event> = []
      let attemptPolicy: Policy = policy.right
      if (a.event_log !== null) {
        const t = textOf(files, a.event_log, c)
        if (t === undefined) {
          c.fail(`step ${s.id} attempt ${a.attempt}: its event log is missing`, { file: a.event_log, step: s.id })
        } else {
          const log = parseLog(t, a.event_log)
          if (Either.isLeft(log)) {
            c.fail(log.left.message, { file: a.event_log, step: s.id })
          } else {
            logs.set(a.event_log, log.right)
            events = log.right.events
            attemptPolicy = log.right.header.policy
            if (stripTag(log.right.header.program_hash) !== stripTag(a.program_hash ?? "")) {
              c.fail(`the log's program_hash ${log.right.header.program_hash} is not the attempt's (${a.program_hash})`, { file: a.event_log, step: s.id })
            }
          }
        }
      }
      if (policyHash(attemptPolicy) !== a.policy_hash) {
        c.fail(`step ${s.id} attempt ${a.attempt}: policy_hash ${a.policy_hash} is not the hash of the policy it ran under (${policyHash(attemptPolicy)})`, {
          file: a.event_log ?? "run.json",
          step: s.id
        })
      }
      attempts.push({
        attempt: a.attempt,
        status: a.status,
        startedAt: a.started_at ?? undefined,
        endedAt: a.ended_at ?? undefined,
        events,
        policy: attemptPolicy,
        programHash: a.program_hash ?? undefined,
        outputHash: a.output_hash ?? undefined,
        error: a.error ?? undefined,
        errorKind: a.error_kind ?? undefined,
        calls: a.calls.map((x) => ({
          seq: x.seq,
          capability: x.capability,
          argsDigest: x.args_digest,
          decision: x.decision,
          resultDigest: x.result_digest ?? undefined,
          reexecuted: x.reexecuted,
          startedAt: x.started_at ?? undefined,
          endedAt: x.ended_at ?? undefined,
          error: x.error ?? undefined
        }))
      })
    }
    let outputJson: string | undefined
    if (s.output !== null) {
      outputJson = textOf(files, s.output, c)
      if (outputJson === undefined) c.fail(`step ${s.id}: its output file is missing`, { file: s.output, step: s.id })
      else if (outputHashOf(outputJson) !== stripTag(s.output_hash ?? "")) {
        c.fail(`step ${s.id}: the output file hashes to ${outputHashOf(outputJson)}, the step records ${s.output_hash}`, { file: s.output, step: s.id })
      }
    } else if (s.status === "completed" && s.kind !== "approval_gate") {
      c.fail(`step ${s.id} completed but the bundle has no output for it`, { file: "run.json", step: s.id })
    }
    steps.push({
      id: s.id,
      kind: s.kind,
      source: s.source ?? undefined,
      sourceFile: s.source_file ?? undefined,
      dependsOn: s.depends_on,
      status: s.status,
      attempts,
      inputs: s.inputs as Record<string, Json>,
      outputJson,
      outputHash: s.output_hash ?? undefined,
      error: s.error ?? undefined,
      startedAt: s.started_at ?? undefined,
      endedAt: s.ended_at ?? undefined,
      durationMs: s.duration_ms ?? undefined
    })
  }
  const record: RunRecord = {
    runId: run.run_id,
    workflow: { name: run.workflow.name, version: run.workflow.version, hash: run.workflow.hash, text: workflowText, sources },
    policy: policy.right,
    inputs: inputsRaw as Record<string, Json>,
    status: run.status,
    startedAt: run.started_at,
    endedAt: run.ended_at ?? undefined,
    durationMs: run.duration_ms ?? undefined,
    borunaVersion: run.boruna_version,
    steps,
    approvals: run.approvals.map((a) => ({
      kind: a.kind,
      stepId: a.step_id,
      attempt: a.attempt ?? undefined,
      seq: a.seq ?? undefined,
      capability: a.capability ?? undefined,
      digest: a.digest,
      role: a.role ?? undefined,
      rendering: a.rendering ?? undefined,
      requestedAt: a.requested_at ?? undefined,
      decision: a.decision,
      approver: a.approver ?? undefined,
      reason: a.reason ?? undefined,
      decidedAt: a.decided_at ?? undefined
    })),
    triggers: run.triggers.map((t) => ({ stepId: t.step_id, payloadHash: t.payload_hash, receivedAt: t.received_at ?? undefined }))
  }
  // the manifest's summary must be the record's
  const same = (field: string, recorded: unknown, actual: unknown, file: string) => {
    if (recorded !== actual) c.fail(`manifest ${field} is ${JSON.stringify(recorded)}, the bundle's ${file} gives ${JSON.stringify(actual)}`, { file: MANIFEST })
  }
  same("run_id", m.run_id, record.runId, "run.json")
  same("workflow_hash", m.workflow_hash, record.workflow.hash, "run.json")
  same("workflow_name", m.workflow_name, record.workflow.name, "run.json")
  same("workflow_file_sha256", m.workflow_file_sha256, sha256Tagged(workflowText), "workflow.json")
  same("policy_hash", m.policy_hash, policyHash(record.policy), "policy.json")
  same("inputs_hash", m.inputs_hash, inputsHash(record.inputs), "inputs.json")
  same("status", m.status, record.status, "run.json")
  same("started_at", m.started_at, record.startedAt, "run.json")
  return { record, run, logs }
}

const eventsEqual = (a: AuditChain.AuditEvent, b: AuditChain.AuditEvent): boolean => canonicalJson(a) === canonicalJson(b)

/** Which bundle file says what an audit event says (for naming the file of a disagreement). */
const fileOfEvent = (e: AuditChain.AuditEvent): string => {
  switch (AuditChain.eventTag(e)) {
    case "WorkflowStarted":
      return "workflow.json, policy.json, inputs.json or run.json"
    case "StepStarted":
      return "run.json, the step source or its event log"
    default:
      return "run.json"
  }
}

/** The calls of an event log, in order (denied calls never reach the log). */
const loggedCalls = (events: ReadonlyArray<Event>): ReadonlyArray<{ capability: string; digest: string }> =>
  events.flatMap((e) => (e.type === "CapCall" ? [{ capability: e.capability, digest: argsDigest(e.args) }] : []))

interface WorkflowInputs {
  readonly [step: string]: Readonly<Record<string, string>>
}

const workflowInputs = (text: string): WorkflowInputs => {
  const j = parseJson(text)
  if (!j.ok || j.value === null || typeof j.value !== "object") return {}
  const steps = (j.value as { steps?: unknown }).steps
  if (steps === null || typeof steps !== "object") return {}
  const out: Record<string, Record<string, string>> = {}
  for (const [id, s] of Object.entries(steps as Record<string, unknown>)) {
    const inputs = (s as { inputs?: unknown } | null)?.inputs
    if (inputs !== null && typeof inputs === "object") {
      out[id] = Object.fromEntries(Object.entries(inputs as Record<string, unknown>).filter(([, v]) => typeof v === "string")) as Record<string, string>
    }
  }
  return out
}

const checkRecord = (rebuilt: Rebuilt, entries: ReadonlyArray<AuditChain.Entry>, m: Manifest, c: Collector): void => {
  const { record } = rebuilt
  const projected = AuditChain.events(record)
  const n = Math.max(projected.length, entries.length)
  let shown = 0
  for (let i = 0; i < n && shown < 10; i++) {
    const p = projected[i]
    const e = entries[i]
    if (p === undefined) {
      c.fail(`the chain has an entry (${AuditChain.eventTag(e.event)}) the bundled record does not account for`, { file: "audit_log.json", entry: i })
      shown++
    } else if (e === undefined) {
      c.fail(`the bundled record implies a ${AuditChain.eventTag(p)} entry the chain does not have`, { file: "audit_log.json", entry: i })
      shown++
    } else if (e.redacted !== undefined ? !eventsEqual(AuditChain.blankFields(p, e.redacted.fields), e.event) : !eventsEqual(p, e.event)) {
      c.fail(`the chain's ${AuditChain.eventTag(e.event)} does not match what ${fileOfEvent(p)} record${e.redacted !== undefined ? " (in its unredacted fields)" : ""}`, {
        file: "audit_log.json",
        entry: i
      })
      shown++
    }
  }
  // each step's journaled calls are the calls in its event log
  const redactedSteps = redactedStepIds(m)
  for (const s of record.steps) {
    if (redactedSteps.has(s.id)) continue
    for (const a of s.attempts) {
      if (s.kind !== "source" || a.events.length === 0 && a.calls.length === 0) continue
      const logged = loggedCalls(a.events)
      const journaled = a.calls.filter((x) => x.decision === "allowed")
      const k = Math.max(logged.length, journaled.length)
      for (let i = 0; i < k; i++) {
        const l = logged[i]
        const j = journaled[i]
        if (l === undefined || j === undefined || l.capability !== j.capability || l.digest !== stripTag(j.argsDigest)) {
          c.fail(
            `step ${s.id} attempt ${a.attempt}: allowed call #${i} is ${j === undefined ? "missing" : `${j.capability} (${j.argsDigest.slice(0, 12)}…)`} in run.json but ${l === undefined ? "missing" : `${l.capability} (${l.digest.slice(0, 12)}…)`} in the event log`,
            { file: "run.json", step: s.id }
          )
          break
        }
      }
    }
  }
  // a call the step's policy marks as needing approval ran only with a granted approval of that call
  for (const s of record.steps) {
    if (redactedSteps.has(s.id)) continue
    for (const a of s.attempts) {
      const journaled = a.calls.filter((x) => x.decision === "allowed")
      let i = 0
      for (const e of a.events) {
        if (e.type !== "CapCall") continue
        const j = journaled[i++]
        if (j === undefined || !isCapabilityName(e.capability) || !needsApproval(a.policy, e.capability, e.args)) continue
        const ok = record.approvals.some((x) => x.kind === "call" && x.stepId === s.id && (x.attempt ?? a.attempt) === a.attempt && x.seq === j.seq && x.decision === "granted")
        if (!ok) c.fail(`step ${s.id} attempt ${a.attempt}: call #${j.seq} (${e.capability}) needs a person's approval under the step's policy, and the record has none granted for it`, { file: "run.json", step: s.id })
      }
    }
  }
  // an external trigger's payload became its step's output
  for (const t of record.triggers) {
    const s = record.steps.find((x) => x.id === t.stepId)
    if (s?.outputJson === undefined || redactedSteps.has(t.stepId)) continue
    let got: string | undefined
    try {
      got = sha256Hex(inputText(JSON.parse(s.outputJson) as Json))
    } catch {
      continue // the output file's own check reports it
    }
    if (got !== stripTag(t.payloadHash)) c.fail(`step ${t.stepId}: its output is not the trigger payload the record holds (payload ${t.payloadHash})`, { file: "run.json", step: t.stepId })
  }
  // each step input is the output of the step it names
  const wanted = workflowInputs(record.workflow.text)
  const outputs = new Map(record.steps.map((s) => [s.id, s.outputJson]))
  // … and what the step read with step.input is that value
  for (const s of record.steps) {
    if (redactedSteps.has(s.id)) continue
    for (const a of s.attempts) {
      a.events.forEach((e, i) => {
        if (e.type !== "CapCall" || e.capability !== "step.input" || typeof e.args[0] !== "string") return
        const next = a.events[i + 1]
        if (next?.type !== "CapResult" || next.capability !== "step.input" || typeof next.result !== "string") return
        const name = e.args[0]
        const ref = wanted[s.id]?.[name]
        const up = ref === undefined ? undefined : /^(.+)\.result$/.exec(ref)
        let expected: string | undefined
        if (up !== null && up !== undefined) {
          const text = outputs.get(up[1])
          if (text === undefined) return
          try {
            expected = inputText(JSON.parse(text) as Json)
          } catch {
            return
          }
        } else if (typeof record.inputs[name] === "string") {
          expected = record.inputs[name] as string
        }
        if (expected !== undefined && expected !== next.result) {
          c.fail(`step ${s.id} attempt ${a.attempt}: step.input("${name}") answered a value that is not ${up ? `the output of ${up[1]}` : `the run input ${name}`}`, {
            file: runStepLog(rebuilt, s.id, a.attempt),
            step: s.id
          })
        }
      })
    }
  }
  for (const s of record.steps) {
    if (s.status === "skipped" || s.status === "pending") continue
    for (const [name, ref] of Object.entries(wanted[s.id] ?? {})) {
      const m = /^(.+)\.result$/.exec(ref)
      if (m === null || !outputs.has(m[1])) continue
      const up = outputs.get(m[1])
      const have = s.inputs[name]
      if (up === undefined || have === undefined) {
        c.fail(`step ${s.id}: input ${name} (${ref}) is not in the record`, { file: "run.json", step: s.id })
        continue
      }
      let upJson: unknown
      try {
        upJson = JSON.parse(up)
      } catch {
        continue // the output file's own check reports it
      }
      if (canonicalJson(upJson) !== canonicalJson(have)) {
        c.fail(`step ${s.id}: input ${name} is not the output of ${m[1]} it names`, { file: "run.json", step: s.id })
      }
    }
  }
}

const runStepLog = (rebuilt: Rebuilt, step: string, attempt: number): string =>
  rebuilt.run.steps.find((x) => x.id === step)?.attempts.find((a) => a.attempt === attempt)?.event_log ?? "run.json"

/**
 * Each step ran under the run policy (policy.json) narrowed to the step as workflow.json declares
 * it: the policy in each event log must be exactly that (so no step can claim a policy of its own).
 */
const checkStepPolicies = (rebuilt: Rebuilt, c: Collector): Effect.Effect<void> =>
  Effect.sync(() => {
    const j = parseJson(rebuilt.record.workflow.text)
    const wf = j.ok ? decodeWorkflow(j.value) : undefined
    if (wf === undefined || Either.isLeft(wf)) {
      c.fail(`not a workflow this build reads${wf !== undefined && Either.isLeft(wf) ? `: ${wf.left[0]?.path}: ${wf.left[0]?.message}` : ""}`, { file: "workflow.json" })
      return
    }
    const h = workflowHash(wf.right)
    if (h !== rebuilt.record.workflow.hash) c.fail(`hashes to ${h}, the run records workflow_hash ${rebuilt.record.workflow.hash}`, { file: "workflow.json" })
    for (const s of rebuilt.record.steps) {
      const def = wf.right.steps[s.id]
      if (def === undefined) {
        c.fail(`step ${s.id} is not in workflow.json`, { file: "run.json", step: s.id })
        continue
      }
      const want = policyHash(stepPolicy(rebuilt.record.policy, def))
      for (const a of s.attempts) {
        if (policyHash(a.policy) !== want) {
          c.fail(`step ${s.id} attempt ${a.attempt}: its policy (${policyHash(a.policy)}) is not policy.json narrowed to the step (${want})`, {
            file: runStepLog(rebuilt, s.id, a.attempt),
            step: s.id
          })
        }
      }
    }
  })

const redactedStepIds = (m: Manifest): ReadonlySet<string> =>
  new Set(m.redactions.filter((r) => r.files.some((f) => f.startsWith("event_logs/") || f.startsWith("outputs/"))).flatMap((r) => (r.step_id === null ? [] : [r.step_id])))

// ---------------------------------------------------------------------------------------------
// re-execution

/** Failures that come from outside the program: a replay cannot reproduce them, only the events before them. */
const STOPPED_FROM_OUTSIDE: ReadonlySet<string> = new Set(["wall_time_exceeded", "approval_rejected", "replay_diverged", "cancelled", "interrupted"])

const reexecuteStep = (rebuilt: Rebuilt, s: StepRecord, c: Collector): Effect.Effect<boolean> =>
  Effect.gen(function*() {
    const runStep = rebuilt.run.steps.find((x) => x.id === s.id)!
    const path = s.source
    if (path === undefined) {
      c.fail(`step ${s.id}: a source step without a source`, { file: "run.json", step: s.id })
      return false
    }
    const source = rebuilt.record.workflow.sources[path]
    if (source === undefined) return false // reported by the record check
    const compiled = compileSource(s.sourceFile ?? path, source)
    if (!compiled.ok && s.attempts.every((a) => a.status === "failed" && (a.errorKind === "compile_error" || a.errorKind === "io_error"))) {
      c.notes.push(`step ${s.id}: failed before it ran (${s.attempts[0]?.errorKind}); the bundled source does not compile either, as recorded`)
      return true
    }
    if (!compiled.ok) {
      const d = compiled.diagnostics[0]
      c.fail(`step ${s.id}: the bundled source does not compile: ${d.line}:${d.col}: ${d.message}`, { file: sourceFile(path), step: s.id })
      return false
    }
    const program = compiled.program
    const hash = programHash(program)
    let ok = true
    for (let i = 0; i < s.attempts.length; i++) {
      const a = s.attempts[i]
      const ra = runStep.attempts[i]
      const where = { file: ra.event_log ?? sourceFile(path), step: s.id }
      if (a.programHash !== undefined && stripTag(a.programHash) !== stripTag(hash)) {
        c.fail(`step ${s.id} attempt ${a.attempt}: the bundled source compiles to ${hash}, the run recorded ${a.programHash}`, { file: sourceFile(path), step: s.id })
        ok = false
        continue
      }
      const log = ra.event_log === null ? undefined : rebuilt.logs.get(ra.event_log)
      if (log === undefined) {
        ok = false
        continue // the record check reported it
      }
      if (a.status === "running" || a.status === "paused") continue
      // replay under the recorded policy; a call that needed a person's approval ran because one was
      // given (the record check requires a granted approval for each), so approvals count as granted
      const own = EventLog.makeMemory()
      const replay = Replay.make(log, { log: own })
      const gateway = Gateway.make({ policy: log.header.policy, handlers: replay.handlers, log: own, traced: false, approvalsGranted: true })
      const exit = yield* Vm.run(program, {}).pipe(
        Effect.exit,
        Effect.provideService(Gateway.Gateway, gateway),
        Effect.provideService(EventLog.EventLog, own)
      )
      const verdict = replay.session.verdict(own.events())
      // a run stopped from outside (a timeout, a rejected approval, a divergence, a cancel) ends
      // where it was stopped: the replay must match every recorded event, and may only want more
      const stopped = a.status === "failed" && a.errorKind !== undefined && STOPPED_FROM_OUTSIDE.has(a.errorKind)
      if (stopped && (verdict._tag === "Identical" || verdict.divergence.kind === "extra-call") && (verdict._tag === "Identical" || verdict.divergence.index === log.events.length)) {
        c.notes.push(`step ${s.id} attempt ${a.attempt}: stopped from outside (${a.errorKind}); re-executed up to where it stopped (${log.events.length} events identical)`)
        continue
      }
      if (verdict._tag === "Diverged") {
        c.fail(`step ${s.id} attempt ${a.attempt}: re-execution ${Replay.formatDivergence(verdict.divergence).map((l) => l.trim()).join("; ").replace(/^replay: /, "")}`, where)
        ok = false
        continue
      }
      if (a.status === "completed") {
        if (Exit.isFailure(exit)) {
          const e = Cause.failureOption(exit.cause)
          c.fail(`step ${s.id} attempt ${a.attempt}: re-execution failed (${Option.isSome(e) ? `${e.value.kind}: ${e.value.message}` : "defect"}), the run completed`, where)
          ok = false
          continue
        }
        const h = outputHashOf(outputJsonOf(exit.value))
        const recorded = stripTag(a.outputHash ?? s.outputHash ?? "")
        if (h !== recorded) {
          // the output's stored form may order a map's keys differently; compare by content too
          const same = s.outputJson !== undefined && (() => {
            try {
              return canonicalJson(JSON.parse(s.outputJson)) === canonicalJson(JSON.parse(outputJsonOf(exit.value)))
            } catch {
              return false
            }
          })()
          if (!same) {
            c.fail(`step ${s.id} attempt ${a.attempt}: re-execution's output hashes to ${h}, the run recorded ${recorded}`, where)
            ok = false
          }
        }
      } else {
        if (Exit.isSuccess(exit)) {
          c.fail(`step ${s.id} attempt ${a.attempt}: re-execution completed, the run recorded a failure (${a.error ?? "failed"})`, where)
          ok = false
          continue
        }
        const e = Cause.failureOption(exit.cause)
        const got = Option.isSome(e) ? `${e.value.kind}: ${e.value.message}` : "defect"
        if (a.error !== undefined && a.errorKind !== undefined && Option.isSome(e) && e.value.kind !== a.errorKind) {
          c.fail(`step ${s.id} attempt ${a.attempt}: re-execution failed with ${got}, the run recorded ${a.error}`, where)
          ok = false
        }
      }
    }
    return ok
  })

// ---------------------------------------------------------------------------------------------
// the whole check

const decodeManifest = Schema.decodeUnknownEither(ManifestSchema, { errors: "all" })

export const verifyFiles = (files: Files, options: VerifyOptions = {}): Effect.Effect<VerifyReport> =>
  Effect.gen(function*() {
    const cs = Object.fromEntries(CHECKS.map((n) => [n, new Collector(n)])) as Record<CheckName, Collector>
    const report = (m: Manifest | undefined, reexecuted: ReadonlyArray<string>, redacted: ReadonlyArray<number>): VerifyReport => {
      const checks = CHECKS.map((n) => cs[n].result())
      return {
        ok: checks.every((x) => x.status !== "failed"),
        runId: m?.run_id,
        bundleHash: m?.bundle_hash,
        checks,
        reexecuted,
        redacted
      }
    }
    const skipFrom = (from: CheckName, why: string) => {
      for (const n of CHECKS.slice(CHECKS.indexOf(from))) {
        cs[n].skipped = true
        cs[n].notes.push(why)
      }
    }

    // 2. manifest (first: everything else is read through it)
    const mc = cs.manifest
    const mText = textOf(files, MANIFEST, mc)
    if (mText === undefined) {
      if (!files.has(MANIFEST)) mc.fail("missing: this is not an evidence bundle", { file: MANIFEST })
      skipFrom("bundle", "no readable manifest")
      cs.manifest.skipped = false
      return report(undefined, [], [])
    }
    const mParsed = parseJson(mText)
    if (!mParsed.ok) {
      mc.fail(`${mParsed.where}: ${mParsed.message}`, { file: MANIFEST })
      skipFrom("bundle", "no readable manifest")
      cs.manifest.skipped = false
      return report(undefined, [], [])
    }
    const mDecoded = decodeManifest(mParsed.value)
    if (Either.isLeft(mDecoded)) {
      const i = schemaIssues(mDecoded.left)[0]
      mc.fail(`${i.path}: ${i.message}`, { file: MANIFEST })
      skipFrom("bundle", "no readable manifest")
      cs.manifest.skipped = false
      return report(undefined, [], [])
    }
    const m = mDecoded.right
    const raw = mParsed.value as Record<string, unknown>
    if (JSON.stringify(raw, null, 2) + "\n" !== mText) mc.fail("not in its canonical form (two-space pretty JSON with one final newline): its bytes were changed", { file: MANIFEST })
    const recomputed = sha256Hex(JSON.stringify({ ...raw, bundle_hash: "" }, null, 2) + "\n")
    if (recomputed !== m.bundle_hash) mc.fail(`bundle_hash is ${m.bundle_hash}, the manifest hashes to ${recomputed}`, { file: MANIFEST })
    if (options.expectedBundleHash !== undefined && stripTag(options.expectedBundleHash) !== recomputed) {
      mc.fail(`the bundle hash is ${recomputed}, expected ${stripTag(options.expectedBundleHash)}`, { file: MANIFEST })
    }
    if (!/^1(\.|$)/.test(m.format_version)) mc.fail(`format_version ${m.format_version}: this build reads bundles of format 1.x`, { file: MANIFEST })
    void bundleHashOf

    // 1. bundle.json
    const bc = cs.bundle
    const bText = textOf(files, BUNDLE, bc)
    if (bText === undefined) {
      if (!files.has(BUNDLE)) bc.fail("missing: the bundle is unfinished (bundle.json is written last) or predates format 1.0", { file: BUNDLE })
    } else if (bText !== bundleJsonText(m)) {
      const j = parseJson(bText)
      const fv = j.ok && j.value !== null && typeof j.value === "object" ? (j.value as { format_version?: unknown }).format_version : undefined
      bc.fail(
        typeof fv === "string" && !/^1(\.|$)/.test(fv)
          ? `format_version ${fv}: this build reads bundles of format 1.x`
          : "does not match the manifest (format, run, workflow hash, components and bundle_hash all come from it)",
        { file: BUNDLE }
      )
    }

    // 3. checksums
    const cc = cs.checksums
    for (const [p, want] of Object.entries(m.file_checksums)) {
      const f = files.get(p)
      if (f === undefined) cc.fail("missing (the manifest lists it)", { file: p })
      else {
        const got = sha256Hex(bytes(f))
        if (got !== stripTag(want)) cc.fail(`checksum mismatch: the manifest says ${want}, the file hashes to ${got}`, { file: p })
      }
    }
    for (const p of [...files.keys()].sort()) {
      if (!UNLISTED.includes(p) && !(p in m.file_checksums)) cc.fail("not covered by the manifest (a file added to the bundle)", { file: p })
    }
    for (const p of REQUIRED) if (!(p in m.file_checksums)) cc.fail("required file missing from the manifest", { file: p })

    if (options.stopEarly === true && CHECKS.some((n) => cs[n].problems.length > 0)) {
      skipFrom("chain", "an earlier check failed (stopped early)")
      return report(m, [], [])
    }

    // 4. chain
    const ch = cs.chain
    let entries: ReadonlyArray<AuditChain.Entry> | undefined
    const aRaw = jsonOf(files, "audit_log.json", ch)
    if (aRaw !== undefined) {
      const d = AuditChain.decode(aRaw)
      if (Either.isLeft(d)) ch.fail(`${d.left.path}: ${d.left.message}`, { file: "audit_log.json" })
      else {
        entries = d.right
        const v = AuditChain.verify(entries)
        for (const p of v.problems.slice(0, 10)) ch.fail(p.reason, { file: "audit_log.json", entry: p.sequence })
        if (v.head !== m.audit_log_hash) ch.fail(`the chain's head is ${v.head}, the manifest's audit_log_hash is ${m.audit_log_hash}`, { file: "audit_log.json" })
        for (const r of v.redacted) {
          const e = entries[r]
          ch.notes.push(`entry ${r} (${AuditChain.eventTag(e.event)}) is redacted (${e.redacted!.reason}): fields ${e.redacted!.fields.join(", ")} are not checked`)
        }
      }
    } else if (!files.has("audit_log.json")) {
      ch.fail("missing", { file: "audit_log.json" })
    }
    const redacted = entries?.flatMap((e) => (e.redacted !== undefined ? [e.sequence] : [])) ?? []

    // 5. record
    const rc = cs.record
    const rebuilt = rebuild(files, m, rc)
    if (rebuilt !== undefined && entries !== undefined) checkRecord(rebuilt, entries, m, rc)
    if (rebuilt !== undefined) yield* checkStepPolicies(rebuilt, rc)
    else if (rebuilt !== undefined) {
      rc.skipped = true
      rc.notes.push("the audit log could not be read")
    }

    // 6. signatures
    const sc = cs.signature
    const hasDsse = files.has(DSSE_FILE)
    const hasSigstore = files.has(SIGSTORE_FILE)
    if (!hasDsse && !hasSigstore) {
      if (options.requireSignature === true || options.verifyKey !== undefined) sc.fail("the bundle carries no attestation (run `boruna evidence attest`)", { file: DSSE_FILE })
      else {
        sc.skipped = true
        sc.notes.push("no attestation in the bundle")
      }
    } else {
      if (options.requireSignature === true && options.verifyKey === undefined) {
        sc.fail("--require-signature needs --verify-key KEY: a signature proves nothing until it is checked against a key you trust", { file: DSSE_FILE })
      }
      const Attest = yield* Effect.promise(() => import("./EvidenceAttest.js"))
      const r = yield* Attest.verifyAttestation(files, m, { verifyKey: options.verifyKey })
      for (const p of r.problems) sc.fail(p.message, { file: p.file })
      sc.notes.push(...r.notes)
    }

    // 7. re-execution
    const xc = cs.reexecute
    const reexecuted: Array<string> = []
    if (options.reexecute === false) {
      xc.skipped = true
      xc.notes.push("re-execution not asked for")
    } else if (rebuilt === undefined) {
      xc.skipped = true
      xc.notes.push("the bundled record could not be read")
    } else {
      const redactedSteps = redactedStepIds(m)
      for (const s of rebuilt.record.steps) {
        if (s.kind === "typescript") {
          xc.notes.push(`step ${s.id}: a TypeScript step; its code is not in the bundle, so it is not re-executed`)
          continue
        }
        if (s.kind !== "source" || s.attempts.length === 0) continue
        if (redactedSteps.has(s.id)) {
          const r = m.redactions.find((x) => x.step_id === s.id)!
          xc.notes.push(`step ${s.id}: not re-executed: its recorded data was redacted (audit entry ${r.entry}: ${r.reason})`)
          continue
        }
        if (yield* reexecuteStep(rebuilt, s, xc)) reexecuted.push(s.id)
      }
    }
    return report(m, reexecuted, redacted)
  })

/** Verify the bundle in `dir`. */
export const verifyDir = (dir: string, options: VerifyOptions = {}) =>
  Effect.flatMap(
    Effect.promise(() => import("./EvidenceBundle.js")),
    (B) => Effect.flatMap(B.readFiles(dir), (files) => verifyFiles(files, options))
  )

/** The report as lines for a terminal. */
export const formatReport = (r: VerifyReport): ReadonlyArray<string> => {
  const lines: Array<string> = []
  for (const c of r.checks) {
    lines.push(`${c.status === "ok" ? "ok     " : c.status === "failed" ? "FAILED " : "skipped"} ${c.name}`)
    for (const p of c.problems) {
      const where = [p.file, p.entry === undefined ? undefined : `entry ${p.entry}`, p.step === undefined ? undefined : `step ${p.step}`].filter((x) => x !== undefined).join(", ")
      lines.push(`  error: ${where === "" ? "" : `${where}: `}${p.message}`)
    }
    for (const nt of c.notes) lines.push(`  note: ${nt}`)
  }
  lines.push(
    r.ok
      ? `evidence: verified (run ${r.runId}, bundle ${r.bundleHash}${r.reexecuted.length > 0 ? `, ${r.reexecuted.length} step(s) re-executed` : ""})`
      : `evidence: NOT verified (${r.checks.reduce((n, c) => n + c.problems.length, 0)} problem(s))`
  )
  return lines
}
