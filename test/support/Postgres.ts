/**
 * A throwaway PostgreSQL cluster for tests: `initdb` in a temporary directory, `pg_ctl start` on
 * 127.0.0.1 at a free port (Unix socket in the same directory), stopped and deleted by `stop()`.
 * When the test process runs as root, initdb/postgres run as the unprivileged `postgres` user
 * (`runuser -u postgres --`), which owns the directory. A process `exit` hook stops the cluster
 * too, so a test file that dies before its afterAll leaves no server behind.
 *
 * Also starts `boruna runner` children (`startRunner`, tracked so that `stopAll()` or the process
 * exiting SIGKILLs every one, whatever happened to the test) and gives the in-process cluster
 * client (`client`) the tests drive them with.
 */
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Cluster from "../../src/Cluster.js"
import { afterAll, beforeAll } from "@effect/vitest"
import { BIN, type CliResult, cleanEnv, ensureBuilt, start as startCli } from "./BuiltCli.js"

const CANDIDATE_BIN_DIRS = ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"]

/** The directory holding initdb/pg_ctl, or undefined when PostgreSQL is not installed. */
export const binDir = (): string | undefined => {
  for (const d of CANDIDATE_BIN_DIRS) if (existsSync(join(d, "initdb"))) return d
  const r = spawnSync("pg_config", ["--bindir"], { encoding: "utf8" })
  return r.status === 0 && existsSync(join(r.stdout.trim(), "initdb")) ? r.stdout.trim() : undefined
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once("error", reject)
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address()
      const port = typeof addr === "object" && addr !== null ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })

export interface Postgres {
  readonly port: number
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  readonly url: string
  /** a new, empty database; its URL */
  readonly database: (name: string) => string
  /** run SQL through psql, rows as tab-separated lines */
  readonly psql: (url: string, sql: string) => string
  readonly stop: () => void
}

const isRoot = typeof process.getuid === "function" && process.getuid() === 0

const owner = (): { uid: number; gid: number } | undefined => {
  if (!isRoot) return undefined
  const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim())
  const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim())
  return { uid, gid }
}

const asPg = (cmd: string, args: ReadonlyArray<string>): { file: string; args: Array<string> } =>
  isRoot ? { file: "runuser", args: ["-u", "postgres", "--", cmd, ...args] } : { file: cmd, args: [...args] }

const run = (cmd: string, args: ReadonlyArray<string>): string => {
  const c = asPg(cmd, args)
  const r = spawnSync(c.file, c.args, { encoding: "utf8", env: { ...process.env, LC_ALL: "C" } })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr || r.stdout}`)
  return r.stdout
}

/** Start a fresh cluster. Throws (with initdb/pg_ctl's message) when it cannot. */
export const start = async (): Promise<Postgres> => {
  const bin = binDir()
  if (bin === undefined) throw new Error("PostgreSQL is not installed (no initdb): install the postgresql package")
  const dir = mkdtempSync(join(tmpdir(), "boruna-pg-"))
  const own = owner()
  if (own !== undefined) chownSync(dir, own.uid, own.gid)
  chmodSync(dir, 0o700)
  const data = join(dir, "data")
  run(join(bin, "initdb"), ["-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
  const port = await freePort()
  const opts = `-k ${dir} -c listen_addresses=127.0.0.1 -p ${port} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300`
  let stopped = false
  const stop = (): void => {
    if (stopped) return
    stopped = true
    process.removeListener("exit", stop)
    const c = asPg(join(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"])
    spawnSync(c.file, c.args, { stdio: "ignore" })
    rmSync(dir, { recursive: true, force: true })
  }
  process.on("exit", stop)
  try {
    run(join(bin, "pg_ctl"), ["-D", data, "-l", join(dir, "log"), "-w", "-t", "30", "-o", opts, "start"])
  } catch (e) {
    stop()
    throw e
  }
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  const psql = (u: string, sql: string): string => {
    const r = spawnSync(join(bin, "psql"), [u, "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql], { encoding: "utf8" })
    if (r.status !== 0) throw new Error(`psql: ${r.stderr}`)
    return r.stdout
  }
  const database = (name: string): string => {
    psql(url, `CREATE DATABASE "${name}"`)
    return `postgres://postgres@127.0.0.1:${port}/${name}`
  }
  return { port, url, database, psql, stop }
}

const children = new Set<ChildProcess>()

const killAll = (): void => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
  }
  children.clear()
}
process.on("exit", killAll)

/** Remember a child so that `stopAll()` (or the process exiting) kills it. */
export const track = <C extends ChildProcess>(child: C): C => {
  children.add(child)
  child.once("exit", () => children.delete(child))
  return child
}

/** SIGKILL every tracked child that is still running. */
export const stopAll = killAll

// ---------------------------------------------------------------------------------------------
// `boruna runner` children and the in-process cluster client

export interface RunnerProcess {
  readonly child: ChildProcess
  readonly address: string
  readonly stderr: () => string
  /** resolves with the exit code / signal */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * The shard-lock expiry of the test runners (seconds; `BORUNA_CLUSTER_LOCK_EXPIRY`). cluster
 * refreshes a runner's locks every expiry / 3 with that same interval as the refresh's timeout, and
 * a refresh that times out makes the runner drop every shard and interrupt its entities (the calls
 * in flight run again elsewhere). At 5 s (a 1.67 s timeout) a loaded machine (load ~8-15 on 2
 * cores) was seen doing that to a runner that was merely slow; 8 s gives the refresh 2.67 s and
 * still a takeover within ~10 s of a SIGKILL (the lock expires 5.3-8 s after it, then ~1-2 s of
 * polling).
 */
export const LOCK_EXPIRY = 8

export interface RunnerArgs {
  readonly url: string
  readonly capabilities?: ReadonlyArray<string>
  readonly group?: string
  readonly policy?: string
  /** shard-lock expiry in seconds (BORUNA_CLUSTER_LOCK_EXPIRY), default `LOCK_EXPIRY` */
  readonly lockExpiry?: number
  readonly env?: Record<string, string>
  /** the runner's working directory (default: the repository) */
  readonly cwd?: string
}

/** `boruna args…` as a child process in `cwd` (BuiltCli's `start`, another directory). */
const startIn = (cwd: string, args: ReadonlyArray<string>, env: Record<string, string>): ReturnType<typeof startCli> => {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] })
  let stderr = ""
  let stdout = ""
  child.stdout!.on("data", (d: Buffer) => void (stdout += d.toString()))
  child.stderr!.on("data", (d: Buffer) => void (stderr += d.toString()))
  const t0 = Date.now()
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 }))
  })
  return { child, stderrSoFar: () => stderr, done }
}

/** Start `boruna runner` and wait for its `runner ready:` line (fails with its stderr otherwise). */
export const startRunner = async (a: RunnerArgs, timeoutMs = 30_000): Promise<RunnerProcess> => {
  const port = await freePort()
  const address = `127.0.0.1:${port}`
  const args = ["runner", "--cluster", a.url, "--listen", address, "--advertise", address]
  if (a.capabilities !== undefined) args.push("--capabilities", a.capabilities.join(","))
  if (a.group !== undefined) args.push("--group", a.group)
  if (a.policy !== undefined) args.push("--policy", a.policy)
  const env = { BORUNA_CLUSTER_LOCK_EXPIRY: String(a.lockExpiry ?? LOCK_EXPIRY), ...a.env }
  const r = a.cwd === undefined ? startCli(args, env) : startIn(a.cwd, args, env)
  track(r.child)
  const exited = r.done.then((x) => ({ code: x.code, signal: x.signal }))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`runner ${address} not ready in ${timeoutMs} ms: ${r.stderrSoFar()}`)), timeoutMs)
    const check = (): void => {
      if (r.stderrSoFar().includes("runner ready:")) {
        clearTimeout(timer)
        resolve()
      }
    }
    r.child.stderr!.on("data", check)
    void exited.then((x) => {
      clearTimeout(timer)
      reject(new Error(`runner ${address} exited (${x.code ?? x.signal}) before it was ready: ${r.stderrSoFar()}`))
    })
    check()
  })
  return { child: r.child, address, stderr: r.stderrSoFar, exited }
}

/** The in-process client (clientOnly) for `url`, scoped to the test. */
export const client = (url: string, lockExpiry = LOCK_EXPIRY): Layer.Layer<Cluster.ClusterServices, Cluster.ClusterError> =>
  Cluster.clusterEngine({ url, clientOnly: true, shardingConfig: Cluster.fastFailover(lockExpiry) })

/** Poll until `f` gives a value (not undefined), or fail after `timeoutMs`. */
export const eventually = <A, E, R>(f: Effect.Effect<A | undefined, E, R>, timeoutMs: number, what: string): Effect.Effect<A, E | Error, R> =>
  Effect.gen(function*() {
    const t0 = Date.now()
    for (;;) {
      const v = yield* f
      if (v !== undefined) return v
      if (Date.now() - t0 > timeoutMs) return yield* Effect.fail(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`))
      yield* Effect.sleep("100 millis")
    }
  })


/**
 * Wait until the shard locks are settled between `addresses`: every shard of `group` (`default`)
 * locked, each runner holding some (a run submitted while shards move between runners is
 * interrupted and re-run by the new owner, which the exactly-once tests must not confuse with a
 * failover).
 */
export const settled = async (pg: Postgres, url: string, addresses: ReadonlyArray<string>, timeoutMs = 30_000, group = "default"): Promise<void> => {
  const t0 = Date.now()
  for (;;) {
    const rows = pg.psql(url, `SELECT address, count(*) FROM cluster_locks WHERE shard_id LIKE '${group}:%' GROUP BY address`).trim()
    const owners = new Map(rows === "" ? [] : rows.split("\n").map((l) => l.split("\t") as [string, string]))
    const total = [...owners.values()].reduce((a, n) => a + Number(n), 0)
    if (total === Cluster.SHARDS_PER_GROUP && addresses.every((a) => owners.has(a)) && owners.size === addresses.length) return
    if (Date.now() - t0 > timeoutMs) throw new Error(`shards not settled between ${addresses.join(", ")} within ${timeoutMs} ms: ${rows}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/**
 * Wait until the owners of `group`'s shards have not changed for `quietMs` (after a runner joins,
 * shards move over a few assignment rounds; a busy shard is released only after its entities
 * stop, up to the entity termination timeout). Returns the final owners, by shard id.
 */
export const stableLocks = async (pg: Postgres, url: string, group: string, quietMs: number, timeoutMs = 60_000): Promise<Map<string, string>> => {
  const t0 = Date.now()
  const read = () => pg.psql(url, `SELECT shard_id, address FROM cluster_locks WHERE shard_id LIKE '${group}:%' ORDER BY shard_id`).trim()
  let last = read()
  let since = Date.now()
  for (;;) {
    await new Promise((r) => setTimeout(r, 250))
    const now = read()
    if (now !== last) {
      last = now
      since = Date.now()
    } else if (Date.now() - since >= quietMs && now.split("\n").length === Cluster.SHARDS_PER_GROUP) {
      return new Map(now.split("\n").map((l) => l.split("\t") as [string, string]))
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`shard locks of ${group} not stable for ${quietMs} ms within ${timeoutMs} ms: ${now}`)
  }
}

/**
 * A test file's cluster fixture: before its tests, the built command and a throwaway Postgres, with
 * `policyJson` written to a file for the runners' `--policy`; after them, every runner and the
 * Postgres stopped. Read `pg` and `policyFile` inside tests (they are set once `beforeAll` ran).
 */
export const suite = (tag: string, policyJson: string): { readonly pg: Postgres; readonly policyFile: string } => {
  const fixture = { pg: undefined as Postgres | undefined, policyFile: join(tmpdir(), `boruna-${tag}-policy-${process.pid}.json`) }
  beforeAll(async () => {
    await ensureBuilt()
    fixture.pg = await start()
    writeFileSync(fixture.policyFile, policyJson)
  }, 120_000)
  afterAll(() => {
    stopAll()
    fixture.pg?.stop()
  })
  return {
    get pg() {
      return fixture.pg!
    },
    policyFile: fixture.policyFile
  }
}
