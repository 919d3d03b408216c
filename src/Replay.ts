/**
 * Replay: re-run a program against a recorded event log, with no live effect possible.
 *
 * `layer(log)` is a `Handlers` implementation that answers *every* capability from the log: each
 * incoming call is checked against the next recorded `CapCall` (capability and arguments, compared
 * by their exact JSON form); when it matches, the recorded `CapResult` is returned or the recorded
 * `CapError` raised again (same kind, same message). When it does not match — or the program makes
 * more calls than the log holds — that is a divergence: the call fails, and so does every later one,
 * and the session keeps the first divergence (event index, expected and actual call, source
 * location). No handler of any other set is ever consulted, so nothing reaches the network, the
 * disk, a model or the clock.
 *
 * Budgets are charged once. The replay runs under the recorded run's own policy (the log carries
 * it): the gateway enforces it exactly as it did live — the same calls are denied and the same
 * budgets run out at the same call, because they depend only on the sequence of calls — and the
 * replay handler itself charges nothing. (Allow-all would not do: a call the live run was refused
 * never reached the log, so under allow-all it would reach the replay handler and diverge.)
 *
 * After the run, `verdict(replayed)` compares the replay's own event log with the recorded one
 * position by position (the call site is reported, not compared): `Identical` with the event count,
 * or the first divergence.
 *
 * Drift: the log names the program hash, the policy hash and the capability-set hash it was
 * recorded under; `drift(header, current)` lists which of them differ, for a caller to report
 * before the replay starts.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Capabilities from "./Capabilities.js"
import { type CapabilityName, capabilitySetHash, isCapabilityName } from "./Capability.js"
import { HandlerFailure } from "./Errors.js"
import type { CallSite, Event } from "./Event.js"
import { EventLog, type EventLogService, memory as memoryLog } from "./EventLog.js"
import { eventToJson, type LogHeader, type RecordedLog } from "./EventLogFile.js"
import * as Gateway from "./Gateway.js"
import { type Handler, Handlers, type HandlersService } from "./Handlers.js"
import { type Policy, policyHash } from "./Policy.js"
import { show, type Value } from "./Value.js"
import { canonicalJson, toJson } from "./ValueJson.js"
import { recordedNetArgs } from "./live/Userinfo.js"

type CapCall = Extract<Event, { type: "CapCall" }>
type CapRefused = Extract<Event, { type: "CapRefused" }>
type Outcome = Extract<Event, { type: "CapResult" | "CapError" }>

/** What replay reads: a log file read back, or the events of an in-memory run. */
export type ReplaySource = RecordedLog | ReadonlyArray<Event>

const eventsOf = (source: ReplaySource): ReadonlyArray<Event> => ("header" in source ? source.events : source as ReadonlyArray<Event>)

// ---------------------------------------------------------------------------------------------
// divergence

export interface Divergence {
  /** index (0-based) of the first event that differs, in the recorded log */
  readonly index: number
  /**
   * `call`: a capability call differs from the recorded one; `extra-call`: the program called a
   * capability after the log's last recorded call; `incomplete`: the log stops inside this call
   * (no recorded result); `event`: another event differs (UI, actors, results); `missing`: the
   * program finished with recorded events left over; `extra`: the replay has more events;
   * `refused`: the replay's policy refused a call the recorded run made (`actual` is the
   * `CapRefused`); `allowed`: the recorded run was refused a call that the replay's policy lets through.
   */
  readonly kind: "call" | "extra-call" | "incomplete" | "event" | "missing" | "extra" | "refused" | "allowed"
  readonly expected: Event | undefined
  readonly actual: Event | undefined
}

export type Verdict =
  | { readonly _tag: "Identical"; readonly events: number }
  | { readonly _tag: "Diverged"; readonly divergence: Divergence }

const MAX_SHOWN = 400

const clip = (s: string): string => (s.length <= MAX_SHOWN ? s : `${s.slice(0, MAX_SHOWN)}… (${s.length - MAX_SHOWN} more characters)`)

export const formatSite = (s: CallSite): string => `${s.file}:${s.line}:${s.col}${s.fn === undefined ? "" : ` in ${s.fn}`}`

const showCall = (cap: string, args: ReadonlyArray<Value>): string => `${cap}(${args.map(show).join(", ")})`

/** One event in a short readable form (calls as `cap(args…)`, others as their log JSON). */
export const showEvent = (e: Event): string => {
  switch (e.type) {
    case "CapCall":
      return clip(showCall(e.capability, e.args))
    case "CapResult":
      return clip(`${e.capability} → ${show(e.result)}`)
    case "CapError":
      return clip(`${e.capability} → error[${e.kind}] ${e.message}`)
    case "CapRefused":
      return clip(`${showCall(e.capability, e.args)} refused: error[${e.kind}]: ${e.message}`)
    default:
      return clip(JSON.stringify(eventToJson(e)))
  }
}

const firstDifference = (a: string, b: string): number => {
  let i = 0
  while (i < a.length && i < b.length && a[i] === b[i]) i++
  return i
}

/** The divergence as lines for a terminal: headline, expected, actual, and where. */
export const formatDivergence = (d: Divergence): ReadonlyArray<string> => {
  const actualSite = d.actual?.type === "CapCall" || d.actual?.type === "CapRefused" ? d.actual.site : undefined
  const recordedSite = d.expected?.type === "CapCall" || d.expected?.type === "CapRefused" ? d.expected.site : undefined
  const where = (): ReadonlyArray<string> => [
    ...(actualSite !== undefined ? [`  at ${formatSite(actualSite)}`] : []),
    ...(recordedSite !== undefined ? [`  recorded at ${formatSite(recordedSite)}`] : [])
  ]
  if (d.kind === "incomplete") {
    // the same call on both sides: say where the log ends, nothing more
    const c = d.expected ?? d.actual
    return [
      `replay: diverged at event #${d.index}: the log ends inside this call (the recorded run stopped before its result)`,
      ...(c === undefined ? [] : [`  call: ${showEvent(c)}`]),
      ...where()
    ]
  }
  if (d.kind === "refused" && d.actual?.type === "CapRefused") {
    return [
      `replay: refused at event #${d.index}: this replay's policy refused a call the recorded run made`,
      `  recorded: ${d.expected === undefined ? "(nothing)" : showEvent(d.expected)}`,
      `  refused:  error[${d.actual.kind}]: ${d.actual.message}`,
      ...where()
    ]
  }
  if (d.kind === "allowed" && d.expected?.type === "CapRefused") {
    return [
      `replay: diverged at event #${d.index}: the recorded run was refused this call, but this replay's policy lets it through`,
      `  recorded: error[${d.expected.kind}]: ${d.expected.message}`,
      `  actual:   ${d.actual === undefined ? "(nothing)" : showEvent(d.actual)}`,
      ...where()
    ]
  }
  const head = {
    call: "the program's capability call differs from the recorded one",
    "extra-call": "the program made a capability call the log does not record",
    incomplete: "the log ends inside this call (the recorded run stopped before its result)",
    event: "the event differs from the recorded one",
    missing: "the program finished but the log records more events",
    extra: "the replay produced an event the log does not record",
    refused: "this replay's policy refused a call the recorded run made",
    allowed: "the recorded run was refused this call, but this replay's policy lets it through"
  }[d.kind]
  const lines = [`replay: diverged at event #${d.index}: ${head}`]
  const exp = d.expected === undefined ? "(nothing)" : showEvent(d.expected)
  const act = d.actual === undefined ? "(nothing)" : showEvent(d.actual)
  lines.push(`  expected: ${exp}`)
  lines.push(`  actual:   ${act}`)
  if (d.expected !== undefined && d.actual !== undefined && exp !== act && exp.length + act.length > 160) {
    lines.push(`  (they first differ at character ${firstDifference(exp, act) + 1})`)
  }
  return [...lines, ...where()]
}

// ---------------------------------------------------------------------------------------------
// the session

export interface ReplaySessionService {
  /** the first divergence met by a capability call so far */
  readonly divergence: () => Divergence | undefined
  /** recorded calls answered so far */
  readonly consumed: () => number
  /** recorded calls in the log */
  readonly calls: () => number
  /** the verdict, comparing the replay's own events with the recorded ones */
  readonly verdict: (replayed: ReadonlyArray<Event>) => Verdict
}

export class ReplaySession extends Context.Tag("boruna/ReplaySession")<ReplaySession, ReplaySessionService>() {}

export interface ReplayInstance {
  readonly handlers: HandlersService
  readonly session: ReplaySessionService
}

/** Comparison key of an event: its exact JSON, without the call site (which is reported only). */
const eventKey = (e: Event): string =>
  canonicalJson(eventToJson(
    e.type === "CapCall"
      ? { type: "CapCall", capability: e.capability, args: e.args }
      : e.type === "CapRefused"
      ? { type: "CapRefused", capability: e.capability, args: e.args, kind: e.kind, message: e.message }
      : e
  ))

const argsKey = (args: ReadonlyArray<Value>): string => canonicalJson(args.map(toJson))

/** The reason a recorded `CapError` was raised with, so the gateway rebuilds the same message. */
const recordedFailure = (e: Extract<Event, { type: "CapError" }>): HandlerFailure => {
  const runtimePrefix = `${e.capability} failed: `
  const deniedPrefix = `capability denied: ${e.capability}: `
  if (e.kind === "denied") {
    return new HandlerFailure({ message: e.message.startsWith(deniedPrefix) ? e.message.slice(deniedPrefix.length) : e.message, denied: true })
  }
  return new HandlerFailure({ message: e.message.startsWith(runtimePrefix) ? e.message.slice(runtimePrefix.length) : e.message })
}

/**
 * Replay handlers and their session over `source`. When `log` (the replay run's own event log) is
 * given, a divergence names the source location of the offending call: the gateway appends the
 * call's `CapCall` (with its site) just before it invokes the handler.
 */
export const make = (source: ReplaySource, options: { readonly log?: EventLogService } = {}): ReplayInstance => {
  const recorded = eventsOf(source)
  // pair each recorded call with its outcome: the next unclaimed result or error of that capability
  const calls: Array<{ readonly index: number; readonly call: CapCall | CapRefused; outcome: Outcome | undefined }> = []
  const open = new Map<string, Array<(typeof calls)[number]>>()
  recorded.forEach((e, index) => {
    if (e.type === "CapRefused") {
      calls.push({ index, call: e, outcome: undefined })
    } else if (e.type === "CapCall") {
      const c = { index, call: e, outcome: undefined }
      calls.push(c)
      const q = open.get(e.capability) ?? []
      q.push(c)
      open.set(e.capability, q)
    } else if (e.type === "CapResult" || e.type === "CapError") {
      const c = open.get(e.capability)?.shift()
      if (c !== undefined) c.outcome = e
    }
  })

  let cursor = 0
  let divergence: Divergence | undefined

  const diverge = (d: Divergence): Effect.Effect<never, HandlerFailure> => {
    divergence ??= d
    const what = d.kind === "extra-call"
      ? "the log records no further call"
      : d.kind === "incomplete"
      ? "the log ends inside this call"
      : d.kind === "allowed"
      ? "the recorded run was refused this call"
      : `the log records ${showEvent(d.expected!)} here`
    return Effect.fail(new HandlerFailure({ message: `replay diverged at event #${d.index}: ${what}` }))
  }
  const refuse = (): Effect.Effect<never, HandlerFailure> =>
    Effect.fail(new HandlerFailure({ message: `replay already diverged at event #${divergence!.index}; no further call is answered` }))

  const currentCall = (cap: CapabilityName, args: ReadonlyArray<Value>): CapCall => {
    const evs = options.log?.events()
    const last = evs === undefined ? undefined : evs[evs.length - 1]
    if (last !== undefined && last.type === "CapCall" && last.capability === cap && last.args === args) return last
    return { type: "CapCall", capability: cap, args }
  }

  const answer = (cap: CapabilityName, called: ReadonlyArray<Value>): Effect.Effect<Value, HandlerFailure> => {
    if (divergence !== undefined) return refuse()
    // the log holds a net.fetch URL with its userinfo redacted (Gateway): compare in that form
    const args = cap === "net.fetch" ? recordedNetArgs(called) : called
    const actual = currentCall(cap, args)
    let next = calls[cursor]
    // a recorded refusal: the replay's gateway refuses it too under the recorded policy (and never
    // asks the handler), so a refusal still ahead of the cursor that is not this call was refused
    // here as well; this call reaching the handler means the replay's policy let it through
    while (next !== undefined && next.call.type === "CapRefused") {
      if (next.call.capability === cap && argsKey(next.call.args) === argsKey(args)) {
        return diverge({ index: next.index, kind: "allowed", expected: next.call, actual })
      }
      next = calls[++cursor]
    }
    if (next === undefined) {
      return diverge({ index: recorded.length, kind: "extra-call", expected: undefined, actual })
    }
    if (next.call.capability !== cap || argsKey(next.call.args) !== argsKey(args)) {
      return diverge({ index: next.index, kind: "call", expected: next.call, actual })
    }
    if (next.outcome === undefined) {
      return diverge({ index: next.index, kind: "incomplete", expected: next.call, actual })
    }
    cursor++
    const o = next.outcome
    return o.type === "CapResult" ? Effect.succeed(o.result) : Effect.fail(recordedFailure(o))
  }

  // one handler per capability; the cursor moves when the gateway invokes it (right after it has
  // logged the call), so answers follow the order of the calls in the log
  const cache = new Map<CapabilityName, Handler>()
  const handlers: HandlersService = {
    get: (cap) => {
      if (!isCapabilityName(cap)) return undefined
      let h = cache.get(cap)
      if (h === undefined) {
        h = (args) => answer(cap, args)
        cache.set(cap, h)
      }
      return h
    }
  }

  const verdict = (replayed: ReadonlyArray<Event>): Verdict => {
    let first: Divergence | undefined
    const n = Math.max(recorded.length, replayed.length)
    for (let i = 0; i < n; i++) {
      const exp = recorded[i]
      const act = replayed[i]
      if (exp === undefined) {
        first = { index: i, kind: act.type === "CapCall" ? "extra-call" : "extra", expected: undefined, actual: act }
        break
      }
      if (act === undefined) {
        first = { index: i, kind: "missing", expected: exp, actual: undefined }
        break
      }
      if (eventKey(exp) !== eventKey(act)) {
        const kind = exp.type === "CapCall" && act.type === "CapCall"
          ? "call"
          : exp.type === "CapCall" && act.type === "CapRefused"
          ? "refused"
          : exp.type === "CapRefused" && act.type === "CapCall"
          ? "allowed"
          : "event"
        first = { index: i, kind, expected: exp, actual: act }
        break
      }
    }
    // a divergence met by a call is richer (it has the call's site); take it when it is not later
    if (divergence !== undefined && (first === undefined || divergence.index <= first.index)) {
      return { _tag: "Diverged", divergence }
    }
    return first === undefined ? { _tag: "Identical", events: recorded.length } : { _tag: "Diverged", divergence: first }
  }

  return {
    handlers,
    session: { divergence: () => divergence, consumed: () => cursor, calls: () => calls.length, verdict }
  }
}

/**
 * Replay `Handlers` (plus the `ReplaySession` to ask for the verdict). When an `EventLog` is in
 * context as the layer is built (as in `runtime`), divergences name the call's source location.
 */
export const layer = (source: ReplaySource): Layer.Layer<Handlers | ReplaySession> =>
  Layer.effectContext(
    Effect.map(Effect.serviceOption(EventLog), (log) => {
      const r = make(source, Option.isSome(log) ? { log: log.value } : {})
      return Context.make(Handlers, r.handlers).pipe(Context.add(ReplaySession, r.session))
    })
  )

/** The policy a replay of `source` runs under: the given one, else the recorded one. */
const policyFor = (source: ReplaySource, policy: Policy | undefined): Policy => {
  if (policy !== undefined) return policy
  if ("header" in source) return source.header.policy
  throw new Error("Replay.runtime: a replay of bare events needs the recorded run's policy")
}

/**
 * A whole replay runtime: the gateway under the recorded policy (or `options.policy`), the replay
 * handlers, a fresh in-memory `EventLog` for the replay's own events, and the `ReplaySession`.
 */
export const runtime = (
  source: ReplaySource,
  options: { readonly policy?: Policy } = {}
): Layer.Layer<Gateway.Gateway | Handlers | EventLog | ReplaySession> =>
  Gateway.layer(policyFor(source, options.policy)).pipe(
    Layer.provideMerge(layer(source)),
    Layer.provideMerge(memoryLog)
  )

/** `runtime` with the typed capability services on top, for TypeScript workflows. */
export const capabilities = (
  source: ReplaySource,
  options: { readonly policy?: Policy } = {}
): Layer.Layer<Capabilities.Capabilities | Gateway.Gateway | Handlers | EventLog | ReplaySession> =>
  Capabilities.layer.pipe(Layer.provideMerge(runtime(source, options)))

/** The verdict of the replay run so far (its `EventLog` against the recorded one). */
export const verdict: Effect.Effect<Verdict, never, ReplaySession | EventLog> = Effect.gen(function*() {
  const session = yield* ReplaySession
  const log = yield* EventLog
  return session.verdict(log.events())
})

/** `replay: identical (N events)` or the divergence lines. */
export const formatVerdict = (v: Verdict): ReadonlyArray<string> =>
  v._tag === "Identical" ? [`replay: identical (${v.events} event${v.events === 1 ? "" : "s"})`] : formatDivergence(v.divergence)

// ---------------------------------------------------------------------------------------------
// drift

export interface Drift {
  readonly what: "program" | "policy" | "capability_set"
  readonly recorded: string
  readonly current: string
}

/**
 * What differs between the recorded run and this replay: the program (when `programHash` is
 * given), the policy (when `policy` is given) and this build's capability set.
 */
export const drift = (
  header: LogHeader,
  current: { readonly programHash?: string; readonly policy?: Policy }
): ReadonlyArray<Drift> => {
  const out: Array<Drift> = []
  if (current.programHash !== undefined && current.programHash !== header.program_hash) {
    out.push({ what: "program", recorded: header.program_hash, current: current.programHash })
  }
  if (current.policy !== undefined) {
    const h = policyHash(current.policy)
    if (h !== header.policy_hash) out.push({ what: "policy", recorded: header.policy_hash, current: h })
  }
  const caps = capabilitySetHash()
  if (caps !== header.capability_set_hash) out.push({ what: "capability_set", recorded: header.capability_set_hash, current: caps })
  return out
}

export const formatDrift = (d: Drift): string => {
  const what = { program: "the program", policy: "the policy", capability_set: "the capability set" }[d.what]
  return `replay: drift: ${what} differs from the recorded run (recorded ${d.recorded}, now ${d.current})`
}
