/**
 * `boruna replay FILE run.json [--policy P] [--allow-drift] [--allow-torn]`: re-run a program
 * against a recorded event log with the replay handlers (no live effect can happen), then print
 * `replay: identical (N events)` or the first divergence.
 *
 * Output: drift warnings (stderr) before the run; the program's value (stdout) or its error line
 * (stderr), as `run` prints them; then one verdict on stdout, which the exit code matches:
 *   `replay: identical (N events)`                       0
 *   `replay: identical (N events), drift allowed: …`     0 (`--allow-drift`)
 *   `replay: drifted: the events are identical …`        1
 *   `replay: diverged at event #i: …`                     1
 *   `replay: refused at event #i: …`                      4 (this replay's policy refused a recorded call, as `run` exits)
 *   `replay: tampered: …`                                 3 (the log's hash chain is broken: it was changed after recording)
 * and 3 for an unreadable or malformed log.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import { CliError, ExitCode, formatLine, input } from "./CliError.js"
import { loadEngine } from "./engine.js"
import { loadPolicy, loadProgram } from "./inputs.js"

export interface ReplayOptions {
  readonly file: string
  readonly log: string
  /** a policy to replay under instead of the recorded one (a different one is drift) */
  readonly policy: string | undefined
  readonly allowDrift: boolean
  readonly allowTorn: boolean
}

const out = (line: string): void => void process.stdout.write(line + "\n")
const err = (line: string): void => void process.stderr.write(line + "\n")

/**
 * Read a log for a command, as a `CliError` (exit 3) naming file, line and JSON path on failure; a
 * broken hash chain is kind `tampered`. Warns (stderr) about a torn last line and about events no
 * seal covers.
 */
export const loadLog = (file: string, allowTorn: boolean) =>
  Effect.flatMap(Effect.promise(() => import("../EventLogFile.js")), (EventLogFile) =>
    Effect.tap(
      Effect.mapError(EventLogFile.readLog(file, { allowTorn }), (e) => input(e.tampered === true ? "tampered" : "invalid_log", e.message)),
      (log) =>
        Effect.sync(() => {
          if (log.torn !== undefined) {
            err(
              `warning: ${file}:${log.torn.line}: torn last line (${log.torn.bytes} bytes without a newline) ignored; ` +
                `using the ${log.events.length} complete events before it`
            )
          }
          const c = log.chain
          if (c !== undefined && !c.chained) {
            err(`warning: ${file}: a version 1 log has no hash chain: a change to it after recording cannot be detected`)
          } else if (c !== undefined && !c.closed) {
            err(
              `warning: ${file}: the recording run did not close this log (it was killed or crashed)` +
                (c.unsealed > 0 ? `; the last ${c.unsealed} events are not covered by the hash chain` : "")
            )
          }
        })
    ))

const verdictLine = (line: string, exitCode: number, kind: string): Effect.Effect<never, CliError> =>
  Effect.zipRight(Effect.sync(() => out(line)), Effect.fail(new CliError({ kind, message: line, exitCode, reported: true })))

export const replayFile = (o: ReplayOptions): Effect.Effect<void, CliError> =>
  Effect.gen(function*() {
    const log = yield* Effect.catchIf(
      loadLog(o.log, o.allowTorn),
      (e) => e.kind === "tampered",
      (e) => verdictLine(`replay: tampered: ${e.message}`, ExitCode.input, "tampered")
    )
    const [Replay, Bytecode, Telemetry] = yield* Effect.promise(() =>
      Promise.all([import("../Replay.js"), import("../Bytecode.js"), import("../Telemetry.js")])
    )
    const policy = o.policy === undefined ? log.header.policy : yield* loadPolicy(o.policy)
    const engine = yield* Effect.promise(loadEngine)
    const program = yield* loadProgram(engine, o.file)

    const drift = Replay.drift(log.header, { programHash: Bytecode.programHash(program), policy })
    for (const d of drift) err(`warning: ${Replay.formatDrift(d).replace(/^replay: drift: /, "")}`)

    const [exit, verdict] = yield* Telemetry.withRunSpan(Effect.suspend(() => engine.run(program, {})), { "boruna.file": o.file }).pipe(
      Effect.exit,
      Effect.zip(Replay.verdict),
      Effect.provide(Replay.runtime(log, { policy }))
    )
    if (Exit.isSuccess(exit)) {
      const { show } = yield* Effect.promise(() => import("../Value.js"))
      out(show(exit.value))
    } else {
      // the program failed (as the recorded run may have): print it as `run` does; a defect or an
      // interruption is not a program outcome and goes on up
      const e = Cause.failureOption(exit.cause)
      if (Option.isNone(e)) return yield* Effect.orDie(Effect.failCause(exit.cause))
      const v = e.value
      err(formatLine({ kind: v.kind, message: v.message, location: { file: v.file, line: v.line, col: v.col } }))
    }
    if (verdict._tag === "Diverged") {
      for (const l of Replay.formatVerdict(verdict)) out(l)
      const refused = verdict.divergence.kind === "refused"
      return yield* Effect.fail(
        new CliError({
          kind: refused ? "replay_refused" : "replay_diverged",
          message: "replay diverged",
          exitCode: refused ? ExitCode.policy : ExitCode.runtime,
          reported: true
        })
      )
    }
    const differs = drift.map((d) => ({ program: "the program", policy: "the policy", capability_set: "the capability set" })[d.what]).join(" and ")
    const n = `${verdict.events} event${verdict.events === 1 ? "" : "s"}`
    if (drift.length === 0) out(`replay: identical (${n})`)
    else if (o.allowDrift) out(`replay: identical (${n}), drift allowed: ${differs} differs from the recorded run`)
    else {
      return yield* verdictLine(
        `replay: drifted: the events are identical (${n}), but ${differs} differs from the recorded run (--allow-drift accepts that)`,
        ExitCode.runtime,
        "replay_drift"
      )
    }
  })

export const command = Command.make(
  "replay",
  {
    file: Args.text({ name: "FILE" }).pipe(Args.withDescription("the .ax or .axbc program that was recorded")),
    log: Args.text({ name: "LOG" }).pipe(Args.withDescription("the event log written by `boruna run FILE --record LOG`")),
    policy: Options.text("policy").pipe(
      Options.withAlias("p"),
      Options.withDescription("replay under this policy (allow-all, deny-all or a JSON file) instead of the recorded one; a different one is reported as drift"),
      Options.optional
    ),
    allowDrift: Options.boolean("allow-drift").pipe(
      Options.withDescription("a changed program or policy is reported but does not fail the replay by itself")
    ),
    allowTorn: Options.boolean("allow-torn").pipe(
      Options.withDescription("replay a log whose last line was torn by a crash (with a warning) instead of refusing it")
    )
  },
  (o) =>
    replayFile({ file: o.file, log: o.log, policy: Option.getOrUndefined(o.policy), allowDrift: o.allowDrift, allowTorn: o.allowTorn })
).pipe(
  Command.withDescription(
    "Re-run a program against its recorded event log (no live effect); print `replay: identical (N events)` or the first divergence"
  )
)
