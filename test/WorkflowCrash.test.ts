/**
 * Crash safety, end to end: a workflow with live net.fetch calls against a loopback origin that
 * counts requests; the BUILT command is `kill -9`ed at seeded points (during calls, between them,
 * while the run is pausing), resumed each time, and the result compared with an uninterrupted run.
 *
 * Runtime bound: CRASH_POINTS seeded kill points (20 by default, each the Nth origin request of a
 * process plus a seeded delay, or a seeded time for a process with no call left; BORUNA_CRASH_POINTS=N
 * for fewer on a slow machine): each process start costs ~1 s on a loaded two-core machine. A
 * point past the end of a process's work finds it gone, so at least 60% of the points must hit.
 * A call can be in flight at several crashes: each crash adds at most one request.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { boruna, ensureBuilt, start } from "./support/BuiltCli.js"
import { server } from "./support/LoopbackServer.js"
import * as OtlpReceiver from "./support/OtlpReceiver.js"
import { wfDir } from "./support/WorkflowDir.js"

beforeAll(() => ensureBuilt(), 180_000)

const CRASH_POINTS = Number(process.env.BORUNA_CRASH_POINTS ?? 20)
const CALL_MS = 150

const CALLS = 8
const stepSource = (origin: string, step: string): string =>
  `fn main() -> String !{net.fetch} {\n` +
  Array.from({ length: CALLS }, (_, i) => `  let r${i}: String = net.fetch("${origin}/${step}/${i}")\n`).join("") +
  `  ${Array.from({ length: CALLS }, (_, i) => `r${i}`).join(" ++ ")}\n}\n`

const WF = {
  schema_version: 1, name: "crash", version: "1",
  steps: {
    s1: { kind: "source", source: "s1.ax" },
    gate: { kind: "approval_gate", required_role: "ops", depends_on: ["s1"] },
    s2: { kind: "source", source: "s2.ax", depends_on: ["gate"] }
  },
  edges: []
}

interface Show {
  run: { status: string; trace_id: string }
  steps: Array<{ step_id: string; status: string; output_json: string | null }>
  attempts: Array<{ step_id: string; attempt: number; event_log: string }>
  calls: Array<{ step_id: string; seq: number; reexecuted: boolean; executions: number }>
  approvals: Array<{ id: string; status: string }>
}

const tokenOf = (stdout: string): string | undefined => /token: (\S+)\s+\(shown once\)/.exec(stdout)?.[1]

/** A seeded PRNG (LCG) so every run of the test kills at the same points. */
const prng = (seed: number) => () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff
  return seed / 0x7fffffff
}

describe("kill -9 at seeded points", () => {
  it.scopedLive(`${CRASH_POINTS} crashes: completed calls reached the origin once, the in-flight one at most twice per crash; outputs and event logs equal an uninterrupted run's; one trace`, () =>
    Effect.gen(function*() {
      const counts = new Map<string, number>()
      // kill points are tied to the origin's traffic (the Nth request of a process, then a seeded
      // delay: inside that call or just after it), so they hit however fast the machine is
      let onRequest: (() => void) | undefined
      const origin = yield* server((req, _body, res) => {
        counts.set(req.url ?? "", (counts.get(req.url ?? "") ?? 0) + 1)
        onRequest?.()
        setTimeout(() => res.end(`ok ${req.url}`), CALL_MS)
      })
      const dir = wfDir(WF, { "s1.ax": stepSource(origin.origin, "s1"), "s2.ax": stepSource(origin.origin, "s2") })
      const policy = join(dir, "policy.json")
      writeFileSync(policy, JSON.stringify({ rules: { "net.fetch": { allow: true } }, net_policy: { allowed_domains: ["127.0.0.1"] } }))
      const runArgs = ["workflow", "run", dir, "--policy", policy, "--live"]

      // the uninterrupted run
      const refEnv = { BORUNA_DATA_DIR: mkdtempSync(join(tmpdir(), "boruna-crash-ref-")) }
      const r1 = yield* Effect.promise(() => boruna(runArgs, refEnv))
      expect(r1.code, r1.stderr).toBe(75)
      const refId = /^run (\S+)/.exec(r1.stdout)![1]
      const r2 = yield* Effect.promise(() => boruna(["workflow", "approve", refId, "gate", "--token", tokenOf(r1.stdout)!, "--as", "ops"], refEnv))
      expect(r2.code, r2.stderr).toBe(0)
      const ref = JSON.parse((yield* Effect.promise(() => boruna(["workflow", "show", refId, "--json"], refEnv))).stdout) as Show
      expect([...counts.values()].every((n) => n === 1)).toBe(true)
      counts.clear()

      // the crashing run, its spans exported to a loopback OTLP receiver
      const rx = yield* OtlpReceiver.scoped()
      const env = { BORUNA_DATA_DIR: mkdtempSync(join(tmpdir(), "boruna-crash-")), OTEL_EXPORTER_OTLP_ENDPOINT: rx.url }
      const rand = prng(20261201)
      let runId: string | undefined
      let token: string | undefined
      let kills = 0
      let done = false
      for (let round = 0; round < CRASH_POINTS + 12 && !done; round++) {
        let args: Array<string>
        if (runId === undefined) {
          const list = JSON.parse((yield* Effect.promise(() => boruna(["workflow", "list", "--json"], env))).stdout || "[]") as Array<{ run_id: string }>
          runId = list[0]?.run_id
        }
        const id = runId
        if (id === undefined) args = runArgs
        else {
          const show = JSON.parse((yield* Effect.promise(() => boruna(["workflow", "show", id, "--json"], env))).stdout) as Show
          const gatePending = show.approvals.some((a) => a.id === "gate:gate" && a.status === "pending")
          args = gatePending && token !== undefined
            ? ["workflow", "approve", id, "gate", "--token", token, "--as", "ops"]
            : ["workflow", "resume", id]
        }
        const p = start(args, env)
        const timers: Array<ReturnType<typeof setTimeout>> = []
        const kill = () => p.child.kill("SIGKILL")
        if (round < CRASH_POINTS) {
          const nth = 1 + Math.floor(rand() * 3)
          const delay = Math.floor(rand() * (CALL_MS + 60))
          // a process with no call left to make (pausing, resuming past the gate) is killed by time
          const fallback = 300 + Math.floor(rand() * 900)
          let seen = 0
          onRequest = () => {
            if (++seen === nth) timers.push(setTimeout(kill, delay))
          }
          timers.push(setTimeout(() => (seen === 0 ? kill() : undefined), fallback))
        } else onRequest = undefined
        const r = yield* Effect.promise(() => p.done)
        for (const t of timers) clearTimeout(t)
        onRequest = undefined
        if (r.signal === "SIGKILL") kills++
        runId ??= /^run (\S+)/.exec(r.stdout)?.[1]
        token = tokenOf(r.stdout) ?? (args[2] === "approve" && r.signal !== "SIGKILL" ? undefined : token)
        if (r.code === 0) done = true
        else if (r.signal !== "SIGKILL") expect([75, 4], `${args.join(" ")}: ${r.stderr}`).toContain(r.code)
        if (done && process.env.BORUNA_CRASH_REPORT === "1") console.log(`crash test: ${kills} kills in ${round + 1} processes; extra origin requests: see below`)
      }
      expect(done).toBe(true)
      // a seeded point past the end of a process's work finds it gone: most points must have hit
      expect(kills).toBeGreaterThanOrEqual(Math.ceil(CRASH_POINTS * 0.6))
      const got = JSON.parse((yield* Effect.promise(() => boruna(["workflow", "show", runId!, "--json"], env))).stdout) as Show

      // every call reached the origin at least once; a crash adds at most one request (the call in
      // flight when it hit: at most twice per crash), and a call that ran again says so in its record
      const paths = ["s1", "s2"].flatMap((st) => Array.from({ length: CALLS }, (_, i) => `/${st}/${i}`)).sort()
      let extra = 0
      for (const path of paths) {
        const n = counts.get(path) ?? 0
        expect(n, path).toBeGreaterThanOrEqual(1)
        extra += n - 1
        const [step, seq] = path.slice(1).split("/")
        const rec = got.calls.find((c) => c.step_id === step && c.seq === Number(seq))!
        expect(n, path).toBeLessThanOrEqual(rec.executions)
        if (n > 1) expect(rec.reexecuted, path).toBe(true)
      }
      expect(extra).toBeLessThanOrEqual(kills)
      if (process.env.BORUNA_CRASH_REPORT === "1") console.log(`crash test: ${extra} call(s) re-executed; origin counts ${JSON.stringify([...counts])}`)
      expect([...counts.keys()].sort()).toEqual(paths)
      // the final outputs and the step event logs equal the uninterrupted run's
      expect(got.steps.map((s) => [s.step_id, s.status, s.output_json])).toEqual(ref.steps.map((s) => [s.step_id, s.status, s.output_json]))
      const logs = (v: Show) => Object.fromEntries(v.attempts.filter((a) => a.event_log !== "").map((a) => [`${a.step_id}/${a.attempt}`, a.event_log]))
      expect(logs(got)).toEqual(logs(ref))
      // one trace: every span that reached the receiver (a killed process loses its unexported ones) is the run's
      const ours = rx.spans().filter((s) => s.name.startsWith("boruna."))
      expect(ours.length).toBeGreaterThan(0)
      expect(new Set(ours.map((s) => s.traceId))).toEqual(new Set([got.run.trace_id]))
    }), 170_000)
})

describe("kill -9 during a retry back-off", () => {
  it.scopedLive("the resumed run waits only what remained of the back-off (the engine's durable clock), not a new one", () =>
    Effect.gen(function*() {
      // the first request outlives the step's timeout (attempt 1: wall_time_exceeded), later ones answer at once
      const arrivals: Array<number> = []
      const origin = yield* server((_req, _body, res) => {
        arrivals.push(Date.now())
        if (arrivals.length === 1) setTimeout(() => res.end("late"), 3000)
        else res.end("ok")
      })
      const wf = {
        schema_version: 1, name: "backoff", version: "1",
        steps: { f: { kind: "source", source: "f.ax", timeout_ms: 300, retry: { max_attempts: 2, retry_on: ["wall_time_exceeded"], backoff_ms: 4000 } } },
        edges: []
      }
      const dir = wfDir(wf, { "f.ax": `fn main() -> String !{net.fetch} { net.fetch("${origin.origin}/f") }\n` })
      const policy = join(dir, "policy.json")
      writeFileSync(policy, JSON.stringify({ rules: { "net.fetch": { allow: true } }, net_policy: { allowed_domains: ["127.0.0.1"] } }))
      const env = { BORUNA_DATA_DIR: mkdtempSync(join(tmpdir(), "boruna-backoff-")) }
      const p = start(["workflow", "run", dir, "--policy", policy, "--live"], env)
      // killed 1.5 s into the 4 s back-off (attempt 1 fails 300 ms after its request)
      let exited: { code: number | null; stderr: string } | undefined
      void p.done.then((r) => (exited = r))
      for (let i = 0; arrivals.length === 0 && exited === undefined && i < 600; i++) yield* Effect.sleep(50)
      expect(arrivals, exited?.stderr).toHaveLength(1)
      const failedAt = arrivals[0] + 300
      yield* Effect.sleep(Math.max(0, failedAt + 1500 - Date.now()))
      p.child.kill("SIGKILL")
      const killed = yield* Effect.promise(() => p.done)
      expect(killed.signal, `${killed.code} ${killed.stdout} ${killed.stderr}`).toBe("SIGKILL")
      expect(arrivals).toHaveLength(1)
      const runId = /^run (\S+)/.exec(killed.stdout)![1]
      const resumedAt = Date.now()
      const r = yield* Effect.promise(() => boruna(["workflow", "resume", runId], env))
      expect(r.code, r.stderr).toBe(0)
      expect(arrivals).toHaveLength(2)
      // the whole back-off was kept (4 s after the failure) ...
      expect(arrivals[1] - failedAt).toBeGreaterThanOrEqual(3900)
      // ... and after the resume only what remained of it (a new back-off would be 4 s and more)
      expect(arrivals[1] - resumedAt).toBeLessThan(3800)
    }), 60_000)
})
