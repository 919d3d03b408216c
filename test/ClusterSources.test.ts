/**
 * A runner needs no copy of the workflow directory: the step sources are stored with the run at
 * submit (boruna_wf_sources) and every runner compiles from them. A `boruna runner` started in an
 * empty temporary directory executes a run whose directory the client deletes while step a's call
 * is in flight: steps b and c (and a) run from the stored sources, with the outputs of a
 * single-machine run.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import type * as Http from "node:http"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Cluster from "../src/Cluster.js"
import { parsePolicy } from "../src/Policy.js"
import * as Telemetry from "../src/Telemetry.js"
import { sqliteEngine } from "../src/WorkflowEngine.js"
import * as Runner from "../src/WorkflowRunner.js"
import * as LoopbackServer from "./support/LoopbackServer.js"
import * as Pg from "./support/Postgres.js"
import { threeSteps } from "./support/ThreeSteps.js"
import { wfDir } from "./support/WorkflowDir.js"

const POLICY_JSON = JSON.stringify({ rules: { "net.fetch": { allow: true } }, net_policy: { allowed_domains: ["127.0.0.1"] } })
const policy = Either.getOrThrow(parsePolicy(POLICY_JSON))

const fixture = Pg.suite("csrc", POLICY_JSON)

const { WORKFLOW, FILES } = threeSteps("stored-sources", { a: "a.ax", b: "steps/b.ax", c: "steps/c.ax" })
const answer = (url: string): string => `ok:${url.split("?")[0]}`

describe("a runner without the workflow directory", () => {
  it.scopedLive("runner in an empty directory, the workflow directory deleted mid-run: every step runs from the stored sources, outputs equal a single-machine run", () =>
    Effect.gen(function*() {
      const refDir = wfDir(WORKFLOW, FILES)
      const refOrigin = yield* LoopbackServer.server((req, _b, res) => res.end(answer(req.url ?? "")))
      const [reference] = yield* Effect.forEach(["s1"], (tag) => Runner.startRun({ path: refDir, policy, live: true, inputs: { origin: refOrigin.origin, tag } })).pipe(
        Effect.provide(Runner.layer(sqliteEngine(mkdtempSync(join(tmpdir(), "boruna-data-")))).pipe(Layer.provide(Telemetry.off), Layer.orDie))
      )
      expect(reference.status).toBe("completed")

      const url = fixture.pg.database("sources")
      const held: Array<{ url: string; res: Http.ServerResponse }> = []
      let holding = true
      const origin = yield* LoopbackServer.server((req, _b, res) => {
        const u = req.url ?? ""
        if (holding && u.startsWith("/a/")) held.push({ url: u, res })
        else res.end(answer(u))
      })
      // the runner's working directory: empty, and not where the client's workflow directory is
      const elsewhere = mkdtempSync(join(tmpdir(), "boruna-runner-cwd-"))
      const runner = yield* Effect.promise(() => Pg.startRunner({ url, policy: fixture.policyFile, cwd: elsewhere }))
      yield* Effect.promise(() => Pg.settled(fixture.pg, url, [runner.address]))
      const client = Runner.clientLayer(Cluster.clusterEngine({ url, clientOnly: true, shardingConfig: Cluster.fastFailover(Pg.LOCK_EXPIRY) })).pipe(
        Layer.provide(Telemetry.off),
        Layer.orDie
      )
      const dir = wfDir(WORKFLOW, FILES)
      const run = yield* Runner.startRun({ path: dir, policy, live: true, inputs: { origin: origin.origin, tag: "s1" } }).pipe(Effect.provide(client), Effect.fork)
      yield* Pg.eventually(Effect.sync(() => (held.length === 1 ? true : undefined)), 30_000, "step a's call")
      // the directory goes away while step a is in flight: b and c have not been compiled yet
      rmSync(dir, { recursive: true, force: true })
      expect(existsSync(dir)).toBe(false)
      holding = false
      for (const h of held) h.res.end(answer(h.url))

      const r = yield* Fiber.join(run).pipe(Effect.timeout("60 seconds"))
      expect(r.status, `${r.error ?? ""}\nrunner stderr:\n${runner.stderr()}`).toBe("completed")
      expect(r.outputs).toEqual(reference.outputs)
      const view = yield* Runner.runStatus(r.runId).pipe(Effect.provide(client))
      expect(view.sources.map((s) => [s.step_id, s.path, s.source])).toEqual([["a", "a.ax", FILES["a.ax"]], ["b", "steps/b.ax", FILES["steps/b.ax"]], ["c", "steps/c.ax", FILES["steps/c.ax"]]])
      expect(view.steps.map((s) => [s.step_id, s.status]).sort()).toEqual([["a", "completed"], ["b", "completed"], ["c", "completed"]])
      for (const s of ["a", "b", "c"]) expect(origin.requests.filter((q) => q.url.split("?")[0] === `/${s}/s1`).length, s).toBe(1)
    }), 120_000)
})
