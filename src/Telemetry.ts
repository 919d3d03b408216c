/**
 * Telemetry: one scoped Layer, chosen from the environment by `fromEnv`, plus the run's root span.
 *
 * - `fromEnv(env, { recordLocally })`: the layer the CLI builds. No usable OTLP endpoint (or
 *   `OTEL_SDK_DISABLED=true`) ⇒ off: the OpenTelemetry SDK is not even imported and
 *   `TelemetryEnabled` is false (unless `recordLocally`, which turns on the in-memory recorder only).
 *   An endpoint ⇒ OTLP/HTTP export (`http/protobuf` by default, or `http/json`) through a batch
 *   processor, with backpressure instead of drop, retries with jitter, a root span that is always
 *   delivered, and a finalizer that force-flushes and shuts the exporter down (success, failure or
 *   interruption) within a bounded time and reports on stderr how many spans could not be delivered.
 *   An unusable setting is one warning line on stderr and is ignored (`resolveConfig`).
 * - Exported spans say nothing of an argument, a result or the policy: a failure is the capability,
 *   its kind and a fixed reason (`summarizeFailure`), never a message or a stack; the exception is
 *   recorded once, where it happened.
 * - `withRunSpan(effect)`: the root span `boruna.run` of a run (cap spans become its children); joins
 *   the remote trace named by `TRACEPARENT`/`TRACESTATE` when `fromEnv` found one.
 * - `memory`: an in-memory recorder of finished spans (name, attributes, status, parent, events):
 *   how every telemetry test reads spans. `off`: nothing loaded, no span work.
 * - `doctor(env)`: how every variable was resolved, and one test span sent (`boruna doctor`);
 *   `undeliveredReport()`: the loss lines a process that must exit now prints.
 * See docs/design-otel.md.
 *
 * Every OpenTelemetry module is loaded with a dynamic `import()` inside the "on" branch; the
 * `import type`s below are erased at compile time.
 */
import type * as OtelApi from "@opentelemetry/api"
import type { CompressionAlgorithm } from "@opentelemetry/otlp-exporter-base"
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base"
import * as Cause from "effect/Cause"
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
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { resolve as resolvePath } from "node:path"
import { VERSION } from "./cli/version.js"
import type { ExporterTransport } from "./TelemetryHttp.js"
import { ExportBackpressure, type ExportBackpressureService, isRecorded, markRecorded, summarizeFailure, TelemetryEnabled } from "./TelemetryFlag.js"

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

/** Context keys @effect/opentelemetry reads trace flags and trace state from (see its Tracer.ts). */
const OtelTraceFlagsKey = Context.GenericTag<"OtelTraceFlags", number>("@effect/opentelemetry/Tracer/OtelTraceFlags")
const OtelTraceStateKey = Context.GenericTag<"OtelTraceState", OtelApi.TraceState>("@effect/opentelemetry/Tracer/OtelTraceState")

/**
 * `@opentelemetry/core`'s W3C trace-context propagator, loaded (synchronously, once) the first time
 * a trace context is actually there to read: a run or an MCP call without one loads nothing.
 */
let w3c: { readonly propagator: OtelApi.TextMapPropagator; readonly api: typeof OtelApi } | undefined
const loadW3C = () => {
  if (w3c === undefined) {
    const require = createRequire(import.meta.url)
    const core = require("@opentelemetry/core") as typeof import("@opentelemetry/core")
    w3c = { propagator: new core.W3CTraceContextPropagator(), api: require("@opentelemetry/api") as typeof OtelApi }
  }
  return w3c
}

/** The carrier's own keys, or the environment's upper-case ones (`TRACEPARENT`, `TRACESTATE`). */
const headerGetter: OtelApi.TextMapGetter<Readonly<Record<string, string | undefined>>> = {
  get: (carrier, key) => carrier[key],
  keys: (carrier) => Object.keys(carrier)
}
const envGetter: OtelApi.TextMapGetter<Readonly<Record<string, string | undefined>>> = {
  get: (carrier, key) => carrier[key.toUpperCase()],
  keys: (carrier) => Object.keys(carrier)
}

const extract = (
  carrier: Readonly<Record<string, string | undefined>>,
  getter: OtelApi.TextMapGetter<Readonly<Record<string, string | undefined>>>
): Tracer.ExternalSpan | undefined => {
  const raw = getter.get(carrier, "traceparent")
  if (raw === undefined || raw === "" || Array.isArray(raw)) return undefined
  const { api, propagator } = loadW3C()
  const sc = api.trace.getSpanContext(propagator.extract(api.ROOT_CONTEXT, carrier, getter))
  if (sc === undefined || !api.trace.isSpanContextValid(sc)) return undefined
  let context = Context.make(OtelTraceFlagsKey, sc.traceFlags & 0xff)
  if (sc.traceState !== undefined && sc.traceState.serialize() !== "") context = Context.add(context, OtelTraceStateKey, sc.traceState)
  return Tracer.externalSpan({ traceId: sc.traceId, spanId: sc.spanId, sampled: (sc.traceFlags & 1) === 1, context })
}

/**
 * Parse a W3C `traceparent` (and optional `tracestate`) into the external span a run joins, with
 * `@opentelemetry/core`'s `W3CTraceContextPropagator`. Undefined when absent or invalid (the run
 * starts its own trace); an invalid `tracestate` member is dropped, the rest kept (as the
 * propagator does).
 */
export const parseTraceparent = (traceparent: string | undefined, tracestate?: string): Tracer.ExternalSpan | undefined =>
  extract(tracestate === undefined ? { traceparent } : { traceparent, tracestate }, headerGetter)

/** The remote parent named by `TRACEPARENT` / `TRACESTATE` in an environment. */
const parentFromEnv = (env: Readonly<Record<string, string | undefined>>): Tracer.ExternalSpan | undefined => extract(env, envGetter)

/** Set `RunParent` from `TRACEPARENT` / `TRACESTATE` in `env` (for use with `memory`; `fromEnv` does it itself). */
export const remoteParent = (env: Record<string, string | undefined> = process.env): Layer.Layer<RunParent> =>
  Layer.sync(RunParent, () => parentFromEnv(env))

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
          parent === undefined
            ? { attributes, kind: "internal", captureStackTrace: false }
            : { attributes, kind: "internal", captureStackTrace: false, parent }
        ))
      : self)

// ---------------------------------------------------------------------------------------------
// configuration from the environment

/**
 * A telemetry setting that could not be used. Since the SDK environment specification says such a
 * value is warned about and ignored (telemetry must never break the application), this is only ever
 * the text of a warning; `TelemetryConfigError` is kept for the one failure left: an SDK that cannot
 * be loaded at all.
 */
export class TelemetryConfigError extends Data.TaggedError("TelemetryConfigError")<{
  readonly variable: string
  readonly reason: string
}> {
  override get message(): string {
    return `telemetry configuration: ${this.variable}: ${this.reason}`
  }
}

export type OtlpProtocol = "http/protobuf" | "http/json"

export interface ExportConfig {
  /** the URL spans are POSTed to */
  readonly tracesUrl: string
  readonly protocol: OtlpProtocol
  /** resource attributes from the environment (`OTEL_RESOURCE_ATTRIBUTES`, `service.name`) */
  readonly resource: Readonly<Record<string, string>>
  readonly headers: Readonly<Record<string, string>>
  readonly compression: "none" | "gzip"
  /** bound on one export request, retries included (`OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT`) */
  readonly exportTimeoutMillis: number
  readonly maxQueueSize: number
  readonly maxExportBatchSize: number
  readonly scheduledDelayMillis: number
  /** the batch processor's bound on one export (`OTEL_BSP_EXPORT_TIMEOUT`) */
  readonly bspExportTimeoutMillis: number
  /** bound on the final flush + shutdown (`BORUNA_TELEMETRY_FLUSH_TIMEOUT_MS`) */
  readonly flushTimeoutMillis: number
  /**
   * TLS for an https endpoint, the files' contents (`OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE`,
   * `…_CLIENT_CERTIFICATE`, `…_CLIENT_KEY`): trusted roots, and the client certificate and key
   */
  readonly tls: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer }
}

/** How one variable was resolved (what `boruna doctor` prints). */
export interface ResolvedSetting {
  readonly variable: string
  /** the raw value, or undefined when unset (header values are not kept: they carry credentials) */
  readonly raw: string | undefined
  /** the value in effect */
  readonly used: string
  /** set when the raw value was unusable and ignored */
  readonly warning?: string
}

export interface ResolvedConfig {
  /** undefined: telemetry is off (no endpoint, `OTEL_SDK_DISABLED=true`, or no usable endpoint) */
  readonly config: ExportConfig | undefined
  readonly settings: ReadonlyArray<ResolvedSetting>
  /** one line per unusable value: `boruna: telemetry: VAR: 'value' … ignored` */
  readonly warnings: ReadonlyArray<string>
}

type Env = Readonly<Record<string, string | undefined>>

const nonEmpty = (env: Env, name: string): string | undefined => {
  const v = env[name]?.trim()
  return v === undefined || v === "" ? undefined : v
}

export const DEFAULTS = {
  protocol: "http/protobuf" as OtlpProtocol,
  exportTimeoutMillis: 10_000,
  maxQueueSize: 2048,
  maxExportBatchSize: 512,
  scheduledDelayMillis: 5_000,
  bspExportTimeoutMillis: 30_000,
  flushTimeoutMillis: 5_000
} as const

/**
 * `k=v,k2=v2`, keys and values percent-decoded (the OTel env-var syntax for headers and resource
 * attributes). Left: the reason the whole value is unusable.
 */
export const parseKeyValueList = (raw: string | undefined): Either.Either<Record<string, string>, string> => {
  const out: Record<string, string> = {}
  if (raw === undefined) return Either.right(out)
  for (const item of raw.split(",")) {
    if (item.trim() === "") continue
    const eq = item.indexOf("=")
    if (eq <= 0) return Either.left(`'${item.trim()}' is not of the form key=value`)
    let key: string
    let value: string
    try {
      key = decodeURIComponent(item.slice(0, eq).trim())
      value = decodeURIComponent(item.slice(eq + 1).trim())
    } catch {
      return Either.left(`'${item.trim()}' has an invalid percent-encoding`)
    }
    if (key === "") return Either.left(`'${item.trim()}' has an empty key`)
    out[key] = value
  }
  return Either.right(out)
}

const isHttpUrl = (value: string): boolean => {
  try {
    const u = new URL(value)
    return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== ""
  } catch {
    return false
  }
}

/**
 * Resolve every telemetry variable of `env`. Never fails: an unusable value is one warning and is
 * ignored (its default applies); enum values are case-insensitive; a specific `…_TRACES_…` variable
 * wins over the general one.
 */
export const resolveConfig = (env: Env, options: { readonly flushTimeoutMillis?: number } = {}): ResolvedConfig => {
  const settings: Array<ResolvedSetting> = []
  const warnings: Array<string> = []
  const note = (variable: string, raw: string | undefined, used: string, warning?: string): void => {
    settings.push(warning === undefined ? { variable, raw, used } : { variable, raw, used, warning })
    if (warning !== undefined) warnings.push(`boruna: telemetry: ${variable}: ${warning}`)
  }
  /** the specific variable when set, else the general one */
  const pick = (specific: string, general: string): { readonly variable: string; readonly raw: string | undefined } => {
    const s = nonEmpty(env, specific)
    return s !== undefined ? { variable: specific, raw: s } : { variable: general, raw: nonEmpty(env, general) }
  }
  const int = (variable: string, fallback: number, min: number): number => {
    const raw = nonEmpty(env, variable)
    if (raw === undefined) {
      note(variable, undefined, String(fallback))
      return fallback
    }
    const n = Number(raw)
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min) {
      note(variable, raw, String(fallback), `'${raw}' is not ${min > 0 ? "a positive" : "a non-negative"} integer; using ${fallback}`)
      return fallback
    }
    note(variable, raw, String(n))
    return n
  }

  const disabledRaw = nonEmpty(env, "OTEL_SDK_DISABLED")
  const disabledWord = disabledRaw?.toLowerCase()
  if (disabledWord !== undefined && disabledWord !== "true" && disabledWord !== "false") {
    note("OTEL_SDK_DISABLED", disabledRaw, "false", `'${disabledRaw}' is not true or false; using false`)
  } else note("OTEL_SDK_DISABLED", disabledRaw, disabledWord ?? "false")
  if (disabledWord === "true") return { config: undefined, settings, warnings }

  // endpoint: the traces endpoint as-is, else <base>/v1/traces; an unusable one is ignored
  let tracesUrl: string | undefined
  const specific = nonEmpty(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
  const base = nonEmpty(env, "OTEL_EXPORTER_OTLP_ENDPOINT")
  const badUrl = (v: string) => `'${v}' is not an absolute http(s) URL (e.g. http://localhost:4318); ignored`
  if (specific !== undefined) {
    if (isHttpUrl(specific)) {
      tracesUrl = specific
      note("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", specific, specific)
    } else note("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", specific, "(unset)", badUrl(specific))
  } else note("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", undefined, "(unset)")
  if (base !== undefined) {
    if (isHttpUrl(base)) {
      const joined = base.replace(/\/+$/, "") + "/v1/traces"
      tracesUrl ??= joined
      note("OTEL_EXPORTER_OTLP_ENDPOINT", base, specific !== undefined && tracesUrl !== joined ? `${base} (traces endpoint wins)` : base)
    } else note("OTEL_EXPORTER_OTLP_ENDPOINT", base, "(unset)", badUrl(base))
  } else note("OTEL_EXPORTER_OTLP_ENDPOINT", undefined, "(unset)")

  // protocol
  const p = pick("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
  let protocol: OtlpProtocol = DEFAULTS.protocol
  const pw = p.raw?.toLowerCase()
  if (pw === undefined) note(p.variable, undefined, protocol)
  else if (pw === "http/protobuf" || pw === "http/json") {
    protocol = pw
    note(p.variable, p.raw, protocol)
  } else if (pw === "grpc") {
    note(p.variable, p.raw, protocol, `'${p.raw}' is not supported (boruna exports OTLP over HTTP); using http/protobuf`)
  } else note(p.variable, p.raw, protocol, `'${p.raw}' is not http/protobuf, http/json or grpc; using http/protobuf`)

  // resource: OTEL_RESOURCE_ATTRIBUTES (discarded whole when unusable, as the spec says), then OTEL_SERVICE_NAME
  const resourceRaw = nonEmpty(env, "OTEL_RESOURCE_ATTRIBUTES")
  const parsedResource = parseKeyValueList(resourceRaw)
  const resource: Record<string, string> = Either.isRight(parsedResource) ? parsedResource.right : {}
  if (Either.isLeft(parsedResource)) note("OTEL_RESOURCE_ATTRIBUTES", resourceRaw, "(none)", `${parsedResource.left}; the whole value is ignored`)
  else note("OTEL_RESOURCE_ATTRIBUTES", resourceRaw, Object.keys(resource).length === 0 ? "(none)" : Object.keys(resource).join(", "))
  const serviceName = nonEmpty(env, "OTEL_SERVICE_NAME")
  if (serviceName !== undefined) resource["service.name"] = serviceName
  else if ((resource["service.name"] ?? "") === "") resource["service.name"] = "boruna"
  note("OTEL_SERVICE_NAME", serviceName, resource["service.name"])

  // headers: a general list, then the traces list key by key; an unusable list is ignored whole
  const headers: Record<string, string> = {}
  for (const variable of ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"]) {
    const raw = nonEmpty(env, variable)
    const parsed = parseKeyValueList(raw)
    // the values are credentials: only the keys are reported
    if (Either.isLeft(parsed)) note(variable, raw === undefined ? undefined : "(set)", "(none)", `${parsed.left.replace(/=.*'/, "=…'")}; the whole value is ignored`)
    else {
      Object.assign(headers, parsed.right)
      note(variable, raw === undefined ? undefined : "(set)", Object.keys(parsed.right).length === 0 ? "(none)" : Object.keys(parsed.right).join(", "))
    }
  }

  // compression
  const c = pick("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION")
  const cw = c.raw?.toLowerCase()
  let compression: "none" | "gzip" = "none"
  if (cw === "gzip" || cw === "none") compression = cw
  note(c.variable, c.raw, compression, cw === undefined || cw === "gzip" || cw === "none" ? undefined : `'${c.raw}' is not gzip or none; using none`)

  // timeouts and the batch processor
  const t = pick("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
  const exportTimeoutMillis = int(t.variable, DEFAULTS.exportTimeoutMillis, 1)
  if (t.variable === "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") note("OTEL_EXPORTER_OTLP_TIMEOUT", nonEmpty(env, "OTEL_EXPORTER_OTLP_TIMEOUT"), "(traces timeout wins)")
  const maxQueueSize = int("OTEL_BSP_MAX_QUEUE_SIZE", DEFAULTS.maxQueueSize, 1)
  let maxExportBatchSize = int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULTS.maxExportBatchSize, 1)
  if (maxExportBatchSize > maxQueueSize) {
    const raw = nonEmpty(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
    if (raw !== undefined) warnings.push(`boruna: telemetry: OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '${raw}' is above OTEL_BSP_MAX_QUEUE_SIZE; using ${maxQueueSize}`)
    maxExportBatchSize = maxQueueSize
  }
  const scheduledDelayMillis = int("OTEL_BSP_SCHEDULE_DELAY", DEFAULTS.scheduledDelayMillis, 0)
  const bspExportTimeoutMillis = int("OTEL_BSP_EXPORT_TIMEOUT", DEFAULTS.bspExportTimeoutMillis, 1)
  const flushTimeoutMillis = options.flushTimeoutMillis ?? int("BORUNA_TELEMETRY_FLUSH_TIMEOUT_MS", DEFAULTS.flushTimeoutMillis, 1)

  // TLS files (paths relative to the working directory); an unreadable one is ignored
  const file = (specificName: string, generalName: string): Buffer | undefined => {
    const f = pick(specificName, generalName)
    if (f.raw === undefined) {
      note(f.variable, undefined, "(unset)")
      return undefined
    }
    try {
      const content = readFileSync(resolvePath(f.raw))
      note(f.variable, f.raw, f.raw)
      return content
    } catch (e) {
      const code = typeof e === "object" && e !== null && typeof (e as { code?: unknown }).code === "string" ? (e as { code: string }).code : "unreadable"
      note(f.variable, f.raw, "(unset)", `'${f.raw}' cannot be read (${code}); ignored`)
      return undefined
    }
  }
  const ca = file("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE")
  let cert = file("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")
  let key = file("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "OTEL_EXPORTER_OTLP_CLIENT_KEY")
  if ((cert === undefined) !== (key === undefined)) {
    warnings.push(`boruna: telemetry: OTEL_EXPORTER_OTLP_CLIENT_${cert === undefined ? "KEY" : "CERTIFICATE"}: usable without a usable client ${cert === undefined ? "certificate" : "key"}; the client certificate is not used`)
    cert = undefined
    key = undefined
  }
  const tls = { ...(ca === undefined ? {} : { ca }), ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }) }

  if (tracesUrl === undefined) return { config: undefined, settings, warnings }
  return {
    config: {
      tracesUrl,
      protocol,
      resource,
      headers,
      compression,
      exportTimeoutMillis,
      maxQueueSize,
      maxExportBatchSize,
      scheduledDelayMillis,
      bspExportTimeoutMillis,
      flushTimeoutMillis,
      tls
    },
    settings,
    warnings
  }
}

// ---------------------------------------------------------------------------------------------
// the exporting tracer: Effect spans that are exported as OpenTelemetry spans

/**
 * What an exported span says about a failure (the status message, the `exception` event) comes from
 * `summarizeFailure`: the capability, the error kind and a fixed reason — never the error's message,
 * which may quote an argument, a path, a URL query, a policy list or a response, and never a stack
 * trace. The exception event is recorded once, on the span where the failure happened; a span that
 * fails with a failure a child already recorded (and the run span, always) records it as its status.
 */
const KIND: Readonly<Record<Tracer.SpanKind, number>> = { internal: 0, server: 1, client: 2, producer: 3, consumer: 4 }
const NS = 1_000_000_000n

const hrTime = (t: bigint): OtelApi.HrTime => [Number(t / NS), Number(t % NS)]

const failureOf = (cause: Cause.Cause<unknown>): unknown => {
  const f = Cause.failureOption(cause)
  if (Option.isSome(f)) return f.value
  const d = Cause.dieOption(cause)
  return Option.isSome(d) ? d.value : undefined
}

/** the SDK's default span limits (`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, `…_EVENT_COUNT_LIMIT`, `…_LINK_COUNT_LIMIT`) */
const LIMITS = { attributes: 128, events: 128, links: 128 } as const

const VALID_TRACE_ID = /^(?!0{32})[0-9a-f]{32}$/
const VALID_SPAN_ID = /^(?!0{16})[0-9a-f]{16}$/

/** What every span of one exporting layer shares: where it goes, under which resource and scope. */
interface ExportTarget {
  readonly onEnd: (span: ReadableSpan) => void
  readonly resource: ReadableSpan["resource"]
  readonly scope: ReadableSpan["instrumentationScope"]
}

/**
 * A finished span as the SDK's batch processor and the OTLP serialisers read it (`ReadableSpan`):
 * one plain object, made when the span ends. Its times are kept as the clock's nanoseconds
 * (`startNanos`, `endNanos`: what the protobuf encoder writes); the `HrTime` forms are made only
 * when read (the JSON serializer, the local recorder).
 */
class FinishedSpan implements ReadableSpan {
  readonly ended = true
  readonly droppedEventsCount = 0
  readonly droppedLinksCount = 0
  constructor(
    private readonly context: OtelApi.SpanContext,
    readonly name: string,
    readonly kind: OtelApi.SpanKind,
    readonly parentSpanContext: OtelApi.SpanContext | undefined,
    readonly startNanos: bigint,
    readonly endNanos: bigint,
    readonly status: OtelApi.SpanStatus,
    readonly attributes: OtelApi.Attributes,
    readonly links: Array<OtelApi.Link>,
    readonly events: ReadableSpan["events"],
    readonly resource: ReadableSpan["resource"],
    readonly instrumentationScope: ReadableSpan["instrumentationScope"],
    readonly droppedAttributesCount: number
  ) {}
  spanContext(): OtelApi.SpanContext {
    return this.context
  }
  get startTime(): OtelApi.HrTime {
    return hrTime(this.startNanos)
  }
  get endTime(): OtelApi.HrTime {
    return hrTime(this.endNanos)
  }
  get duration(): OtelApi.HrTime {
    return hrTime(this.endNanos > this.startNanos ? this.endNanos - this.startNanos : 0n)
  }
}

const noEvents: ReadableSpan["events"] = []
const noOtelLinks: Array<OtelApi.Link> = []
const noLinks: ReadonlyArray<Tracer.SpanLink> = []

/**
 * An Effect span exported as an OpenTelemetry span: ids, sampling (parent-based, always on at the
 * root, as the SDK's `ParentBasedSampler(AlwaysOnSampler)`), attributes and events are kept here,
 * once, and handed to the batch processor as a `FinishedSpan` when the span ends — no SDK `Span`
 * beside it (no second id generation, attribute map, clock conversion or context lookup).
 */
class ExportSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly spanId: string
  readonly traceId: string
  readonly sampled: boolean
  status: Tracer.SpanStatus
  /** shared and empty until a link is added (most spans have none) */
  links: ReadonlyArray<Tracer.SpanLink>
  /** the span context children and the exporter see */
  readonly spanContext: OtelApi.SpanContext
  private readonly parentContext: OtelApi.SpanContext | undefined
  private readonly attrs: OtelApi.Attributes = {}
  private attrCount = 0
  private droppedAttributes = 0
  private events: Array<ReadableSpan["events"][number]> | undefined
  /** the error.type a caller set (the GenAI span), if any */
  private errorType: string | undefined
  constructor(
    private readonly target: ExportTarget,
    readonly name: string,
    readonly parent: Option.Option<Tracer.AnySpan>,
    readonly context: Context.Context<never>,
    links: ReadonlyArray<Tracer.SpanLink>,
    startTime: bigint,
    readonly kind: Tracer.SpanKind
  ) {
    const parentContext = Option.isNone(parent) ? undefined : spanContextOf(parent.value)
    this.spanId = hex(8)
    if (parentContext === undefined || !VALID_TRACE_ID.test(parentContext.traceId) || !VALID_SPAN_ID.test(parentContext.spanId)) {
      this.parentContext = undefined
      this.traceId = hex(16)
      this.sampled = true
      this.spanContext = { traceId: this.traceId, spanId: this.spanId, traceFlags: 1 }
    } else {
      this.parentContext = parentContext
      this.traceId = parentContext.traceId
      this.sampled = (parentContext.traceFlags & 1) === 1
      this.spanContext = parentContext.traceState === undefined
        ? { traceId: this.traceId, spanId: this.spanId, traceFlags: this.sampled ? 1 : 0 }
        : { traceId: this.traceId, spanId: this.spanId, traceFlags: this.sampled ? 1 : 0, traceState: parentContext.traceState }
    }
    this.status = { _tag: "Started", startTime }
    this.links = links.length === 0 ? noLinks : [...links]
  }
  get attributes(): ReadonlyMap<string, unknown> {
    return new Map(Object.entries(this.attrs))
  }
  private set(key: string, value: OtelApi.AttributeValue): void {
    if (!(key in this.attrs)) {
      if (this.attrCount >= LIMITS.attributes) {
        this.droppedAttributes++
        return
      }
      this.attrCount++
    }
    this.attrs[key] = value
  }
  attribute(key: string, value: unknown): void {
    if (key === "error.type" && typeof value === "string") this.errorType = value
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") this.set(key, value)
    else if (typeof value === "bigint") this.set(key, Number(value))
    else if (Array.isArray(value) && value.every((v) => typeof v === "string")) this.set(key, [...value] as Array<string>)
  }
  event(name: string, startTime: bigint, attributes?: Record<string, unknown>): void {
    const events = this.events ??= []
    if (events.length < LIMITS.events) {
      events.push({ name, attributes: attributes === undefined ? {} : otelAttributes(attributes), time: hrTime(startTime), droppedAttributesCount: 0 })
    }
  }
  addLinks(links: ReadonlyArray<Tracer.SpanLink>): void {
    this.links = [...this.links, ...links]
  }
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    const startTime = this.status.startTime
    this.status = { _tag: "Ended", startTime, endTime, exit }
    if (!this.sampled) return
    let status: OtelApi.SpanStatus
    if (Exit.isSuccess(exit)) {
      status = OK_STATUS
    } else if (Cause.isInterruptedOnly(exit.cause)) {
      // cancellation is not an error of the run's code
      this.set("status.interrupted", true)
      status = INTERRUPTED_STATUS
    } else {
      const failure = failureOf(exit.cause)
      const summary = summarizeFailure(failure)
      // a span that named its own error.type (the GenAI span: an HTTP status, `timeout`) says that
      const own = this.errorType
      const type = own ?? summary.type
      const message = own !== undefined && summary.message.endsWith(": failed") ? `${this.name}: ${own}` : summary.message
      if (own === undefined) this.set("error.type", type)
      if (this.name !== "boruna.run" && !isRecorded(failure)) {
        this.event("exception", endTime, { "exception.type": type, "exception.message": message })
        markRecorded(failure)
      }
      status = { code: ERROR_STATUS, message }
    }
    const links = this.links
    const target = this.target
    target.onEnd(
      new FinishedSpan(
        this.spanContext,
        this.name,
        KIND[this.kind],
        this.parentContext,
        startTime,
        endTime,
        status,
        this.attrs,
        links.length === 0
          ? noOtelLinks
          : links.slice(0, LIMITS.links).map((l) => ({ context: spanContextOf(l.span), attributes: otelAttributes(l.attributes) })),
        this.events ?? noEvents,
        target.resource,
        target.scope,
        this.droppedAttributes
      )
    )
  }
}

const OK_STATUS: OtelApi.SpanStatus = { code: 1 }
const INTERRUPTED_STATUS: OtelApi.SpanStatus = { code: 1, message: "interrupted" }

/** The attribute values OpenTelemetry can carry (primitives, homogeneous arrays); others are dropped. */
const otelAttributes = (attributes: Readonly<Record<string, unknown>>): OtelApi.Attributes => {
  const out: OtelApi.Attributes = {}
  for (const k in attributes) {
    const v = attributes[k]
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") out[k] = v
    else if (typeof v === "bigint") out[k] = Number(v)
    else if (Array.isArray(v) && v.every((x) => typeof x === "string")) out[k] = [...v] as Array<string>
  }
  return out
}

const spanContextOf = (parent: Tracer.AnySpan): OtelApi.SpanContext => {
  if (parent instanceof ExportSpan) return parent.spanContext
  const flags = Context.getOption(parent.context, OtelTraceFlagsKey)
  const state = Context.getOption(parent.context, OtelTraceStateKey)
  return {
    traceId: parent.traceId,
    spanId: parent.spanId,
    traceFlags: Option.isSome(flags) ? flags.value : parent.sampled ? 1 : 0,
    ...(Option.isSome(state) ? { traceState: state.value } : {}),
    isRemote: parent._tag === "ExternalSpan"
  }
}

/** An Effect tracer whose spans are exported as OpenTelemetry spans through `target`. */
const makeExportTracer = (target: ExportTarget): Tracer.Tracer =>
  Tracer.make({
    span: (name, parent, context, links, startTime, kind) => new ExportSpan(target, name, parent, context, links, startTime, kind),
    context: (f) => f()
  })

// ---------------------------------------------------------------------------------------------
// the layer

export interface FromEnvOptions {
  /** keep finished spans in memory for `SpanRecorder` (the CLI's `--trace` / `BORUNA_TRACE=1`) */
  readonly recordLocally?: boolean
  /** bound on the final flush + shutdown (default 5000 ms, or `BORUNA_TELEMETRY_FLUSH_TIMEOUT_MS`) */
  readonly flushTimeoutMillis?: number
  /** where warnings and the undelivered-spans line go (default: process.stderr) */
  readonly stderr?: (line: string) => void
  /** the random source of the retry jitter (tests) */
  readonly random?: () => number
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

// -- retries -------------------------------------------------------------------------------------

const CONNECTION_FAILURES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ECONNABORTED", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"])

/** A refused, reset or unanswered connection: worth retrying (the collector may be starting). */
export const isConnectionFailure = (e: unknown): boolean => {
  if (!(e instanceof Error)) return false
  const code = (e as { readonly code?: unknown }).code
  return (typeof code === "string" && CONNECTION_FAILURES.has(code)) || e.message === "Request Timeout" || e.message === "socket hang up"
}

export const RETRY = { maxRetries: 5, initialMillis: 1_000, maxMillis: 5_000 } as const

/**
 * The n-th retry's delay: exponential (1 s, 2 s, 4 s, capped at 5 s) with "equal jitter" — a
 * uniformly random point in the upper half of the step, so that many exporters that failed together
 * do not retry together.
 */
export const backoffMillis = (retry: number, random: () => number): number => {
  const step = Math.min(RETRY.maxMillis, RETRY.initialMillis * 2 ** retry)
  return step / 2 + random() * (step / 2)
}

/**
 * Retries around the exporter's HTTP transport: HTTP 429/502/503/504 (honouring `Retry-After`) and
 * connection failures, with `backoffMillis`, never past the export's deadline. Replaces the
 * exporter's own retrying transport, which neither retries connection failures nor jitters (its
 * jitter is ±0.2 ms).
 */
const retrying = (inner: ExporterTransport, random: () => number, onAttemptFailed: (e: string) => void): ExporterTransport => ({
  send: async (data, timeoutMillis) => {
    const deadline = Date.now() + timeoutMillis
    let result = await inner.send(data, timeoutMillis)
    for (let retry = 0; retry < RETRY.maxRetries; retry++) {
      const again = result.status === "retryable" || (result.status === "failure" && isConnectionFailure(result.error))
      if (!again) return result
      onAttemptFailed(result.status === "retryable" ? "the collector asked to retry later" : describeError(result.error))
      const delay = result.status === "retryable" && result.retryInMillis !== undefined ? result.retryInMillis : backoffMillis(retry, random)
      if (delay >= deadline - Date.now()) return result
      await new Promise((resolve) => setTimeout(resolve, delay))
      result = await inner.send(data, Math.max(1, deadline - Date.now()))
    }
    return result
  },
  shutdown: () => inner.shutdown()
})

// -- loading -------------------------------------------------------------------------------------

/** The OTLP/HTTP export delegate the exporters are made of (`@opentelemetry/otlp-exporter-base`). */
interface ExportDelegate {
  export(spans: Array<ReadableSpan>, done: (result: { readonly code: number; readonly error?: Error }) => void): void
  forceFlush(): Promise<void>
  shutdown(): Promise<void>
}

type ExporterOptions = NonNullable<ConstructorParameters<typeof import("@opentelemetry/exporter-trace-otlp-proto").OTLPTraceExporter>[0]>

/**
 * The OTLP/HTTP export delegate for `protocol`, from the public pieces of
 * `@opentelemetry/otlp-exporter-base` (the exporters' own dependency, loaded from beside
 * `@opentelemetry/exporter-trace-otlp-proto` / `-otlp-http` so that it is their copy):
 * `convertLegacyHttpOptions` (the exporters' configuration merge: options, environment, defaults)
 * and `createOtlpNetworkExportDelegate` (batching promises, timeout, response handling) over
 * `httpTransport` (TelemetryHttp.ts) wrapped by `wrap` (boruna's retries). The serializer is
 * boruna's allocation-free encoder for `http/protobuf` (TelemetryProtobuf.ts) and the package's
 * `JsonTraceSerializer` for `http/json`.
 */
const loadExporter = async (protocol: OtlpProtocol) => {
  const json = protocol === "http/json"
  const [{ createRequire }, { encodeTraceRequest }, { httpTransport }] = await Promise.all([
    import("node:module"),
    import("./TelemetryProtobuf.js"),
    import("./TelemetryHttp.js")
  ])
  const beside = createRequire(createRequire(import.meta.url).resolve(json ? "@opentelemetry/exporter-trace-otlp-http" : "@opentelemetry/exporter-trace-otlp-proto"))
  const base = beside("@opentelemetry/otlp-exporter-base") as typeof import("@opentelemetry/otlp-exporter-base")
  const nodeHttp = beside("@opentelemetry/otlp-exporter-base/node-http") as typeof import("@opentelemetry/otlp-exporter-base/node-http")
  type Serializer = Parameters<typeof base.createOtlpNetworkExportDelegate<Array<ReadableSpan>, unknown>>[1]
  const serializer: Serializer = json
    ? (beside("@opentelemetry/otlp-transformer") as { readonly JsonTraceSerializer: Serializer }).JsonTraceSerializer
    : {
      serializeRequest: (spans) => encodeTraceRequest(spans),
      // the response only ever carries a partial-success notice the delegate logs to its (silent) diag logger
      deserializeResponse: () => ({})
    }
  const userAgent = `boruna/${VERSION} (OTel-OTLP-Exporter-JavaScript)`
  return (options: ExporterOptions, wrap: (t: ExporterTransport) => ExporterTransport): ExportDelegate => {
    const merged = nodeHttp.convertLegacyHttpOptions(options, "TRACES", "v1/traces", { "Content-Type": json ? "application/json" : "application/x-protobuf" })
    const transport = wrap(httpTransport({ ...merged, compression: merged.compression === "gzip" ? "gzip" : "none" }, userAgent))
    return base.createOtlpNetworkExportDelegate(merged, serializer, transport as Parameters<typeof base.createOtlpNetworkExportDelegate>[2]) as unknown as ExportDelegate
  }
}

const loadSdk = (protocol: OtlpProtocol) =>
  Effect.tryPromise({
    try: async () => {
      const [makeExporter, sdk, resources] = await Promise.all([
        loadExporter(protocol),
        import("@opentelemetry/sdk-trace-base"),
        import("@opentelemetry/resources")
      ])
      return { makeExporter, sdk, resources }
    },
    catch: (e) => new TelemetryConfigError({ variable: "OTEL_EXPORTER_OTLP_ENDPOINT", reason: `cannot load the OpenTelemetry SDK: ${describeError(e)}` })
  })

/** Reporters of the exporting layers alive in this process (what a second signal prints before exiting). */
const liveExports = new Set<() => string | undefined>()

/**
 * The undelivered-spans lines of every exporting layer still open, for a process that must exit now
 * (a second SIGINT while the final flush waits): what was not delivered so far is lost.
 */
export const undeliveredReport = (): ReadonlyArray<string> => {
  const out: Array<string> = []
  for (const f of liveExports) {
    const line = f()
    if (line !== undefined) out.push(line)
  }
  return out
}

/** The exporting layer for a valid config (OTel loaded here, and only here). */
const exporting = (
  config: ExportConfig,
  parent: Tracer.ExternalSpan | undefined,
  options: FromEnvOptions
): Layer.Layer<TelemetryEnabled | SpanRecorder, TelemetryConfigError> =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const { makeExporter, resources, sdk } = yield* loadSdk(config.protocol)
    const stderr = options.stderr ?? writeStderr
    const local = options.recordLocally === true ? makeRecorder() : undefined

    // counts: sampled spans that ended, spans handed to the exporter, spans an export delivered
    let ended = 0
    let handed = 0
    let exported = 0
    let failing = false
    let lastError: string | undefined
    let agent: Http.Agent | undefined
    const waiters = new Set<() => void>()
    const wake = (): void => {
      for (const w of waiters) w()
      waiters.clear()
    }

    const otlp = makeExporter({
      url: config.tracesUrl,
      headers: { ...config.headers },
      compression: config.compression as CompressionAlgorithm,
      timeoutMillis: config.exportTimeoutMillis,
      // the final flush hands every queued batch to the exporter at once; its default limit (30
      // in flight) would fail the rest ("Concurrent export limit reached") and lose their spans
      concurrencyLimit: Math.ceil(config.maxQueueSize / config.maxExportBatchSize) + 2,
      // our own agent, so a flush that timed out can cut its sockets
      // (and the TLS files of the environment for an https endpoint)
      httpAgentOptions: async (protocol) => {
        agent = protocol === "http:"
          ? new (await import("node:http")).Agent({ keepAlive: true })
          : new (await import("node:https")).Agent({ keepAlive: true, ...config.tls })
        return agent
      }
    }, (http) => retrying(http, options.random ?? Math.random, (e) => {
      lastError = e
    }))
    const counting: SpanExporter = {
      export: (spans, done) => {
        handed += spans.length
        wake()
        otlp.export(spans, (result) => {
          if (result.code === OK_CODE) {
            exported += spans.length
            failing = false
          } else {
            lastError = describeError(result.error)
            failing = true
            wake()
          }
          done(result)
        })
      },
      shutdown: () => otlp.shutdown(),
      forceFlush: () => otlp.forceFlush()
    }
    const batch = new sdk.BatchSpanProcessor(counting, {
      maxQueueSize: config.maxQueueSize,
      maxExportBatchSize: config.maxExportBatchSize,
      scheduledDelayMillis: config.scheduledDelayMillis,
      exportTimeoutMillis: config.bspExportTimeoutMillis
    })
    // a run span that ends while the queue is full is held back and queued after the final flush:
    // the root of the trace is delivered whenever anything is
    const held: Array<ReadableSpan> = []
    const onEnd = (span: ReadableSpan): void => {
      const full = ended - handed >= config.maxQueueSize
      ended++
      if (local !== undefined) local.push(toRecorded(span))
      if (full && span.name === "boruna.run") held.push(span)
      else batch.onEnd(span)
    }
    // telemetry.sdk.* from the SDK; a service.version in OTEL_RESOURCE_ATTRIBUTES wins over ours
    const resource = resources.defaultResource().merge(resources.resourceFromAttributes({
      "service.version": VERSION,
      ...config.resource
    }))

    const backpressure: ExportBackpressureService = {
      full: () => !failing && ended - handed >= config.maxQueueSize,
      wait: Effect.async<void>((resume) => {
        const done = () => {
          clearTimeout(timer)
          waiters.delete(done)
          resume(Effect.void)
        }
        const timer = setTimeout(done, config.exportTimeoutMillis)
        waiters.add(done)
        return Effect.sync(() => {
          clearTimeout(timer)
          waiters.delete(done)
        })
      })
    }

    const lossLine = (reason: string): string | undefined => {
      const lost = ended - exported
      return lost > 0 ? `boruna: telemetry: ${lost} span(s) could not be delivered to ${config.tracesUrl}: ${reason}` : undefined
    }
    const reporter = () => lossLine(`the process was stopped before they were exported${lastError === undefined ? "" : ` (${lastError})`}`)
    liveExports.add(reporter)

    // flush (held root spans last) + shutdown, bounded by a real-time timer (not Effect's clock: a
    // TestClock must not stall it)
    const flushAndShutdown = (): Promise<{ readonly timedOut: boolean }> =>
      new Promise((resolve) => {
        const timer = setTimeout(() => resolve({ timedOut: true }), config.flushTimeoutMillis)
        const finish = () => {
          clearTimeout(timer)
          resolve({ timedOut: false })
        }
        batch.forceFlush()
          .then(() => {
            for (const s of held.splice(0)) batch.onEnd(s)
            return batch.shutdown()
          })
          .then(finish, (e) => {
            lastError ??= describeError(e)
            finish()
          })
      })

    yield* Effect.addFinalizer(() =>
      Effect.promise(flushAndShutdown).pipe(Effect.flatMap(({ timedOut }) =>
        Effect.sync(() => {
          liveExports.delete(reporter)
          wake()
          if (timedOut) agent?.destroy()
          const line = lossLine(
            timedOut
              ? `flush timed out after ${config.flushTimeoutMillis} ms${lastError === undefined ? "" : ` (${lastError})`}`
              : lastError ?? `dropped: the export queue (${config.maxQueueSize}) was full`
          )
          if (line !== undefined) stderr(line)
          agent?.destroy()
        })
      ))
    )

    return Layer.mergeAll(
      Layer.setTracer(makeExportTracer({ onEnd, resource, scope: { name: "boruna", version: VERSION } })),
      Layer.succeed(TelemetryEnabled, true),
      Layer.succeed(ExportBackpressure, backpressure),
      Layer.succeed(SpanRecorder, local === undefined ? emptyRecorder : local.recorder),
      Layer.succeed(RunParent, parent)
    )
  }))

/**
 * The one telemetry layer the CLI builds, chosen from `env`:
 * - no usable `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
 *   `OTEL_SDK_DISABLED=true` ⇒ off (no OTel import); with `recordLocally`, the in-memory recorder;
 * - otherwise OTLP/HTTP export (plus the in-memory recorder when `recordLocally`).
 * `TRACEPARENT`/`TRACESTATE` set the remote parent `withRunSpan` joins. An unusable setting is one
 * warning line on `stderr` and is ignored; the build fails only when the SDK cannot be loaded.
 */
export const fromEnv = (
  env: Record<string, string | undefined> = process.env,
  options: FromEnvOptions = {}
): Layer.Layer<TelemetryEnabled | SpanRecorder, TelemetryConfigError> =>
  Layer.unwrapEffect(Effect.sync(() => {
    const { config, warnings } = resolveConfig(env, options.flushTimeoutMillis === undefined ? {} : { flushTimeoutMillis: options.flushTimeoutMillis })
    const stderr = options.stderr ?? writeStderr
    for (const w of warnings) stderr(w)
    // read only when telemetry is on: with it off, a TRACEPARENT in the environment loads nothing
    if (config !== undefined) return exporting(config, parentFromEnv(env), options)
    if (options.recordLocally === true) return Layer.mergeAll(memory, Layer.succeed(RunParent, parentFromEnv(env)))
    return Layer.mergeAll(off, Layer.succeed(SpanRecorder, emptyRecorder))
  }))

// ---------------------------------------------------------------------------------------------
// boruna doctor

export interface DoctorReport {
  /** the resolved settings, then the warnings */
  readonly lines: ReadonlyArray<string>
  readonly delivered: boolean
  /** one line: delivered where and how fast, or why not */
  readonly verdict: string
}

/**
 * Resolve the telemetry settings of `env` and send one test span (`boruna.doctor`) through the same
 * exporting layer a run uses; delivered when the exporter confirmed it within the flush bound.
 */
export const doctor = (env: Record<string, string | undefined>): Effect.Effect<DoctorReport> =>
  Effect.gen(function*() {
    const { config, settings, warnings } = resolveConfig(env)
    const width = Math.max(...settings.map((s) => s.variable.length))
    const lines = ["telemetry settings:"]
    for (const s of settings) {
      const from = s.raw === undefined ? "default" : s.raw === s.used ? "set" : `set: '${s.raw}'`
      lines.push(`  ${s.variable.padEnd(width)}  ${s.used}  (${from})${s.warning === undefined ? "" : `  ! ${s.warning}`}`)
    }
    for (const w of warnings) if (!settings.some((s) => s.warning !== undefined && w.endsWith(s.warning))) lines.push(`  ! ${w.replace(/^boruna: telemetry: /, "")}`)
    if (config === undefined) {
      const why = settings.some((s) => s.variable === "OTEL_SDK_DISABLED" && s.used === "true")
        ? "OTEL_SDK_DISABLED=true"
        : "no usable OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
      return { lines, delivered: false, verdict: `telemetry is off (${why}): no test span was sent` }
    }
    lines.push(`exporting to ${config.tracesUrl} (${config.protocol}${config.compression === "gzip" ? ", gzip" : ""})`)
    const lost: Array<string> = []
    const t0 = Date.now()
    const built = yield* Effect.exit(Effect.scoped(
      Effect.flatMap(Layer.build(fromEnv(env, { stderr: (l) => lost.push(l) })), (ctx) =>
        Effect.provide(Effect.withSpan(Effect.void, "boruna.doctor", { kind: "internal", captureStackTrace: false }), ctx))
    ))
    const ms = Date.now() - t0
    if (Exit.isFailure(built)) return { lines, delivered: false, verdict: `the test span could not be sent: ${Cause.pretty(built.cause).split("\n")[0]}` }
    const failure = lost.find((l) => l.includes("could not be delivered"))
    if (failure !== undefined) {
      return { lines, delivered: false, verdict: `the test span was not delivered: ${failure.replace(/^boruna: telemetry: 1 span\(s\) could not be delivered to /, "")}` }
    }
    return { lines, delivered: true, verdict: `test span delivered to ${config.tracesUrl} in ${ms} ms` }
  })
