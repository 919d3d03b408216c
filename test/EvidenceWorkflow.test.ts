/** Evidence of real workflow runs: the runner's store → record → chain → bundle → verify (re-execution included). */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as AuditChain from "../src/AuditChain.js"
import * as Bundle from "../src/EvidenceBundle.js"
import { sha256Hex } from "../src/EvidenceRecord.js"
import * as Verify from "../src/EvidenceVerify.js"
import { allowAll } from "../src/PolicyCore.js"
import * as Telemetry from "../src/Telemetry.js"
import { memoryEngine, sqliteEngine } from "../src/WorkflowEngine.js"
import * as Runner from "../src/WorkflowRunner.js"
import { policyOf } from "./EvidenceFixture.js"
import { wfDir } from "./support/WorkflowDir.js"

const WF = {
  schema_version: 1, name: "review", version: "1",
  steps: {
    fetch: { kind: "source", source: "steps/fetch.ax", capabilities: ["net.fetch"] },
    gate: { kind: "approval_gate", required_role: "editor", depends_on: ["fetch"] },
    sum: { kind: "source", source: "steps/sum.ax", inputs: { page: "fetch.result" }, depends_on: ["gate"] }
  },
  edges: []
}
const FILES = {
  "steps/fetch.ax": 'fn main() -> String !{net.fetch} { net.fetch("https://example.com/a") }\n',
  "steps/sum.ax": 'fn main() -> String !{step.input, llm.call, time.now} { let t: Int = time.now()\n llm.call("sum " ++ step.input("page")) }\n'
}

const mem = () => Runner.layer(memoryEngine).pipe(Layer.provide(Telemetry.off), Layer.orDie)
const sqlite = (dir: string) => Runner.layer(sqliteEngine(dir)).pipe(Layer.provide(Telemetry.off), Layer.orDie)
const fixed = { createdAt: new Date("2026-12-01T00:00:00.000Z"), env: { boruna_version: "0.1.0" } }

const approveGate = (runId: string, tokens: Readonly<Record<string, string>>) =>
  Runner.answer({ runId, step: "gate", token: tokens["gate:gate"] ?? Object.values(tokens)[0], as: "erin", decision: "approved", reason: "looks right" })

describe("evidence of a workflow run", () => {
  it.scopedLive("a completed run with an approval: its bundle verifies, every source step re-executes", () =>
    Effect.gen(function*() {
      const paused = yield* Runner.startRun({ path: wfDir(WF, FILES), policy: allowAll })
      expect(paused.status).toBe("paused")
      const done = yield* approveGate(paused.runId, paused.tokens)
      expect(done.status).toBe("completed")
      const record = yield* Bundle.recordOf(done.runId)
      const tags = AuditChain.events(record).map(AuditChain.eventTag)
      expect(tags).toEqual([
        "WorkflowStarted",
        "StepStarted", "CapabilityInvoked", "StepCompleted",
        "StepStarted", "ApprovalRequested", "ApprovalGranted", "StepCompleted",
        "StepStarted", "CapabilityInvoked", "CapabilityInvoked", "CapabilityInvoked", "StepCompleted",
        "WorkflowCompleted"
      ])
      const granted = AuditChain.events(record)[6] as { ApprovalGranted: { approver: string } }
      expect(granted.ApprovalGranted.approver).toBe("erin")
      const dir = join(mkdtempSync(join(tmpdir(), "ev-wf-")), "bundle")
      const m = yield* Bundle.writeEvidence(done.runId, dir, fixed)
      expect(m.run_id).toBe(done.runId)
      const r = yield* Verify.verifyDir(dir)
      expect(r.checks.flatMap((c) => c.problems)).toEqual([])
      expect(r.ok).toBe(true)
      expect(r.reexecuted).toEqual(["fetch", "sum"])
      // the step's input in its event log is the upstream output (checked), and a forged input is caught
      const files = new Map<string, string | Uint8Array>(Bundle.buildBundle(record, fixed))
      const out = `{"String":"other page"}`
      const forged = {
        ...record,
        steps: record.steps.map((s) => (s.id === "fetch" ? { ...s, outputJson: out, outputHash: sha256Hex(out), attempts: s.attempts.map((a) => ({ ...a, outputJson: out, outputHash: sha256Hex(out) })) } : s))
      }
      const fv = yield* Verify.verifyFiles(Bundle.buildBundle(forged, fixed))
      expect(fv.checks.find((c) => c.name === "record")!.problems).toContainEqual(expect.objectContaining({
        step: "sum", file: "event_logs/sum.jsonl", message: expect.stringMatching(/step\.input\("page"\) answered a value that is not the output of fetch/)
      }))
      expect((yield* Verify.verifyFiles(files)).ok).toBe(true)
    }).pipe(Effect.provide(mem())), 60_000)

  it.scopedLive("a failed run (a call denied by the step policy) verifies: the failure re-executes as a failure", () =>
    Effect.gen(function*() {
      const wf = { ...WF, steps: { ...WF.steps, fetch: { ...WF.steps.fetch, capabilities: ["time.now"] } } }
      const r = yield* Runner.startRun({ path: wfDir(wf, FILES), policy: allowAll })
      expect(r.status).toBe("failed")
      const record = yield* Bundle.recordOf(r.runId)
      const ev = AuditChain.events(record)
      expect(ev.map(AuditChain.eventTag)).toEqual(["WorkflowStarted", "StepStarted", "CapabilityInvoked", "StepFailed", "WorkflowCompleted"])
      expect((ev[2] as { CapabilityInvoked: { decision: string } }).CapabilityInvoked.decision).toBe("denied")
      const v = yield* Verify.verifyFiles(Bundle.buildBundle(record, fixed))
      expect(v.checks.flatMap((c) => c.problems)).toEqual([])
      expect(v.reexecuted).toEqual(["fetch"])
    }).pipe(Effect.provide(mem())), 60_000)

  it.scopedLive("a per-call approval: recorded in the chain before its call, the approved call re-executes, and a record without the approval is rejected", () =>
    Effect.gen(function*() {
      const wf = { schema_version: 1, name: "post", version: "1", steps: { fetch: WF.steps.fetch }, edges: [] }
      const policy = policyOf({ default_allow: false, rules: { "net.fetch": { allow: true, approve: true } } })
      const paused = yield* Runner.startRun({ path: wfDir(wf, FILES), policy })
      expect(paused.status).toBe("paused")
      const item = paused.pending[0]
      expect(item.kind).toBe("call")
      const done = yield* Runner.answer({ runId: paused.runId, call: item.digest, token: paused.tokens[item.id], as: "carol", decision: "approved" })
      expect(done.status).toBe("completed")
      const record = yield* Bundle.recordOf(done.runId)
      expect(AuditChain.events(record).map(AuditChain.eventTag)).toEqual([
        "WorkflowStarted", "StepStarted", "ApprovalRequested", "ApprovalGranted", "CapabilityInvoked", "StepCompleted", "WorkflowCompleted"
      ])
      const v = yield* Verify.verifyFiles(Bundle.buildBundle(record, fixed))
      expect(v.checks.flatMap((c) => c.problems)).toEqual([])
      expect(v.reexecuted).toEqual(["fetch"])
      // the same run with its approval taken out of the record (every hash made consistent again)
      const bare = yield* Verify.verifyFiles(Bundle.buildBundle({ ...record, approvals: [] }, fixed))
      expect(bare.checks.find((c) => c.name === "record")!.problems[0]).toMatchObject({
        step: "fetch", message: expect.stringMatching(/call #0 \(net\.fetch\) needs a person's approval .* none granted/)
      })
    }).pipe(Effect.provide(mem())), 60_000)

  it.scopedLive("a rejected gate: ApprovalDenied with the approver and reason, the run failed, the bundle verifies", () =>
    Effect.gen(function*() {
      const paused = yield* Runner.startRun({ path: wfDir(WF, FILES), policy: allowAll })
      const r = yield* Runner.answer({ runId: paused.runId, step: "gate", token: paused.tokens["gate:gate"] ?? Object.values(paused.tokens)[0], as: "dave", decision: "rejected", reason: "wrong page" })
      expect(r.status).toBe("failed")
      const record = yield* Bundle.recordOf(r.runId)
      const ev = AuditChain.events(record)
      expect(ev.map(AuditChain.eventTag)).toEqual([
        "WorkflowStarted", "StepStarted", "CapabilityInvoked", "StepCompleted", "StepStarted", "ApprovalRequested", "ApprovalDenied", "StepFailed", "WorkflowCompleted"
      ])
      expect(ev[6]).toMatchObject({ ApprovalDenied: { approver: "dave", reason: "wrong page" } })
      const v = yield* Verify.verifyFiles(Bundle.buildBundle(record, fixed))
      expect(v.checks.flatMap((c) => c.problems)).toEqual([])
    }).pipe(Effect.provide(mem())), 60_000)

  it.scopedLive("an external trigger: its payload hash in the chain, the payload is the step's output, a different output is caught", () =>
    Effect.gen(function*() {
      const wf = {
        schema_version: 1, name: "hook", version: "1",
        steps: {
          hook: { kind: "external_trigger", description: "a webhook" },
          use: { kind: "source", source: "steps/use.ax", inputs: { body: "hook.result" }, depends_on: ["hook"] }
        },
        edges: []
      }
      const files = { "steps/use.ax": 'fn main() -> String !{step.input} { "got " ++ step.input("body") }\n' }
      const paused = yield* Runner.startRun({ path: wfDir(wf, files), policy: allowAll })
      expect(paused.status).toBe("paused")
      const done = yield* Runner.answer({ runId: paused.runId, step: "hook", token: paused.tokens["trigger:hook"] ?? Object.values(paused.tokens)[0], as: "webhook", decision: "triggered", payload: `{"id":7}` })
      expect(done.status).toBe("completed")
      const record = yield* Bundle.recordOf(done.runId)
      const ev = AuditChain.events(record)
      expect(ev.map(AuditChain.eventTag)).toContain("ExternalTriggerReceived")
      expect(ev.find((e) => AuditChain.eventTag(e) === "ExternalTriggerReceived")).toMatchObject({ ExternalTriggerReceived: { step_id: "hook", payload_hash: sha256Hex(`{"id":7}`) } })
      const v = yield* Verify.verifyFiles(Bundle.buildBundle(record, fixed))
      expect(v.checks.flatMap((c) => c.problems)).toEqual([])
      expect(v.reexecuted).toEqual(["use"])
      const other = `{"String":"{\\"id\\":8}"}`
      const forged = { ...record, steps: record.steps.map((s) => (s.id === "hook" ? { ...s, outputJson: other, outputHash: sha256Hex(other) } : s)) }
      const fv = yield* Verify.verifyFiles(Bundle.buildBundle(forged, fixed))
      expect(fv.checks.find((c) => c.name === "record")!.problems.map((p) => p.message).join("\n")).toMatch(/step hook: its output is not the trigger payload/)
    }).pipe(Effect.provide(mem())), 60_000)

  it.live("the chain is a projection of the durable record: the same after the process that paused the run is gone and another one finished it, and again when read twice", () =>
    Effect.gen(function*() {
      const data = mkdtempSync(join(tmpdir(), "ev-data-"))
      const path = wfDir(WF, FILES)
      // process 1: runs to the gate, then its engine is closed
      const [paused, before] = yield* Effect.scoped(Effect.gen(function*() {
        const p = yield* Runner.startRun({ path, policy: allowAll })
        const rec = yield* Bundle.recordOf(p.runId)
        return [p, AuditChain.project(rec)] as const
      }).pipe(Effect.provide(sqlite(data))))
      expect(paused.status).toBe("paused")
      // process 2: a new engine on the same data dir approves and finishes the run
      const [after, again] = yield* Effect.scoped(Effect.gen(function*() {
        const done = yield* approveGate(paused.runId, paused.tokens)
        expect(done.status).toBe("completed")
        const a = AuditChain.project(yield* Bundle.recordOf(paused.runId))
        const b = AuditChain.project(yield* Bundle.recordOf(paused.runId))
        return [a, b] as const
      }).pipe(Effect.provide(sqlite(data))))
      // the entries made before the pause are the same (nothing re-appended, nothing changed) …
      expect(after.slice(0, before.length)).toEqual(before)
      // … each call appears once, and reading the record twice gives the same chain
      expect(after.filter((e) => AuditChain.eventTag(e.event) === "CapabilityInvoked")).toHaveLength(4)
      expect(AuditChain.encode(again)).toBe(AuditChain.encode(after))
      expect(AuditChain.verify(after).ok).toBe(true)
    }), 90_000)
})

describe("evidence bundles the sources the run compiled from", () => {
  it.scopedLive("a step source edited in the directory after the run: the bundle holds the stored text and still verifies", () =>
    Effect.gen(function*() {
      const { writeFileSync } = yield* Effect.promise(() => import("node:fs"))
      const dir = wfDir(WF, FILES)
      const paused = yield* Runner.startRun({ path: dir, policy: allowAll })
      // edited while the run waits at the gate, then the run goes on (it compiles from the stored text)
      writeFileSync(join(dir, "steps/sum.ax"), 'fn main() -> String { "edited" }\n')
      const done = yield* approveGate(paused.runId, paused.tokens)
      expect(done.status).toBe("completed")
      const record = yield* Bundle.recordOf(done.runId)
      expect(record.workflow.sources["steps/sum.ax"]).toBe(FILES["steps/sum.ax"])
      const out = join(mkdtempSync(join(tmpdir(), "ev-wf-src-")), "bundle")
      yield* Bundle.writeEvidence(done.runId, out, fixed)
      const r = yield* Verify.verifyDir(out)
      expect(r.checks.flatMap((c) => c.problems)).toEqual([])
      expect(r.reexecuted).toEqual(["fetch", "sum"])
    }).pipe(Effect.provide(mem())), 60_000)
})
