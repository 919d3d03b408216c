/**
 * Export under pressure, against a loopback OTLP receiver: retries (refused, reset, jitter), no
 * span lost while the collector is healthy (backpressure instead of drop), the root span always
 * delivered, and the 1,000,000-call run.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Tracer from "effect/Tracer"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as Http from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as v8 from "node:v8"
import { runInNewContext } from "node:vm"
import { VERSION } from "../src/cli/version.js"
import * as EventLog from "../src/EventLog.js"
import * as Gateway from "../src/Gateway.js"
import * as Handlers from "../src/Handlers.js"
import { allowAll } from "../src/Policy.js"
import * as Telemetry from "../src/Telemetry.js"
import * as TelemetryHttp from "../src/TelemetryHttp.js"
import * as OtlpReceiver from "./support/OtlpReceiver.js"

type Env = Record<string, string>

const stack = (env: Env, options: Telemetry.FromEnvOptions = {}, handlers: Layer.Layer<Handlers.Handlers> = Handlers.demo) =>
  Gateway.layer(allowAll).pipe(Layer.provideMerge(Layer.mergeAll(handlers, EventLog.memory, Telemetry.fromEnv(env, options))))

const calls = (n: number) =>
  Telemetry.withRunSpan(Effect.gen(function*() {
    for (let i = 0; i < n; i++) yield* Gateway.call("time.now", [])
  }))

describe("what reaches the collector", () => {
  it.scopedLive("resource: telemetry.sdk.*, service.name and service.version; scope boruna with its version; OTEL_RESOURCE_ATTRIBUTES added", () =>
    Effect.gen(function*() {
      const rx = yield* OtlpReceiver.scoped()
      yield* Effect.provide(calls(1), stack({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=ci" }))
      const [span] = rx.spans()
      expect(span.resource).toMatchObject({
        "service.name": "boruna",
        "service.version": VERSION,
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "nodejs",
        "deployment.environment": "ci"
      })
      expect(typeof span.resource["telemetry.sdk.version"]).toBe("string")
      expect(span.scope).toBe("boruna")
      expect(span.scopeVersion).toBe(VERSION)
    }))

  for (const [protocol, contentType] of [["http/protobuf", "application/x-protobuf"], ["http/json", "application/json"]] as const) {
    it.scopedLive(`${protocol}, gzip-compressed: the body is ${contentType} with Content-Encoding gzip, and decodes`, () =>
      Effect.gen(function*() {
        const rx = yield* OtlpReceiver.scoped()
        yield* Effect.provide(calls(2), stack({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: protocol, OTEL_EXPORTER_OTLP_COMPRESSION: "gzip" }))
        expect(rx.requests().map((r) => [r.contentType, r.headers["content-encoding"]])).toEqual([[contentType, "gzip"]])
        expect(rx.spans()).toHaveLength(3)
      }))
  }

  it.scopedLive("OTEL_BSP_SCHEDULE_DELAY: finished spans are exported during the run, not only at its end", () =>
    Effect.gen(function*() {
      const rx = yield* OtlpReceiver.scoped()
      const seenDuringRun = yield* Effect.provide(
        Telemetry.withRunSpan(Effect.gen(function*() {
          yield* Gateway.call("time.now", [])
          yield* Gateway.call("random", [])
          yield* Effect.promise(() => new Promise((r) => setTimeout(r, 600)))
          return rx.spans().length
        })),
        stack({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_BSP_SCHEDULE_DELAY: "100" })
      )
      expect(seenDuringRun).toBe(2)
      expect(rx.spans()).toHaveLength(3)
    }))

  it.scopedLive("OTEL_EXPORTER_OTLP_TIMEOUT bounds one export: a black-holed request is given up after it, and the loss is reported", () =>
    Effect.gen(function*() {
      const rx = yield* OtlpReceiver.scoped({ mode: "black-hole" })
      const stderr: Array<string> = []
      const t0 = Date.now()
      // no retry fits in what is left of a 600 ms deadline after the first attempt timed out
      yield* Effect.provide(calls(1), stack({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_EXPORTER_OTLP_TIMEOUT: "600" }, { stderr: (l) => stderr.push(l), flushTimeoutMillis: 10_000 }))
      const ms = Date.now() - t0
      expect(ms).toBeGreaterThanOrEqual(550)
      expect(ms).toBeLessThan(3_000)
      expect(stderr).toHaveLength(1)
      expect(stderr[0]).toContain("2 span(s) could not be delivered")
    }))
})

describe("the exported span", () => {
  it.scopedLive("a cap span carries the caller's Effect.annotateSpans attributes and Effect.linkSpans links, over protobuf and JSON", () =>
    Effect.gen(function*() {
      for (const protocol of ["http/protobuf", "http/json"]) {
        const rx = yield* OtlpReceiver.scoped()
        const linked = Tracer.externalSpan({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331" })
        yield* Effect.provide(
          Telemetry.withRunSpan(Gateway.call("time.now", []).pipe(
            Effect.annotateSpans("tenant", "acme"),
            Effect.linkSpans(linked, { "link.reason": "queued-by" })
          )),
          stack({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_EXPORTER_OTLP_PROTOCOL: protocol })
        )
        const cap = rx.spans().find((sp) => sp.name === "boruna.cap")!
        expect(cap.attributes).toMatchObject({ tenant: "acme", "cap.name": "time.now" })
        expect(cap.links).toEqual([{ traceId: linked.traceId, spanId: linked.spanId, attributes: { "link.reason": "queued-by" } }])
        // the run span was opened outside both: it has neither
        const run = rx.spans().find((sp) => sp.name === "boruna.run")!
        expect(run.attributes.tenant).toBeUndefined()
        expect(run.links).toEqual([])
      }
    }))

  it.scopedLive("a link added to a started span (Effect.linkSpanCurrent) is exported; a span without links has none", () =>
    Effect.gen(function*() {
      const rx = yield* OtlpReceiver.scoped()
      const linked = Tracer.externalSpan({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331" })
      yield* Effect.provide(
        Telemetry.withRunSpan(Effect.gen(function*() {
          yield* Effect.linkSpanCurrent(linked, { n: 1 })
          yield* Effect.linkSpanCurrent(linked, { n: 2 })
          yield* Gateway.call("time.now", [])
        })),
        stack({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url })
      )
      const run = rx.spans().find((sp) => sp.name === "boruna.run")!
      expect(run.links.map((l) => [l.spanId, l.attributes.n])).toEqual([[linked.spanId, 1], [linked.spanId, 2]])
      expect(rx.spans().find((sp) => sp.name === "boruna.cap")!.links).toEqual([])
    }))

  it.scopedLive("times in nanoseconds from the fiber's clock, kind, ids and parentage as the SDK would set them", () =>
    Effect.gen(function*() {
      const rx = yield* OtlpReceiver.scoped()
      const before = BigInt(Date.now()) * 1_000_000n
      yield* Effect.provide(calls(2), stack({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url }))
      const after = BigInt(Date.now() + 1) * 1_000_000n
      const spans = rx.spans()
      expect(spans.map((sp) => sp.name)).toEqual(["boruna.cap", "boruna.cap", "boruna.run"])
      const run = spans[2]
      for (const sp of spans) {
        expect(sp.startTimeUnixNano).toBeGreaterThanOrEqual(before)
        expect(sp.endTimeUnixNano).toBeGreaterThanOrEqual(sp.startTimeUnixNano)
        expect(sp.endTimeUnixNano).toBeLessThanOrEqual(after)
        expect(sp.kind).toBe(1) // SPAN_KIND_INTERNAL
        expect(sp.traceId).toMatch(/^[0-9a-f]{32}$/)
        expect(sp.spanId).toMatch(/^[0-9a-f]{16}$/)
        expect(sp.status.code).toBe(1)
      }
      expect(new Set(spans.map((sp) => sp.spanId)).size).toBe(3)
      expect(spans.every((sp) => sp.traceId === run.traceId)).toBe(true)
      expect(run.parentSpanId).toBeUndefined()
      expect(spans[0].parentSpanId).toBe(run.spanId)
      expect(spans[0].startTimeUnixNano).toBeGreaterThanOrEqual(run.startTimeUnixNano)
      expect(spans[1].endTimeUnixNano).toBeLessThanOrEqual(run.endTimeUnixNano)
    }))

  it.scopedLive("a remote parent that is not sampled (TRACEPARENT flags 00): no span of the run is exported", () =>
    Effect.gen(function*() {
      const rx = yield* OtlpReceiver.scoped()
      const stderr: Array<string> = []
      yield* Effect.provide(calls(3), stack({
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
        TRACEPARENT: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
      }, { stderr: (l) => stderr.push(l) }))
      expect(rx.spans()).toEqual([])
      expect(stderr).toEqual([])
    }))
})

/** A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
const makeCertificates = (): { readonly dir: string; readonly read: (name: string) => Buffer } => {
  const dir = mkdtempSync(join(tmpdir(), "boruna-tls-"))
  const ssl = (...args: Array<string>) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" })
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
  ssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=boruna test CA")
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1\n")
  ssl("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
  ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
  ssl("req", ...ec, "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=boruna client")
  ssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.pem", "-days", "2")
  return { dir, read: (name) => readFileSync(join(dir, name)) }
}

describe("TLS: OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE, _CLIENT_CERTIFICATE, _CLIENT_KEY", () => {
  const certs = makeCertificates()
  afterAll(() => rmSync(certs.dir, { recursive: true, force: true }))
  const path = (name: string) => join(certs.dir, name)
  const server = { key: certs.read("server.key"), cert: certs.read("server.pem") }

  it.scopedLive("an https endpoint signed by a private CA: delivered with the CA file, refused (and reported) without it", () =>
    Effect.gen(function*() {
      const rx = yield* OtlpReceiver.scoped({ tls: server })
      expect(rx.url).toMatch(/^https:/)
      yield* Effect.provide(calls(2), stack({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_EXPORTER_OTLP_CERTIFICATE: path("ca.pem") }))
      expect(rx.spans()).toHaveLength(3)

      const stderr: Array<string> = []
      yield* Effect.provide(calls(2), stack({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url }, { stderr: (l) => stderr.push(l), flushTimeoutMillis: 3_000 }))
      expect(rx.spans()).toHaveLength(3)
      expect(stderr).toHaveLength(1)
      expect(stderr[0]).toContain(`3 span(s) could not be delivered to ${rx.tracesUrl}`)
    }))

  it.scopedLive("mutual TLS: the _TRACES_ client certificate and key are presented; without them the collector refuses", () =>
    Effect.gen(function*() {
      const rx = yield* OtlpReceiver.scoped({ tls: { ...server, ca: certs.read("ca.pem") } })
      yield* Effect.provide(calls(1), stack({
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
        OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: path("ca.pem"),
        OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE: path("client.pem"),
        OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY: path("client.key")
      }))
      expect(rx.spans()).toHaveLength(2)

      const stderr: Array<string> = []
      yield* Effect.provide(calls(1), stack({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_EXPORTER_OTLP_CERTIFICATE: path("ca.pem") }, { stderr: (l) => stderr.push(l), flushTimeoutMillis: 3_000 }))
      expect(rx.spans()).toHaveLength(2)
      expect(stderr.some((l) => l.includes("2 span(s) could not be delivered"))).toBe(true)
    }))

  it("an unreadable file, or a client key without its certificate: one warning each, ignored, and doctor says how each resolved", () => {
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: "https://127.0.0.1:4318",
      OTEL_EXPORTER_OTLP_CERTIFICATE: path("missing.pem"),
      OTEL_EXPORTER_OTLP_CLIENT_KEY: path("client.key")
    }
    const r = Telemetry.resolveConfig(env)
    expect(r.warnings).toEqual([
      `boruna: telemetry: OTEL_EXPORTER_OTLP_CERTIFICATE: '${path("missing.pem")}' cannot be read (ENOENT); ignored`,
      "boruna: telemetry: OTEL_EXPORTER_OTLP_CLIENT_KEY: usable without a usable client certificate; the client certificate is not used"
    ])
    expect(r.config?.tls).toEqual({})
    expect(r.settings.filter((s) => /CERTIFICATE|CLIENT_KEY/.test(s.variable)).map((s) => [s.variable, s.used])).toEqual([
      ["OTEL_EXPORTER_OTLP_CERTIFICATE", "(unset)"],
      ["OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "(unset)"],
      ["OTEL_EXPORTER_OTLP_CLIENT_KEY", path("client.key")]
    ])
    const ok = Telemetry.resolveConfig({ ...env, OTEL_EXPORTER_OTLP_CERTIFICATE: path("ca.pem"), OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: path("client.pem") })
    expect(ok.warnings).toEqual([])
    expect(ok.config?.tls).toEqual({ ca: certs.read("ca.pem"), cert: certs.read("client.pem"), key: certs.read("client.key") })
  })
})

describe("retries", () => {
  it("Retry-After: seconds or an HTTP date (a past date is now); anything else is no hint", () => {
    const now = Date.parse("2026-12-01T20:00:00Z")
    expect(TelemetryHttp.parseRetryAfter("3", now)).toBe(3_000)
    expect(TelemetryHttp.parseRetryAfter(" 0 ", now)).toBe(0)
    expect(TelemetryHttp.parseRetryAfter("Tue, 01 Dec 2026 20:00:02 GMT", now)).toBe(2_000)
    expect(TelemetryHttp.parseRetryAfter("Tue, 01 Dec 2026 19:00:00 GMT", now)).toBe(0)
    for (const bad of [undefined, "", "soon", "-1", "1.5"]) expect(TelemetryHttp.parseRetryAfter(bad, now)).toBeUndefined()
  })

  it.scopedLive("the transport: a POST to the traces path with the configured headers, a User-Agent, and 429 with an HTTP-date Retry-After honoured", () =>
    Effect.gen(function*() {
      const rx = yield* OtlpReceiver.scoped({ mode: "answer-429-then-200", retryAfter: new Date(Date.now() + 1_000).toUTCString() })
      const t0 = Date.now()
      yield* Effect.provide(calls(1), stack({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_EXPORTER_OTLP_HEADERS: "x-tenant=acme" }))
      expect(rx.requests().map((r) => r.status)).toEqual([429, 200])
      // an HTTP date has a resolution of one second: the retry came after the date, give or take it
      expect(rx.requests()[1].at - t0).toBeGreaterThanOrEqual(0)
      expect(rx.requests()[1].at - rx.requests()[0].at).toBeLessThan(2_500)
      const [, ok] = rx.requests()
      expect(ok.path).toBe("/v1/traces")
      expect(ok.headers["x-tenant"]).toBe("acme")
      expect(ok.headers["user-agent"]).toBe(`boruna/${VERSION} (OTel-OTLP-Exporter-JavaScript)`)
      expect(rx.spans()).toHaveLength(2)
    }))

  it("the back-off: exponential steps of 1 s, 2 s, 4 s, capped at 5 s, each jittered over its upper half", () => {
    expect([0, 1, 2, 3, 4].map((n) => Telemetry.backoffMillis(n, () => 0))).toEqual([500, 1000, 2000, 2500, 2500])
    expect([0, 1, 2, 3, 4].map((n) => Telemetry.backoffMillis(n, () => 1))).toEqual([1000, 2000, 4000, 5000, 5000])
    // real jitter: 1,000 draws of the first step spread over [500, 1000)
    const draws = Array.from({ length: 1_000 }, () => Telemetry.backoffMillis(0, Math.random))
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(500)
    expect(Math.max(...draws)).toBeLessThan(1000)
    expect(Math.max(...draws) - Math.min(...draws)).toBeGreaterThan(300)
  })

  it("connection failures are retryable; other errors are not", () => {
    const coded = (code: string) => Object.assign(new Error(code), { code })
    for (const c of ["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT"]) expect(Telemetry.isConnectionFailure(coded(c))).toBe(true)
    expect(Telemetry.isConnectionFailure(new Error("Request Timeout"))).toBe(true)
    expect(Telemetry.isConnectionFailure(coded("ENOTFOUND"))).toBe(false)
    expect(Telemetry.isConnectionFailure(new Error("HTTP 400"))).toBe(false)
  })

  it.scopedLive("a reset connection is retried after the jittered delay, and the spans arrive", () =>
    Effect.gen(function*() {
      for (const [random, low, high] of [[0, 450, 900], [0.999, 950, 1_600]] as const) {
        const rx = yield* OtlpReceiver.scoped({ mode: "reset-then-200", failures: 1 })
        const stderr: Array<string> = []
        yield* Effect.provide(calls(3), stack({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url }, { stderr: (l) => stderr.push(l), random: () => random }))
        const reqs = rx.requests()
        expect(reqs.map((r) => r.status)).toEqual([undefined, 200])
        const gap = reqs[1].at - reqs[0].at
        expect(gap).toBeGreaterThanOrEqual(low)
        expect(gap).toBeLessThan(high)
        expect(rx.spans()).toHaveLength(4)
        expect(stderr).toEqual([])
      }
    }))

  it.scopedLive("503 without Retry-After is retried with the jittered back-off", () =>
    Effect.gen(function*() {
      const rx = yield* OtlpReceiver.scoped({ mode: "answer-429-then-200", status: 503, retryAfter: "", failures: 1 })
      yield* Effect.provide(calls(2), stack({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url }, { random: () => 0 }))
      const reqs = rx.requests()
      expect(reqs.map((r) => r.status)).toEqual([503, 200])
      expect(reqs[1].at - reqs[0].at).toBeGreaterThanOrEqual(450)
      expect(rx.spans()).toHaveLength(3)
    }))

  it.scopedLive("a collector that comes up 1.5 s after the first export was refused still gets every span", () =>
    Effect.gen(function*() {
      const probe = yield* Effect.promise(() => OtlpReceiver.startOtlpReceiver())
      const port = Number(new URL(probe.url).port)
      yield* Effect.promise(() => probe.close())
      let received = 0
      const late = Http.createServer((req, res) => {
        req.resume()
        req.on("end", () => {
          received++
          res.writeHead(200, { "content-type": "application/json" }).end("{}")
        })
      })
      const up = setTimeout(() => late.listen(port, "127.0.0.1"), 1_500)
      yield* Effect.addFinalizer(() =>
        Effect.async<void>((resume) => {
          clearTimeout(up)
          late.closeAllConnections()
          late.close(() => resume(Effect.void))
          if (!late.listening) resume(Effect.void)
        })
      )
      const stderr: Array<string> = []
      const t0 = Date.now()
      yield* Effect.provide(
        calls(3),
        stack({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }, { stderr: (l) => stderr.push(l), flushTimeoutMillis: 8_000 })
      )
      expect(received).toBe(1)
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1_500)
      expect(stderr).toEqual([])
    }))
})

describe("no span lost while the collector is healthy", () => {
  it.scopedLive("a queue of 64: 20,000 calls deliver 20,001 spans (backpressure instead of drop), root included", () =>
    Effect.gen(function*() {
      const rx = yield* OtlpReceiver.scoped({ keep: false })
      const stderr: Array<string> = []
      yield* Effect.provide(
        calls(20_000),
        stack({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_BSP_MAX_QUEUE_SIZE: "64", OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "16" }, { stderr: (l) => stderr.push(l) })
      )
      expect(rx.counts().get("boruna.cap")).toBe(20_000)
      expect(rx.counts().get("boruna.run")).toBe(1)
      expect(stderr).toEqual([])
      // exported during the run, batch by batch, not at its end
      expect(rx.requests().length).toBeGreaterThanOrEqual(20_001 / 16)
    }))

  it.scopedLive("a collector failing during the run: spans are dropped and counted, and the root is still delivered", () =>
    Effect.gen(function*() {
      const rx = yield* OtlpReceiver.scoped({ mode: "answer-500", keep: false })
      const n = 2_000
      let i = 0
      // the collector recovers during the last call: the queue is full when the root ends
      const handlers = Handlers.make({
        "time.now": () =>
          Effect.sync(() => {
            if (++i === n) rx.setMode("normal")
            return 1
          })
      })
      const stderr: Array<string> = []
      yield* Effect.provide(
        calls(n),
        stack({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_BSP_MAX_QUEUE_SIZE: "64", OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "16" }, { stderr: (l) => stderr.push(l) }, handlers)
      )
      expect(rx.counts().get("boruna.run")).toBe(1)
      const delivered = [...rx.counts().values()].reduce((a, b) => a + b, 0)
      expect(delivered).toBeLessThan(n + 1)
      expect(stderr).toHaveLength(1)
      expect(stderr[0]).toContain(`boruna: telemetry: ${n + 1 - delivered} span(s) could not be delivered to ${rx.tracesUrl}: `)
    }))
})

describe("1,000,000 calls", () => {
  // retained memory, not garbage: the heap after a full collection
  v8.setFlagsFromString("--expose-gc")
  const gc = runInNewContext("gc") as () => void
  const retained = (): number => {
    gc()
    return process.memoryUsage().heapUsed
  }

  /** run `n` calls under `env`: the peak retained heap over the run (sampled every 5 s and at its end) and its time */
  const measured = (n: number, env: Env, stderr: Array<string>) =>
    Effect.gen(function*() {
      const base = retained()
      let peak = base
      const sampler = setInterval(() => {
        peak = Math.max(peak, retained())
      }, 5_000)
      const t0 = Date.now()
      const program = Telemetry.withRunSpan(Effect.gen(function*() {
        for (let i = 0; i < n; i++) yield* Gateway.call("time.now", [])
        peak = Math.max(peak, retained())
      }))
      yield* Effect.provide(program, stack(env, { stderr: (l) => stderr.push(l), flushTimeoutMillis: 30_000 })).pipe(
        Effect.ensuring(Effect.sync(() => clearInterval(sampler)))
      )
      return { ms: Date.now() - t0, growth: peak - base }
    })

  it.scopedLive("1,000,000 demo calls in one run: 1,000,001 spans received, root included; memory within 1.5x of telemetry off", () =>
    Effect.gen(function*() {
      const n = 1_000_000
      const rx = yield* OtlpReceiver.scoped({ keep: false })
      const stderr: Array<string> = []
      const off = yield* measured(n, {}, stderr)
      const on = yield* measured(n, { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url }, stderr)
      expect(rx.counts().get("boruna.cap")).toBe(n)
      expect(rx.counts().get("boruna.run")).toBe(1)
      expect(stderr).toEqual([])
      // the queue: 2,048 spans of at most a few KB each, plus the batches in flight
      const queue = 16 * 1024 * 1024
      console.log(`1,000,000 calls: off ${off.ms} ms, +${Math.round(off.growth / 1e6)} MB retained; exported ${on.ms} ms, +${Math.round(on.growth / 1e6)} MB retained`)
      expect(on.growth).toBeLessThanOrEqual(1.5 * off.growth + queue)
    }), 150_000)
})
