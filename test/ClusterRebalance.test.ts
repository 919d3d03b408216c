/**
 * A rebalance on a real PostgreSQL: sixteen runs of a three-step `.ax` workflow on two `boruna
 * runner` processes, every run held in step b's call at the origin, when a third runner joins.
 * Shards move to it (about a third of each group); a step whose shard moved is interrupted on its
 * old owner and run again by the new one, so its in-flight call is made a second time and recorded
 * `reexecuted` (at-least-once). Every run completes with the outputs of a single-machine run; the
 * calls completed before the join are never made again; a call that was in flight is made at most
 * twice, twice exactly when its step's shard moved.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import type * as Http from "node:http"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Cluster from "../src/Cluster.js"
import { parsePolicy } from "../src/Policy.js"
import * as Telemetry from "../src/Telemetry.js"
import { sqliteEngine } from "../src/WorkflowEngine.js"
import * as Runner from "../src/WorkflowRunner.js"
import * as LoopbackServer from "./support/LoopbackServer.js"
import * as Pg from "./support/Postgres.js"
import { exactFetches, threeSteps } from "./support/ThreeSteps.js"
import { wfDir } from "./support/WorkflowDir.js"

// the held calls wait for the rebalance (up to a minute on a loaded machine): above the 30 s default fetch timeout
const POLICY_JSON = JSON.stringify({ rules: { "net.fetch": { allow: true } }, net_policy: { allowed_domains: ["127.0.0.1"], timeout_ms: 180_000 } })
const policy = Either.getOrThrow(parsePolicy(POLICY_JSON))

const fixture = Pg.suite("crb", POLICY_JSON)

const { WORKFLOW, FILES } = threeSteps("rebalance")
// sixteen runs: with a third of the shards moving, the chance that no step b moves is (2/3)^16 < 0.2 %
const TAGS = Array.from({ length: 16 }, (_, i) => `r${i}`)
/** the shard group of a `net.fetch` step */
const STEP_GROUP = Cluster.placementGroup({ capabilities: ["net.fetch"] })

const answer = (url: string): string => `ok:${url.split("?")[0]}`

describe("a rebalance while calls are in flight", () => {
  it.scopedLive("a third runner joins mid-run: completed calls once, in-flight calls at most twice (twice and reexecuted where the shard moved), outputs equal a single-machine run", () =>
    Effect.gen(function*() {
      const dir = wfDir(WORKFLOW, FILES)
      const refOrigin = yield* LoopbackServer.server((req, _b, res) => res.end(answer(req.url ?? "")))
      const reference = yield* Effect.forEach(TAGS, (tag) => Runner.startRun({ path: dir, policy, live: true, inputs: { origin: refOrigin.origin, tag } })).pipe(
        Effect.provide(Runner.layer(sqliteEngine(mkdtempSync(join(tmpdir(), "boruna-data-")))).pipe(Layer.provide(Telemetry.off), Layer.orDie))
      )
      expect(reference.every((r) => r.status === "completed")).toBe(true)

      const url = fixture.pg.database("rebalance")
      // the first request of each step b is held (in flight) until the third runner has its shards
      const held: Array<{ url: string; res: Http.ServerResponse }> = []
      const seen = new Set<string>()
      const origin = yield* LoopbackServer.server((req, _b, res) => {
        const u = req.url ?? ""
        const path = u.split("?")[0]
        if (path.startsWith("/b/") && !seen.has(path)) {
          seen.add(path)
          held.push({ url: u, res })
        } else res.end(answer(u))
      })
      const two = yield* Effect.promise(() => Promise.all([0, 1].map(() => Pg.startRunner({ url, policy: fixture.policyFile }))))
      yield* Effect.promise(() => Pg.settled(fixture.pg, url, two.map((r) => r.address)))
      yield* Effect.promise(() => Pg.settled(fixture.pg, url, two.map((r) => r.address), 30_000, STEP_GROUP))
      const client = Runner.clientLayer(Cluster.clusterEngine({ url, clientOnly: true, shardingConfig: Cluster.fastFailover(Pg.LOCK_EXPIRY) })).pipe(
        Layer.provide(Telemetry.off),
        Layer.orDie
      )
      const fibers = yield* Effect.forEach(TAGS, (tag) =>
        Runner.startRun({ path: dir, policy, live: true, inputs: { origin: origin.origin, tag } }).pipe(Effect.provide(client), Effect.fork))
      yield* Pg.eventually(Effect.sync(() => (held.length === TAGS.length ? true : undefined)), 60_000, "every run to be in step b's call")

      const runOfTag = new Map(
        fixture.pg.psql(url, "SELECT run_id, inputs_json FROM boruna_wf_runs").trim().split("\n").map((l) => l.split("\t")).map(([id, inputs]) => [JSON.parse(inputs).tag as string, id])
      )
      // the shard of each run's step b, and its owner before the join
      const stepShard = new Map(TAGS.map((tag) => [
        tag,
        fixture.pg.psql(url, `SELECT shard_id FROM cluster_messages WHERE entity_type LIKE 'Workflow/boruna/step%' AND tag = 'run'
          AND payload LIKE '%"stepId":"b"%' AND payload LIKE '%${runOfTag.get(tag)}%'`).trim()
      ]))
      const owners = () => new Map(fixture.pg.psql(url, `SELECT shard_id, address FROM cluster_locks`).trim().split("\n").map((l) => l.split("\t") as [string, string]))
      const before = owners()
      const completedBefore = new Map(
        fixture.pg.psql(url, `SELECT run_id || '/' || step_id, executions FROM boruna_wf_calls WHERE capability = 'net.fetch' AND status = 'completed'`)
          .trim().split("\n").filter((l) => l !== "").map((l) => l.split("\t")).map(([k, n]) => [k, Number(n)] as const)
      )
      expect([...completedBefore.keys()].sort()).toEqual(TAGS.map((t) => `${runOfTag.get(t)}/a`).sort())

      // the third runner joins; wait until it holds its share of both groups
      const third = yield* Effect.promise(() => Pg.startRunner({ url, policy: fixture.policyFile }))
      const all = [...two, third].map((r) => r.address)
      yield* Effect.promise(() => Pg.settled(fixture.pg, url, all, 60_000))
      yield* Effect.promise(() => Pg.settled(fixture.pg, url, all, 60_000, STEP_GROUP))
      // the moves take a few assignment rounds (a busy shard is released once its entities stop)
      const after = yield* Effect.promise(() => Pg.stableLocks(fixture.pg, url, STEP_GROUP, 6_000))
      const moved = TAGS.filter((t) => before.get(stepShard.get(t)!) !== after.get(stepShard.get(t)!))
      expect(moved.length, "some step b shard moved to the new runner").toBeGreaterThan(0)
      for (const h of held) h.res.end(answer(h.url))

      const results = yield* Effect.forEach(fibers, (f) => Fiber.join(f)).pipe(Effect.timeout("90 seconds"))
      expect(results.map((r) => `${r.status}${r.error === null ? "" : `: ${r.error}`}`), [...two, third].map((r) => r.stderr()).join("\n")).toEqual(TAGS.map(() => "completed"))
      const count = (path: string) => origin.requests.filter((q) => q.url.split("?")[0] === path).length
      const stderr = [...two, third].map((r) => r.stderr()).join("\n")
      // a runner that dropped its shards (a lock refresh timed out under load) re-runs its in-flight calls too
      const lockDrop = stderr.includes("Shard lock storage is unhealthy")
      for (const [i, tag] of TAGS.entries()) {
        const r = results[i]
        expect(r.outputs, tag).toEqual(reference[i].outputs)
        const view = yield* Runner.runStatus(r.runId).pipe(Effect.provide(client))
        const fetches = exactFetches(view, tag, count)
        // completed before the join: never again
        expect(fetches.get("a")?.executions, `${tag}/a`).toBe(completedBefore.get(`${r.runId}/a`))
        // in flight during the join: at most twice (once more per drop besides); twice where the step's shard moved
        const b = fetches.get("b")!
        if (!lockDrop) expect(b.executions, `${tag}/b`).toBeLessThanOrEqual(2)
        if (moved.includes(tag)) expect(b.reexecuted, `${tag}/b: its shard moved`).toBe(true)
        else if (!lockDrop) expect(b.executions, `${tag}/b: its shard stayed; runner stderr:\n${stderr}`).toBe(1)
        if (!lockDrop) expect(fetches.get("c")?.executions, `${tag}/c; runner stderr:\n${stderr}`).toBe(1)
      }
      console.log(`rebalance: ${moved.length} of ${TAGS.length} in-flight step b calls moved to the new runner and ran again${lockDrop ? " (a runner also dropped its shards: lock refresh timeout)" : ""}`)
    }), 180_000)
})
