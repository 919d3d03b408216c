/** `boruna inspect FILE.axbc [--json]`: what a bytecode file holds. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import type { BytecodeProgram } from "../Bytecode.js"
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
      const { disassemble, programHash } = yield* Effect.promise(() => import("../Bytecode.js"))
      const p = program
      if (json) {
        const { toJson } = yield* Effect.promise(() => import("../ValueJson.js"))
        return yield* Console.log(JSON.stringify({ ...p, constants: p.constants.map(toJson), program_hash: programHash(p) }, null, 2))
      }
      yield* Console.log(
        [
          `module: ${p.name}`,
          `format: ${p.format} v${p.version}`,
          `source: ${p.sourceFile} (${p.sourceHash})`,
          `program_hash: ${programHash(p)}`,
          `entry: function #${p.entry} ${p.functions[p.entry]?.name ?? "?"}`,
          `types (${p.types.length}):`,
          ...p.types.map((t, i) =>
            `  #${i}: ${t.name} ${t.kind === "record" ? `record { ${t.fields.join(", ")} }` : `enum { ${t.variants.map((v) => v.name + (v.payload ? "(_)" : "")).join(", ")} }`}`
          ),
          `constants (${p.constants.length}), functions (${p.functions.length}):`,
          disassemble(p).trimEnd()
        ].join("\n")
      )
    })
).pipe(Command.withDescription("Show the contents of a .axbc file: constants, types, functions and their code"))
