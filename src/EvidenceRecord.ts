/**
 * The run record evidence is made from: a plain, in-memory description of one finished (or
 * paused) workflow run — the workflow as it ran (its file text and every step source), the run
 * policy, the inputs, and per step its attempts, each with the VM event log of that attempt, the
 * capability calls with their decisions, the approvals and triggers. The workflow runner's store
 * fills it (`EvidenceStore.ts` style adapters); tests build it by running programs directly.
 *
 * Everything evidence derives — the audit chain, the bundle, the attestation — is a pure function
 * of this record, so the same record always yields the same bytes.
 */
import { createHash } from "node:crypto"
import type { Event } from "./Event.js"
import type { Policy } from "./Policy.js"
import type { Value } from "./Value.js"
import { canonicalJson, fromJson, type Json, toJson } from "./ValueJson.js"
import type { WorkflowDef } from "./WorkflowFile.js"
import type * as Store from "./WorkflowStore.js"

export type RunStatus = "running" | "paused" | "completed" | "failed" | "cancelled"
export type StepStatus = "pending" | "running" | "completed" | "failed" | "skipped" | "awaiting_approval" | "awaiting_trigger" | "cancelled"
export type StepKind = "source" | "approval_gate" | "external_trigger" | "typescript"

/** The policy's decision on one capability call. */
export type Decision = "allowed" | "denied" | "budget_exceeded" | "approval_required"

/** One capability call of one attempt, as the runner journaled it. */
export interface CallRecord {
  /** ordinal of the call in the attempt's VM run (0-based) */
  readonly seq: number
  readonly capability: string
  /** hex SHA-256 of the canonical JSON of the arguments (`argsDigest`) */
  readonly argsDigest: string
  readonly decision: Decision
  /** hex SHA-256 of the canonical JSON of the result (or of the error), when there is one */
  readonly resultDigest?: string | undefined
  /** the call was in flight when the process died and ran again (at-least-once) */
  readonly reexecuted: boolean
  /** ISO-8601 times, when the runner recorded them (the report's waterfall) */
  readonly startedAt?: string | undefined
  readonly endedAt?: string | undefined
  readonly error?: string | undefined
}

export interface AttemptRecord {
  readonly attempt: number
  readonly status: "completed" | "failed" | "running" | "paused"
  readonly startedAt?: string | undefined
  readonly endedAt?: string | undefined
  /** the VM event log of this attempt: exactly what replay needs */
  readonly events: ReadonlyArray<Event>
  readonly calls: ReadonlyArray<CallRecord>
  /** the policy this attempt ran under (the run policy narrowed to the step) */
  readonly policy: Policy
  /** `programHash` of the compiled step (source steps) */
  readonly programHash?: string | undefined
  /** the attempt's output: its compact Value JSON text, exactly as stored (completed) */
  readonly outputJson?: string | undefined
  /** hex SHA-256 of `outputJson` */
  readonly outputHash?: string | undefined
  /** `kind: message` of the failure (failed) */
  readonly error?: string | undefined
  readonly errorKind?: string | undefined
}

export interface ApprovalRecord {
  /** `gate`: an approval_gate step; `call`: one capability call of a step */
  readonly kind: "gate" | "call"
  readonly stepId: string
  readonly attempt?: number | undefined
  readonly seq?: number | undefined
  readonly capability?: string | undefined
  /** digest of what is approved: the call (run, step, attempt, seq, capability, args) or the gate */
  readonly digest: string
  readonly role?: string | undefined
  /** a readable rendering of the call's arguments, when the runner kept one */
  readonly rendering?: string | undefined
  readonly requestedAt?: string | undefined
  readonly decision: "granted" | "denied" | "pending"
  readonly approver?: string | undefined
  readonly reason?: string | undefined
  readonly decidedAt?: string | undefined
}

export interface TriggerRecord {
  readonly stepId: string
  /** `sha256:` digest of the payload's canonical JSON */
  readonly payloadHash: string
  readonly receivedAt?: string | undefined
}

export interface StepRecord {
  readonly id: string
  readonly kind: StepKind
  /** the source path as written in workflow.json (source steps) */
  readonly source?: string | undefined
  /** the file name the source was compiled under (it is part of the program hash) */
  readonly sourceFile?: string | undefined
  readonly dependsOn: ReadonlyArray<string>
  readonly status: StepStatus
  readonly attempts: ReadonlyArray<AttemptRecord>
  /** the resolved inputs (local name → Value JSON) */
  readonly inputs: Readonly<Record<string, Json>>
  /** the step's final output as compact Value JSON text (exactly as stored) and its hex SHA-256 */
  readonly outputJson?: string | undefined
  readonly outputHash?: string | undefined
  readonly error?: string | undefined
  readonly startedAt?: string | undefined
  readonly endedAt?: string | undefined
  readonly durationMs?: number | undefined
}

export interface RunRecord {
  readonly runId: string
  readonly workflow: {
    readonly name: string
    readonly version: string
    /** the runner's workflow hash */
    readonly hash: string
    /** workflow.json, verbatim */
    readonly text: string
    /** every step source, by the path written in workflow.json */
    readonly sources: Readonly<Record<string, string>>
  }
  readonly policy: Policy
  /** run inputs: name → Value JSON */
  readonly inputs: Readonly<Record<string, Json>>
  readonly status: RunStatus
  readonly startedAt: string
  readonly endedAt?: string | undefined
  readonly durationMs?: number | undefined
  readonly borunaVersion: string
  /** steps in execution (topological) order */
  readonly steps: ReadonlyArray<StepRecord>
  readonly approvals: ReadonlyArray<ApprovalRecord>
  readonly triggers: ReadonlyArray<TriggerRecord>
}

// ---------------------------------------------------------------------------------------------
// hashing helpers (one definition, used by the chain, the bundle and the verifier)

/** Lower-case hex SHA-256 of text (UTF-8) or bytes. */
export const sha256Hex = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex")

/** `sha256:<hex>` of text or bytes. */
export const sha256Tagged = (data: string | Uint8Array): string => "sha256:" + sha256Hex(data)

/** `sha256:` digest of any JSON by its canonical form (keys sorted, no whitespace). */
export const jsonDigest = (j: unknown): string => sha256Tagged(canonicalJson(j))

/** An output's stored form: compact Value JSON (`{"Int":0}`), as the runner stores it. */
export const outputJsonOf = (v: Value): string => JSON.stringify(toJson(v))

/** hex SHA-256 of an output's stored text. */
export const outputHashOf = (outputJson: string): string => sha256Hex(outputJson)

/** hex SHA-256 of the canonical JSON of call arguments, as the runner journals it. */
export const argsDigest = (args: ReadonlyArray<Value>): string => sha256Hex(canonicalJson(args.map(toJson)))

/** hex SHA-256 of the canonical JSON of a call's result. */
export const resultDigest = (v: Value): string => sha256Hex(canonicalJson(toJson(v)))

/** Hash of the run inputs. */
export const inputsHash = (inputs: Readonly<Record<string, Json>>): string => jsonDigest(inputs)

// ---------------------------------------------------------------------------------------------
// from the workflow runner's store


/** What `fromView` needs from modules it does not import (so this module stays light). */
export interface ViewDeps {
  readonly decodeEvent: (line: string, file: string, lineNo: number) => { readonly _tag: "Right"; readonly right: Event } | { readonly _tag: "Left"; readonly left: { readonly message: string } }
  readonly stepPolicy: (run: Policy, step: WorkflowDef["steps"][string]) => Policy
  readonly decodePolicy: (json: unknown) => Policy
  readonly order: (w: WorkflowDef) => ReadonlyArray<string>
  /** the step's source text, by the path written in workflow.json (undefined: unreadable) */
  readonly readSource: (path: string) => string | undefined
  /** `programHash` of the source compiled as `file`, or undefined when it does not compile */
  readonly programHash: (file: string, source: string) => string | undefined
  readonly borunaVersion: string
}

export class RecordError extends Error {
  readonly _tag = "RecordError"
}

const SAFE_SOURCE = /^(?:[A-Za-z0-9_][A-Za-z0-9_.-]*\/)*[A-Za-z0-9_][A-Za-z0-9_.-]*$/

const TERMINAL_RUN = new Set(["completed", "failed", "cancelled"])

const ms = (a: string | null | undefined, b: string | null | undefined): number | undefined => {
  if (a == null || b == null) return undefined
  const d = Date.parse(b) - Date.parse(a)
  return Number.isFinite(d) && d >= 0 ? d : undefined
}

/** The value a step reads with `step.input(name)`, as Value JSON: run inputs are strings, upstream inputs their output. */
const inputJson = (v: string): Json => toJson(v)

/**
 * A run record from the runner's store (`WorkflowStore.readRun`). The workflow is the stored
 * (canonical) workflow.json, pretty-printed; step sources are read now, from where the run read them.
 */
export const fromView = (view: Store.RunView, workflow: WorkflowDef, deps: ViewDeps): RunRecord => {
  const run = view.run
  const policy = deps.decodePolicy(JSON.parse(run.policy_json))
  const runInputs = JSON.parse(run.inputs_json) as Record<string, string>
  const stored = new Map(view.steps.map((s) => [s.step_id, s]))
  const sources: Record<string, string> = {}
  const steps: Array<StepRecord> = []
  for (const id of deps.order(workflow)) {
    const def = workflow.steps[id]
    const s = stored.get(id)
    const kind: StepKind = def.kind === "source" && def.source === undefined ? "typescript" : def.kind
    let source: string | undefined
    let sourceText: string | undefined
    if (kind === "source" && def.source !== undefined) {
      source = SAFE_SOURCE.test(def.source) && !def.source.split("/").includes("..") ? def.source : `steps/${id}.ax`
      sourceText = deps.readSource(def.source)
      if (sourceText === undefined) throw new RecordError(`step ${id}: cannot read its source ${def.source} (evidence bundles the step sources the run used)`)
      sources[source] = sourceText
    }
    const sourceFile = source === undefined ? undefined : `sources/${source}`
    const program = sourceText === undefined || sourceFile === undefined ? undefined : deps.programHash(sourceFile, sourceText)
    const inputs: Record<string, Json> = {}
    for (const [k, v] of Object.entries(runInputs)) inputs[k] = inputJson(v)
    for (const [name, ref] of Object.entries(def.inputs)) {
      const up = stored.get(ref.slice(0, ref.indexOf(".")))
      if (up?.output_json != null) inputs[name] = JSON.parse(up.output_json) as Json
    }
    const attemptsOf = view.attempts.filter((a) => a.step_id === id).sort((a, b) => a.attempt - b.attempt)
    const attempts: Array<AttemptRecord> = kind === "approval_gate" || kind === "external_trigger"
      ? []
      : attemptsOf.map((a) => {
        const lines = a.event_log.split("\n").filter((l) => l !== "")
        const events = lines.map((l, i) => {
          const e = deps.decodeEvent(l, `${run.run_id}/${id}/${a.attempt}`, i + 1)
          if (e._tag === "Left") throw new RecordError(`step ${id} attempt ${a.attempt}: its stored event log does not decode: ${e.left.message}`)
          return e.right
        })
        const completed = a.status === "completed"
        return {
          attempt: a.attempt,
          status: completed ? "completed" : a.status === "failed" ? "failed" : a.status === "running" ? "running" : "paused",
          startedAt: a.started_at ?? undefined,
          endedAt: a.ended_at ?? undefined,
          events,
          calls: view.calls
            .filter((c) => c.step_id === id && c.attempt === a.attempt)
            .sort((x, y) => x.seq - y.seq)
            .map((c) => ({
              seq: c.seq,
              capability: c.capability,
              argsDigest: c.args_digest,
              decision: c.decision ?? "allowed",
              resultDigest: c.result_digest ?? undefined,
              reexecuted: c.reexecuted,
              startedAt: c.started_at,
              endedAt: c.ended_at ?? undefined
            })),
          policy: deps.stepPolicy(policy, def),
          programHash: program,
          outputJson: completed ? s?.output_json ?? undefined : undefined,
          outputHash: completed ? s?.output_hash ?? undefined : undefined,
          error: a.error ?? undefined,
          errorKind: a.error_kind ?? undefined
        } satisfies AttemptRecord
      })
    steps.push({
      id,
      kind,
      source,
      sourceFile,
      dependsOn: [...def.depends_on],
      status: s?.status ?? "pending",
      attempts,
      inputs,
      outputJson: s?.output_json ?? undefined,
      outputHash: s?.output_hash ?? undefined,
      error: s?.error ?? undefined,
      startedAt: s?.started_at ?? undefined,
      endedAt: s?.ended_at ?? undefined,
      durationMs: s?.duration_ms ?? undefined
    })
  }
  const approvals: Array<ApprovalRecord> = []
  const triggers: Array<TriggerRecord> = []
  for (const a of [...view.approvals].sort((x, y) => (x.created_at < y.created_at ? -1 : x.created_at > y.created_at ? 1 : x.id < y.id ? -1 : 1))) {
    if (a.kind === "trigger") {
      if (a.status === "triggered") triggers.push({ stepId: a.step_id, payloadHash: sha256Hex(a.payload_json ?? ""), receivedAt: a.decided_at ?? undefined })
      continue
    }
    approvals.push({
      kind: a.kind,
      stepId: a.step_id,
      attempt: a.kind === "call" ? a.attempt : undefined,
      seq: a.seq ?? undefined,
      capability: a.capability ?? undefined,
      digest: a.digest,
      role: a.required_role ?? undefined,
      rendering: a.args_rendered ?? undefined,
      requestedAt: a.created_at,
      decision: a.status === "approved" ? "granted" : a.status === "rejected" ? "denied" : "pending",
      approver: a.approver ?? undefined,
      reason: a.reason ?? undefined,
      decidedAt: a.decided_at ?? undefined
    })
  }
  const terminal = TERMINAL_RUN.has(run.status)
  return {
    runId: run.run_id,
    workflow: {
      name: run.workflow_name,
      version: run.workflow_version,
      hash: run.workflow_hash,
      text: JSON.stringify(JSON.parse(run.workflow_json), null, 2) + "\n",
      sources
    },
    policy,
    inputs: runInputs,
    status: run.status,
    startedAt: run.created_at,
    endedAt: terminal ? run.updated_at : undefined,
    durationMs: terminal ? ms(run.created_at, run.updated_at) : undefined,
    borunaVersion: deps.borunaVersion,
    steps,
    approvals,
    triggers
  }
}

/** The text `step.input(name)` answers with for an input's Value JSON (Strings as themselves). */
export const inputText = (j: Json): string => {
  const v = fromJson(j)
  return typeof v === "string" ? v : JSON.stringify(toJson(v))
}
