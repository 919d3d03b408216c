/** `boruna run FILE(.ax|.axbc) [--policy …] [--live] [--max-steps N] [--timeout DURATION] [--record FILE] [--trace]` */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { usage } from "./CliError.js"

export const policyOption = Options.text("policy").pipe(
  Options.withAlias("p"),
  Options.withDescription("allow-all, deny-all or a policy JSON file"),
  Options.withDefault("deny-all")
)

/**
 * A duration for `--timeout` / `BORUNA_TIMEOUT`: a positive number with a unit `ms`, `s`, `m` or `h`
 * (`500ms`, `2s`, `1.5m`), or a bare number of seconds. Milliseconds, or an error message.
 */
export const parseDuration = (text: string): number | string => {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*$/.exec(text)
  const ms = m === null ? NaN : Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const)[(m[2] ?? "s") as "ms" | "s" | "m" | "h"]
  return Number.isFinite(ms) && ms > 0 ? ms : `expected a positive duration such as 500ms, 30s or 5m, got ${JSON.stringify(text)}`
}

export const command = Command.make(
  "run",
  {
    file: Args.text({ name: "FILE" }).pipe(Args.withDescription("a .ax source file or a .axbc bytecode file")),
    policy: policyOption,
    live: Options.boolean("live").pipe(Options.withDescription("use the live handlers (real network, files, database, model) instead of the deterministic demo ones")),
    maxSteps: Options.integer("max-steps").pipe(Options.withDescription("stop the program after N VM steps (default 10000000)"), Options.optional),
    timeout: Options.text("timeout").pipe(
      Options.withDescription("stop the run after this wall-clock time (500ms, 30s, 5m; also BORUNA_TIMEOUT): error kind timeout, exit 5"),
      Options.optional
    ),
    record: Options.text("record").pipe(Options.withDescription("write the run's event log to this JSON file"), Options.optional),
    trace: Options.boolean("trace").pipe(
      Options.withDescription(
        "print a table of the capability calls (the boruna.cap spans) and a per-capability summary on stderr after the run; long runs are folded (also BORUNA_TRACE=1)"
      )
    ),
    traceAll: Options.boolean("trace-all").pipe(
      Options.withDescription("with --trace: print every row, unfolded (also written --trace=all, or BORUNA_TRACE=all)")
    ),
    recordNetTo: Options.text("record-net-to").pipe(Options.withDescription("with --live: write every net.fetch exchange to this tape file (docs/replay.md)"), Options.optional),
    replayNetFrom: Options.text("replay-net-from").pipe(Options.withDescription("answer net.fetch from this tape file, never the network (docs/replay.md)"), Options.optional)
  },
  (o) => {
    const timeoutText = Option.isSome(o.timeout) ? o.timeout.value : process.env.BORUNA_TIMEOUT
    const timeout = timeoutText === undefined || timeoutText === "" ? undefined : parseDuration(timeoutText)
    return typeof timeout === "string"
      ? Effect.fail(usage(`${Option.isSome(o.timeout) ? "--timeout" : "BORUNA_TIMEOUT"}: ${timeout}`))
      : Option.isSome(o.maxSteps) && o.maxSteps.value <= 0
      ? Effect.fail(usage(`--max-steps must be a positive integer, got ${o.maxSteps.value}`))
      : Option.isSome(o.recordNetTo) && Option.isSome(o.replayNetFrom)
      ? Effect.fail(usage("--record-net-to and --replay-net-from are mutually exclusive"))
      : Option.isSome(o.recordNetTo) && !o.live
      ? Effect.fail(usage("--record-net-to requires --live (recording needs real HTTP calls to record)"))
      : Effect.flatMap(Effect.promise(() => import("./runFile.js")), ({ runFile }) =>
        runFile({
          file: o.file,
          policy: o.policy,
          live: o.live,
          maxSteps: Option.getOrUndefined(o.maxSteps),
          record: Option.getOrUndefined(o.record),
          trace: o.trace || o.traceAll || process.env.BORUNA_TRACE === "1" || process.env.BORUNA_TRACE === "all",
          traceAll: o.traceAll,
          recordNetTo: Option.getOrUndefined(o.recordNetTo),
          replayNetFrom: Option.getOrUndefined(o.replayNetFrom),
          timeoutMs: timeout
        }))
  }
).pipe(Command.withDescription("Compile (if .ax) and run a program's main under a policy; print its value"))
