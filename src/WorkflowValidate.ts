/**
 * The workflow validator: decode `workflow.json`, then check what the schema cannot — unknown steps
 * in edges, `depends_on` and `inputs`, duplicate edges, cycles (named by the steps that form
 * them), step fields that do not fit the kind, unknown capabilities, and every `source` step's
 * `.ax` file compiling. Every problem is collected, with its JSON path (and `file:line:col` for
 * compile errors), so a user fixes them all in one pass.
 */
import * as Either from "effect/Either"
import { existsSync, readFileSync, statSync } from "node:fs"
import { join, resolve } from "node:path"
import { isCapabilityName } from "./Capability.js"
import { compileSource } from "./Compiler.js"
import type { BytecodeProgram } from "./Bytecode.js"
import { jsonPath } from "./Json.js"
import { allEdges, parseWorkflow, type Problem, topoOrder, upstream, type WorkflowDef } from "./WorkflowFile.js"

export interface Validated {
  readonly dir: string
  readonly file: string
  readonly workflow: WorkflowDef
  /** compiled programs of the source steps */
  readonly programs: ReadonlyMap<string, BytecodeProgram>
}

const stepPath = (id: string, ...rest: Array<string | number>): string => jsonPath(["steps", id, ...rest])

/** Find one cycle among the steps Kahn's algorithm could not order: the step ids, in edge order. */
export const findCycle = (w: WorkflowDef, stuck: ReadonlySet<string>): ReadonlyArray<string> => {
  const edges = allEdges(w).filter(([f, t]) => stuck.has(f) && stuck.has(t))
  const succ = new Map<string, Array<string>>()
  for (const [f, t] of edges) (succ.get(f) ?? succ.set(f, []).get(f)!).push(t)
  const start = [...stuck].sort()[0]
  if (start === undefined) return []
  // follow a successor that stays in the stuck set until a step repeats
  const path: Array<string> = []
  const at = new Map<string, number>()
  let n: string | undefined = start
  while (n !== undefined && !at.has(n)) {
    at.set(n, path.length)
    path.push(n)
    n = (succ.get(n) ?? []).find((s) => stuck.has(s))
  }
  return n === undefined ? path : path.slice(at.get(n))
}

/** Semantic checks of a decoded workflow (no file system). */
export const checkWorkflow = (w: WorkflowDef): ReadonlyArray<Problem> => {
  const problems: Array<Problem> = []
  const ids = Object.keys(w.steps).sort()
  if (ids.length === 0) problems.push({ kind: "empty_workflow", path: "$.steps", message: "workflow has no steps" })
  const seen = new Set<string>()
  w.edges.forEach(([f, t], i) => {
    if (!(f in w.steps)) problems.push({ kind: "unknown_step", path: jsonPath(["edges", i, 0]), message: `edge from unknown step '${f}'` })
    if (!(t in w.steps)) problems.push({ kind: "unknown_step", path: jsonPath(["edges", i, 1]), message: `edge to unknown step '${t}'` })
    if (f === t) problems.push({ kind: "cycle_detected", path: jsonPath(["edges", i]), message: `step '${f}' depends on itself`, step: f })
    const k = JSON.stringify([f, t])
    if (seen.has(k)) problems.push({ kind: "duplicate_edge", path: jsonPath(["edges", i]), message: `duplicate edge ${f} -> ${t}` })
    seen.add(k)
  })
  for (const id of ids) {
    const s = w.steps[id]
    if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(id)) {
      problems.push({ kind: "invalid_step_id", path: stepPath(id), message: `step id '${id}' must be letters, digits, '_' or '-' (starting with a letter or '_')`, step: id })
    }
    s.depends_on.forEach((d, i) => {
      if (!(d in w.steps)) problems.push({ kind: "unknown_step", path: stepPath(id, "depends_on", i), message: `unknown step '${d}'`, step: id })
      else if (d === id) problems.push({ kind: "cycle_detected", path: stepPath(id, "depends_on", i), message: `step '${id}' depends on itself`, step: id })
    })
    if (s.kind === "source" && (s.source === undefined || s.source === "")) {
      problems.push({ kind: "missing_field", path: stepPath(id, "source"), message: "a source step needs \"source\": the .ax file, relative to the workflow directory", step: id })
    }
    if (s.kind !== "source" && s.source !== undefined) {
      problems.push({ kind: "invalid_workflow", path: stepPath(id, "source"), message: `a ${s.kind} step has no source`, step: id })
    }
    if (s.kind === "approval_gate" && (s.required_role === undefined || s.required_role === "")) {
      problems.push({ kind: "missing_field", path: stepPath(id, "required_role"), message: "an approval_gate step needs \"required_role\"", step: id })
    }
    s.capabilities.forEach((c, i) => {
      if (!isCapabilityName(c)) problems.push({ kind: "invalid_capability", path: stepPath(id, "capabilities", i), message: `unknown capability '${c}'`, step: id })
    })
    const ups = upstream(w, id)
    for (const [name, ref] of Object.entries(s.inputs)) {
      const dot = ref.indexOf(".")
      if (dot <= 0 || dot === ref.length - 1) {
        problems.push({ kind: "unknown_input", path: stepPath(id, "inputs", name), message: `invalid ref format '${ref}' (expected 'step.output', e.g. 'fetch.result')`, step: id })
        continue
      }
      const from = ref.slice(0, dot)
      if (!(from in w.steps)) {
        problems.push({ kind: "unknown_input", path: stepPath(id, "inputs", name), message: `input '${name}' refers to unknown step '${from}'`, step: id })
      } else if (!ups.has(from) && from !== id) {
        problems.push({ kind: "unknown_input", path: stepPath(id, "inputs", name), message: `input '${name}' reads step '${from}', which is not upstream of '${id}' (add it to depends_on)`, step: id })
      } else if (from === id) {
        problems.push({ kind: "unknown_input", path: stepPath(id, "inputs", name), message: `input '${name}' reads the step's own output`, step: id })
      }
    }
  }
  const { order, complete } = topoOrder(w)
  if (!complete) {
    const done = new Set(order)
    const stuck = new Set(ids.filter((id) => !done.has(id)))
    const cycle = findCycle(w, stuck)
    if (cycle.length > 1) {
      problems.push({
        kind: "cycle_detected",
        path: "$.edges",
        message: `cycle detected: ${[...cycle, cycle[0]].join(" -> ")} (resolved ${order.length} of ${ids.length} steps)`,
        step: cycle[0]
      })
    }
  }
  return problems
}

/**
 * Read and validate the workflow in `dirOrFile` (a directory holding workflow.json, or the json file
 * itself), compiling every source step.
 */
export const validateDir = (dirOrFile: string): Either.Either<Validated, ReadonlyArray<Problem>> => {
  let dir = dirOrFile
  let file = join(dirOrFile, "workflow.json")
  if (existsSync(dirOrFile) && statSync(dirOrFile).isFile()) {
    file = dirOrFile
    dir = resolve(dirOrFile, "..")
  }
  let text: string
  try {
    text = readFileSync(file, "utf8").replace(/^\uFEFF/, "")
  } catch (e) {
    const code = (e as { code?: string }).code
    return Either.left([{ kind: "io_error", path: "$", message: `cannot read ${file}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : String(e)}` }])
  }
  const decoded = parseWorkflow(text)
  if (Either.isLeft(decoded)) return Either.left(decoded.left)
  const w = decoded.right
  const problems = [...checkWorkflow(w)]
  const programs = new Map<string, BytecodeProgram>()
  for (const id of Object.keys(w.steps).sort()) {
    const s = w.steps[id]
    if (s.kind !== "source" || s.source === undefined || s.source === "") continue
    const src = join(dir, s.source)
    let source: string
    try {
      source = readFileSync(src, "utf8").replace(/^\uFEFF/, "")
    } catch (e) {
      const code = (e as { code?: string }).code
      problems.push({ kind: "io_error", path: stepPath(id, "source"), message: `step '${id}': cannot read ${src}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : String(e)}`, step: id })
      continue
    }
    const r = compileSource(src, source)
    if (r.ok) {
      programs.set(id, r.program)
    } else {
      for (const d of r.diagnostics) {
        problems.push({
          kind: "compile_error",
          path: stepPath(id, "source"),
          message: `step '${id}': ${d.code} ${d.message}`,
          step: id,
          location: { file: d.file, line: d.line, col: d.col }
        })
      }
    }
  }
  return problems.length > 0 ? Either.left(problems) : Either.right({ dir, file, workflow: w, programs })
}

/** `FILE: PATH: message (file:line:col)` — one line per problem, as `workflow validate` prints it. */
export const formatProblem = (file: string, p: Problem): string =>
  `${file}: ${p.path}: ${p.message}${p.location === undefined ? "" : ` (${p.location.file}:${p.location.line}:${p.location.col})`}`
