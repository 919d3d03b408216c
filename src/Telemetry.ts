/**
 * Telemetry: one scoped Layer, chosen from the environment by `fromEnv`, plus the run's root span.
 *
 * - `fromEnv(env, { recordLocally })`: the layer the CLI builds. No OTLP endpoint (or
 *   `OTEL_SDK_DISABLED=true`) ⇒ off: the OpenTelemetry SDK is not even imported and
 *   `TelemetryEnabled` is false (unless `recordLocally`, which turns on the in-memory recorder only).
 *   An endpoint ⇒ OTLP/HTTP export through a batch processor; the finalizer force-flushes and shuts
 *   the provider down (success, failure or interruption) within a bounded time and reports on stderr
 *   how many spans could not be delivered. See docs/design-otel.md.
 * - `withRunSpan(effect)`: the root span `boruna.run` of a run (cap spans become its children); joins
 *   the remote trace named by `TRACEPARENT`/`TRACESTATE` when `fromEnv` found one.
 * - `memory`: an in-memory recorder of finished spans (name, attributes, status, parent, events):
 *   how every telemetry test reads spans. `off`: nothing loaded, no span work.
 *
 * Every OpenTelemetry module is loaded with a dynamic `import()` inside the "on" branch; the
 * `import type`s below are erased at compile time.
 */
import type * as OtelApi from "@opentelemetry/api"
import type { CompressionAlgorithm } from "@opentelemetry/otlp-exporter-base"
import type { ReadableSpan, SpanExporter, SpanProcessor } from "@opentelemetry/sdk-trace-base"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import type * as Http from "node:http"
import { randomBytes } from "node:crypto"
import { TelemetryEnabled } from "./TelemetryFlag.js"

export { TelemetryEnabled }

// ---------------------------------------------------------------------------------------------
// the recorder

export interface RecordedSpan {
  readonly name: string
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  readonly attributes: Readonly<Record<string, unknown>>
  readonly status: "ok" | "error"
  readonly events: ReadonlyArray<{ readonly name: string; readonly attributes: Readonly<Record<string, unknown>> }>
  readonly startTime: bigint
  readonly endTime: bigint
}

export interface SpanRecorderService {
  /** finished spans, in the order they ended */
  readonly spans: () => ReadonlyArray<RecordedSpan>
  readonly clear: () => void
}

export class SpanRecorder extends Context.Tag("boruna/SpanRecorder")<SpanRecorder, SpanRecorderService>() {}

// span ids for the memory tracer, cut from a pooled random buffer (one randomBytes per 512 ids)
let pool = Buffer.alloc(0)
let poolAt = 0
const hex = (bytes: number): string => {
  if (poolAt + bytes > pool.length) {
    pool = randomBytes(4096)
    poolAt = 0
  }
  const s = pool.toString("hex", poolAt, poolAt + bytes)
  poolAt += bytes
  return s
}

class MemorySpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly spanId = hex(8)
  readonly traceId: string
  status: Tracer.SpanStatus
  readonly attributes = new Map<string, unknown>()
  readonly events: Array<{ name: string; attributes: Record<string, unknown> }> = []
  readonly links: Array<Tracer.SpanLink>
  readonly sampled = true
  constructor(
    readonly name: string,
    readonly parent: Option.Option<Tracer.AnySpan>,
    readonly context: Context.Context<never>,
    links: ReadonlyArray<Tracer.SpanLink>,
    startTime: bigint,
    readonly kind: Tracer.SpanKind,
    private readonly onEnd: (s: RecordedSpan) => void
  ) {
    this.traceId = Option.isSome(parent) ? parent.value.traceId : hex(16)
    this.status = { _tag: "Started", startTime }
    this.links = [...links]
  }
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    const startTime = this.status.startTime
    this.status = { _tag: "Ended", startTime, endTime, exit }
    this.onEnd({
      name: this.name,
      traceId: this.traceId,
      spanId: this.spanId,
      parentSpanId: Option.isSome(this.parent) ? this.parent.value.spanId : undefined,
      attributes: Object.fromEntries(this.attributes),
      status: Exit.isSuccess(exit) ? "ok" : "error",
      events: this.events,
      startTime,
      endTime
    })
  }
  attribute(key: string, value: unknown): void {
    this.attributes.set(key, value)
  }
  event(name: string, _startTime: bigint, attributes?: Record<string, unknown>): void {
    this.events.push({ name, attributes: attributes ?? {} })
  }
  addLinks(links: ReadonlyArray<Tracer.SpanLink>): void {
    this.links.push(...links)
  }
}

const makeRecorder = (): { readonly recorder: SpanRecorderService; readonly push: (s: RecordedSpan) => void } => {
  let finished: Array<RecordedSpan> = []
  return { recorder: { spans: () => finished, clear: () => void (finished = []) }, push: (s) => void finished.push(s) }
}

/** A recorder plus the Effect tracer that feeds it. */
export const makeMemoryTracer = (): { readonly recorder: SpanRecorderService; readonly tracer: Tracer.Tracer } => {
  const { push, recorder } = makeRecorder()
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => new MemorySpan(name, parent, context, links, startTime, kind, push),
    context: (f) => f()
  })
  return { recorder, tracer }
}

const emptyRecorder: SpanRecorderService = { spans: () => [], clear: () => {} }

/** Telemetry on, spans kept in memory: read them with `SpanRecorder`. */
export const memory: Layer.Layer<SpanRecorder | TelemetryEnabled> = Layer.unwrapEffect(
  Effect.sync(() => {
    const { recorder, tracer } = makeMemoryTracer()
    return Layer.mergeAll(
      Layer.succeed(SpanRecorder, recorder),
      Layer.succeed(TelemetryEnabled, true),
      Layer.setTracer(tracer)
    )
  })
)

/** Telemetry off: nothing loaded, no span work. */
export const off: Layer.Layer<TelemetryEnabled> = Layer.succeed(TelemetryEnabled, false)

// ---------------------------------------------------------------------------------------------
// W3C trace context (TRACEPARENT / TRACESTATE)

/**
 * The remote parent of this run's root span (from `TRACEPARENT`), or undefined. Set by `fromEnv`
 * and `remoteParent`; read by `withRunSpan`.
 */
export class RunParent extends Context.Reference<RunParent>()("boruna/RunParent", {
  defaultValue: (): Tracer.ExternalSpan | undefined => undefined
}) {}

/**
 * A W3C `tracestate` list. Implements OpenTelemetry's `TraceState` interface so the OTel exporter
 * propagates it, without importing OpenTelemetry.
 */
export class W3CTraceState implements OtelApi.TraceState {
  constructor(readonly entries: ReadonlyArray<readonly [string, string]>) {}
  get(key: string): string | undefined {
    return this.entries.find(([k]) => k === key)?.[1]
  }
  set(key: string, value: string): W3CTraceState {
    return new W3CTraceState([[key, value], ...this.entries.filter(([k]) => k !== key)])
  }
  unset(key: string): W3CTraceState {
    return new W3CTraceState(this.entries.filter(([k]) => k !== key))
  }
  serialize(): string {
    return this.entries.map(([k, v]) => `${k}=${v}`).join(",")
  }
}

const TRACESTATE_KEY = /^(?:[a-z0-9][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})$/
const TRACESTATE_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/

/** Parse a `tracestate` header; undefined when absent, empty or invalid (the whole value is then ignored). */
export const parseTracestate = (raw: string | undefined): W3CTraceState | undefined => {
  if (raw === undefined || raw.trim() === "") return undefined
  const entries: Array<readonly [string, string]> = []
  for (const member of raw.split(",")) {
    const m = member.trim()
    if (m === "") continue
    const eq = m.indexOf("=")
    if (eq <= 0) return undefined
    const key = m.slice(0, eq)
    const value = m.slice(eq + 1)
    if (!TRACESTATE_KEY.test(key) || !TRACESTATE_VALUE.test(value)) return undefined
    if (entries.some(([k]) => k === key)) return undefined
    entries.push([key, value])
  }
  if (entries.length === 0 || entries.length > 32) return undefined
  return new W3CTraceState(entries)
}

/** Context keys @effect/opentelemetry reads trace flags and trace state from (see its Tracer.ts). */
const OtelTraceFlagsKey = Context.GenericTag<"OtelTraceFlags", number>("@effect/opentelemetry/Tracer/OtelTraceFlags")
const OtelTraceStateKey = Context.GenericTag<"OtelTraceState", OtelApi.TraceState>("@effect/opentelemetry/Tracer/OtelTraceState")

/**
 * Parse a W3C `traceparent` (and optional `tracestate`) into the external span a run joins.
 * Undefined when absent or invalid: a malformed header is ignored (the run starts its own trace).
 */
export const parseTraceparent = (traceparent: string | undefined, tracestate?: string): Tracer.ExternalSpan | undefined => {
  if (traceparent === undefined) return undefined
  const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/.exec(traceparent.trim())
  if (m === null) return undefined
  const [, version, traceId, spanId, flagsHex, rest] = m
  if (version === "ff") return undefined
  if (version === "00" && rest !== undefined) return undefined
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined
  const flags = parseInt(flagsHex, 16)
  const state = parseTracestate(tracestate)
  let context = Context.make(OtelTraceFlagsKey, flags & 0xff)
  if (state !== undefined) context = Context.add(context, OtelTraceStateKey, state)
  return Tracer.externalSpan({ traceId, spanId, sampled: (flags & 1) === 1, context })
}

/** Set `RunParent` from `TRACEPARENT` / `TRACESTATE` in `env` (for use with `memory`; `fromEnv` does it itself). */
export const remoteParent = (env: Record<string, string | undefined> = process.env): Layer.Layer<RunParent> =>
  Layer.succeed(RunParent, parseTraceparent(env.TRACEPARENT, env.TRACESTATE))

/**
 * Run `self` inside the run's root span `boruna.run` (cap spans become its children: one run, one
 * trace). With a remote parent (`TRACEPARENT`) the root span is that parent's child. When telemetry
 * is off this costs one context lookup and nothing else.
 */
export const withRunSpan = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  attributes?: Record<string, unknown>
): Effect.Effect<A, E, R> =>
  Effect.flatMap(TelemetryEnabled, (on) =>
    on
      ? Effect.flatMap(RunParent, (parent) =>
        Effect.withSpan(
          self,
          "boruna.run",
          parent === undefined ? { attributes, kind: "internal" } : { attributes, kind: "internal", parent }
        ))
      : self)

// ---------------------------------------------------------------------------------------------
// configuration from the environment

/** A telemetry setting in the environment is unusable; raised when the layer is built. */
export class TelemetryConfigError extends Data.TaggedError("TelemetryConfigError")<{
  readonly variable: string
  readonly reason: string
}> {
  override get message(): string {
    return `telemetry configuration: ${this.variable}: ${this.reason}`
  }
}

export interface ExportConfig {
  /** the URL spans are POSTed to */
  readonly tracesUrl: string
  /** resource attributes, `service.name` included */
  readonly resource: Readonly<Record<string, string>>
  readonly headers: Readonly<Record<string, string>>
  readonly compression: "none" | "gzip"
  readonly maxQueueSize: number
  readonly maxExportBatchSize: number
  readonly scheduledDelayMillis: number
  /** bound on the final flush + shutdown, and on every single export */
  readonly flushTimeoutMillis: number
}

type Env = Readonly<Record<string, string | undefined>>

const nonEmpty = (env: Env, name: string): string | undefined => {
  const v = env[name]?.trim()
  return v === undefined || v === "" ? undefined : v
}

const DEFAULT_FLUSH_TIMEOUT_MS = 5_000

/** `k=v,k2=v2`, keys and values percent-decoded (the OTel env-var syntax for headers and resource attributes). */
export const parseKeyValueList = (variable: string, raw: string | undefined): Either.Either<Record<string, string>, TelemetryConfigError> => {
  const out: Record<string, string> = {}
  if (raw === undefined) return Either.right(out)
  for (const item of raw.split(",")) {
    if (item.trim() === "") continue
    const eq = item.indexOf("=")
    if (eq <= 0) return Either.left(new TelemetryConfigError({ variable, reason: `'${item.trim()}' is not of the form key=value` }))
    let key: string
    let value: string
    try {
      key = decodeURIComponent(item.slice(0, eq).trim())
      value = decodeURIComponent(item.slice(eq + 1).trim())
    } catch {
      return Either.left(new TelemetryConfigError({ variable, reason: `'${item.trim()}' has an invalid percent-encoding` }))
    }
    if (key === "") return Either.left(new TelemetryConfigError({ variable, reason: `'${item.trim()}' has an empty key` }))
    out[key] = value
  }
  return Either.right(out)
}

const httpUrl = (variable: string, value: string): Either.Either<string, TelemetryConfigError> => {
  let u: URL
  try {
    u = new URL(value)
  } catch {
    return Either.left(new TelemetryConfigError({ variable, reason: `'${value}' is not an absolute http(s) URL (e.g. http://localhost:4318)` }))
  }
  if ((u.protocol !== "http:" && u.protocol !== "https:") || u.hostname === "") {
    return Either.left(new TelemetryConfigError({ variable, reason: `'${value}' is not an absolute http(s) URL (e.g. http://localhost:4318)` }))
  }
  return Either.right(value)
}

const positiveInt = (env: Env, variable: string, fallback: number): Either.Either<number, TelemetryConfigError> => {
  const v = nonEmpty(env, variable)
  if (v === undefined) return Either.right(fallback)
  const n = Number(v)
  return Number.isSafeInteger(n) && n > 0
    ? Either.right(n)
    : Either.left(new TelemetryConfigError({ variable, reason: `'${v}' is not a positive integer` }))
}

/**
 * Read the export settings from `env`. `Right(undefined)` means telemetry is off (no endpoint, or
 * `OTEL_SDK_DISABLED=true`); `Left` is a configuration error.
 */
export const readConfig = (
  env: Env,
  options: { readonly flushTimeoutMillis?: number } = {}
): Either.Either<ExportConfig | undefined, TelemetryConfigError> =>
  Either.gen(function*() {
    if (nonEmpty(env, "OTEL_SDK_DISABLED")?.toLowerCase() === "true") return undefined
    const specific = nonEmpty(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    const base = nonEmpty(env, "OTEL_EXPORTER_OTLP_ENDPOINT")
    if (specific === undefined && base === undefined) return undefined
    const tracesUrl = specific !== undefined
      ? yield* httpUrl("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", specific)
      : (yield* httpUrl("OTEL_EXPORTER_OTLP_ENDPOINT", base!)).replace(/\/+$/, "") + "/v1/traces"
    const protocol = nonEmpty(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") ?? nonEmpty(env, "OTEL_EXPORTER_OTLP_PROTOCOL")
    if (protocol !== undefined && protocol !== "http/json" && protocol !== "http/protobuf") {
      const variable = nonEmpty(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") !== undefined ? "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" : "OTEL_EXPORTER_OTLP_PROTOCOL"
      return yield* Either.left(new TelemetryConfigError({ variable, reason: `'${protocol}' is not supported; boruna exports OTLP over HTTP (http/json)` }))
    }
    const resource = yield* parseKeyValueList("OTEL_RESOURCE_ATTRIBUTES", env.OTEL_RESOURCE_ATTRIBUTES)
    const serviceName = nonEmpty(env, "OTEL_SERVICE_NAME")
    if (serviceName !== undefined) resource["service.name"] = serviceName
    else if ((resource["service.name"] ?? "") === "") resource["service.name"] = "boruna"
    const headers = {
      ...(yield* parseKeyValueList("OTEL_EXPORTER_OTLP_HEADERS", env.OTEL_EXPORTER_OTLP_HEADERS)),
      ...(yield* parseKeyValueList("OTEL_EXPORTER_OTLP_TRACES_HEADERS", env.OTEL_EXPORTER_OTLP_TRACES_HEADERS))
    }
    const compressionVar = nonEmpty(env, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION") !== undefined
      ? "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"
      : "OTEL_EXPORTER_OTLP_COMPRESSION"
    const compression = nonEmpty(env, compressionVar) ?? "none"
    if (compression !== "none" && compression !== "gzip") {
      return yield* Either.left(new TelemetryConfigError({ variable: compressionVar, reason: `'${compression}' must be 'none' or 'gzip'` }))
    }
    const maxQueueSize = yield* positiveInt(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048)
    const maxExportBatchSize = Math.min(maxQueueSize, yield* positiveInt(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512))
    const scheduledDelayMillis = yield* positiveInt(env, "OTEL_BSP_SCHEDULE_DELAY", 5_000)
    const flushTimeoutMillis = options.flushTimeoutMillis ??
      (yield* positiveInt(env, "BORUNA_TELEMETRY_FLUSH_TIMEOUT_MS", DEFAULT_FLUSH_TIMEOUT_MS))
    return { tracesUrl, resource, headers, compression, maxQueueSize, maxExportBatchSize, scheduledDelayMillis, flushTimeoutMillis }
  })

// ---------------------------------------------------------------------------------------------
// the layer

export interface FromEnvOptions {
  /** keep finished spans in memory for `SpanRecorder` (the CLI's `--trace` / `BORUNA_TRACE=1`) */
  readonly recordLocally?: boolean
  /** bound on the final flush + shutdown (default 5000 ms, or `BORUNA_TELEMETRY_FLUSH_TIMEOUT_MS`) */
  readonly flushTimeoutMillis?: number
  /** where the undelivered-spans line goes (default: process.stderr) */
  readonly stderr?: (line: string) => void
}

const writeStderr = (line: string): void => void process.stderr.write(line + "\n")

const OK_CODE = 0 // ExportResultCode.SUCCESS
const ERROR_STATUS = 2 // SpanStatusCode.ERROR

const hrToNanos = (t: OtelApi.HrTime): bigint => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1])

const toRecorded = (s: ReadableSpan): RecordedSpan => ({
  name: s.name,
  traceId: s.spanContext().traceId,
  spanId: s.spanContext().spanId,
  parentSpanId: s.parentSpanContext?.spanId,
  attributes: { ...s.attributes },
  status: s.status.code === ERROR_STATUS || s.attributes["status.interrupted"] === true ? "error" : "ok",
  events: s.events.map((e) => ({ name: e.name, attributes: { ...e.attributes } })),
  startTime: hrToNanos(s.startTime),
  endTime: hrToNanos(s.endTime)
})

const describeError = (e: unknown): string => {
  if (e === undefined || e === null) return "export failed"
  if (typeof e === "object") {
    const o = e as { code?: unknown; message?: unknown; data?: unknown }
    if (typeof o.code === "number") {
      const msg = typeof o.message === "string" && o.message !== "" ? ` ${o.message}` : ""
      return `HTTP ${o.code}${msg}`
    }
    if (typeof o.message === "string" && o.message !== "") return o.message
    if (typeof (o as { code?: unknown }).code === "string") return String((o as { code: string }).code)
  }
  return String(e).replace(/^Error: /, "")
}

const loadSdk = () =>
  Effect.tryPromise({
    try: async () => {
      const [exporter, sdk, resources, effectTracer] = await Promise.all([
        import("@opentelemetry/exporter-trace-otlp-http"),
        import("@opentelemetry/sdk-trace-base"),
        import("@opentelemetry/resources"),
        import("@effect/opentelemetry/Tracer")
      ])
      return { exporter, sdk, resources, effectTracer }
    },
    catch: (e) => new TelemetryConfigError({ variable: "OTEL_EXPORTER_OTLP_ENDPOINT", reason: `cannot load the OpenTelemetry SDK: ${describeError(e)}` })
  })

/** The exporting layer for a valid config (OTel loaded here, and only here). */
const exporting = (
  config: ExportConfig,
  parent: Tracer.ExternalSpan | undefined,
  options: FromEnvOptions
): Layer.Layer<TelemetryEnabled | SpanRecorder, TelemetryConfigError> =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const { effectTracer, exporter: exporterModule, resources, sdk } = yield* loadSdk()
    const stderr = options.stderr ?? writeStderr
    const local = options.recordLocally === true ? makeRecorder() : undefined

    // counts: every sampled span that ended, and how many of them an export delivered
    let ended = 0
    let exported = 0
    let lastError: string | undefined
    let agent: Http.Agent | undefined

    const otlp = new exporterModule.OTLPTraceExporter({
      url: config.tracesUrl,
      headers: { ...config.headers },
      compression: config.compression as CompressionAlgorithm,
      // one export (retries included: the exporter retries 429/502/503/504, honouring Retry-After,
      // within this deadline) never outlives the flush bound
      timeoutMillis: config.flushTimeoutMillis,
      // the final flush hands every queued batch to the exporter at once; its default limit (30
      // in flight) would fail the rest ("Concurrent export limit reached") and lose their spans
      concurrencyLimit: Math.ceil(config.maxQueueSize / config.maxExportBatchSize) + 2,
      // our own agent, so a flush that timed out can cut its sockets
      httpAgentOptions: async (protocol) => {
        const m = protocol === "http:" ? await import("node:http") : await import("node:https")
        agent = new m.Agent({ keepAlive: true })
        return agent
      }
    })
    const counting: SpanExporter = {
      export: (spans, done) =>
        otlp.export(spans, (result) => {
          if (result.code === OK_CODE) exported += spans.length
          else lastError = describeError(result.error)
          done(result)
        }),
      shutdown: () => otlp.shutdown(),
      forceFlush: () => otlp.forceFlush()
    }
    const counter: SpanProcessor = {
      onStart: () => {},
      onEnd: (span) => {
        ended++
        if (local !== undefined) local.push(toRecorded(span))
      },
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve()
    }
    const batch = new sdk.BatchSpanProcessor(counting, {
      maxQueueSize: config.maxQueueSize,
      maxExportBatchSize: config.maxExportBatchSize,
      scheduledDelayMillis: config.scheduledDelayMillis,
      exportTimeoutMillis: config.flushTimeoutMillis
    })
    const provider = new sdk.BasicTracerProvider({
      resource: resources.resourceFromAttributes(config.resource),
      sampler: new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() }),
      spanProcessors: [counter, batch]
    })

    // flush + shutdown, bounded by a real-time timer (not Effect's clock: a TestClock must not stall it)
    const flushAndShutdown = (): Promise<{ readonly timedOut: boolean }> =>
      new Promise((resolve) => {
        const timer = setTimeout(() => resolve({ timedOut: true }), config.flushTimeoutMillis)
        const finish = () => {
          clearTimeout(timer)
          resolve({ timedOut: false })
        }
        provider.forceFlush().then(() => provider.shutdown()).then(finish, (e) => {
          lastError ??= describeError(e)
          finish()
        })
      })

    yield* Effect.addFinalizer(() =>
      Effect.promise(flushAndShutdown).pipe(Effect.flatMap(({ timedOut }) =>
        Effect.sync(() => {
          if (timedOut) agent?.destroy()
          const lost = ended - exported
          if (lost > 0) {
            const reason = timedOut
              ? `flush timed out after ${config.flushTimeoutMillis} ms${lastError === undefined ? "" : ` (${lastError})`}`
              : lastError ?? `dropped: the export queue (${config.maxQueueSize}) was full`
            stderr(`boruna: telemetry: ${lost} span(s) could not be delivered to ${config.tracesUrl}: ${reason}`)
          }
          agent?.destroy()
        })
      ))
    )

    const tracer = provider.getTracer("boruna")
    return Layer.mergeAll(
      effectTracer.layerWithoutOtelTracer.pipe(Layer.provide(Layer.succeed(effectTracer.OtelTracer, tracer))),
      Layer.succeed(TelemetryEnabled, true),
      Layer.succeed(SpanRecorder, local === undefined ? emptyRecorder : local.recorder),
      Layer.succeed(RunParent, parent)
    )
  }))

/**
 * The one telemetry layer the CLI builds, chosen from `env`:
 * - no `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
 *   `OTEL_SDK_DISABLED=true` ⇒ off (no OTel import); with `recordLocally`, the in-memory recorder;
 * - otherwise OTLP/HTTP export (plus the in-memory recorder when `recordLocally`).
 * `TRACEPARENT`/`TRACESTATE` set the remote parent `withRunSpan` joins. A malformed setting fails
 * the build with `TelemetryConfigError`.
 */
export const fromEnv = (
  env: Record<string, string | undefined> = process.env,
  options: FromEnvOptions = {}
): Layer.Layer<TelemetryEnabled | SpanRecorder, TelemetryConfigError> =>
  Layer.unwrapEffect(Effect.suspend(() => {
    const config = readConfig(env, options.flushTimeoutMillis === undefined ? {} : { flushTimeoutMillis: options.flushTimeoutMillis })
    if (Either.isLeft(config)) return Effect.fail(config.left)
    const parent = parseTraceparent(env.TRACEPARENT, env.TRACESTATE)
    if (config.right !== undefined) return Effect.succeed(exporting(config.right, parent, options))
    if (options.recordLocally === true) {
      return Effect.succeed(Layer.mergeAll(memory, Layer.succeed(RunParent, parent)))
    }
    return Effect.succeed(Layer.mergeAll(off, Layer.succeed(SpanRecorder, emptyRecorder)))
  }))
