/**
 * A loopback OTLP/HTTP trace receiver for tests (127.0.0.1, ephemeral port).
 *
 *   const rx = await startOtlpReceiver()                 // or: yield* OtlpReceiver.scoped() in it.scoped
 *   env: { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url }          // rx.tracesUrl = rx.url + "/v1/traces"
 *   …run something that exports…
 *   const spans = await rx.waitForSpans(3)                // or rx.spans() once the exporter has flushed
 *   spans[0].name, .attributes["cap.name"], .parentSpanId, .traceId, .status.code, .resource["service.name"]
 *   await rx.close()
 *
 * Modes (`startOtlpReceiver({ mode })`, or `rx.setMode(mode)` at any time):
 * - `"normal"`: 200 and keep the spans;
 * - `"answer-500"`: 500 to every request (spans not kept);
 * - `"answer-429-then-200"`: the first `failures` (default 1) requests get 429 (or `status`) with
 *   `Retry-After: <retryAfter>` (default "1"), later ones are answered as in normal mode;
 * - `"black-hole"`: reads the request and never answers (until `close()`);
 * - `"reset-then-200"`: the first `failures` requests have their connection destroyed without an
 *   answer (ECONNRESET / socket hang up at the sender), later ones are answered as in normal mode.
 *
 * Bodies: OTLP/JSON (`application/json`, what @opentelemetry/exporter-trace-otlp-http 0.208 sends)
 * and OTLP/protobuf (`application/x-protobuf`, decoded with the generated code in
 * @opentelemetry/otlp-transformer); gzip-encoded bodies are inflated. Every request, whatever its
 * fate, is listed by `requests()`.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as http from "node:http"
import * as https from "node:https"
import { createRequire } from "node:module"
import type { AddressInfo } from "node:net"
import { gunzipSync } from "node:zlib"

export type ReceiverMode = "normal" | "answer-500" | "answer-429-then-200" | "black-hole" | "reset-then-200"

export interface OtlpReceiverOptions {
  readonly mode?: ReceiverMode
  /** `Retry-After` value sent with a 429 (default "1", i.e. one second) */
  readonly retryAfter?: string
  /** how many requests get 429 in "answer-429-then-200" (default 1) */
  readonly failures?: number
  /** the status those requests get instead of 429 (e.g. 502, 503, 504) */
  readonly status?: number
  /**
   * false: count spans (`counts()`) and drop them and the bodies instead of keeping them (a run of a
   * million spans); default true
   */
  readonly keep?: boolean
  /**
   * serve HTTPS with this key and certificate (PEM); with `ca`, also ask for a client certificate
   * signed by it and refuse a connection without one (mutual TLS)
   */
  readonly tls?: { readonly key: Buffer; readonly cert: Buffer; readonly ca?: Buffer }
}

export interface ReceivedSpan {
  readonly name: string
  readonly traceId: string
  readonly spanId: string
  /** undefined for a root span */
  readonly parentSpanId: string | undefined
  readonly traceState: string | undefined
  readonly kind: number
  /** attributes flattened to JS values (ints as numbers, arrays as arrays, kvlists as objects) */
  readonly attributes: Readonly<Record<string, unknown>>
  /** OTLP status: code 0 unset, 1 ok, 2 error */
  readonly status: { readonly code: number; readonly message: string | undefined }
  readonly events: ReadonlyArray<{ readonly name: string; readonly attributes: Readonly<Record<string, unknown>> }>
  readonly links: ReadonlyArray<{ readonly traceId: string; readonly spanId: string; readonly attributes: Readonly<Record<string, unknown>> }>
  /** start and end, ns since the epoch */
  readonly startTimeUnixNano: bigint
  readonly endTimeUnixNano: bigint
  /** the resource attributes of the batch the span came in (`service.name`, …) */
  readonly resource: Readonly<Record<string, unknown>>
  /** instrumentation scope name */
  readonly scope: string | undefined
  /** instrumentation scope version */
  readonly scopeVersion: string | undefined
}

export interface ReceivedRequest {
  readonly path: string
  readonly contentType: string | undefined
  readonly headers: Readonly<http.IncomingHttpHeaders>
  /** status answered, or undefined when never answered (black hole) */
  readonly status: number | undefined
  /** Date.now() when the body had arrived */
  readonly at: number
  readonly spanCount: number
  /** the body as received, gzip inflated (what a leak check scans) */
  readonly body: Buffer
}

export interface OtlpReceiver {
  /** base endpoint, e.g. http://127.0.0.1:40123 — use as OTEL_EXPORTER_OTLP_ENDPOINT */
  readonly url: string
  /** url + "/v1/traces" */
  readonly tracesUrl: string
  /** spans from requests that were answered 200, in arrival order */
  readonly spans: () => ReadonlyArray<ReceivedSpan>
  readonly requests: () => ReadonlyArray<ReceivedRequest>
  /** spans received in answered-200 requests, by name (kept or not) */
  readonly counts: () => ReadonlyMap<string, number>
  readonly setMode: (mode: ReceiverMode) => void
  /** resolves once at least `count` spans were received; rejects after `timeoutMs` (default 5000) */
  readonly waitForSpans: (count: number, timeoutMs?: number) => Promise<ReadonlyArray<ReceivedSpan>>
  /** stop listening and drop every open connection (black-holed ones included) */
  readonly close: () => Promise<void>
}

// -- OTLP body decoding --------------------------------------------------------------------------

type AnyValue = {
  stringValue?: string
  boolValue?: boolean
  intValue?: number | string | { low: number; high: number }
  doubleValue?: number
  arrayValue?: { values?: Array<AnyValue> }
  kvlistValue?: { values?: Array<KeyValue> }
  bytesValue?: string | Uint8Array
}
type KeyValue = { key: string; value?: AnyValue }
type Id = string | Uint8Array | undefined
type OtlpSpan = {
  traceId?: Id
  spanId?: Id
  parentSpanId?: Id
  traceState?: string
  name?: string
  kind?: number
  attributes?: Array<KeyValue>
  events?: Array<{ name?: string; attributes?: Array<KeyValue> }>
  links?: Array<{ traceId?: Id; spanId?: Id; attributes?: Array<KeyValue> }>
  status?: { code?: number; message?: string }
  startTimeUnixNano?: Nanos
  endTimeUnixNano?: Nanos
}
type Nanos = number | string | { low: number; high: number }

const nanos = (n: Nanos | undefined): bigint =>
  n === undefined ? 0n : typeof n === "object" ? (BigInt(n.high >>> 0) << 32n) + BigInt(n.low >>> 0) : BigInt(n)
type OtlpRequest = {
  resourceSpans?: Array<{
    resource?: { attributes?: Array<KeyValue> }
    scopeSpans?: Array<{ scope?: { name?: string; version?: string }; spans?: Array<OtlpSpan> }>
  }>
}

const idHex = (id: Id): string => {
  if (id === undefined) return ""
  if (typeof id === "string") return id.length > 0 && /^[A-Za-z0-9+/]+=*$/.test(id) && !/^[0-9a-f]+$/.test(id)
    ? Buffer.from(id, "base64").toString("hex") // OTLP/JSON from a spec-strict sender (base64)
    : id
  return Buffer.from(id).toString("hex")
}

const value = (v: AnyValue | undefined): unknown => {
  if (v === undefined) return undefined
  if (v.stringValue !== undefined) return v.stringValue
  if (v.boolValue !== undefined) return v.boolValue
  if (v.intValue !== undefined) {
    const i = v.intValue
    return typeof i === "object" ? i.high * 2 ** 32 + (i.low >>> 0) : Number(i)
  }
  if (v.doubleValue !== undefined) return v.doubleValue
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(value)
  if (v.kvlistValue !== undefined) return attrs(v.kvlistValue.values)
  if (v.bytesValue !== undefined) return v.bytesValue
  return undefined
}

const attrs = (kvs: Array<KeyValue> | undefined): Record<string, unknown> =>
  Object.fromEntries((kvs ?? []).map((kv) => [kv.key, value(kv.value)]))

const flatten = (req: OtlpRequest): Array<ReceivedSpan> => {
  const out: Array<ReceivedSpan> = []
  for (const rs of req.resourceSpans ?? []) {
    const resource = attrs(rs.resource?.attributes)
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        const parent = idHex(s.parentSpanId)
        out.push({
          name: s.name ?? "",
          traceId: idHex(s.traceId),
          spanId: idHex(s.spanId),
          parentSpanId: parent === "" ? undefined : parent,
          traceState: s.traceState === undefined || s.traceState === "" ? undefined : s.traceState,
          kind: s.kind ?? 0,
          attributes: attrs(s.attributes),
          status: { code: s.status?.code ?? 0, message: s.status?.message === "" ? undefined : s.status?.message },
          events: (s.events ?? []).map((e) => ({ name: e.name ?? "", attributes: attrs(e.attributes) })),
          links: (s.links ?? []).map((l) => ({ traceId: idHex(l.traceId), spanId: idHex(l.spanId), attributes: attrs(l.attributes) })),
          startTimeUnixNano: nanos(s.startTimeUnixNano),
          endTimeUnixNano: nanos(s.endTimeUnixNano),
          resource,
          scope: ss.scope?.name,
          scopeVersion: ss.scope?.version === "" ? undefined : ss.scope?.version
        })
      }
    }
  }
  return out
}

interface ProtoCodec {
  readonly decode: (buf: Uint8Array) => unknown
  readonly toObject: (m: unknown, o: { longs: StringConstructor; enums: NumberConstructor; arrays: boolean }) => OtlpRequest
}
let protoCodec: ProtoCodec | undefined
const decodeProtobuf = (body: Buffer): OtlpRequest => {
  if (protoCodec === undefined) {
    const root = createRequire(import.meta.url)("@opentelemetry/otlp-transformer/build/src/generated/root.js") as {
      opentelemetry: { proto: { collector: { trace: { v1: { ExportTraceServiceRequest: ProtoCodec } } } } }
    }
    protoCodec = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest
  }
  return protoCodec.toObject(protoCodec.decode(body), { longs: String, enums: Number, arrays: true })
}

/** Span names of one protobuf body, without building the full objects (the receiver's `keep: false`). */
const protobufNames = (body: Buffer): Array<string> => {
  decodeProtobuf(Buffer.alloc(0)) // loads the codec
  const msg = protoCodec!.decode(body) as { resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: Array<{ name?: string }> }> }> }
  const names: Array<string> = []
  for (const rs of msg.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) for (const sp of ss.spans ?? []) names.push(sp.name ?? "")
  return names
}

/** Decode one OTLP/HTTP trace request body (JSON or protobuf, optionally gzip-encoded). */
export const decodeBody = (body: Buffer, contentType: string | undefined, contentEncoding?: string): Array<ReceivedSpan> => {
  const raw = contentEncoding === "gzip" ? gunzipSync(body) : body
  if (contentType !== undefined && contentType.includes("protobuf")) return flatten(decodeProtobuf(raw))
  return flatten(JSON.parse(raw.toString("utf8")) as OtlpRequest)
}

// -- the server ----------------------------------------------------------------------------------

export const startOtlpReceiver = (options: OtlpReceiverOptions = {}): Promise<OtlpReceiver> => {
  let mode: ReceiverMode = options.mode ?? "normal"
  const retryAfter = options.retryAfter ?? "1"
  const keep = options.keep ?? true
  const counts = new Map<string, number>()
  let total = 0
  let failuresLeft = options.failures ?? 1
  const spans: Array<ReceivedSpan> = []
  const requests: Array<ReceivedRequest> = []
  const waiters = new Set<() => void>()

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const body = Buffer.concat(chunks)
      const contentType = req.headers["content-type"]
      let raw = body
      try {
        raw = req.headers["content-encoding"] === "gzip" ? gunzipSync(body) : body
      } catch {
        // left as received; the decode below reports it
      }
      const base = { path: req.url ?? "", contentType, headers: req.headers, at: Date.now(), body: keep ? raw : Buffer.alloc(0) }
      let decoded: Array<{ readonly name: string }> = []
      let decodeError: string | undefined
      try {
        decoded = !keep && contentType !== undefined && contentType.includes("protobuf")
          ? protobufNames(raw).map((name) => ({ name }))
          : decodeBody(body, contentType, req.headers["content-encoding"])
      } catch (e) {
        decodeError = e instanceof Error ? e.message : String(e)
      }
      const answer = (status: number, headers: Record<string, string> = {}, text = "{}") => {
        requests.push({ ...base, status, spanCount: decoded.length })
        res.writeHead(status, { "content-type": "application/json", ...headers })
        res.end(text)
      }
      if (mode === "black-hole") {
        requests.push({ ...base, status: undefined, spanCount: decoded.length })
        return
      }
      if (mode === "reset-then-200" && failuresLeft > 0) {
        failuresLeft--
        requests.push({ ...base, status: undefined, spanCount: decoded.length })
        req.socket.destroy()
        return
      }
      if (mode === "answer-500") return answer(500, {}, `{"message":"receiver told to fail"}`)
      if (mode === "answer-429-then-200" && failuresLeft > 0) {
        failuresLeft--
        return answer(options.status ?? 429, retryAfter === "" ? {} : { "retry-after": retryAfter })
      }
      if (decodeError !== undefined) return answer(400, {}, JSON.stringify({ message: decodeError }))
      if (req.method !== "POST" || !(req.url ?? "").endsWith("/v1/traces")) return answer(404)
      for (const d of decoded) counts.set(d.name, (counts.get(d.name) ?? 0) + 1)
      total += decoded.length
      if (keep) spans.push(...(decoded as Array<ReceivedSpan>))
      answer(200)
      for (const w of waiters) w()
    })
  }
  const tls = options.tls
  const server = tls === undefined
    ? http.createServer(handler)
    : https.createServer(tls.ca === undefined ? { key: tls.key, cert: tls.cert } : { key: tls.key, cert: tls.cert, ca: tls.ca, requestCert: true, rejectUnauthorized: true }, handler)

  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      const url = `${tls === undefined ? "http" : "https"}://127.0.0.1:${port}`
      resolve({
        url,
        tracesUrl: `${url}/v1/traces`,
        spans: () => spans,
        requests: () => requests,
        counts: () => counts,
        setMode: (m) => {
          mode = m
        },
        waitForSpans: (count, timeoutMs = 5_000) =>
          new Promise((ok, fail) => {
            if (total >= count) return ok(spans)
            const timer = setTimeout(() => {
              waiters.delete(check)
              fail(new Error(`OTLP receiver: ${total} span(s) after ${timeoutMs} ms, wanted ${count}`))
            }, timeoutMs)
            const check = () => {
              if (total >= count) {
                clearTimeout(timer)
                waiters.delete(check)
                ok(spans)
              }
            }
            waiters.add(check)
          }),
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done())
            server.closeAllConnections()
          })
      })
    })
  })
}

/** The receiver as a scoped resource: closed when the scope closes. */
export const scoped = (options: OtlpReceiverOptions = {}): Effect.Effect<OtlpReceiver, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.promise(() => startOtlpReceiver(options)), (rx) => Effect.promise(() => rx.close()))
