import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as EventLog from "../src/EventLog.js"
import * as Gateway from "../src/Gateway.js"
import * as Handlers from "../src/Handlers.js"
import { allowAll, type Policy } from "../src/Policy.js"
import * as Telemetry from "../src/Telemetry.js"
import * as OtlpReceiver from "./support/OtlpReceiver.js"

/** where @effect/opentelemetry (and boruna) keep a remote parent's tracestate */
const OtelTraceState = Context.GenericTag<"OtelTraceState", { readonly serialize: () => string }>("@effect/opentelemetry/Tracer/OtelTraceState")

type Env = Record<string, string>

/** Gateway + demo handlers + event log over `Telemetry.fromEnv(env, options)`. */
const stack = (env: Env, options: Telemetry.FromEnvOptions = {}, policy: Policy = allowAll) =>
  Gateway.layer(policy).pipe(
    Layer.provideMerge(Layer.mergeAll(Handlers.demo, EventLog.memory, Telemetry.fromEnv(env, options)))
  )

/** Three capability calls inside the run span: 4 spans when telemetry is on. */
const threeCalls = Telemetry.withRunSpan(
  Effect.gen(function*() {
    yield* Gateway.call("time.now", [])
    yield* Gateway.call("net.fetch", ["https://a.example/"])
    return yield* Gateway.call("fs.read", ["/tmp/x"])
  }),
  { "run.entry": "main" }
)

const byName = (spans: ReadonlyArray<OtlpReceiver.ReceivedSpan>, name: string) => spans.filter((s) => s.name === name)

/** The run → cap parentage of one trace. */
const expectOneTrace = (spans: ReadonlyArray<OtlpReceiver.ReceivedSpan>, caps: number) => {
  const [run] = byName(spans, "boruna.run")
  expect(run).toBeDefined()
  const capSpans = byName(spans, "boruna.cap")
  expect(capSpans).toHaveLength(caps)
  for (const c of capSpans) {
    expect(c.parentSpanId).toBe(run.spanId)
    expect(c.traceId).toBe(run.traceId)
  }
  return { run, caps: capSpans }
}

describe("Telemetry.resolveConfig: selection from the environment", () => {
  const cfg = (env: Env) => Telemetry.resolveConfig(env).config
  const warnings = (env: Env) => Telemetry.resolveConfig(env).warnings
  const E = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" }

  it("off when no endpoint is set, when it is empty, or when OTEL_SDK_DISABLED=true (any case)", () => {
    expect(cfg({})).toBeUndefined()
    expect(cfg({ OTEL_EXPORTER_OTLP_ENDPOINT: "" })).toBeUndefined()
    expect(cfg({ OTEL_EXPORTER_OTLP_ENDPOINT: "  " })).toBeUndefined()
    expect(cfg({ ...E, OTEL_SDK_DISABLED: "true" })).toBeUndefined()
    expect(cfg({ ...E, OTEL_SDK_DISABLED: "TRUE" })).toBeUndefined()
    expect(cfg({ ...E, OTEL_SDK_DISABLED: "false" })).toBeDefined()
    expect(cfg({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4318/x" })).toBeDefined()
  })

  it("joins the base endpoint and v1/traces with exactly one slash; the traces endpoint is used as-is", () => {
    expect(cfg({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" })?.tracesUrl).toBe("http://c:4318/v1/traces")
    expect(cfg({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318/" })?.tracesUrl).toBe("http://c:4318/v1/traces")
    expect(cfg({ OTEL_EXPORTER_OTLP_ENDPOINT: "https://c/otlp//" })?.tracesUrl).toBe("https://c/otlp/v1/traces")
    expect(cfg({ ...E, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://t:9/custom/path" })?.tracesUrl).toBe("http://t:9/custom/path")
  })

  it("service.name: OTEL_SERVICE_NAME, else the resource attribute, else boruna (empty means default)", () => {
    expect(cfg(E)?.resource["service.name"]).toBe("boruna")
    expect(cfg({ ...E, OTEL_SERVICE_NAME: "" })?.resource["service.name"]).toBe("boruna")
    expect(cfg({ ...E, OTEL_SERVICE_NAME: "agent-7" })?.resource["service.name"]).toBe("agent-7")
    const r = cfg({ ...E, OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=ci, team=a%20b,service.name=fromattrs" })
    expect(r?.resource).toEqual({ "deployment.environment": "ci", team: "a b", "service.name": "fromattrs" })
    expect(cfg({ ...E, OTEL_RESOURCE_ATTRIBUTES: "service.name=x", OTEL_SERVICE_NAME: "y" })?.resource["service.name"]).toBe("y")
  })

  it("headers are k=v pairs, URL-decoded; the traces-specific ones win", () => {
    const r = cfg({ ...E, OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20abc=,x-tenant = t1", OTEL_EXPORTER_OTLP_TRACES_HEADERS: "x-tenant=t2" })
    expect(r?.headers).toEqual({ authorization: "Bearer abc=", "x-tenant": "t2" })
  })

  it("protocol: http/protobuf by default; http/json; case-insensitive; grpc and anything else warned and http/protobuf used", () => {
    expect(cfg(E)?.protocol).toBe("http/protobuf")
    expect(cfg({ ...E, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" })?.protocol).toBe("http/json")
    expect(cfg({ ...E, OTEL_EXPORTER_OTLP_PROTOCOL: "HTTP/JSON" })?.protocol).toBe("http/json")
    expect(cfg({ ...E, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "HTTP/PROTOBUF" })?.protocol).toBe("http/protobuf")
    expect(warnings({ ...E, OTEL_EXPORTER_OTLP_PROTOCOL: "HTTP/PROTOBUF" })).toEqual([])
    expect(cfg({ ...E, OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })?.protocol).toBe("http/protobuf")
    expect(warnings({ ...E, OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).toEqual([
      "boruna: telemetry: OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' is not supported (boruna exports OTLP over HTTP); using http/protobuf"
    ])
    expect(warnings({ ...E, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "foo" })).toEqual([
      "boruna: telemetry: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'foo' is not http/protobuf, http/json or grpc; using http/protobuf"
    ])
  })

  it("timeouts, compression and the OTEL_BSP_* variables are honoured, the specific ones first", () => {
    const c = cfg({
      ...E,
      OTEL_EXPORTER_OTLP_TIMEOUT: "3000",
      OTEL_EXPORTER_OTLP_COMPRESSION: "GZIP",
      OTEL_BSP_MAX_QUEUE_SIZE: "100",
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "10",
      OTEL_BSP_SCHEDULE_DELAY: "50",
      OTEL_BSP_EXPORT_TIMEOUT: "700"
    })
    expect(c).toMatchObject({
      exportTimeoutMillis: 3000,
      compression: "gzip",
      maxQueueSize: 100,
      maxExportBatchSize: 10,
      scheduledDelayMillis: 50,
      bspExportTimeoutMillis: 700
    })
    expect(cfg({ ...E, OTEL_EXPORTER_OTLP_TIMEOUT: "3000", OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: "4000" })?.exportTimeoutMillis).toBe(4000)
    expect(cfg({ ...E, OTEL_EXPORTER_OTLP_COMPRESSION: "gzip", OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: "none" })?.compression).toBe("none")
    expect(cfg(E)).toMatchObject({ exportTimeoutMillis: 10_000, compression: "none", maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMillis: 5000 })
  })

  it("every unusable value is one warning line naming the variable, and is ignored (its default applies)", () => {
    const bad: Array<[Env, string, Partial<Telemetry.ExportConfig> | undefined]> = [
      [{ OTEL_EXPORTER_OTLP_ENDPOINT: "localhost:4318" }, "OTEL_EXPORTER_OTLP_ENDPOINT: 'localhost:4318' is not an absolute http(s) URL (e.g. http://localhost:4318); ignored", undefined],
      [{ ...E, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "c:4318" }, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'c:4318' is not an absolute http(s) URL (e.g. http://localhost:4318); ignored", { tracesUrl: "http://c:4318/v1/traces" }],
      [{ ...E, OTEL_RESOURCE_ATTRIBUTES: "team=a,broken" }, "OTEL_RESOURCE_ATTRIBUTES: 'broken' is not of the form key=value; the whole value is ignored", { resource: { "service.name": "boruna" } }],
      [{ ...E, OTEL_EXPORTER_OTLP_HEADERS: "novalue" }, "OTEL_EXPORTER_OTLP_HEADERS: 'novalue' is not of the form key=value; the whole value is ignored", { headers: {} }],
      [{ ...E, OTEL_BSP_MAX_QUEUE_SIZE: "-1" }, "OTEL_BSP_MAX_QUEUE_SIZE: '-1' is not a positive integer; using 2048", { maxQueueSize: 2048 }],
      [{ ...E, OTEL_BSP_SCHEDULE_DELAY: "soon" }, "OTEL_BSP_SCHEDULE_DELAY: 'soon' is not a non-negative integer; using 5000", { scheduledDelayMillis: 5000 }],
      [{ ...E, OTEL_EXPORTER_OTLP_TIMEOUT: "0" }, "OTEL_EXPORTER_OTLP_TIMEOUT: '0' is not a positive integer; using 10000", { exportTimeoutMillis: 10_000 }],
      [{ ...E, OTEL_EXPORTER_OTLP_COMPRESSION: "zstd" }, "OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd' is not gzip or none; using none", { compression: "none" }],
      [{ ...E, OTEL_SDK_DISABLED: "yes" }, "OTEL_SDK_DISABLED: 'yes' is not true or false; using false", {}],
      [{ ...E, OTEL_BSP_MAX_QUEUE_SIZE: "10", OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "20" }, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '20' is above OTEL_BSP_MAX_QUEUE_SIZE; using 10", { maxExportBatchSize: 10 }]
    ]
    for (const [env, warning, expected] of bad) {
      const r = Telemetry.resolveConfig(env)
      expect(r.warnings).toEqual([`boruna: telemetry: ${warning}`])
      if (expected === undefined) expect(r.config).toBeUndefined()
      else expect(r.config).toMatchObject(expected)
    }
  })

  it("a header value is never reported (it carries credentials), only its keys", () => {
    const r = Telemetry.resolveConfig({ ...E, OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20TOPSECRET" })
    expect(JSON.stringify([r.settings, r.warnings])).not.toContain("TOPSECRET")
    expect(r.config?.headers).toEqual({ authorization: "Bearer TOPSECRET" })
    expect(r.settings.find((s) => s.variable === "OTEL_EXPORTER_OTLP_HEADERS")).toEqual({ variable: "OTEL_EXPORTER_OTLP_HEADERS", raw: "(set)", used: "authorization" })
    const bad = Telemetry.resolveConfig({ ...E, OTEL_EXPORTER_OTLP_HEADERS: "x=TOPSECRET,broken" })
    expect(JSON.stringify([bad.settings, bad.warnings])).not.toContain("TOPSECRET")
    expect(bad.warnings).toHaveLength(1)
  })

  it.effect("an unusable setting never fails the run: the warning goes to stderr once and the program runs", () =>
    Effect.gen(function*() {
      const stderr: Array<string> = []
      const out = yield* Effect.provide(threeCalls, stack({ OTEL_EXPORTER_OTLP_ENDPOINT: "localhost:4318", OTEL_BSP_MAX_QUEUE_SIZE: "-1" }, { stderr: (l) => stderr.push(l) }))
      expect(out).toBe("mock file content for /tmp/x")
      expect(stderr).toEqual([
        "boruna: telemetry: OTEL_EXPORTER_OTLP_ENDPOINT: 'localhost:4318' is not an absolute http(s) URL (e.g. http://localhost:4318); ignored",
        "boruna: telemetry: OTEL_BSP_MAX_QUEUE_SIZE: '-1' is not a positive integer; using 2048"
      ])
    }))
})

describe("Telemetry.fromEnv: off", () => {
  it.effect("no endpoint: TelemetryEnabled false, calls work, no span even with a tracer installed", () => {
    const { recorder, tracer } = Telemetry.makeMemoryTracer()
    return Effect.gen(function*() {
      expect(yield* threeCalls).toBe("mock file content for /tmp/x")
      expect(yield* Telemetry.TelemetryEnabled).toBe(false)
      expect((yield* Telemetry.SpanRecorder).spans()).toEqual([])
      expect(recorder.spans()).toEqual([])
    }).pipe(Effect.provide(stack({})), Effect.withTracer(tracer))
  })

  it.effect("recordLocally without an endpoint: the in-memory recorder only, run → cap parentage", () =>
    Effect.gen(function*() {
      yield* threeCalls
      const spans = (yield* Telemetry.SpanRecorder).spans()
      expect(spans.map((s) => s.name)).toEqual(["boruna.cap", "boruna.cap", "boruna.cap", "boruna.run"])
      const run = spans[3]
      expect(run.parentSpanId).toBeUndefined()
      expect(run.attributes["run.entry"]).toBe("main")
      for (const s of spans.slice(0, 3)) {
        expect(s.parentSpanId).toBe(run.spanId)
        expect(s.traceId).toBe(run.traceId)
      }
    }).pipe(Effect.provide(stack({}, { recordLocally: true }))))

  it.scopedLive("OTEL_SDK_DISABLED=true with a live endpoint set: nothing is exported, withRunSpan is a pass-through", () =>
    Effect.gen(function*() {
      const rx = yield* OtlpReceiver.scoped()
      const { recorder, tracer } = Telemetry.makeMemoryTracer()
      const enabled = yield* Effect.gen(function*() {
        yield* threeCalls
        return yield* Telemetry.TelemetryEnabled
      }).pipe(
        Effect.provide(stack({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_SDK_DISABLED: "true", OTEL_BSP_SCHEDULE_DELAY: "1" })),
        Effect.withTracer(tracer)
      )
      expect(enabled).toBe(false)
      expect(recorder.spans()).toEqual([])
      expect(rx.requests()).toHaveLength(0)
      // the control: the same stack without the variable does export to that receiver
      yield* Effect.provide(threeCalls, stack({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url }))
      expect(rx.spans()).toHaveLength(4)
    }))

  describe("in a child process", () => {
    const repo = fileURLToPath(new URL("..", import.meta.url))
    const hook = `data:text/javascript,import{appendFileSync}from"node:fs";` +
      `export async function resolve(s,c,n){const r=await n(s,c);` +
      `if(r.url.includes("opentelemetry"))appendFileSync(process.env.BORUNA_IMPORT_LOG,r.url+"\\n");return r}`
    const register = `data:text/javascript,import{register}from"node:module";register(${JSON.stringify(hook)});`

    /** Run test/support/telemetry-child.ts; return its RESULT and the ES modules it resolved. */
    const runChild = (env: Env, recordLocally = false) =>
      Effect.acquireUseRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "boruna-otel-"))),
        (dir) =>
          Effect.async<{ result: { results: Array<unknown>; enabled: boolean; spans: Array<string>; cjs: Array<string>; otelGlobal: boolean }; esm: Array<string> }, Error>((resume) => {
            const log = join(dir, "imports.log")
            writeFileSync(log, "")
            execFile(
              process.execPath,
              ["--import", register, join(repo, "node_modules/vite-node/vite-node.mjs"), "test/support/telemetry-child.ts"],
              {
                cwd: repo,
                env: {
                  PATH: process.env.PATH ?? "",
                  BORUNA_IMPORT_LOG: log,
                  BORUNA_CHILD_ENV: JSON.stringify(env),
                  BORUNA_CHILD_RECORD: recordLocally ? "1" : "0"
                },
                timeout: 60_000
              },
              (error, stdout, stderr) => {
                const line = stdout.split("\n").find((l) => l.startsWith("RESULT "))
                if (error !== null || line === undefined) {
                  return resume(Effect.fail(new Error(`child failed: ${error?.message ?? ""}\n${stdout}\n${stderr}`)))
                }
                const esm = readFileSync(log, "utf8").split("\n").filter((l) => l !== "")
                resume(Effect.succeed({ result: JSON.parse(line.slice(7)), esm }))
              }
            )
          }),
        (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
      )

    it.live("telemetry off: the gateway runs and no OpenTelemetry module (ESM or CJS) is ever loaded", () =>
      Effect.gen(function*() {
        const { esm, result } = yield* runChild({})
        expect(result.results).toEqual([1_700_000_000, `{"mock": true, "url": "https://a.example/"}`, "mock file content for /tmp/x"])
        expect(result.enabled).toBe(false)
        expect(result.spans).toEqual([])
        expect(esm).toEqual([])
        expect(result.cjs).toEqual([])
        expect(result.otelGlobal).toBe(false)
      }))

    it.live("--trace without an endpoint records locally and still loads no OpenTelemetry module", () =>
      Effect.gen(function*() {
        const { esm, result } = yield* runChild({}, true)
        expect(result.enabled).toBe(true)
        expect(result.spans).toEqual(["boruna.cap", "boruna.cap", "boruna.cap", "boruna.run"])
        expect(esm).toEqual([])
        expect(result.cjs).toEqual([])
      }))

    it.scopedLive("control: with an endpoint the same probe does see OpenTelemetry loaded, and the spans arrive", () =>
      Effect.gen(function*() {
        const rx = yield* OtlpReceiver.scoped()
        const { esm, result } = yield* runChild({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url })
        expect(result.enabled).toBe(true)
        // an OpenTelemetry module is loaded only now
        expect([...esm, ...result.cjs].some((u) => u.includes("/@opentelemetry/"))).toBe(true)
        expectOneTrace(rx.spans(), 3)
      }))
  })
})

describe("Telemetry.fromEnv: OTLP export to a loopback receiver", () => {
  const withReceiver = <A, E>(
    options: OtlpReceiver.OtlpReceiverOptions,
    body: (rx: OtlpReceiver.OtlpReceiver, env: Env, stderr: Array<string>) => Effect.Effect<A, E>
  ) =>
    Effect.scoped(Effect.gen(function*() {
      const rx = yield* OtlpReceiver.scoped(options)
      return yield* body(rx, { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_SERVICE_NAME: "boruna-test" }, [])
    }))

  it.live("every span arrives at the end of the run, with service.name and run → cap parentage", () =>
    withReceiver({}, (rx, env, stderr) =>
      Effect.gen(function*() {
        const out = yield* Effect.provide(threeCalls, stack(env, { stderr: (l) => stderr.push(l) }))
        expect(out).toBe("mock file content for /tmp/x")
        // no waiting: the layer's finalizer flushed before the program returned
        const spans = rx.spans()
        expect(spans).toHaveLength(4)
        const { caps, run } = expectOneTrace(spans, 3)
        expect(run.parentSpanId).toBeUndefined()
        expect(run.attributes["run.entry"]).toBe("main")
        expect(run.resource["service.name"]).toBe("boruna-test")
        expect(run.scope).toBe("boruna")
        expect(caps.map((c) => c.attributes["cap.name"])).toEqual(["time.now", "net.fetch", "fs.read"])
        expect(caps[1].attributes["bytes_in"]).toBe("https://a.example/".length)
        expect(caps[1].attributes["bytes_out"]).toBe(`{"mock": true, "url": "https://a.example/"}`.length)
        expect(caps[0].attributes["bytes_out"]).toBe(0)
        // http/protobuf is the default protocol
        expect(rx.requests().every((r) => r.path === "/v1/traces" && r.contentType === "application/x-protobuf")).toBe(true)
        expect(stderr).toEqual([])
      })))

  it.live("recordLocally with an endpoint tees: the local recorder holds the very spans that were exported", () =>
    withReceiver({}, (rx, env) =>
      Effect.gen(function*() {
        const local = yield* Effect.provide(
          Effect.zipRight(threeCalls, Effect.map(Telemetry.SpanRecorder, (r) => r.spans())),
          stack(env, { recordLocally: true })
        )
        expect(local.map((s) => s.name)).toEqual(["boruna.cap", "boruna.cap", "boruna.cap", "boruna.run"])
        expect(new Set(rx.spans().map((s) => s.spanId))).toEqual(new Set(local.map((s) => s.spanId)))
        expect(local[0].parentSpanId).toBe(local[3].spanId)
        expect(local[0].attributes["cap.name"]).toBe("time.now")
      })))

  it.live("a failing program still delivers every span; the run span has error status", () =>
    withReceiver({}, (rx, env) =>
      Effect.gen(function*() {
        const denyFs: Policy = { schema_version: 1, default_allow: true, rules: { "fs.read": { allow: false, budget: 0 } } }
        const e = yield* Effect.flip(Effect.provide(threeCalls, stack(env, {}, denyFs)))
        expect(e._tag).toBe("Denied")
        const { caps, run } = expectOneTrace(rx.spans(), 3)
        expect(run.status.code).toBe(2)
        expect(caps[2].attributes["error.kind"]).toBe("denied")
        expect(caps[2].status.code).toBe(2)
        expect(caps[0].status.code).toBe(1)
      })))

  it.live("an interrupted program still delivers every span, the run span marked interrupted", () =>
    withReceiver({}, (rx, env) =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const program = Telemetry.withRunSpan(Effect.gen(function*() {
          yield* Gateway.call("time.now", [])
          yield* Gateway.call("random", [])
          yield* Deferred.succeed(started, undefined)
          return yield* Effect.never
        }))
        const fiber = yield* Effect.fork(Effect.provide(program, stack(env)))
        yield* Deferred.await(started)
        yield* Fiber.interrupt(fiber)
        // Fiber.interrupt returns once the fiber, and so the layer's finalizer, is done
        const { run } = expectOneTrace(rx.spans(), 2)
        expect(run.attributes["status.interrupted"]).toBe(true)
      })))

  it.live("the collector answers 500: no retry, and stderr says how many spans were lost", () =>
    withReceiver({ mode: "answer-500" }, (rx, env, stderr) =>
      Effect.gen(function*() {
        yield* Effect.provide(threeCalls, stack(env, { stderr: (l) => stderr.push(l) }))
        expect(rx.spans()).toEqual([])
        expect(rx.requests().map((r) => r.status)).toEqual([500])
        expect(stderr).toEqual([`boruna: telemetry: 4 span(s) could not be delivered to ${rx.tracesUrl}: HTTP 500 Internal Server Error`])
      })))

  it.live("429 with Retry-After: the export is retried after the given delay and delivered", () =>
    withReceiver({ mode: "answer-429-then-200", retryAfter: "1" }, (rx, env, stderr) =>
      Effect.gen(function*() {
        yield* Effect.provide(threeCalls, stack(env, { stderr: (l) => stderr.push(l) }))
        const reqs = rx.requests()
        expect(reqs.map((r) => r.status)).toEqual([429, 200])
        expect(reqs[1].at - reqs[0].at).toBeGreaterThanOrEqual(900)
        expectOneTrace(rx.spans(), 3)
        expect(stderr).toEqual([])
      })))

  for (const status of [502, 503, 504]) {
    it.live(`${status} is retried as well`, () =>
      withReceiver({ mode: "answer-429-then-200", status, retryAfter: "0" }, (rx, env, stderr) =>
        Effect.gen(function*() {
          yield* Effect.provide(threeCalls, stack(env, { stderr: (l) => stderr.push(l) }))
          expect(rx.requests().map((r) => r.status)).toEqual([status, 200])
          expectOneTrace(rx.spans(), 3)
          expect(stderr).toEqual([])
        })))
  }

  it.live("a Retry-After beyond the export deadline is not waited for: the loss is reported at once", () =>
    withReceiver({ mode: "answer-429-then-200", retryAfter: "30", failures: 1 }, (rx, env, stderr) =>
      Effect.gen(function*() {
        const t0 = Date.now()
        yield* Effect.provide(threeCalls, stack(env, { stderr: (l) => stderr.push(l), flushTimeoutMillis: 2_000 }))
        expect(Date.now() - t0).toBeLessThan(2_000 + 2_000)
        expect(rx.requests().map((r) => r.status)).toEqual([429])
        expect(stderr).toHaveLength(1)
        expect(stderr[0]).toMatch(/^boruna: telemetry: 4 span\(s\) could not be delivered to http:\/\/127\.0\.0\.1:\d+\/v1\/traces: /)
      })))

  it.live("a black-holed collector: the program completes and the finalizer returns within the bound", () =>
    withReceiver({ mode: "black-hole" }, (rx, env, stderr) =>
      Effect.gen(function*() {
        const bound = 1_000
        const t0 = Date.now()
        const out = yield* Effect.provide(threeCalls, stack(env, { stderr: (l) => stderr.push(l), flushTimeoutMillis: bound }))
        const elapsed = Date.now() - t0
        expect(out).toBe("mock file content for /tmp/x")
        expect(elapsed).toBeGreaterThanOrEqual(bound - 50)
        expect(elapsed).toBeLessThan(bound + 2_000)
        expect(rx.requests()).toHaveLength(1)
        expect(stderr).toHaveLength(1)
        expect(stderr[0]).toContain(`boruna: telemetry: 4 span(s) could not be delivered to ${rx.tracesUrl}: `)
      })))

  it.live("an unreachable collector (connection refused): the program completes; the loss is reported", () =>
    Effect.gen(function*() {
      const rx = yield* Effect.promise(() => OtlpReceiver.startOtlpReceiver())
      yield* Effect.promise(() => rx.close()) // a port that was just free: nothing listens there now
      const stderr: Array<string> = []
      const t0 = Date.now()
      // refused connections are retried (the collector may be starting) until the flush bound
      const out = yield* Effect.provide(threeCalls, stack({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url }, { stderr: (l) => stderr.push(l), flushTimeoutMillis: 1_500 }))
      expect(out).toBe("mock file content for /tmp/x")
      expect(Date.now() - t0).toBeLessThan(1_500 + 2_000)
      expect(stderr).toHaveLength(1)
      expect(stderr[0]).toContain(`4 span(s) could not be delivered to ${rx.tracesUrl}: `)
      expect(stderr[0]).toContain("ECONNREFUSED")
    }))
})

describe("Telemetry: TRACEPARENT joins a remote trace", () => {
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
  const parentId = "00f067aa0ba902b7"

  it.live("over OTLP: the root span is the remote span's child, in its trace, with its tracestate", () =>
    Effect.scoped(Effect.gen(function*() {
      const rx = yield* OtlpReceiver.scoped()
      yield* Effect.provide(threeCalls, stack({
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
        TRACEPARENT: `00-${traceId}-${parentId}-01`,
        TRACESTATE: "vendor=abc,other=x:y"
      }))
      const { caps, run } = expectOneTrace(rx.spans(), 3)
      expect(run.traceId).toBe(traceId)
      expect(run.parentSpanId).toBe(parentId)
      expect(run.traceState).toBe("vendor=abc,other=x:y")
      expect(caps[0].traceId).toBe(traceId)
    })))

  it.effect("in memory (recordLocally): the same parentage", () =>
    Effect.gen(function*() {
      yield* threeCalls
      const spans = (yield* Telemetry.SpanRecorder).spans()
      const run = spans.find((s) => s.name === "boruna.run")!
      expect(run.traceId).toBe(traceId)
      expect(run.parentSpanId).toBe(parentId)
      expect(spans.every((s) => s.traceId === traceId)).toBe(true)
    }).pipe(Effect.provide(stack({ TRACEPARENT: `00-${traceId}-${parentId}-01` }, { recordLocally: true }))))

  it("invalid traceparent / tracestate values are ignored", () => {
    expect(Telemetry.parseTraceparent(`00-${traceId}-${parentId}-01`)).toMatchObject({ traceId, spanId: parentId, sampled: true })
    expect(Telemetry.parseTraceparent(`00-${traceId}-${parentId}-00`)?.sampled).toBe(false)
    for (const bad of [
      "",
      "garbage",
      `ff-${traceId}-${parentId}-01`, // version ff is invalid
      `00-${"0".repeat(32)}-${parentId}-01`, // all-zero trace id
      `00-${traceId}-${"0".repeat(16)}-01`, // all-zero span id
      `00-${traceId.toUpperCase()}-${parentId}-01`, // upper-case hex
      `00-${traceId}-${parentId}-01-extra`, // version 00 has exactly four fields
      `00-${traceId}-${parentId}` // too short
    ]) {
      expect(Telemetry.parseTraceparent(bad)).toBeUndefined()
    }
    // a later version may carry more fields
    expect(Telemetry.parseTraceparent(`01-${traceId}-${parentId}-01-future`)?.traceId).toBe(traceId)
    // tracestate: @opentelemetry/core's TraceState — an invalid member is dropped, the rest kept
    const state = (raw: string) => {
      const p = Telemetry.parseTraceparent(`00-${traceId}-${parentId}-01`, raw)
      return p === undefined ? "no parent" : Option.getOrUndefined(Context.getOption(p.context, OtelTraceState))?.serialize()
    }
    expect(state("a=1,b=2")).toBe("a=1,b=2")
    expect(state("a=1,B=2")).toBe("a=1") // keys are lower-case
    expect(state("nokey")).toBeUndefined()
    expect(state("")).toBeUndefined()
  })

  it.live("the environment carrier: an invalid TRACESTATE member is dropped, the others reach the collector", () =>
    Effect.scoped(Effect.gen(function*() {
      const rx = yield* OtlpReceiver.scoped()
      yield* Effect.provide(threeCalls, stack({
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
        TRACEPARENT: ` 00-${traceId}-${parentId}-01`,
        TRACESTATE: "vendor=abc,BAD KEY=1,other=x:y"
      }))
      const { run } = expectOneTrace(rx.spans(), 3)
      expect(run.parentSpanId).toBe(parentId)
      expect(run.traceState).toBe("vendor=abc,other=x:y")
    })))

  it.effect("an invalid TRACEPARENT is ignored: the run starts its own trace", () =>
    Effect.gen(function*() {
      yield* threeCalls
      const run = (yield* Telemetry.SpanRecorder).spans().find((s) => s.name === "boruna.run")!
      expect(run.parentSpanId).toBeUndefined()
      expect(run.traceId).not.toBe(traceId)
    }).pipe(Effect.provide(stack({ TRACEPARENT: `00-${traceId}-${parentId}` }, { recordLocally: true }))))
})

describe("OtlpReceiver", () => {
  it.live("decodes an OTLP/protobuf body too", () =>
    Effect.sync(() => {
      const req = {
        resourceSpans: [{
          resource: { attributes: [{ key: "service.name", value: { stringValue: "p" } }] },
          scopeSpans: [{
            scope: { name: "s" },
            spans: [{
              traceId: Buffer.from("4bf92f3577b34da6a3ce929d0e0e4736", "hex"),
              spanId: Buffer.from("00f067aa0ba902b7", "hex"),
              name: "boruna.cap",
              kind: 1,
              attributes: [{ key: "bytes_in", value: { intValue: 7 } }, { key: "cap.name", value: { stringValue: "random" } }],
              status: { code: 2, message: "x" }
            }]
          }]
        }]
      }
      const body = encodeProtobuf(req)
      const [span] = OtlpReceiver.decodeBody(body, "application/x-protobuf")
      expect(span).toMatchObject({
        name: "boruna.cap",
        traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
        spanId: "00f067aa0ba902b7",
        parentSpanId: undefined,
        attributes: { bytes_in: 7, "cap.name": "random" },
        status: { code: 2, message: "x" },
        resource: { "service.name": "p" },
        scope: "s"
      })
    }))
})

/** Encode an ExportTraceServiceRequest with the generated protobuf code (test-only helper). */
const encodeProtobuf = (req: unknown): Buffer => {
  const root = createRequire(import.meta.url)("@opentelemetry/otlp-transformer/build/src/generated/root.js") as {
    opentelemetry: {
      proto: { collector: { trace: { v1: { ExportTraceServiceRequest: { fromObject: (o: unknown) => unknown; encode: (m: unknown) => { finish: () => Uint8Array } } } } } }
    }
  }
  const T = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest
  return Buffer.from(T.encode(T.fromObject(req)).finish())
}
