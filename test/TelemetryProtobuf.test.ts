/**
 * boruna's OTLP/protobuf encoder (src/TelemetryProtobuf.ts) against the official generated code of
 * opentelemetry-proto (@opentelemetry/otlp-transformer): every span shape boruna exports — and a
 * few it never does — decodes to the same message as the package's `ProtobufTraceSerializer`
 * produces for the same spans.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Attributes, HrTime, Link, SpanContext, SpanStatus } from "@opentelemetry/api"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { createRequire } from "node:module"
import { encodeTraceRequest } from "../src/TelemetryProtobuf.js"

const require = createRequire(import.meta.url)
const { ProtobufTraceSerializer } = require("@opentelemetry/otlp-transformer") as {
  ProtobufTraceSerializer: { serializeRequest: (spans: Array<ReadableSpan>) => Uint8Array }
}
const { resourceFromAttributes } = require("@opentelemetry/resources") as typeof import("@opentelemetry/resources")
const { TraceState } = require("@opentelemetry/core") as typeof import("@opentelemetry/core")
type Codec = { decode: (b: Uint8Array) => unknown; toObject: (m: unknown, o: object) => unknown }
const Request = (require("@opentelemetry/otlp-transformer/build/src/generated/root.js") as {
  opentelemetry: { proto: { collector: { trace: { v1: { ExportTraceServiceRequest: Codec } } } } }
}).opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest

/** decoded with every default filled in (so "absent" and "zero" compare equal, as proto3 defines) */
const decode = (bytes: Uint8Array): unknown =>
  Request.toObject(Request.decode(bytes), { longs: String, enums: Number, bytes: String, defaults: true, arrays: true, objects: true, oneofs: true })

const resource = resourceFromAttributes({ "service.name": "boruna", "telemetry.sdk.language": "nodejs", "x.count": 3 })
const other = resourceFromAttributes({ "service.name": "other" })
const scope = { name: "boruna", version: "0.1.0" }

const ctx = (spanId: string, extra: Partial<SpanContext> = {}): SpanContext => ({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId, traceFlags: 1, ...extra })

const span = (over: {
  readonly name?: string
  readonly context?: SpanContext
  readonly parent?: SpanContext
  readonly attributes?: Attributes
  readonly status?: SpanStatus
  readonly events?: ReadableSpan["events"]
  readonly links?: Array<Link>
  readonly start?: HrTime
  readonly end?: HrTime
  readonly kind?: number
  readonly resource?: ReadableSpan["resource"]
  readonly scope?: ReadableSpan["instrumentationScope"]
  readonly dropped?: number
}): ReadableSpan => {
  const context = over.context ?? ctx("00f067aa0ba902b7")
  return {
    name: over.name ?? "boruna.cap",
    kind: over.kind ?? 0,
    spanContext: () => context,
    parentSpanContext: over.parent,
    startTime: over.start ?? [1764600000, 123456789],
    endTime: over.end ?? [1764600000, 987654321],
    duration: [0, 864197532],
    status: over.status ?? { code: 1 },
    attributes: over.attributes ?? {},
    links: over.links ?? [],
    events: over.events ?? [],
    ended: true,
    resource: over.resource ?? resource,
    instrumentationScope: over.scope ?? scope,
    droppedAttributesCount: over.dropped ?? 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0
  }
}

const same = (spans: Array<ReadableSpan>) => expect(decode(encodeTraceRequest(spans))).toEqual(decode(ProtobufTraceSerializer.serializeRequest(spans)))

describe("TelemetryProtobuf.encodeTraceRequest decodes as the package's serializer", () => {
  it("a cap span under a run span, with the gateway's attributes", () =>
    same([
      span({ parent: ctx("1111111111111111"), attributes: { "cap.name": "time.now", bytes_in: 0, bytes_out: 8, "cap.budget_remaining": 5 } }),
      span({ name: "boruna.run", context: ctx("1111111111111111") })
    ]))

  it("every attribute value type: strings (ASCII, UTF-8, long), integers (0, large, negative), doubles, booleans, arrays", () =>
    same([span({
      attributes: {
        s: "plain",
        u: "zażółć gęślą jaźń — 日本語 🚀",
        long: "x".repeat(200),
        longer: "é".repeat(10_000),
        zero: 0,
        big: 2 ** 52 + 1,
        huge: 1e20,
        neg: -1,
        negBig: -(2 ** 40),
        dbl: 3.25,
        negDbl: -0.5,
        t: true,
        f: false,
        arr: ["a", "b", "ü"],
        nums: [1, 2.5, -3],
        bools: [true, false],
        empty: ""
      }
    })]))

  it("an error status with a message, an exception event, dropped attributes; kinds client and server", () =>
    same([
      span({
        status: { code: 2, message: "net.fetch: denied: refused by the policy" },
        events: [{ name: "exception", time: [1764600000, 5], attributes: { "exception.type": "denied", "exception.message": "m" }, droppedAttributesCount: 0 }],
        dropped: 3,
        kind: 2
      }),
      span({ kind: 1, events: [{ name: "no attributes", time: [1764600001, 0] }] })
    ]))

  it("a remote parent with a tracestate, an unsampled context, links (with and without attributes)", () =>
    same([
      span({
        context: ctx("2222222222222222", { traceState: new TraceState("vendor=abc,other=x:y") }),
        parent: ctx("3333333333333333", { isRemote: true, traceState: new TraceState("vendor=abc,other=x:y") })
      }),
      span({ context: ctx("4444444444444444", { traceFlags: 0 }) }),
      span({
        links: [
          { context: ctx("5555555555555555", { traceId: "0af7651916cd43dd8448eb211c80319c" }), attributes: { "link.reason": "queued-by" } },
          { context: ctx("6666666666666666", { isRemote: true, traceState: new TraceState("a=1") }) }
        ]
      })
    ]))

  it("times: epoch 0, sub-second, far future; exact to the nanosecond", () => {
    same([
      span({ start: [0, 0], end: [0, 1] }),
      span({ start: [1, 999_999_999], end: [4294967295, 999_999_999] }),
      span({ start: [1764600000, 1], end: [2_000_000_000, 123] })
    ])
    const [s] = (decode(encodeTraceRequest([span({ start: [1764600000, 123456789], end: [4294967295, 999999999] })])) as {
      resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ startTimeUnixNano: string; endTimeUnixNano: string }> }> }>
    }).resourceSpans[0].scopeSpans[0].spans
    expect(s.startTimeUnixNano).toBe("1764600000123456789")
    expect(s.endTimeUnixNano).toBe("4294967295999999999")
    // a span that carries its times as nanoseconds (boruna's FinishedSpan) encodes the same
    const hr = span({ start: [1764600000, 123456789], end: [1764600001, 5] })
    const withNanos = { ...hr, spanContext: hr.spanContext, startNanos: 1764600000123456789n, endNanos: 1764600001000000005n, startTime: [0, 0] as HrTime, endTime: [0, 0] as HrTime }
    expect(decode(encodeTraceRequest([withNanos]))).toEqual(decode(encodeTraceRequest([hr])))
  })

  it("spans of two resources and two scopes are grouped as the package groups them", () =>
    same([
      span({}),
      span({ resource: other }),
      span({ scope: { name: "other", version: "2" } }),
      span({ scope: { name: "noversion" } }),
      span({ resource: other, scope: { name: "x", version: "1", schemaUrl: "https://opentelemetry.io/schemas/1.30.0" } })
    ]))

  it("a batch of 2,048 spans (lengths beyond the reserved bytes) and an empty batch", () => {
    same(Array.from({ length: 2048 }, (_, i) => span({ context: ctx(i.toString(16).padStart(16, "0").replace(/^0/, "1")), attributes: { i, "cap.name": "net.fetch" } })))
    same([])
  })
})
