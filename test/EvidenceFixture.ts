/**
 * Run records for the evidence tests, made by really running `.ax` steps (compiler, VM, gateway,
 * demo handlers, in-memory event log) in topological order — a stand-in for the workflow runner
 * where its store is not the point.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { programHash } from "../src/Bytecode.js"
import { compileSource } from "../src/Compiler.js"
import type { Event } from "../src/Event.js"
import * as EventLog from "../src/EventLog.js"
import type { AttemptRecord, CallRecord, RunRecord, StepRecord } from "../src/EvidenceRecord.js"
import { argsDigest, inputText, jsonDigest, outputHashOf, outputJsonOf, resultDigest, sha256Hex } from "../src/EvidenceRecord.js"
import * as Gateway from "../src/Gateway.js"
import * as Handlers from "../src/Handlers.js"
import { parsePolicy, type Policy } from "../src/Policy.js"
import { Vm } from "../src/Vm.js"
import { decodeWorkflow, workflowHash } from "../src/WorkflowFile.js"
import { stepPolicy } from "../src/WorkflowRunner.js"
import { canonicalJson, type Json, toJson } from "../src/ValueJson.js"

export interface FixtureStep {
  readonly id: string
  readonly source?: string
  readonly kind?: "source" | "approval_gate" | "external_trigger"
  readonly dependsOn?: ReadonlyArray<string>
  readonly inputs?: Readonly<Record<string, string>>
  readonly role?: string
}

export const policyOf = (json: unknown): Policy => Either.getOrThrow(parsePolicy(JSON.stringify(json)))

/** The calls of an attempt, from its event log (denials never reach the log). */
export const callsOf = (events: ReadonlyArray<Event>, base = 0): ReadonlyArray<CallRecord> => {
  const out: Array<CallRecord> = []
  let t = base
  events.forEach((e, i) => {
    if (e.type !== "CapCall") return
    const next = events[i + 1]
    const ok = next?.type === "CapResult"
    const start = new Date(t).toISOString()
    t += 5 + (out.length % 3) * 7
    out.push({
      seq: out.length,
      capability: e.capability,
      argsDigest: argsDigest(e.args),
      decision: next?.type === "CapError" && next.kind === "denied" ? "denied" : "allowed",
      resultDigest: ok ? resultDigest(next.result) : next?.type === "CapError" ? sha256Hex(canonicalJson({ kind: next.kind, message: next.message })) : undefined,
      reexecuted: false,
      startedAt: start,
      endedAt: new Date(t).toISOString(),
      error: next?.type === "CapError" ? next.message : undefined
    })
  })
  return out
}

const T0 = Date.parse("2026-11-30T10:00:00.000Z")

/**
 * Run the steps and record the run. `step.input(name)` answers like the runner: the resolved
 * upstream output (`<step>.result`) or run input, a String as itself, other values as compact JSON.
 */
export const runFixture = (options: {
  readonly name?: string
  readonly steps: ReadonlyArray<FixtureStep>
  readonly policy?: Policy
  readonly inputs?: Readonly<Record<string, Json>>
  readonly approver?: string
}): RunRecord => {
  const policy = options.policy ?? policyOf({ default_allow: true })
  const inputs = options.inputs ?? {}
  const outputs = new Map<string, string>()
  const steps: Array<StepRecord> = []
  const approvals: Array<RunRecord["approvals"][number]> = []
  const triggers: Array<RunRecord["triggers"][number]> = []
  const sources: Record<string, string> = {}
  const wf = {
    schema_version: 1,
    name: options.name ?? "fixture",
    version: "1.0.0",
    steps: Object.fromEntries(options.steps.map((s) => [s.id, {
      kind: s.kind ?? "source",
      ...(s.source !== undefined ? { source: `steps/${s.id}.ax` } : {}),
      ...(s.role !== undefined ? { required_role: s.role } : {}),
      inputs: s.inputs ?? {},
      depends_on: s.dependsOn ?? []
    }])),
    edges: []
  }
  const def = Either.getOrThrow(decodeWorkflow(wf))
  let t = T0 + 10
  let failed = false
  for (const s of options.steps) {
    const resolved: Record<string, Json> = {}
    for (const [k, ref] of Object.entries(s.inputs ?? {})) {
      const [from] = ref.split(".")
      const out = outputs.get(from)
      resolved[k] = out !== undefined ? JSON.parse(out) as Json : inputs[ref] ?? null
    }
    const kind = s.kind ?? "source"
    if (failed) {
      steps.push({ id: s.id, kind, dependsOn: s.dependsOn ?? [], status: "skipped", attempts: [], inputs: resolved })
      continue
    }
    if (kind !== "source") {
      const startedAt = new Date(t).toISOString()
      t += 40
      const endedAt = new Date(t).toISOString()
      let output: string
      if (kind === "approval_gate") {
        approvals.push({
          kind: "gate", stepId: s.id, digest: sha256Hex(canonicalJson({ gate: s.id })), role: s.role ?? "reviewer",
          requestedAt: startedAt, decision: "granted", approver: options.approver ?? "alice", decidedAt: endedAt
        })
        output = `{"Bool":true}`
      } else {
        output = JSON.stringify({ String: "{\"ok\":true}" })
        triggers.push({ stepId: s.id, payloadHash: sha256Hex(`{"ok":true}`), receivedAt: endedAt })
      }
      outputs.set(s.id, output)
      steps.push({
        id: s.id, kind, dependsOn: s.dependsOn ?? [], status: "completed", attempts: [], inputs: resolved,
        outputJson: output, outputHash: outputHashOf(output), startedAt, endedAt, durationMs: 40
      })
      continue
    }
    const path = `steps/${s.id}.ax`
    sources[path] = s.source!
    // compiled under its path in the bundle, as the runner's record does it
    const compiled = compileSource(`sources/${path}`, s.source!)
    if (!compiled.ok) throw new Error(`fixture step ${s.id} does not compile: ${compiled.diagnostics.map((d) => d.message).join("; ")}`)
    const program = compiled.program
    const log = EventLog.makeMemory()
    const handlers = Handlers.override(Handlers.demoService, {
      // as the runner answers: a String input as itself, other values as compact Value JSON
      "step.input": (args) => Effect.succeed(inputText(resolved[String(args[0])] ?? "Unit"))
    })
    // the step runs under the run policy narrowed to it, as the runner does it
    const sp = stepPolicy(policy, def.steps[s.id])
    const rt = Gateway.layer(sp).pipe(Layer.provideMerge(Layer.mergeAll(Layer.succeed(Handlers.Handlers, handlers), Layer.succeed(EventLog.EventLog, log))))
    // never hand the event loop a turn (a VM that can yields every few ms): this runs synchronously
    const sync = { yieldMs: Number.POSITIVE_INFINITY }
    const exit = Effect.runSync(Effect.either(Effect.provide(Vm.run(program, sync), rt)))
    const events = [...log.events()]
    const startedAt = new Date(t).toISOString()
    const calls = callsOf(events, t)
    t += 20 + calls.reduce((n, c) => n + (Date.parse(c.endedAt!) - Date.parse(c.startedAt!)), 0)
    const endedAt = new Date(t).toISOString()
    t += 3
    const attempt: AttemptRecord = Either.isRight(exit)
      ? {
        attempt: 1, status: "completed", startedAt, endedAt, events, calls, policy: sp, programHash: programHash(program),
        outputJson: outputJsonOf(exit.right), outputHash: outputHashOf(outputJsonOf(exit.right))
      }
      : { attempt: 1, status: "failed", startedAt, endedAt, events, calls, policy: sp, programHash: programHash(program), error: `${exit.left.kind}: ${exit.left.message}`, errorKind: exit.left.kind }
    if (attempt.status === "completed") outputs.set(s.id, attempt.outputJson!)
    else failed = true
    steps.push({
      id: s.id, kind, source: path, sourceFile: `sources/${path}`, dependsOn: s.dependsOn ?? [], status: attempt.status === "completed" ? "completed" : "failed", attempts: [attempt], inputs: resolved,
      outputJson: attempt.outputJson, outputHash: attempt.outputHash, error: attempt.error, startedAt, endedAt,
      durationMs: Date.parse(endedAt) - Date.parse(startedAt)
    })
  }
  const text = JSON.stringify(wf, null, 2) + "\n"
  return {
    runId: "0123456789abcdef",
    workflow: { name: wf.name, version: wf.version, hash: workflowHash(def), text, sources },
    policy,
    inputs,
    status: failed ? "failed" : "completed",
    startedAt: new Date(T0).toISOString(),
    endedAt: new Date(t).toISOString(),
    durationMs: t - T0,
    borunaVersion: "0.1.0",
    steps,
    approvals,
    triggers
  }
}

/** A small three-step workflow with a gate: fetch → approve → report. */
export const smallRun = (): RunRecord =>
  runFixture({
    name: "review",
    steps: [
      { id: "fetch", source: `fn main() -> String !{net.fetch} { net.fetch("https://example.com/a") }` },
      { id: "approve", kind: "approval_gate", role: "reviewer", dependsOn: ["fetch"] },
      {
        id: "report",
        dependsOn: ["approve"],
        inputs: { page: "fetch.result" },
        source: `fn main() -> String !{step.input, llm.call} { let p: String = step.input("page")\n llm.call("sum " ++ p) }`
      }
    ]
  })
