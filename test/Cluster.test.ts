/**
 * `boruna runner` processes on a real PostgreSQL 15 (a throwaway cluster, test/support/Postgres.ts):
 * they come up with NodeClusterSocket and SQL storage, execute runs submitted by a clientOnly
 * client, stop cleanly on SIGTERM (shards released, runner unregistered); bad cluster input is one
 * error line with the documented exit code.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { readFileSync, writeFileSync } from "node:fs"
import { createServer, type Server, type Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Cluster from "../src/Cluster.js"
import { boruna, ensureBuilt, importLogger } from "./support/BuiltCli.js"
import * as LoopbackServer from "./support/LoopbackServer.js"
import * as Pg from "./support/Postgres.js"
import { wfDir } from "./support/WorkflowDir.js"

let pg: Pg.Postgres
let policyFile: string
beforeAll(async () => {
  await ensureBuilt()
  pg = await Pg.start()
  policyFile = join(tmpdir(), `boruna-cluster-policy-${process.pid}.json`)
  writeFileSync(policyFile, JSON.stringify({ rules: { "net.fetch": { allow: true } }, net_policy: { allowed_domains: ["127.0.0.1"] } }))
}, 120_000)
afterAll(() => {
  Pg.stopAll()
  pg?.stop()
})

const oneErrorLine = (stderr: string, kind: string): string => {
  const lines = stderr.trimEnd().split("\n")
  expect(lines, stderr).toHaveLength(1)
  expect(lines[0]).toMatch(new RegExp(`^error\\[${kind}\\]: `))
  expect(stderr).not.toMatch(/\n\s+at /)
  return lines[0]
}

describe("bad cluster input", () => {
  it("a refused PostgreSQL port: one cluster_unreachable line, exit 3", async () => {
    const port = await Pg.freePort()
    const r = await boruna(["runner", "--cluster", `postgres://boruna:s3cret@127.0.0.1:${port}/x`])
    expect(r.code, r.stderr).toBe(3)
    const line = oneErrorLine(r.stderr, "cluster_unreachable")
    expect(line).toContain(`cannot connect to PostgreSQL at postgres://boruna:***@127.0.0.1:${port}/x`)
    expect(line).toContain("ECONNREFUSED")
    expect(r.stderr).not.toContain("s3cret")
  })

  it("a server that accepts and never answers: the same error within the connect timeout (5 s)", async () => {
    const sockets: Array<Socket> = []
    const srv: Server = createServer((s) => void sockets.push(s))
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r))
    const port = (srv.address() as { port: number }).port
    try {
      const r = await boruna(["runner", "--cluster", `postgres://u@127.0.0.1:${port}/x`])
      expect(r.code, r.stderr).toBe(3)
      const line = oneErrorLine(r.stderr, "cluster_unreachable")
      expect(line).toMatch(/timed out|timeout/i)
      expect(r.ms).toBeGreaterThan(4_000)
      expect(r.ms).toBeLessThan(15_000)
    } finally {
      for (const s of sockets) s.destroy()
      srv.close()
    }
  }, 30_000)

  it.each([
    [["runner"], 2, "usage", "boruna runner needs --cluster URL (or BORUNA_CLUSTER_URL)"],
    [["runner", "--cluster", "mysql://x/y"], 2, "usage", "--cluster: mysql://x/y: expected a postgres:// URL, not mysql://"],
    [["runner", "--cluster", "postgres://x@h:1/d", "--listen", "nohost"], 2, "usage", "--listen: 'nohost' is not HOST:PORT"],
    [["runner", "--cluster", "postgres://x@h:1/d", "--advertise", "h:99999"], 2, "usage", "--advertise: port 99999 is out of range (1-65535)"],
    [["runner", "--cluster", "postgres://x@h:1/d", "--capabilities", "net.fetch,gpu.render"], 2, "usage", "--capabilities: unknown capability 'gpu.render'"],
    [["runner", "--cluster", "postgres://x@h:1/d", "--group", "Bad Group"], 2, "usage", "--group: runner group 'Bad Group' must be"]
  ])("boruna %j: exit %i", async (args, code, kind, message) => {
    const r = await boruna(args)
    expect(r.code, r.stderr).toBe(code)
    expect(oneErrorLine(r.stderr, kind)).toContain(message)
  })

  it("BORUNA_CLUSTER_URL stands in for --cluster; a bad BORUNA_CLUSTER_LOCK_EXPIRY is exit 3", async () => {
    const port = await Pg.freePort()
    const viaEnv = await boruna(["runner"], { BORUNA_CLUSTER_URL: `postgres://u@127.0.0.1:${port}/x` })
    expect(viaEnv.code, viaEnv.stderr).toBe(3)
    expect(oneErrorLine(viaEnv.stderr, "cluster_unreachable")).toContain(`127.0.0.1:${port}`)
    const bad = await boruna(["runner", "--cluster", pg.url], { BORUNA_CLUSTER_LOCK_EXPIRY: "2s" })
    expect(bad.code, bad.stderr).toBe(3)
    expect(oneErrorLine(bad.stderr, "invalid_env")).toContain("BORUNA_CLUSTER_LOCK_EXPIRY must be a whole number of seconds, at least 3, got '2s'")
  })
})

describe("runners on PostgreSQL", () => {
  it.scopedLive("two runners execute four probe runs; every call reaches the origin exactly once", () =>
    Effect.gen(function*() {
      const url = pg.database("two_runners")
      const origin = yield* LoopbackServer.server((req, _body, res) => res.end(`ok ${req.url}`))
      const [a, b] = yield* Effect.promise(() => Promise.all([Pg.startRunner({ url, policy: policyFile }), Pg.startRunner({ url, policy: policyFile })]))
      yield* Effect.promise(() => Pg.settled(pg, url, [a.address, b.address]))
      const results = yield* Effect.forEach(
        ["r1", "r2", "r3", "r4"],
        (id) => Cluster.ProbeWorkflow.execute({ id, origin: origin.origin, steps: 3 }),
        { concurrency: "unbounded" }
      ).pipe(Effect.provide(Pg.client(url)))
      for (const r of results) {
        expect(r.steps.map((s) => s.output)).toEqual([0, 1, 2].map((i) => `ok /probe/${r.id}/${i}`))
        expect(r.steps.every((s) => s.executions === 1 && !s.reexecuted)).toBe(true)
        expect([a.address, b.address]).toContain(r.steps[0].runner)
      }
      const paths = origin.requests.map((q) => q.url).sort()
      expect(paths).toEqual(["r1", "r2", "r3", "r4"].flatMap((id) => [0, 1, 2].map((i) => `/probe/${id}/${i}`)).sort())
      // the shards are split between the two runners
      const owners = pg.psql(url, "SELECT address, count(*) FROM cluster_locks GROUP BY address ORDER BY address").trim().split("\n")
      expect(owners.map((l) => l.split("\t")[0]).sort()).toEqual([a.address, b.address].sort())
    }), 90_000)

  it.scopedLive("SIGTERM: the runner releases its shard locks, unregisters and exits 143; the other takes every shard", () =>
    Effect.gen(function*() {
      const url = pg.database("sigterm")
      const [a, b] = yield* Effect.promise(() => Promise.all([Pg.startRunner({ url }), Pg.startRunner({ url })]))
      const count = (sql: string) => Number(pg.psql(url, sql).trim())
      const groups = Cluster.runnerGroups({}).length
      yield* Effect.promise(() => waitFor(() => count(`SELECT count(*) FROM cluster_locks WHERE address = '${a.address}'`) > 0, 20_000))
      a.child.kill("SIGTERM")
      const exit = yield* Effect.promise(() => a.exited)
      expect(exit.code, a.stderr()).toBe(143)
      expect(count(`SELECT count(*) FROM cluster_locks WHERE address = '${a.address}'`)).toBe(0)
      expect(count(`SELECT count(*) FROM cluster_runners WHERE address = '${a.address}'`)).toBe(0)
      yield* Effect.promise(() =>
        waitFor(() => count(`SELECT count(*) FROM cluster_locks WHERE address = '${b.address}'`) === groups * Cluster.SHARDS_PER_GROUP, 20_000)
      )
    }), 60_000)
})

describe("cluster code loads only in cluster mode", () => {
  it("boruna run and boruna runner --help never load pg; a runner does", async () => {
    const log = join(tmpdir(), `boruna-cluster-imports-${process.pid}.log`)
    writeFileSync(log, "")
    const nodeArgs = importLogger(log, ["/node_modules/pg/"])
    const run = await boruna(["run", join("examples", "hello.ax")], {}, nodeArgs)
    expect(run.code, run.stderr).toBe(0)
    const help = await boruna(["runner", "--help"], {}, nodeArgs)
    expect(help.code, help.stderr).toBe(0)
    expect(readFileSync(log, "utf8")).toBe("")
    const port = await Pg.freePort()
    const r = await boruna(["runner", "--cluster", `postgres://u@127.0.0.1:${port}/x`], {}, nodeArgs)
    expect(r.code, r.stderr).toBe(3)
    expect(readFileSync(log, "utf8")).toContain("/node_modules/pg/")
  })
})

describe("boruna workflow --cluster", () => {
  it.scopedLive("run pauses at a gate on a runner and prints its token; approve from another process continues it; each call once", () =>
    Effect.gen(function*() {
      const url = pg.database("cli_gate")
      const origin = yield* LoopbackServer.server((req, _body, res) => res.end(`ok ${req.url}`))
      const runner = yield* Effect.promise(() => Pg.startRunner({ url, policy: policyFile }))
      yield* Effect.promise(() => Pg.settled(pg, url, [runner.address]))
      const dir = wfDir(
        { schema_version: 1, name: "gated", version: "1", steps: { gate: { kind: "approval_gate", required_role: "ops" }, f: { kind: "source", source: "f.ax", capabilities: ["net.fetch"], depends_on: ["gate"] } }, edges: [] },
        { "f.ax": `fn main() -> String !{net.fetch} { net.fetch("${origin.origin}/after") }\n` }
      )
      const run = yield* Effect.promise(() => boruna(["workflow", "run", dir, "--policy", policyFile, "--live", "--cluster", url]))
      expect(run.code, run.stderr).toBe(75)
      const m = /boruna workflow approve ([0-9a-f]{16}) gate --token (\S+) --as NAME/.exec(run.stdout + run.stderr)
      expect(m, run.stdout).not.toBeNull()
      expect(m![2]).not.toBe("TOKEN")
      expect(origin.requests).toHaveLength(0)
      const ok = yield* Effect.promise(() => boruna(["workflow", "approve", m![1], "gate", "--token", m![2], "--as", "ann"], { BORUNA_CLUSTER_URL: url }))
      expect(ok.code, ok.stderr).toBe(0)
      expect(origin.requests.map((q) => q.url)).toEqual(["/after"])
      // the token was handed over once: nothing is left in the relay table
      expect(pg.psql(url, "SELECT count(*) FROM boruna_cluster_tokens").trim()).toBe("0")
    }), 90_000)

  it.scopedLive("run --detach returns once submitted; a runner completes the run; without --cluster it is a usage error", () =>
    Effect.gen(function*() {
      const dir = wfDir(
        { schema_version: 1, name: "detached", version: "1", steps: { f: { kind: "source", source: "f.ax", capabilities: ["net.fetch"] } }, edges: [] },
        { "f.ax": `fn main() -> String !{net.fetch} { net.fetch("http://127.0.0.1:9/never") }\n` }
      )
      const local = yield* Effect.promise(() => boruna(["workflow", "run", dir, "--detach"]))
      expect(local.code, local.stderr).toBe(2)
      expect(local.stderr).toContain("error[usage]: --detach needs --cluster")

      const url = pg.database("cli_detach")
      // the origin answers only once the client has returned: the run cannot have finished before
      let release: (() => void) | undefined
      const origin = yield* LoopbackServer.server((req, _body, res) => {
        release = () => res.end(`ok ${req.url}`)
      })
      const wf = wfDir(
        { schema_version: 1, name: "detached", version: "1", steps: { f: { kind: "source", source: "f.ax", capabilities: ["net.fetch"] } }, edges: [] },
        { "f.ax": `fn main() -> String !{net.fetch} { net.fetch("${origin.origin}/slow") }\n` }
      )
      const runner = yield* Effect.promise(() => Pg.startRunner({ url, policy: policyFile }))
      yield* Effect.promise(() => Pg.settled(pg, url, [runner.address]))
      const sub = yield* Effect.promise(() => boruna(["workflow", "run", wf, "--policy", policyFile, "--live", "--cluster", url, "--detach", "--json"]))
      expect(sub.code, sub.stderr).toBe(0)
      const { run_id, status } = JSON.parse(sub.stdout) as { run_id: string; status: string }
      expect(status).toBe("submitted")
      yield* Effect.promise(() => waitFor(() => release !== undefined, 30_000))
      release!()
      yield* Effect.promise(() => waitFor(() => pg.psql(url, `SELECT status FROM boruna_wf_runs WHERE run_id = '${run_id}'`).trim() === "completed", 30_000))
      expect(origin.requests.map((q) => q.url)).toEqual(["/slow"])
    }), 90_000)
})

const waitFor = async (ok: () => boolean, timeoutMs: number): Promise<void> => {
  const t0 = Date.now()
  while (!ok()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 200))
  }
}
