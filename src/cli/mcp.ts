/**
 * `boruna mcp [--policy CEILING] [--data-dir D] [--session-budget N] [--live]`: an MCP server on
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
  commands: { mcp: { values: ["--policy", "-p", "--data-dir", "--session-budget"], flags: ["--live"], args: [] } },
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
    live: Options.boolean("live").pipe(
      Options.withDescription("programs use the live handlers (real network, files, database, model) instead of the deterministic demo ones")
    )
  },
  (o) =>
    Effect.gen(function*() {
      if (Option.isSome(o.sessionBudget) && o.sessionBudget.value <= 0) {
        return yield* Effect.fail(usage(`--session-budget must be a positive integer, got ${o.sessionBudget.value}`))
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
        limits: Mcp.DEFAULT_LIMITS,
        version: VERSION,
        env: process.env
      }).pipe(Effect.mapError((e) => new CliError({ kind: "telemetry_config", message: e.message, exitCode: ExitCode.input })))
    })
).pipe(Command.withDescription("Serve MCP on stdin/stdout: tools to check, run and replay .ax programs under a policy ceiling clients cannot widen"))
