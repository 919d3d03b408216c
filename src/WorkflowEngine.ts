/**
 * The durable engines workflow runs execute on. Each layer provides the `@effect/workflow`
 * `WorkflowEngine` and the `SqlClient` boruna's own store (`WorkflowStore.ts`) writes to.
 *
 * - `sqliteEngine(dataDir)`: one machine. `ClusterWorkflowEngine` over `SingleRunner` with SQL
 *   runner storage, on `@effect/sql-sqlite-node` in `<data-dir>/engine.db` (the store's tables live
 *   in the same file, through the same connection, so one process never contends with itself).
 * - `memoryEngine`: `WorkflowEngine.layerMemory` and an in-memory SQLite store, for tests.
 * - `clusterEngine(options)` lives in `src/Cluster.ts` (PostgreSQL, many runners) and provides the
 *   same two services.
 *
 * The data dir is `--data-dir`, `$BORUNA_DATA_DIR`, or `./.boruna/data` (`dataDirOf`).
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as WorkflowEngine from "@effect/workflow/WorkflowEngine"
import * as Duration from "effect/Duration"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs"
import { hostname } from "node:os"
import { join, resolve } from "node:path"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"

/** What every engine layer provides. */
export type EngineServices = WorkflowEngine.WorkflowEngine | SqlClient.SqlClient

export class EngineError extends Error {
  readonly _tag = "EngineError"
}

/** `--data-dir`, else `$BORUNA_DATA_DIR`, else `./.boruna/data`. */
export const dataDirOf = (option: string | undefined, env: Record<string, string | undefined> = process.env): string =>
  resolve(option ?? env.BORUNA_DATA_DIR ?? join(".boruna", "data"))

/**
 * Sharding settings for a single runner on one machine: every value set here (none read from
 * generic environment variables such as HOST or PORT), a small shard count (fast start), and short
 * poll intervals so a resumed run is picked up promptly.
 */
export const singleRunnerConfig = {
  runnerAddress: Option.some(RunnerAddress.make("localhost", 34431)),
  runnerListenAddress: Option.none(),
  runnerShardWeight: 1,
  shardsPerGroup: 8,
  availableShardGroups: ["default"],
  assignedShardGroups: ["default"],
  preemptiveShutdown: true,
  shardLockRefreshInterval: Duration.seconds(5),
  shardLockExpiration: Duration.seconds(20),
  shardLockDisableAdvisory: true,
  entityMailboxCapacity: 4096,
  entityMaxIdleTime: Duration.minutes(1),
  entityRegistrationTimeout: Duration.minutes(1),
  entityTerminationTimeout: Duration.seconds(5),
  entityMessagePollInterval: Duration.millis(500),
  entityReplyPollInterval: Duration.millis(5),
  sendRetryInterval: Duration.millis(50),
  refreshAssignmentsInterval: Duration.seconds(3),
  runnerHealthCheckInterval: Duration.minutes(1),
  simulateRemoteSerialization: true
} as const

/** The durable single-machine engine on `<dataDir>/engine.db`. */
export const sqliteEngine = (dataDir: string): Layer.Layer<EngineServices, EngineError> => {
  mkdirSync(dataDir, { recursive: true })
  // the engine's packages load when the layer is built, not with this module (`import "boruna"`)
  return Layer.unwrapEffect(Effect.map(
    Effect.promise(() =>
      Promise.all([import("@effect/cluster/ClusterWorkflowEngine"), import("@effect/cluster/SingleRunner"), import("@effect/sql-sqlite-node/SqliteClient")])
    ),
    ([ClusterWorkflowEngine, SingleRunner, SqliteClient]) => {
      // WAL with synchronous=NORMAL: a commit survives the process being killed (what the crash test
      // does); only an OS crash or power loss can lose the last transactions (docs/workflows.md)
      const sql = Layer.tap(SqliteClient.layer({ filename: join(dataDir, "engine.db") }), (ctx) =>
        Effect.ignore(Context.get(ctx, SqliteClient.SqliteClient).unsafe("PRAGMA synchronous = NORMAL")))
      return ClusterWorkflowEngine.layer.pipe(
        Layer.provideMerge(SingleRunner.layer({ runnerStorage: "sql", shardingConfig: singleRunnerConfig })),
        Layer.provideMerge(sql),
        Layer.mapError((e) => new EngineError(`cannot open the workflow engine in ${dataDir}: ${String(e)}`))
      )
    }
  ))
}

/** In memory: `WorkflowEngine.layerMemory` and an in-memory SQLite database for the store. */
export const memoryEngine: Layer.Layer<EngineServices, EngineError> = Layer.unwrapEffect(Effect.map(
  Effect.promise(() => Promise.all([import("@effect/workflow/WorkflowEngine"), import("@effect/sql-sqlite-node/SqliteClient")])),
  ([WorkflowEngine, SqliteClient]) =>
    Layer.merge(
      WorkflowEngine.layerMemory,
      Layer.mapError(SqliteClient.layer({ filename: ":memory:" }), (e) => new EngineError(String(e)))
    )
))

// ---------------------------------------------------------------------------------------------
// one process per data dir

export interface LockHolder {
  readonly pid: number
  readonly command: string
  readonly since: string
  readonly host: string
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as { code?: string }).code === "EPERM"
  }
}

/**
 * Hold `<dataDir>/lock` for the life of the scope: only one process drives runs on a data dir at a
 * time (several processes on one SQLite engine file report `database is locked`, Effect-TS/effect
 * #6176/#6179). A lock left by a process that no longer exists is taken over. While another live
 * process holds it, wait up to `waitMs`, then fail naming the holder.
 */
export const lockDataDir = (dataDir: string, options: { readonly command: string; readonly waitMs?: number }): Effect.Effect<void, EngineError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      mkdirSync(dataDir, { recursive: true })
      const file = join(dataDir, "lock")
      const me: LockHolder = { pid: process.pid, command: options.command, since: new Date().toISOString(), host: hostname() }
      const deadline = Date.now() + (options.waitMs ?? 10_000)
      for (;;) {
        try {
          writeFileSync(file, JSON.stringify(me) + "\n", { flag: "wx" })
          return file
        } catch (e) {
          if ((e as { code?: string }).code !== "EEXIST") return yield* Effect.fail(new EngineError(`cannot lock the data dir ${dataDir}: ${String(e)}`))
        }
        let holder: LockHolder | undefined
        try {
          holder = JSON.parse(readFileSync(file, "utf8")) as LockHolder
        } catch {
          holder = undefined
        }
        if (holder === undefined || (holder.host === me.host && !alive(holder.pid))) {
          // stale: its process is gone (or the file is torn); take it over
          try {
            unlinkSync(file)
          } catch {
            // another process took it over first
          }
          continue
        }
        if (holder.pid === process.pid) return file
        if (Date.now() >= deadline) {
          return yield* Effect.fail(new EngineError(
            `the data dir ${dataDir} is in use by pid ${holder.pid} on ${holder.host} (${holder.command}) since ${holder.since}: wait for it to finish, or use another --data-dir`
          ))
        }
        yield* Effect.sleep(100)
      }
    }),
    (file) =>
      Effect.sync(() => {
        try {
          const h = JSON.parse(readFileSync(file, "utf8")) as LockHolder
          if (h.pid === process.pid) unlinkSync(file)
        } catch {
          // already gone
        }
      })
  ).pipe(Effect.asVoid)
