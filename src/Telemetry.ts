/**
 * Telemetry: one scoped Layer per mode.
 * - `off`: nothing loaded, `TelemetryEnabled` false, the gateway does no span work.
 * - `memory`: an in-memory recorder of finished spans (name, attributes, status, parent, events):
 *   how every telemetry test reads spans.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import { randomBytes } from "node:crypto"
import { TelemetryEnabled } from "./TelemetryFlag.js"

export { TelemetryEnabled }

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

const hex = (bytes: number): string => randomBytes(bytes).toString("hex")

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

/** A recorder plus the Effect tracer that feeds it. */
export const makeMemoryTracer = (): { readonly recorder: SpanRecorderService; readonly tracer: Tracer.Tracer } => {
  let finished: Array<RecordedSpan> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) =>
      new MemorySpan(name, parent, context, links, startTime, kind, (s) => finished.push(s)),
    context: (f) => f()
  })
  return { recorder: { spans: () => finished, clear: () => void (finished = []) }, tracer }
}

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
