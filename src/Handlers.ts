/**
 * Capability handlers: what actually performs a capability once the gateway has let the call
 * through. One `Handlers` service maps each capability to its handler; layers choose the set:
 * `demo` (deterministic values), `make({...})` (a test supplies its own per capability), the live
 * layers (`src/live/`) and the replay layer (`src/Replay.ts`).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { CapabilityName } from "./Capability.js"
import { HandlerFailure } from "./Errors.js"
import type { Policy } from "./Policy.js"
import { AxFloat, display, Unit, type Value } from "./Value.js"
import { redactUrl } from "./live/Userinfo.js"

/** What a handler may see and do besides its arguments. */
export interface HandlerContext {
  readonly capability: CapabilityName
  readonly policy: Policy
  /** set an attribute on this call's `boruna.cap` span (no-op when telemetry is off) */
  readonly annotate: (key: string, value: string | number | boolean) => void
  /** add an event to this call's span, e.g. a redirect hop's allow/deny decision (no-op when off) */
  readonly event: (name: string, attributes?: Record<string, string | number | boolean>) => void
}

export type Handler = (args: ReadonlyArray<Value>, ctx: HandlerContext) => Effect.Effect<Value, HandlerFailure>

export interface HandlersService {
  /** the handler of `cap`; the same one every time for the life of the service (the gateway caches it) */
  readonly get: (cap: CapabilityName) => Handler | undefined
}

export class Handlers extends Context.Tag("boruna/Handlers")<Handlers, HandlersService>() {}

export const fromRecord = (handlers: Partial<Record<CapabilityName, Handler>>): HandlersService => {
  const m = new Map(Object.entries(handlers) as Array<[CapabilityName, Handler]>)
  return { get: (cap) => m.get(cap) }
}

/** Handlers a test supplies, one per capability; a capability without one fails the call. */
export const make = (handlers: Partial<Record<CapabilityName, Handler>>): Layer.Layer<Handlers> =>
  Layer.succeed(Handlers, fromRecord(handlers))

/** Override some capabilities of another handler set. */
export const override = (base: HandlersService, handlers: Partial<Record<CapabilityName, Handler>>): HandlersService => {
  const over = fromRecord(handlers)
  return { get: (cap) => over.get(cap) ?? base.get(cap) }
}

const arg = (args: ReadonlyArray<Value>, i: number): string => (args[i] === undefined ? "" : display(args[i]))

export const DEMO_TIME = 1_700_000_000
export const DEMO_RANDOM = 0.42

/**
 * Deterministic values, like the reference's mock handler: fixed time and random, a JSON string
 * echoing the URL for `net.fetch`, and so on. The same call always gives the same value.
 */
export const demoHandlers: Record<CapabilityName, Handler> = {
  "net.fetch": (args) => {
    // net.fetch(url) or net.fetch(method, url, body)
    const url = args.length >= 2 ? arg(args, 1) : arg(args, 0)
    // echoed as the log records the call: credentials in the URL are never recorded (live/Userinfo.ts)
    return Effect.succeed(`{"mock": true, "url": ${JSON.stringify(redactUrl(url))}}`)
  },
  "fs.read": (args) => Effect.succeed(`mock file content for ${arg(args, 0)}`),
  "fs.write": () => Effect.succeed(Unit),
  "db.query": () => Effect.succeed([]),
  "ui.render": () => Effect.succeed(Unit),
  "time.now": () => Effect.succeed(DEMO_TIME),
  "random": () => Effect.succeed(new AxFloat(DEMO_RANDOM)),
  "llm.call": (args) => Effect.succeed(`mock llm response to: ${arg(args, args.length - 1)}`),
  "actor.spawn": () => Effect.succeed(Unit),
  "actor.send": () => Effect.succeed(Unit),
  "step.input": () => Effect.succeed("")
}

export const demoService: HandlersService = fromRecord(demoHandlers)

/** The deterministic demo handler set. */
export const demo: Layer.Layer<Handlers> = Layer.succeed(Handlers, demoService)

/**
 * The demo handlers; `BORUNA_DEMO_LATENCY_MS=N` in `env` makes every demo call take N ms (a stand-in
 * for network latency in demos, and how the tests interrupt a run between calls).
 */
export const demoFromEnv = (env: Record<string, string | undefined>): Layer.Layer<Handlers> => {
  const latency = Number(env.BORUNA_DEMO_LATENCY_MS ?? "0")
  if (!(Number.isFinite(latency) && latency > 0)) return demo
  const slow: Partial<Record<CapabilityName, Handler>> = {}
  for (const [cap, h] of Object.entries(demoHandlers) as Array<[CapabilityName, Handler]>) {
    slow[cap] = (args, ctx) => Effect.delay(h(args, ctx), latency)
  }
  return make(slow)
}

export const missing = (cap: CapabilityName): Effect.Effect<never, HandlerFailure> =>
  Effect.fail(new HandlerFailure({ message: `no handler installed for ${cap}` }))
