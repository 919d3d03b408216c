/**
 * The `boruna` command tree on `@effect/cli`, assembled from one module per command under
 * `src/cli/`. Each module defines its options and arguments and loads its handler's heavy imports
 * lazily, so `--help` and completions stay cheap.
 *
 * `runCli(argv)` parses `argv` (without `node` and the script), runs the chosen command and fails
 * with a `CliError` (usage errors, already printed by @effect/cli, have `reported: true`).
 */
import * as Command from "@effect/cli/Command"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import type { SpanRecorder } from "./Telemetry.js"
import * as Capability from "./cli/capability.js"
import { CliError, ExitCode } from "./cli/CliError.js"
import * as Compile from "./cli/compile.js"
import * as Inspect from "./cli/inspect.js"
import * as PolicyCmd from "./cli/policy.js"
import * as Replay from "./cli/replay.js"
import * as Run from "./cli/run.js"
import { VERSION } from "./cli/version.js"

export const root = Command.make("boruna").pipe(
  Command.withDescription("Deterministic, capability-gated runtime for AI-agent workflows"),
  Command.withSubcommands([
    Run.command,
    Compile.compileCommand,
    Compile.checkCommand,
    Inspect.command,
    Capability.makeCommand(VERSION),
    PolicyCmd.command,
    Replay.command
  ])
)

const cli = Command.run(root, { name: "boruna", version: VERSION, executable: "boruna" })

export const runCli = (argv: ReadonlyArray<string>): Effect.Effect<void, CliError, SpanRecorder> =>
  cli(["node", "boruna", ...argv]).pipe(
    Effect.catchIf(ValidationError.isValidationError, (e) =>
      Effect.fail(new CliError({ kind: "usage", message: e._tag, exitCode: ExitCode.usage, reported: true }))),
    Effect.provide(NodeContext.layer)
  )
