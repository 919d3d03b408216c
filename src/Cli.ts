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
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import type { SpanRecorder } from "./Telemetry.js"
import * as Capability from "./cli/capability.js"
import { checkArgv, COMMANDS, GROUPS } from "./cli/argv.js"
import { CliError, ExitCode, usage } from "./cli/CliError.js"
import * as Compile from "./cli/compile.js"
import * as Doctor from "./cli/doctor.js"
import * as Evidence from "./cli/evidence.js"
import * as Inspect from "./cli/inspect.js"
import * as Mcp from "./cli/mcp.js"
import * as PolicyCmd from "./cli/policy.js"
import * as Replay from "./cli/replay.js"
import * as Run from "./cli/run.js"
import * as Runner from "./cli/runner.js"
import { VERSION } from "./cli/version.js"
import * as Workflow from "./cli/workflow.js"

export const root = Command.make("boruna").pipe(
  Command.withDescription("Deterministic, capability-gated runtime for AI-agent workflows"),
  Command.withSubcommands([
    Run.command,
    Compile.compileCommand,
    Compile.checkCommand,
    Inspect.command,
    Capability.makeCommand(VERSION),
    PolicyCmd.command,
    Replay.command,
    Workflow.command,
    Evidence.command,
    Runner.command,
    Mcp.command,
    Doctor.command
  ])
)

const cli = Command.run(root, { name: "boruna", version: VERSION, executable: "boruna" })

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g

/**
 * The Console @effect/cli prints through: help text without colour codes when stdout is not a
 * terminal (or NO_COLOR is set), and its usage errors (multi-line help docs on stderr) captured so
 * that `runCli` prints them as one `error[usage]: …` line instead.
 */
/** @effect/cli's per-option boilerplate: the same sentence under every option of a type. */
const BOILERPLATE = new Set(["A user-defined piece of text.", "A true or false value.", "An integer.", "This setting is optional."])
/** Built-in options users cannot use here: `--wizard` (needs a terminal) and `--log-level` (boruna logs nothing). */
const HIDDEN = [/^--wizard\b/, /^--log-level\b/]

/**
 * Help text as users should read it: without @effect/cli's boilerplate lines ("A user-defined piece
 * of text.", "This setting is optional.", "One of the following: …" repeating the choices), without
 * the hidden built-in options, and with `$ boruna …` as the usage line.
 */
export const cleanHelp = (text: string, path = ""): string => {
  const words = path.split(" ").filter((w) => w !== "")
  const usage = (line: string): string => {
    const m = /^(\s*)\$ (\S+)(.*)$/.exec(line)
    if (m === null || m[2] === "boruna") return line
    // @effect/cli names only the last word of a subcommand: `$ simulate …` is `$ boruna policy simulate …`
    const full = words.length > 0 && words[words.length - 1] === m[2] ? words.join(" ") : m[2]
    return `${m[1]}$ boruna ${full}${m[3]}`
  }
  const lines = text.split("\n")
  const out: Array<string> = []
  let hiding = false
  for (const line of lines) {
    const plain = line.replace(ANSI, "")
    const bare = plain.trim()
    // an option entry starts at column 0 in the OPTIONS section; hide the whole entry
    if (plain.length > 0 && !plain.startsWith(" ")) hiding = HIDDEN.some((h) => h.test(bare))
    if (hiding) continue
    if (BOILERPLATE.has(bare) || bare.startsWith("One of the following: ")) continue
    out.push(bare.startsWith("$ ") ? usage(line) : line)
  }
  // the dropped lines leave runs of blank lines behind
  return out.join("\n").replace(/\n{3,}/g, "\n\n")
}

const isHelp = (a: unknown): a is string => typeof a === "string" && a.includes("USAGE")

const cliConsole = (base: Console.Console, captured: Array<string>, plain: boolean, path: string): Console.Console => ({
  ...base,
  log: (...args) =>
    base.log(...args.map((a) => (isHelp(a) ? cleanHelp(a, path) : a)).map((a) => (plain && typeof a === "string" ? a.replace(ANSI, "") : a))),
  error: (...args) => Effect.sync(() => void captured.push(args.map(String).join(" ").replace(ANSI, "")))
})

/** @effect/cli's wording, made one line and grammatical. */
const usageLine = (text: string): string =>
  text.replace(/\s*\n\s*/g, " ").trim().replace(/ is not a integer/g, " is not an integer") || "invalid command line"

/** `run `, `policy simulate ` or nothing: whose `--help` the usage line points to. */
const helpFor = (argv: ReadonlyArray<string>): string => {
  const [a, b] = argv
  if (a === undefined || !(a in COMMANDS || a in GROUPS)) return ""
  return b !== undefined && `${a} ${b}` in COMMANDS ? `${a} ${b} ` : `${a} `
}

export const runCli = (given: ReadonlyArray<string>): Effect.Effect<void, CliError, SpanRecorder> => {
  // `--trace=all` is how the docs write `--trace --trace-all` (a boolean option takes no value)
  const argv = given.flatMap((a) => (a === "--trace=all" ? ["--trace", "--trace-all"] : [a]))
  const problem = checkArgv(argv)
  if (problem !== undefined) return Effect.fail(usage(problem))
  if (argv.includes("--wizard") && process.stdin.isTTY !== true) {
    return Effect.fail(usage("--wizard asks questions: it needs an interactive terminal on stdin"))
  }
  const captured: Array<string> = []
  const plain = process.stdout.isTTY !== true || (process.env.NO_COLOR ?? "") !== ""
  return Effect.flatMap(Effect.console, (base) =>
    cli(["node", "boruna", ...argv]).pipe(
      Effect.withConsole(cliConsole(base, captured, plain, helpFor(argv).trim())),
      Effect.catchIf(ValidationError.isValidationError, (e) =>
        Effect.fail(
          captured.length === 0
            ? new CliError({ kind: "usage", message: e._tag, exitCode: ExitCode.usage, reported: true })
            : usage(`${usageLine(captured.join("\n"))} (see boruna ${helpFor(argv)}--help)`)
        )),
      Effect.provide(NodeContext.layer)
    ))
}
