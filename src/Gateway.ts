/**
 * The capability gateway: the one door every side effect goes through.
 *
 * `call(cap, args)`: policy (→ `Denied`) → budget (→ `BudgetExceeded`), each refusal logged as a
 * `CapRefused` event → event log `CapCall` → handler (failure or defect → `RuntimeError`) → event
 * log `CapResult` → result.
 *
 * With telemetry on, each call is one `boruna.cap` span with `cap.name`, `bytes_in`, `bytes_out`
 * (on success), `cap.budget_remaining` (when a budget applies) and `error.kind` / `error.type` (on
 * failure). Arguments and results never become span attributes; on exported spans a handler's
 * annotations and events keep numbers and booleans, and strings only under the keys in
 * `SAFE_STRING_KEYS` (no host, address, path, URL or message; the local `--trace` recorder keeps
 * them). Nothing of the span enters the event log. When the exporter's queue is full the call first
 * waits for room (`ExportBackpressure`) instead of having its span dropped.
 * With telemetry off, the gateway takes a separate path that does no span work at all.
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Tracer from "effect/Tracer"
import { Budget, type Counter, EXCEEDED, UNLIMITED } from "./Budget.js"
import type { CapabilityName } from "./Capability.js"
import { ApprovalRequired, BudgetExceeded, Denied, type HandlerFailure, RuntimeError, type CapabilityError } from "./Errors.js"
import type { CallSite } from "./Event.js"
import { EventLog, type EventLogService } from "./EventLog.js"
import { type Handler, type HandlerContext, Handlers, type HandlersService, missing } from "./Handlers.js"
import type { Policy } from "./Policy.js"
import { isAllowed, mayNeedApproval, needsApproval } from "./PolicyCore.js"
import { ExportBackpressure, type ExportBackpressureService, NOT_GRANTED, sameFailure, TelemetryEnabled } from "./TelemetryFlag.js"
import { approxBytes, approxBytesAll, type Value } from "./Value.js"
import { recordedNetArgs } from "./live/Userinfo.js"

export interface GatewayService {
  readonly call: (cap: CapabilityName, args: ReadonlyArray<Value>, site?: CallSite) => Effect.Effect<Value, CapabilityError>
}

/** What `make` returns: the service plus the policy and the run's budget counters. */
export interface GatewayInstance extends GatewayService {
  readonly policy: Policy
  readonly budget: Budget
  /**
   * Untraced only: `call`'s work done at once, in the caller's own step of its fiber, rather than
   * when its effect runs. A handler that answers at once gives back its `Exit`. For a caller that
   * is itself an effect's body (a workflow step's gateway), one step instead of two.
   */
  readonly callNow?: ((cap: CapabilityName, args: ReadonlyArray<Value>, site?: CallSite) => Effect.Effect<Value, CapabilityError>) | undefined
}

export class Gateway extends Context.Tag("boruna/Gateway")<Gateway, GatewayService>() {}

const noop = (): void => {}

/** What the gateway caches per capability (see `entryOf` in `make`). */
interface CapEntry {
  readonly allowed: boolean
  /** some call of this capability may need a person's approval (policy `approve` / `approve_methods`) */
  readonly approval: boolean
  readonly counter: Counter
  readonly handler: Handler | undefined
  /** the handler context of the untraced path (span hooks are no-ops) */
  readonly ctx: HandlerContext
  readonly outcome: Outcome
}

interface Outcome {
  readonly onFailure: (cause: Cause.Cause<HandlerFailure>) => Effect.Effect<Value, CapabilityError>
  readonly onSuccess: (result: Value) => Effect.Effect<Value, CapabilityError>
}

/** Whether a handler's effect is an already-succeeded Exit (what `Effect.succeed` returns). */
const isSucceeded = (e: Effect.Effect<Value, HandlerFailure>): e is Exit.Success<Value, never> =>
  Exit.isExit(e) && Exit.isSuccess(e)

/**
 * Handler annotation / event keys whose String values may reach a span: fixed vocabularies (a
 * method, a decision, a reason, a scheme, an address class) and the GenAI model names the semantic
 * conventions require. Any other String value (a host, an address, a path, a URL) is dropped.
 */
export const SAFE_STRING_KEYS: ReadonlySet<string> = new Set([
  "http.request.method",
  "net.decision",
  "net.reason",
  "net.scheme",
  "net.address_class",
  "gen_ai.operation.name",
  "gen_ai.provider.name",
  "gen_ai.request.model",
  "gen_ai.response.model"
])

const safeAttribute = (key: string, value: unknown): boolean => typeof value !== "string" || SAFE_STRING_KEYS.has(key)

const safeAttributes = (attributes: Record<string, unknown> | undefined): Record<string, unknown> | undefined => {
  if (attributes === undefined) return undefined
  let out: Record<string, unknown> | undefined
  for (const k in attributes) {
    if (!safeAttribute(k, attributes[k])) {
      out ??= { ...attributes }
      delete out[k]
    }
  }
  return out ?? attributes
}

const describeCause = (cause: Cause.Cause<unknown>): string => {
  const d = Cause.squash(cause)
  return d instanceof Error ? d.message : String(d)
}

/** Build a gateway over the given handlers and log. `traced` selects the span path. */
export const make = (options: {
  readonly policy: Policy
  readonly handlers: HandlersService
  readonly log: EventLogService
  readonly traced: boolean
  /** the exporter's backpressure (traced path only) */
  readonly backpressure?: ExportBackpressureService | undefined
  /**
   * true when a person has already approved the call (a workflow step's Activity, docs/workflows.md);
   * otherwise a call the policy marks as needing approval fails with `approval_required`
   */
  readonly approvalsGranted?: boolean | undefined
}): GatewayInstance => {
  const { policy, handlers, log } = options
  const approvalsGranted = options.approvalsGranted === true
  /** only a workflow can wait for a person: a plain run names the command that can */
  const approvalRequired = (cap: CapabilityName, site: CallSite | undefined): ApprovalRequired =>
    new ApprovalRequired({
      capability: cap,
      reason: `the policy requires a person's approval before this call; run the program as a workflow, which pauses for it: boruna workflow run ${site?.file ?? "FILE.ax"}`
    })
  // spans leave the process only through an exporter (which is what applies backpressure): there,
  // handler strings outside SAFE_STRING_KEYS are dropped; the local recorder (--trace) keeps them
  const exported = options.backpressure !== undefined
  const appendCall = log.appendCall ?? ((capability: CapabilityName, args: ReadonlyArray<Value>, site: CallSite | undefined): void =>
    log.append(site === undefined ? { type: "CapCall", capability, args } : { type: "CapCall", capability, args, site }))
  // credentials in a net.fetch URL are never recorded: logged as https://REDACTED@host/ (live/Userinfo.ts)
  const logCall = (capability: CapabilityName, args: ReadonlyArray<Value>, site: CallSite | undefined): void =>
    appendCall(capability, capability === "net.fetch" ? recordedNetArgs(args) : args, site)
  const logResult = log.appendResult ?? ((capability: CapabilityName, result: Value): void => log.append({ type: "CapResult", capability, result }))
  const flush = log.flush ?? noop
  /** A call the policy refused before any handler ran is an event of its own (`CapRefused`). */
  const refuse = (err: Denied | BudgetExceeded, args: ReadonlyArray<Value>, site: CallSite | undefined): Effect.Effect<never, CapabilityError> => {
    const recorded = err.capability === "net.fetch" ? recordedNetArgs(args) : args
    const base = { type: "CapRefused" as const, capability: err.capability, args: recorded, kind: err.kind, message: err.message }
    log.append(site === undefined ? base : { ...base, site })
    return Effect.fail(err)
  }
  const budget = new Budget(policy)

  /**
   * Everything a call needs about its capability, looked up once per capability per gateway: one
   * Map lookup per call instead of five (allowed, usage, limit, handler, context).
   */
  const entries = new Map<CapabilityName, CapEntry>()
  const entryOf = (cap: CapabilityName): CapEntry => {
    let e = entries.get(cap)
    if (e === undefined) {
      e = {
        allowed: isAllowed(policy, cap),
        approval: !approvalsGranted && mayNeedApproval(policy, cap),
        counter: budget.counter(cap),
        handler: handlers.get(cap),
        ctx: { capability: cap, policy, annotate: noop, event: noop },
        outcome: outcomeOf(cap)
      }
      entries.set(cap, e)
    }
    return e
  }

  const toRuntime = (cap: CapabilityName) => (e: HandlerFailure): CapabilityError => {
    const err = e.denied ? new Denied({ capability: cap, reason: e.message }) : new RuntimeError({ capability: cap, reason: e.message })
    sameFailure(e, err)
    return err
  }

  /**
   * How to record the outcome of `cap`'s handler and map its failure to a `CapabilityError`. Built
   * once per capability (it only closes over `cap`), so `settle` allocates no closures per call.
   */
  const outcomeOf = (cap: CapabilityName): Outcome => ({
    onFailure: (cause) => {
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
      // the handler's failure, also when its cause carries more (a scope's finalizers)
      const failure = Cause.failureOption(cause)
      const err: CapabilityError = Option.isSome(failure)
        ? toRuntime(cap)(failure.value)
        : new RuntimeError({ capability: cap, reason: describeCause(cause) })
      log.append({ type: "CapError", capability: cap, kind: err.kind, message: err.message })
      return Effect.fail(err)
    },
    onSuccess: (result) => {
      logResult(cap, result)
      return Effect.succeed(result)
    }
  })

  /** Record the outcome of a handler's effect and map its failure to a `CapabilityError`. */
  const settle = (e: CapEntry, run: Effect.Effect<Value, HandlerFailure>): Effect.Effect<Value, CapabilityError> =>
    Effect.matchCauseEffect(run, e.outcome)

  // -- telemetry off: no span work at all ------------------------------------------------------
  // Fast path: a handler that answers synchronously (`Effect.succeed`, as demo and replay handlers
  // do) returns an already-completed Exit; its result is logged and that Exit returned as-is, so
  // the call costs one `suspend` over the direct handler call. Anything else goes through `settle`.
  const callPlain = (cap: CapabilityName, args: ReadonlyArray<Value>, site?: CallSite): Effect.Effect<Value, CapabilityError> =>
    Effect.suspend(() => callNow(cap, args, site))
  const callNow = (cap: CapabilityName, args: ReadonlyArray<Value>, site?: CallSite): Effect.Effect<Value, CapabilityError> => {
    const e = entryOf(cap)
    if (!e.allowed) {
      return refuse(new Denied({ capability: cap, reason: NOT_GRANTED }), args, site)
    }
    // not a CapRefused event: the program stops here, and replaying the log never reaches the call
    if (e.approval && needsApproval(policy, cap, args)) return Effect.fail(approvalRequired(cap, site))
    if (e.counter.take() === EXCEEDED) return refuse(new BudgetExceeded({ capability: cap, budget: e.counter.limit }), args, site)
    logCall(cap, args, site)
    const handler = e.handler
    if (handler === undefined) return settle(e, missing(cap))
    const run = handler(args, e.ctx)
    if (isSucceeded(run)) {
      logResult(cap, run.value)
      return run
    }
    // the handler has not answered yet: its call goes on record before any of its effects run
    flush()
    return settle(e, run)
  }

  // -- telemetry on: one boruna.cap span per call ------------------------------------------------
  const spanned = (span: Tracer.Span, cap: CapabilityName, args: ReadonlyArray<Value>, site?: CallSite): Effect.Effect<Value, CapabilityError> => {
    span.attribute("bytes_in", approxBytesAll(args))
    const e = entryOf(cap)
    if (!e.allowed) {
      span.attribute("error.kind", "denied")
      span.attribute("error.type", "denied")
      return refuse(new Denied({ capability: cap, reason: NOT_GRANTED }), args, site)
    }
    if (e.approval && needsApproval(policy, cap, args)) {
      span.attribute("error.kind", "approval_required")
      span.attribute("error.type", "approval_required")
      return Effect.fail(approvalRequired(cap, site))
    }
    const remaining = e.counter.take()
    if (remaining === EXCEEDED) {
      span.attribute("cap.budget_remaining", 0)
      span.attribute("error.kind", "budget_exceeded")
      span.attribute("error.type", "budget_exceeded")
      return refuse(new BudgetExceeded({ capability: cap, budget: e.counter.limit }), args, site)
    }
    if (remaining !== UNLIMITED) span.attribute("cap.budget_remaining", remaining)
    logCall(cap, args, site)
    flush()
    const ctx: HandlerContext = {
      capability: cap,
      policy,
      annotate: exported
        ? (k, v) => {
          if (safeAttribute(k, v)) span.attribute(k, v)
        }
        : (k, v) => span.attribute(k, v),
      event: (name, attributes) =>
        span.event(name, BigInt(Date.now()) * 1_000_000n, exported ? safeAttributes(attributes) : attributes)
    }
    const handler = e.handler
    const run = handler === undefined ? missing(cap) : handler(args, ctx)
    // a handler that answered synchronously: log, count and hand back its Exit as-is (it cannot
    // have opened a child span, so it needs no parent)
    if (isSucceeded(run)) {
      logResult(cap, run.value)
      span.attribute("bytes_out", approxBytes(run.value))
      return run
    }
    return settle(e, run).pipe(
      Effect.tap((result) => Effect.sync(() => span.attribute("bytes_out", approxBytes(result)))),
      Effect.tapError((e) =>
        Effect.sync(() => {
          span.attribute("error.kind", e.kind)
          span.attribute("error.type", e.kind)
        })
      ),
      Effect.withParentSpan(span)
    )
  }

  /**
   * The cap span, made directly with the fiber's current tracer (the one the telemetry layer
   * installed: still swappable by layer), its current span as parent, its clock for the times and
   * the span annotations and links the caller set (`Effect.annotateSpans` / `Effect.linkSpans`) —
   * what `Effect.useSpan` does, without its options object, call-site stack or `withParentSpan`
   * context copy. A synchronous outcome ends the span at once; anything else ends it on exit,
   * interruption included.
   */
  const backpressure = options.backpressure
  const noLinks: Array<Tracer.SpanLink> = []
  const emptyContext = Context.empty()
  let lastParent: Tracer.AnySpan | undefined
  let lastParentOption: Option.Option<Tracer.AnySpan> = Option.none()
  const tracedCall = (cap: CapabilityName, args: ReadonlyArray<Value>, site?: CallSite): Effect.Effect<Value, CapabilityError> =>
    Effect.withFiberRuntime<Value, CapabilityError>((fiber) => {
      // the exporter's queue is full: wait for room first (not a drop)
      if (backpressure !== undefined && backpressure.full()) return Effect.zipRight(backpressure.wait, tracedCall(cap, args, site))
      const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
      const current = fiber.currentSpan
      // one Option per parent span, not one per call (a run's calls share their parent)
      if (current !== lastParent) {
        lastParent = current
        lastParentOption = current === undefined ? Option.none() : Option.some(current)
      }
      // the caller's Effect.linkSpans / Effect.annotateSpans, as Effect.useSpan would apply them
      const links = fiber.getFiberRef(FiberRef.currentTracerSpanLinks)
      const span = fiber.currentTracer.span(
        "boruna.cap",
        lastParentOption,
        emptyContext,
        Chunk.isEmpty(links) ? noLinks : Chunk.toReadonlyArray(links),
        clock.unsafeCurrentTimeNanos(),
        "internal"
      )
      const annotations = fiber.getFiberRef(FiberRef.currentTracerSpanAnnotations)
      if (HashMap.size(annotations) > 0) HashMap.forEach(annotations, (value, key) => span.attribute(key, value))
      span.attribute("cap.name", cap)
      const run = spanned(span, cap, args, site)
      if (Exit.isExit(run)) {
        span.end(clock.unsafeCurrentTimeNanos(), run)
        return run
      }
      return Effect.onExit(run, (exit) => Effect.sync(() => span.end(clock.unsafeCurrentTimeNanos(), exit)))
    })

  return options.traced ? { call: tracedCall, policy, budget } : { call: callPlain, callNow, policy, budget }
}

/**
 * The gateway for one run under `policy`, using the `Handlers` and `EventLog` in context. Telemetry
 * is on when a telemetry layer has set `TelemetryEnabled` (see `Telemetry.ts`).
 */
export const layer = (policy: Policy): Layer.Layer<Gateway, never, Handlers | EventLog> =>
  Layer.effect(
    Gateway,
    Effect.gen(function*() {
      const handlers = yield* Handlers
      const log = yield* EventLog
      const traced = yield* TelemetryEnabled
      const backpressure = yield* ExportBackpressure
      return make({ policy, handlers, log, traced, backpressure })
    })
  )

/** Call a capability through the gateway in context. */
export const call = (cap: CapabilityName, args: ReadonlyArray<Value>, site?: CallSite): Effect.Effect<Value, CapabilityError, Gateway> =>
  Effect.flatMap(Gateway, (g) => g.call(cap, args, site))
