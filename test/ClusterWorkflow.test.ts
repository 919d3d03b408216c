/**
 * The DAG runner (src/WorkflowRunner.ts) on the cluster: four runs of a three-step `.ax` workflow
 * submitted by a clientOnly client to two `boruna runner` processes on a real PostgreSQL. One
 * runner is SIGKILLed while it executes a step's call; every run completes with the outputs of a
 * single-machine (SQLite) run, each completed call reaches the origin once, the call in flight at
 * the kill runs again and is recorded `reexecuted`.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
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
import * as Either from "effect/Either"

const POLICY_JSON = JSON.stringify({ rules: { "net.fetch": { allow: true } }, net_policy: { allowed_domains: ["127.0.0.1"] } })
const policy = Either.getOrThrow(parsePolicy(POLICY_JSON))

const fixture = Pg.suite("cwf", POLICY_JSON)

const { WORKFLOW, FILES } = threeSteps("three-steps")
const TAGS = ["t1", "t2", "t3", "t4"]

/** The origin's answer: the path, with a short digest-like tail so outputs chain through steps. */
const answer = (url: string): string => `ok:${url.split("?")[0]}`

describe("the DAG runner on the cluster", () => {
  it.scopedLive("four runs across two runners, one SIGKILLed mid-step: outputs equal a single-machine run, completed calls once, the in-flight call reexecuted", () =>
    Effect.gen(function*() {
      const dir = wfDir(WORKFLOW, FILES)
      // the single-machine reference (SQLite engine, in process)
      const refOrigin = yield* LoopbackServer.server((req, _b, res) => res.end(answer(req.url ?? "")))
      const reference = yield* Effect.forEach(TAGS, (tag) =>
        Runner.startRun({ path: dir, policy, live: true, inputs: { origin: refOrigin.origin, tag } })
      ).pipe(Effect.provide(Runner.layer(sqliteEngine(mkdtempSync(join(tmpdir(), "boruna-data-")))).pipe(Layer.provide(Telemetry.off), Layer.orDie)))
      expect(reference.map((r) => r.status)).toEqual(["completed", "completed", "completed", "completed"])

      const url = fixture.pg.database("dag")
      const held: Array<{ url: string; res: Http.ServerResponse }> = []
      let holding = true
      const origin = yield* LoopbackServer.server((req, _b, res) => {
        const u = req.url ?? ""
        if (holding && u.startsWith("/b/")) held.push({ url: u, res })
        else res.end(answer(u))
      })
      const runners = yield* Effect.promise(() => Promise.all([0, 1].map(() => Pg.startRunner({ url, policy: fixture.policyFile }))))
      yield* Effect.promise(() => Pg.settled(fixture.pg, url, runners.map((r) => r.address)))
      const client = Runner.clientLayer(Cluster.clusterEngine({ url, clientOnly: true, shardingConfig: Cluster.fastFailover(Pg.LOCK_EXPIRY) })).pipe(
        Layer.provide(Telemetry.off),
        Layer.orDie
      )
      // same inputs as the reference but the origin: the run ids differ from the reference's only by the inputs hash
      const fibers = yield* Effect.forEach(TAGS, (tag) =>
        Runner.startRun({ path: dir, policy, live: true, inputs: { origin: origin.origin, tag } }).pipe(Effect.provide(client), Effect.fork))
      yield* Pg.eventually(Effect.sync(() => (new Set(held.map((h) => h.url)).size === TAGS.length ? true : undefined)), 40_000, "every run to be in step b")

      // the runner owning the shard of run t1's step b is the one executing its call
      const runIds = fixture.pg.psql(url, "SELECT run_id, inputs_json FROM boruna_wf_runs").trim().split("\n").map((l) => l.split("\t"))
      const runOfTag = new Map(runIds.map(([id, inputs]) => [JSON.parse(inputs).tag as string, id]))
      const stepOwner = (tag: string): string =>
        fixture.pg.psql(url, `SELECT l.address FROM cluster_messages m JOIN cluster_locks l ON l.shard_id = m.shard_id
          WHERE m.entity_type LIKE 'Workflow/boruna/step%' AND m.tag = 'run' AND m.payload LIKE '%"stepId":"b"%' AND m.payload LIKE '%${runOfTag.get(tag)}%'`).trim()
      const victimAddress = stepOwner("t1")
      const victim = runners.find((r) => r.address === victimAddress)!
      expect(victim, `owner of t1/b: '${victimAddress}'`).toBeDefined()
      const victimTags = TAGS.filter((t) => stepOwner(t) === victimAddress)
      // the calls journaled complete when the runner dies: each must have reached the origin once
      const completedAtKill = new Map(
        fixture.pg.psql(url, `SELECT run_id || '/' || step_id, executions FROM boruna_wf_calls WHERE capability = 'net.fetch' AND status = 'completed'`)
          .trim().split("\n").filter((l) => l !== "").map((l) => l.split("\t")).map(([k, n]) => [k, Number(n)] as const)
      )
      victim.child.kill("SIGKILL")
      yield* Effect.promise(() => victim.exited)
      holding = false
      for (const h of held) h.res.end(answer(h.url))

      const results = yield* Effect.forEach(fibers, (f) => Fiber.join(f)).pipe(Effect.timeout("60 seconds"))
      expect(results.map((r) => r.status)).toEqual(["completed", "completed", "completed", "completed"])
      const count = (path: string) => origin.requests.filter((q) => q.url.split("?")[0] === path).length
      // every step a call completed before the kill (and no b or c call had)
      expect([...completedAtKill.keys()].sort()).toEqual(TAGS.map((t) => `${runOfTag.get(t)}/a`).sort())
      for (const [i, tag] of TAGS.entries()) {
        const r = results[i]
        // the outputs of the single-machine run (origin URLs differ only in the port, which is not in the answer)
        expect(r.outputs, tag).toEqual(reference[i].outputs)
        const view = yield* Runner.runStatus(r.runId).pipe(Effect.provide(client))
        const fetches = exactFetches(view, tag, count)
        // a call completed before the kill never ran again; the call in flight on the killed runner did
        expect(fetches.get("a")?.executions, tag).toBe(completedAtKill.get(`${r.runId}/a`))
        if (victimTags.includes(tag)) expect(fetches.get("b")?.reexecuted, `${tag}/b was in flight on the killed runner`).toBe(true)
        // step.input calls are journaled too; they never run twice (answered from the journal or deterministic)
        expect(view.calls.filter((c) => c.capability !== "net.fetch").every((c) => !c.reexecuted), tag).toBe(true)
      }
      // calls that ran twice although not on the killed runner: a runner that dropped its shards (a
      // lock refresh timed out under load) re-runs its in-flight calls too; say so if it happens
      const others = (yield* Effect.forEach(results, (r) => Runner.runStatus(r.runId).pipe(Effect.provide(client))))
        .flatMap((v, i) => v.calls.filter((c) => c.capability === "net.fetch" && c.reexecuted && !(c.step_id === "b" && victimTags.includes(TAGS[i]))).map((c) => `${TAGS[i]}/${c.step_id}`))
      // (with no such drop, every call but the killed runner's in-flight ones ran exactly once)
      const stderr = runners.map((x) => x.stderr()).join("\n")
      if (!stderr.includes("Shard lock storage is unhealthy")) expect(others, `reexecuted besides the killed runner's in-flight calls; runner stderr:\n${stderr}`).toEqual([])
      expect(victimTags.length).toBeGreaterThan(0)
    }), 150_000)
})
