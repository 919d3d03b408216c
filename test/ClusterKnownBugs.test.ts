/**
 * The known @effect/cluster issues of the 0.60.2 line, on a real PostgreSQL:
 *
 * - Effect-TS/effect#6248: after a rolling restart, `cluster_messages` stops being consumed while
 *   the runners look healthy. Test: restart both runners one after the other (new addresses, as a
 *   deploy does) with runs paused across the restart, then answer them and submit new runs: all
 *   complete. (With boruna's configuration — table shard locks, every ShardingConfig value set —
 *   the stall did not reproduce here; the test stays as the regression check, and the runners'
 *   reconciler is the mitigation should it come back.)
 * - #7464: a routing error during shutdown (`EntityNotAssignedToRunner`, turned into a defect by
 *   `Effect.orDie(client.activity(…))`) is stored, with `CaptureDefects`, as a terminal failure.
 *   Test: the same defect in a real engine on PostgreSQL completes an unannotated workflow as
 *   failed for good, while a workflow annotated `SuspendOnFailure` (what boruna's probe uses) is
 *   suspended with the cause kept, and a resume finishes it.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as ClusterError from "@effect/cluster/ClusterError"
import { EntityAddress } from "@effect/cluster/EntityAddress"
import { EntityId } from "@effect/cluster/EntityId"
import { EntityType } from "@effect/cluster/EntityType"
import * as ShardId from "@effect/cluster/ShardId"
import * as Workflow from "@effect/workflow/Workflow"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
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
  policyFile = join(tmpdir(), `boruna-kb-policy-${process.pid}.json`)
  writeFileSync(policyFile, JSON.stringify({ rules: { "net.fetch": { allow: true } }, net_policy: { allowed_domains: ["127.0.0.1"] } }))
}, 120_000)
afterAll(() => {
  Pg.stopAll()
  pg?.stop()
})

const complete = (id: string, timeoutMs: number) =>
  Pg.eventually(
    Effect.gen(function*() {
      const r = yield* Cluster.ProbeWorkflow.poll(yield* Cluster.ProbeWorkflow.executionId({ id, origin: "", steps: 0 }))
      return r?._tag === "Complete" ? r.exit : undefined
    }),
    timeoutMs,
    `run ${id} to complete`
  )

describe("#6248: a rolling restart does not stall message consumption", () => {
  it.scopedLive("restart both runners one after the other: paused runs continue when answered, new runs complete", () =>
    Effect.gen(function*() {
      const url = pg.database("rolling")
      const origin = yield* LoopbackServer.server((req, _b, res) => res.end(`ok ${req.url}`))
      const start = () => Pg.startRunner({ url, policy: policyFile, lockExpiry: 5 })
      let runners = yield* Effect.promise(() => Promise.all([start(), start()]))
      yield* Effect.promise(() => Pg.settled(pg, url, runners.map((r) => r.address)))
      const client = Pg.client(url)
      yield* Effect.forEach(["p1", "p2"], (id) => Cluster.ProbeWorkflow.execute({ id, origin: origin.origin, steps: 2, gateAfter: 1 }, { discard: true })).pipe(Effect.provide(client))
      yield* Effect.forEach(["p1", "p2"], (id) =>
        Pg.eventually(
          Effect.map(Effect.flatMap(Cluster.ProbeWorkflow.executionId({ id, origin: "", steps: 0 }), Cluster.ProbeWorkflow.poll), (r) => (r?._tag === "Suspended" ? true : undefined)),
          30_000,
          `${id} to pause`
        )).pipe(Effect.provide(client))
      // the rolling restart: one runner at a time, each replaced by a new process at a new address
      for (let i = 0; i < 2; i++) {
        const old = runners[0]
        old.child.kill("SIGTERM")
        expect((yield* Effect.promise(() => old.exited)).code).toBe(143)
        const fresh = yield* Effect.promise(start)
        runners = [runners[1], fresh]
        yield* Effect.promise(() => Pg.settled(pg, url, runners.map((r) => r.address)))
      }
      yield* Effect.forEach(["p1", "p2"], (id) => Cluster.approveProbe(id, "ops")).pipe(Effect.provide(client))
      yield* Effect.forEach(["n1", "n2", "n3"], (id) => Cluster.ProbeWorkflow.execute({ id, origin: origin.origin, steps: 2 }, { discard: true })).pipe(Effect.provide(client))
      const exits = yield* Effect.forEach(["p1", "p2", "n1", "n2", "n3"], (id) => complete(id, 30_000), { concurrency: "unbounded" }).pipe(Effect.provide(client))
      expect(exits.map((e) => e._tag)).toEqual(["Success", "Success", "Success", "Success", "Success"])
      // every call made once, also the ones before the restart
      const counts = new Map<string, number>()
      for (const q of origin.requests) counts.set(q.url, (counts.get(q.url) ?? 0) + 1)
      expect([...counts.values()].every((n) => n === 1)).toBe(true)
      expect(counts.size).toBe(10)
    }), 150_000)
})

describe("#7464: a routing defect during shutdown", () => {
  // the defect the engine raises when a message cannot be routed while shards move
  const routingDefect = () =>
    Effect.die(new ClusterError.EntityNotAssignedToRunner({
      address: new EntityAddress({ entityType: EntityType.make("Workflow/x"), entityId: EntityId.make("e"), shardId: ShardId.make("default", 1) })
    }))
  const failures = new Map<string, number>()
  const body = (name: string) => ({ id }: { readonly id: string }) =>
    Effect.gen(function*() {
      const n = failures.get(`${name}/${id}`) ?? 0
      failures.set(`${name}/${id}`, n + 1)
      if (n === 0) return yield* routingDefect()
      return `done ${id}`
    })
  const Plain = Workflow.make({ name: "kb/plain", payload: { id: Schema.String }, success: Schema.String, idempotencyKey: ({ id }) => id })
  const Suspending = Workflow.make({ name: "kb/suspending", payload: { id: Schema.String }, success: Schema.String, idempotencyKey: ({ id }) => id })
    .annotate(Workflow.SuspendOnFailure, true)

  it.scopedLive("unannotated: stored as a terminal failure; SuspendOnFailure: suspended with the cause, and a resume completes it", () =>
    Effect.gen(function*() {
      const url = pg.database("routing")
      const port = yield* Effect.promise(() => Pg.freePort())
      const engine = Cluster.clusterEngine({
        url,
        clientOnly: false,
        listen: { host: "127.0.0.1", port },
        advertise: { host: "127.0.0.1", port },
        shardingConfig: Cluster.fastFailover(5)
      })
      const layer = Layer.mergeAll(Plain.toLayer(body("plain")), Suspending.toLayer(body("suspending"))).pipe(Layer.provideMerge(engine))
      yield* Effect.gen(function*() {
        const plainId = yield* Plain.execute({ id: "a" }, { discard: true })
        const suspId = yield* Suspending.execute({ id: "a" }, { discard: true })
        const plain = yield* Pg.eventually(Plain.poll(plainId), 20_000, "the plain run's result")
        expect(plain._tag).toBe("Complete")
        if (plain._tag === "Complete") expect(plain.exit._tag).toBe("Failure")
        const susp = yield* Pg.eventually(Suspending.poll(suspId), 20_000, "the annotated run's result")
        expect(susp._tag).toBe("Suspended")
        if (susp._tag === "Suspended") expect(String(susp.cause)).toContain("EntityNotAssignedToRunner")
        // the mitigation's second half: a resume (what the reconciler does) runs it again
        yield* Suspending.resume(suspId)
        const after = yield* Pg.eventually(
          Effect.map(Suspending.poll(suspId), (r) => (r?._tag === "Complete" ? r : undefined)),
          20_000,
          "the annotated run to complete after resume"
        )
        expect(after.exit._tag).toBe("Success")
        // the unannotated one stays failed: a resume does not revive a terminal failure
        yield* Plain.resume(plainId)
        yield* Effect.sleep("1500 millis")
        const still = yield* Plain.poll(plainId)
        expect(still?._tag === "Complete" && still.exit._tag).toBe("Failure")
        expect(failures.get("plain/a")).toBe(1)
      }).pipe(Effect.provide(layer))
    }), 90_000)
})
