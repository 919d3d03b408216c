import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Redacted from "effect/Redacted"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Store from "../src/WorkflowStore.js"
import * as Postgres from "./support/Postgres.js"

const sqlite = () =>
  Store.layer.pipe(Layer.provide(SqliteClient.layer({ filename: join(mkdtempSync(join(tmpdir(), "boruna-store-")), "store.db") })), Layer.orDie)

// the same SQL on PostgreSQL (the cluster engine's store): a throwaway local server
let pg: Postgres.Postgres | undefined
let dbs = 0
beforeAll(async () => {
  pg = await Postgres.start()
}, 60_000)
afterAll(() => pg?.stop())
const postgres = () =>
  Store.layer.pipe(Layer.provide(PgClient.layer({ url: Redacted.make(pg!.database(`store${++dbs}`)) })), Layer.orDie)

const run: Store.RunRecord = {
  run_id: "r1", workflow_name: "w", workflow_version: "1", workflow_hash: "sha256:aa", workflow_path: "/w", workflow_json: "{}",
  policy_json: "{}", policy_hash: "sha256:pp", inputs_json: "{}", inputs_hash: "sha256:ii", counter: 0, status: "running", live: false,
  concurrency: 4, trace_id: "t".repeat(32), span_id: "s".repeat(16), created_at: "2026-01-01T00:00:00.000Z", updated_at: "2026-01-01T00:00:00.000Z",
  error: null, error_kind: null
}

const approval = (id: string): Store.ApprovalRecord => ({
  run_id: "r1", id, kind: "call", step_id: "a", attempt: 1, seq: 0, capability: "net.fetch", args_rendered: "POST x", digest: "d",
  required_role: null, token_hash: "h", status: "pending", approver: null, reason: null, payload_json: null,
  created_at: new Date().toISOString(), decided_at: null, decision_nonce: null
})

describe.each([["SQLite", sqlite], ["PostgreSQL", postgres]] as const)("WorkflowStore on %s", (_name, storeLayer) => {
  it.effect("history entries recorded within one millisecond read back in the order they were recorded", () =>
    Effect.gen(function*() {
      const store = yield* Store.WorkflowStore
      yield* store.createRun(run)
      const at = "2026-01-01T00:00:00.000Z"
      const events = ["pending", "refused", "approved", "refused", "resumed", "refused", "rejected", "refused"]
      for (const [i, event] of events.entries()) yield* store.addHistory({ run_id: "r1", approval_id: null, at, actor: `a${i}`, event, detail: "" })
      expect((yield* store.getHistory("r1")).map((h) => [h.event, h.actor])).toEqual(events.map((e, i) => [e, `a${i}`]))
    }).pipe(Effect.provide(storeLayer())))

  it.effect("calls answered at once are journaled in batches (any count, 500 a statement); a call journaled again counts an execution; an intent writes the batch with it", () =>
    Effect.gen(function*() {
      const store = yield* Store.WorkflowStore
      yield* store.createRun(run)
      const row = (seq: number, result: string): Store.JournaledCall => ({
        run_id: "r1", step_id: "a", attempt: 1, seq, capability: "time.now", args_digest: `args${seq}`, decision: "allowed",
        result_digest: `digest-${result}`, journal: `{"decision":"allowed","ok":true,"result":{"String":${JSON.stringify(result)}}}`, at: "2026-01-01T00:00:00.000Z"
      })
      yield* store.recordCalls(Array.from({ length: 1201 }, (_, i) => row(i, `r${i}`)))
      const j1 = yield* store.getJournal("r1", "a", 1)
      expect(j1).toHaveLength(1201)
      expect(j1.map((c) => c.seq)).toEqual(Array.from({ length: 1201 }, (_, i) => i))
      expect(j1[1200]).toMatchObject({ capability: "time.now", args_digest: "args1200", decision: "allowed", result_digest: "digest-r1200", status: "completed", executions: 1, reexecuted: false, started_at: "2026-01-01T00:00:00.000Z", ended_at: "2026-01-01T00:00:00.000Z" })
      expect(JSON.parse(j1[7].journal!)).toEqual({ decision: "allowed", ok: true, result: { String: "r7" } })
      // journaled again (a crash before the step's outcome, the call made again): one more execution, the new answer
      yield* store.recordCalls([row(7, "again")])
      const j2 = yield* store.getJournal("r1", "a", 1)
      expect(j2[7]).toMatchObject({ result_digest: "digest-again", executions: 2, reexecuted: true, status: "completed" })
      expect(j2[6]).toMatchObject({ executions: 1, reexecuted: false })
      // an intent takes the calls held back with it
      yield* store.intendCall({ run_id: "r1", step_id: "a", attempt: 1, seq: 1203, capability: "net.fetch", args_digest: "argsX" }, [row(1201, "x"), row(1202, "y")])
      const j3 = yield* store.getJournal("r1", "a", 1)
      expect(j3.slice(1201).map((c) => [c.seq, c.status, c.journal === null])).toEqual([[1201, "completed", false], [1202, "completed", false], [1203, "started", true]])
      // getCalls: every call, without its journal
      const calls = yield* store.getCalls("r1")
      expect(calls).toHaveLength(1204)
      expect("journal" in calls[0]).toBe(false)
    }).pipe(Effect.provide(storeLayer())))

  it.effect("a run, its steps, attempts, calls, approvals and history read back as one view", () =>
    Effect.gen(function*() {
      const s = yield* Store.WorkflowStore
      yield* s.createRun(run)
      yield* s.createRun({ ...run, status: "failed" }) // a second create of the same id is a no-op
      expect(yield* s.countRuns("sha256:aa", "sha256:ii")).toBe(1)
      yield* s.upsertStep({ run_id: "r1", step_id: "a", kind: "source", status: "running", attempts: 1, output_json: null, output_hash: null, source_path: "a.ax", started_at: "t0", ended_at: null, duration_ms: null, error: null, error_kind: null })
      yield* s.upsertStep({ run_id: "r1", step_id: "a", kind: "source", status: "completed", attempts: 1, output_json: '{"Int":0}', output_hash: "h", source_path: "a.ax", started_at: "t1", ended_at: "t2", duration_ms: 5, error: null, error_kind: null })
      yield* s.upsertAttempt({ run_id: "r1", step_id: "a", attempt: 1, status: "completed", started_at: "t0", ended_at: "t2", duration_ms: 5, error: null, error_kind: null, event_log: '{"CapCall":{}}\n' })
      const c1 = yield* s.startCall({ run_id: "r1", step_id: "a", attempt: 1, seq: 0, capability: "net.fetch", args_digest: "ad" })
      expect(c1.reexecuted).toBe(false)
      const c2 = yield* s.startCall({ run_id: "r1", step_id: "a", attempt: 1, seq: 0, capability: "net.fetch", args_digest: "ad" })
      expect([c2.reexecuted, c2.executions]).toEqual([true, 2])
      yield* s.completeCall({ run_id: "r1", step_id: "a", attempt: 1, seq: 0, decision: "allowed", result_digest: "rd" })
      yield* s.ensureCall({ run_id: "r1", step_id: "a", attempt: 1, seq: 1, capability: "time.now", args_digest: "x", decision: "denied", result_digest: "e" })
      yield* s.setRunStatus("r1", "completed")
      const v = (yield* Store.readRun("r1"))!
      expect(v.run).toMatchObject({ status: "completed", live: false, counter: 0, concurrency: 4 })
      expect(v.steps).toEqual([expect.objectContaining({ status: "completed", started_at: "t0", output_json: '{"Int":0}', duration_ms: 5 })])
      expect(v.attempts[0].event_log).toBe('{"CapCall":{}}\n')
      expect(v.calls.map((c) => [c.seq, c.status, c.decision, c.reexecuted])).toEqual([[0, "completed", "allowed", true], [1, "completed", "denied", false]])
      expect(yield* Store.readRun("nope")).toBeUndefined()
    }).pipe(Effect.provide(storeLayer())))

  it.effect("step sources: stored at submit with their hash; a row left by a crashed submit of the same run id is replaced", () =>
    Effect.gen(function*() {
      const s = yield* Store.WorkflowStore
      yield* s.putSources([{ run_id: "r1", step_id: "a", path: "a.ax", source: "old", sha256: "h0" }])
      yield* s.putSources([{ run_id: "r1", step_id: "a", path: "a.ax", source: "fn main() -> Int { 1 }\n", sha256: "h1" }, { run_id: "r1", step_id: "b", path: "s/b.ax", source: "b", sha256: "h2" }])
      yield* s.createRun(run)
      const v = (yield* Store.readRun("r1"))!
      expect(v.sources.map((r) => [r.step_id, r.path, r.source, r.sha256])).toEqual([["a", "a.ax", "fn main() -> Int { 1 }\n", "h1"], ["b", "s/b.ax", "b", "h2"]])
      expect(yield* s.getSources("other")).toEqual([])
    }).pipe(Effect.provide(storeLayer())))

  it.effect("an approval is single use: the first decision wins, the second is refused", () =>
    Effect.gen(function*() {
      const s = yield* Store.WorkflowStore
      yield* s.createRun(run)
      expect(yield* s.addApproval(approval("call:d"))).toBe(true)
      expect(yield* s.addApproval({ ...approval("call:d"), token_hash: "other" })).toBe(false)
      const at = new Date().toISOString()
      const [a, b] = yield* Effect.all([
        s.decide("r1", "call:d", { status: "approved", approver: "ann", reason: null, payload_json: null, at }),
        s.decide("r1", "call:d", { status: "rejected", approver: "bob", reason: "no", payload_json: null, at })
      ], { concurrency: 2 })
      expect([a, b].filter(Boolean)).toHaveLength(1)
      expect((yield* s.getApproval("r1", "call:d"))?.token_hash).toBe("h")
      yield* s.addHistory({ run_id: "r1", approval_id: "call:d", at, actor: "bob", event: "refused", detail: "already decided" })
      expect((yield* s.getHistory("r1")).map((h) => h.event)).toEqual(["refused"])
    }).pipe(Effect.provide(storeLayer())))
})
