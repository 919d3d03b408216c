/**
 * `boruna mcp [--policy CEILING] [--data-dir D] [--session-budget N] [--max-steps N] [--live]`: an MCP server on
 * stdin/stdout (src/Mcp.ts, docs/mcp.md). The server and @effect/ai load only when it starts.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Fs from "node:fs"
import type { CommandSpecs } from "./argvSpec.js"
import { CliError, ExitCode, input, usage } from "./CliError.js"
import { VERSION } from "./version.js"

export const specs: CommandSpecs = {
  commands: { mcp: { values: ["--policy", "-p", "--data-dir", "--session-budget", "--max-steps"], flags: ["--live"], args: [] } },
  groups: {}
}

export const command = Command.make(
  "mcp",
  {
    policy: Options.text("policy").pipe(
      Options.withAlias("p"),
      Options.withDescription("the ceiling: the most any tool call may be granted (deny-all, allow-all or a policy JSON file; default deny-all)"),
      Options.withDefault("deny-all")
    ),
    dataDir: Options.text("data-dir").pipe(
      Options.withDescription("keep recorded runs here (boruna_replay can then take a run_id)"),
      Options.optional
    ),
    sessionBudget: Options.integer("session-budget").pipe(
      Options.withDescription("capability calls allowed over the whole session, all tool calls together (default: no session limit)"),
      Options.optional
    ),
    maxSteps: Options.integer("max-steps").pipe(
      Options.withDescription("the most VM steps one run may take; a call may ask for fewer (default 10000000)"),
      Options.optional
    ),
    live: Options.boolean("live").pipe(
      Options.withDescription("programs use the live handlers (real network, files, database, model) instead of the deterministic demo ones")
    )
  },
  (o) =>
    Effect.gen(function*() {
      if (Option.isSome(o.sessionBudget) && o.sessionBudget.value <= 0) {
        return yield* Effect.fail(usage(`--session-budget must be a positive integer, got ${o.sessionBudget.value}`))
      }
      if (Option.isSome(o.maxSteps) && (o.maxSteps.value <= 0 || !Number.isSafeInteger(o.maxSteps.value))) {
        return yield* Effect.fail(usage(`--max-steps must be a positive integer of at most ${Number.MAX_SAFE_INTEGER}, got ${o.maxSteps.value}`))
      }
      const dataDir = Option.getOrUndefined(o.dataDir)
      if (dataDir !== undefined) {
        const problem = ((): string | undefined => {
          try {
            Fs.mkdirSync(dataDir, { recursive: true })
            return Fs.statSync(dataDir).isDirectory() ? undefined : "not a directory"
          } catch (e) {
            return e instanceof Error ? e.message : String(e)
          }
        })()
        if (problem !== undefined) return yield* Effect.fail(input("io_error", `--data-dir ${dataDir}: ${problem}`))
      }
      const { loadPolicy } = yield* Effect.promise(() => import("./inputs.js"))
      const ceiling = yield* loadPolicy(o.policy)
      const Mcp = yield* Effect.promise(() => import("../Mcp.js"))
      yield* Mcp.serve({
        ceiling,
        ceilingName: o.policy,
        root: process.cwd(),
        dataDir,
        sessionBudget: Option.getOrUndefined(o.sessionBudget),
        live: o.live,
        limits: Option.isSome(o.maxSteps) ? { ...Mcp.DEFAULT_LIMITS, maxSteps: o.maxSteps.value } : Mcp.DEFAULT_LIMITS,
        version: VERSION,
        env: process.env
      }).pipe(Effect.mapError((e) => new CliError({ kind: "telemetry_config", message: e.message, exitCode: ExitCode.input })))
    })
).pipe(Command.withDescription("Serve MCP on stdin/stdout: tools to check, run and replay .ax programs under a policy ceiling clients cannot widen"))
