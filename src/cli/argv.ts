/**
 * A check of the command line before @effect/cli parses it, for the mistakes its messages get
 * wrong or leave vague: an unknown option (it blames the next argument instead), an option at the
 * end without its value (it reports the option itself as an unknown argument, or takes `--policy`
 * as the FILE), an unknown subcommand (it lists the root's commands), a missing or extra argument.
 * Returns one message (printed as `error[usage]: …`, exit 2) or undefined to let @effect/cli parse.
 *
 * The table mirrors the command tree in src/Cli.ts; test/CliReview.test.ts checks that every
 * option here is in the command's `--help` and the other way round.
 */

import type { CommandSpecs, Spec } from "./argvSpec.js"
import * as Doctor from "./doctor.js"
import * as Evidence from "./evidence.js"
import * as Mcp from "./mcp.js"
import * as Runner from "./runner.js"
import * as Workflow from "./workflow.js"

/** Commands defined in modules of their own, each with its table beside its command. */
const EXTENSIONS: ReadonlyArray<CommandSpecs> = [Workflow.specs, Evidence.specs, Runner.specs, Mcp.specs, Doctor.specs]

const CORE_COMMANDS: Readonly<Record<string, Spec>> = {
  run: {
    values: ["--policy", "-p", "--max-steps", "--timeout", "--record", "--record-net-to", "--replay-net-from"],
    flags: ["--live", "--trace", "--trace-all"],
    args: ["FILE"]
  },
  compile: { values: ["--output", "-o"], flags: [], args: ["FILE"] },
  check: { values: [], flags: ["--json"], args: ["FILE"] },
  inspect: { values: [], flags: ["--json"], args: ["FILE"] },
  "capability list": { values: [], flags: ["--json"], args: [] },
  "policy validate": { values: [], flags: ["--json"], args: ["FILE"] },
  "policy simulate": { values: ["--policy", "-p"], flags: ["--allow-torn"], args: ["LOG"] },
  replay: { values: ["--policy", "-p"], flags: ["--allow-drift", "--allow-torn"], args: ["FILE", "LOG"] }
}

export const COMMANDS: Readonly<Record<string, Spec>> = Object.assign({}, CORE_COMMANDS, ...EXTENSIONS.map((e) => e.commands))

export const GROUPS: Readonly<Record<string, ReadonlyArray<string>>> = Object.assign(
  { capability: ["list"], policy: ["validate", "simulate"] },
  ...EXTENSIONS.map((e) => e.groups)
)

/** @effect/cli's built-in options: with any of them the line is @effect/cli's to handle. */
const BUILT_IN = new Set(["--help", "-h", "--version", "--wizard", "--completions", "--log-level"])
const BOOLEAN_WORDS = new Set(["true", "false", "yes", "no", "on", "off", "y", "n", "1", "0"])

const ROOT_COMMANDS = [
  ...new Set([...Object.keys(COMMANDS).map((c) => c.split(" ")[0]), ...Object.keys(GROUPS)])
]

const optionName = (a: string): string => (a.startsWith("--") && a.includes("=") ? a.slice(0, a.indexOf("=")) : a)

const SHELLS = ["sh", "bash", "fish", "zsh"]

export const checkArgv = (argv: ReadonlyArray<string>): string | undefined => {
  const c = argv.findIndex((a) => optionName(a) === "--completions")
  if (c !== -1) {
    const shell = argv[c] === "--completions" ? argv[c + 1] : argv[c].slice("--completions=".length)
    if (shell === undefined || !SHELLS.includes(shell)) {
      return `--completions takes one of ${SHELLS.join(", ")}${shell === undefined ? "" : `, not '${shell}'`}`
    }
  }
  if (argv.some((a) => BUILT_IN.has(optionName(a)))) return undefined
  const first = argv[0]
  if (first === undefined) return undefined
  if (first.startsWith("-")) return `unknown option ${first} (commands: ${ROOT_COMMANDS.join(", ")}; see boruna --help)`
  let name = first
  let rest = argv.slice(1)
  const group = GROUPS[first]
  if (group !== undefined) {
    const sub = rest[0]
    if (sub === undefined) return undefined // the group's help
    if (!group.includes(sub)) return `unknown command '${sub}' for boruna ${first} (expected: ${group.join(", ")})`
    name = `${first} ${sub}`
    rest = rest.slice(1)
  } else if (COMMANDS[first] === undefined) {
    return `unknown command '${first}' (expected one of: ${ROOT_COMMANDS.join(", ")})`
  }
  const spec = COMMANDS[name]!
  const help = `see boruna ${name} --help`
  const positional: Array<string> = []
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]
    if (a === "--") {
      positional.push(...rest.slice(i + 1))
      break
    }
    if (!a.startsWith("-") || a === "-") {
      if (a === "") return `an empty argument where ${spec.args[positional.length] ?? "nothing"} was expected (${help})`
      positional.push(a)
      continue
    }
    const opt = optionName(a)
    if (spec.values.includes(opt)) {
      if (opt !== a) {
        if (a === `${opt}=`) return `option ${opt} needs a value (${help})`
        continue // --opt=value
      }
      const v = rest[i + 1]
      // a negative number is a value (`--max-steps -5` gets its own message); another option is not
      if (v === undefined || v === "" || (v.startsWith("-") && !/^-\d/.test(v))) return `option ${a} needs a value (${help})`
      if (opt === "--max-steps" && /^\d+$/.test(v) && Number(v) > Number.MAX_SAFE_INTEGER) {
        return `--max-steps must be at most ${Number.MAX_SAFE_INTEGER}, got ${v}`
      }
      i++
    } else if (spec.flags.includes(opt)) {
      if (opt === a && rest[i + 1] !== undefined && BOOLEAN_WORDS.has(rest[i + 1].toLowerCase())) i++
    } else {
      const known = [...spec.values, ...spec.flags].filter((o) => o.startsWith("--"))
      return `unknown option ${a} for boruna ${name}${known.length > 0 ? ` (options: ${known.join(", ")})` : ""}`
    }
  }
  // an argument named `[NAME]` is optional (it must come last)
  const required = spec.args.filter((a) => !a.startsWith("[")).length
  if (positional.length < required) {
    return `missing argument ${spec.args.slice(positional.length).join(" ")} (usage: boruna ${name} ${spec.args.join(" ")}; ${help})`
  }
  if (positional.length > spec.args.length) {
    return `unexpected argument '${positional[spec.args.length]}' (boruna ${name} takes ${
      spec.args.length === 0 ? "no arguments" : spec.args.join(" ")
    }; ${help})`
  }
  return undefined
}
