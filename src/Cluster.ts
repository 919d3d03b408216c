/**
 * boruna past one machine: the `@effect/cluster` 0.60.2 engine on PostgreSQL (`@effect/sql-pg`).
 * One Postgres holds the engine's journal (`cluster_*` tables: messages, replies, runners, shard
 * locks) and boruna's own store; N `boruna runner` processes own the shards and execute runs and
 * steps; CLI commands with `--cluster URL` are clients (`clientOnly`: they send and read, they own
 * no shards). See docs/cluster.md.
 *
 * This module is loaded only in cluster mode (dynamic `import()`): it pulls in pg, the socket
 * runner and msgpack.
 *
 * - `clusterEngine(options)`: the Layer giving `WorkflowEngine` (ClusterWorkflowEngine over a
 *   NodeClusterSocket runner with SQL message and runner storage) and a `SqlClient` on Postgres,
 *   the same services as the single-machine `sqliteEngine`. The ShardingConfig is built here in
 *   full, never read from the environment (cluster's `layerFromEnv` reads `HOST`, `PORT`, … which
 *   clash with generic variables).
 * - Placement: `placementGroup` / `runnerGroups` map a step's needed capabilities and runner group
 *   to a shard group; a runner is assigned exactly the groups it can serve.
 * - `ProbeWorkflow`: a built-in three-step workflow (each step one `net.fetch` through the runner's
 *   own gateway and policy) used to check a deployment, by the failover tests and by the bench.
 */
import * as ClusterWorkflowEngine from "@effect/cluster/ClusterWorkflowEngine"
import * as ClusterSchema from "@effect/cluster/ClusterSchema"
import * as MessageStorage from "@effect/cluster/MessageStorage"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as RunnerHealth from "@effect/cluster/RunnerHealth"
import * as Runners from "@effect/cluster/Runners"
import * as Sharding from "@effect/cluster/Sharding"
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as SocketRunner from "@effect/cluster/SocketRunner"
import * as SqlMessageStorage from "@effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "@effect/cluster/SqlRunnerStorage"
import { layerClientProtocol, layerSocketServer } from "@effect/platform-node/NodeClusterSocket"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Activity from "@effect/workflow/Activity"
import * as DurableDeferred from "@effect/workflow/DurableDeferred"
import * as Workflow from "@effect/workflow/Workflow"
import * as WorkflowEngine from "@effect/workflow/WorkflowEngine"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { hostname } from "node:os"
import * as EventLog from "./EventLog.js"
import * as Gateway from "./Gateway.js"
import type { HandlersService } from "./Handlers.js"
import type { Policy } from "./Policy.js"
import { display } from "./Value.js"

// ---------------------------------------------------------------------------------------------
// Options

export interface HostPort {
  readonly host: string
  readonly port: number
}

export interface ClusterEngineOptions {
  /** `postgres://user[:password]@host:port/database` */
  readonly url: string
  /** a CLI client: sends and reads, owns no shards, listens on nothing */
  readonly clientOnly: boolean
  /** where this runner listens for other runners (default: `advertise`, else 0.0.0.0:34431) */
  readonly listen?: HostPort | undefined
  /** the address other runners reach this one at (default: this host's name, the listen port) */
  readonly advertise?: HostPort | undefined
  /** the capabilities this runner serves (default: all) */
  readonly capabilities?: ReadonlyArray<string> | undefined
  /** the runner group this runner belongs to (steps naming it run only on its runners) */
  readonly group?: string | undefined
  /** overrides of the ShardingConfig (timing, mostly; see `fastFailover`) */
  readonly shardingConfig?: Partial<ShardingConfig.ShardingConfig["Type"]> | undefined
  /** how long to wait for PostgreSQL before failing (default 5 s) */
  readonly connectTimeout?: Duration.DurationInput | undefined
}

export class ClusterError extends Data.TaggedError("ClusterError")<{
  /** `connect`: PostgreSQL unreachable or refusing; `listen`: the runner port; `config`: bad options */
  readonly reason: "connect" | "listen" | "config"
  readonly message: string
}> {}

export const DEFAULT_PORT = 34431

/** `HOST:PORT` (IPv6 as `[::1]:PORT`), or an error message. */
export const parseHostPort = (text: string): HostPort | string => {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text)
  if (m === null) return `'${text}' is not HOST:PORT`
  const port = Number(m[3])
  if (port < 1 || port > 65535) return `port ${m[3]} is out of range (1-65535)`
  return { host: m[1] ?? m[2], port }
}

/** The URL without its password, for messages. */
export const redactUrl = (url: string): string => {
  try {
    const u = new URL(url)
    if (u.password !== "") u.password = "***"
    return u.toString()
  } catch {
    return "(unparseable URL)"
  }
}

/** Is this a postgres:// URL? An error message if not. */
export const checkUrl = (url: string): string | undefined => {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return `'${url}' is not a URL (expected postgres://USER@HOST:PORT/DATABASE)`
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    return `${redactUrl(url)}: expected a postgres:// URL, not ${u.protocol}//`
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// Timing

/**
 * Shard-lock timing. Production keeps cluster's defaults (a runner's shards are taken over about
 * `shardLockExpiration` + `refreshAssignmentsInterval` after it stops refreshing its locks, ~40 s);
 * `fastFailover(s)` shrinks everything to a lock expiry of `s` seconds so a test can watch a
 * takeover within ~10 s. cluster times each lock refresh out after `s / 3` and then drops every
 * shard of the runner (its in-flight calls run again elsewhere), so `s / 3` must stay above what
 * the database takes to answer under load: the tests use 8 (docs/cluster.md explains the trade-off).
 */
export const fastFailover = (lockExpirySeconds: number): Partial<ShardingConfig.ShardingConfig["Type"]> => ({
  shardLockExpiration: Duration.seconds(lockExpirySeconds),
  shardLockRefreshInterval: Duration.millis(Math.max(500, Math.floor((lockExpirySeconds * 1000) / 3))),
  refreshAssignmentsInterval: Duration.seconds(1),
  entityMessagePollInterval: Duration.seconds(1),
  entityReplyPollInterval: Duration.millis(100),
  runnerHealthCheckInterval: Duration.seconds(2),
  entityTerminationTimeout: Duration.seconds(5),
  sendRetryInterval: Duration.millis(100)
})

// ---------------------------------------------------------------------------------------------
// Placement

/**
 * Capabilities that bind a step to the runners serving them (a credential, a database, files, a
 * network position). The others (`time.now`, `random`, `ui.render`, `step.input`, `actor.*`) are
 * served by every runner.
 */
export const PLACED_CAPABILITIES: ReadonlyArray<string> = ["db.query", "fs.read", "fs.write", "llm.call", "net.fetch"]

/** The shard group of runs (the DAG scheduler) and of steps needing no placed capability. */
export const DEFAULT_GROUP = "default"

const GROUP_NAME = /^[a-z0-9][a-z0-9_-]{0,23}$/

/** Short codes in shard group names (cluster stores shard ids in VARCHAR(50)). */
const CAP_CODE: Readonly<Record<string, string>> = { "db.query": "db", "fs.read": "fsr", "fs.write": "fsw", "llm.call": "llm", "net.fetch": "net" }

/** A runner group name's problem, or undefined. */
export const checkGroupName = (name: string): string | undefined =>
  GROUP_NAME.test(name) ? undefined : `runner group '${name}' must be 1-24 characters of a-z, 0-9, '-', '_' (starting with a letter or digit)`

/**
 * The shard group a step is placed in: its runner group (or `default`), then the placed
 * capabilities it needs, sorted, as short codes: `default`, `default+llm`, `gpu+llm+net`.
 */
export const placementGroup = (need: { readonly capabilities?: ReadonlyArray<string> | undefined; readonly group?: string | undefined }): string => {
  const caps = [...new Set((need.capabilities ?? []).filter((c) => PLACED_CAPABILITIES.includes(c)))].sort()
  return [need.group ?? DEFAULT_GROUP, ...caps.map((c) => CAP_CODE[c])].join("+")
}

/**
 * Every shard group a runner serving `capabilities` (default: all) in `group` can take: for its
 * group and `default`, each subset of its placed capabilities.
 */
export const runnerGroups = (serve: { readonly capabilities?: ReadonlyArray<string> | undefined; readonly group?: string | undefined }): ReadonlyArray<string> => {
  const caps = [...new Set((serve.capabilities ?? PLACED_CAPABILITIES).filter((c) => PLACED_CAPABILITIES.includes(c)))].sort()
  const families = serve.group === undefined || serve.group === DEFAULT_GROUP ? [DEFAULT_GROUP] : [DEFAULT_GROUP, serve.group]
  const out: Array<string> = []
  for (const family of families) {
    for (let mask = 0; mask < 1 << caps.length; mask++) {
      out.push([family, ...caps.filter((_, i) => (mask & (1 << i)) !== 0).map((c) => CAP_CODE[c])].join("+"))
    }
  }
  return out.sort()
}

/**
 * Shards per group. Must be the same on every runner and client of one cluster. Small because a
 * runner takes up to 2 × 32 groups; 16 shards still spread a group over up to 16 runners.
 */
export const SHARDS_PER_GROUP = 16

// ---------------------------------------------------------------------------------------------
// The engine layer

/** The ShardingConfig of a runner or client, complete (nothing read from the environment). */
export const shardingConfigFor = (o: ClusterEngineOptions): ShardingConfig.ShardingConfig["Type"] => {
  const groups = o.clientOnly ? [DEFAULT_GROUP] : runnerGroups({ capabilities: o.capabilities, group: o.group })
  const listen = o.listen ?? (o.advertise !== undefined ? { host: "0.0.0.0", port: o.advertise.port } : { host: "0.0.0.0", port: DEFAULT_PORT })
  const advertise = o.advertise ?? { host: hostname(), port: listen.port }
  return {
    ...ShardingConfig.defaults,
    shardsPerGroup: SHARDS_PER_GROUP,
    // table locks, not advisory locks: advisory lock numbers depend on the list of groups, which
    // differs between runners serving different capabilities
    shardLockDisableAdvisory: true,
    availableShardGroups: groups,
    assignedShardGroups: groups,
    runnerAddress: o.clientOnly ? Option.none() : Option.some(RunnerAddress.RunnerAddress.make(advertise)),
    runnerListenAddress: o.clientOnly ? Option.none() : Option.some(RunnerAddress.RunnerAddress.make(listen)),
    ...o.shardingConfig
  }
}

/** The pg client of a runner or client (connects, with `SELECT 1`, within the connect timeout). */
export const pgLayer = (o: ClusterEngineOptions): Layer.Layer<SqlClient.SqlClient | PgClient.PgClient, ClusterError> =>
  PgClient.layer({
    url: Redacted.make(o.url),
    connectTimeout: o.connectTimeout ?? Duration.seconds(5),
    applicationName: o.clientOnly ? "boruna-client" : "boruna-runner",
    maxConnections: o.clientOnly ? 4 : 20,
    // pg returns int8 and numeric as strings by default; cluster reads them as strings too
    transformJson: false
  }).pipe(
    Layer.mapError((e) =>
      new ClusterError({
        reason: "connect",
        message: `cannot connect to PostgreSQL at ${redactUrl(o.url)}: ${describeSqlError(e)}`
      })
    )
  )

const describeSqlError = (e: { readonly message: string; readonly cause?: unknown }): string => {
  const c = e.cause
  if (c instanceof AggregateError && c.errors.length > 0) return String((c.errors[0] as Error).message ?? c.errors[0])
  if (c instanceof Error && c.message !== "") return c.message
  return e.message
}

export type ClusterServices = WorkflowEngine.WorkflowEngine | SqlClient.SqlClient | Sharding.Sharding | MessageStorage.MessageStorage

/**
 * The engine on PostgreSQL. Runner (`clientOnly: false`): NodeClusterSocket server on `listen`,
 * runner health by ping, table shard locks, the groups from `runnerGroups`. Client: no server, no
 * shards. Either way the SqlClient (Postgres) is in the output for boruna's own store.
 */
export const clusterEngine = (o: ClusterEngineOptions): Layer.Layer<ClusterServices, ClusterError> => {
  const config = shardingConfigFor(o)
  const socket: Layer.Layer<Sharding.Sharding | Runners.Runners, unknown, any> = o.clientOnly
    ? Layer.provide(SocketRunner.layerClientOnly, layerClientProtocol)
    : Layer.provide(SocketRunner.layer, [layerSocketServer, layerClientProtocol]).pipe(
      Layer.provide(RunnerHealth.layerPing.pipe(Layer.provide(Runners.layerRpc), Layer.provide(layerClientProtocol)))
    )
  const sharding = socket.pipe(
    Layer.provideMerge(SqlMessageStorage.layer),
    Layer.provide(Layer.orDie(SqlRunnerStorage.layer)),
    Layer.provide(ShardingConfig.layer(config)),
    Layer.provide(RpcSerialization.layerMsgPack)
  ) as Layer.Layer<Sharding.Sharding | Runners.Runners | MessageStorage.MessageStorage, unknown, SqlClient.SqlClient>
  const engine = ClusterWorkflowEngine.layer.pipe(Layer.provideMerge(sharding))
  return engine.pipe(
    Layer.mapError((e) =>
      e instanceof ClusterError ? e : new ClusterError({ reason: "listen", message: `runner cannot listen: ${String((e as { message?: string }).message ?? e)}` })
    ),
    Layer.provideMerge(pgLayer(o))
  ) as Layer.Layer<ClusterServices, ClusterError>
}

// ---------------------------------------------------------------------------------------------
// The probe workflow: three net.fetch steps through the runner's own gateway

/** Who is executing: set by the runner (`advertise` address and pid). */
export class RunnerIdentity extends Context.Tag("boruna/cluster/RunnerIdentity")<RunnerIdentity, {
  readonly address: string
  readonly capabilities: ReadonlyArray<string>
}>() {}

/** The runner's capability handlers and policy (its own credentials, its own policy file). */
export class RunnerCapabilities extends Context.Tag("boruna/cluster/RunnerCapabilities")<RunnerCapabilities, {
  readonly policy: Policy
  readonly handlers: HandlersService
}>() {}

export const ProbeStep = Schema.Struct({
  output: Schema.String,
  runner: Schema.String,
  /** executions of this call's activity (journal rows); > 1: the call ran again after a crash */
  executions: Schema.Number,
  reexecuted: Schema.Boolean
})
export type ProbeStep = typeof ProbeStep.Type

export const ProbeResult = Schema.Struct({
  id: Schema.String,
  steps: Schema.Array(ProbeStep)
})
export type ProbeResult = typeof ProbeResult.Type

/**
 * `boruna/cluster-probe`: `steps` steps, step i fetching `${origin}/probe/${id}/${i}` with the
 * runner's live `net.fetch` (so its policy decides). Annotated `SuspendOnFailure`: an engine defect
 * (e.g. a routing error during shutdown, #7464) suspends the run instead of storing a terminal
 * failure; the runner's reconciler resumes it.
 */
export const ProbeWorkflow = Workflow.make({
  name: "boruna/cluster-probe",
  payload: {
    id: Schema.String,
    origin: Schema.String,
    steps: Schema.Number,
    /** pause after this many steps until `ProbeGate` is completed (an approval, durably) */
    gateAfter: Schema.optional(Schema.Number)
  },
  success: ProbeResult,
  error: Schema.String,
  idempotencyKey: ({ id }) => id
}).annotate(Workflow.SuspendOnFailure, true)

const PROBE_TABLE = "boruna_cluster_calls"

/** boruna's own record of activity executions (portable SQL; one row per call, counting starts). */
export const ensureCallTable = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(
    `CREATE TABLE IF NOT EXISTS ${PROBE_TABLE} (call_key VARCHAR(255) PRIMARY KEY, executions INTEGER NOT NULL, runner VARCHAR(255) NOT NULL, finished INTEGER NOT NULL DEFAULT 0)`
  )
})

const startCall = (key: string, runner: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const table = sql(PROBE_TABLE)
    yield* sql`INSERT INTO ${table} (call_key, executions, runner) VALUES (${key}, 1, ${runner})
      ON CONFLICT (call_key) DO UPDATE SET executions = ${table}.executions + 1, runner = ${runner}`
    const rows = yield* sql<{ executions: number }>`SELECT executions FROM ${table} WHERE call_key = ${key}`
    return Number(rows[0]?.executions ?? 1)
  })

const probeCall = (id: string, origin: string, i: number) =>
  Activity.make({
    name: `cap/probe/${i}/0/net.fetch`,
    success: ProbeStep,
    error: Schema.String,
    execute: Effect.gen(function*() {
      const me = yield* RunnerIdentity
      const caps = yield* RunnerCapabilities
      const executions = yield* Effect.orDie(startCall(`${id}/${i}`, me.address))
      const gw = Gateway.make({ policy: caps.policy, handlers: caps.handlers, log: EventLog.makeMemory(), traced: false })
      const out = yield* gw.call("net.fetch", [`${origin}/probe/${id}/${i}`]).pipe(
        Effect.mapError((e) => `${e._tag}: ${"message" in e ? String(e.message) : ""}`)
      )
      return { output: display(out), runner: me.address, executions, reexecuted: executions > 1 }
    }).pipe(Effect.withSpan("boruna.cap", { attributes: { "cap.name": "net.fetch", "step.id": `probe/${i}` } }))
  })

/** The probe's handler, for a runner. */
export const probeLayer = ProbeWorkflow.toLayer(({ gateAfter, id, origin, steps }) =>
  Effect.gen(function*() {
    const out: Array<ProbeStep> = []
    for (let i = 0; i < steps; i++) {
      if (i === gateAfter) {
        const approver = yield* DurableDeferred.await(ProbeGate)
        out.push({ output: `approved by ${approver}`, runner: "", executions: 0, reexecuted: false })
      }
      out.push(yield* probeCall(id, origin, i))
    }
    return { id, steps: out }
  })
)

/** The probe's approval gate: its value is the approver's name. */
export const ProbeGate = DurableDeferred.make("approval/probe", { success: Schema.String })

/** Approve a paused probe run (from any client or runner). */
export const approveProbe = (id: string, approver: string) =>
  Effect.gen(function*() {
    const executionId = yield* ProbeWorkflow.executionId({ id, origin: "", steps: 0 })
    const token = DurableDeferred.tokenFromExecutionId(ProbeGate, { workflow: ProbeWorkflow, executionId })
    yield* DurableDeferred.succeed(ProbeGate, { token, value: approver })
  })

// ---------------------------------------------------------------------------------------------
// Runner helpers

/** The runners registered in the cluster (`cluster_runners`), with their groups and health. */
export const liveRunners = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql.unsafe<{ address: string; runner: string; healthy: boolean; age: number }>(
    `SELECT address, runner, healthy, EXTRACT(EPOCH FROM (NOW() - last_heartbeat))::float AS age FROM cluster_runners ORDER BY address`
  ).pipe(Effect.catchAll(() => Effect.succeed([])))
  return rows.map((r) => {
    let groups: ReadonlyArray<string> = []
    try {
      const decoded = JSON.parse(r.runner) as { groups?: ReadonlyArray<string> }
      groups = decoded.groups ?? []
    } catch {
      groups = []
    }
    return { address: r.address, healthy: Boolean(r.healthy), heartbeatAgeSeconds: Number(r.age), groups }
  })
})

/** Whether some runner with a recent heartbeat serves `group` (else a step placed there waits). */
export const servedBy = (group: string, maxAgeSeconds: number) =>
  Effect.map(liveRunners, (rs) => rs.filter((r) => r.heartbeatAgeSeconds <= maxAgeSeconds && r.groups.includes(group)).map((r) => r.address))

/** `default+llm` as words: `capabilities llm.call`, `group gpu, capabilities llm.call, net.fetch`. */
export const describeGroup = (group: string): string => {
  const [family, ...codes] = group.split("+")
  const byCode = new Map(Object.entries(CAP_CODE).map(([c, code]) => [code, c]))
  const caps = codes.map((c) => byCode.get(c) ?? c)
  const parts = [...(family === DEFAULT_GROUP ? [] : [`runner group ${family}`]), ...(caps.length === 0 ? [] : [`capabilities ${caps.join(", ")}`])]
  return parts.length === 0 ? "the default group" : parts.join(", ")
}

/**
 * The DAG runner's placement hook on a cluster (`RunnerEnv.placement`): a step's shard group from
 * its `capabilities` and `runner_group`, and, while no runner with a recent heartbeat serves that
 * group, the note `show` prints (`waiting: no live runner serves capabilities llm.call`). With no
 * SqlClient (a CLI client) the note is never computed.
 */
export const placement = (sql: { readonly current: SqlClient.SqlClient | undefined }, maxAgeSeconds = 60) => ({
  group: (step: { readonly capabilities: ReadonlyArray<string>; readonly runner_group?: string | undefined }): string =>
    placementGroup({ capabilities: step.capabilities, group: step.runner_group }),
  note: (group: string): Effect.Effect<string | undefined> =>
    group === DEFAULT_GROUP || sql.current === undefined
      ? Effect.succeed(undefined)
      : servedBy(group, maxAgeSeconds).pipe(
        Effect.provideService(SqlClient.SqlClient, sql.current),
        Effect.map((rs) => (rs.length === 0 ? `waiting: no live runner serves ${describeGroup(group)} (start one with boruna runner --capabilities …${group.split("+")[0] === DEFAULT_GROUP ? "" : " --group …"})` : undefined)),
        Effect.catchAllCause(() => Effect.succeed(undefined))
      )
})

const TOKENS_TABLE = "boruna_cluster_tokens"

/**
 * Approval tokens minted on a runner, handed to the client waiting for the run: the runner writes
 * the token (before the pending item is recorded), the client reads and deletes it, so it is
 * printed once. Anyone who can read this database could read a token in that window — and could
 * complete the engine's deferred directly anyway; see docs/cluster.md.
 */
export const tokenRelay = {
  deliver: (runId: string, approvalId: string, token: string): Effect.Effect<void> =>
    Effect.flatMap(Effect.serviceOption(SqlClient.SqlClient), (o) =>
      Option.isNone(o)
        ? Effect.void
        : o.value`INSERT INTO ${o.value(TOKENS_TABLE)} (run_id, approval_id, token) VALUES (${runId}, ${approvalId}, ${token}) ON CONFLICT (run_id, approval_id) DO NOTHING`.pipe(
          Effect.asVoid,
          Effect.catchAllCause((c) => Effect.logWarning("token relay", c))
        )),
  collect: (runId: string): Effect.Effect<Readonly<Record<string, string>>> =>
    Effect.flatMap(Effect.serviceOption(SqlClient.SqlClient), (o) => {
      if (Option.isNone(o)) return Effect.succeed({})
      const sql = o.value
      return Effect.gen(function*() {
        const rows = yield* sql<{ approval_id: string; token: string }>`SELECT approval_id, token FROM ${sql(TOKENS_TABLE)} WHERE run_id = ${runId}`
        if (rows.length > 0) yield* sql`DELETE FROM ${sql(TOKENS_TABLE)} WHERE run_id = ${runId}`
        return Object.fromEntries(rows.map((r) => [r.approval_id, r.token]))
      }).pipe(Effect.catchAllCause(() => Effect.succeed({})))
    })
}

export const ensureTokenTable = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql.unsafe(`CREATE TABLE IF NOT EXISTS ${TOKENS_TABLE} (run_id VARCHAR(64) NOT NULL, approval_id VARCHAR(255) NOT NULL, token VARCHAR(255) NOT NULL, PRIMARY KEY (run_id, approval_id))`))

/** A CLI client's runner environment on a cluster: the placement hook (approvals reach placed steps) and the token relay. */
export const clientEnv = <E extends object>(env: E): E & { readonly placement: ReturnType<typeof placement>; readonly tokens: typeof tokenRelay } => ({
  ...env,
  placement: placement({ current: undefined }),
  tokens: tokenRelay
})

// ---------------------------------------------------------------------------------------------
// The #7464 reconciler: workflows an engine defect suspended

/** A workflow execution the engine suspended on a defect (`SuspendOnFailure`), and what was done. */
export interface SuspendedExecution {
  /** `boruna/run`, `boruna/step`, `boruna/step@GROUP` or `boruna/cluster-probe` */
  readonly workflow: string
  readonly executionId: string
  /** the run it belongs to (boruna's run id; the probe's id) */
  readonly runId: string | undefined
  /** the squashed defect, one line */
  readonly cause: string
}

/**
 * The workflows of a boruna runner, by name (the step workflow of each placement group included),
 * for `resumeSuspended`.
 */
interface Resumable {
  readonly poll: (executionId: string) => Effect.Effect<Workflow.Result<unknown, unknown> | undefined, never, WorkflowEngine.WorkflowEngine>
  readonly resume: (executionId: string) => Effect.Effect<void, never, WorkflowEngine.WorkflowEngine>
}

const workflowByName = (Runner: typeof import("./WorkflowRunner.js"), name: string): Resumable | undefined => {
  if (name === Runner.RunWorkflow.name) return Runner.RunWorkflow
  if (name === Runner.StepWorkflow.name) return Runner.StepWorkflow
  if (name === ProbeWorkflow.name) return ProbeWorkflow
  if (name.startsWith(`${Runner.StepWorkflow.name}@`)) return Runner.stepWorkflowFor(name.slice(Runner.StepWorkflow.name.length + 1))
  return undefined
}

/** `payload.runId` (a run or step) or `payload.id` (the probe) of an engine message's payload. */
const runIdOf = (payload: string | null): string | undefined => {
  try {
    const p = JSON.parse(payload ?? "null") as { readonly runId?: unknown; readonly id?: unknown } | null
    const id = p?.runId ?? p?.id
    return typeof id === "string" ? id : undefined
  } catch {
    return undefined
  }
}

/**
 * One pass of the #7464 reconciler. Every boruna workflow execution (run, step of any placement
 * group, probe) whose latest engine reply is `Suspended` with a cause was suspended by a defect
 * (`SuspendOnFailure`: a routing error while shards move, typically during a runner's shutdown),
 * not by a pause (a pause is `Suspended` without a cause). Each is resumed: steps first (a resumed
 * step that completes wakes its run), then runs and probes. boruna's store gets a `reconciled`
 * history line on the run. Returns what was resumed.
 *
 * The scan reads the engine's `cluster_messages`/`cluster_replies` (the `run` request of each
 * execution and its last reply); the candidates are then checked through the engine (`poll`).
 */
export const resumeSuspended = (
  /** only the executions on shards this runner (`HOST:PORT`) holds: each runner reconciles its own */
  owner?: string
): Effect.Effect<ReadonlyArray<SuspendedExecution>, never, WorkflowEngine.WorkflowEngine | SqlClient.SqlClient> => Effect.gen(
  function*() {
    const sql = yield* SqlClient.SqlClient
    const Runner = yield* Effect.promise(() => import("./WorkflowRunner.js"))
    const mine = owner === undefined ? sql.literal("") : sql`AND m.shard_id IN (SELECT shard_id FROM cluster_locks WHERE address = ${owner})`
    const rows = yield* sql<{ entity_type: string; entity_id: string; payload: string | null }>`
      SELECT m.entity_type, m.entity_id, m.payload FROM cluster_messages m JOIN cluster_replies r ON r.id = m.last_reply_id
      WHERE m.tag = 'run' AND m.entity_type LIKE 'Workflow/boruna/%' AND r.payload LIKE '%"Suspended"%' AND r.payload LIKE '%"cause"%' ${mine}`
    const candidates = rows.map((r) => ({ name: r.entity_type.slice("Workflow/".length), executionId: r.entity_id, runId: runIdOf(r.payload) }))
      // steps before runs: a step that completes wakes its run
      .sort((a, b) => Number(!a.name.startsWith("boruna/step")) - Number(!b.name.startsWith("boruna/step")))
    const out: Array<SuspendedExecution> = []
    for (const c of candidates) {
      const wf = workflowByName(Runner, c.name)
      if (wf === undefined) continue
      const result = yield* wf.poll(c.executionId)
      if (result?._tag !== "Suspended" || result.cause === undefined) continue
      const cause = String(Cause.squash(result.cause)).split("\n")[0]
      yield* wf.resume(c.executionId)
      out.push({ workflow: c.name, executionId: c.executionId, runId: c.runId, cause })
    }
    return out
  }
).pipe(Effect.catchAllCause((c) => Effect.as(Effect.logWarning("reconciler: suspended executions", c), [])))

/** `resumeSuspended`, recording each resume in the run's history (when boruna's store has the run). */
const resumeSuspendedRecorded = (owner: string) => Effect.gen(function*() {
  const resumed = yield* resumeSuspended(owner)
  if (resumed.length === 0) return resumed
  const { WorkflowStore } = yield* Effect.promise(() => import("./WorkflowStore.js"))
  const store = yield* WorkflowStore
  for (const r of resumed) {
    if (r.runId === undefined || r.workflow === "boruna/cluster-probe") continue
    yield* store.addHistory({
      run_id: r.runId,
      approval_id: null,
      at: new Date().toISOString(),
      actor: null,
      event: "reconciled",
      detail: `${r.workflow.startsWith("boruna/step") ? "a step" : "the run"} was suspended by an engine defect (${r.cause}): resumed`
    }).pipe(Effect.catchAllCause((c) => Effect.logWarning("reconciler: history", c)))
  }
  return resumed
})

// ---------------------------------------------------------------------------------------------
// The runner process

export interface ServeOptions {
  readonly url: string
  readonly listen?: HostPort | undefined
  readonly advertise?: HostPort | undefined
  readonly capabilities?: ReadonlyArray<string> | undefined
  readonly group?: string | undefined
  readonly policy: Policy
  readonly shardingConfig?: Partial<ShardingConfig.ShardingConfig["Type"]> | undefined
  /** called once with the `runner ready: …` line when the runner has joined */
  readonly onReady?: (line: string) => void
  /** extra workflow handlers to register (besides the probe and the DAG runner's `boruna/run` and `boruna/step`) */
  readonly workflows?: Layer.Layer<never, never, WorkflowEngine.WorkflowEngine | SqlClient.SqlClient> | undefined
  /** how often the reconciler looks for stuck runs (default 30 s) */
  readonly reconcileEvery?: Duration.DurationInput | undefined
  /**
   * A wrapper of the engine service the workflows run on (what their bodies see): instrumentation,
   * or a fault injected by a test (test/ClusterKnownBugs.test.ts raises the engine's routing error)
   */
  readonly wrapEngine?: ((engine: Context.Tag.Service<WorkflowEngine.WorkflowEngine>) => Context.Tag.Service<WorkflowEngine.WorkflowEngine>) | undefined
}

/**
 * Run a runner until interrupted: join the cluster, register the workflows, serve. Interrupting
 * it (SIGTERM) closes the layer: entities stop, shard locks are released, the runner unregisters.
 */
/**
 * `wrap(engine)`, also inside the workflow bodies: the engine runs a body in its entity's context,
 * where the unwrapped engine would win, so each registered body gets the wrapped one provided.
 */
const wrapBodies = (
  engine: Context.Tag.Service<WorkflowEngine.WorkflowEngine>,
  wrap: (engine: Context.Tag.Service<WorkflowEngine.WorkflowEngine>) => Context.Tag.Service<WorkflowEngine.WorkflowEngine>
): Context.Tag.Service<WorkflowEngine.WorkflowEngine> => {
  const outer = wrap(engine)
  const self: Context.Tag.Service<WorkflowEngine.WorkflowEngine> = {
    ...outer,
    register: (workflow, execute) =>
      outer.register(workflow, (payload, executionId) => Effect.provideService(execute(payload, executionId), WorkflowEngine.WorkflowEngine, self))
  }
  return self
}

/** The advisory lock runners hold while they create tables (any number no other tool uses). */
const SCHEMA_LOCK = 720_110_014

export const serve = (o: ServeOptions): Effect.Effect<never, ClusterError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const engineOptions: ClusterEngineOptions = {
        url: o.url,
        clientOnly: false,
        listen: o.listen,
        advertise: o.advertise,
        capabilities: o.capabilities,
        group: o.group,
        shardingConfig: o.shardingConfig
      }
      const config = shardingConfigFor(engineOptions)
      const address = Option.match(config.runnerAddress, { onNone: () => "?", onSome: (a) => `${a.host}:${a.port}` })
      const [Live, Runner, Store, H] = yield* Effect.promise(() =>
        Promise.all([import("./Live.js"), import("./WorkflowRunner.js"), import("./WorkflowStore.js"), import("./Handlers.js")])
      )
      // this runner's own live handlers: its policy file, its credentials (environment)
      const handlers = yield* Live.make(o.policy).pipe(
        Effect.mapError((e) => new ClusterError({ reason: "config", message: e.message }))
      )
      const services = Layer.mergeAll(
        Layer.succeed(RunnerIdentity, { address, capabilities: o.capabilities ?? PLACED_CAPABILITIES }),
        Layer.succeed(RunnerCapabilities, { policy: o.policy, handlers })
      )
      // the DAG runner's workflows: a step's calls go through the run's (narrowed) policy in the
      // gateway, then this runner's handlers, which refuse what its own policy does not grant
      const sqlRef: { current: SqlClient.SqlClient | undefined } = { current: undefined }
      const env = Runner.makeEnv({
        handlers: (_policy, live) => Effect.succeed(live ? handlers : H.demoService),
        placement: placement(sqlRef),
        tokens: tokenRelay
      })
      const steps = config.assignedShardGroups.reduce(
        (acc: Layer.Layer<never, never, WorkflowEngine.WorkflowEngine | import("./WorkflowStore.js").WorkflowStore | import("./WorkflowRunner.js").RunnerEnv>, g) =>
          Layer.merge(acc, Runner.stepLayerFor(g)),
        Layer.empty
      )
      const dag = Layer.mergeAll(Runner.workflowsLayer, steps).pipe(
        Layer.provideMerge(Layer.mergeAll(Store.layer, Layer.succeed(Runner.RunnerEnv, env)))
      )
      const registered = Layer.mergeAll(probeLayer.pipe(Layer.provide(services)), dag, o.workflows ?? Layer.empty).pipe(
        Layer.provide(Layer.effectDiscard(Effect.orDie(ensureCallTable))),
        Layer.mapError((e) => (e instanceof ClusterError ? e : new ClusterError({ reason: "connect", message: `boruna's store on PostgreSQL: ${String((e as { message?: string }).message ?? e)}` })))
      )
      // create the tables (cluster's and boruna's) one runner at a time: concurrent CREATE TABLE IF
      // NOT EXISTS in PostgreSQL fails with a duplicate pg_type key when two runners start together
      yield* Effect.scoped(Effect.gen(function*() {
        const sql = Context.get(yield* Layer.build(pgLayer(engineOptions)), SqlClient.SqlClient)
        const conn = yield* sql.reserve
        yield* conn.executeRaw(`SELECT pg_advisory_lock(${SCHEMA_LOCK})`, [])
        yield* Layer.build(
          Layer.mergeAll(Store.layer, Layer.effectDiscard(ensureCallTable), Layer.effectDiscard(ensureTokenTable), SqlMessageStorage.layer, Layer.orDie(SqlRunnerStorage.layer)).pipe(
            Layer.provide(ShardingConfig.layer(config)),
            Layer.provide(Layer.succeed(SqlClient.SqlClient, sql))
          )
        )
        yield* conn.executeRaw(`SELECT pg_advisory_unlock(${SCHEMA_LOCK})`, [])
      })).pipe(
        Effect.mapError((e) =>
          e instanceof ClusterError ? e : new ClusterError({ reason: "connect", message: `cannot create the tables on PostgreSQL: ${String((e as { message?: string }).message ?? e)}` })
        )
      )
      const wrap = o.wrapEngine
      const wrapped = wrap === undefined
        ? registered
        : registered.pipe(Layer.provide(Layer.effect(WorkflowEngine.WorkflowEngine, Effect.map(WorkflowEngine.WorkflowEngine, (e) => wrapBodies(e, wrap)))))
      // boruna's engine layer: a step's capability calls journaled in boruna's store, in the step's
      // own fiber (WorkflowRunner.withLocalActivities); everything else the cluster engine's
      const ctx = yield* Layer.build(wrapped.pipe(Layer.provideMerge(Runner.withLocalActivities(clusterEngine(engineOptions)))))
      sqlRef.current = Context.get(ctx, SqlClient.SqlClient)
      // the reconciler, every `reconcileEvery`: resume the runs and steps an engine defect suspended
      // (SuspendOnFailure; #7464), then the runs whose answers are recorded but whose wake was lost (#6318)
      yield* resumeSuspendedRecorded(address).pipe(
        Effect.zipRight(Runner.reconcileAll),
        Effect.catchAllCause((c) => Effect.logWarning("reconciler", c)),
        Effect.delay(o.reconcileEvery ?? Duration.seconds(30)),
        Effect.forever,
        Effect.provide(ctx),
        Effect.forkScoped
      )
      o.onReady?.(
        `runner ready: ${address} (listening on ${Option.match(config.runnerListenAddress, { onNone: () => address, onSome: (a) => `${a.host}:${a.port}` })}), ` +
          `groups ${config.assignedShardGroups.length}, capabilities ${(o.capabilities ?? PLACED_CAPABILITIES).join(",") || "none"}` +
          (o.group === undefined ? "" : `, group ${o.group}`)
      )
      return yield* Effect.never
    })
  ).pipe(
    // cluster's own log lines (warnings and errors only) go to stderr as logfmt
    Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))),
    Logger.withMinimumLogLevel(LogLevel.Warning)
  )

export { ClusterSchema }
