/**
 * The durable DAG runner on `@effect/workflow` (docs/workflows.md).
 *
 * - A run is one engine workflow `boruna/run`, keyed by `run_id`. Its body schedules the DAG:
 *   waves in Kahn order, steps of a wave concurrently (bounded by the run's concurrency), retries
 *   per `retry_on` class with back-off, dependents of a failed step `skipped`.
 * - Each step attempt is a child workflow `boruna/step`, keyed `run_id/step_id/attempt`.
 * - Each capability call inside a step is an engine Activity named
 *   `cap/STEP/ATTEMPT/SEQ/CAPABILITY`; it runs `Gateway.call` (policy, budget, live handler,
 *   `boruna.cap` span) and journals `{argsHash, decision, result | error}`. Denials are values.
 *   When a step is re-run after a crash, the VM executes again and each completed call returns its
 *   journaled result; a different arguments hash (or capability) fails closed with `replay_diverged`.
 *   The step's event log is rebuilt from the journal exactly as the gateway writes it, so it comes
 *   out byte-identical to an uninterrupted run.
 * - Pauses (approval gates, per-call approvals, external triggers) are `DurableDeferred`s in the
 *   step workflow, recorded as pending in the store with a hashed random token.
 *
 * Everything the engine journals is private resume state; the run's record is `WorkflowStore`.
 * The engine layer is a parameter (`sqliteEngine`, `memoryEngine`, `Cluster.clusterEngine`).
 */
import * as ClusterSchema from "@effect/cluster/ClusterSchema"
import * as Activity from "@effect/workflow/Activity"
import * as DurableClock from "@effect/workflow/DurableClock"
import * as DurableDeferred from "@effect/workflow/DurableDeferred"
import * as Workflow from "@effect/workflow/Workflow"
import * as WorkflowEngine from "@effect/workflow/WorkflowEngine"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import { hash, randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { basename, join, resolve } from "node:path"
import { argsDigest, callDigest, gateDigest, mintToken, needsApproval, renderCall, tokenHash } from "./Approval.js"
import { CAPABILITIES, type CapabilityName } from "./Capability.js"
import { compileSource } from "./Compiler.js"
import { BudgetExceeded, type CapabilityError, Denied, HandlerFailure, RuntimeError } from "./Errors.js"
import type { CallSite } from "./Event.js"
import * as EventLog from "./EventLog.js"
import { decodeEvent, encodeCall, encodeEvent, encodeResult, encodeValue } from "./EventLogFile.js"
import * as Gateway from "./Gateway.js"
import * as Handlers from "./Handlers.js"
import type { Policy } from "./Policy.js"
import { isAllowed } from "./PolicyCore.js"
import { ExportBackpressure, type ExportBackpressureService, TelemetryEnabled } from "./TelemetryFlag.js"
import type { Value } from "./Value.js"
import { canonicalJson, fromJson, type Json, toJson } from "./ValueJson.js"
import * as Vm from "./Vm.js"
import { recordedNetArgs } from "./live/Userinfo.js"
// (the modules a run's submission uses: already loaded with this one, so imported statically; an
// `await import` of a loaded module is still a turn of the event loop per run)
import * as P from "./Policy.js"
import * as WF from "./WorkflowFile.js"
import { dependencies, waves, type WorkflowDef, WorkflowSchema } from "./WorkflowFile.js"
import * as V from "./WorkflowValidate.js"
import { type ApprovalRecord, type StepRecord, type StepStatus, WorkflowStore, type WorkflowStoreService } from "./WorkflowStore.js"

// ---------------------------------------------------------------------------------------------
// services the workflow bodies need besides the store

/** How a step's capabilities are performed: the deterministic demo handlers, or the live ones. */
export interface RunnerEnvService {
  /** the handlers for a step under `policy` (`live` as the run was started) */
  readonly handlers: (policy: Policy, live: boolean) => Effect.Effect<Handlers.HandlersService, never, Scope.Scope>
  /** a step changed state (the CLI prints a line) */
  readonly onStep: (runId: string, stepId: string, status: StepStatus, attempt: number, detail?: string) => void
  /** tokens minted in this process, by `runId/approvalId`: printed once, never stored */
  readonly minted: Map<string, string>
  /**
   * Runs a waiter of this process watches (`waitRun`), woken when the run ends or pauses here, so
   * it sees the outcome at once instead of at its next poll; optional (another engine's runner).
   */
  readonly watchers?: Map<string, Set<() => void>>
  /** typescript step bodies registered in this process (`WorkflowTs.ts`), by workflow name and step id */
  readonly tsSteps: Map<string, TsStepBody>
  /**
   * On a cluster (`Cluster.ts`): the shard group a step is placed in (its capabilities and
   * `runner_group`), and a note for `show` while it waits for a runner. Unset: every step runs in
   * the default group (one machine).
   */
  /**
   * On a cluster: tokens minted on a runner reach the client that waits for the run (`deliver` on
   * the runner, before the pending item is recorded; `collect` on the client, once).
   */
  readonly tokens?: {
    readonly deliver: (runId: string, approvalId: string, token: string) => Effect.Effect<void>
    readonly collect: (runId: string) => Effect.Effect<Readonly<Record<string, string>>>
  }
  readonly placement?: {
    readonly group: (step: WorkflowDef["steps"][string]) => string
    readonly note: (group: string) => Effect.Effect<string | undefined>
  }
}

/** A TypeScript step: an Effect over the step's capability services. */
export type TsStepBody = (ctx: TsStepContext) => Effect.Effect<Value, CapabilityError | StepFailure, Gateway.Gateway>

export interface TsStepContext {
  readonly runId: string
  readonly stepId: string
  readonly attempt: number
  /** resolved inputs: upstream outputs (by local name) and run inputs */
  readonly inputs: ReadonlyMap<string, Value>
}

export class RunnerEnv extends Context.Tag("boruna/WorkflowRunnerEnv")<RunnerEnv, RunnerEnvService>() {}

/** A step failed for a reason of its own (not a capability error). */
export class StepFailure extends Data.TaggedError("StepFailure")<{ readonly kind: string; readonly message: string }> {}

const demoOrLive = (policy: Policy, live: boolean): Effect.Effect<Handlers.HandlersService, never, Scope.Scope> =>
  live
    ? Effect.flatMap(Effect.promise(() => import("./Live.js")), (L) =>
      Layer.build(L.layer(policy)).pipe(
        Effect.map((ctx) => Context.get(ctx, Handlers.Handlers)),
        Effect.catchAll((e) => Effect.succeed(Handlers.fromRecord({}) as Handlers.HandlersService).pipe(Effect.tap(() => Effect.logWarning(String(e)))))
      ))
    : Effect.succeed(Handlers.demoService)

export const makeEnv = (options: Partial<Pick<RunnerEnvService, "handlers" | "onStep" | "placement" | "tokens">> = {}): RunnerEnvService => ({
  ...(options.placement === undefined ? {} : { placement: options.placement }),
  ...(options.tokens === undefined ? {} : { tokens: options.tokens }),
  handlers: options.handlers ?? demoOrLive,
  onStep: options.onStep ?? (() => {}),
  minted: new Map(),
  watchers: new Map(),
  tsSteps: new Map()
})

// ---------------------------------------------------------------------------------------------
// engine workflows

export const StepOutcome = Schema.Struct({
  status: Schema.Literal("completed", "failed"),
  output: Schema.NullOr(Schema.String),
  outputHash: Schema.NullOr(Schema.String),
  errorKind: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String)
})
export type StepOutcome = typeof StepOutcome.Type

export const RunOutcome = Schema.Struct({
  status: Schema.Literal("completed", "failed"),
  errorKind: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String)
})
export type RunOutcome = typeof RunOutcome.Type

export const RunWorkflow = Workflow.make({
  name: "boruna/run",
  payload: { runId: Schema.String },
  success: RunOutcome,
  idempotencyKey: (p) => p.runId
})
  // an engine defect (a routing error while shards move, #7464) suspends the run and its steps
  // instead of failing them for good; the cluster's reconciler resumes them (docs/cluster.md)
  .annotate(Workflow.SuspendOnFailure, true)

export const StepWorkflow = Workflow.make({
  name: "boruna/step",
  payload: { runId: Schema.String, stepId: Schema.String, attempt: Schema.Number, parentSpanId: Schema.String },
  success: StepOutcome,
  idempotencyKey: (p) => `${p.runId}/${p.stepId}/${p.attempt}`
}).annotate(Workflow.SuspendOnFailure, true)

/**
 * What a capability Activity journals. A call that succeeded with the gateway's usual two events
 * (its `CapCall` with the arguments as given and its `CapResult`) journals neither `events` nor
 * `argsHash`: its record carries the arguments' digest, and the re-run that reads the journal makes
 * the same call (same arguments, same site; checked against the digest first), so its two events
 * are written again from it, byte for byte. Any other call journals the events as logged.
 */
export const CallJournal = Schema.Struct({
  argsHash: Schema.optional(Schema.String),
  decision: Schema.Literal("allowed", "denied", "budget_exceeded"),
  ok: Schema.Boolean,
  result: Schema.optional(Schema.Unknown),
  errorKind: Schema.optional(Schema.String),
  errorMessage: Schema.optional(Schema.String),
  /** the events the gateway logged for the call (`EventLogFile.encodeEvent` lines) */
  events: Schema.optional(Schema.Array(Schema.String))
})
export type CallJournal = typeof CallJournal.Type

/** The value a pause is completed with. */
export const Decision = Schema.Struct({
  decision: Schema.Literal("approved", "rejected", "triggered"),
  approver: Schema.String,
  reason: Schema.NullOr(Schema.String),
  payload: Schema.NullOr(Schema.String),
  digest: Schema.String,
  at: Schema.String
})
export type Decision = typeof Decision.Type

/** The engine's DurableDeferred of one pause (the approval id names it). */
export const pauseDeferred = (approvalId: string) => DurableDeferred.make(`pause/${approvalId}`, { success: Decision })

export const stepExecutionId = (runId: string, stepId: string, attempt: number, group = "default"): Effect.Effect<string> =>
  stepWorkflowFor(group).executionId({ runId, stepId, attempt, parentSpanId: "" })

type StepWorkflowAny = Workflow.Workflow<string, typeof StepWorkflow.payloadSchema, typeof StepOutcome, typeof Schema.Never>
const placedSteps = new Map<string, StepWorkflowAny>()

/**
 * The step workflow of a shard group: `boruna/step` for `default`, else `boruna/step@GROUP`
 * annotated with that `ShardGroup`, so that only runners assigned the group execute it.
 */
export const stepWorkflowFor = (group: string): StepWorkflowAny => {
  if (group === "default") return StepWorkflow
  let w = placedSteps.get(group)
  if (w === undefined) {
    w = Workflow.make({
      name: `boruna/step@${group}`,
      payload: StepWorkflow.payloadSchema,
      success: StepOutcome,
      idempotencyKey: (p) => `${p.runId}/${p.stepId}/${p.attempt}`
    }).annotate(ClusterSchema.ShardGroup, () => group).annotate(Workflow.SuspendOnFailure, true)
    placedSteps.set(group, w)
  }
  return w
}

// ---------------------------------------------------------------------------------------------
// helpers

const EngineTag = WorkflowEngine.WorkflowEngine

const sha256 = (s: string): string => hash("sha256", s, "hex")
let lastMs = 0
let lastIso = ""
/** The time as ISO 8601 text (made once per millisecond: a step's calls are journaled with their times) */
const nowIso = (): string => {
  const ms = Date.now()
  if (ms !== lastMs) {
    lastMs = ms
    lastIso = new Date(ms).toISOString()
  }
  return lastIso
}
const decodeWorkflowJson = Schema.decodeUnknownSync(Schema.parseJson(WorkflowSchema))

/** The run's decoded workflow and policy (both stored with the run). */
export const loadRunDef = (store: WorkflowStoreService, runId: string) =>
  Effect.flatMap(store.getRun(runId), (run) =>
    run === undefined
      ? Effect.die(new Error(`unknown run ${runId}`))
      : Effect.sync(() => ({
        run,
        workflow: decodeWorkflowJson(run.workflow_json) as WorkflowDef,
        policy: JSON.parse(run.policy_json) as Policy,
        inputs: JSON.parse(run.inputs_json) as Record<string, string>
      })))

/**
 * The step's policy: the run policy narrowed by the step's declared capabilities (when it declares
 * any, only those — plus `step.input` — are allowed) and its budget (`max_calls` caps each declared
 * capability; `max_tokens` caps `llm_policy.max_tokens`).
 */
export const stepPolicy = (run: Policy, step: WorkflowDef["steps"][string]): Policy => {
  const declared = new Set<string>(step.capabilities)
  const narrowing = declared.size > 0
  const rules: Record<string, Policy["rules"][string]> = {}
  for (const c of CAPABILITIES) {
    const base = run.rules[c.name]
    // the runner always grants step.input (a step reads its own inputs)
    let allow = c.name === "step.input" || isAllowed(run, c.name)
    if (narrowing && !declared.has(c.name) && c.name !== "step.input") allow = false
    let budget = base?.budget ?? 0
    if (step.budget.max_calls !== null && declared.has(c.name)) budget = budget === 0 ? step.budget.max_calls : Math.min(budget, step.budget.max_calls)
    rules[c.name] = { ...(base ?? {}), allow, budget }
  }
  const llm = run.llm_policy
  const maxTokens = step.budget.max_tokens
  return {
    ...run,
    default_allow: false,
    rules,
    ...(maxTokens === null || maxTokens === 0 ? {} : { llm_policy: { ...(llm ?? { allowed_models: [] }), max_tokens: llm?.max_tokens === undefined ? maxTokens : Math.min(llm.max_tokens, maxTokens) } })
  }
}

const errorOf = (kind: string, capability: string, message: string): CapabilityError =>
  kind === "denied"
    ? new Denied({ capability, reason: message })
    : kind === "budget_exceeded"
    ? new BudgetExceeded({ capability, budget: Number(/budget (\d+)/.exec(message)?.[1] ?? 0) })
    : new RuntimeError({ capability, reason: message })

/** The reason text of a capability error (so a journaled error reproduces the same message). */
const reasonOf = (e: CapabilityError): string =>
  e._tag === "Denied" ? e.reason : e._tag === "RuntimeError" ? e.reason : e.message

/** The message a journaled error is rebuilt from (inverse of `errorOf`). */
const journalError = (e: CapabilityError): { errorKind: string; errorMessage: string } => ({ errorKind: e.kind, errorMessage: reasonOf(e) })

/** A `step.input(name)` answer: upstream String outputs as themselves, other values as compact Value JSON. */
const inputText = (v: Value): string => (typeof v === "string" ? v : JSON.stringify(toJson(v)))

/** Resolved inputs of a step: its `inputs` (upstream outputs) over the run inputs. */
const resolveInputs = (
  store: WorkflowStoreService,
  runId: string,
  step: WorkflowDef["steps"][string],
  runInputs: Record<string, string>
): Effect.Effect<Map<string, Value>, StepFailure | import("./WorkflowStore.js").StoreError> =>
  Effect.gen(function*() {
    const out = new Map<string, Value>(Object.entries(runInputs))
    if (Object.keys(step.inputs).length === 0) return out
    const steps = new Map((yield* store.getSteps(runId)).map((s) => [s.step_id, s]))
    for (const [name, ref] of Object.entries(step.inputs)) {
      const from = ref.slice(0, ref.indexOf("."))
      const rec = steps.get(from)
      if (rec?.output_json === null || rec?.output_json === undefined) {
        return yield* new StepFailure({ kind: "runtime_error", message: `output not found: ${ref}` })
      }
      out.set(name, fromJson(JSON.parse(rec.output_json)))
    }
    return out
  })

// ---------------------------------------------------------------------------------------------
// the step: pauses, capability calls, the VM

interface StepCtx {
  readonly store: WorkflowStoreService
  readonly env: RunnerEnvService
  readonly runId: string
  readonly stepId: string
  readonly attempt: number
}

const setStep = (c: StepCtx, status: StepStatus, extra: Partial<StepRecord> = {}) =>
  Effect.gen(function*() {
    const prev = (yield* c.store.getSteps(c.runId)).find((s) => s.step_id === c.stepId)
    yield* c.store.upsertStep({
      run_id: c.runId,
      step_id: c.stepId,
      kind: extra.kind ?? prev?.kind ?? "source",
      status,
      attempts: Math.max(c.attempt, prev?.attempts ?? 0),
      output_json: extra.output_json ?? null,
      output_hash: extra.output_hash ?? null,
      source_path: extra.source_path ?? prev?.source_path ?? null,
      started_at: prev?.started_at ?? nowIso(),
      ended_at: extra.ended_at ?? null,
      duration_ms: extra.duration_ms ?? null,
      error: extra.error ?? null,
      error_kind: extra.error_kind ?? null
    })
    if (prev?.status !== status) c.env.onStep(c.runId, c.stepId, status, c.attempt, extra.error ?? undefined)
  })

/**
 * Pause the step until a person (or a trigger) answers: record the pending item (minting its token
 * once), mark the step and the run, and await the engine's DurableDeferred.
 */
const pause = (
  c: StepCtx,
  p: Omit<ApprovalRecord, "run_id" | "token_hash" | "status" | "approver" | "reason" | "payload_json" | "created_at" | "decided_at" | "decision_nonce" | "step_id" | "attempt">,
  stepStatus: StepStatus
): Effect.Effect<Decision, import("./WorkflowStore.js").StoreError, WorkflowEngine.WorkflowEngine | WorkflowEngine.WorkflowInstance> =>
  Effect.gen(function*() {
    const existing = yield* c.store.getApproval(c.runId, p.id)
    if (existing === undefined) {
      const token = mintToken()
      // on a cluster the pause is reached on a runner: hand the token to the client first
      if (c.env.tokens !== undefined) yield* c.env.tokens.deliver(c.runId, p.id, token)
      const inserted = yield* c.store.addApproval({
        ...p,
        run_id: c.runId,
        step_id: c.stepId,
        attempt: c.attempt,
        token_hash: tokenHash(token),
        status: "pending",
        approver: null,
        reason: null,
        payload_json: null,
        created_at: nowIso(),
        decided_at: null,
        decision_nonce: null
      })
      if (inserted) {
        c.env.minted.set(`${c.runId}/${p.id}`, token)
        yield* c.store.addHistory({ run_id: c.runId, approval_id: p.id, at: nowIso(), actor: null, event: "pending", detail: p.args_rendered ?? p.kind })
        const span = yield* Effect.option(Effect.currentSpan)
        if (span._tag === "Some") span.value.event("boruna.pending", BigInt(Date.now()) * 1_000_000n, { "approval.id": p.id, "approval.kind": p.kind })
      }
    }
    const current = existing ?? (yield* c.store.getApproval(c.runId, p.id))
    if (current?.status === "pending") {
      yield* setStep(c, stepStatus)
      yield* c.store.setRunStatus(c.runId, "paused")
      wake(c.env, c.runId)
    }
    const d = yield* DurableDeferred.await(pauseDeferred(p.id))
    const span = yield* Effect.option(Effect.currentSpan)
    if (span._tag === "Some") span.value.event(`boruna.${d.decision}`, BigInt(Date.now()) * 1_000_000n, { "approval.id": p.id, "approval.kind": p.kind, approver: d.approver })
    yield* c.store.setRunStatus(c.runId, "running")
    yield* setStep(c, "running")
    return d
  })

/** One call record of the attempt's journal, as `WorkflowStore.getJournal` reads it. */
type JournalRow = import("./WorkflowStore.js").CallRecord & { readonly journal: string | null }

const decodeJournal = Schema.decodeUnknownSync(Schema.parseJson(CallJournal))

/**
 * The capability Activities boruna journals itself (in `boruna_wf_calls`, through the store's
 * `SqlClient`) rather than through the engine. `withLocalActivities` executes these in the
 * workflow's own fiber; every other Activity (and every other engine operation) stays the engine's.
 */
const locallyJournaled = new WeakSet<Activity.Any>()
/** the mark of the Activities of calls made in place (`makeInPlaceActivity`): locally journaled too */
const IN_PLACE = Symbol.for("boruna/WorkflowRunner/inPlace")
const isLocal = (a: Activity.Any): boolean => (a as unknown as Record<symbol, unknown>)[IN_PLACE] === true || locallyJournaled.has(a)
/** The engines `withLocalActivities` made. */
const localEngines = new WeakSet<WorkflowEngine.WorkflowEngine["Type"]>()

/**
 * boruna's engine layer: the `WorkflowEngine` in context, except that the capability Activities of
 * a step (`locallyJournaled`) run in the workflow's own fiber, no engine message or reply per call.
 * Their durability is the step's journal (docs/workflows.md, "The engine layer"): read once when the
 * attempt's execution starts, one intent write before a handler that does not answer at once, one
 * result write before the result returns to the program (a call answered at once, as demo and
 * replay handlers answer, is written with its intent, at the next durability point). Workflows,
 * child workflows, DurableDeferreds, the durable clock, resume and interrupt stay the wrapped
 * engine's (`sqliteEngine`, `memoryEngine`, `clusterEngine`).
 */
export const withLocalActivities = <E, R>(
  engine: Layer.Layer<WorkflowEngine.WorkflowEngine | import("@effect/sql/SqlClient").SqlClient, E, R>
): Layer.Layer<WorkflowEngine.WorkflowEngine | import("@effect/sql/SqlClient").SqlClient, E, R> =>
  Layer.effect(
    EngineTag,
    Effect.map(EngineTag, (inner) => {
      const self: WorkflowEngine.WorkflowEngine["Type"] = {
        ...inner,
        // a workflow body sees this engine, whichever context the wrapped engine runs it in
        register: (workflow, execute) => inner.register(workflow, (payload, executionId) => Effect.provideService(execute(payload, executionId), EngineTag, self)),
        activityExecute: (activity, attempt) =>
          isLocal(activity)
            ? Effect.map(Effect.exit(activity.execute), (exit) => new Workflow.Complete({ exit })) as ReturnType<typeof inner.activityExecute>
            : inner.activityExecute(activity, attempt)
      }
      localEngines.add(self)
      return self
    })
  ).pipe(Layer.provideMerge(engine))

/** A capability call of a step: what it needs, and the per-attempt handlers (built once, on first use). */
interface CapCall {
  readonly seq: number
  readonly cap: CapabilityName
  readonly args: ReadonlyArray<Value>
  readonly site: CallSite | undefined
  readonly argsHash: string
  readonly policy: Policy
  readonly priorTakes: number
  /** what the journal has for this call (read at the attempt's start) */
  readonly prev: JournalRow | undefined
  readonly handlers: Effect.Effect<Handlers.HandlersService>
  /** set when the call ran in this execution: the lines of the events the gateway logged (no decode needed) */
  readonly ran: { current: ReadonlyArray<string> | undefined }
  /** the attempt's calls answered at once and not yet written (written at the next durability point) */
  readonly pending: Array<import("./WorkflowStore.js").JournaledCall>
}

/**
 * The capability Activities share one template: `Activity.make` builds a new Schema class for each
 * Activity's exit (measured: 50–140 µs per call, most of a journaled call's CPU), while every
 * capability Activity has the same schemas. A call's Activity is the template with its own name
 * and execute; `yield*` of it (commit) goes through `Activity.make`'s execute as usual.
 */
const capTemplate = Activity.make({ name: "cap", success: CallJournal, execute: Effect.die("cap template") })
const encodeCallJournal = Schema.encode(CallJournal)

const makeCapActivity = (name: string, execute: Effect.Effect<CallJournal>): Activity.Activity<typeof CallJournal, typeof Schema.Never> => {
  const full = (): Activity.Activity<typeof CallJournal, typeof Schema.Never> => Activity.make({ name, success: CallJournal, execute })
  return {
    ...capTemplate,
    name,
    execute,
    executeEncoded: Effect.flatMap(execute, (j) => Effect.orDie(encodeCallJournal(j))),
    commit: full
  } as Activity.Activity<typeof CallJournal, typeof Schema.Never>
}

/** The key of a call's record in `boruna_wf_calls`. */
type CallKey = import("./WorkflowStore.js").CallKey & { readonly capability: string; readonly args_digest: string }

/** What a call that ran leaves behind: its journal, its event-log lines, and the columns of its record. */
interface Settled {
  readonly j: CallJournal
  readonly record: { readonly decision: CallJournal["decision"]; readonly result_digest: string; readonly journal: string }
}

/**
 * What the gateway logged for one call: its events as lines, and whether they are so far the usual
 * `CapCall` (with the arguments as given) and `CapResult` (see `CallJournal`).
 */
interface CallLines {
  readonly args: ReadonlyArray<Value>
  readonly lines: Array<string>
  usual: boolean
  result: Value | undefined
}

/**
 * The gateway's log for one call, into `of()`'s lines: its two usual events arrive as their parts
 * (`appendCall`, `appendResult`) and are encoded by the event-log file's own encoders; any other
 * event makes the call unusual.
 */
const callLinesLog = (of: () => CallLines): EventLog.EventLogService => ({
  append: (e) => {
    const k = of()
    k.lines.push(encodeEvent(e))
    k.usual = false
  },
  appendCall: (capability, args, site) => {
    const k = of()
    k.usual &&= k.lines.length === 0 && args === k.args
    k.lines.push(encodeCall(capability, args, site))
  },
  appendResult: (capability, result) => {
    const k = of()
    k.usual &&= k.lines.length === 1
    k.result = result
    k.lines.push(encodeResult(capability, result))
  },
  events: () => []
})

/** The call succeeded with its usual two events (see `CallJournal`). */
const isUsual = (k: CallLines, exit: Exit.Exit<Value, CapabilityError>): exit is Exit.Success<Value, CapabilityError> =>
  Exit.isSuccess(exit) && k.usual && k.lines.length === 2 && k.result === exit.value

/** The journal of a call that succeeded with its usual two events, and its record (see `CallJournal`). */
const usualRecord = (result: Value): Settled["record"] => {
  const text = encodeValue(result)
  return { decision: "allowed", result_digest: sha256(text), journal: `{"decision":"allowed","ok":true,"result":${text}}` }
}

/**
 * The journal of a call that ran: its outcome, the decision, the events the gateway logged (their
 * lines), and the columns of its record. `slim`: the usual call of one of boruna's store rows
 * journals no events and no arguments' digest (see `CallJournal`).
 */
const settle = (argsHash: string, policy: Policy, cap: CapabilityName, lines: ReadonlyArray<string>, exit: Exit.Exit<Value, CapabilityError>, slim: boolean): Settled => {
  if (Exit.isSuccess(exit)) {
    if (slim) return { j: { decision: "allowed", ok: true, result: toJson(exit.value) }, record: usualRecord(exit.value) }
    const j: CallJournal = { argsHash, decision: "allowed", ok: true, result: toJson(exit.value), events: lines }
    return { j, record: { decision: "allowed", result_digest: sha256(JSON.stringify(j.result)), journal: JSON.stringify(j) } }
  }
  const e = exit.cause._tag === "Fail" ? exit.cause.error : new RuntimeError({ capability: cap, reason: "interrupted" })
  const j: CallJournal = { argsHash, decision: e.kind === "denied" && !isAllowed(policy, cap) ? "denied" : e.kind === "budget_exceeded" ? "budget_exceeded" : "allowed", ok: false, ...journalError(e), events: lines }
  return { j, record: { decision: j.decision, result_digest: sha256(JSON.stringify([j.errorKind, j.errorMessage])), journal: JSON.stringify(j) } }
}

/**
 * Write the record of a call that ran: at once when its intent was written (the result before the
 * result returns to the program); otherwise — answered at once, by a demo or replay handler or a
 * refusal, so no effect can have happened since the call was made — held back with the attempt's
 * other such calls until the next durability point (an intent write, a pause, the end of the
 * attempt), and written at the latest `PENDING_BATCH` at a time. A crash before that re-runs the
 * call, with the same answer. Undefined: nothing to write now.
 */
const writeRecord = (
  c: StepCtx,
  pending: Array<import("./WorkflowStore.js").JournaledCall>,
  seq: number,
  capability: CapabilityName,
  argsHash: string,
  record: Settled["record"],
  intended: boolean
): Effect.Effect<void> | undefined => {
  const row = { run_id: c.runId, step_id: c.stepId, attempt: c.attempt, seq, capability, args_digest: argsHash, decision: record.decision, result_digest: record.result_digest, journal: record.journal, at: nowIso() }
  if (intended) return Effect.orDie(c.store.completeCall(row))
  pending.push(row)
  return pending.length >= PENDING_BATCH ? Effect.orDie(c.store.recordCalls(pending.splice(0))) : undefined
}

/** Calls answered at once are written at the latest every this many (`writeRecord`). */
const PENDING_BATCH = 500

/**
 * Handlers that write the call's intent before a handler that does not answer at once runs (and
 * the calls held back so far with it, in one transaction); a handler that answers at once (demo and
 * replay handlers) is journaled with its result, in one write.
 */
const intending = (base: Handlers.HandlersService, intent: () => Effect.Effect<void>): Handlers.HandlersService => ({
  get: (cap) => {
    const h = base.get(cap)
    return h === undefined ? h : (args, ctx) => {
      const run = h(args, ctx)
      return Exit.isExit(run) && Exit.isSuccess(run) ? run : Effect.zipRight(intent(), run)
    }
  }
})

/**
 * The Activity of a call made in place on the attempt's gateway (`journalingGateway`): its body is
 * the call itself, answering the program's value or its capability error. Only boruna's engine
 * layer executes it (in the step's fiber; it is never sent to an engine, so its schemas encode
 * nothing); its journal is the call's record, written by the body.
 */
const inPlaceTemplate = Activity.make({ name: "cap", success: Schema.Unknown, error: Schema.Unknown, execute: Effect.die("cap template") })
/** what every in-place Activity has: the template's fields, and the mark `withLocalActivities` looks for */
const inPlaceProto: object = Object.assign(Object.create(Object.getPrototypeOf(inPlaceTemplate)), inPlaceTemplate, { [IN_PLACE]: true })
const makeInPlaceActivity = (name: string, execute: Effect.Effect<Value, CapabilityError>): Activity.Activity<typeof Schema.Unknown, typeof Schema.Unknown> => {
  // (an object over a shared prototype: a call's Activity is two fields, not a copy of the template)
  const activity = Object.create(inPlaceProto) as { name: string; execute: unknown; executeEncoded: unknown; commit: unknown }
  activity.name = name
  activity.execute = execute
  activity.executeEncoded = execute
  activity.commit = () => Activity.make({ name, success: Schema.Unknown, error: Schema.Unknown, execute })
  return activity as unknown as Activity.Activity<typeof Schema.Unknown, typeof Schema.Unknown>
}

const capActivity = (c: StepCtx, o: CapCall) => {
  const activity = makeCapActivity(
    `cap/${c.stepId}/${c.attempt}/${o.seq}/${o.cap}`,
    Effect.gen(function*() {
      // completed earlier: the journaled result, nothing runs and nothing is written
      if (o.prev?.status === "completed" && o.prev.journal !== null) return decodeJournal(o.prev.journal)
      const key: CallKey = { run_id: c.runId, step_id: c.stepId, attempt: c.attempt, seq: o.seq, capability: o.cap, args_digest: o.argsHash }
      let intended = false
      const handlers = intending(yield* o.handlers, () => {
        intended = true
        return Effect.orDie(c.store.intendCall(key, o.pending.splice(0)))
      })
      const traced = yield* TelemetryEnabled
      const backpressure = yield* ExportBackpressure
      const k: CallLines = { args: o.args, lines: [], usual: true, result: undefined }
      const gw = Gateway.make({ policy: o.policy, handlers, log: callLinesLog(() => k), traced, backpressure, approvalsGranted: true })
      // calls of this capability earlier in the step count against its budget
      // (set at once: a take only counts, so n takes are `used += n`; a loop of takes made a step's calls quadratic)
      gw.budget.counter(o.cap).used += o.priorTakes
      const exit = yield* Effect.exit(gw.call(o.cap, o.args, o.site))
      const { j, record } = settle(o.argsHash, o.policy, o.cap, k.lines, exit, locallyJournaled.has(activity) && isUsual(k, exit))
      const write = writeRecord(c, o.pending, o.seq, o.cap, o.argsHash, record, intended)
      if (write !== undefined) yield* write
      o.ran.current = k.lines
      return j
    }).pipe(Effect.orDie)
  )
  // a call completed before the journal moved to the store (journaled by the engine): the engine answers it
  if (!(o.prev?.status === "completed" && o.prev.journal === null)) locallyJournaled.add(activity)
  return activity
}

class Abort extends Data.TaggedError("Abort")<{ readonly kind: string; readonly message: string }> {}

/**
 * The step's event log, kept as its lines (`EventLogFile.encodeEvent`), each encoded once: the
 * gateway's calls arrive encoded, other events (the VM's own) are encoded as they are appended.
 */
export interface StepLog extends EventLog.EventLogService {
  readonly appendLine: (line: string) => void
  /** the attempt's event log: one line per event, each ending in "\n" */
  readonly text: () => string
}

export const makeStepLog = (): StepLog => {
  const lines: Array<string> = []
  return {
    append: (e) => void lines.push(encodeEvent(e)),
    appendLine: (line) => void lines.push(line),
    events: () => lines.flatMap((l) => {
      const e = decodeEvent(l)
      return Either.isRight(e) ? [e.right] : []
    }),
    text: () => lines.length === 0 ? "" : lines.join("\n") + "\n"
  }
}

/** A call running on the attempt's shared gateway (`journalingGateway`): its record and what the gateway logged. */
interface InPlace extends CallLines {
  readonly seq: number
  readonly capability: CapabilityName
  readonly argsHash: string
  intended: boolean
}

/** The gateway a step's VM (or TypeScript body) calls: approvals, journaled Activities, the event log. */
const journalingGateway = (
  c: StepCtx,
  o: {
    readonly policy: Policy
    readonly journal: ReadonlyMap<number, JournalRow>
    readonly handlers: Effect.Effect<Handlers.HandlersService>
    readonly pending: Array<import("./WorkflowStore.js").JournaledCall>
    readonly log: StepLog
    readonly abort: { current: Abort | undefined }
    readonly traced: boolean
    readonly backpressure: ExportBackpressureService | undefined
  },
  runtime: import("effect/Runtime").Runtime<WorkflowEngine.WorkflowEngine | WorkflowEngine.WorkflowInstance | Scope.Scope>
): Gateway.GatewayService => {
  let seq = 0
  const takes = new Map<string, number>()
  const engine = Context.get(runtime.context, EngineTag)
  const local = localEngines.has(engine)
  // the handlers, once the first call that runs has built them
  let base: Handlers.HandlersService | undefined
  const handlers = Effect.tap(o.handlers, (h) => {
    base = h
  })
  const allowedCache = new Map<CapabilityName, boolean>()
  const allowedOf = (cap: CapabilityName): boolean => {
    let a = allowedCache.get(cap)
    if (a === undefined) allowedCache.set(cap, a = isAllowed(o.policy, cap))
    return a
  }

  /**
   * The call's own Activity on boruna's engine layer, without its per-call setup: one gateway for
   * the attempt (built on the first call that runs here), its log and budget pointed at the call
   * in hand. Only while no other call of the attempt is in flight (a TypeScript step may make
   * calls concurrently; each of those gets a gateway of its own, `capActivity`), so the gateway's
   * log and intent belong to exactly one call. Same records, same journal, same events as
   * `capActivity`: a call journaled here answers a re-run there, and the other way round.
   */
  let shared: Gateway.GatewayInstance | undefined
  let busy = false
  let current: InPlace | undefined
  const sharedGateway = (b: Handlers.HandlersService): Gateway.GatewayInstance =>
    shared ??= Gateway.make({
      policy: o.policy,
      handlers: intending(b, () => {
        const k = current!
        return Effect.suspend(() => {
          k.intended = true
          return Effect.orDie(c.store.intendCall({ run_id: c.runId, step_id: c.stepId, attempt: c.attempt, seq: k.seq, capability: k.capability, args_digest: k.argsHash }, o.pending.splice(0)))
        })
      }),
      log: callLinesLog(() => current!),
      traced: o.traced,
      backpressure: o.backpressure,
      approvalsGranted: true
    })
  const inPlace = (b: Handlers.HandlersService, n: number, cap: CapabilityName, args: ReadonlyArray<Value>, site: CallSite | undefined, argsHash: string, prior: number): Effect.Effect<Value, CapabilityError> => {
    const gw = sharedGateway(b)
    const k: InPlace = { seq: n, capability: cap, argsHash, args, intended: false, lines: [], usual: true, result: undefined }
    // (`busy` was set when the call chose this path)
    current = k
    gw.budget.counter(cap).used = prior
    const done = (exit: Exit.Exit<Value, CapabilityError>): Effect.Effect<Value, CapabilityError> => {
      busy = false
      current = undefined
      const lines = k.lines
      for (let i = 0; i < lines.length; i++) o.log.appendLine(lines[i])
      let record: Settled["record"]
      let answer: Effect.Effect<Value, CapabilityError>
      if (isUsual(k, exit)) {
        record = usualRecord(exit.value)
        answer = exit
      } else {
        const settled = settle(argsHash, o.policy, cap, lines, exit, false)
        const j = settled.j
        record = settled.record
        answer = j.ok ? Effect.succeed(fromJson(j.result as Json)) : Effect.fail(errorOf(j.errorKind ?? "runtime_error", cap, j.errorMessage ?? ""))
      }
      const write = writeRecord(c, o.pending, n, cap, argsHash, record, k.intended)
      return write === undefined ? answer : Effect.zipRight(write, answer)
    }
    // the gateway's call made here, at once (untraced): a handler that answers at once is done now
    const run = gw.callNow === undefined ? gw.call(cap, args, site) : gw.callNow(cap, args, site)
    if (Exit.isExit(run)) return done(run as Exit.Exit<Value, CapabilityError>)
    return Effect.matchCauseEffect(run, {
      onSuccess: (v) => done(Exit.succeed(v)),
      onFailure: (cause) => done(Exit.failCause(cause))
    })
  }

  const fail = (cap: CapabilityName, kind: string, message: string) => {
    o.abort.current = new Abort({ kind, message })
    return Effect.fail(new RuntimeError({ capability: cap, reason: message }))
  }

  /** A call through its Activity: answered from the journal, or run (and journaled) by `capActivity`. */
  const viaActivity = (n: number, cap: CapabilityName, args: ReadonlyArray<Value>, site: CallSite | undefined, argsHash: string, prior: number, prev: JournalRow | undefined) =>
    Effect.gen(function*() {
      const ran: CapCall["ran"] = { current: undefined }
      const activity = capActivity(c, { seq: n, cap, args, site, argsHash, policy: o.policy, priorTakes: prior, prev, handlers, ran, pending: o.pending })
      // what `yield* activity` does, without the engine's own Activity span: the call's
      // boruna.cap span is a child of its boruna.step. boruna's engine layer runs it here, in this
      // fiber (nothing to provide); another engine gets the workflow's context
      const r = local && locallyJournaled.has(activity)
        ? yield* engine.activityExecute(activity, 1) as Effect.Effect<Workflow.Result<CallJournal, never>>
        : yield* Workflow.wrapActivityResult(engine.activityExecute(activity, 1), (x) => x._tag === "Suspended").pipe(Effect.provide(runtime))
      if (r._tag === "Suspended") return yield* Workflow.suspend(Context.get(runtime.context, WorkflowEngine.WorkflowInstance))
      const j = yield* r.exit
      if (!locallyJournaled.has(activity)) {
        // a call the engine journaled before the journal moved to the store: make sure the record says completed
        yield* Effect.orDie(c.store.ensureCall({
          run_id: c.runId, step_id: c.stepId, attempt: c.attempt, seq: n, capability: cap, args_digest: argsHash, decision: j.decision,
          result_digest: sha256(JSON.stringify(j.ok ? j.result : [j.errorKind, j.errorMessage]))
        }))
      }
      // (a journal without argsHash is one of boruna's store rows, whose digest was checked above)
      if (j.argsHash !== undefined && j.argsHash !== argsHash) {
        return yield* fail(cap, "replay_diverged", `replay diverged at call ${n} of step '${c.stepId}': journaled args ${j.argsHash.slice(0, 12)}…, now ${argsHash.slice(0, 12)}…`)
      }
      // the event log, exactly as the gateway wrote it when the call ran (here, or before a crash or a pause)
      const here = ran.current
      if (here !== undefined) for (const line of here) o.log.appendLine(line)
      else if (j.events === undefined) {
        // the usual two events of this call, written again from it (see `CallJournal`)
        o.log.appendLine(encodeCall(cap, cap === "net.fetch" ? recordedNetArgs(args) : args, site))
        o.log.appendLine(encodeResult(cap, fromJson(j.result as Json)))
      } else for (const line of j.events) o.log.appendLine(line)
      if (j.ok) return fromJson(j.result)
      return yield* Effect.fail(errorOf(j.errorKind ?? "runtime_error", cap, j.errorMessage ?? ""))
    })

  return {
    call: (cap, args, site) =>
      Effect.suspend(() => {
        const n = seq++
        const argsHash = argsDigest(args)
        const prev = o.journal.get(n)
        if (prev !== undefined && (prev.capability !== cap || prev.args_digest !== argsHash)) {
          return fail(cap, "replay_diverged", `replay diverged at call ${n} of step '${c.stepId}' (attempt ${c.attempt}): the journal has ${prev.capability} with args ${prev.args_digest.slice(0, 12)}…, the step now calls ${cap} with args ${argsHash.slice(0, 12)}…`)
        }
        const allowed = allowedOf(cap)
        const take = () => {
          const prior = takes.get(cap) ?? 0
          if (allowed) takes.set(cap, prior + 1)
          return prior
        }
        if (allowed && needsApproval(o.policy, cap, args)) {
          return Effect.gen(function*() {
            const digest = callDigest({ runId: c.runId, stepId: c.stepId, attempt: c.attempt, seq: n, capability: cap, args })
            // a durability point: the calls held back are written before the step waits
            yield* Effect.orDie(c.store.recordCalls(o.pending.splice(0)))
            const d = yield* Effect.orDie(pause(c, { id: `call:${digest}`, kind: "call", seq: n, capability: cap, args_rendered: renderCall(cap, args), digest, required_role: null }, "awaiting_approval")).pipe(Effect.provide(runtime))
            if (d.decision !== "approved") {
              return yield* fail(cap, "approval_rejected", `call ${n} of step '${c.stepId}' (${cap}) was rejected by ${d.approver}${d.reason ? `: ${d.reason}` : ""}`)
            }
            return yield* viaActivity(n, cap, args, site, argsHash, take(), prev)
          })
        }
        const prior = take()
        if (local && prev === undefined && !busy && base !== undefined) {
          // the call's Activity, its body the call on the attempt's gateway, executed by boruna's
          // engine layer (in this fiber, as every capability Activity of a step)
          // the gateway is this call's from now: a call made meanwhile by another fiber takes its own
          busy = true
          const b = base
          const activity = makeInPlaceActivity(`cap/${c.stepId}/${c.attempt}/${n}/${cap}`, Effect.suspend(() => inPlace(b, n, cap, args, site, argsHash, prior)))
          return Effect.flatMap(engine.activityExecute(activity, 1) as Effect.Effect<Workflow.Result<Value, CapabilityError>>, (r) =>
            r._tag === "Complete" ? r.exit : Effect.die(new Error(`capability activity ${activity.name} suspended`)))
        }
        return viaActivity(n, cap, args, site, argsHash, prior, prev)
      })
  }
}

const outcome = (status: "completed" | "failed", o: Partial<StepOutcome> = {}): StepOutcome => ({
  status,
  output: o.output ?? null,
  outputHash: o.outputHash ?? null,
  errorKind: o.errorKind ?? null,
  error: o.error ?? null
})

const stepBody = (payload: typeof StepWorkflow.payloadSchema.Type) =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore
    const env = yield* RunnerEnv
    const { runId, stepId, attempt } = payload
    const { inputs: runInputs, policy: runPolicy, run, workflow } = yield* Effect.orDie(loadRunDef(store, runId))
    const step = workflow.steps[stepId]
    const c: StepCtx = { store, env, runId, stepId, attempt }
    const started = Date.now()
    const startedIso = nowIso()
    const finish = (o: StepOutcome, eventLog: string) =>
      Effect.gen(function*() {
        const ended = nowIso()
        yield* Effect.orDie(store.upsertAttempt({
          run_id: runId, step_id: stepId, attempt, status: o.status, started_at: startedIso, ended_at: ended,
          duration_ms: Date.now() - started, error: o.error, error_kind: o.errorKind, event_log: eventLog
        }))
        yield* Effect.annotateCurrentSpan({ "step.status": o.status })
        return o
      })
    yield* Effect.orDie(setStep(c, "running", { kind: step.kind, source_path: step.source ?? null }))
    if (step.kind === "approval_gate" || step.kind === "external_trigger") {
      const gate = step.kind === "approval_gate"
      const digest = gateDigest(runId, stepId, step.kind)
      const d = yield* Effect.orDie(pause(c, {
        id: `${gate ? "gate" : "trigger"}:${stepId}`,
        kind: gate ? "gate" : "trigger",
        seq: null,
        capability: null,
        args_rendered: gate ? `approval gate '${stepId}' (role: ${step.required_role ?? "any"})` : `external trigger '${stepId}'${step.description ? `: ${step.description}` : ""}`,
        digest,
        required_role: step.required_role ?? null
      }, gate ? "awaiting_approval" : "awaiting_trigger"))
      if (d.decision === "rejected") {
        return yield* finish(outcome("failed", { errorKind: "approval_rejected", error: `step '${stepId}' was rejected by ${d.approver}${d.reason ? `: ${d.reason}` : ""}` }), "")
      }
      const v: Value = gate ? `approved by ${d.approver}` : (d.payload ?? "")
      const out = JSON.stringify(toJson(v))
      return yield* finish(outcome("completed", { output: out, outputHash: sha256(out) }), "")
    }
    const inputsE = yield* Effect.either(resolveInputs(store, runId, step, runInputs))
    if (Either.isLeft(inputsE)) {
      const e = inputsE.left
      return yield* finish(outcome("failed", { errorKind: e._tag === "StepFailure" ? e.kind : "runtime_error", error: e.message }), "")
    }
    const inputs = inputsE.right
    const policy = stepPolicy(runPolicy, step)
    const log = makeStepLog()
    const abort: { current: Abort | undefined } = { current: undefined }
    const runtime = yield* Effect.runtime<WorkflowEngine.WorkflowEngine | WorkflowEngine.WorkflowInstance | Scope.Scope>()
    // the attempt's journal, read once: every call of this execution is answered from it or appended to it
    const journal = new Map((yield* Effect.orDie(store.getJournal(runId, stepId, attempt))).map((r) => [r.seq, r] as const))
    // the step's handlers, built once per execution on the first call that runs (the workflow's scope)
    const handlers = yield* Effect.cached(Effect.map(env.handlers(policy, run.live), (base) =>
      Handlers.override(base, {
        "step.input": (args) => {
          const name = typeof args[0] === "string" ? args[0] : ""
          const v = inputs.get(name)
          return v === undefined
            ? Effect.fail(new HandlerFailure({ message: `no input named '${name}' (inputs: ${[...inputs.keys()].join(", ") || "none"})` }))
            : Effect.succeed(inputText(v))
        }
      })).pipe(Effect.provide(runtime)))
    const pending: Array<import("./WorkflowStore.js").JournaledCall> = []
    const traced = yield* TelemetryEnabled
    const backpressure = yield* ExportBackpressure
    const gateway = journalingGateway(c, { policy, journal, handlers, pending, log, abort, traced, backpressure }, runtime)
    const tsBody = env.tsSteps.get(`${workflow.name}/${stepId}`)
    if (tsBody === undefined && step.source?.startsWith("ts:") === true) {
      // a TypeScript step whose code is not in this process (the CLI answered a pause, or resumed
      // the run): the step waits, suspended, for a process that defines the workflow
      yield* Effect.orDie(setStep(c, "pending", { error: awaitingMessage(workflow.name, runId), error_kind: AWAITING_PROCESS }))
      yield* Effect.orDie(store.setRunStatus(runId, "paused"))
      return yield* Workflow.suspend(yield* WorkflowEngine.WorkflowInstance)
    }
    let work: Effect.Effect<Value, { readonly kind: string; readonly message: string }, Gateway.Gateway | EventLog.EventLog>
    if (tsBody !== undefined) {
      work = tsBody({ runId, stepId, attempt, inputs })
    } else {
      const file = join(run.workflow_path.endsWith(".ax") ? join(run.workflow_path, "..") : run.workflow_path, step.source ?? "")
      // the source stored with the run at submit (a run submitted before sources were stored: the directory)
      const stored = (yield* Effect.orDie(store.getSources(runId))).find((r) => r.step_id === stepId)
      let source: string
      if (stored !== undefined) {
        if (sha256(stored.source) !== stored.sha256) {
          return yield* finish(outcome("failed", { errorKind: "source_mismatch", error: `the stored source of step '${stepId}' (${stored.path}) does not match its SHA-256 ${stored.sha256}` }), "")
        }
        source = stored.source
      } else {
        try {
          source = readFileSync(file, "utf8").replace(/^\uFEFF/, "")
        } catch (e) {
          return yield* finish(outcome("failed", { errorKind: "io_error", error: `cannot read ${file}: ${(e as { code?: string }).code ?? String(e)}` }), "")
        }
      }
      const compiled = compileSource(file, source)
      if (!compiled.ok) {
        const d = compiled.diagnostics[0]
        return yield* finish(outcome("failed", { errorKind: "compile_error", error: `${d.file}:${d.line}:${d.col}: ${d.code} ${d.message}` }), "")
      }
      work = Vm.run(compiled.program, {})
    };    const timed = step.timeout_ms === null
      ? work
      : Effect.timeoutFail(work, { duration: step.timeout_ms, onTimeout: () => ({ kind: "wall_time_exceeded", message: `step '${stepId}' exceeded timeout_ms ${step.timeout_ms}` }) })
    const result = yield* Effect.either(timed.pipe(
      Effect.provideService(Gateway.Gateway, gateway),
      Effect.provideService(EventLog.EventLog, log)
    ))
    // the end of the attempt is a durability point: the calls held back are written before its outcome
    yield* Effect.orDie(store.recordCalls(pending.splice(0)))
    const eventLog = log.text()
    if (Either.isLeft(result)) {
      const e = abort.current ?? result.left
      const l = result.left as { readonly file?: unknown; readonly line?: unknown; readonly col?: unknown }
      const where = abort.current === undefined && typeof l.file === "string" && typeof l.line === "number" && l.line > 0 ? ` (${l.file}:${l.line}:${String(l.col)})` : ""
      return yield* finish(outcome("failed", { errorKind: e.kind, error: e.message + where }), eventLog)
    }
    const out = JSON.stringify(toJson(result.right));    return yield* finish(outcome("completed", { output: out, outputHash: sha256(out) }), eventLog)
  }).pipe(
    (self) =>
      Effect.flatMap(WorkflowStore, (store) =>
        Effect.flatMap(Effect.orDie(store.getRun(payload.runId)), (run) =>
          run === undefined
            ? self
            : Effect.withSpan(self, "boruna.step", {
              parent: Tracer.externalSpan({ traceId: run.trace_id, spanId: payload.parentSpanId || run.span_id }),
              attributes: { "step.id": payload.stepId, "step.attempt": payload.attempt, "boruna.run_id": payload.runId },
              captureStackTrace: false
            })))
  )

/** Wake this process's waiters of a run (it ended or paused). */
const wake = (env: RunnerEnvService, runId: string): void => {
  for (const f of env.watchers?.get(runId) ?? []) f()
}

/** Sleep `ms`, or less when the run is woken meanwhile (true then). */
const sleepOrWake = (env: RunnerEnvService, runId: string, ms: number): Effect.Effect<boolean> =>
  env.watchers === undefined
    ? Effect.as(Effect.sleep(ms), false)
    : Effect.async<boolean>((resume) => {
      const set = env.watchers!.get(runId) ?? new Set<() => void>()
      env.watchers!.set(runId, set)
      let done = false
      const finish = (woken: boolean) => {
        if (done) return
        done = true
        clearTimeout(timer)
        set.delete(onWake)
        if (set.size === 0) env.watchers!.delete(runId)
        resume(Effect.succeed(woken))
      }
      const onWake = () => finish(true)
      const timer = setTimeout(() => finish(false), ms)
      set.add(onWake)
      return Effect.sync(() => finish(false))
    })

/** A step record's `error_kind` while its TypeScript code waits for a process that defines it. */
export const AWAITING_PROCESS = "awaiting_process"

const awaitingMessage = (workflow: string, runId: string): string =>
  `a TypeScript step: it runs in the process that defines workflow '${workflow}' — there, WorkflowTs.resume(workflow, "${runId}") continues the run`

// ---------------------------------------------------------------------------------------------
// the run: the DAG scheduler

/** Whether a failure of `kind` is retried under the step's retry settings. */
export const retryable = (retry: WorkflowDef["steps"][string]["retry"], kind: string | null): boolean => {
  if (kind === null || kind === "approval_rejected" || kind === "replay_diverged") return false
  if (retry.retry_on.length > 0) return retry.retry_on.includes(kind)
  return retry.on_transient && (kind === "runtime_error" || kind === "wall_time_exceeded")
}

/** The wait before attempt `attempt + 1`: `backoff_ms` (default 50) doubled per attempt, capped. */
export const backoff = (retry: WorkflowDef["steps"][string]["retry"], attempt: number): number => {
  const base = retry.backoff_ms ?? 50
  return Math.min(base * 2 ** (attempt - 1), retry.backoff_ms === undefined ? 2000 : base * 16)
}

const runBody = (payload: { readonly runId: string }) =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore
    const env = yield* RunnerEnv
    const { runId } = payload
    const { run, workflow } = yield* Effect.orDie(loadRunDef(store, runId))
    const span = yield* Effect.currentSpan.pipe(Effect.orElseSucceed(() => undefined))
    const parentSpanId = span?.spanId ?? run.span_id
    if (run.status !== "paused") yield* Effect.orDie(store.setRunStatus(runId, "running"))
    const deps = dependencies(workflow)
    const status = new Map<string, "completed" | "failed" | "skipped">()
    let firstFailure: { kind: string; message: string } | undefined
    const setStatus = (id: string, s: StepStatus, extra: Partial<StepRecord> = {}) =>
      Effect.gen(function*() {
        const prev = (yield* store.getSteps(runId)).find((r) => r.step_id === id)
        yield* store.upsertStep({
          run_id: runId, step_id: id, kind: workflow.steps[id].kind, status: s, attempts: extra.attempts ?? prev?.attempts ?? 0,
          output_json: extra.output_json ?? null, output_hash: extra.output_hash ?? null, source_path: workflow.steps[id].source ?? null,
          started_at: prev?.started_at ?? null, ended_at: extra.ended_at ?? null, duration_ms: extra.duration_ms ?? null,
          error: extra.error ?? null, error_kind: extra.error_kind ?? null
        })
        if (prev?.status !== s) env.onStep(runId, id, s, extra.attempts ?? prev?.attempts ?? 0, extra.error ?? undefined)
      }).pipe(Effect.orDie)

    const runStep = (id: string) =>
      Effect.gen(function*() {
        const bad = (deps.get(id) ?? []).find((d) => status.get(d) !== "completed")
        if (bad !== undefined) {
          status.set(id, "skipped")
          return yield* setStatus(id, "skipped", { error: `skipped: upstream step '${bad}' ${status.get(bad) ?? "did not complete"}`, error_kind: "skipped" })
        }
        const step = workflow.steps[id]
        const max = step.retry.max_attempts
        const t0 = Date.now()
        for (let attempt = 1; ; attempt++) {
          const group = env.placement?.group(step) ?? "default"
          const note = env.placement === undefined ? undefined : yield* env.placement.note(group)
          if (note !== undefined && attempt === 1) yield* setStatus(id, "pending", { error: note, error_kind: "placement" });
          const o = yield* stepWorkflowFor(group).execute({ runId, stepId: id, attempt, parentSpanId })
          if (o.status === "completed") {
            status.set(id, "completed")
            return yield* setStatus(id, "completed", { attempts: attempt, output_json: o.output, output_hash: o.outputHash, ended_at: nowIso(), duration_ms: Date.now() - t0 })
          }
          if (attempt < max && retryable(step.retry, o.errorKind)) {
            yield* setStatus(id, "running", { attempts: attempt, error: o.error, error_kind: o.errorKind })
            // a durable sleep: a crash during the back-off resumes with the remaining wait
            // (the engine's clock, not an in-memory timer, however short the wait)
            yield* DurableClock.sleep({ name: `backoff/${id}/${attempt}`, duration: Duration.millis(backoff(step.retry, attempt)), inMemoryThreshold: Duration.zero })
            continue
          }
          status.set(id, "failed")
          firstFailure ??= { kind: o.errorKind ?? "runtime_error", message: `step '${id}' failed: ${o.error ?? "failed"}` }
          return yield* setStatus(id, "failed", { attempts: attempt, error: o.error, error_kind: o.errorKind, ended_at: nowIso(), duration_ms: Date.now() - t0 })
        }
      })

    for (const wave of waves(workflow)) {
      yield* Effect.forEach(wave, runStep, { concurrency: Math.max(1, run.concurrency), discard: true })
    }
    const result: RunOutcome = firstFailure === undefined
      ? { status: "completed", errorKind: null, error: null }
      : { status: "failed", errorKind: firstFailure.kind, error: firstFailure.message }
    yield* Effect.orDie(store.setRunStatus(runId, result.status, firstFailure))
    wake(env, runId)
    return result
  }).pipe((self) =>
    Effect.flatMap(WorkflowStore, (store) =>
      Effect.flatMap(Effect.orDie(store.getRun(payload.runId)), (run) =>
        run === undefined
          ? self
          : Effect.withSpan(self, "boruna.workflow", {
            parent: Tracer.externalSpan({ traceId: run.trace_id, spanId: run.span_id }),
            attributes: { "boruna.run_id": run.run_id, "workflow.name": run.workflow_name, "workflow.hash": run.workflow_hash },
            captureStackTrace: false
          }))))

/** Register both workflows with the engine in context. */
export const workflowsLayer: Layer.Layer<never, never, WorkflowEngine.WorkflowEngine | WorkflowStore | RunnerEnv> = Layer.mergeAll(
  RunWorkflow.toLayer((p) => runBody(p)),
  StepWorkflow.toLayer((p) => stepBody(p))
)

/** Register the step workflow of a placement group (a cluster runner registers one per group it serves). */
export const stepLayerFor = (group: string): Layer.Layer<never, never, WorkflowEngine.WorkflowEngine | WorkflowStore | RunnerEnv> =>
  group === "default" ? Layer.empty : stepWorkflowFor(group).toLayer((p) => stepBody(p))

/** A fresh W3C trace context for a new run (trace id, and the id of the run's root). */
export const newTraceContext = (): { readonly trace_id: string; readonly span_id: string } => ({
  trace_id: randomBytes(16).toString("hex"),
  span_id: randomBytes(8).toString("hex")
})

// ---------------------------------------------------------------------------------------------
// the library API: validate / run / status / approve / reject / trigger / resume / cancel
// (plain Effects; the CLI and `boruna mcp` call these)

export class WorkflowError extends Data.TaggedError("WorkflowError")<{
  readonly kind: string
  readonly message: string
  /** validation problems, when kind is invalid_workflow (each already formatted) */
  readonly problems?: ReadonlyArray<import("./WorkflowFile.js").Problem>
}> {}

/** A pause waiting for an answer, as shown to users (never with its token). */
export interface PendingItem {
  readonly id: string
  readonly kind: "gate" | "call" | "trigger"
  readonly step: string
  readonly attempt: number
  readonly digest: string
  readonly capability: string | null
  readonly call: string | null
  readonly required_role: string | null
}

export interface RunResult {
  readonly runId: string
  readonly status: "completed" | "failed" | "paused" | "cancelled"
  readonly errorKind: string | null
  readonly error: string | null
  readonly pending: ReadonlyArray<PendingItem>
  /** tokens minted by this call, by pending id: printed once, not kept anywhere */
  readonly tokens: Readonly<Record<string, string>>
  /** step outputs (compact Value JSON) of completed steps */
  readonly outputs: Readonly<Record<string, string>>
  /** TypeScript steps waiting for a process that defines their workflow (this one does not) */
  readonly awaiting: ReadonlyArray<{ readonly step: string; readonly message: string }>
}

export type Services = WorkflowEngine.WorkflowEngine | WorkflowStore | RunnerEnv

const pendingOf = (a: ApprovalRecord): PendingItem => ({
  id: a.id,
  kind: a.kind,
  step: a.step_id,
  attempt: a.attempt,
  digest: a.digest,
  capability: a.capability,
  call: a.args_rendered,
  required_role: a.required_role
})

const runExecutionId = (runId: string): Effect.Effect<string> => RunWorkflow.executionId({ runId })

const summarize = (runId: string, status: RunResult["status"]): Effect.Effect<RunResult, WorkflowError, WorkflowStore | RunnerEnv> =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore
    const env = yield* RunnerEnv
    // what the outcome needs (the run, its steps and approvals), not the whole record: a run's calls
    // and event logs grow with its work
    const run = yield* storeErr(store.getRun(runId))
    const view = run === undefined ? undefined : { run, steps: yield* storeErr(store.getSteps(runId)), approvals: yield* storeErr(store.getApprovals(runId)) }
    const pending = (view?.approvals ?? []).filter((a) => a.status === "pending").map(pendingOf)
    const tokens: Record<string, string> = {}
    const delivered = env.tokens === undefined || pending.length === 0 ? {} : yield* env.tokens.collect(runId)
    for (const p of pending) {
      const t = env.minted.get(`${runId}/${p.id}`) ?? delivered[p.id]
      if (t !== undefined) {
        tokens[p.id] = t
        env.minted.delete(`${runId}/${p.id}`)
      }
    }
    const outputs: Record<string, string> = {}
    for (const s of view?.steps ?? []) if (s.status === "completed" && s.output_json !== null) outputs[s.step_id] = s.output_json
    const awaiting = status === "paused"
      ? (view?.steps ?? []).filter((s) => s.status === "pending" && s.error_kind === AWAITING_PROCESS).map((s) => ({ step: s.step_id, message: s.error ?? "" }))
      : []
    return { runId, status, errorKind: view?.run.error_kind ?? null, error: view?.run.error ?? null, pending, tokens, outputs, awaiting }
  })

const storeErr = <A, R>(e: Effect.Effect<A, import("./WorkflowStore.js").StoreError, R>): Effect.Effect<A, WorkflowError, R> =>
  Effect.mapError(e, (x) => new WorkflowError({ kind: "store_error", message: x.message }))

/**
 * Wait until the run completes or pauses. Reconciles a run the engine reports suspended with
 * nothing pending (a lost wake, Effect-TS/effect#6318) by resuming it.
 */
/** How many times `waitRun` resumes a run an engine defect suspended before it reports the defect. */
const DEFECT_RESUMES = 3

/** One line for a defect's cause: its error's name and message, never a stack trace. */
const defectText = (cause: Cause.Cause<unknown>): string => {
  const e = Cause.squash(cause)
  const text = e instanceof Error ? `${e.name}: ${e.message}` : typeof e === "string" ? e : JSON.stringify(e) ?? String(e)
  return text.split("\n")[0].slice(0, 300)
}

/** Polls without a timer after this process stored a run's outcome (`waitRun`). */
const QUICK_POLLS = 32

export const waitRun = (runId: string, options: { readonly pollMs?: number } = {}): Effect.Effect<RunResult, WorkflowError, Services> =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore
    const execId = yield* runExecutionId(runId)
    // poll soon, then less often (a short run is seen at once, a long one costs ≤ 40 polls/s)
    let pollMs = options.pollMs ?? 1
    const maxPollMs = Math.max(options.pollMs ?? 25, pollMs)
    let suspendedSince: number | undefined
    let defectResumes = 0
    let lastProgress = ""
    let quick = 0
    for (;;) {
      const r = yield* RunWorkflow.poll(execId)
      const run = yield* storeErr(store.getRun(runId))
      if (run?.status === "cancelled") return yield* summarize(runId, "cancelled")
      if (r !== undefined && r._tag === "Complete") {;
        if (Exit.isSuccess(r.exit)) return yield* summarize(runId, r.exit.value.status)
        return yield* summarize(runId, "failed").pipe(Effect.map((s) => ({ ...s, errorKind: s.errorKind ?? "internal", error: s.error ?? "the run ended with a defect" })))
      }
      if (r !== undefined && r._tag === "Suspended") {
        const approvals = yield* storeErr(store.getApprovals(runId))
        if (approvals.some((a) => a.status === "pending")) return yield* summarize(runId, "paused")
        // a TypeScript step waits for its process: this one cannot continue the run
        const env = yield* RunnerEnv
        const steps = yield* storeErr(store.getSteps(runId))
        const waiting = steps.filter((x) => x.status === "pending" && x.error_kind === AWAITING_PROCESS)
        if (waiting.length > 0) {
          const name = run?.workflow_name ?? ""
          if (waiting.some((x) => !env.tsSteps.has(`${name}/${x.step_id}`))) return yield* summarize(runId, "paused")
          yield* resumeAwaiting(runId)
        }
        suspendedSince ??= Date.now()
        if (Date.now() - suspendedSince > 1500) {
          // suspended by a defect (SuspendOnFailure): resumed a few times, since a transient engine
          // fault (#7464) heals on a resume; one that keeps coming back is reported, not waited on
          // progress since the last look (a step moved on, a call was made) starts the count again
          const progress = JSON.stringify([
            (yield* storeErr(store.getSteps(runId))).map((x) => [x.step_id, x.status, x.attempts]),
            (yield* storeErr(store.getCalls(runId))).map((x) => [x.status, x.executions])
          ])
          if (progress !== lastProgress) defectResumes = 0
          lastProgress = progress
          if (r.cause !== undefined && ++defectResumes > DEFECT_RESUMES) {
            return yield* summarize(runId, "failed").pipe(Effect.map((s) => ({
              ...s,
              errorKind: "internal",
              error: `the run is suspended by an engine defect (${defectText(r.cause!)}); resumed ${DEFECT_RESUMES} times, it came back each time: fix the cause, then \`boruna workflow resume ${runId}\``
            })))
          }
          yield* reconcileRun(runId)
          suspendedSince = undefined
        }
      } else {
        suspendedSince = undefined
      }
      // woken: the outcome is being stored (by fibers of this process), so look again as soon as
      // they have had a turn, a few times, before falling back to timed polls
      if (quick > 0) {
        quick--
        yield* Effect.yieldNow()
        continue
      }
      const woken = yield* sleepOrWake(yield* RunnerEnv, runId, pollMs)
      if (woken) quick = QUICK_POLLS
      pollMs = woken ? 1 : Math.min(maxPollMs, pollMs * 2)
    }
  })

/** Validate and start a run; waits until it completes or pauses. */
export const startRun = (o: RunRequest): Effect.Effect<RunResult, WorkflowError, Services> => startRunThen(o, waitRun)

/**
 * Validate and submit a run, and return its id at once without waiting (`workflow run --detach` on
 * a cluster, where runners execute it).
 */
export const submitRun = (o: RunRequest): Effect.Effect<string, WorkflowError, Services> => startRunThen(o, Effect.succeed)

export interface RunRequest {
  /** a workflow directory (or its workflow.json), or one `.ax` file run as a one-step workflow */
  readonly path: string
  readonly policy: Policy
  readonly inputs?: Readonly<Record<string, string>>
  readonly live?: boolean
  readonly concurrency?: number
}

const startRunThen = <A>(o: RunRequest, then: (runId: string) => Effect.Effect<A, WorkflowError, Services>): Effect.Effect<A, WorkflowError, Services> =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore
    let workflow: WorkflowDef
    let path: string
    if (o.path.endsWith(".ax")) {
      path = resolve(o.path)
      let text: string
      try {
        text = readFileSync(path, "utf8")
      } catch (e) {
        return yield* new WorkflowError({ kind: "io_error", message: `cannot read ${o.path}: ${(e as { code?: string }).code === "ENOENT" ? "no such file" : String(e)}` })
      }
      const r = compileSource(path, text)
      if (!r.ok) {
        return yield* new WorkflowError({
          kind: "invalid_workflow",
          message: `${o.path} does not compile`,
          problems: r.diagnostics.map((d) => ({ kind: "compile_error", path: "$.steps.main.source", message: `step 'main': ${d.code} ${d.message}`, step: "main", location: { file: d.file, line: d.line, col: d.col } }))
        })
      }
      workflow = WF.singleStep(basename(path), basename(path, ".ax"))
    } else {
      const v = V.validateDir(o.path)
      if (Either.isLeft(v)) return yield* new WorkflowError({ kind: "invalid_workflow", message: `${o.path}: invalid workflow`, problems: v.left })
      workflow = v.right.workflow
      path = resolve(v.right.dir)
    }
    return yield* startWorkflowThen({ ...o, workflow, path }, then)
  })

/**
 * Start a run of an already-decoded workflow (TypeScript workflows, `WorkflowTs.ts`): `path` is the
 * directory its `.ax` steps are relative to. Waits until the run completes or pauses.
 */
export const startWorkflow = (o: WorkflowRequest): Effect.Effect<RunResult, WorkflowError, Services> => startWorkflowThen(o, waitRun)

interface WorkflowRequest {
  readonly workflow: WorkflowDef
  readonly path: string
  readonly policy: Policy
  readonly inputs?: Readonly<Record<string, string>>
  readonly live?: boolean
  readonly concurrency?: number
}

const startWorkflowThen = <A>(o: WorkflowRequest, then: (runId: string) => Effect.Effect<A, WorkflowError, Services>): Effect.Effect<A, WorkflowError, Services> =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore
    const { workflow, path } = o
    const problems = V.checkWorkflow(workflow)
    if (problems.length > 0) return yield* new WorkflowError({ kind: "invalid_workflow", message: `${workflow.name}: invalid workflow`, problems })
    const inputs = o.inputs ?? {}
    const wh = WF.workflowHash(workflow)
    const ih = WF.inputsHash(inputs)
    const counter = yield* storeErr(store.countRuns(wh, ih))
    const runId = WF.runId(wh.slice(7), ih.slice(7), counter)
    const policyJson = P.policyToJson(o.policy)
    // every `.ax` step's source, stored with the run before the run exists: later executions
    // (resume, approve, a cluster runner) compile from it, never from the directory
    const base = path.endsWith(".ax") ? join(path, "..") : path
    const sources: Array<import("./WorkflowStore.js").SourceRecord> = []
    for (const [id, step] of Object.entries(workflow.steps)) {
      if (step.kind !== "source" || step.source === undefined || step.source.startsWith("ts:")) continue
      const file = join(base, step.source)
      let text: string
      try {
        text = readFileSync(file, "utf8").replace(/^\uFEFF/, "")
      } catch (e) {
        return yield* new WorkflowError({ kind: "io_error", message: `step '${id}': cannot read its source ${file}: ${(e as { code?: string }).code === "ENOENT" ? "no such file" : String(e)}` })
      }
      sources.push({ run_id: runId, step_id: id, path: step.source, source: text, sha256: sha256(text) })
    };    yield* storeErr(store.putSources(sources))
    const at = nowIso()
    yield* storeErr(store.createRun({
      run_id: runId,
      workflow_name: workflow.name,
      workflow_version: workflow.version,
      workflow_hash: wh,
      workflow_path: path,
      workflow_json: canonicalJson(Schema.encodeSync(WorkflowSchema)(workflow)),
      policy_json: canonicalJson(policyJson),
      policy_hash: P.policyHash(o.policy),
      inputs_json: canonicalJson(inputs),
      inputs_hash: ih,
      counter,
      status: "running",
      live: o.live === true,
      concurrency: o.concurrency ?? 4,
      ...newTraceContext(),
      created_at: at,
      updated_at: at,
      error: null,
      error_kind: null
    }))
    yield* RunWorkflow.execute({ runId }, { discard: true })
    return yield* then(runId)
  })

/** Resume the engine's workflows of a run whose pauses are answered (the #6318 reconciler, one run). */
export const reconcileRun = (runId: string): Effect.Effect<void, WorkflowError, Services> =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore
    const approvals = yield* storeErr(store.getApprovals(runId))
    for (const a of approvals) {
      if (a.status === "pending") continue
      const d: Decision = {
        decision: a.status === "approved" ? "approved" : a.status === "rejected" ? "rejected" : "triggered",
        approver: a.approver ?? "",
        reason: a.reason,
        payload: a.payload_json,
        digest: a.digest,
        at: a.decided_at ?? nowIso()
      }
      yield* completePause(a, d)
    }
    // a step an engine defect suspended (SuspendOnFailure) is resumed first: its run waits on it
    const env = yield* RunnerEnv
    const { workflow } = yield* Effect.orDie(loadRunDef(store, runId))
    for (const s of yield* storeErr(store.getSteps(runId))) {
      if (s.status !== "running" || workflow.steps[s.step_id] === undefined) continue
      const group = env.placement?.group(workflow.steps[s.step_id]) ?? "default"
      const stepExec = yield* stepExecutionId(runId, s.step_id, Math.max(1, s.attempts), group)
      const r = yield* stepWorkflowFor(group).poll(stepExec)
      if (r !== undefined && r._tag === "Suspended" && r.cause !== undefined) {
        // another process (a cluster runner's reconciler) may be resuming it too: either resume will do
        yield* stepWorkflowFor(group).resume(stepExec).pipe(
          Effect.catchAllCause((c) => (Cause.isInterruptedOnly(c) ? Effect.failCause(c) : Effect.void))
        )
      }
    }
    const execId = yield* runExecutionId(runId)
    yield* RunWorkflow.resume(execId)
  })

/** Resume the suspended TypeScript steps of a run whose code this process has (`WorkflowTs.layer`). */
const resumeAwaiting = (runId: string): Effect.Effect<void, WorkflowError, Services> =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore
    const env = yield* RunnerEnv
    const { run, workflow } = yield* Effect.orDie(loadRunDef(store, runId))
    for (const s of yield* storeErr(store.getSteps(runId))) {
      if (s.status !== "pending" || s.error_kind !== AWAITING_PROCESS || !env.tsSteps.has(`${run.workflow_name}/${s.step_id}`)) continue
      const group = env.placement?.group(workflow.steps[s.step_id]) ?? "default"
      const execId = yield* stepExecutionId(runId, s.step_id, Math.max(1, s.attempts), group)
      yield* storeErr(store.setRunStatus(runId, "running"))
      yield* stepWorkflowFor(group).resume(execId)
    }
  })

/** Complete a pause's DurableDeferred (only the first completion counts) and wake its step. */
const completePause = (a: ApprovalRecord, d: Decision): Effect.Effect<void, never, WorkflowEngine.WorkflowEngine | WorkflowStore | RunnerEnv> =>
  Effect.gen(function*() {
    const env = yield* RunnerEnv
    let stepWf: StepWorkflowAny = StepWorkflow
    if (env.placement !== undefined) {
      const { workflow } = yield* Effect.orDie(loadRunDef(yield* WorkflowStore, a.run_id))
      stepWf = stepWorkflowFor(env.placement.group(workflow.steps[a.step_id]))
    }
    const execId = yield* stepWf.executionId({ runId: a.run_id, stepId: a.step_id, attempt: a.attempt, parentSpanId: "" })
    const deferred = pauseDeferred(a.id)
    yield* DurableDeferred.done(deferred, {
      token: DurableDeferred.tokenFromExecutionId(deferred, { workflow: stepWf, executionId: execId }),
      exit: Exit.succeed(d)
    })
    yield* stepWf.resume(execId)
  })

/** Resume every run the store says is paused or running but whose answers are recorded (start-up reconciler). */
export const reconcileAll: Effect.Effect<ReadonlyArray<string>, WorkflowError, Services> = Effect.gen(function*() {
  const store = yield* WorkflowStore
  const out: Array<string> = []
  for (const status of ["paused", "running"] as const) {
    for (const run of yield* storeErr(store.listRuns(status))) {
      const approvals = yield* storeErr(store.getApprovals(run.run_id))
      // a step still marked waiting although none of its pauses is pending: its answer was recorded, its wake may be lost
      const pendingSteps = new Set(approvals.filter((a) => a.status === "pending").map((a) => a.step_id))
      const answeredButWaiting = (yield* storeErr(store.getSteps(run.run_id))).some((s) =>
        (s.status === "awaiting_approval" || s.status === "awaiting_trigger") && !pendingSteps.has(s.step_id) && approvals.some((a) => a.step_id === s.step_id)
      )
      if (status === "running" || answeredButWaiting) {
        yield* reconcileRun(run.run_id)
        if (answeredButWaiting) yield* storeErr(store.addHistory({ run_id: run.run_id, approval_id: null, at: nowIso(), actor: null, event: "reconciled", detail: "an answer was recorded but the run was still suspended: resumed" }))
        out.push(run.run_id)
      }
    }
  }
  return out
})

/**
 * Answer a pause: approve or reject a gate (`step`) or a per-call approval (`call` digest), or
 * deliver an external trigger's payload. Checks the token (stored hashed), records the decision
 * (single use, first answer wins) or the refused attempt, then continues the run and waits.
 */
export const answer = (o: {
  readonly runId: string
  readonly step?: string | undefined
  readonly call?: string | undefined
  readonly token: string
  readonly as: string
  readonly reason?: string | undefined
  readonly decision: "approved" | "rejected" | "triggered"
  readonly payload?: string | undefined
}): Effect.Effect<RunResult, WorkflowError, Services> =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore
    const { tokenMatches } = yield* Effect.promise(() => import("./Approval.js"))
    const run = yield* storeErr(store.getRun(o.runId))
    if (run === undefined) return yield* new WorkflowError({ kind: "unknown_run", message: `no run ${o.runId} in this data dir (boruna workflow list shows the runs)` })
    const approvals = yield* storeErr(store.getApprovals(o.runId))
    const refuse = (approvalId: string | null, detail: string) =>
      Effect.zipRight(
        storeErr(store.addHistory({ run_id: o.runId, approval_id: approvalId, at: nowIso(), actor: o.as, event: "refused", detail })),
        Effect.fail(new WorkflowError({ kind: "approval_refused", message: detail }))
      )
    let target: ApprovalRecord | undefined
    if (o.call !== undefined) {
      target = approvals.find((a) => a.kind === "call" && a.digest === o.call)
      if (target === undefined) return yield* refuse(null, `wrong digest: no call of run ${o.runId} awaits approval with digest ${o.call}`)
    } else {
      const forStep = approvals.filter((a) => a.step_id === o.step)
      target = forStep.find((a) => a.kind === (o.decision === "triggered" ? "trigger" : "gate"))
      if (target === undefined) {
        const call = forStep.find((a) => a.kind === "call" && a.status === "pending")
        if (call !== undefined && o.decision !== "triggered") {
          return yield* refuse(call.id, `step '${o.step}' waits for a per-call approval: answer it with --call ${call.digest}`)
        }
        const kind = o.decision === "triggered" ? "an external_trigger" : "an approval_gate"
        return yield* refuse(null, `step '${o.step}' of run ${o.runId} is not ${kind} waiting for an answer`)
      }
    }
    if (!tokenMatches(o.token, target.token_hash)) return yield* refuse(target.id, `wrong token for ${target.id}`)
    if (target.status !== "pending") {
      return yield* refuse(target.id, `${target.id} was already ${target.status} by ${target.approver ?? "?"} at ${target.decided_at ?? "?"}: an answer is single use`)
    }
    const at = nowIso()
    const won = yield* storeErr(store.decide(o.runId, target.id, { status: o.decision, approver: o.as, reason: o.reason ?? null, payload_json: o.payload ?? null, at }))
    if (!won) {
      const now = yield* storeErr(store.getApproval(o.runId, target.id))
      return yield* refuse(target.id, `${target.id} was already ${now?.status ?? "decided"} by ${now?.approver ?? "?"}: the first answer wins`)
    }
    yield* storeErr(store.addHistory({ run_id: o.runId, approval_id: target.id, at, actor: o.as, event: o.decision, detail: o.reason ?? o.payload ?? "" }))
    yield* storeErr(store.setRunStatus(o.runId, "running"))
    yield* completePause(target, { decision: o.decision, approver: o.as, reason: o.reason ?? null, payload: o.payload ?? null, digest: target.digest, at })
    return yield* waitRun(o.runId)
  })

/** Continue a run (after a crash, or when it is suspended with its answers recorded). */
export const resumeRun = (runId: string): Effect.Effect<RunResult, WorkflowError, Services> =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore
    const run = yield* storeErr(store.getRun(runId))
    if (run === undefined) return yield* new WorkflowError({ kind: "unknown_run", message: `no run ${runId} in this data dir` })
    if (run.status === "completed" || run.status === "failed" || run.status === "cancelled") return yield* summarize(runId, run.status)
    yield* storeErr(store.addHistory({ run_id: runId, approval_id: null, at: nowIso(), actor: null, event: "resumed", detail: "" }))
    // a paused run: its tokens were shown once (or lost with a crash before they were): mint new ones
    const env = yield* RunnerEnv
    for (const a of yield* storeErr(store.getApprovals(runId))) {
      if (a.status !== "pending") continue
      const token = mintToken()
      if (yield* storeErr(store.rotateToken(runId, a.id, tokenHash(token)))) {
        env.minted.set(`${runId}/${a.id}`, token)
        yield* storeErr(store.addHistory({ run_id: runId, approval_id: a.id, at: nowIso(), actor: null, event: "token_rotated", detail: "resume minted a new token; the old one no longer works" }))
      }
    }
    yield* reconcileRun(runId)
    // TypeScript steps that waited for a process defining them: this one does, when it registered them
    yield* resumeAwaiting(runId)
    // a run whose first message never reached the engine (crash right after it was recorded)
    yield* RunWorkflow.execute({ runId }, { discard: true })
    return yield* waitRun(runId)
  })

/** Cancel a run: interrupt its engine workflow, mark it and its open pauses. */
export const cancelRun = (runId: string): Effect.Effect<RunResult, WorkflowError, Services> =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore
    const run = yield* storeErr(store.getRun(runId))
    if (run === undefined) return yield* new WorkflowError({ kind: "unknown_run", message: `no run ${runId} in this data dir` })
    if (run.status === "completed" || run.status === "failed") {
      return yield* new WorkflowError({ kind: "already_finished", message: `run ${runId} already ${run.status}` })
    }
    yield* storeErr(store.setRunStatus(runId, "cancelled", { kind: "cancelled", message: "cancelled" }))
    yield* storeErr(store.addHistory({ run_id: runId, approval_id: null, at: nowIso(), actor: null, event: "cancelled", detail: "" }))
    const execId = yield* runExecutionId(runId)
    yield* RunWorkflow.interrupt(execId)
    return yield* summarize(runId, "cancelled")
  })

/** The whole record of a run. */
export const runStatus = (runId: string): Effect.Effect<import("./WorkflowStore.js").RunView, WorkflowError, WorkflowStore> =>
  Effect.flatMap(WorkflowStore, (store) =>
    Effect.flatMap(storeErr(store.readRun(runId)), (v) =>
      v === undefined ? Effect.fail(new WorkflowError({ kind: "unknown_run", message: `no run ${runId} in this data dir` })) : Effect.succeed(v)))

/**
 * Everything a process needs to drive runs on `engine`: the registered workflows, the store and the
 * runner environment. `engine` is `sqliteEngine(dir)`, `memoryEngine` or `Cluster.clusterEngine(…)`.
 */
export const layer = <E>(
  engine: Layer.Layer<WorkflowEngine.WorkflowEngine | import("@effect/sql/SqlClient").SqlClient, E>,
  env: RunnerEnvService = makeEnv()
): Layer.Layer<Services | import("@effect/sql/SqlClient").SqlClient, E | import("./WorkflowStore.js").StoreError> =>
  Effect.promise(() => import("./WorkflowStore.js")).pipe(
    Effect.map((S) => workflowsLayer.pipe(Layer.provideMerge(Layer.mergeAll(S.layer, Layer.succeed(RunnerEnv, env))))),
    Layer.unwrapEffect,
    // boruna's engine layer: capability Activities journaled in the store, the rest the engine's
    Layer.provideMerge(withLocalActivities(engine))
  )

/**
 * The same services without registering the workflows: for a client of a cluster (`--cluster URL`),
 * whose runs execute on `boruna runner` processes that provide `layer(clusterEngine(…))`.
 */
export const clientLayer = <E>(
  engine: Layer.Layer<WorkflowEngine.WorkflowEngine | import("@effect/sql/SqlClient").SqlClient, E>,
  env: RunnerEnvService = makeEnv()
): Layer.Layer<Services | import("@effect/sql/SqlClient").SqlClient, E | import("./WorkflowStore.js").StoreError> =>
  Effect.promise(() => import("./WorkflowStore.js")).pipe(
    Effect.map((S) => Layer.mergeAll(S.layer, Layer.succeed(RunnerEnv, env))),
    Layer.unwrapEffect,
    Layer.provideMerge(engine)
  )
