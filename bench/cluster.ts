/**
 * `npm run bench:cluster`: throughput of the cluster engine on PostgreSQL, in one process against
 * its own baselines. Starts a throwaway PostgreSQL (initdb + pg_ctl on 127.0.0.1, as the `postgres`
 * user when run as root), a loopback origin, and `boruna runner` child processes (`dist/` must be
 * built: the script entry builds first).
 *
 *   1. N runs (default 200) of the three-step probe workflow (one live net.fetch per step) on one
 *      runner, then on two runners (a fresh database each): runs/s and the ratio two/one.
 *   2. The same N runs on the single-machine SQLite engine (in process): per-step time, and the
 *      cluster's per-step overhead against it.
 *   3. (`dag`) the same with the DAG runner: N runs of a three-step `.ax` workflow (one live
 *      net.fetch per step) submitted with `WorkflowRunner.submitRun` (`boruna/run` and
 *      `boruna/step` workflows, calls journaled in boruna's store) on one runner, two runners and
 *      SQLite.
 *
 * Options: BENCH_CLUSTER_RUNS (default 200), BENCH_CLUSTER_WORKLOAD (`probe`, `dag` or `both`, the
 * default), BENCH_CLUSTER_ROUNDS (default 1): rounds run one
 * runner, two runners and SQLite interleaved (a fresh database each), each measurement printed with
 * the load average beside it; the ratios reported are the medians over the rounds. Ratios only;
 * absolute times depend on the machine.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as Http from "node:http"
import { createServer } from "node:net"
import { loadavg, tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Cluster from "../src/Cluster.js"
import * as Live from "../src/Live.js"
import { parsePolicy } from "../src/Policy.js"
import * as Telemetry from "../src/Telemetry.js"
import { sqliteEngine } from "../src/WorkflowEngine.js"
import * as Runner from "../src/WorkflowRunner.js"

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..")
const BIN = join(ROOT, "bin", "boruna")
const RUNS = Number(process.env.BENCH_CLUSTER_RUNS ?? 200)
const ROUNDS = Math.max(1, Number(process.env.BENCH_CLUSTER_ROUNDS ?? 1))
const WORKLOAD = process.env.BENCH_CLUSTER_WORKLOAD ?? "both"
if (!["probe", "dag", "both"].includes(WORKLOAD)) throw new Error(`BENCH_CLUSTER_WORKLOAD must be probe, dag or both, not '${WORKLOAD}'`)
const load = (): string => loadavg().map((x) => x.toFixed(1)).join(" ")
const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const POLICY_JSON = JSON.stringify({ rules: { "net.fetch": { allow: true } }, net_policy: { allowed_domains: ["127.0.0.1"] } })
const policy = Either.getOrThrow(parsePolicy(POLICY_JSON))

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const a = s.address()
      s.close(() => resolve(typeof a === "object" && a !== null ? a.port : 0))
    })
  })

// ---- a throwaway PostgreSQL -------------------------------------------------------------------
const pgBin = ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"].find((d) => existsSync(join(d, "initdb")))
const root = typeof process.getuid === "function" && process.getuid() === 0
const asPg = (cmd: string, args: Array<string>) => (root ? { f: "runuser", a: ["-u", "postgres", "--", cmd, ...args] } : { f: cmd, a: args })
const pgRun = (cmd: string, args: Array<string>) => {
  const c = asPg(cmd, args)
  const r = spawnSync(c.f, c.a, { encoding: "utf8" })
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr || r.stdout}`)
}
const startPg = async () => {
  if (pgBin === undefined) throw new Error("PostgreSQL is not installed (no initdb)")
  const dir = mkdtempSync(join(tmpdir(), "boruna-bench-pg-"))
  if (root) {
    chownSync(dir, Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" })), Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" })))
  }
  chmodSync(dir, 0o700)
  pgRun(join(pgBin, "initdb"), ["-D", join(dir, "data"), "-U", "postgres", "-A", "trust", "--no-sync"])
  const port = await freePort()
  pgRun(join(pgBin, "pg_ctl"), ["-D", join(dir, "data"), "-l", join(dir, "log"), "-w", "-o", `-k ${dir} -c listen_addresses=127.0.0.1 -p ${port} -c fsync=off -c max_connections=200`, "start"])
  const stop = () => {
    const c = asPg(join(pgBin, "pg_ctl"), ["-D", join(dir, "data"), "-m", "immediate", "-w", "stop"])
    spawnSync(c.f, c.a, { stdio: "ignore" })
    rmSync(dir, { recursive: true, force: true })
  }
  const createDb = (name: string) => {
    const r = spawnSync(join(pgBin, "psql"), [`postgres://postgres@127.0.0.1:${port}/postgres`, "-X", "-q", "-c", `CREATE DATABASE ${name}`], { encoding: "utf8" })
    if (r.status !== 0) throw new Error(r.stderr)
    return `postgres://postgres@127.0.0.1:${port}/${name}`
  }
  return { stop, createDb }
}

// ---- runners ----------------------------------------------------------------------------------
const children = new Set<ChildProcess>()
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL")
})
const startRunner = async (url: string, policyFile: string): Promise<ChildProcess> => {
  const port = await freePort()
  const child = spawn(process.execPath, [BIN, "runner", "--cluster", url, "--listen", `127.0.0.1:${port}`, "--advertise", `127.0.0.1:${port}`, "--policy", policyFile], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, BORUNA_CLUSTER_LOCK_EXPIRY: "10" }
  })
  children.add(child)
  let err = ""
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      err += d.toString()
      if (err.includes("runner ready:")) resolve()
    })
    child.on("exit", (code) => reject(new Error(`runner exited ${code}: ${err}`)))
  })
  return child
}
const stopRunner = (c: ChildProcess) =>
  new Promise<void>((resolve) => {
    c.once("exit", () => resolve())
    c.kill("SIGTERM")
  })

/** Submit `RUNS` probe runs with `prefix`, wait for all to complete; the wall time in ms. */
const drive = (prefix: string, origin: string) =>
  Effect.gen(function*() {
    const ids = Array.from({ length: RUNS }, (_, i) => `${prefix}-${i}`)
    const t0 = performance.now()
    yield* Effect.forEach(ids, (id) => Cluster.ProbeWorkflow.execute({ id, origin, steps: 3 }, { discard: true }), { concurrency: 16 })
    let pending = ids
    while (pending.length > 0) {
      const done = yield* Effect.forEach(pending, (id) =>
        Effect.flatMap(Cluster.ProbeWorkflow.executionId({ id, origin: "", steps: 0 }), (e) => Cluster.ProbeWorkflow.poll(e)).pipe(
          Effect.map((r) => (r?._tag === "Complete" ? undefined : id))
        ), { concurrency: 16 })
      pending = done.filter((x): x is string => x !== undefined)
      if (pending.length > 0) yield* Effect.sleep("100 millis")
    }
    return performance.now() - t0
  })

/** The DAG workload: a three-step `.ax` workflow, one live net.fetch per step, chained. */
const dagDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), "boruna-bench-wf-"))
  const step = (name: string, prev?: string) =>
    `fn main() -> String !{net.fetch, step.input} {\n` +
    `  let base: String = step.input("origin") ++ "/${name}/" ++ step.input("tag")\n` +
    (prev === undefined ? `  net.fetch(base)\n` : `  net.fetch(base ++ "?after=" ++ step.input("${prev}"))\n`) +
    `}\n`
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, "a.ax"), step("a"))
  writeFileSync(join(dir, "b.ax"), step("b", "a"))
  writeFileSync(join(dir, "c.ax"), step("c", "b"))
  writeFileSync(join(dir, "workflow.json"), JSON.stringify({
    schema_version: 1,
    name: "bench-three",
    version: "1",
    steps: {
      a: { kind: "source", source: "a.ax", capabilities: ["net.fetch"] },
      b: { kind: "source", source: "b.ax", capabilities: ["net.fetch"], inputs: { a: "a.result" }, depends_on: ["a"] },
      c: { kind: "source", source: "c.ax", capabilities: ["net.fetch"], inputs: { b: "b.result" }, depends_on: ["b"] }
    },
    edges: []
  }))
  return dir
}

/** Submit `RUNS` DAG runs (tags `prefix-i`), wait until boruna's store has them all ended; the wall time in ms. */
const driveDag = (prefix: string, origin: string, dir: string) =>
  Effect.gen(function*() {
    const t0 = performance.now()
    const ids = yield* Effect.forEach(Array.from({ length: RUNS }, (_, i) => `${prefix}-${i}`), (tag) =>
      Runner.submitRun({ path: dir, policy, live: true, inputs: { origin, tag } }), { concurrency: 16 })
    // one count query per poll (the database holds only this measurement's runs), not a view per run
    const sql = yield* SqlClient.SqlClient
    for (;;) {
      const rows = yield* sql<{ n: number | string }>`SELECT count(*) AS n FROM boruna_wf_runs WHERE status IN ('completed', 'failed')`
      if (Number(rows[0]?.n ?? 0) >= ids.length) break
      yield* Effect.sleep("100 millis")
    }
    const ms = performance.now() - t0
    const failed = yield* sql<{ n: number | string }>`SELECT count(*) AS n FROM boruna_wf_runs WHERE status = 'failed'`
    if (Number(failed[0]?.n ?? 0) > 0) return yield* Effect.dieMessage(`${String(failed[0]?.n)} of ${ids.length} runs failed`)
    // runs a reconciler had to resume (a lost wake, a defect): each cost up to its 30 s period
    const reconciled = yield* sql<{ n: number | string }>`SELECT count(DISTINCT run_id) AS n FROM boruna_wf_history WHERE event = 'reconciled'`
    if (Number(reconciled[0]?.n ?? 0) > 0) console.error(`    (${String(reconciled[0]?.n)} run(s) resumed by a reconciler)`)
    return ms
  })

const main = async () => {
  const pg = await startPg()
  const srv = Http.createServer((req, res) => res.end(`ok ${req.url}`))
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()))
  const origin = `http://127.0.0.1:${(srv.address() as { port: number }).port}`
  const policyFile = join(tmpdir(), `boruna-bench-policy-${process.pid}.json`)
  writeFileSync(policyFile, POLICY_JSON)
  try {
    const wf = dagDir()
    const measure = async (workload: "probe" | "dag", runners: number, round: number) => {
      const url = pg.createDb(`bench_${workload}_${runners}_${round}`)
      const procs: Array<ChildProcess> = []
      for (let i = 0; i < runners; i++) procs.push(await startRunner(url, policyFile))
      // let the shard locks settle between the runners before timing
      await new Promise((r) => setTimeout(r, 4000))
      const engine = Cluster.clusterEngine({ url, clientOnly: true, shardingConfig: Cluster.fastFailover(10) })
      const ms = workload === "probe"
        ? await Effect.runPromise(Effect.scoped(drive(`r${runners}-${round}`, origin).pipe(Effect.provide(engine))))
        : await Effect.runPromise(Effect.scoped(driveDag(`r${runners}-${round}`, origin, wf).pipe(
          Effect.provide(Runner.clientLayer(engine).pipe(Layer.provide(Telemetry.off), Layer.orDie))
        )))
      for (const p of procs) await stopRunner(p)
      return ms
    }
    // the single-machine engine, in process, same workflow and handlers
    const handlersLayer = Layer.scoped(Cluster.RunnerCapabilities, Effect.map(Live.make(policy), (handlers) => ({ policy, handlers })))
    const measureSqlite = async (workload: "probe" | "dag", round: number) => {
      const dataDir = mkdtempSync(join(tmpdir(), "boruna-bench-sqlite-"))
      let ms: number
      if (workload === "probe") {
        const local = Cluster.probeLayer.pipe(
          Layer.provide(Layer.mergeAll(handlersLayer, Layer.succeed(Cluster.RunnerIdentity, { address: "local", capabilities: [] }), Layer.effectDiscard(Cluster.ensureCallTable))),
          Layer.provideMerge(sqliteEngine(dataDir))
        )
        ms = await Effect.runPromise(Effect.scoped(drive(`local-${round}`, origin).pipe(Effect.provide(local))))
      } else {
        const local = Runner.layer(sqliteEngine(dataDir)).pipe(Layer.provide(Telemetry.off), Layer.orDie)
        ms = await Effect.runPromise(Effect.scoped(driveDag(`local-${round}`, origin, wf).pipe(Effect.provide(local))))
      }
      rmSync(dataDir, { recursive: true, force: true })
      return ms
    }
    const rps = (ms: number) => (RUNS / ms) * 1000
    const perStep = (ms: number) => ms / (RUNS * 3)
    const workloads: ReadonlyArray<"probe" | "dag"> = WORKLOAD === "both" ? ["probe", "dag"] : [WORKLOAD as "probe" | "dag"]
    for (const workload of workloads) {
      const rounds: Array<{ one: number; two: number; sqlite: number }> = []
      for (let round = 0; round < ROUNDS; round++) {
        const l1 = load()
        const one = await measure(workload, 1, round)
        console.error(`  ${workload} round ${round + 1}: one runner ${one.toFixed(0)} ms (load ${l1})`)
        const l2 = load()
        const two = await measure(workload, 2, round)
        console.error(`  ${workload} round ${round + 1}: two runners ${two.toFixed(0)} ms (load ${l2})`)
        const l3 = load()
        const sqlite = await measureSqlite(workload, round)
        console.error(`  ${workload} round ${round + 1}: sqlite ${sqlite.toFixed(0)} ms (load ${l3})`)
        rounds.push({ one, two, sqlite })
      }
      const one = median(rounds.map((r) => r.one))
      const two = median(rounds.map((r) => r.two))
      const sqliteMs = median(rounds.map((r) => r.sqlite))
      const what = workload === "probe" ? "the probe workflow" : "a three-step .ax workflow (DAG runner)"
      console.log(`cluster bench, ${what}: ${RUNS} runs x 3 steps (one live net.fetch per step, loopback origin), ${ROUNDS} round(s), medians; load at the end ${load()}`)
      console.log(`  one runner   ${rps(one).toFixed(1)} runs/s  (${perStep(one).toFixed(2)} ms/step)`)
      console.log(`  two runners  ${rps(two).toFixed(1)} runs/s  (${perStep(two).toFixed(2)} ms/step)`)
      console.log(`  two / one    ${median(rounds.map((r) => r.one / r.two)).toFixed(2)}x throughput`)
      console.log(`  sqlite, one machine (in process)  ${rps(sqliteMs).toFixed(1)} runs/s  (${perStep(sqliteMs).toFixed(2)} ms/step)`)
      console.log(`  per-step overhead, cluster (one runner) / sqlite: ${median(rounds.map((r) => r.one / r.sqlite)).toFixed(2)}x`)
    }
    rmSync(wf, { recursive: true, force: true })
  } finally {
    for (const c of children) c.kill("SIGKILL")
    srv.close()
    pg.stop()
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`cluster bench failed: ${e instanceof Error ? e.message : String(e)}`)
  process.exit(1)
})
