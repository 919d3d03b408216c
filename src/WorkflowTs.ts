/**
 * Workflows written in TypeScript: steps are Effects over the capability services (`Net.fetch`,
 * `Llm.call`, …), run on the same durable engine as `workflow.json` workflows, with the same
 * policy, budgets, approvals, records and spans (docs/workflows.md, "TypeScript workflows").
 *
 *   const wf = WorkflowTs.make({
 *     name: "digest", version: "1",
 *     steps: {
 *       fetch: WorkflowTs.step({ capabilities: ["net.fetch"], run: () => Net.fetch("https://example.com/") }),
 *       review: WorkflowTs.gate({ required_role: "editor", depends_on: ["fetch"] }),
 *       summary: WorkflowTs.step({
 *         depends_on: ["review"], inputs: { page: WorkflowTs.input("fetch", Schema.String) },
 *         run: ({ page }) => Llm.call(`Summarise: ${page}`)
 *       }),
 *       publish: WorkflowTs.ax("steps/publish.ax", { depends_on: ["summary"], inputs: { summary: "summary.result" } })
 *     }
 *   })
 *   WorkflowTs.run(wf, { policy, dir: import.meta.dirname })
 *
 * Every capability call inside a TypeScript step is an engine Activity, as in an `.ax` step.
 *
 * **Determinism rule.** After a crash or a pause a step runs again from its start, and each
 * capability call it already made returns its journaled result. So the code between capability
 * calls must not depend on time, randomness or I/O except through capabilities (`Clock.now`,
 * `Random.next`, `Net.fetch`, …): the step must make the same calls with the same arguments
 * again, or the run fails closed with `replay_diverged`.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as WorkflowEngine from "@effect/workflow/WorkflowEngine"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { resolve } from "node:path"
import * as Capabilities from "./Capabilities.js"
import type { CapabilityError } from "./Errors.js"
import * as Gateway from "./Gateway.js"
import type { Policy } from "./Policy.js"
import { AxFloat, isList, listItems, MapV, mkMap, None, type Value } from "./Value.js"
import { type WorkflowDef, WorkflowSchema } from "./WorkflowFile.js"
import * as Runner from "./WorkflowRunner.js"

/** An upstream step's output, decoded with `schema` (the step reads it as a typed value). */
export interface InputRef<A> {
  readonly step: string
  readonly schema: Schema.Schema<A, any>
}

export const input = <A>(step: string, schema: Schema.Schema<A, any>): InputRef<A> => ({ step, schema })

type Inputs<I extends Record<string, InputRef<any>>> = { readonly [K in keyof I]: I[K] extends InputRef<infer A> ? A : never }

interface Common {
  readonly depends_on?: ReadonlyArray<string>
  readonly capabilities?: ReadonlyArray<string>
  readonly timeout_ms?: number
  readonly retry?: { readonly max_attempts?: number; readonly retry_on?: ReadonlyArray<string>; readonly backoff_ms?: number }
  readonly budget?: { readonly max_calls?: number; readonly max_tokens?: number }
  readonly description?: string
}

/** What a TypeScript step may return: plain data, stored as a boruna Value. */
export type Output = string | number | boolean | null | ReadonlyArray<Output> | { readonly [k: string]: Output }

export interface TsStep extends Common {
  readonly _kind: "ts"
  readonly inputs: Record<string, InputRef<any>>
  readonly run: (inputs: any, ctx: Runner.TsStepContext) => Effect.Effect<Output, CapabilityError, Capabilities.Capabilities>
}
export interface AxStep extends Common {
  readonly _kind: "ax"
  readonly source: string
  readonly inputs?: Readonly<Record<string, string>>
}
export interface GateStep {
  readonly _kind: "gate"
  readonly required_role: string
  readonly depends_on?: ReadonlyArray<string>
}
export interface TriggerStep {
  readonly _kind: "trigger"
  readonly description?: string
  readonly depends_on?: ReadonlyArray<string>
}
export type AnyStep = TsStep | AxStep | GateStep | TriggerStep

/** A TypeScript step: `run` receives its declared inputs, decoded. Its dependencies include the steps it reads. */
export const step = <const I extends Record<string, InputRef<any>> = {}>(o: Common & {
  readonly inputs?: I
  readonly run: (inputs: Inputs<I>, ctx: Runner.TsStepContext) => Effect.Effect<Output, CapabilityError, Capabilities.Capabilities>
}): TsStep => ({ ...o, _kind: "ts", inputs: o.inputs ?? {}, run: o.run as TsStep["run"] })

/** An `.ax` step (`source` relative to the `dir` given to `run`); `inputs` as in workflow.json. */
export const ax = (source: string, o: Common & { readonly inputs?: Readonly<Record<string, string>> } = {}): AxStep => ({ ...o, _kind: "ax", source })

export const gate = (o: { readonly required_role: string; readonly depends_on?: ReadonlyArray<string> }): GateStep => ({ ...o, _kind: "gate" })

export const trigger = (o: { readonly description?: string; readonly depends_on?: ReadonlyArray<string> } = {}): TriggerStep => ({ ...o, _kind: "trigger" })

export interface TsWorkflow {
  readonly definition: WorkflowDef
  readonly bodies: ReadonlyMap<string, Runner.TsStepBody>
}

/** Plain data → Value: strings, integers (Int), other numbers (Float), booleans, arrays (List), objects (Map), null (None). */
export const toValue = (o: Output): Value => {
  if (o === null) return None
  if (typeof o === "string" || typeof o === "boolean") return o
  if (typeof o === "number") return Number.isSafeInteger(o) ? o : new AxFloat(o)
  if (Array.isArray(o)) return o.map(toValue)
  return mkMap(Object.keys(o).sort().map((k) => [k, toValue((o as Record<string, Output>)[k])] as const))
}

/** Value → plain data (the inverse of `toValue` where it has one). */
export const fromValue = (v: Value): unknown => {
  if (typeof v === "string" || typeof v === "boolean" || typeof v === "number") return v
  if (typeof v === "bigint") return v
  if (isList(v)) return listItems(v).map(fromValue)
  if (v instanceof AxFloat) return v.value
  if (v instanceof MapV) return Object.fromEntries(v.keys().map((k) => [String(k), fromValue(v.get(k)!)]))
  const o = v as { readonly _tag?: string; readonly value?: Value; readonly fields?: ReadonlyMap<string, Value> }
  if (o._tag === "None" || o._tag === "Unit") return null
  if (o._tag === "Some" || o._tag === "Ok") return fromValue(o.value!)
  return String(o._tag ?? v)
}

/** Assemble a workflow from its steps. */
export const make = (o: { readonly name: string; readonly version: string; readonly description?: string; readonly steps: Readonly<Record<string, AnyStep>> }): TsWorkflow => {
  const steps: Record<string, unknown> = {}
  const bodies = new Map<string, Runner.TsStepBody>()
  for (const [id, s] of Object.entries(o.steps)) {
    if (s._kind === "gate") steps[id] = { kind: "approval_gate", required_role: s.required_role, depends_on: s.depends_on ?? [] }
    else if (s._kind === "trigger") steps[id] = { kind: "external_trigger", description: s.description ?? "", depends_on: s.depends_on ?? [] }
    else {
      const refs = s._kind === "ts" ? Object.fromEntries(Object.entries(s.inputs).map(([k, r]) => [k, `${r.step}.result`])) : (s.inputs ?? {})
      const upstream = Object.values(refs).map((r) => r.slice(0, r.indexOf(".")))
      steps[id] = {
        kind: "source",
        source: s._kind === "ts" ? `ts:${id}` : s.source,
        description: s.description ?? "",
        capabilities: s.capabilities ?? [],
        inputs: refs,
        depends_on: [...new Set([...(s.depends_on ?? []), ...upstream])],
        timeout_ms: s.timeout_ms ?? null,
        retry: { max_attempts: s.retry?.max_attempts ?? 1, retry_on: s.retry?.retry_on ?? [], ...(s.retry?.backoff_ms === undefined ? {} : { backoff_ms: s.retry.backoff_ms }) },
        budget: { max_calls: s.budget?.max_calls ?? null, max_tokens: s.budget?.max_tokens ?? null }
      }
      if (s._kind === "ts") {
        const decoders = Object.entries(s.inputs).map(([k, r]) => [k, Schema.decodeUnknown(r.schema)] as const)
        bodies.set(`${o.name}/${id}`, (ctx) =>
          Effect.gen(function*() {
            const decoded: Record<string, unknown> = {}
            for (const [k, decode] of decoders) {
              const v = ctx.inputs.get(k)
              decoded[k] = yield* Effect.mapError(decode(v === undefined ? undefined : fromValue(v)), (e) =>
                new Runner.StepFailure({ kind: "invalid_input", message: `step '${id}': input '${k}': ${e.message}` }))
            }
            const gw = yield* Gateway.Gateway
            const out = yield* Effect.provide(s.run(decoded, ctx), Capabilities.make(gw))
            return toValue(out)
          }))
      }
    }
  }
  const definition = Schema.decodeUnknownSync(WorkflowSchema)({ schema_version: 1, name: o.name, version: o.version, description: o.description ?? "", steps, edges: [] })
  return { definition, bodies }
}

/** A runner environment with the workflow's TypeScript step bodies registered (for any `WorkflowRunner` API). */
export const env = (wf: TsWorkflow, base: Runner.RunnerEnvService = Runner.makeEnv()): Runner.RunnerEnvService => {
  for (const [k, b] of wf.bodies) base.tsSteps.set(k, b)
  return base
}

/** `WorkflowRunner.layer` for this workflow: the engine, the store, and its TypeScript steps registered. */
export const layer = <E>(
  wf: TsWorkflow,
  engine: Layer.Layer<WorkflowEngine.WorkflowEngine | SqlClient.SqlClient, E>,
  base?: Runner.RunnerEnvService
) => Runner.layer(engine, env(wf, base))

/** Start a run of a TypeScript workflow on the engine in context; `dir` is where its `.ax` steps live. */
export const start = (wf: TsWorkflow, o: {
  readonly policy: Policy
  readonly dir?: string
  readonly inputs?: Readonly<Record<string, string>>
  readonly live?: boolean
  readonly concurrency?: number
}): Effect.Effect<Runner.RunResult, Runner.WorkflowError, Runner.Services> =>
  Effect.flatMap(Runner.RunnerEnv, (e) => {
    env(wf, e)
    return Runner.startWorkflow({ ...o, workflow: wf.definition, path: resolve(o.dir ?? ".") })
  })

/** Run a TypeScript workflow on `<dataDir>/engine.db` (default the usual data dir) until it completes or pauses. */
export const run = (wf: TsWorkflow, o: Parameters<typeof start>[1] & { readonly dataDir?: string }): Effect.Effect<Runner.RunResult, Runner.WorkflowError | import("./WorkflowEngine.js").EngineError | import("./WorkflowStore.js").StoreError> =>
  Effect.flatMap(Effect.promise(() => import("./WorkflowEngine.js")), (E) =>
    start(wf, o).pipe(Effect.scoped, Effect.provide(layer(wf, E.sqliteEngine(E.dataDirOf(o.dataDir))))))

/**
 * Continue a run of this workflow on `<dataDir>/engine.db` until it completes or pauses: after
 * `boruna workflow approve`/`trigger`/`resume` recorded an answer but could not run the workflow's
 * TypeScript steps (the command line does not load your module), after a crash, or in a server
 * process that answers pauses itself. Holds the data dir like the command line does.
 */
export const resume = (wf: TsWorkflow, runId: string, o: { readonly dataDir?: string } = {}): Effect.Effect<Runner.RunResult, Runner.WorkflowError | import("./WorkflowEngine.js").EngineError | import("./WorkflowStore.js").StoreError> =>
  Effect.flatMap(Effect.promise(() => import("./WorkflowEngine.js")), (E) => {
    const dir = E.dataDirOf(o.dataDir)
    return Effect.zipRight(E.lockDataDir(dir, { command: `WorkflowTs.resume ${runId}` }), Runner.resumeRun(runId)).pipe(
      Effect.scoped,
      Effect.provide(layer(wf, E.sqliteEngine(dir)))
    )
  })
