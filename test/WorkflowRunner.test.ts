import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as SqlClient from "@effect/sql/SqlClient"
import { createHash } from "node:crypto"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { compileSource } from "../src/Compiler.js"
import * as EventLog from "../src/EventLog.js"
import { encodeEvent } from "../src/EventLogFile.js"
import * as Gateway from "../src/Gateway.js"
import { HandlerFailure } from "../src/Errors.js"
import * as Handlers from "../src/Handlers.js"
import type { Policy } from "../src/Policy.js"
import { allowAll } from "../src/PolicyCore.js"
import * as Vm from "../src/Vm.js"
import * as Telemetry from "../src/Telemetry.js"
import { memoryEngine, sqliteEngine } from "../src/WorkflowEngine.js"
import * as Runner from "../src/WorkflowRunner.js"
import { WorkflowStore } from "../src/WorkflowStore.js"
import * as WorkflowTs from "../src/WorkflowTs.js"
import { wfDir } from "./support/WorkflowDir.js"
import { Net } from "../src/Capabilities.js"

const THREE = {
  schema_version: 1, name: "three", version: "1",
  steps: {
    a: { kind: "source", source: "a.ax" },
    b: { kind: "source", source: "b.ax", inputs: { x: "a.result" }, depends_on: ["a"] },
    c: { kind: "source", source: "c.ax" }
  },
  edges: []
}
const FILES = {
  "a.ax": 'fn main() -> String !{net.fetch} { net.fetch("https://example.com/a") }\n',
  "b.ax": 'fn main() -> String !{step.input, time.now} { let t: Int = time.now()\n step.input("x") }\n',
  "c.ax": "fn main() -> Int { 7 }\n"
}

/** The event log of the same program under a plain gateway (what `boruna run --record` writes), as JSONL. */
const plainLog = (source: string, stepLog: string, policy: Policy) =>
  Effect.gen(function*() {
    // the step's source path is in the log's call sites: compile under the same name
    const file = /"file":"([^"]+)"/.exec(stepLog)?.[1] ?? "a.ax"
    const r = compileSource(file, source)
    if (!r.ok) throw new Error("compile")
    const log = EventLog.makeMemory()
    yield* Effect.either(Vm.run(r.program, {}).pipe(
      Effect.provideService(Gateway.Gateway, Gateway.make({ policy, handlers: Handlers.demoService, log, traced: false })),
      Effect.provideService(EventLog.EventLog, log)
    ))
    return log.events().map((e) => encodeEvent(e) + "\n").join("")
  })

const mem = () => Runner.layer(memoryEngine).pipe(Layer.provide(Telemetry.off), Layer.orDie)

describe("the runner on the memory engine", () => {
  it.scopedLive("runs the DAG in waves; outputs with their sha256; step.input reads upstream", () =>
    Effect.gen(function*() {
      const r = yield* Runner.startRun({ path: wfDir(THREE, FILES), policy: allowAll })
      expect(r.status).toBe("completed")
      expect(r.outputs.b).toBe(JSON.stringify({ String: '{"mock": true, "url": "https://example.com/a"}' }))
      expect(r.outputs.c).toBe('{"Int":7}')
      const v = yield* Runner.runStatus(r.runId)
      expect(v.steps.map((s) => [s.step_id, s.status, s.attempts])).toEqual([["a", "completed", 1], ["b", "completed", 1], ["c", "completed", 1]])
      expect(v.steps.find((s) => s.step_id === "c")?.output_hash).toBe(createHash("sha256").update('{"Int":7}').digest("hex"))
      expect(v.calls.map((c) => [c.step_id, c.seq, c.capability, c.decision])).toEqual([["a", 0, "net.fetch", "allowed"], ["b", 0, "time.now", "allowed"], ["b", 1, "step.input", "allowed"]])
      const logA = v.attempts.find((a) => a.step_id === "a")!.event_log
      expect(logA).toBe(yield* plainLog(FILES["a.ax"], logA, allowAll))
      expect(logA.split("\n").filter(Boolean).map((l) => Object.keys(JSON.parse(l))[0])).toEqual(["CapCall", "CapResult"])
    }).pipe(Effect.provide(mem())))

  it.scopedLive("a failed step fails the run and its dependents are skipped; denied is exit-4 class", () =>
    Effect.gen(function*() {
      const r = yield* Runner.startRun({ path: wfDir(THREE, FILES), policy: { schema_version: 1, default_allow: false, rules: {} } })
      expect(r.status).toBe("failed")
      expect(r.errorKind).toBe("denied")
      const v = yield* Runner.runStatus(r.runId)
      expect(v.steps.map((s) => [s.step_id, s.status])).toEqual([["a", "failed"], ["b", "skipped"], ["c", "completed"]])
      // the refused call is in the step's log exactly as a plain run logs it
      expect(v.attempts.find((a) => a.step_id === "a")!.event_log).toBe(yield* plainLog(FILES["a.ax"], v.attempts.find((a) => a.step_id === "a")!.event_log, { schema_version: 1, default_allow: false, rules: {} }))
    }).pipe(Effect.provide(mem())))
})

describe("the runner on the SQLite engine", () => {
  it.scopedLive("the same run, durable, on <data-dir>/engine.db", () =>
    Effect.gen(function*() {
      const r = yield* Runner.startRun({ path: wfDir(THREE, FILES), policy: allowAll })
      expect(r.status).toBe("completed")
      const store = yield* WorkflowStore
      expect((yield* store.getRun(r.runId))?.status).toBe("completed")
    }).pipe(Effect.provide(Runner.layer(sqliteEngine(mkdtempSync(join(tmpdir(), "boruna-data-")))).pipe(Layer.provide(Telemetry.off), Layer.orDie))), 30_000)

  it.scopedLive("boruna's engine layer: a step's calls are journaled in the store, not sent to the engine (its messages do not grow with the calls); live calls are written before they return", () => {
    const prog = (n: number) => `fn go(n: Int, acc: Int) -> Int !{time.now} { if n == 0 { acc } else { go(n - 1, acc + time.now() - time.now() + 1) } }\nfn main() -> Int !{time.now} { go(${n}, 0) }\n`
    // a handler that does not answer at once (as live handlers do): when it runs, its call is on record as started
    const sqlRef: { current: SqlClient.SqlClient | undefined } = { current: undefined }
    const started: Array<number> = []
    const slowNow: Handlers.Handler = () =>
      Effect.flatMap(Effect.orDie(sqlRef.current!<{ n: number }>`SELECT COUNT(*) AS n FROM boruna_wf_calls WHERE status = 'started'`), (r) =>
        Effect.sync(() => {
          started.push(Number(r[0].n))
          return 1_700_000_000
        }))
    return Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      sqlRef.current = sql
      const store = yield* WorkflowStore
      const messages = () => Effect.map(sql<{ n: number }>`SELECT COUNT(*) AS n FROM cluster_messages`, (r) => Number(r[0].n))
      const before = yield* messages()
      const one = yield* Runner.startRun({ path: wfDir({ ...THREE, name: "one", steps: { s: { kind: "source", source: "s.ax" } } }, { "s.ax": prog(1) }), policy: allowAll })
      const afterOne = yield* messages()
      const many = yield* Runner.startRun({ path: wfDir({ ...THREE, name: "many", steps: { s: { kind: "source", source: "s.ax" } } }, { "s.ax": prog(200) }), policy: allowAll })
      const afterMany = yield* messages()
      expect([one.status, many.status]).toEqual(["completed", "completed"])
      expect(afterMany - afterOne).toBe(afterOne - before)
      const calls = (yield* store.getCalls(many.runId)).filter((c) => c.step_id === "s")
      expect(calls).toHaveLength(400)
      expect(calls.every((c) => c.status === "completed" && c.executions === 1 && !c.reexecuted)).toBe(true)
      // each call was on record (started: its own row, the only one) before its handler ran
      expect(started).toHaveLength(402)
      expect(started.every((n) => n === 1)).toBe(true)
    }).pipe(Effect.provide(Runner.layer(sqliteEngine(mkdtempSync(join(tmpdir(), "boruna-data-"))), Runner.makeEnv({
      handlers: () => Effect.succeed(Handlers.override(Handlers.demoService, { "time.now": slowNow }))
    })).pipe(Layer.provide(Telemetry.off), Layer.orDie)))
  }, 60_000)
})

describe("calls answered at once", () => {
  it.scopedLive("are written with the next durability point, and at the latest a batch of 500 at a time: a long step's calls are on record as it goes", () => {
    const prog = `fn go(n: Int, acc: Int) -> Int !{time.now} { if n == 0 { acc } else { go(n - 1, acc + time.now()) } }\nfn main() -> Int !{time.now} { go(1200, 0) }\n`
    const sqlRef: { current: SqlClient.SqlClient | undefined } = { current: undefined }
    const seen = new Map<number, number>()
    let n = 0
    // answers at once (an Exit, as demo handlers do); looks at the store (synchronously) as it answers
    const now: Handlers.Handler = () => {
      n++
      if (n === 1 || n === 499 || n === 501 || n === 1001 || n === 1200) {
        seen.set(n, Effect.runSync(Effect.map(Effect.orDie(sqlRef.current!<{ n: number }>`SELECT COUNT(*) AS n FROM boruna_wf_calls`), (r) => Number(r[0].n))))
      }
      return Exit.succeed(n)
    }
    return Effect.gen(function*() {
      sqlRef.current = yield* SqlClient.SqlClient
      const r = yield* Runner.startRun({ path: wfDir({ ...THREE, name: "long", steps: { s: { kind: "source", source: "s.ax" } } }, { "s.ax": prog }), policy: allowAll })
      expect(r.status).toBe("completed")
      expect(JSON.parse(r.outputs.s)).toEqual({ Int: (1200 * 1201) / 2 })
      // (the count when call k runs: calls before it that are written)
      expect(Object.fromEntries(seen)).toEqual({ 1: 0, 499: 0, 501: 500, 1001: 1000, 1200: 1000 })
      const calls = yield* (yield* WorkflowStore).getCalls(r.runId)
      expect(calls.map((c) => c.seq)).toEqual(Array.from({ length: 1200 }, (_, i) => i))
      expect(calls.every((c) => c.status === "completed" && c.executions === 1)).toBe(true)
    }).pipe(Effect.provide(Runner.layer(sqliteEngine(mkdtempSync(join(tmpdir(), "boruna-data-"))), Runner.makeEnv({
      handlers: () => Effect.succeed(Handlers.override(Handlers.demoService, { "time.now": now }))
    })).pipe(Layer.provide(Telemetry.off), Layer.orDie)))
  }, 60_000)
})

describe("retries, timeouts, concurrency, cancel", () => {
  const withHandlers = (handlers: Partial<Record<"net.fetch", Handlers.Handler>>) =>
    Runner.layer(memoryEngine, Runner.makeEnv({ handlers: () => Effect.succeed(Handlers.override(Handlers.demoService, handlers)) })).pipe(Layer.provide(Telemetry.off), Layer.orDie)
  const FETCH = { "f.ax": 'fn main() -> String !{net.fetch} { net.fetch("https://example.com/f") }\n' }

  it.scopedLive("a step failing with a retry_on class is retried (a new attempt, its own journal); other classes are not", () => {
    let calls = 0
    const flaky: Handlers.Handler = () => Effect.suspend(() => (++calls < 3 ? Effect.fail(new HandlerFailure({ message: "flaky" })) : Effect.succeed("ok")))
    return Effect.gen(function*() {
      const wf = { schema_version: 1, name: "retry", version: "1", steps: { f: { kind: "source", source: "f.ax", retry: { max_attempts: 3, retry_on: ["runtime_error"] } } }, edges: [] }
      const r = yield* Runner.startRun({ path: wfDir(wf, FETCH), policy: allowAll })
      expect(r.status).toBe("completed")
      const v = yield* Runner.runStatus(r.runId)
      expect(v.steps[0]).toMatchObject({ status: "completed", attempts: 3 })
      expect(v.attempts.map((a) => [a.attempt, a.status, a.error_kind])).toEqual([[1, "failed", "runtime_error"], [2, "failed", "runtime_error"], [3, "completed", null]])
      calls = 0
      const none = { ...wf, name: "noretry", steps: { f: { ...wf.steps.f, retry: { max_attempts: 3, retry_on: ["wall_time_exceeded"] } } } }
      const r2 = yield* Runner.startRun({ path: wfDir(none, FETCH), policy: allowAll })
      expect(r2.status).toBe("failed")
      expect((yield* Runner.runStatus(r2.runId)).steps[0].attempts).toBe(1)
    }).pipe(Effect.provide(withHandlers({ "net.fetch": flaky })))
  })

  it.scopedLive("timeout_ms bounds each attempt: wall_time_exceeded", () =>
    Effect.gen(function*() {
      const wf = { schema_version: 1, name: "slow", version: "1", steps: { f: { kind: "source", source: "f.ax", timeout_ms: 100 } }, edges: [] }
      const r = yield* Runner.startRun({ path: wfDir(wf, FETCH), policy: allowAll })
      expect(r.status).toBe("failed")
      expect(r.errorKind).toBe("wall_time_exceeded")
    }).pipe(Effect.provide(withHandlers({ "net.fetch": () => Effect.as(Effect.sleep(2000), "late") }))))

  it.scopedLive("--concurrency bounds the steps of a wave running at once", () => {
    let now = 0
    let peak = 0
    const slow: Handlers.Handler = () =>
      Effect.acquireUseRelease(Effect.sync(() => (peak = Math.max(peak, ++now))), () => Effect.as(Effect.sleep(150), "x"), () => Effect.sync(() => now--))
    return Effect.gen(function*() {
      const steps = Object.fromEntries(["a", "b", "c", "d", "e"].map((id) => [id, { kind: "source", source: "f.ax" }]))
      const r = yield* Runner.startRun({ path: wfDir({ schema_version: 1, name: "wide", version: "1", steps, edges: [] }, FETCH), policy: allowAll, concurrency: 2 })
      expect(r.status).toBe("completed")
      expect(peak).toBe(2)
    }).pipe(Effect.provide(withHandlers({ "net.fetch": slow })))
  })

  it.scopedLive("cancel: a paused run is interrupted and marked cancelled", () =>
    Effect.gen(function*() {
      const wf = { schema_version: 1, name: "gate", version: "1", steps: { g: { kind: "approval_gate", required_role: "x" } }, edges: [] }
      const r = yield* Runner.startRun({ path: wfDir(wf, {}), policy: allowAll })
      expect(r.status).toBe("paused")
      const c = yield* Runner.cancelRun(r.runId)
      expect(c.status).toBe("cancelled")
      expect((yield* Runner.runStatus(r.runId)).run.status).toBe("cancelled")
    }).pipe(Effect.provide(mem())))
})

describe("a step's budget", () => {
  it.scopedLive("max_calls counts every call of the step: the third time.now of a two-call budget is budget_exceeded, and the journal and event log say so", () =>
    Effect.gen(function*() {
      const wf = {
        schema_version: 1, name: "budget", version: "1",
        steps: { a: { kind: "source", source: "a.ax", capabilities: ["time.now"], budget: { max_calls: 2 } } },
        edges: []
      }
      const src = "fn main() -> Int !{time.now} {\n  let a: Int = time.now()\n  let b: Int = time.now()\n  let c: Int = time.now()\n  a + b + c\n}\n"
      const r = yield* Runner.startRun({ path: wfDir(wf, { "a.ax": src }), policy: allowAll })
      expect(r.status).toBe("failed")
      expect(r.errorKind).toBe("budget_exceeded")
      const v = yield* Runner.runStatus(r.runId)
      expect(v.calls.map((c) => [c.seq, c.capability, c.decision])).toEqual([[0, "time.now", "allowed"], [1, "time.now", "allowed"], [2, "time.now", "budget_exceeded"]])
      const log = v.attempts.find((a) => a.step_id === "a")!.event_log
      expect(log.split("\n").filter(Boolean).map((l) => Object.keys(JSON.parse(l))[0])).toEqual(["CapCall", "CapResult", "CapCall", "CapResult", "CapRefused"])
    }).pipe(Effect.provide(mem())))
})

describe("concurrent calls of a TypeScript step", () => {
  it.scopedLive("calls in flight at once: each is journaled with its own events, its own intent and its own budget take (max_calls 4 of 6)", () => {
    // a handler that does not answer at once, later calls sooner: the calls overlap and end out of order
    const slow: Handlers.Handler = (args) => Effect.as(Effect.sleep(60 - 10 * Number(String(args[0]).slice(-1))), `got ${String(args[0])}`)
    return Effect.gen(function*() {
      const urls = [0, 1, 2, 3, 4, 5].map((i) => `https://example.com/${i}`)
      const wf = WorkflowTs.make({
        name: "fanout", version: "1",
        steps: {
          f: WorkflowTs.step({
            capabilities: ["net.fetch"], budget: { max_calls: 4 },
            run: () => Effect.map(Effect.all(urls.map((u) => Effect.either(Net.fetch(u))), { concurrency: "unbounded" }), (rs) => rs.map((r) => r._tag === "Right" ? r.right : `refused: ${r.left.kind}`))
          })
        }
      })
      const r = yield* WorkflowTs.start(wf, { policy: allowAll })
      expect(r.status, r.error ?? "").toBe("completed")
      expect(JSON.parse(r.outputs.f)).toEqual({ List: [...urls.slice(0, 4).map((u) => ({ String: `got ${u}` })), { String: "refused: budget_exceeded" }, { String: "refused: budget_exceeded" }] })
      const store = yield* WorkflowStore
      const journal = yield* store.getJournal(r.runId, "f", 1)
      expect(journal.map((c) => [c.seq, c.decision, c.status, c.executions])).toEqual([0, 1, 2, 3, 4, 5].map((i) => [i, i < 4 ? "allowed" : "budget_exceeded", "completed", 1]))
      // each call's journal holds its own answer (a refusal, its own events)
      for (const c of journal) {
        const j = JSON.parse(c.journal!) as { result?: unknown; events?: Array<string> }
        if (c.seq < 4) expect(j).toEqual({ decision: "allowed", ok: true, result: { String: `got ${urls[c.seq]}` } })
        else {
          const events = j.events!.map((l) => JSON.parse(l) as Record<string, { args?: Array<{ String: string }> }>)
          expect(events.map((e) => Object.keys(e)[0])).toEqual(["CapRefused"])
          expect(events[0].CapRefused.args).toEqual([{ String: urls[c.seq] }])
        }
      }
      // the step's event log: every call's events once, a call's CapCall next to its own result, in the order the calls ended
      const log = (yield* Runner.runStatus(r.runId)).attempts[0].event_log.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, { args?: Array<{ String: string }>; result?: { String: string } }>)
      expect(log).toHaveLength(4 * 2 + 2)
      for (const [i, u] of urls.slice(0, 4).entries()) {
        const at = log.findIndex((e) => e.CapCall?.args?.[0].String === u)
        expect(at, `CapCall ${i}`).toBeGreaterThanOrEqual(0)
        expect(log[at + 1].CapResult?.result).toEqual({ String: `got ${u}` })
      }
      expect(log.filter((e) => e.CapRefused !== undefined).map((e) => e.CapRefused.args?.[0].String).sort()).toEqual(urls.slice(4))
    }).pipe(Effect.provide(WorkflowTs.layer(WorkflowTs.make({ name: "unused", version: "1", steps: {} }), memoryEngine, Runner.makeEnv({
      handlers: () => Effect.succeed(Handlers.override(Handlers.demoService, { "net.fetch": slow }))
    })).pipe(Layer.provide(Telemetry.off), Layer.orDie)))
  })
})

describe("a defect that keeps coming back", () => {
  it.scopedLive("a step that dies on every attempt: the run (suspended by SuspendOnFailure) is resumed a few times, then reported failed with the defect's message, not waited on forever", () =>
    Effect.gen(function*() {
      let attempts = 0
      const wf = WorkflowTs.make({
        name: "dies", version: "1",
        steps: { a: WorkflowTs.step({ run: () => Effect.suspend(() => { attempts++; return Effect.die(new Error("boom in step a")) }) }) }
      })
      const r = yield* WorkflowTs.start(wf, { policy: allowAll }).pipe(Effect.timeout("40 seconds"))
      expect(r.status).toBe("failed")
      expect(r.errorKind).toBe("internal")
      expect(r.error).toContain("Error: boom in step a")
      expect(r.error).toContain(`boruna workflow resume ${r.runId}`)
      expect(r.error).not.toMatch(/\n|    at /)
      // the first run and the resumes each ran the step again
      expect(attempts).toBeGreaterThanOrEqual(2)
    }).pipe(Effect.provide(Runner.layer(memoryEngine).pipe(Layer.provide(Telemetry.off), Layer.orDie))), 60_000)
})
