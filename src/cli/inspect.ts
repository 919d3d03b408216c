/** `boruna inspect FILE.axbc [--json]`: what a bytecode file holds. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { usage } from "./CliError.js"
import { loadEngine } from "./engine.js"
import { decode } from "./inputs.js"

export const command = Command.make(
  "inspect",
  {
    file: Args.text({ name: "FILE" }).pipe(Args.withDescription("a .axbc bytecode file")),
    json: Options.boolean("json").pipe(Options.withDescription("print the decoded program as JSON"))
  },
  ({ file, json }) =>
    Effect.gen(function*() {
      if (!file.endsWith(".axbc")) return yield* Effect.fail(usage(`expected a .axbc bytecode file, got ${file}`))
      const engine = yield* Effect.promise(loadEngine)
      const program = yield* decode(engine, file)
      yield* Console.log(json ? JSON.stringify(program, null, 2) : JSON.stringify(program, null, 2))
    })
).pipe(Command.withDescription("Show the contents of a .axbc file: constants, types, functions and their code"))
