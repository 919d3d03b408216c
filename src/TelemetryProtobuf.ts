/**
 * OTLP/protobuf encoding of a batch of finished spans: `ExportTraceServiceRequest` bytes written
 * straight into one buffer.
 *
 * Why by hand: `@opentelemetry/otlp-transformer`'s `ProtobufTraceSerializer` first builds an OTLP
 * object tree per span (every id hex → bytes, every time → a long-bits object, every attribute a
 * key/value object), then protobufjs writes it through a linked list of one operation object per
 * field. On the traced hot path that was about a third of the cost of an exported cap span, most
 * of it garbage collection (docs/design-otel.md, "Cost"). This writer allocates nothing per span
 * but the bytes. It is used for `http/protobuf` only; `http/json` keeps the package's serializer,
 * and the package still decodes the collector's response. The output is checked against the
 * official generated decoder in test/TelemetryProtobuf.test.ts.
 *
 * The field numbers are those of opentelemetry-proto v1 (trace.proto, common.proto, resource.proto).
 */
import type { Attributes, AttributeValue, HrTime, SpanContext } from "@opentelemetry/api"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"

/** W3C trace flags plus OTLP's "has is_remote" bit, and the "is remote" bit when it is */
const HAS_IS_REMOTE = 0x100
const IS_REMOTE = 0x200

class Writer {
  buf: Buffer
  pos = 0
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size)
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + n) size *= 2
    const next = Buffer.allocUnsafe(size)
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }
  byte(b: number): void {
    this.ensure(1)
    this.buf[this.pos++] = b
  }
  /** an unsigned varint up to 2^53 */
  varint(v: number): void {
    this.ensure(10)
    const buf = this.buf
    let pos = this.pos
    while (v > 0x7f) {
      buf[pos++] = (v % 0x80) | 0x80
      v = Math.floor(v / 0x80)
    }
    buf[pos++] = v
    this.pos = pos
  }
  /** an int64 varint (negative numbers as 10-byte two's complement) */
  int64(v: number): void {
    if (v >= 0 && v <= Number.MAX_SAFE_INTEGER) return this.varint(v)
    let u = BigInt.asUintN(64, BigInt(Math.trunc(v)))
    this.ensure(10)
    while (u > 0x7fn) {
      this.buf[this.pos++] = Number(u & 0x7fn) | 0x80
      u >>= 7n
    }
    this.buf[this.pos++] = Number(u)
  }
  fixed32(v: number): void {
    this.ensure(4)
    this.buf.writeUInt32LE(v >>> 0, this.pos)
    this.pos += 4
  }
  /** a clock's nanoseconds (non-negative, below 2^64) as fixed64 */
  fixed64(v: bigint): void {
    this.ensure(8)
    this.buf.writeBigUInt64LE(v, this.pos)
    this.pos += 8
  }
  /** an HrTime ([seconds, nanoseconds]) as fixed64 nanoseconds, in exact double arithmetic (no BigInt) */
  time(t: HrTime): void {
    const sec = Math.trunc(t[0])
    const ns = Math.trunc(t[1])
    // sec·1e9 + ns = B·2^16 + A with A, B < 2^47: every step below is exact in a double
    const a = (sec % 0x10000) * 1e9 + ns
    const b = Math.floor(sec / 0x10000) * 1e9
    const mid = (b % 0x10000) * 0x10000 + a
    const lo = mid % 0x100000000
    const hi = Math.floor(b / 0x10000) + Math.floor(mid / 0x100000000)
    this.ensure(8)
    this.buf.writeUInt32LE(lo >>> 0, this.pos)
    this.buf.writeUInt32LE(hi >>> 0, this.pos + 4)
    this.pos += 8
  }
  double(v: number): void {
    this.ensure(8)
    this.buf.writeDoubleLE(v, this.pos)
    this.pos += 8
  }
  /**
   * Open a length-delimited field: its tag, then `reserve` bytes for the length (the size the
   * content is expected to need); `close` writes the length and moves the content when it needs
   * more or fewer bytes than reserved (the encoding stays canonical).
   */
  open(tag: number, reserve: number): number {
    this.varint(tag)
    this.ensure(reserve)
    this.pos += reserve
    return this.pos
  }
  close(start: number, reserve: number): void {
    const len = this.pos - start
    const need = len < 0x80 ? 1 : len < 0x4000 ? 2 : len < 0x200000 ? 3 : len < 0x10000000 ? 4 : 5
    if (need !== reserve) {
      const delta = need - reserve
      this.ensure(delta)
      this.buf.copyWithin(start + delta, start, this.pos)
      this.pos += delta
      // cached ids inside the moved content moved with it
      for (let i = 0; i < 2; i++) if (this.lastAt[i] >= start) this.lastAt[i] += delta
    }
    let at = start - reserve
    let v = len
    while (v > 0x7f) {
      this.buf[at++] = (v & 0x7f) | 0x80
      v >>>= 7
    }
    this.buf[at] = v
  }
  string(tag: number, s: string): void {
    const n = s.length
    this.varint(tag)
    if (n < 0x80) {
      // short ASCII (names, keys, most values): one length byte, one byte per character
      this.ensure(n + 1)
      const buf = this.buf
      const start = this.pos + 1
      let i = 0
      for (; i < n; i++) {
        const c = s.charCodeAt(i)
        if (c > 0x7f) break
        buf[start + i] = c
      }
      if (i === n) {
        buf[this.pos] = n
        this.pos = start + n
        return
      }
    }
    const len = Buffer.byteLength(s, "utf8")
    this.varint(len)
    this.ensure(len)
    this.pos += this.buf.write(s, this.pos, "utf8")
  }
  /**
   * Per slot (0: a span's trace id, 1: its parent's span id), the last id written and where its
   * bytes are: the spans of a batch share their trace id and mostly their parent.
   */
  private readonly lastHex = ["", ""]
  private readonly lastAt = [0, 0]
  /** a lower-case hex id as bytes */
  hexBytes(tag: number, hex: string, slot?: 0 | 1): void {
    const n = hex.length >>> 1
    this.varint(tag)
    this.varint(n)
    this.ensure(n)
    const buf = this.buf
    let pos = this.pos
    if (slot !== undefined && hex === this.lastHex[slot]) {
      const at = this.lastAt[slot]
      buf.copyWithin(pos, at, at + n)
      pos += n
    } else {
      if (slot !== undefined) {
        this.lastHex[slot] = hex
        this.lastAt[slot] = pos
      }
      for (let i = 0; i < n; i++) buf[pos++] = (HEX[hex.charCodeAt(2 * i)] << 4) | HEX[hex.charCodeAt(2 * i + 1)]
    }
    this.pos = pos
  }
  bytes(tag: number, b: Uint8Array): void {
    this.varint(tag)
    this.varint(b.length)
    this.ensure(b.length)
    this.buf.set(b, this.pos)
    this.pos += b.length
  }
}

/** hex digit (by char code) → value; anything else → 0 */
const HEX = new Uint8Array(128)
for (let i = 0; i < 10; i++) HEX[48 + i] = i
for (let i = 0; i < 6; i++) {
  HEX[97 + i] = 10 + i
  HEX[65 + i] = 10 + i
}

// AnyValue: 1 string, 2 bool, 3 int64, 4 double, 5 array, 6 kvlist, 7 bytes
const anyValue = (w: Writer, v: unknown): void => {
  switch (typeof v) {
    case "string":
      return w.string(10, v)
    case "boolean":
      w.byte(16)
      return w.byte(v ? 1 : 0)
    case "number":
      if (Number.isInteger(v)) {
        w.byte(24)
        return w.int64(v)
      }
      w.byte(33)
      return w.double(v)
    case "bigint":
      w.byte(24)
      return w.int64(Number(v))
  }
  if (v instanceof Uint8Array) return w.bytes(58, v)
  if (Array.isArray(v)) {
    const start = w.open(42, 1)
    for (const x of v) {
      const s = w.open(10, 1)
      anyValue(w, x)
      w.close(s, 1)
    }
    return w.close(start, 1)
  }
  if (typeof v === "object" && v !== null) {
    const start = w.open(50, 1)
    for (const k in v) keyValue(w, 10, k, (v as Record<string, unknown>)[k])
    return w.close(start, 1)
  }
}

// KeyValue: 1 key, 2 value
const keyValue = (w: Writer, tag: number, key: string, value: unknown): void => {
  const start = w.open(tag, 1)
  w.string(10, key)
  if (value !== undefined && value !== null) {
    const v = w.open(18, 1)
    anyValue(w, value)
    w.close(v, 1)
  }
  w.close(start, 1)
}

const attributes = (w: Writer, tag: number, attrs: Attributes | undefined): void => {
  if (attrs === undefined) return
  for (const k in attrs) keyValue(w, tag, k, attrs[k] as AttributeValue | undefined)
}

const flagsOf = (traceFlags: number, isRemote: boolean | undefined): number => (traceFlags & 0xff) | HAS_IS_REMOTE | (isRemote === true ? IS_REMOTE : 0)

// Span: 1 trace_id, 2 span_id, 3 trace_state, 4 parent_span_id, 5 name, 6 kind, 7 start, 8 end,
// 9 attributes, 10 dropped_attributes_count, 11 events, 12 dropped_events_count, 13 links,
// 14 dropped_links_count, 15 status, 16 flags
const span = (w: Writer, s: ReadableSpan): void => {
  const start = w.open(18, 2)
  const ctx: SpanContext = s.spanContext()
  w.hexBytes(10, ctx.traceId, 0)
  w.hexBytes(18, ctx.spanId)
  const state = ctx.traceState?.serialize()
  if (state !== undefined && state !== "") w.string(26, state)
  const parent = s.parentSpanContext
  if (parent !== undefined && parent.spanId !== "") w.hexBytes(34, parent.spanId, 1)
  w.string(42, s.name)
  w.byte(48)
  w.varint(s.kind + 1)
  const nanos = s as ReadableSpan & { readonly startNanos?: bigint; readonly endNanos?: bigint }
  w.byte(57)
  if (nanos.startNanos !== undefined) w.fixed64(nanos.startNanos)
  else w.time(s.startTime)
  w.byte(65)
  if (nanos.endNanos !== undefined) w.fixed64(nanos.endNanos)
  else w.time(s.endTime)
  attributes(w, 74, s.attributes)
  if (s.droppedAttributesCount > 0) {
    w.byte(80)
    w.varint(s.droppedAttributesCount)
  }
  for (const e of s.events) {
    // Event: 1 time, 2 name, 3 attributes, 4 dropped_attributes_count
    const es = w.open(90, 1)
    w.byte(9)
    w.time(e.time)
    w.string(18, e.name)
    attributes(w, 26, e.attributes)
    if ((e.droppedAttributesCount ?? 0) > 0) {
      w.byte(32)
      w.varint(e.droppedAttributesCount!)
    }
    w.close(es, 1)
  }
  if (s.droppedEventsCount > 0) {
    w.byte(96)
    w.varint(s.droppedEventsCount)
  }
  for (const l of s.links) {
    // Link: 1 trace_id, 2 span_id, 3 trace_state, 4 attributes, 5 dropped_attributes_count, 6 flags
    const ls = w.open(106, 1)
    w.hexBytes(10, l.context.traceId)
    w.hexBytes(18, l.context.spanId)
    const ts = l.context.traceState?.serialize()
    if (ts !== undefined && ts !== "") w.string(26, ts)
    attributes(w, 34, l.attributes)
    if ((l.droppedAttributesCount ?? 0) > 0) {
      w.byte(40)
      w.varint(l.droppedAttributesCount!)
    }
    w.byte(53)
    w.fixed32(flagsOf(l.context.traceFlags, l.context.isRemote))
    w.close(ls, 1)
  }
  if (s.droppedLinksCount > 0) {
    w.byte(112)
    w.varint(s.droppedLinksCount)
  }
  // Status: 2 message, 3 code
  const st = w.open(122, 1)
  if (s.status.message !== undefined && s.status.message !== "") w.string(18, s.status.message)
  if (s.status.code !== 0) {
    w.byte(24)
    w.varint(s.status.code)
  }
  w.close(st, 1)
  w.byte(133)
  w.byte(1)
  w.fixed32(flagsOf(ctx.traceFlags, parent?.isRemote))
  w.close(start, 2)
}

/**
 * `ExportTraceServiceRequest` for `spans`: one `ResourceSpans` per resource and one `ScopeSpans`
 * per instrumentation scope, in the order they first appear (as the package's serializer groups).
 */
export const encodeTraceRequest = (spans: ReadonlyArray<ReadableSpan>): Uint8Array => {
  const w = new Writer(256 + spans.length * 256)
  const byResource = new Map<ReadableSpan["resource"], Map<string, Array<ReadableSpan>>>()
  // the spans of one layer share one resource and one scope object: look each up once per run of them
  let lastResource: ReadableSpan["resource"] | undefined
  let lastScope: ReadableSpan["instrumentationScope"] | undefined
  let list: Array<ReadableSpan> = []
  for (const s of spans) {
    const sc = s.instrumentationScope
    if (s.resource !== lastResource || sc !== lastScope) {
      lastResource = s.resource
      lastScope = sc
      let scopes = byResource.get(s.resource)
      if (scopes === undefined) byResource.set(s.resource, scopes = new Map())
      const key = `${sc.name}@${sc.version ?? ""}:${sc.schemaUrl ?? ""}`
      const found = scopes.get(key)
      if (found === undefined) scopes.set(key, list = [])
      else list = found
    }
    list.push(s)
  }
  for (const [resource, scopes] of byResource) {
    // ResourceSpans: 1 resource, 2 scope_spans, 3 schema_url
    const rs = w.open(10, 4)
    // Resource: 1 attributes, 2 dropped_attributes_count
    const r = w.open(10, 1)
    attributes(w, 10, resource.attributes)
    w.close(r, 1)
    for (const list of scopes.values()) {
      // ScopeSpans: 1 scope, 2 spans, 3 schema_url
      const ss = w.open(18, 4)
      const scope = list[0].instrumentationScope
      // InstrumentationScope: 1 name, 2 version
      const sc = w.open(10, 1)
      w.string(10, scope.name)
      if (scope.version !== undefined && scope.version !== "") w.string(18, scope.version)
      w.close(sc, 1)
      for (const s of list) span(w, s)
      if (scope.schemaUrl !== undefined && scope.schemaUrl !== "") w.string(26, scope.schemaUrl)
      w.close(ss, 4)
    }
    if (resource.schemaUrl !== undefined && resource.schemaUrl !== "") w.string(26, resource.schemaUrl)
    w.close(rs, 4)
  }
  return w.buf.subarray(0, w.pos)
}
