/**
 * `boruna policy simulate run.json --policy other.json [--allow-torn]`: list every recorded call
 * the other policy would deny or push over budget (event index, call, source location, reason),
 * performing no effect. Exit 0 when the other policy refuses nothing, 4 when it refuses a call
 * (the "refused by policy" code), 3 for an unreadable log or policy.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import { CliError, ExitCode } from "./CliError.js"
import { loadPolicy } from "./inputs.js"
import { loadLog } from "./replay.js"

export interface SimulateOptions {
  readonly log: string
  readonly policy: string
  readonly allowTorn: boolean
}

export const simulateFile = (o: SimulateOptions): Effect.Effect<void, CliError> =>
  Effect.gen(function*() {
    const log = yield* loadLog(o.log, o.allowTorn)
    const policy = yield* loadPolicy(o.policy)
    const Simulate = yield* Effect.promise(() => import("../Simulate.js"))
    const report = Simulate.simulate(log, policy)
    for (const l of Simulate.formatReport(report, o.policy)) process.stdout.write(l + "\n")
    if (report.refusals.length > 0) {
      return yield* Effect.fail(
        new CliError({ kind: "denied", message: "the policy would refuse recorded calls", exitCode: ExitCode.policy, reported: true })
      )
    }
  })

export const command = Command.make(
  "simulate",
  {
    log: Args.text({ name: "LOG" }).pipe(Args.withDescription("an event log written by `boruna run FILE --record LOG`")),
    policy: Options.text("policy").pipe(
      Options.withAlias("p"),
      Options.withDescription("the policy to check the recorded calls against (allow-all, deny-all or a JSON file)")
    ),
    allowTorn: Options.boolean("allow-torn").pipe(Options.withDescription("accept a log whose last line was torn by a crash (with a warning)"))
  },
  (o) => simulateFile(o)
).pipe(
  Command.withDescription("List every call of a recorded run that another policy would deny or push over budget, performing no effect")
)
