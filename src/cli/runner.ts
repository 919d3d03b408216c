/**
 * `boruna runner --cluster URL [--listen HOST:PORT] [--advertise HOST:PORT] [--capabilities cap,…]
 * [--group NAME] [--policy P]`: a long-lived cluster runner (docs/cluster.md). Everything heavy
 * (pg, @effect/cluster, the workflow engine) is loaded inside the handler.
 *
 * It prints one `runner ready: …` line on stderr once it has joined the cluster, then runs until
 * SIGTERM/SIGINT, when it stops its entities, releases its shard locks and unregisters (exit 143 /
 * 130). PostgreSQL unreachable: one `error[cluster_unreachable]` line, exit 3.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { CommandSpecs } from "./argvSpec.js"
import { CliError, ExitCode, usage } from "./CliError.js"

export const specs: CommandSpecs = {
  commands: {
    runner: {
      values: ["--cluster", "--listen", "--advertise", "--capabilities", "--group", "--policy", "-p"],
      flags: [],
      args: []
    }
  },
  groups: {}
}

/** Environment: the cluster URL when --cluster is absent, and the shard-lock expiry (seconds). */
export const ENV_URL = "BORUNA_CLUSTER_URL"
export const ENV_LOCK_EXPIRY = "BORUNA_CLUSTER_LOCK_EXPIRY"

export interface RunnerOptions {
  readonly cluster: string | undefined
  readonly listen: string | undefined
  readonly advertise: string | undefined
  readonly capabilities: string | undefined
  readonly group: string | undefined
  readonly policy: string
}

const clusterOption = Options.text("cluster").pipe(
  Options.withDescription(`the PostgreSQL URL of the cluster (postgres://USER@HOST:PORT/DB); also ${ENV_URL}`),
  Options.optional
)

export const command = Command.make(
  "runner",
  {
    cluster: clusterOption,
    listen: Options.text("listen").pipe(Options.withDescription("HOST:PORT to listen on for other runners (default 0.0.0.0:34431)"), Options.optional),
    advertise: Options.text("advertise").pipe(Options.withDescription("HOST:PORT other runners reach this one at (default this host's name and the listen port)"), Options.optional),
    capabilities: Options.text("capabilities").pipe(Options.withDescription("comma-separated capabilities this runner serves (default all); steps needing others never run here"), Options.optional),
    group: Options.text("group").pipe(Options.withDescription("the runner group this runner belongs to (steps naming it run only on its runners)"), Options.optional),
    policy: Options.text("policy").pipe(
      Options.withAlias("p"),
      Options.withDescription("allow-all, deny-all or a policy JSON file: this runner's own policy for the calls it executes"),
      Options.withDefault("deny-all")
    )
  },
  (o) =>
    runnerMain({
      cluster: Option.getOrUndefined(o.cluster),
      listen: Option.getOrUndefined(o.listen),
      advertise: Option.getOrUndefined(o.advertise),
      capabilities: Option.getOrUndefined(o.capabilities),
      group: Option.getOrUndefined(o.group),
      policy: o.policy
    })
).pipe(Command.withDescription("Run a cluster runner: execute workflow runs and steps from PostgreSQL until SIGTERM (docs/cluster.md)"))

/** The runner's process body (also used in-process by tests). */
export const runnerMain = (o: RunnerOptions, env: Record<string, string | undefined> = process.env): Effect.Effect<void, CliError> =>
  Effect.gen(function*() {
    const url = o.cluster ?? env[ENV_URL]
    if (url === undefined || url === "") return yield* Effect.fail(usage(`boruna runner needs --cluster URL (or ${ENV_URL})`))
    const [Cluster, Inputs] = yield* Effect.promise(() => Promise.all([import("../Cluster.js"), import("./inputs.js")]))
    const badUrl = Cluster.checkUrl(url)
    if (badUrl !== undefined) return yield* Effect.fail(usage(`--cluster: ${badUrl}`))
    const hp = (name: string, v: string | undefined) => {
      if (v === undefined) return Effect.succeed(undefined)
      const r = Cluster.parseHostPort(v)
      return typeof r === "string" ? Effect.fail(usage(`--${name}: ${r}`)) : Effect.succeed(r)
    }
    const listen = yield* hp("listen", o.listen)
    const advertise = yield* hp("advertise", o.advertise)
    let capabilities: ReadonlyArray<string> | undefined
    if (o.capabilities !== undefined) {
      const { capabilityByName } = yield* Effect.promise(() => import("../Capability.js"))
      const names = o.capabilities.split(",").map((s) => s.trim()).filter((s) => s !== "")
      const unknown = names.filter((n) => capabilityByName(n) === undefined)
      if (unknown.length > 0) return yield* Effect.fail(usage(`--capabilities: unknown capability ${unknown.map((u) => `'${u}'`).join(", ")}`))
      capabilities = names.map((n) => capabilityByName(n)!.name)
    }
    if (o.group !== undefined) {
      const bad = Cluster.checkGroupName(o.group)
      if (bad !== undefined) return yield* Effect.fail(usage(`--group: ${bad}`))
    }
    const expiryText = env[ENV_LOCK_EXPIRY]
    let lockExpirySeconds: number | undefined
    if (expiryText !== undefined && expiryText !== "") {
      if (!/^[0-9]{1,5}$/.test(expiryText) || Number(expiryText) < 3) {
        return yield* Effect.fail(
          new CliError({ kind: "invalid_env", message: `${ENV_LOCK_EXPIRY} must be a whole number of seconds, at least 3, got '${expiryText}'`, exitCode: ExitCode.input })
        )
      }
      lockExpirySeconds = Number(expiryText)
    }
    const policy = yield* Inputs.loadPolicy(o.policy)
    yield* Cluster.serve({
      url,
      listen,
      advertise,
      capabilities,
      group: o.group,
      policy,
      shardingConfig: lockExpirySeconds === undefined ? undefined : Cluster.fastFailover(lockExpirySeconds),
      onReady: (line) => void process.stderr.write(line + "\n")
    }).pipe(
      Effect.mapError((e) =>
        new CliError({
          kind: e.reason === "connect" ? "cluster_unreachable" : e.reason === "listen" ? "runner_listen" : "runner_config",
          message: e.message,
          exitCode: ExitCode.input
        })
      )
    )
  })
