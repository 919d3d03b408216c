/**
 * The audit chain across a crash: the BUILT command is `kill -9`ed during live calls and resumed;
 * the evidence of the resumed run, made twice, is byte for byte the same, counts every call once
 * (marking the one that ran twice), matches an uninterrupted run call for call, and verifies with
 * re-execution.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { boruna, ensureBuilt, start } from "./support/BuiltCli.js"
import { server } from "./support/LoopbackServer.js"
import { wfDir } from "./support/WorkflowDir.js"

beforeAll(() => ensureBuilt(), 180_000)

const CALL_MS = 150
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p))

const stepSource = (origin: string, step: string): string =>
  `fn main() -> String !{net.fetch} {\n` +
  `  let a: String = net.fetch("${origin}/${step}/0")\n` +
  `  let b: String = net.fetch("${origin}/${step}/1")\n` +
  `  let c: String = net.fetch("${origin}/${step}/2")\n` +
  `  a ++ b ++ c\n}\n`

const WF = {
  schema_version: 1, name: "evcrash", version: "1",
  steps: { s1: { kind: "source", source: "s1.ax" }, s2: { kind: "source", source: "s2.ax", depends_on: ["s1"] } },
  edges: []
}

type Entry = { event: Record<string, Record<string, unknown>> }
const calls = (log: ReadonlyArray<Entry>) =>
  log.filter((e) => "CapabilityInvoked" in e.event).map((e) => {
    const c = e.event.CapabilityInvoked
    return [c.step_id, c.attempt, c.sequence, c.capability, c.args_digest, c.decision, c.result_digest].join(" ")
  })
const tags = (log: ReadonlyArray<Entry>) => log.map((e) => Object.keys(e.event)[0])

describe("evidence after kill -9 and resume", () => {
  it.scopedLive("the chain of the resumed run: made twice, the same bytes; every call once; the uninterrupted run's calls; verifies", () =>
    Effect.gen(function*() {
      const origin = yield* server((_req, _body, res) => void setTimeout(() => res.end("ok"), CALL_MS))
      const dir = wfDir(WF, { "s1.ax": stepSource(origin.origin, "s1"), "s2.ax": stepSource(origin.origin, "s2") })
      const policy = join(dir, "policy.json")
      writeFileSync(policy, JSON.stringify({ rules: { "net.fetch": { allow: true } }, net_policy: { allowed_domains: ["127.0.0.1"] } }))
      const runArgs = ["workflow", "run", dir, "--policy", policy, "--live"]

      // the uninterrupted run, and its evidence
      const refEnv = { BORUNA_DATA_DIR: tmp("ev-crash-ref-") }
      const r1 = yield* Effect.promise(() => boruna(runArgs, refEnv))
      expect(r1.code, r1.stderr).toBe(0)
      const refId = /^run (\S+)/.exec(r1.stdout)![1]
      const refOut = join(tmp("ev-crash-"), "ref")
      expect((yield* Effect.promise(() => boruna(["evidence", "create", refId, "-o", refOut], refEnv))).code).toBe(0)
      const ref = JSON.parse(readFileSync(join(refOut, "audit_log.json"), "utf8")) as Array<Entry>

      // the crashing run: killed during its calls, resumed until it completes
      const env = { BORUNA_DATA_DIR: tmp("ev-crash-data-") }
      let runId: string | undefined
      let kills = 0
      let done = false
      const delays = [900, 1300, 1100]
      for (let round = 0; round < 12 && !done; round++) {
        if (runId === undefined) {
          const list = JSON.parse((yield* Effect.promise(() => boruna(["workflow", "list", "--json"], env))).stdout || "[]") as Array<{ run_id: string }>
          runId = list[0]?.run_id
        }
        const p = start(runId === undefined ? runArgs : ["workflow", "resume", runId], env)
        const timer = kills < delays.length ? setTimeout(() => p.child.kill("SIGKILL"), delays[kills]) : undefined
        const r = yield* Effect.promise(() => p.done)
        if (timer !== undefined) clearTimeout(timer)
        if (r.signal === "SIGKILL") kills++
        runId ??= /^run (\S+)/.exec(r.stdout)?.[1]
        if (r.code === 0) done = true
      }
      expect(done).toBe(true)
      expect(kills).toBeGreaterThan(0)
      expect(runId).toBe(refId)

      // evidence made twice from the durable record: the same chain, byte for byte
      const outA = join(tmp("ev-crash-"), "a")
      const outB = join(tmp("ev-crash-"), "b")
      for (const o of [outA, outB]) {
        const c = yield* Effect.promise(() => boruna(["evidence", "create", runId!, "-o", o], env))
        expect(c.code, c.stderr).toBe(0)
      }
      const a = readFileSync(join(outA, "audit_log.json"), "utf8")
      expect(readFileSync(join(outB, "audit_log.json"), "utf8")).toBe(a)
      const got = JSON.parse(a) as Array<Entry>
      // the same events and the same calls (step, attempt, seq, capability, args, decision, result) as the uninterrupted run
      expect(tags(got)).toEqual(tags(ref))
      expect(calls(got)).toEqual(calls(ref))
      expect(calls(got)).toHaveLength(6)
      // a call that ran twice across a crash is marked, and only then
      const run = JSON.parse(readFileSync(join(outA, "run.json"), "utf8")) as { steps: Array<{ attempts: Array<{ calls: Array<{ reexecuted: boolean }> }> }> }
      const marked = run.steps.flatMap((s) => s.attempts.flatMap((x) => x.calls)).filter((c) => c.reexecuted).length
      expect(got.filter((e) => e.event.CapabilityInvoked?.reexecuted === true)).toHaveLength(marked)
      // and the bundle verifies, each step re-executed from its event log
      const v = yield* Effect.promise(() => boruna(["evidence", "verify", outA], env))
      expect(v.code, v.stdout).toBe(0)
      expect(v.stdout).toMatch(/2 step\(s\) re-executed/)
    }), 170_000)
})
