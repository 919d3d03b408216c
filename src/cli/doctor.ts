/**
 * `boruna doctor`: how every telemetry variable was resolved (value in effect, where it came from,
 * what was ignored and why), then one test span `boruna.doctor` sent to the configured endpoint.
 * Exit 0 when the span was delivered; 1 when it was not (or when no endpoint is configured, so
 * nothing could be sent). The strict counterpart of `boruna run`, which only warns about unusable
 * settings and goes on.
 */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import type { CommandSpecs } from "./argvSpec.js"
import { CliError, ExitCode } from "./CliError.js"

export const specs: CommandSpecs = { commands: { doctor: { values: [], flags: [], args: [] } }, groups: {} }

const out = (line: string): void => void process.stdout.write(line + "\n")

export const command = Command.make("doctor", {}, () =>
  Effect.gen(function*() {
    const Telemetry = yield* Effect.promise(() => import("../Telemetry.js"))
    const report = yield* Telemetry.doctor(process.env)
    for (const line of report.lines) out(line)
    if (!report.delivered) {
      return yield* Effect.fail(new CliError({ kind: "telemetry", message: report.verdict, exitCode: ExitCode.runtime }))
    }
    out(report.verdict)
  })
).pipe(Command.withDescription("check the telemetry configuration: print how every OTEL_* variable was resolved and send one test span (exit 1 if it is not delivered)"))
