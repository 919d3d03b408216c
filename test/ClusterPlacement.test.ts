/**
 * Placement on a real PostgreSQL: a step needing `llm.call` runs only on the runner started with
 * it (and with the model key); a step no live runner serves waits, `workflow show` says so, and it
 * runs as soon as such a runner joins.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Cluster from "../src/Cluster.js"
import { parsePolicy } from "../src/Policy.js"
import * as Telemetry from "../src/Telemetry.js"
import * as Runner from "../src/WorkflowRunner.js"
import { boruna } from "./support/BuiltCli.js"
import * as LoopbackServer from "./support/LoopbackServer.js"
import * as Pg from "./support/Postgres.js"
import { wfDir } from "./support/WorkflowDir.js"

const KEY = "sk-test-placement-0123456789"
const POLICY_JSON = JSON.stringify({
  rules: { "net.fetch": { allow: true }, "llm.call": { allow: true } },
  net_policy: { allowed_domains: ["127.0.0.1"] }
})
const policy = Either.getOrThrow(parsePolicy(POLICY_JSON))

const fixture = Pg.suite("place", POLICY_JSON)

const WORKFLOW = {
  schema_version: 1,
  name: "fetch-think",
  version: "1",
  steps: {
    fetch: { kind: "source", source: "fetch.ax", capabilities: ["net.fetch"] },
    think: { kind: "source", source: "think.ax", capabilities: ["llm.call"], inputs: { page: "fetch.result" }, depends_on: ["fetch"] }
  },
  edges: []
}
const FILES = {
  "fetch.ax": `fn main() -> String !{net.fetch, step.input} { net.fetch(step.input("origin") ++ "/page") }\n`,
  "think.ax": `fn main() -> String !{llm.call, step.input} { llm.call("Summarise: " ++ step.input("page")) }\n`
}

/** A fake OpenAI-compatible endpoint that records the key it was called with. */
const fakeModel = LoopbackServer.server((req, body, res) => {
  const prompt = (JSON.parse(body) as { messages: Array<{ content: string }> }).messages[0].content
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({
    id: "c1", object: "chat.completion", model: "m",
    choices: [{ index: 0, message: { role: "assistant", content: `summary of ${prompt} (key ${req.headers.authorization === `Bearer ${KEY}` ? "ok" : "wrong"})` }, finish_reason: "stop" }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }
  }))
})

const client = (url: string) =>
  Runner.clientLayer(Cluster.clusterEngine({ url, clientOnly: true, shardingConfig: Cluster.fastFailover(Pg.LOCK_EXPIRY) }), Cluster.clientEnv(Runner.makeEnv())).pipe(
    Layer.provide(Telemetry.off),
    Layer.orDie
  )

/** The runner that owns the shard a step's `run` message went to. */
const ownerOfStep = (url: string, entityType: string): string =>
  fixture.pg.psql(url, `SELECT l.address FROM cluster_messages m JOIN cluster_locks l ON l.shard_id = m.shard_id WHERE m.entity_type = '${entityType}' AND m.tag = 'run'`).trim()

describe("placement", () => {
  it("a step's shard group: its placed capabilities and runner group; a runner serves every subset of its own", () => {
    expect(Cluster.placementGroup({ capabilities: ["llm.call", "step.input"] })).toBe("default+llm")
    expect(Cluster.placementGroup({ capabilities: ["net.fetch", "llm.call"], group: "gpu" })).toBe("gpu+llm+net")
    expect(Cluster.placementGroup({ capabilities: ["time.now"] })).toBe("default")
    expect(Cluster.runnerGroups({ capabilities: ["net.fetch"] })).toEqual(["default", "default+net"])
    expect(Cluster.runnerGroups({ capabilities: ["llm.call", "net.fetch"], group: "gpu" })).toEqual(
      ["default", "default+llm", "default+llm+net", "default+net", "gpu", "gpu+llm", "gpu+llm+net", "gpu+net"]
    )
    expect(Cluster.describeGroup("gpu+llm+net")).toBe("runner group gpu, capabilities llm.call, net.fetch")
  })

  it.scopedLive("the llm.call step runs only on the runner started with llm.call (and the key); the net.fetch step may run on either", () =>
    Effect.gen(function*() {
      const url = fixture.pg.database("llm_only")
      const origin = yield* LoopbackServer.server((_req, _b, res) => res.end("the page"))
      const model = yield* fakeModel
      const plain = yield* Effect.promise(() => Pg.startRunner({ url, policy: fixture.policyFile, capabilities: ["net.fetch"] }))
      const withModel = yield* Effect.promise(() =>
        Pg.startRunner({ url, policy: fixture.policyFile, capabilities: ["net.fetch", "llm.call"], env: { OPENAI_BASE_URL: `${model.origin}/v1`, OPENAI_API_KEY: KEY } })
      )
      yield* Effect.promise(() => Pg.settled(fixture.pg, url, [plain.address, withModel.address]))
      const dir = wfDir(WORKFLOW, FILES)
      const runs = yield* Effect.forEach(["a", "b", "c"], (tag) =>
        Runner.startRun({ path: dir, policy, live: true, inputs: { origin: origin.origin, tag } })).pipe(Effect.provide(client(url)))
      for (const r of runs) {
        expect(r.status, r.error ?? "").toBe("completed")
        expect(r.outputs.think).toBe(JSON.stringify({ String: "summary of Summarise: the page (key ok)" }))
      }
      expect(model.requests).toHaveLength(3)
      // every llm step went to the group only the model runner serves
      expect(ownerOfStep(url, "Workflow/boruna/step@default+llm").split("\n").every((a) => a === withModel.address)).toBe(true)
      const groups = fixture.pg.psql(url, `SELECT runner FROM cluster_runners WHERE address = '${plain.address}'`)
      expect(groups).not.toContain("llm")
    }), 120_000)

  it.scopedLive("a step no live runner serves waits, show says so, and it runs when such a runner joins", () =>
    Effect.gen(function*() {
      const url = fixture.pg.database("waiting")
      const origin = yield* LoopbackServer.server((_req, _b, res) => res.end("the page"))
      const model = yield* fakeModel
      const plain = yield* Effect.promise(() => Pg.startRunner({ url, policy: fixture.policyFile, capabilities: ["net.fetch"] }))
      yield* Effect.promise(() => Pg.settled(fixture.pg, url, [plain.address]))
      const dir = wfDir(WORKFLOW, FILES)
      const run = yield* Runner.startRun({ path: dir, policy, live: true, inputs: { origin: origin.origin, tag: "w" } }).pipe(Effect.provide(client(url)), Effect.fork)
      const runId = yield* Pg.eventually(
        Effect.sync(() => {
          const row = fixture.pg.psql(url, `SELECT run_id FROM boruna_wf_steps WHERE step_id = 'think' AND error_kind = 'placement'`).trim()
          return row === "" ? undefined : row
        }),
        30_000,
        "the think step to wait for a runner"
      )
      const show = yield* Effect.promise(() => boruna(["workflow", "show", runId, "--cluster", url]))
      expect(show.code, show.stderr).toBe(0)
      expect(show.stdout).toMatch(/think <- fetch +pending/)
      expect(show.stdout).toContain("placement: waiting: no live runner serves capabilities llm.call")
      expect(model.requests).toHaveLength(0)
      // a runner with llm.call joins: the step runs there
      const withModel = yield* Effect.promise(() =>
        Pg.startRunner({ url, policy: fixture.policyFile, capabilities: ["net.fetch", "llm.call"], env: { OPENAI_BASE_URL: `${model.origin}/v1`, OPENAI_API_KEY: KEY } })
      )
      const r = yield* Fiber.join(run).pipe(Effect.timeout("40 seconds"))
      expect(r.status, r.error ?? "").toBe("completed")
      expect(model.requests).toHaveLength(1)
      expect(ownerOfStep(url, "Workflow/boruna/step@default+llm")).toBe(withModel.address)
    }), 120_000)
})
