/**
 * The `boruna` process: what `src/main.ts` starts.
 *
 * 1. Build the telemetry layer from the environment before anything else and hold it (its scope)
 *    for the whole process; its finalizer flushes the spans on every way out.
 * 2. `boruna run FILE [plain options]` takes a fast path that skips loading the @effect/cli
 *    command tree (~0.3 s of start-up); anything else — `--help`, completions, a usage error, any
 *    other command — goes through @effect/cli (`src/Cli.ts`), so help and errors come from there.
 * 3. SIGINT / SIGTERM interrupt the running program (the VM gives the event loop a turn while it
 *    computes, so this lands within milliseconds); the scope then closes (flush, bounded) and the
 *    process exits 130 / 143. A second signal exits at once with the first signal's code, after
 *    printing how many spans the exporter had not delivered (they are lost).
 * Errors are printed as `file:line:col: error[KIND]: message` (plus `help:` lines; see src/cli/CliError.ts, which has the exit codes).
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Telemetry from "../Telemetry.js"
import { CliError, ExitCode, formatLines } from "./CliError.js"
import type { RunOptions } from "./runFile.js"

const BOOLEAN_WORDS = new Set(["true", "false", "yes", "no", "on", "off", "y", "n", "1", "0"])

/**
 * `run` with nothing but its plain options, or undefined (then @effect/cli parses the line). Must
 * accept only lines @effect/cli would parse to the same options.
 */
export const fastRun = (argv: ReadonlyArray<string>, env: Record<string, string | undefined>): RunOptions | undefined => {
  if (argv[0] !== "run") return undefined
  // BORUNA_TIMEOUT is validated by the full parser (src/cli/run.ts)
  if ((env.BORUNA_TIMEOUT ?? "") !== "") return undefined
  let file: string | undefined
  let policy = "deny-all"
  let live = false
  let trace = env.BORUNA_TRACE === "1" || env.BORUNA_TRACE === "all"
  let maxSteps: number | undefined
  let record: string | undefined
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]
    const value = (): string | undefined => {
      const v = argv[++i]
      return v === undefined || v === "" || v.startsWith("-") ? undefined : v
    }
    if (a === "--policy" || a === "-p") {
      const v = value()
      if (v === undefined) return undefined
      policy = v
    } else if (a === "--live") live = true
    else if (a === "--trace") trace = true
    else if (a === "--max-steps") {
      const v = value()
      if (v === undefined || !/^[1-9][0-9]{0,14}$/.test(v)) return undefined
      maxSteps = Number(v)
    } else if (a === "--record") {
      const v = value()
      if (v === undefined) return undefined
      record = v
    } else if (a === "" || a.startsWith("-") || file !== undefined || BOOLEAN_WORDS.has(a.toLowerCase())) return undefined
    else file = a
  }
  return file === undefined ? undefined : { file, policy, live, trace, maxSteps, record }
}

const writeLines = (lines: ReadonlyArray<string>): void => {
  for (const l of lines) process.stderr.write(l + "\n")
}

/** Report a command's failure and give the exit code. */
const report = (e: CliError): number => {
  if (e.reported !== true) writeLines(formatLines(e))
  return e.exitCode
}

export const main = (argv: ReadonlyArray<string>, env: Record<string, string | undefined>): Effect.Effect<number> => {
  const trace = argv.some((a) => a === "--trace" || a === "--trace=all" || a === "--trace-all") || env.BORUNA_TRACE === "1" ||
    env.BORUNA_TRACE === "all"
  return Effect.scoped(Effect.gen(function*() {
    const telemetry = yield* Layer.build(Telemetry.fromEnv(env, { recordLocally: trace })).pipe(
      Effect.mapError((e) => new CliError({ kind: "telemetry_config", message: e.message, exitCode: ExitCode.input }))
    )
    const fast = fastRun(argv, env)
    const work = fast !== undefined
      ? Effect.flatMap(Effect.promise(() => import("./runFile.js")), (m) => m.runFile(fast))
      : Effect.flatMap(Effect.promise(() => import("../Cli.js")), (m) => m.runCli(argv))
    yield* Effect.provide(work, telemetry)
    return ExitCode.ok
  })).pipe(
    Effect.catchAll((e) => Effect.sync(() => report(e))),
    Effect.catchAllDefect((d) =>
      Effect.sync(() => {
        writeLines([`error[internal]: ${d instanceof Error ? d.message : String(d)} (please report this bug)`])
        return ExitCode.internal
      })
    )
  )
}

/** Run `main` as the process: signals, exit code, flushed stdio. */
export const start = (): void => {
  const fiber = Effect.runFork(main(process.argv.slice(2), process.env))
  let signalled: number | undefined
  const finish = (code: number): void => {
    // let pending stdout/stderr writes drain before exiting
    process.stdout.write("", () => process.stderr.write("", () => process.exit(code)))
  }
  const onSignal = (code: number) => (): void => {
    if (signalled !== undefined) {
      // the final flush is still waiting (e.g. on a black-holed collector): what it holds is lost
      writeLines(Telemetry.undeliveredReport())
      return process.exit(signalled)
    }
    signalled = code
    Effect.runFork(Fiber.interrupt(fiber))
  }
  process.on("SIGINT", onSignal(ExitCode.sigint))
  process.on("SIGTERM", onSignal(ExitCode.sigterm))
  fiber.addObserver((exit) => {
    if (Exit.isSuccess(exit)) return finish(signalled ?? exit.value)
    if (signalled !== undefined || Cause.isInterruptedOnly(exit.cause)) return finish(signalled ?? ExitCode.sigint)
    const d = Option.getOrUndefined(Cause.dieOption(exit.cause))
    writeLines([`error[internal]: ${d instanceof Error ? d.message : Cause.pretty(exit.cause).split("\n")[0]}`])
    finish(ExitCode.internal)
  })
}

