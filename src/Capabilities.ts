/**
 * Capabilities as typed Effect services, for agent workflows written in TypeScript.
 *
 *   const program = Effect.gen(function*() {
 *     const page = yield* Net.fetch("https://example.com/")      // Effect.Tag accessors
 *     const summary = yield* Llm.call(`Summarise: ${page}`)
 *     yield* Fs.write("summary.txt", summary)
 *   })
 *   program.pipe(Effect.provide(Capabilities.demo(policy)))
 *
 * Each service is an `Effect.Tag` (a `Context.Tag` with static accessors). Every method goes through `Gateway.call`, so policy (`Denied`), budgets (`BudgetExceeded`), the
 * event log and the `boruna.cap` spans apply exactly as they do to an `.ax` program. Arguments are
 * converted to `Value`s in the shapes `.ax` programs use (docs/language.md, "Capability calls"), and
 * results back to plain TypeScript values; a handler returning the wrong shape fails the call with
 * `RuntimeError`.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { CapabilityName } from "./Capability.js"
import { type CapabilityError, RuntimeError } from "./Errors.js"
import * as EventLog from "./EventLog.js"
import * as Gateway from "./Gateway.js"
import * as Handlers from "./Handlers.js"
import type { Policy } from "./Policy.js"
import { AxFloat, display, MapV, typeName, type Value } from "./Value.js"

type Io<A> = Effect.Effect<A, CapabilityError>

// ---------------------------------------------------------------------------------------------
// the services

/** `net.fetch`: HTTP. */
export class Net extends Effect.Tag("boruna/capabilities/Net")<Net, {
  /** GET `url`; the response body */
  readonly fetch: (url: string) => Io<string>
  /** `method` `url` with `body`; the response body */
  readonly request: (method: string, url: string, body?: string) => Io<string>
}>() {}

/** `fs.read` / `fs.write`: files. */
export class Fs extends Effect.Tag("boruna/capabilities/Fs")<Fs, {
  readonly read: (path: string) => Io<string>
  readonly write: (path: string, data: string) => Io<void>
}>() {}

/** A row of `db.query`: column name → value as text. */
export type Row = Readonly<Record<string, string>>

/** `db.query`: SQL. */
export class Db extends Effect.Tag("boruna/capabilities/Db")<Db, {
  readonly query: (sql: string, params?: ReadonlyArray<string>) => Io<ReadonlyArray<Row>>
}>() {}

/** `llm.call`: a language model. */
export class Llm extends Effect.Tag("boruna/capabilities/Llm")<Llm, {
  /** the completion of `prompt`, by `model` when given (else the policy's / handler's default) */
  readonly call: (prompt: string, model?: string) => Io<string>
}>() {}

/** `time.now`: the clock. */
export class Clock extends Effect.Tag("boruna/capabilities/Clock")<Clock, {
  /** Unix time in seconds */
  readonly now: Io<number>
}>() {}

/** `random`: randomness. */
export class Random extends Effect.Tag("boruna/capabilities/Random")<Random, {
  /** a float in [0, 1) */
  readonly next: Io<number>
}>() {}

/** `ui.render`: send a UI tree to the host. */
export class Ui extends Effect.Tag("boruna/capabilities/Ui")<Ui, {
  readonly render: (tree: Value) => Io<void>
}>() {}

/** `step.input`: a workflow step's resolved inputs. */
export class StepInput extends Effect.Tag("boruna/capabilities/StepInput")<StepInput, {
  readonly get: (name: string) => Io<string>
}>() {}

/** Every capability service. */
export type Capabilities = Net | Fs | Db | Llm | Clock | Random | Ui | StepInput

// ---------------------------------------------------------------------------------------------
// Value → TypeScript

const wrongShape = (cap: CapabilityName, expected: string, v: Value): RuntimeError =>
  new RuntimeError({ capability: cap, reason: `returned ${typeName(v)}, expected ${expected}` })

const asString = (cap: CapabilityName) => (v: Value): Io<string> =>
  typeof v === "string" ? Effect.succeed(v) : Effect.fail(wrongShape(cap, "String", v))

const asNumber = (cap: CapabilityName, expected: string) => (v: Value): Io<number> => {
  if (typeof v === "number") return Effect.succeed(v)
  if (typeof v === "bigint") return Effect.succeed(Number(v))
  if (v instanceof AxFloat) return Effect.succeed(v.value)
  return Effect.fail(wrongShape(cap, expected, v))
}

const asVoid = (_: Value): Io<void> => Effect.void

/** `List<Map<String, _>>` → rows; a non-String cell is given in its `.ax` literal form. */
const asRows = (v: Value): Io<ReadonlyArray<Row>> => {
  if (!Array.isArray(v)) return Effect.fail(wrongShape("db.query", "List<Map<String, String>>", v))
  const rows: Array<Row> = []
  for (const r of v as ReadonlyArray<Value>) {
    if (!(r instanceof MapV)) return Effect.fail(wrongShape("db.query", "List<Map<String, String>> (a row)", r))
    const row: Record<string, string> = {}
    for (const k of r.keys()) row[String(k)] = display(r.get(k)!)
    rows.push(row)
  }
  return Effect.succeed(rows)
}

// ---------------------------------------------------------------------------------------------
// the layer

/** Build every capability service over one gateway. */
export const make = (gateway: Gateway.GatewayService): Context.Context<Capabilities> => {
  const call = <A>(cap: CapabilityName, args: ReadonlyArray<Value>, decode: (v: Value) => Io<A>): Io<A> =>
    Effect.flatMap(gateway.call(cap, args), decode)
  return Context.empty().pipe(
    Context.add(Net, {
      fetch: (url) => call("net.fetch", [url], asString("net.fetch")),
      request: (method, url, body) => call("net.fetch", [method, url, body ?? ""], asString("net.fetch"))
    }),
    Context.add(Fs, {
      read: (path) => call("fs.read", [path], asString("fs.read")),
      write: (path, data) => call("fs.write", [path, data], asVoid)
    }),
    Context.add(Db, {
      query: (sql, params = []) => call("db.query", [sql, [...params]], asRows)
    }),
    Context.add(Llm, {
      call: (prompt, model) => call("llm.call", model === undefined ? [prompt] : [model, prompt], asString("llm.call"))
    }),
    Context.add(Clock, { now: call("time.now", [], asNumber("time.now", "Int")) }),
    Context.add(Random, { next: call("random", [], asNumber("random", "Float")) }),
    Context.add(Ui, { render: (tree) => call("ui.render", [tree], asVoid) }),
    Context.add(StepInput, { get: (name) => call("step.input", [name], asString("step.input")) })
  )
}

/** Every capability service, over the `Gateway` in context. */
export const layer: Layer.Layer<Capabilities, never, Gateway.Gateway> = Layer.effectContext(Effect.map(Gateway.Gateway, make))

/**
 * A whole runtime for a TypeScript program under `policy`: the capability services, the gateway,
 * the given handlers and an in-memory event log (`EventLog` is exposed to read the calls back).
 * Telemetry is whatever telemetry layer is provided *to* it, e.g.
 * `Capabilities.runtime(policy, handlers).pipe(Layer.provideMerge(Telemetry.memory))`; without one,
 * no span work is done.
 */
export const runtime = (
  policy: Policy,
  handlers: Layer.Layer<Handlers.Handlers>
): Layer.Layer<Capabilities | Gateway.Gateway | EventLog.EventLog> =>
  layer.pipe(Layer.provideMerge(Gateway.layer(policy)), Layer.provideMerge(Layer.merge(handlers, EventLog.memory)))

/** `runtime` with the deterministic demo handlers (fixed clock and random, echoing fetch, …). */
export const demo = (policy: Policy): Layer.Layer<Capabilities | Gateway.Gateway | EventLog.EventLog> =>
  runtime(policy, Handlers.demo)
