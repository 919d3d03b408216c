/**
 * Whether telemetry is on for this program, and the few hooks the gateway shares with the telemetry
 * layers. Kept free of OpenTelemetry imports: the gateway loads this module on every run.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"

/**
 * Whether telemetry is on. The telemetry layers set it to true; when it is false (the default) the
 * gateway takes a path with no span work at all.
 */
export class TelemetryEnabled extends Context.Reference<TelemetryEnabled>()("boruna/TelemetryEnabled", {
  defaultValue: () => false
}) {}

/**
 * Backpressure from the span exporter: `full()` is true when the export queue has no room for
 * another span; `wait` then suspends the caller until an export made room (bounded by the export
 * timeout). Undefined when nothing exports (off, in-memory recorder).
 */
export interface ExportBackpressureService {
  readonly full: () => boolean
  readonly wait: Effect.Effect<void>
}

export class ExportBackpressure extends Context.Reference<ExportBackpressure>()("boruna/ExportBackpressure", {
  defaultValue: (): ExportBackpressureService | undefined => undefined
}) {}

/**
 * Failures whose exception event a span already recorded are marked: the span they fail next (the
 * cap span around a handler's own span) records the failure as its status only, so that an
 * exception is recorded once, on the span where it happened. A mark (a non-enumerable symbol
 * property) rather than a WeakSet: Effect hands failures on wrapped in a Proxy that carries the
 * span, and a Proxy is not its target's identity, while a property read passes through.
 */
const RECORDED: unique symbol = Symbol.for("boruna/Telemetry/recorded")

export const isRecorded = (failure: unknown): boolean =>
  typeof failure === "object" && failure !== null && (failure as { readonly [RECORDED]?: boolean })[RECORDED] === true

export const markRecorded = (failure: unknown): void => {
  if (typeof failure === "object" && failure !== null && !isRecorded(failure) && Object.isExtensible(failure)) {
    Object.defineProperty(failure, RECORDED, { value: true, enumerable: false })
  }
}

/** `to` is the same failure as `from` (an error mapped to another type): recorded if `from` was. */
export const sameFailure = (from: unknown, to: unknown): void => {
  if (isRecorded(from)) markRecorded(to)
}

/** The error kinds of a failed span (`error.type` / `error.kind`) with a reason that holds no data. */
export interface FailureSummary {
  readonly type: string
  readonly message: string
}

const REASONS: Readonly<Record<string, string>> = {
  denied: "refused by the policy",
  budget_exceeded: "the capability's budget is exhausted",
  runtime_error: "the handler failed",
  approval_required: "a person's approval is required",
  timeout: "timed out",
  interrupted: "interrupted"
}

/**
 * What a span says about a failure: the capability and the error kind, and a fixed reason per kind.
 * Never the error's message (it may quote an argument, a path, a URL, a policy list or a response).
 */
export const summarizeFailure = (error: unknown): FailureSummary => {
  if (typeof error === "object" && error !== null) {
    const e = error as { readonly capability?: unknown; readonly kind?: unknown; readonly _tag?: unknown; readonly reason?: unknown }
    const kind = typeof e.kind === "string" && /^[a-z_]{1,40}$/.test(e.kind) ? e.kind : undefined
    if (typeof e.capability === "string" && /^[a-z_.]{1,40}$/.test(e.capability) && kind !== undefined) {
      const reason = kind === "denied" && e.reason === NOT_GRANTED ? "not granted by the policy" : REASONS[kind] ?? "failed"
      return { type: kind, message: `${e.capability}: ${kind}: ${reason}` }
    }
    if (kind !== undefined) return { type: kind, message: `${kind}: ${REASONS[kind] ?? "failed"}` }
    if (typeof e._tag === "string" && /^[A-Za-z_]{1,40}$/.test(e._tag)) return { type: e._tag, message: `${e._tag}: failed` }
  }
  return { type: "_OTHER", message: "failed" }
}

/** The reason the gateway gives for a capability the policy does not grant (safe to show). */
export const NOT_GRANTED = "not granted by policy"
