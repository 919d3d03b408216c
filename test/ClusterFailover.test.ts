/**
 * Failover on a real PostgreSQL: two `boruna runner` processes with a 5 s shard-lock expiry
 * (BORUNA_CLUSTER_LOCK_EXPIRY, docs/cluster.md). One is SIGKILLed while calls of its runs are in
 * flight, or while it holds a paused run; the other takes its shards over and finishes the runs.
 * A loopback origin counts every request: completed calls are made exactly once, the call in
 * flight at the kill runs again and is marked `reexecuted`.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Http from "node:http"
import { writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Cluster from "../src/Cluster.js"
import { ensureBuilt } from "./support/BuiltCli.js"
import * as LoopbackServer from "./support/LoopbackServer.js"
import * as Pg from "./support/Postgres.js"

let pg: Pg.Postgres
let policyFile: string
beforeAll(async () => {
  await ensureBuilt()
  pg = await Pg.start()
  policyFile = join(tmpdir(), `boruna-failover-policy-${process.pid}.json`)
  writeFileSync(policyFile, JSON.stringify({ rules: { "net.fetch": { allow: true } }, net_policy: { allowed_domains: ["127.0.0.1"] } }))
}, 120_000)
afterAll(() => {
  Pg.stopAll()
  pg?.stop()
})

const LOCK_EXPIRY = Pg.LOCK_EXPIRY
const IDS = ["f1", "f2", "f3", "f4"]

/** Poll every run until it is Complete; their results. */
const awaitAll = (ids: ReadonlyArray<string>, timeoutMs: number) =>
  Effect.forEach(ids, (id) =>
    Pg.eventually(
      Effect.gen(function*() {
        const executionId = yield* Cluster.ProbeWorkflow.executionId({ id, origin: "", steps: 0 })
        const r = yield* Cluster.ProbeWorkflow.poll(executionId)
        if (r === undefined || r._tag !== "Complete") return undefined
        if (r.exit._tag !== "Success") return yield* Effect.fail(new Error(`run ${id} failed: ${JSON.stringify(r.exit)}`))
        return r.exit.value
      }),
      timeoutMs,
      `run ${id} to complete`
    ), { concurrency: "unbounded" })

const callRunner = (url: string, key: string): string | undefined =>
  pg.psql(url, `SELECT runner FROM boruna_cluster_calls WHERE call_key = '${key}'`).trim() || undefined

describe("failover", () => {
  it.scopedLive("SIGKILL a runner mid-steps: every run completes, completed calls once, the in-flight call re-run and marked reexecuted", () =>
    Effect.gen(function*() {
      const url = pg.database("failover")
      // step 1's first request of each run is held open: the run is then mid-steps
      const held: Array<{ path: string; res: Http.ServerResponse }> = []
      let holding = true
      const origin = yield* LoopbackServer.server((req, _body, res) => {
        const path = req.url ?? ""
        if (holding && path.endsWith("/1")) held.push({ path, res })
        else res.end(`ok ${path}`)
      })
      const runners = yield* Effect.promise(() => Promise.all([0, 1].map(() => Pg.startRunner({ url, policy: policyFile, lockExpiry: LOCK_EXPIRY }))))
      yield* Effect.promise(() => Pg.settled(pg, url, runners.map((r) => r.address)))
      const client = Pg.client(url, LOCK_EXPIRY)
      yield* Effect.forEach(IDS, (id) => Cluster.ProbeWorkflow.execute({ id, origin: origin.origin, steps: 3 }, { discard: true })).pipe(Effect.provide(client))
      yield* Pg.eventually(Effect.sync(() => (new Set(held.map((h) => h.path)).size === IDS.length ? true : undefined)), 30_000, "every run to be in step 1")

      // kill the runner executing the first run's step 1, in the middle of that call
      const victimAddress = callRunner(url, "f1/1")!
      const victim = runners.find((r) => r.address === victimAddress)!
      const survivor = runners.find((r) => r !== victim)!
      const victimRuns = IDS.filter((id) => callRunner(url, `${id}/1`) === victimAddress)
      const killedAt = Date.now()
      victim.child.kill("SIGKILL")
      yield* Effect.promise(() => victim.exited)
      holding = false
      for (const h of held) h.res.end(`ok ${h.path}`)

      const results = yield* awaitAll(IDS, 40_000).pipe(Effect.provide(client))
      const takeoverMs = Date.now() - killedAt
      const count = (path: string) => origin.requests.filter((q) => q.url === path).length
      for (const r of results) {
        // the outputs of an uninterrupted run
        expect(r.steps.map((s) => s.output)).toEqual([0, 1, 2].map((i) => `ok /probe/${r.id}/${i}`))
        const wasVictims = victimRuns.includes(r.id)
        expect(count(`/probe/${r.id}/0`), r.id).toBe(1)
        expect(count(`/probe/${r.id}/2`), r.id).toBe(1)
        expect(count(`/probe/${r.id}/1`), r.id).toBe(wasVictims ? 2 : 1)
        expect(r.steps[0].executions).toBe(1)
        expect(r.steps[0].reexecuted).toBe(false)
        expect(r.steps[1].reexecuted, r.id).toBe(wasVictims)
        expect(r.steps[1].executions).toBe(wasVictims ? 2 : 1)
        if (wasVictims) {
          expect(r.steps[1].runner).toBe(survivor.address)
          expect(r.steps[2].runner).toBe(survivor.address)
        }
      }
      expect(victimRuns.length).toBeGreaterThan(0)
      // takeover is bounded by the lock expiry plus a few polling intervals
      expect(takeoverMs).toBeLessThan(30_000)
      console.log(`failover: ${victimRuns.length} run(s) taken over and completed ${takeoverMs} ms after SIGKILL (lock expiry ${LOCK_EXPIRY} s)`)
    }), 120_000)

  it.scopedLive("SIGKILL the runner holding a paused run: nothing is lost, the approval continues it on the other runner", () =>
    Effect.gen(function*() {
      const url = pg.database("paused")
      const origin = yield* LoopbackServer.server((req, _body, res) => res.end(`ok ${req.url}`))
      const runners = yield* Effect.promise(() => Promise.all([0, 1].map(() => Pg.startRunner({ url, policy: policyFile, lockExpiry: LOCK_EXPIRY }))))
      yield* Effect.promise(() => Pg.settled(pg, url, runners.map((r) => r.address)))
      const client = Pg.client(url, LOCK_EXPIRY)
      const executionId = yield* Cluster.ProbeWorkflow.execute({ id: "p1", origin: origin.origin, steps: 3, gateAfter: 1 }, { discard: true }).pipe(Effect.provide(client))
      // paused at the gate, after step 0
      yield* Pg.eventually(
        Effect.map(Cluster.ProbeWorkflow.poll(executionId), (r) => (r?._tag === "Suspended" ? true : undefined)),
        30_000,
        "the run to pause"
      ).pipe(Effect.provide(client))
      const holder = runners.find((r) => r.address === callRunner(url, "p1/0"))!
      holder.child.kill("SIGKILL")
      yield* Effect.promise(() => holder.exited)
      yield* Cluster.approveProbe("p1", "ops").pipe(Effect.provide(client))
      const [r] = yield* awaitAll(["p1"], 40_000).pipe(Effect.provide(client))
      expect(r.steps.map((s) => s.output)).toEqual(["ok /probe/p1/0", "approved by ops", "ok /probe/p1/1", "ok /probe/p1/2"])
      const other = runners.find((x) => x !== holder)!
      expect(r.steps[2].runner).toBe(other.address)
      expect(r.steps[3].runner).toBe(other.address)
      expect(origin.requests.map((q) => q.url)).toEqual(["/probe/p1/0", "/probe/p1/1", "/probe/p1/2"])
    }), 120_000)
})
