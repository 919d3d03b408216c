/**
 * `workflow.json`: the file format of a DAG workflow (docs/workflows.md), decoded with
 * `effect/Schema`. Unknown fields are ignored (forward compatibility inside schema 1), every
 * problem is reported with its JSON path, all at once.
 *
 * Also here: the workflow hash (SHA-256 over canonical JSON), the topological order (Kahn, ties
 * broken by step id), its waves, and the deterministic `run_id`.
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { createHash } from "node:crypto"
import { parseJson, schemaIssues } from "./Json.js"
import { canonicalJson } from "./ValueJson.js"

const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())
const PositiveInt = Schema.Int.pipe(Schema.positive())
const NonEmpty = Schema.String.pipe(Schema.minLength(1, { message: () => "must not be empty" }))

export const Retry = Schema.Struct({
  max_attempts: Schema.optionalWith(PositiveInt, { default: () => 1 }),
  on_transient: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** error kinds that are retried (empty: `on_transient` retries `runtime_error` and `wall_time_exceeded`) */
  retry_on: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  /**
   * the first back-off before a retry, doubling with each attempt (default 50 ms, at most 2 s;
   * given, at most 16 × it). Absent, it is not part of the workflow's hash.
   */
  backoff_ms: Schema.optional(PositiveInt)
})
export type Retry = typeof Retry.Type

export const StepBudget = Schema.Struct({
  max_tokens: Schema.optionalWith(Schema.NullOr(NonNegativeInt), { default: () => null }),
  max_calls: Schema.optionalWith(Schema.NullOr(NonNegativeInt), { default: () => null })
})
export type StepBudget = typeof StepBudget.Type

export const STEP_KINDS = ["source", "approval_gate", "external_trigger"] as const
export type StepKind = (typeof STEP_KINDS)[number]

export const Step = Schema.Struct({
  kind: Schema.Literal(...STEP_KINDS),
  source: Schema.optional(Schema.String),
  required_role: Schema.optional(Schema.String),
  /** on a cluster: run this step only on runners started with `--group NAME` (docs/cluster.md) */
  runner_group: Schema.optional(Schema.String),
  condition: Schema.optional(Schema.NullOr(Schema.String)),
  description: Schema.optionalWith(Schema.String, { default: () => "" }),
  capabilities: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  inputs: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  outputs: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  depends_on: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  timeout_ms: Schema.optionalWith(Schema.NullOr(PositiveInt), { default: () => null }),
  retry: Schema.optionalWith(Retry, { default: () => ({ max_attempts: 1, on_transient: false, retry_on: [] }) }),
  budget: Schema.optionalWith(StepBudget, { default: () => ({ max_tokens: null, max_calls: null }) })
})
export type Step = typeof Step.Type

export const WorkflowSchema = Schema.Struct({
  schema_version: Schema.Int,
  name: NonEmpty,
  version: NonEmpty,
  description: Schema.optionalWith(Schema.String, { default: () => "" }),
  steps: Schema.Record({ key: Schema.String, value: Step }),
  edges: Schema.Array(Schema.Tuple(Schema.String, Schema.String))
})
export type WorkflowDef = typeof WorkflowSchema.Type

/** One problem in a workflow: what kind, where (JSON path, and a source location for compile errors). */
export interface Problem {
  /** `invalid_workflow`, `missing_schema_version`, `unsupported_schema_version`, `invalid_json`, `cycle_detected`, `compile_error`, … */
  readonly kind: string
  /** the JSON path inside workflow.json (`$.steps.fetch.depends_on[0]`) */
  readonly path: string
  readonly message: string
  /** the step the problem is about */
  readonly step?: string
  /** a source location (a step's `.ax` file) */
  readonly location?: { readonly file: string; readonly line: number; readonly col: number }
}

const decode = Schema.decodeUnknownEither(WorkflowSchema, { errors: "all" })

/**
 * One issue per path: a union's branches each report "Expected X, actual V" — merged into
 * "Expected X | Y, actual V"; the `null` branch of a nullable field is dropped when another remains.
 */
const mergeIssues = (issues: ReadonlyArray<{ readonly path: string; readonly message: string }>): ReadonlyArray<{ readonly path: string; readonly message: string }> => {
  const byPath = new Map<string, Array<string>>()
  for (const i of issues) (byPath.get(i.path) ?? byPath.set(i.path, []).get(i.path)!).push(i.message)
  return [...byPath].map(([path, ms]) => {
    const kept = ms.length > 1 ? ms.filter((m) => !m.startsWith("Expected null, actual")) : ms
    const expected = kept.map((m) => /^Expected (.*), actual (.*)$/s.exec(m))
    if (kept.length > 1 && expected.every((m) => m !== null && m[2] === expected[0]![2])) {
      return { path, message: `Expected ${expected.map((m) => m![1]).join(" | ")}, actual ${expected[0]![2]}` }
    }
    return { path, message: kept.join("; ") }
  })
}

/** Decode workflow.json text: `Right` the definition, `Left` every problem found by the decoder. */
export const parseWorkflow = (text: string): Either.Either<WorkflowDef, ReadonlyArray<Problem>> => {
  const json = parseJson(text)
  if (!json.ok) return Either.left([{ kind: "invalid_json", path: json.where, message: json.message }])
  return decodeWorkflow(json.value)
}

export const decodeWorkflow = (json: unknown): Either.Either<WorkflowDef, ReadonlyArray<Problem>> => {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return Either.left([{ kind: "invalid_workflow", path: "$", message: `expected a JSON object, got ${Array.isArray(json) ? "an array" : JSON.stringify(json)}` }])
  }
  const o = json as Record<string, unknown>
  const problems: Array<Problem> = []
  if (!("schema_version" in o)) {
    problems.push({ kind: "missing_schema_version", path: "$.schema_version", message: "missing schema_version (write \"schema_version\": 1)" })
  } else if (typeof o.schema_version === "number" && Number.isInteger(o.schema_version) && o.schema_version !== 1) {
    problems.push({
      kind: "unsupported_schema_version",
      path: "$.schema_version",
      message: `schema_version ${o.schema_version} is not supported (this boruna reads schema_version 1)`
    })
  }
  const r = decode(problems.length > 0 ? { ...o, schema_version: 1 } : json)
  if (Either.isLeft(r)) {
    for (const i of mergeIssues(schemaIssues(r.left))) problems.push({ kind: "invalid_workflow", path: i.path, message: i.message })
  }
  if (problems.length > 0 || Either.isLeft(r)) return Either.left(problems)
  return Either.right(r.right)
}

// ---------------------------------------------------------------------------------------------
// identity and order

const sha256 = (s: string): string => createHash("sha256").update(s).digest("hex")

/** The workflow's identity: `sha256:` + hex SHA-256 of its canonical JSON (defaults filled in). */
export const workflowHash = (w: WorkflowDef): string => "sha256:" + sha256(canonicalJson(Schema.encodeSync(WorkflowSchema)(w)))

/** Hash of the run inputs (canonical JSON of the name → value map). */
export const inputsHash = (inputs: Readonly<Record<string, string>>): string => "sha256:" + sha256(canonicalJson(inputs))

/**
 * The deterministic run id: the first 8 bytes, in hex, of SHA-256 over
 * `workflow_hash ":" inputs_hash ":"` followed by the counter as a little-endian 64-bit integer.
 */
export const runId = (workflowHashHex: string, inputsHashHex: string, counter: number): string => {
  const le = Buffer.alloc(8)
  le.writeBigInt64LE(BigInt(counter))
  return createHash("sha256").update(`${workflowHashHex}:${inputsHashHex}:`).update(le).digest("hex").slice(0, 16)
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** Every edge (from, to): `edges` plus `depends_on`, deduplicated, sorted. Only edges between known steps. */
export const allEdges = (w: WorkflowDef): ReadonlyArray<readonly [string, string]> => {
  const seen = new Set<string>()
  const out: Array<readonly [string, string]> = []
  const add = (from: string, to: string): void => {
    if (!(from in w.steps) || !(to in w.steps)) return
    const k = JSON.stringify([from, to])
    if (seen.has(k)) return
    seen.add(k)
    out.push([from, to])
  }
  for (const [f, t] of w.edges) add(f, t)
  for (const id of Object.keys(w.steps)) for (const d of w.steps[id].depends_on) add(d, id)
  return out.sort((a, b) => cmp(a[0], b[0]) || cmp(a[1], b[1]))
}

/** Upstream steps of each step. */
export const dependencies = (w: WorkflowDef): ReadonlyMap<string, ReadonlyArray<string>> => {
  const m = new Map<string, Array<string>>(Object.keys(w.steps).sort(cmp).map((id) => [id, []]))
  for (const [f, t] of allEdges(w)) m.get(t)!.push(f)
  return m
}

/**
 * Kahn's algorithm: the initial queue is the steps with no incoming edge, sorted by id; FIFO;
 * successors are visited in sorted (from, to) order. `order` lacks the steps on or after a cycle.
 */
export const topoOrder = (w: WorkflowDef): { readonly order: ReadonlyArray<string>; readonly complete: boolean } => {
  const ids = Object.keys(w.steps).sort(cmp)
  const edges = allEdges(w)
  const indeg = new Map(ids.map((id) => [id, 0]))
  const succ = new Map<string, Array<string>>(ids.map((id) => [id, []]))
  for (const [f, t] of edges) {
    indeg.set(t, indeg.get(t)! + 1)
    succ.get(f)!.push(t)
  }
  const queue = ids.filter((id) => indeg.get(id) === 0)
  const order: Array<string> = []
  while (queue.length > 0) {
    const n = queue.shift()!
    order.push(n)
    for (const s of succ.get(n)!) {
      const d = indeg.get(s)! - 1
      indeg.set(s, d)
      if (d === 0) queue.push(s)
    }
  }
  return { order, complete: order.length === ids.length }
}

/**
 * Waves: each step's wave is one more than its deepest dependency's; steps of one wave are
 * independent and may run concurrently. Within a wave, the Kahn order.
 */
export const waves = (w: WorkflowDef): ReadonlyArray<ReadonlyArray<string>> => {
  const { order } = topoOrder(w)
  const deps = dependencies(w)
  const level = new Map<string, number>()
  const out: Array<Array<string>> = []
  for (const id of order) {
    const l = Math.max(-1, ...(deps.get(id) ?? []).map((d) => level.get(d) ?? 0)) + 1
    level.set(id, l)
    ;(out[l] ??= []).push(id)
  }
  return out
}

/** Steps reachable downstream of `id` (its dependents, transitively). */
export const downstream = (w: WorkflowDef, id: string): ReadonlySet<string> => {
  const edges = allEdges(w)
  const out = new Set<string>()
  const stack = [id]
  while (stack.length > 0) {
    const n = stack.pop()!
    for (const [f, t] of edges) {
      if (f === n && !out.has(t)) {
        out.add(t)
        stack.push(t)
      }
    }
  }
  return out
}

/** Steps reachable upstream of `id`. */
export const upstream = (w: WorkflowDef, id: string): ReadonlySet<string> => {
  const deps = dependencies(w)
  const out = new Set<string>()
  const stack = [id]
  while (stack.length > 0) {
    const n = stack.pop()!
    for (const d of deps.get(n) ?? []) {
      if (!out.has(d)) {
        out.add(d)
        stack.push(d)
      }
    }
  }
  return out
}

/** A one-step workflow around a single `.ax` file (`boruna workflow run FILE.ax`). */
export const singleStep = (sourceFile: string, name: string): WorkflowDef =>
  Schema.decodeUnknownSync(WorkflowSchema)({
    schema_version: 1,
    name,
    version: "0",
    steps: { main: { kind: "source", source: sourceFile } },
    edges: []
  })
