/** `boruna doctor` (the built command) against a loopback OTLP receiver, a dead endpoint and no endpoint. */
import { afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import { ExitCode } from "../src/cli/CliError.js"
import { boruna, ensureBuilt } from "./support/BuiltCli.js"
import { type OtlpReceiver, startOtlpReceiver } from "./support/OtlpReceiver.js"

beforeAll(() => ensureBuilt(), 120_000)

const receivers: Array<OtlpReceiver> = []
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((rx) => rx.close()))
})

describe("boruna doctor", () => {
  it("a good endpoint: every variable's resolution, the test span delivered, exit 0", async () => {
    const rx = await startOtlpReceiver()
    receivers.push(rx)
    const r = await boruna(["doctor"], {
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "HTTP/JSON",
      OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20DOCTORSECRET",
      OTEL_BSP_MAX_QUEUE_SIZE: "-1",
      OTEL_SERVICE_NAME: "doc"
    })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^telemetry settings:\n/)
    expect(r.stdout).toMatch(new RegExp(`\\n  OTEL_EXPORTER_OTLP_ENDPOINT +${rx.url.replace(/[.]/g, "\\.")}  \\(set\\)\\n`))
    expect(r.stdout).toMatch(/\n  OTEL_EXPORTER_OTLP_PROTOCOL +http\/json  \(set: 'HTTP\/JSON'\)\n/)
    expect(r.stdout).toMatch(/\n  OTEL_BSP_MAX_QUEUE_SIZE +2048  \(set: '-1'\)  ! '-1' is not a positive integer; using 2048\n/)
    expect(r.stdout).toMatch(/\n  OTEL_EXPORTER_OTLP_TIMEOUT +10000  \(default\)\n/)
    expect(r.stdout).toMatch(/\n  OTEL_EXPORTER_OTLP_HEADERS +authorization  \(set: '\(set\)'\)\n/)
    expect(r.stdout).toMatch(new RegExp(`\\ntest span delivered to ${rx.tracesUrl.replace(/[.]/g, "\\.")} in \\d+ ms\\n$`))
    // the credential in the header is never printed
    expect(r.stdout + r.stderr).not.toContain("DOCTORSECRET")
    const spans = rx.spans()
    expect(spans.map((s) => s.name)).toEqual(["boruna.doctor"])
    expect(spans[0].resource["service.name"]).toBe("doc")
    expect(rx.requests()[0].headers.authorization).toBe("Bearer DOCTORSECRET")
  })

  it("a dead endpoint (connection refused): the test span is not delivered, exit 1 within the flush bound", async () => {
    const rx = await startOtlpReceiver()
    await rx.close()
    const r = await boruna(["doctor"], { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, BORUNA_TELEMETRY_FLUSH_TIMEOUT_MS: "1500" })
    expect(r.code).toBe(ExitCode.runtime)
    expect(r.stdout).toContain(`exporting to ${rx.tracesUrl} (http/protobuf)`)
    expect(r.stderr.trim()).toMatch(new RegExp(`^error\\[telemetry\\]: the test span was not delivered: ${rx.tracesUrl.replace(/[.]/g, "\\.")}: flush timed out after 1500 ms \\(connect ECONNREFUSED`))
    expect(r.ms).toBeLessThan(1_500 + 4_000)
  })

  it("no endpoint: nothing can be sent, exit 1", async () => {
    const r = await boruna(["doctor"])
    expect(r.code).toBe(ExitCode.runtime)
    expect(r.stdout).toMatch(/\n  OTEL_EXPORTER_OTLP_ENDPOINT +\(unset\)  \(default\)\n/)
    expect(r.stderr.trim()).toBe("error[telemetry]: telemetry is off (no usable OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): no test span was sent")
  })
})
