/**
 * End to end: the BUILT `boruna` command as a child process, exporting to a loopback OTLP/HTTP
 * receiver this file starts; assertions are on the decoded spans the receiver got.
 */
import { afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ExitCode } from "../src/cli/CliError.js"
import { boruna, ensureBuilt, importLogger, start } from "./support/BuiltCli.js"
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from "./support/OtlpReceiver.js"

beforeAll(() => ensureBuilt(), 120_000)

const receivers: Array<OtlpReceiver> = []
const receiver = async (mode: "normal" | "answer-500" | "black-hole" = "normal") => {
  const rx = await startOtlpReceiver({ mode })
  receivers.push(rx)
  return rx
}
const dirs: Array<string> = []
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((rx) => rx.close()))
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const AGENT = ["run", "examples/agent.ax", "--policy", "examples/agent-policy.json"]

const tree = (spans: ReadonlyArray<ReceivedSpan>) => {
  const runs = spans.filter((s) => s.name === "boruna.run")
  expect(runs).toHaveLength(1)
  const run = runs[0]
  expect(run.parentSpanId).toBeUndefined()
  const caps = spans.filter((s) => s.name === "boruna.cap")
  for (const c of caps) {
    expect(c.parentSpanId).toBe(run.spanId)
    expect(c.traceId).toBe(run.traceId)
  }
  expect(spans.length).toBe(caps.length + 1)
  return { run, caps }
}

describe("boruna run → OTLP collector", () => {
  it("one boruna.run root and one boruna.cap child per call, with the design-doc attributes", async () => {
    const rx = await receiver()
    const r = await boruna(AGENT, { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_SERVICE_NAME: "e2e-agent" })
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    expect(r.stdout).toContain("Report {")
    const { caps, run } = tree(rx.spans())
    expect(run.status.code).not.toBe(2)
    expect(caps.map((c) => c.attributes["cap.name"])).toEqual(["net.fetch", "llm.call", "time.now", "fs.write"])
    for (const s of [run, ...caps]) expect(s.resource["service.name"]).toBe("e2e-agent")
    const [fetch, llm, time, write] = caps
    expect(fetch.attributes).toMatchObject({ bytes_in: 31, "cap.budget_remaining": 4 })
    expect(fetch.attributes.bytes_out).toBeGreaterThan(31)
    expect(llm.attributes["cap.budget_remaining"]).toBe(1)
    expect(time.attributes).toMatchObject({ bytes_in: 0, bytes_out: 0 })
    expect(time.attributes["cap.budget_remaining"]).toBeUndefined()
    expect(write.attributes["cap.budget_remaining"]).toBe(0)
    for (const c of caps) {
      expect(c.attributes["error.kind"]).toBeUndefined()
      expect(c.status.code).not.toBe(2)
    }
  })

  it("service.name defaults to boruna, and TRACEPARENT makes the run a child of the caller's span", async () => {
    const rx = await receiver()
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
    const parent = "00f067aa0ba902b7"
    const r = await boruna(["run", "examples/hello.ax"], { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, TRACEPARENT: `00-${traceId}-${parent}-01` })
    expect(r.code).toBe(0)
    expect(r.stdout).toBe("42\n")
    const spans = rx.spans()
    expect(spans).toHaveLength(1)
    expect(spans[0]).toMatchObject({ name: "boruna.run", traceId, parentSpanId: parent })
    expect(spans[0].resource["service.name"]).toBe("boruna")
  })

  it("a denied call: exit 4, one error line, the failing span carries error.kind=denied", async () => {
    const rx = await receiver()
    const r = await boruna(["run", "examples/denied.ax", "--policy", "examples/agent-policy.json"], { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url })
    expect(r.code).toBe(ExitCode.policy)
    expect(r.stdout).toBe("")
    const lines = r.stderr.trimEnd().split("\n")
    expect(lines).toHaveLength(1)
    // the location either leads (file:line:col: error[…]) or trails ((file:line:col)), as the CLI's error format evolves
    expect(lines[0]).toMatch(/^(?:examples\/denied\.ax:\d+:\d+: )?error\[denied\]: .*db\.query.*?(?: \(examples\/denied\.ax:\d+:\d+\))?$/)
    expect(lines[0]).toMatch(/examples\/denied\.ax:\d+:\d+/)
    const { caps, run } = tree(rx.spans())
    expect(caps.map((c) => c.attributes["cap.name"])).toEqual(["net.fetch", "db.query"])
    expect(caps[0].attributes["error.kind"]).toBeUndefined()
    expect(caps[1].attributes["error.kind"]).toBe("denied")
    expect(caps[1].status.code).toBe(2)
    expect(run.status.code).toBe(2)
  })

  it("SIGTERM after some calls: exit 143 and every completed call's span arrived", async () => {
    const rx = await receiver()
    const p = start(["run", "examples/poll.ax", "--policy", "allow-all"], {
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      BORUNA_DEMO_LATENCY_MS: "250"
    })
    await new Promise((r) => setTimeout(r, 1_800))
    p.child.kill("SIGTERM")
    const r = await p.done
    expect(r.code).toBe(ExitCode.sigterm)
    const m = /run interrupted after (\d+) completed capability call/.exec(r.stderr)
    expect(m, r.stderr).not.toBeNull()
    const completed = Number(m![1])
    expect(completed).toBeGreaterThan(0)
    expect(completed).toBeLessThan(20)
    const { caps, run } = tree(rx.spans())
    // a completed call's span has its result size; the one in flight (if any) ended as interrupted
    const ok = caps.filter((c) => c.attributes.bytes_out !== undefined)
    expect(ok).toHaveLength(completed)
    for (const c of ok) expect(c.attributes["cap.name"]).toBe("time.now")
    const rest = caps.filter((c) => c.attributes.bytes_out === undefined)
    expect(rest.length).toBeLessThanOrEqual(1)
    for (const c of rest) expect(c.attributes["status.interrupted"]).toBe(true)
    expect(run.attributes["status.interrupted"]).toBe(true)
  })

  /** a program that makes `calls` capability calls, then computes (no capability call) until stopped */
  const busyProgram = (calls: number): string => {
    const dir = mkdtempSync(join(tmpdir(), "boruna-busy-"))
    dirs.push(dir)
    const file = join(dir, "busy.ax")
    writeFileSync(file, [
      "fn main() -> Int !{time.now} {",
      "    let mut i: Int = 0",
      `    while i < ${calls} {`,
      "        time.now()",
      "        i = i + 1",
      "    }",
      "    let mut j: Int = 0",
      "    while j < 1000000000000 {",
      "        j = j + 1",
      "    }",
      "    j",
      "}",
      ""
    ].join("\n"))
    return file
  }

  for (const [signal, code] of [["SIGINT", ExitCode.sigint], ["SIGTERM", ExitCode.sigterm]] as const) {
    it(`${signal} during pure computation: exit ${code} within a second, every completed call's span flushed`, async () => {
      const rx = await receiver()
      const p = start(["run", busyProgram(3), "--policy", "allow-all", "--max-steps", "900000000000000"], { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url })
      // long enough to be well inside the pure loop
      await new Promise((r) => setTimeout(r, 2_000))
      const sent = Date.now()
      p.child.kill(signal)
      const r = await p.done
      expect(r.code, r.stderr).toBe(code)
      expect(Date.now() - sent).toBeLessThan(1_000 + 500)
      expect(r.stderr).toContain("run interrupted after 3 completed capability call(s)")
      const { caps, run } = tree(rx.spans())
      expect(caps).toHaveLength(3)
      for (const c of caps) expect(c.status.code).toBe(1)
      expect(run.attributes["status.interrupted"]).toBe(true)
    })
  }

  it("a second SIGINT while the final flush waits on a black-holed collector: exit 130 at once, with the count of undelivered spans", async () => {
    const rx = await receiver("black-hole")
    const p = start(["run", busyProgram(4), "--policy", "allow-all", "--max-steps", "900000000000000"], {
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      BORUNA_TELEMETRY_FLUSH_TIMEOUT_MS: "60000"
    })
    await new Promise((r) => setTimeout(r, 2_000))
    p.child.kill("SIGINT")
    // the first signal ends the run; the flush now waits on the collector that never answers
    await new Promise((r) => setTimeout(r, 700))
    const sent = Date.now()
    p.child.kill("SIGINT")
    const r = await p.done
    expect(r.code).toBe(ExitCode.sigint)
    expect(Date.now() - sent).toBeLessThan(1_000)
    expect(rx.requests().length).toBeGreaterThan(0)
    expect(r.stderr).toMatch(new RegExp(`boruna: telemetry: 5 span\\(s\\) could not be delivered to ${rx.tracesUrl.replace(/[.]/g, "\\.")}: the process was stopped before they were exported`))
  })

  it("a receiver answering 500: the run still succeeds, and the loss is reported on stderr", async () => {
    const rx = await receiver("answer-500")
    const r = await boruna(AGENT, { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url })
    expect(r.code).toBe(0)
    expect(r.stdout).toContain("Report {")
    expect(rx.requests().length).toBeGreaterThan(0)
    expect(rx.requests().every((q) => q.status === 500)).toBe(true)
    expect(r.stderr).toMatch(/boruna: telemetry: 5 span\(s\) could not be delivered to .*: .*500/)
  })

  it("a receiver that never answers: the process exits within the flush bound", async () => {
    const rx = await receiver("black-hole")
    const r = await boruna(AGENT, { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, BORUNA_TELEMETRY_FLUSH_TIMEOUT_MS: "1500" })
    expect(r.code).toBe(0)
    expect(r.stdout).toContain("Report {")
    expect(r.stderr).toMatch(/could not be delivered .*flush timed out after 1500 ms/)
    expect(rx.requests().length).toBeGreaterThan(0)
    expect(r.ms).toBeLessThan(1_500 + 4_000)
    expect(r.ms).toBeGreaterThanOrEqual(1_500)
  })

  it("a receiver that never answers, default bound: exit within 5 s of flushing", async () => {
    const rx = await receiver("black-hole")
    const r = await boruna(["run", "examples/hello.ax"], { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url })
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/flush timed out after 5000 ms/)
    expect(r.ms).toBeLessThan(5_000 + 4_000)
  })

  it("telemetry off: no network traffic to a listening receiver, and no OpenTelemetry (nor @effect/cli) module is even loaded", async () => {
    const rx = await receiver()
    const dir = mkdtempSync(join(tmpdir(), "boruna-e2e-"))
    try {
      const log = join(dir, "imports.log")
      writeFileSync(log, "")
      // no endpoint at all
      const r = await boruna(AGENT, {}, importLogger(log, ["opentelemetry", "@effect/cli"]))
      expect(r.code).toBe(0)
      expect(r.stdout).toContain("Report {")
      expect(readFileSync(log, "utf8")).toBe("")
      // the receiver's URL given, and telemetry disabled: it gets nothing
      const disabled = await boruna(AGENT, { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_SDK_DISABLED: "true", OTEL_BSP_SCHEDULE_DELAY: "1" }, importLogger(log, ["opentelemetry"]))
      expect(disabled.code).toBe(0)
      expect(disabled.stderr).toBe("")
      expect(readFileSync(log, "utf8")).toBe("")
      expect(rx.requests()).toHaveLength(0)
      // the logger itself works: with an endpoint the SDK is loaded
      const on = await boruna(AGENT, { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url }, importLogger(log, ["opentelemetry"]))
      expect(on.code).toBe(0)
      expect(readFileSync(log, "utf8")).toContain("opentelemetry")
      expect(rx.requests().length).toBeGreaterThan(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("--trace (or BORUNA_TRACE=1) prints the per-call table with no collector at all", async () => {
    for (const [args, env] of [[[...AGENT, "--trace"], {}], [AGENT, { BORUNA_TRACE: "1" }]] as const) {
      const r = await boruna(args, env)
      expect(r.code).toBe(0)
      const lines = r.stderr.trimEnd().split("\n")
      expect(lines[0]).toMatch(/^boruna trace: 4 capability calls, run [\d.]+ ms/)
      expect(lines[1]).toMatch(/capability\s+duration\s+bytes in\s+bytes out\s+budget left\s+error/)
      expect(lines[3]).toMatch(/^1\s+net\.fetch\s+[\d.]+ ms\s+31\s+\d+\s+4\s+-$/)
      expect(lines[6]).toMatch(/^4\s+fs\.write\s+[\d.]+ ms\s+\d+\s+0\s+0\s+-$/)
    }
    const denied = await boruna(["run", "examples/denied.ax", "--policy", "examples/agent-policy.json", "--trace"])
    expect(denied.code).toBe(ExitCode.policy)
    expect(denied.stderr).toMatch(/\n2\s+db\.query\s+[\d.]+ ms\s+\d+\s+-\s+-\s+denied\n/)
  })
})
