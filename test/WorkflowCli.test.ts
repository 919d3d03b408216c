/** `boruna workflow …` end to end: the BUILT command, its output and exit codes (docs/workflows.md). */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { mkdtempSync, writeFileSync } from "node:fs"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { boruna, ensureBuilt, ROOT } from "./support/BuiltCli.js"
import { wfDir } from "./support/WorkflowDir.js"

beforeAll(() => ensureBuilt(), 180_000)

const data = () => ({ BORUNA_DATA_DIR: mkdtempSync(join(tmpdir(), "boruna-cli-data-")) })
const EXAMPLE = join(ROOT, "examples", "workflow")

describe("workflow validate", () => {
  it("every problem at once, one error line each, JSON paths and file:line:col; exit 3", async () => {
    const d = wfDir({
      schema_version: 1, name: "n", version: "1",
      steps: { a: { kind: "source", source: "a.ax", depends_on: ["b"] }, b: { kind: "source", source: "a.ax", depends_on: ["a"] }, c: { kind: "source", source: "bad.ax", depends_on: ["nope"] } },
      edges: []
    }, { "a.ax": "fn main() -> Int { 1 }\n", "bad.ax": "fn main() -> Int {\n  true\n}\n" })
    const r = await boruna(["workflow", "validate", d])
    expect(r.code).toBe(3)
    const lines = r.stderr.trimEnd().split("\n")
    expect(lines).toContain(`error[unknown_step]: ${d}/workflow.json: $.steps.c.depends_on[0]: unknown step 'nope'`)
    expect(lines).toContain(`error[cycle_detected]: ${d}/workflow.json: $.edges: cycle detected: a -> b -> a (resolved 1 of 3 steps)`)
    expect(lines.find((l) => l.includes("error[compile_error]"))).toMatch(new RegExp(`^${d}/bad\\.ax:2:\\d+: error\\[compile_error\\]: .*\\$\\.steps\\.c\\.source: step 'c': E\\d{3} .*$`))
    expect(r.stderr).not.toMatch(/\n\s+at /)
    const j = await boruna(["workflow", "validate", d, "--json"])
    expect(j.code).toBe(3)
    expect(JSON.parse(j.stdout).problems.length).toBe(lines.length)
  })

  it("the example validates and prints its order", async () => {
    const r = await boruna(["workflow", "validate", EXAMPLE])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain("order: fetch, summarise, review, publish")
  })
})

describe("workflow run, approve, show, list", () => {
  it("the example: paused at the gate (75), then at the POST (75); refused answers exit 4; approved it completes (0)", async () => {
    const env = data()
    const run = await boruna(["workflow", "run", EXAMPLE, "--policy", join(EXAMPLE, "policy.json"), "--input", "url=https://example.com/page"], env)
    expect(run.code, run.stderr).toBe(75)
    const lines = run.stdout.split("\n")
    const runId = /^run ([0-9a-f]{16})$/.exec(lines[0])![1]
    expect(lines.slice(1, 5)).toEqual(["step fetch running", "step fetch completed", "step summarise running", "step summarise completed"])
    expect(run.stdout).toContain("approval gate 'review' (role: editor)")
    const gateToken = /token: (\S+)\s+\(shown once\)/.exec(run.stdout)![1]
    expect(run.stdout).toContain(`boruna workflow approve ${runId} review --token ${gateToken} --as NAME`)

    const wrong = await boruna(["workflow", "approve", runId, "review", "--token", "nope", "--as", "eve"], env)
    expect(wrong.code).toBe(4)
    expect(wrong.stderr.trim()).toBe("error[approval_refused]: wrong token for gate:review")

    const gate = await boruna(["workflow", "approve", runId, "review", "--token", gateToken, "--as", "ann"], env)
    expect(gate.code, gate.stderr).toBe(75)
    expect(gate.stdout).toContain('call net.fetch("POST", "https://api.example.com/posts", ')
    const digest = /digest ([0-9a-f]{64})/.exec(gate.stdout)![1]
    const callToken = /token: (\S+)\s+\(shown once\)/.exec(gate.stdout)![1]

    const both = await boruna(["workflow", "approve", runId, "publish", "--call", digest, "--token", callToken, "--as", "ann"], env)
    expect(both.code).toBe(2)
    const again = await boruna(["workflow", "approve", runId, "review", "--token", gateToken, "--as", "bob"], env)
    expect(again.code).toBe(4)
    expect(again.stderr).toMatch(/already approved by ann at .*: an answer is single use/)

    const done = await boruna(["workflow", "approve", runId, "--call", digest, "--token", callToken, "--as", "ann", "--reason", "ship it"], env)
    expect(done.code, done.stderr).toBe(0)
    expect(done.stdout).toContain("step publish completed")
    expect(done.stdout).toContain("completed\n")

    const show = await boruna(["workflow", "show", runId], env)
    expect(show.code).toBe(0)
    expect(show.stdout).toMatch(/publish <- review, summarise {2}completed {2}attempts 1/)
    expect(show.stdout).toContain("refused by eve gate:review: wrong token for gate:review")
    expect(show.stdout).toContain(`approved by ann call:${digest}: ship it`)
    const showJson = JSON.parse((await boruna(["workflow", "show", runId, "--json"], env)).stdout)
    expect(showJson.steps.map((s: { status: string }) => s.status)).toEqual(["completed", "completed", "completed", "completed"])
    expect(JSON.stringify(showJson)).not.toContain(callToken)
    const list = JSON.parse((await boruna(["workflow", "list", "--json", "--status", "completed"], env)).stdout)
    expect(list).toEqual([expect.objectContaining({ run_id: runId, status: "completed", workflow: "fetch-review-publish" })])
  }, 60_000)

  it("FILE.ax runs as a one-step workflow; denied exits 4, a runtime error 1", async () => {
    const env = data()
    const empty = await boruna(["workflow", "list"], env)
    expect([empty.code, empty.stdout]).toEqual([0, "no runs\n"])
    const d = wfDir({}, { "ok.ax": "fn main() -> Int { 41 + 1 }\n", "net.ax": 'fn main() -> String !{net.fetch} { net.fetch("https://x.example") }\n', "boom.ax": "fn main() -> Int { 1 / 0 }\n" })
    const ok = await boruna(["workflow", "run", join(d, "ok.ax"), "--json"], env)
    expect(ok.code, ok.stderr).toBe(0)
    expect(JSON.parse(ok.stdout)).toMatchObject({ status: "completed", outputs: { main: '{"Int":42}' } })
    const denied = await boruna(["workflow", "run", join(d, "net.ax")], env)
    expect(denied.code).toBe(4)
    expect(denied.stderr).toMatch(/^error\[denied\]: step 'main' failed: capability denied: net\.fetch/)
    const boom = await boruna(["workflow", "run", join(d, "boom.ax")], env)
    expect(boom.code).toBe(1)
    expect(boom.stderr).toMatch(/^error\[division_by_zero\]: step 'main' failed: /)
  }, 60_000)

  it("an external trigger: paused (75), then its payload becomes the step's output", async () => {
    const env = data()
    const d = wfDir({ schema_version: 1, name: "t", version: "1", steps: { ci: { kind: "external_trigger", description: "CI result" }, after: { kind: "source", source: "a.ax", inputs: { ci: "ci.result" }, depends_on: ["ci"] } }, edges: [] },
      { "a.ax": 'fn main() -> String !{step.input} { step.input("ci") }\n' })
    const run = await boruna(["workflow", "run", d], env)
    expect(run.code, run.stderr).toBe(75)
    const runId = /^run (\S+)/.exec(run.stdout)![1]
    const token = /token: (\S+)\s+\(shown once\)/.exec(run.stdout)![1]
    expect(run.stdout).toContain(`boruna workflow trigger ${runId} ci --token ${token} --payload JSON`)
    const t = await boruna(["workflow", "trigger", runId, "ci", "--token", token, "--payload", '{"passed": true}', "--json"], env)
    expect(t.code, t.stderr).toBe(0)
    expect(JSON.parse(t.stdout).outputs.after).toBe(JSON.stringify({ String: '{"passed":true}' }))
  }, 60_000)

  it("a data dir held by another live process: wait, then one line naming the holder (exit 3)", async () => {
    const env = { ...data(), BORUNA_LOCK_WAIT_MS: "200" }
    writeFileSync(join(env.BORUNA_DATA_DIR, "lock"), JSON.stringify({ pid: 1, command: "boruna workflow run other", since: "2026-12-01T00:00:00.000Z", host: hostname() }))
    const r = await boruna(["workflow", "run", join(EXAMPLE, "steps", "fetch.ax")], env)
    expect(r.code).toBe(3)
    expect(r.stderr.trim()).toBe(`error[data_dir_busy]: the data dir ${env.BORUNA_DATA_DIR} is in use by pid 1 on ${hostname()} (boruna workflow run other) since 2026-12-01T00:00:00.000Z: wait for it to finish, or use another --data-dir`)
  })
})

describe("workflow telemetry over OTLP", () => {
  it("run (paused) and approve in two processes: every boruna span in one trace, the run's", async () => {
    const { startOtlpReceiver } = await import("./support/OtlpReceiver.js")
    const rx = await startOtlpReceiver()
    try {
      const env = { ...data(), OTEL_EXPORTER_OTLP_ENDPOINT: rx.url }
      const d = wfDir({ schema_version: 1, name: "t", version: "1", steps: { a: { kind: "source", source: "a.ax" }, g: { kind: "approval_gate", required_role: "x", depends_on: ["a"] }, b: { kind: "source", source: "a.ax", depends_on: ["g"] } }, edges: [] },
        { "a.ax": 'fn main() -> Int !{time.now} { time.now() }\n' })
      const run = await boruna(["workflow", "run", d, "--policy", "allow-all"], env)
      expect(run.code, run.stderr).toBe(75)
      const runId = /^run (\S+)/.exec(run.stdout)![1]
      const ok = await boruna(["workflow", "approve", runId, "g", "--token", /token: (\S+)\s+\(shown once\)/.exec(run.stdout)![1], "--as", "x"], env)
      expect(ok.code, ok.stderr).toBe(0)
      const show = JSON.parse((await boruna(["workflow", "show", runId, "--json"], env)).stdout) as { run: { trace_id: string } }
      const ours = rx.spans().filter((s) => s.name.startsWith("boruna."))
      expect(new Set(ours.map((s) => s.traceId))).toEqual(new Set([show.run.trace_id]))
      const names = new Set(ours.map((s) => s.name))
      expect([...names].sort()).toEqual(expect.arrayContaining(["boruna.cap", "boruna.step", "boruna.workflow"]))
      expect(ours.filter((s) => s.name === "boruna.cap")).toHaveLength(2)
    } finally {
      await rx.close()
    }
  }, 60_000)
})
