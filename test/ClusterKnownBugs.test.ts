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
 *   suspended with the cause kept, and a resume finishes it. And on real runs: an in-process
 *   `Cluster.serve` runner whose engine raises that routing error once when the run dispatches
 *   step b (the run dies) and once in step c's capability call (the step dies): both are
 *   suspended (`boruna/run` and `boruna/step` are annotated), the runner's reconciler resumes
 *   them, every run completes with the single-machine outputs and each call is made once.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as ClusterError from "@effect/cluster/ClusterError"
import { EntityAddress } from "@effect/cluster/EntityAddress"
import { EntityId } from "@effect/cluster/EntityId"
import { EntityType } from "@effect/cluster/EntityType"
import * as ShardId from "@effect/cluster/ShardId"
import * as Workflow from "@effect/workflow/Workflow"
import * as WorkflowEngine from "@effect/workflow/WorkflowEngine"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Cluster from "../src/Cluster.js"
import { parsePolicy } from "../src/Policy.js"
import * as Telemetry from "../src/Telemetry.js"
import { sqliteEngine } from "../src/WorkflowEngine.js"
import * as Runner from "../src/WorkflowRunner.js"
import { threeSteps } from "./support/ThreeSteps.js"
import { wfDir } from "./support/WorkflowDir.js"
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
      const start = () => Pg.startRunner({ url, policy: policyFile })
      let runners = yield* Effect.promise(() => Promise.all([start(), start()]))
      const gone: Array<Pg.RunnerProcess> = []
      yield* Effect.promise(() => Pg.settled(pg, url, runners.map((r) => r.address)))
      const client = Pg.client(url)
      yield* Effect.forEach(["p1", "p2"], (id) => Cluster.ProbeWorkflow.execute({ id, origin: origin.origin, steps: 2, gateAfter: 1 }, { discard: true })).pipe(Effect.provide(client))
      yield* Effect.forEach(["p1", "p2"], (id) =>
        Pg.eventually(
          Effect.map(Effect.flatMap(Cluster.ProbeWorkflow.executionId({ id, origin: "", steps: 0 }), Cluster.ProbeWorkflow.poll), (r) => (r?._tag === "Suspended" ? true : undefined)),
          30_000,
          `${id} to pause`
        )).pipe(Effect.provide(client))
      // the probe's journal (boruna_cluster_calls counts each call's executions)
      const executions = (): Map<string, number> =>
        new Map(pg.psql(url, "SELECT call_key, executions FROM boruna_cluster_calls").trim().split("\n").filter((l) => l !== "").map((l) => {
          const [k, n] = l.split("\t")
          return [`/probe/${k}`, Number(n)] as const
        }))
      const beforeRestart = executions()
      expect([...beforeRestart.keys()].sort()).toEqual(["/probe/p1/0", "/probe/p2/0"])
      // the rolling restart: one runner at a time, each replaced by a new process at a new address
      for (let i = 0; i < 2; i++) {
        const old = runners[0]
        gone.push(old)
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
      const counts = new Map<string, number>()
      for (const q of origin.requests) counts.set(q.url, (counts.get(q.url) ?? 0) + 1)
      expect(counts.size).toBe(10)
      // the calls completed before the restart never ran again; the origin saw no call more often
      // than the journal counts its starts (a start interrupted before its request left counts too)
      const after = executions()
      for (const [k, n] of beforeRestart) expect(after.get(k), k).toBe(n)
      for (const [k, n] of counts) expect(n, k).toBeLessThanOrEqual(after.get(k) ?? 0)
      // every call made once, unless a runner dropped its shards (a lock refresh timed out under
      // load): then its in-flight calls ran again, which is at-least-once, not a lost answer
      const stderr = [...runners, ...gone].map((r) => r.stderr()).join("\n")
      if (!stderr.includes("Shard lock storage is unhealthy")) {
        expect([...counts.entries()].filter(([, n]) => n !== 1), `calls made more than once; runner stderr:\n${stderr}`).toEqual([])
      }
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
        shardingConfig: Cluster.fastFailover(Pg.LOCK_EXPIRY)
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

describe("#7464 on real runs: the routing defect in a boruna run and in a step", () => {
  const POLICY_JSON = JSON.stringify({ rules: { "net.fetch": { allow: true } }, net_policy: { allowed_domains: ["127.0.0.1"] } })
  const policy = Either.getOrThrow(parsePolicy(POLICY_JSON))
  const { WORKFLOW, FILES } = threeSteps("routing-defects")
  const TAGS = ["r1", "r2"]
  const answer = (u: string): string => `ok:${u.split("?")[0]}`
  const routingError = () =>
    new ClusterError.EntityNotAssignedToRunner({
      address: new EntityAddress({ entityType: EntityType.make("Workflow/boruna/step"), entityId: EntityId.make("e"), shardId: ShardId.make("default", 1) })
    })

  it.scopedLive("the run and the step are suspended, not failed; the reconciler resumes both; outputs equal a single-machine run, each call once", () =>
    Effect.gen(function*() {
      const dir = wfDir(WORKFLOW, FILES)
      const refOrigin = yield* LoopbackServer.server((req, _b, res) => res.end(answer(req.url ?? "")))
      const reference = yield* Effect.forEach(TAGS, (tag) => Runner.startRun({ path: dir, policy, live: true, inputs: { origin: refOrigin.origin, tag } })).pipe(
        Effect.provide(Runner.layer(sqliteEngine(mkdtempSync(join(tmpdir(), "boruna-data-")))).pipe(Layer.provide(Telemetry.off), Layer.orDie))
      )
      expect(reference.map((r) => r.status)).toEqual(["completed", "completed"])

      const url = pg.database("routing_runs")
      const origin = yield* LoopbackServer.server((req, _b, res) => res.end(answer(req.url ?? "")))
      // the engine as the run and step bodies see it: the routing error ClusterWorkflowEngine turns
      // into a defect (Effect.orDie around the entity client), once per run where the run dispatches
      // step b, and once per run in step c's capability call
      const dispatchB = new Set<string>()
      const callC = new Set<string>()
      const wrapEngine = (e: Parameters<NonNullable<Cluster.ServeOptions["wrapEngine"]>>[0]): ReturnType<NonNullable<Cluster.ServeOptions["wrapEngine"]>> => ({
        ...e,
        execute: (workflow, options) => {
          const p = options.payload as { readonly runId?: unknown; readonly stepId?: unknown }
          const key = `${String(p.runId)}/${String(p.stepId)}`
          // net.fetch steps are placed: boruna/step@default+net
          if (workflow.name.startsWith(Runner.StepWorkflow.name) && p.stepId === "b" && !dispatchB.has(key)) {
            dispatchB.add(key)
            return Effect.die(routingError())
          }
          return e.execute(workflow, options)
        },
        activityExecute: (activity, attempt) =>
          Effect.flatMap(Effect.serviceOption(WorkflowEngine.WorkflowInstance), (instance) => {
            const key = `${Option.match(instance, { onNone: () => "", onSome: (i) => i.executionId })}/${activity.name}`
            if (activity.name.startsWith("cap/c/") && activity.name.endsWith("/net.fetch") && !callC.has(key)) {
              callC.add(key)
              return Effect.die(routingError())
            }
            return e.activityExecute(activity, attempt)
          })
      })
      const port = yield* Effect.promise(() => Pg.freePort())
      let ready = false
      const runner = yield* Effect.forkScoped(Cluster.serve({
        url,
        listen: { host: "127.0.0.1", port },
        advertise: { host: "127.0.0.1", port },
        policy,
        shardingConfig: Cluster.fastFailover(Pg.LOCK_EXPIRY),
        reconcileEvery: "1 second",
        wrapEngine,
        onReady: () => {
          ready = true
        }
      }))
      yield* Pg.eventually(Effect.sync(() => (ready ? true : undefined)), 30_000, "the in-process runner to be ready")
      const client = Runner.clientLayer(Cluster.clusterEngine({ url, clientOnly: true, shardingConfig: Cluster.fastFailover(Pg.LOCK_EXPIRY) })).pipe(
        Layer.provide(Telemetry.off),
        Layer.orDie
      )
      yield* Effect.gen(function*() {
        const runIds = yield* Effect.forEach(TAGS, (tag) => Runner.submitRun({ path: dir, policy, live: true, inputs: { origin: origin.origin, tag } }))
        // ends when boruna's store has the run completed or failed, or the engine holds a terminal
        // failure of the run (what #7464 leaves without the annotation: the store still says running)
        const ended = (runId: string) =>
          Pg.eventually(
            Effect.gen(function*() {
              const r = yield* Runner.RunWorkflow.poll(yield* Runner.RunWorkflow.executionId({ runId }))
              if (r?._tag === "Complete" && r.exit._tag === "Failure") return `engine: terminal failure`
              const view = yield* Runner.runStatus(runId)
              return view.run.status === "completed" || view.run.status === "failed" ? view.run.status : undefined
            }),
            60_000,
            `run ${runId} to end`
          )
        const statuses = yield* Effect.forEach(runIds, ended, { concurrency: "unbounded" })
        expect(statuses).toEqual(["completed", "completed"])
        expect(dispatchB.size).toBe(TAGS.length)
        expect(callC.size).toBe(TAGS.length)
        for (const [i, runId] of runIds.entries()) {
          const tag = TAGS[i]
          const view = yield* Runner.runStatus(runId)
          const outputs = Object.fromEntries(view.steps.filter((s) => s.status === "completed").map((s) => [s.step_id, s.output_json]))
          expect(outputs, tag).toEqual(reference[i].outputs)
          for (const s of ["a", "b", "c"]) expect(origin.requests.filter((q) => q.url.split("?")[0] === `/${s}/${tag}`).length, `${tag}/${s}`).toBe(1)
          const fetches = view.calls.filter((c) => c.capability === "net.fetch").map((c) => [c.step_id, c.executions, c.reexecuted])
          expect(fetches, tag).toEqual([["a", 1, false], ["b", 1, false], ["c", 1, false]])
          // the reconciler resumed the step suspended by the defect and said so in the run's history
          const reconciled = view.history.filter((h) => h.event === "reconciled").map((h) => h.detail)
          expect(reconciled.some((d) => d.startsWith("a step was suspended by an engine defect") && d.includes("EntityNotAssignedToRunner")), `${tag}: ${reconciled.join(" | ")}`).toBe(true)
        }
      }).pipe(Effect.provide(client))
      yield* Fiber.interrupt(runner)
    }), 120_000)
})
