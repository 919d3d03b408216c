import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as SqlClient from "@effect/sql/SqlClient"
import { createHash } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { allowAll } from "../src/PolicyCore.js"
import * as Telemetry from "../src/Telemetry.js"
import { Net } from "../src/Capabilities.js"
import { lockDataDir, memoryEngine, sqliteEngine } from "../src/WorkflowEngine.js"
import * as Runner from "../src/WorkflowRunner.js"
import { WorkflowStore } from "../src/WorkflowStore.js"
import * as WorkflowTs from "../src/WorkflowTs.js"
import { wfDir } from "./support/WorkflowDir.js"

const GATED = {
  schema_version: 1, name: "gated", version: "1",
  steps: { gate: { kind: "approval_gate", required_role: "ops" }, after: { kind: "source", source: "a.ax", depends_on: ["gate"] } },
  edges: []
}
const FILES = { "a.ax": 'fn main() -> String !{net.fetch} { net.fetch("https://example.com/after") }\n' }
const engine = (dir: string) => Runner.layer(sqliteEngine(dir)).pipe(Layer.provide(Telemetry.off), Layer.orDie)

describe("the #6318 reconciler", () => {
  it.scopedLive("a decision recorded while its wake was lost: the next process finds the run suspended and resumes it", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "boruna-data-"))
      const r = yield* Runner.startRun({ path: wfDir(GATED, FILES), policy: allowAll }).pipe(Effect.scoped, Effect.provide(engine(dir)))
      expect(r.status).toBe("paused")
      // the decision reaches the store, then the process dies before the engine hears of it
      yield* Effect.gen(function*() {
        const store = yield* WorkflowStore
        expect(yield* store.decide(r.runId, "gate:gate", { status: "approved", approver: "ann", reason: null, payload_json: null, at: new Date().toISOString() })).toBe(true)
      }).pipe(Effect.scoped, Effect.provide(engine(dir)))
      // without the reconciler the run stays suspended: nothing is pending and nothing wakes it
      const reconciled = yield* Effect.gen(function*() {
        yield* Effect.sleep(1000)
        const before = yield* Runner.RunWorkflow.poll(yield* Runner.RunWorkflow.executionId({ runId: r.runId }))
        expect(before?._tag).toBe("Suspended")
        const ids = yield* Runner.reconcileAll
        const done = yield* Runner.waitRun(r.runId)
        return { ids, done }
      }).pipe(Effect.scoped, Effect.provide(engine(dir)))
      expect(reconciled.ids).toContain(r.runId)
      expect(reconciled.done.status).toBe("completed")
      expect(reconciled.done.outputs.after).toContain("https://example.com/after")
      const v = yield* Runner.runStatus(r.runId).pipe(Effect.scoped, Effect.provide(engine(dir)))
      expect(v.history.map((h) => h.event)).toContain("reconciled")
    }), 60_000)
})

describe("replay", () => {
  const POLICY = {
    schema_version: 1 as const, default_allow: false,
    rules: { "net.fetch": { allow: true, budget: 0 } },
    net_policy: { allowed_domains: [], allowed_methods: [], max_response_bytes: 1000, timeout_ms: 1000, allow_redirects: true, approve_methods: ["POST"] }
  }
  const ONE = { schema_version: 1, name: "post", version: "1", steps: { p: { kind: "source", source: "p.ax" } }, edges: [] }
  const prog = (url: string) => `fn main() -> String !{net.fetch} { let r: String = net.fetch("${url}")\n net.fetch("POST", "https://example.com/p", r) }\n`

  it.scopedLive("a step re-run after a pause answers completed calls from the journal: the event log equals an uninterrupted run's", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "boruna-data-"))
      const wd = wfDir(ONE, { "p.ax": prog("https://example.com/a") })
      const r = yield* Runner.startRun({ path: wd, policy: POLICY }).pipe(Effect.scoped, Effect.provide(engine(dir)))
      const p = r.pending[0]
      const done = yield* Runner.answer({ runId: r.runId, call: p.digest, token: r.tokens[p.id], as: "ann", decision: "approved" }).pipe(Effect.scoped, Effect.provide(engine(dir)))
      expect(done.status).toBe("completed")
      const v = yield* Runner.runStatus(r.runId).pipe(Effect.scoped, Effect.provide(engine(dir)))
      // the first call ran once (in the first process), the VM re-ran in the second and took it from the journal
      expect(v.calls.map((c) => [c.seq, c.executions, c.reexecuted])).toEqual([[0, 1, false], [1, 1, false]])
      const log = v.attempts[0].event_log
      // the same program with no approval needed: one uninterrupted execution
      const plain = yield* Effect.gen(function*() {
        const pr = yield* Runner.startRun({ path: wd, policy: { ...POLICY, net_policy: { ...POLICY.net_policy, approve_methods: [] } } })
        return { pr, view: yield* Runner.runStatus(pr.runId) }
      }).pipe(Effect.scoped, Effect.provide(engine(mkdtempSync(join(tmpdir(), "boruna-data-")))))
      expect(plain.pr.status).toBe("completed")
      expect(log).toBe(plain.view.attempts[0].event_log)
      expect(log.split("\n").filter(Boolean).map((l) => Object.keys(JSON.parse(l))[0])).toEqual(["CapCall", "CapResult", "CapCall", "CapResult"])
      expect(done.outputs.p).toBe(plain.pr.outputs.p)
    }), 60_000)

  it.scopedLive("a TypeScript step re-run after a pause: calls without a call site, a URL with credentials and a refusal come back byte for byte; only unusual calls journal their events", () =>
    Effect.gen(function*() {
      const body = Effect.gen(function*() {
        const a = yield* Net.fetch("https://user:secret@example.com/a")
        const b = yield* Net.fetch("https://example.com/b")
        const refused = yield* Effect.either(Net.fetch("https://example.com/c"))
        return yield* Net.request("POST", "https://example.com/p", `${a}|${b}|${refused._tag}`)
      })
      const wf = (name: string) => WorkflowTs.make({ name, version: "1", steps: { p: WorkflowTs.step({ capabilities: ["net.fetch"], budget: { max_calls: 2 }, run: () => body }) } })
      // two calls of net.fetch: the third is refused (a value to the step), and so is the POST after its approval,
      // since the re-run counts the journaled calls against the budget as the first execution did
      const policy = POLICY
      const dir = mkdtempSync(join(tmpdir(), "boruna-data-"))
      const layer = WorkflowTs.layer(wf("ts-replay"), sqliteEngine(dir)).pipe(Layer.provide(Telemetry.off), Layer.orDie)
      const r = yield* WorkflowTs.start(wf("ts-replay"), { policy }).pipe(Effect.scoped, Effect.provide(layer))
      expect(r.status).toBe("paused")
      const p = r.pending[0]
      const done = yield* Runner.answer({ runId: r.runId, call: p.digest, token: r.tokens[p.id], as: "ann", decision: "approved" }).pipe(Effect.scoped, Effect.provide(layer))
      const journal = yield* Effect.flatMap(WorkflowStore, (s) => s.getJournal(r.runId, "p", 1)).pipe(Effect.scoped, Effect.provide(layer))
      const plain = yield* Effect.gen(function*() {
        const pr = yield* WorkflowTs.start(wf("ts-replay"), { policy: { ...policy, net_policy: { ...POLICY.net_policy, approve_methods: [] } } })
        return { pr, view: yield* Runner.runStatus(pr.runId) }
      }).pipe(Effect.scoped, Effect.provide(WorkflowTs.layer(wf("ts-replay"), sqliteEngine(mkdtempSync(join(tmpdir(), "boruna-data-")))).pipe(Layer.provide(Telemetry.off), Layer.orDie)))
      expect([done.status, plain.pr.status]).toEqual(["failed", "failed"])
      expect(done.errorKind).toBe("budget_exceeded")
      const v = yield* Runner.runStatus(r.runId).pipe(Effect.scoped, Effect.provide(layer))
      const log = v.attempts[0].event_log
      expect(log).toBe(plain.view.attempts[0].event_log)
      const lines = log.split("\n").filter(Boolean)
      expect(lines.map((l) => Object.keys(JSON.parse(l))[0])).toEqual(["CapCall", "CapResult", "CapCall", "CapResult", "CapRefused", "CapRefused"])
      expect(lines[0]).toContain("https://REDACTED@example.com/a")
      expect(log).not.toContain("secret")
      expect(lines.some((l) => l.includes('"site"'))).toBe(false)
      // the calls before the pause ran once, in the first process; the re-run took them from the journal
      expect(v.calls.map((c) => [c.seq, c.executions, c.decision])).toEqual([[0, 1, "allowed"], [1, 1, "allowed"], [2, 1, "budget_exceeded"], [3, 1, "budget_exceeded"]])
      // the credentials' call and the refusals journal their events; the usual call does not
      expect(journal.map((c) => JSON.parse(c.journal!).events === undefined)).toEqual([false, true, false, false])
    }), 60_000)

  it.scopedLive("a step that breaks the determinism rule (different arguments on the re-run) fails closed with replay_diverged, naming the call", () =>
    Effect.gen(function*() {
      // code between calls that depends on something outside capabilities: a counter in this process
      let runs = 0
      const wf = WorkflowTs.make({
        name: "nondeterministic", version: "1",
        steps: {
          p: WorkflowTs.step({
            run: () =>
              Effect.gen(function*() {
                const r = yield* Net.fetch(`https://example.com/${++runs}`)
                return yield* Net.request("POST", "https://example.com/p", r)
              })
          })
        }
      })
      const dir = mkdtempSync(join(tmpdir(), "boruna-data-"))
      const layer = WorkflowTs.layer(wf, sqliteEngine(dir)).pipe(Layer.provide(Telemetry.off), Layer.orDie)
      const r = yield* WorkflowTs.start(wf, { policy: POLICY }).pipe(Effect.scoped, Effect.provide(layer))
      expect(r.status).toBe("paused")
      const p = r.pending[0]
      const done = yield* Runner.answer({ runId: r.runId, call: p.digest, token: r.tokens[p.id], as: "ann", decision: "approved" }).pipe(Effect.scoped, Effect.provide(layer))
      expect(done.status).toBe("failed")
      expect(done.errorKind).toBe("replay_diverged")
      expect(done.error).toMatch(/replay diverged at call 0 of step 'p' \(attempt 1\): the journal has net\.fetch with args [0-9a-f]{12}…, the step now calls net\.fetch with args [0-9a-f]{12}…/)
    }), 60_000)
})

describe("retry back-off", () => {
  it("the back-off doubles per attempt: 50 ms up to 2 s by default, backoff_ms up to 16 times it", () => {
    const r = (backoff_ms?: number) => ({ max_attempts: 9, on_transient: false, retry_on: [], ...(backoff_ms === undefined ? {} : { backoff_ms }) })
    expect([1, 2, 3, 6, 7].map((a) => Runner.backoff(r(), a))).toEqual([50, 100, 200, 1600, 2000])
    expect([1, 2, 5, 6].map((a) => Runner.backoff(r(1000), a))).toEqual([1000, 2000, 16000, 16000])
  })
})

describe("step sources are stored with the run", () => {
  const GATED_POST = {
    schema_version: 1, name: "gated-src", version: "1",
    steps: { gate: { kind: "approval_gate", required_role: "ops" }, after: { kind: "source", source: "steps/a.ax", depends_on: ["gate"] } },
    edges: []
  }
  const src = (url: string) => `fn main() -> String !{net.fetch} { net.fetch("${url}") }\n`

  it.scopedLive("editing or deleting the workflow directory mid-run changes nothing: the step compiles from the source stored at submit", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "boruna-data-"))
      const wd = wfDir(GATED_POST, { "steps/a.ax": src("https://example.com/original") })
      const r = yield* Runner.startRun({ path: wd, policy: allowAll }).pipe(Effect.scoped, Effect.provide(engine(dir)))
      expect(r.status).toBe("paused")
      const v0 = yield* Runner.runStatus(r.runId).pipe(Effect.scoped, Effect.provide(engine(dir)))
      expect(v0.sources).toEqual([{
        run_id: r.runId, step_id: "after", path: "steps/a.ax", source: src("https://example.com/original"),
        sha256: createHash("sha256").update(src("https://example.com/original")).digest("hex")
      }])
      // the directory is edited, then removed, while the run waits at its gate
      writeFileSync(join(wd, "steps/a.ax"), src("https://example.com/EDITED"))
      rmSync(wd, { recursive: true, force: true })
      const done = yield* Runner.answer({ runId: r.runId, step: "gate", token: r.tokens["gate:gate"], as: "ann", decision: "approved" }).pipe(Effect.scoped, Effect.provide(engine(dir)))
      expect(done.status).toBe("completed")
      expect(done.outputs.after).toContain("https://example.com/original")
      expect(done.outputs.after).not.toContain("EDITED")
    }), 60_000)

  it.scopedLive("a stored source whose text no longer matches its SHA-256 fails the step (source_mismatch), it is not compiled", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "boruna-data-"))
      const wd = wfDir(GATED_POST, { "steps/a.ax": src("https://example.com/original") })
      const r = yield* Runner.startRun({ path: wd, policy: allowAll }).pipe(Effect.scoped, Effect.provide(engine(dir)))
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE boruna_wf_sources SET source = ${src("https://example.com/tampered")} WHERE run_id = ${r.runId}`
      }).pipe(Effect.scoped, Effect.provide(engine(dir)), Effect.orDie)
      const done = yield* Runner.answer({ runId: r.runId, step: "gate", token: r.tokens["gate:gate"], as: "ann", decision: "approved" }).pipe(Effect.scoped, Effect.provide(engine(dir)))
      expect(done.status).toBe("failed")
      expect(done.errorKind).toBe("source_mismatch")
    }), 60_000)

  it.effect("a step source that cannot be read at submit is an error before the run exists", () =>
    Effect.gen(function*() {
      const wf = WorkflowTs.make({ name: "missing-ax", version: "1", steps: { a: WorkflowTs.ax("nope.ax") } })
      const e = yield* Effect.flip(WorkflowTs.start(wf, { policy: allowAll, dir: mkdtempSync(join(tmpdir(), "boruna-wfr-")) }))
      expect(e.kind).toBe("io_error")
      expect(e.message).toMatch(/^step 'a': cannot read its source .*nope\.ax: no such file$/)
      const store = yield* WorkflowStore
      expect(yield* store.listRuns()).toEqual([])
    }).pipe(Effect.scoped, Effect.provide(Runner.layer(memoryEngine).pipe(Layer.provide(Telemetry.off), Layer.orDie))))
})

describe("a token lost with a crash", () => {
  it.scopedLive("resume mints new tokens for the pending items: the old token is refused, the new one answers", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "boruna-data-"))
      const r = yield* Runner.startRun({ path: wfDir(GATED, FILES), policy: allowAll }).pipe(Effect.scoped, Effect.provide(engine(dir)))
      const old = r.tokens["gate:gate"]
      const resumed = yield* Runner.resumeRun(r.runId).pipe(Effect.scoped, Effect.provide(engine(dir)))
      expect(resumed.status).toBe("paused")
      const fresh = resumed.tokens["gate:gate"]
      expect(fresh).toBeDefined()
      expect(fresh).not.toBe(old)
      const refused = yield* Effect.either(Runner.answer({ runId: r.runId, step: "gate", token: old, as: "ann", decision: "approved" })).pipe(Effect.scoped, Effect.provide(engine(dir)))
      expect(Either.isLeft(refused) && refused.left.message).toBe("wrong token for gate:gate")
      const done = yield* Runner.answer({ runId: r.runId, step: "gate", token: fresh, as: "ann", decision: "approved" }).pipe(Effect.scoped, Effect.provide(engine(dir)))
      expect(done.status).toBe("completed")
      const v = yield* Runner.runStatus(r.runId).pipe(Effect.scoped, Effect.provide(engine(dir)))
      expect(v.history.map((h) => h.event)).toEqual(expect.arrayContaining(["token_rotated", "refused", "approved"]))
    }), 60_000)
})

describe("one process per data dir", () => {
  it.scopedLive("a second holder waits, then says who holds the data dir; a stale lock is taken over", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "boruna-lock-"))
      // a live holder: this test process under another command line
      writeFileSync(join(dir, "lock"), JSON.stringify({ pid: process.pid === 1 ? 2 : 1, command: "boruna workflow run x", since: "2026-01-01T00:00:00.000Z", host: hostname() }))
      const t0 = Date.now()
      const busy = yield* Effect.either(Effect.scoped(lockDataDir(dir, { command: "second", waitMs: 300 })))
      expect(Date.now() - t0).toBeGreaterThanOrEqual(250)
      expect(Either.isLeft(busy) && busy.left.message).toMatch(/^the data dir .* is in use by pid 1 on .* \(boruna workflow run x\) since 2026-01-01T00:00:00.000Z: wait for it to finish, or use another --data-dir$/)
      // a holder whose process is gone
      writeFileSync(join(dir, "lock"), JSON.stringify({ pid: 2 ** 22 + 17, command: "crashed", since: "x", host: hostname() }))
      yield* Effect.scoped(Effect.gen(function*() {
        yield* lockDataDir(dir, { command: "third", waitMs: 300 })
        expect(JSON.parse(readFileSync(join(dir, "lock"), "utf8"))).toMatchObject({ pid: process.pid, command: "third" })
      }))
      // released at the end of the scope: the next one gets it at once
      yield* Effect.scoped(lockDataDir(dir, { command: "fourth", waitMs: 0 }))
    }))
})
