/**
 * Shared helpers of the live-capability tests: the gateway over `Live.layer` with the in-memory span
 * recorder and event log; `server` (test/support/LoopbackServer.ts) for loopback HTTP servers.
 */
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as EventLog from "../../src/EventLog.js"
import * as Gateway from "../../src/Gateway.js"
import * as Live from "../../src/Live.js"
import type { Policy } from "../../src/Policy.js"
import * as Telemetry from "../../src/Telemetry.js"

/** Gateway under `policy` over the live handlers, with the event log and span recorder exposed. */
export const setup = (policy: Policy, options: Live.LiveOptions = {}) =>
  Gateway.layer(policy).pipe(
    Layer.provideMerge(Layer.mergeAll(Live.layer(policy, options), EventLog.memory, Telemetry.memory))
  )

export const capSpans = Effect.map(Telemetry.SpanRecorder, (r) => r.spans().filter((s) => s.name === "boruna.cap"))

/** The same, with the live layer's configuration (OPENAI_* variables) read from `env` instead of the process. */
export const setupWithEnv = (policy: Policy, env: Record<string, string>, options: Live.LiveOptions = {}) =>
  Gateway.layer(policy).pipe(
    Layer.provideMerge(Layer.mergeAll(
      Live.layer(policy, options).pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))),
      EventLog.memory,
      Telemetry.memory
    ))
  )

/** Every span the recorder holds (a live handler must not add spans of its own). */
export const allSpans = Effect.map(Telemetry.SpanRecorder, (r) => r.spans())

export const events = Effect.map(EventLog.EventLog, (l) => l.events())

export { server, type TestServer } from "../support/LoopbackServer.js"

/** JSON text of anything a test recorded (spans hold bigint times). */
export const dump = (x: unknown): string => JSON.stringify(x, (_k, v) => (typeof v === "bigint" ? v.toString() : v))
