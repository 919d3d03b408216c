/** `boruna compile FILE.ax [-o FILE.axbc]` and `boruna check FILE.ax [--json]`. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { formatDiagnostic } from "../Diagnostic.js"
import { CliError, ExitCode, usage } from "./CliError.js"
import { loadEngine } from "./engine.js"
import { compile as compileFile, readText, refuseOverwrite, writeText } from "./inputs.js"

const sourceArg = Args.text({ name: "FILE" }).pipe(Args.withDescription("a .ax source file"))

const requireAx = (file: string): Effect.Effect<void, CliError> =>
  file.endsWith(".ax") ? Effect.void : Effect.fail(usage(`expected a .ax source file, got ${file}`))

export const compileCommand = Command.make(
  "compile",
  {
    file: sourceArg,
    output: Options.text("output").pipe(Options.withAlias("o"), Options.withDescription("bytecode file to write (default: FILE with extension .axbc)"), Options.optional)
  },
  ({ file, output }) =>
    Effect.gen(function*() {
      yield* requireAx(file)
      const out = Option.getOrElse(output, () => file.replace(/\.ax$/, ".axbc"))
      yield* refuseOverwrite([["-o", out]], [["the source file", file]])
      const engine = yield* Effect.promise(loadEngine)
      const program = yield* compileFile(engine, file)
      yield* writeText(out, engine.encodeAxbc(program))
      yield* Console.log(`compiled ${file} -> ${out}`)
    })
).pipe(Command.withDescription("Compile a .ax file to bytecode (.axbc)"))

export const checkCommand = Command.make(
  "check",
  {
    file: sourceArg,
    json: Options.boolean("json").pipe(Options.withDescription("print the diagnostics as a JSON array"))
  },
  ({ file, json }) =>
    Effect.gen(function*() {
      yield* requireAx(file)
      const engine = yield* Effect.promise(loadEngine)
      const source = yield* readText(file)
      const r = engine.compileSource(file, source)
      const diagnostics = r.ok ? [] : r.diagnostics
      if (json) yield* Console.log(JSON.stringify(diagnostics, null, 2))
      else yield* Console.log(diagnostics.length === 0 ? `${file}: no errors` : diagnostics.map(formatDiagnostic).join("\n"))
      if (diagnostics.length > 0) {
        // the diagnostics are the output; the error only sets the exit code
        return yield* Effect.fail(new CliError({ kind: "compile_error", message: `${diagnostics.length} error(s) in ${file}`, exitCode: ExitCode.input, reported: true }))
      }
    })
).pipe(Command.withDescription("Type-check a .ax file and report every diagnostic"))
