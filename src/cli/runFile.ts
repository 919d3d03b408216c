/**
 * `boruna run`: the work itself, free of `@effect/cli` so the fast path in `main.ts` can call it
 * without loading the command tree. Compile (`.ax`) or decode (`.axbc`), run `main` under the
 * policy through the gateway inside the root span `boruna.run`, print the value (`.ax` literal form).
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { BytecodeProgram } from "../Bytecode.js"
import type { Event } from "../Event.js"
import type { LogWriter } from "../EventLogFile.js"
import * as EventLog from "../EventLog.js"
import * as Gateway from "../Gateway.js"
import * as Handlers from "../Handlers.js"
import type { Policy } from "../Policy.js"
import * as Telemetry from "../Telemetry.js"
import { show } from "../Value.js"
import { CliError, exitCodeOfKind, ExitCode, input, usage } from "./CliError.js"
import { loadEngine, type Program, type VmErrorLike } from "./engine.js"
import { checkReadable, checkWritable, loadPolicy, loadProgram, refuseOverwrite } from "./inputs.js"
import { formatTraceTable } from "./traceTable.js"

export interface RunOptions {
  readonly file: string
  /** `allow-all`, `deny-all` or a policy file (default `deny-all`) */
  readonly policy: string
  readonly live: boolean
  readonly maxSteps: number | undefined
  readonly record: string | undefined
  readonly trace: boolean
  /** `--trace=all` / `--trace-all` / `BORUNA_TRACE=all`: no folding of the trace table */
  readonly traceAll?: boolean | undefined
  /** `--record-net-to TAPE` (with --live): tape every net.fetch exchange */
  readonly recordNetTo?: string | undefined
  /** `--replay-net-from TAPE`: answer net.fetch from the tape */
  readonly replayNetFrom?: string | undefined
  /** `--timeout DURATION` / `BORUNA_TIMEOUT`: wall-clock limit of the run in ms (error kind `timeout`) */
  readonly timeoutMs?: number | undefined
}

export const out = (line: string): void => void process.stdout.write(line + "\n")
export const err = (line: string): void => void process.stderr.write(line + "\n")

const liveHandlers = (policy: Policy): Effect.Effect<Layer.Layer<Handlers.Handlers, CliError>, CliError> =>
  Effect.map(
    Effect.tryPromise({
      try: () => import("../Live.js"),
      catch: (e) => new CliError({ kind: "live_unavailable", message: `--live: cannot load the live handlers: ${String(e)}`, exitCode: ExitCode.input })
    }),
    (live) => Layer.mapError(live.layer(policy), (e) => input("live_config", `--live: ${e.message}`))
  )

/**
 * `--record FILE`: the event-log file (`EventLogFile.ts`), written as the run goes (each event before
 * its result returns to the program, fsynced in groups at most 100 ms apart and at exit), so an
 * error or a signal loses nothing already recorded.
 */
const openRecord = (file: string, program: Program, policy: Policy, source: string): Effect.Effect<LogWriter, CliError> =>
  Effect.flatMap(
    Effect.promise(() => Promise.all([import("../EventLogFile.js"), import("../Bytecode.js")])),
    ([EventLogFile, Bytecode]) =>
      Effect.mapError(
        EventLogFile.openWriter(file, EventLogFile.makeHeader({ programHash: Bytecode.programHash(program as BytecodeProgram), policy, sourceFile: source })),
        (e) => input("io_error", `--record: ${e.message}`)
      )
  )

/** `--record-net-to` / `--replay-net-from`: wrap the chosen handlers' net.fetch with a tape (`NetTape.ts`). */
const withNetTape = (handlers: Layer.Layer<Handlers.Handlers, CliError>, o: RunOptions): Layer.Layer<Handlers.Handlers, CliError> =>
  o.recordNetTo === undefined && o.replayNetFrom === undefined
    ? handlers
    : Layer.unwrapEffect(Effect.map(Effect.promise(() => import("../NetTape.js")), (NetTape) =>
      (o.recordNetTo !== undefined ? NetTape.recordLayer(o.recordNetTo) : NetTape.replayLayer(o.replayNetFrom!)).pipe(
        Layer.mapError((e) => input("invalid_tape", e.message)),
        Layer.provide(handlers)
      )))

const vmError = (e: VmErrorLike): CliError =>
  new CliError({
    kind: e.kind,
    message: e.message,
    exitCode: exitCodeOfKind(e.kind),
    ...(e.file !== undefined && e.line !== undefined ? { location: { file: e.file, line: e.line, col: e.col } } : {})
  })

const calls = (events: ReadonlyArray<Event>): number => events.filter((e) => e.type === "CapResult" || e.type === "CapError").length

/** Run a program file; prints the result on stdout, fails with a `CliError`. */
export const runFile = (o: RunOptions): Effect.Effect<void, CliError, Telemetry.SpanRecorder> =>
  Effect.gen(function*() {
    if (!o.file.endsWith(".ax") && !o.file.endsWith(".axbc")) {
      return yield* Effect.fail(usage(`unknown file extension: ${o.file} (expected .ax or .axbc)`))
    }
    const policyFile = o.policy === "allow-all" || o.policy === "deny-all" ? undefined : o.policy
    yield* refuseOverwrite(
      [["--record", o.record], ["--record-net-to", o.recordNetTo]],
      [["the program", o.file], ["the policy", policyFile], ["the --replay-net-from tape", o.replayNetFrom]]
    )
    // the tape is written after the first live exchange: find out now, before any effect, that it cannot be
    if (o.recordNetTo !== undefined) yield* checkWritable("--record-net-to", o.recordNetTo)
    if (o.record !== undefined) yield* checkWritable("--record", o.record)
    if (o.replayNetFrom !== undefined) yield* checkReadable(o.replayNetFrom, "--replay-net-from")
    const policy = yield* loadPolicy(o.policy)
    const engine = yield* Effect.promise(loadEngine)
    const program = yield* loadProgram(engine, o.file)
    const handlers = withNetTape(o.live ? yield* liveHandlers(policy) : Handlers.demoFromEnv(process.env), o)
    const writer = o.record === undefined ? undefined : yield* openRecord(o.record, program, policy, o.file)
    const log = writer ?? EventLog.makeMemory()
    const services = Gateway.layer(policy).pipe(
      Layer.provideMerge(Layer.mergeAll(handlers, Layer.succeed(EventLog.EventLog, log)))
    )
    const recorder = yield* Telemetry.SpanRecorder
    const options = {
      ...(o.maxSteps === undefined ? {} : { maxSteps: o.maxSteps }),
      ...(o.timeoutMs === undefined ? {} : { maxWallMs: o.timeoutMs })
    }

    const exit = yield* Telemetry.withRunSpan(
      Effect.suspend(() => engine.run(program, options)).pipe(Effect.mapError(vmError)),
      { "boruna.file": o.file }
    ).pipe(
      Effect.provide(services),
      Effect.onInterrupt(() =>
        Effect.sync(() => err(`error[interrupted]: run interrupted after ${calls(log.events())} completed capability call(s)`))
      ),
      Effect.ensuring(Effect.sync(() => {
        if (o.trace) err(formatTraceTable(recorder.spans(), { all: o.traceAll === true || process.env.BORUNA_TRACE === "all" }))
      })),
      Effect.ensuring(Effect.sync(() => writer?.close())),
      Effect.exit
    )
    // a failed write to --record stopped the run where it failed: that is the error, whatever the
    // program then saw (the gateway's defect, the VM's error); every earlier event is in the file
    const failure = writer?.failure()
    if (failure !== undefined) return yield* Effect.fail(input("io_error", `--record: ${failure.message}`))
    const result = yield* exit
    out(show(result))
    if (o.record !== undefined) err(`events recorded to ${o.record}`)
  })
