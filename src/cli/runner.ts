/** `boruna runner`: not built yet (placeholder so that its owner edits this file only). */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import type { CommandSpecs } from "./argvSpec.js"
import { CliError, ExitCode } from "./CliError.js"

export const specs: CommandSpecs = { commands: {}, groups: {} }

export const command = Command.make("runner", {}, () =>
  Effect.fail(new CliError({ kind: "usage", message: "boruna runner is not available in this build", exitCode: ExitCode.usage }))
).pipe(Command.withDescription("(not available yet)"))
