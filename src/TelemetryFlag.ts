/**
 * Whether telemetry is on for this program. The telemetry layers set it to true; when it is false
 * (the default) the gateway takes a path with no span work at all.
 */
import * as Context from "effect/Context"

export class TelemetryEnabled extends Context.Reference<TelemetryEnabled>()("boruna/TelemetryEnabled", {
  defaultValue: () => false
}) {}
