import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Capabilities from "../src/Capabilities.js"
import type { CapabilityName } from "../src/Capability.js"
import { HandlerFailure } from "../src/Errors.js"
import type { CallSite, Event } from "../src/Event.js"
import * as EventLog from "../src/EventLog.js"
import * as EventLogFile from "../src/EventLogFile.js"
import * as Gateway from "../src/Gateway.js"
import * as Handlers from "../src/Handlers.js"
import * as Live from "../src/Live.js"
import { allowAll, parsePolicy, type Policy } from "../src/Policy.js"
import * as Replay from "../src/Replay.js"
import { AxFloat, type Value } from "../src/Value.js"
import { borunaInProcess } from "./support/InProcessCli.js"
import { server } from "./support/LoopbackServer.js"

const policyOf = (json: unknown): Policy => Either.getOrThrow(parsePolicy(JSON.stringify(json)))

const site = (line: number): CallSite => ({ file: "flow.ax", line, col: 5, fn: "main" })

/** A small program over the gateway: three calls, the second one's failure handled. */
const program = (variant = "a") =>
  Effect.gen(function*() {
    const page = yield* Gateway.call("net.fetch", [`https://example.com/${variant}`], site(1))
    const failed = yield* Effect.either(Gateway.call("fs.read", ["missing.txt"], site(2)))
    const t = yield* Gateway.call("time.now", [], site(3))
    return { page, failed: Either.isLeft(failed) ? failed.left.message : "ok", t }
  })

/** Handlers that count their invocations, with one failing capability. */
const counting = () => {
  const calls: Array<CapabilityName> = []
  const h = (cap: CapabilityName, f: (args: ReadonlyArray<Value>) => Effect.Effect<Value, HandlerFailure>): Handlers.Handler => (args) =>
    Effect.suspend(() => {
      calls.push(cap)
      return f(args)
    })
  const layer = Handlers.make({
    "net.fetch": h("net.fetch", (args) => Effect.succeed(`page of ${String(args[0])} at ${calls.length}`)),
    "fs.read": h("fs.read", () => Effect.fail(new HandlerFailure({ message: "no such file" }))),
    "time.now": h("time.now", () => Effect.succeed(1_234_567))
  })
  return { calls, layer }
}

const record = <A, E>(policy: Policy, eff: Effect.Effect<A, E, Gateway.Gateway>) =>
  Effect.gen(function*() {
    const { calls, layer } = counting()
    const rt = Gateway.layer(policy).pipe(Layer.provideMerge(Layer.merge(layer, EventLog.memory)))
    const [out, events] = yield* Effect.provide(
      Effect.zip(Effect.either(eff), Effect.map(EventLog.EventLog, (l) => l.events())),
      rt
    )
    return { out, events, calls }
  })

const replay = <A, E>(source: Replay.ReplaySource, eff: Effect.Effect<A, E, Gateway.Gateway>, policy?: Policy) =>
  Effect.provide(
    Effect.gen(function*() {
      const out = yield* Effect.either(eff)
      const verdict = yield* Replay.verdict
      const budget = (yield* Gateway.Gateway) as Gateway.GatewayInstance
      return { out, verdict, budget: budget.budget }
    }),
    Replay.runtime(source, policy === undefined ? {} : { policy })
  )

const header = (policy: Policy) => EventLogFile.makeHeader({ programHash: "sha256:prog", policy, sourceFile: "flow.ax" })
const logOf = (policy: Policy, events: ReadonlyArray<Event>): EventLogFile.RecordedLog => ({ file: "run.json", header: header(policy), events })

describe("Replay.layer", () => {
  it.effect("answers every call from the log: same output, recorded error re-raised with its message, verdict identical", () =>
    Effect.gen(function*() {
      const live = yield* record(allowAll, program())
      expect(live.calls).toEqual(["net.fetch", "fs.read", "time.now"])
      const r = yield* replay(logOf(allowAll, live.events), program())
      expect(r.out).toEqual(live.out)
      expect(Either.getOrThrow(r.out).failed).toBe("fs.read failed: no such file")
      expect(r.verdict).toEqual({ _tag: "Identical", events: 6 })
      expect(Replay.formatVerdict(r.verdict)).toEqual(["replay: identical (6 events)"])
    }))

  it.effect("a recorded denial from inside a handler comes back as Denied with the same message", () =>
    Effect.gen(function*() {
      const events: ReadonlyArray<Event> = [
        { type: "CapCall", capability: "net.fetch", args: ["http://10.0.0.1/"] },
        { type: "CapError", capability: "net.fetch", kind: "denied", message: "capability denied: net.fetch: private address refused" }
      ]
      const r = yield* replay(logOf(allowAll, events), Gateway.call("net.fetch", ["http://10.0.0.1/"]))
      expect(Either.isLeft(r.out)).toBe(true)
      if (Either.isLeft(r.out)) {
        expect(r.out.left._tag).toBe("Denied")
        expect(r.out.left.message).toBe("capability denied: net.fetch: private address refused")
      }
      expect(r.verdict._tag).toBe("Identical")
    }))

  it.effect("changed arguments: a divergence with event index, expected and actual call, and both source locations", () =>
    Effect.gen(function*() {
      const live = yield* record(allowAll, program("a"))
      const r = yield* replay(logOf(allowAll, live.events), program("b"))
      expect(r.verdict._tag).toBe("Diverged")
      if (r.verdict._tag !== "Diverged") return
      const d = r.verdict.divergence
      expect(d.index).toBe(0)
      expect(d.kind).toBe("call")
      expect(Replay.formatVerdict(r.verdict)).toEqual([
        "replay: diverged at event #0: the program's capability call differs from the recorded one",
        `  expected: net.fetch("https://example.com/a")`,
        `  actual:   net.fetch("https://example.com/b")`,
        "  at flow.ax:1:5 in main",
        "  recorded at flow.ax:1:5 in main"
      ])
      // the diverging call failed, and no later call was answered
      expect(Either.isLeft(r.out)).toBe(true)
      if (Either.isLeft(r.out)) expect(r.out.left.message).toBe(`net.fetch failed: replay diverged at event #0: the log records net.fetch("https://example.com/a") here`)
    }))

  it.effect("a different capability later on is reported at its recorded event index", () =>
    Effect.gen(function*() {
      const live = yield* record(allowAll, program())
      const changed = Effect.gen(function*() {
        yield* Gateway.call("net.fetch", ["https://example.com/a"], site(1))
        yield* Gateway.call("random", [], site(7))
      })
      const r = yield* replay(logOf(allowAll, live.events), changed)
      expect(r.verdict._tag === "Diverged" && r.verdict.divergence).toMatchObject({
        index: 2,
        kind: "call",
        expected: { type: "CapCall", capability: "fs.read", args: ["missing.txt"] },
        actual: { type: "CapCall", capability: "random", args: [], site: site(7) }
      })
    }))

  it.effect("more calls than the log holds, or fewer, are divergences too", () =>
    Effect.gen(function*() {
      const live = yield* record(allowAll, Gateway.call("time.now", []))
      const more = yield* replay(
        logOf(allowAll, live.events),
        Effect.zip(Gateway.call("time.now", []), Effect.either(Gateway.call("time.now", [], site(9)))).pipe(
          Effect.zipLeft(Effect.either(Gateway.call("random", [])))
        )
      )
      expect(Either.getOrThrow(more.out)[1]).toEqual(Either.left(expect.objectContaining({ message: "time.now failed: replay diverged at event #2: the log records no further call" })))
      expect(more.verdict._tag === "Diverged" && more.verdict.divergence).toMatchObject({ index: 2, kind: "extra-call" })
      expect(Replay.formatVerdict(more.verdict)).toContain("  actual:   time.now()")
      const fewer = yield* replay(logOf(allowAll, live.events), Effect.void)
      expect(fewer.verdict._tag === "Diverged" && fewer.verdict.divergence).toMatchObject({ index: 0, kind: "missing" })
    }))

  it.effect("a different recorded result changes the output (results are the program's inputs)", () =>
    Effect.gen(function*() {
      const live = yield* record(allowAll, program())
      const tampered = live.events.map((e) => (e.type === "CapResult" && e.capability === "time.now" ? { ...e, result: 1_234_568 } : e))
      const r = yield* replay(logOf(allowAll, tampered), program())
      expect(Either.getOrThrow(r.out).t).toBe(1_234_568)
      expect(r.verdict._tag).toBe("Identical")
    }))

  it.effect("a log cut inside a call (no recorded result) is reported, not answered", () =>
    Effect.gen(function*() {
      const long = "x".repeat(200) // long enough that a generic report would add "(they first differ at …)"
      const events: ReadonlyArray<Event> = [{ type: "CapCall", capability: "random", args: [long], site: site(6) }]
      const r = yield* replay(logOf(allowAll, events), Gateway.call("random", [long], site(6)))
      expect(r.verdict._tag === "Diverged" && r.verdict.divergence).toMatchObject({ index: 0, kind: "incomplete" })
      // said once: no identical expected/actual pair, no character position
      if (r.verdict._tag === "Diverged") {
        expect(Replay.formatVerdict(r.verdict)).toEqual([
          "replay: diverged at event #0: the log ends inside this call (the recorded run stopped before its result)",
          `  call: random("${long}")`,
          "  at flow.ax:6:5 in main",
          "  recorded at flow.ax:6:5 in main"
        ])
      }
    }))
})

describe("Replay: budgets are charged once, under the recorded policy", () => {
  const limited = policyOf({ rules: { random: { allow: true, budget: 2 }, "time.now": { allow: false } } })
  const greedy = Effect.gen(function*() {
    const out: Array<string> = []
    for (let i = 0; i < 3; i++) {
      const r = yield* Effect.either(Gateway.call("random", []))
      out.push(Either.isRight(r) ? String((r.right as AxFloat).value) : r.left._tag)
    }
    const t = yield* Effect.either(Gateway.call("time.now", []))
    out.push(Either.isLeft(t) ? t.left._tag : "time")
    return out
  })

  it.effect("the same calls are refused at the same points, and the budget ends where the live run's did", () =>
    Effect.gen(function*() {
      const rnd = { n: 0 }
      const rt = Gateway.layer(limited).pipe(
        Layer.provideMerge(Layer.merge(Handlers.make({ random: () => Effect.sync(() => new AxFloat(++rnd.n / 10)) }), EventLog.memory))
      )
      const [out, events, used] = yield* Effect.provide(
        Effect.all([greedy, Effect.map(EventLog.EventLog, (l) => l.events()), Effect.map(Gateway.Gateway, (g) => (g as Gateway.GatewayInstance).budget.used("random"))]),
        rt
      )
      expect(out).toEqual(["0.1", "0.2", "BudgetExceeded", "Denied"])
      // the two refusals are events of their own, which the replay must reproduce
      expect(events.map((e) => e.type)).toEqual(["CapCall", "CapResult", "CapCall", "CapResult", "CapRefused", "CapRefused"])
      const r = yield* replay(logOf(limited, events), greedy)
      expect(Either.getOrThrow(r.out)).toEqual(out)
      expect(r.verdict).toEqual({ _tag: "Identical", events: 6 })
      expect(r.budget.used("random")).toBe(used)
      expect(rnd.n).toBe(2) // the live handler ran twice, and never during the replay
    }))

  it.effect("allow-all would let the refused call through, which is a divergence (why replay keeps the policy)", () =>
    Effect.gen(function*() {
      const live = yield* record(limited, Effect.either(Gateway.call("time.now", [], site(4))))
      expect(live.events).toEqual([
        { type: "CapRefused", capability: "time.now", args: [], kind: "denied", message: "capability denied: time.now: not granted by policy", site: site(4) }
      ])
      const r = yield* replay(logOf(limited, live.events), Gateway.call("time.now", [], site(4)), allowAll)
      expect(r.verdict._tag === "Diverged" && r.verdict.divergence.kind).toBe("allowed")
      if (r.verdict._tag === "Diverged") {
        expect(Replay.formatVerdict(r.verdict)).toEqual([
          "replay: diverged at event #0: the recorded run was refused this call, but this replay's policy lets it through",
          "  recorded: error[denied]: capability denied: time.now: not granted by policy",
          "  actual:   time.now()",
          "  at flow.ax:4:5 in main",
          "  recorded at flow.ax:4:5 in main"
        ])
      }
      // under the recorded policy the refusal is reproduced: identical
      const same = yield* replay(logOf(limited, live.events), Effect.either(Gateway.call("time.now", [], site(4))))
      expect(same.verdict).toEqual({ _tag: "Identical", events: 1 })
    }))

  it.effect("a replay whose policy refuses a call the recorded run made says the call was refused", () =>
    Effect.gen(function*() {
      const live = yield* record(allowAll, program())
      const r = yield* replay(logOf(allowAll, live.events), program(), policyOf({ rules: {} }))
      expect(Either.isLeft(r.out) && r.out.left._tag).toBe("Denied")
      expect(r.verdict._tag === "Diverged" && r.verdict.divergence.kind).toBe("refused")
      if (r.verdict._tag === "Diverged") {
        expect(Replay.formatVerdict(r.verdict)).toEqual([
          "replay: refused at event #0: this replay's policy refused a call the recorded run made",
          `  recorded: net.fetch("https://example.com/a")`,
          "  refused:  error[denied]: capability denied: net.fetch: not granted by policy",
          "  at flow.ax:1:5 in main",
          "  recorded at flow.ax:1:5 in main"
        ])
      }
    }))
})

describe("Replay.drift", () => {
  it("names the program, the policy and the capability set that differ", () => {
    const h = header(allowAll)
    expect(Replay.drift(h, { programHash: "sha256:prog", policy: allowAll })).toEqual([])
    const d = Replay.drift(h, { programHash: "sha256:other", policy: policyOf({ default_allow: true, rules: { random: { allow: false } } }) })
    expect(d.map((x) => x.what)).toEqual(["program", "policy"])
    expect(Replay.formatDrift(d[0])).toBe("replay: drift: the program differs from the recorded run (recorded sha256:prog, now sha256:other)")
    expect(Replay.drift({ ...h, capability_set_hash: "sha256:old" }, {}).map((x) => x.what)).toEqual(["capability_set"])
  })
})

// ---------------------------------------------------------------------------------------------
// TypeScript users: an Effect workflow recorded live against loopback servers, replayed offline

const workflow = (origin: string) =>
  Effect.gen(function*() {
    const topic = yield* Capabilities.Net.fetch(`${origin}/topic`)
    const answer = yield* Capabilities.Net.request("POST", `${origin}/answer`, JSON.stringify({ topic }))
    const at = yield* Capabilities.Clock.now
    const luck = yield* Capabilities.Random.next
    return `${topic} → ${answer} (t=${at}, luck=${luck})`
  })

const tsHeader = (policy: Policy) => EventLogFile.makeHeader({ programHash: "sha256:ts-workflow", policy, sourceFile: "workflow.ts" })

describe("Replay for TypeScript workflows", () => {
  it.effect("records a workflow live over loopback HTTP, then replays it with the server closed: identical output", () =>
    Effect.gen(function*() {
      const netPolicy = policyOf({
        rules: { "net.fetch": { allow: true, budget: 5 }, "time.now": { allow: true }, random: { allow: true } },
        net_policy: { allowed_domains: ["127.0.0.1"] }
      })
      const file = join(mkdtempSync(join(tmpdir(), "boruna-replay-")), "run.json")
      let served = 0
      const { live, origin } = yield* Effect.scoped(
        Effect.gen(function*() {
          const s = yield* server((req, body, res) => {
            served++
            res.writeHead(200, { "content-type": "text/plain" })
            res.end(req.url === "/topic" ? `topic-${process.pid}` : `echo ${body}`)
          })
          const rt = Capabilities.layer.pipe(
            Layer.provideMerge(Gateway.layer(netPolicy)),
            Layer.provideMerge(Layer.merge(Live.layer(netPolicy), EventLogFile.fileLayer(file, tsHeader(netPolicy))))
          )
          const out = yield* Effect.provide(workflow(s.origin), rt)
          return { live: out, origin: s.origin }
        })
      )
      expect(served).toBe(2)
      expect(live).toMatch(/^topic-\d+ → echo \{"topic":"topic-\d+"\} \(t=\d+, luck=0\.\d+/)

      // offline: the server is closed (a live fetch would fail), and the log comes from disk
      const refused = yield* Effect.either(
        Effect.provide(Capabilities.Net.fetch(`${origin}/topic`), Capabilities.runtime(netPolicy, Layer.orDie(Live.layer(netPolicy))))
      )
      expect(Either.isLeft(refused)).toBe(true)
      const log = yield* EventLogFile.readLog(file)
      const again = yield* Effect.provide(
        Effect.zip(workflow(origin), Replay.verdict),
        Replay.capabilities(log)
      )
      expect(again[0]).toBe(live)
      expect(again[1]).toEqual({ _tag: "Identical", events: 8 })
      expect(served).toBe(2)
    }))
})

// ---------------------------------------------------------------------------------------------
// the commands, in process: boruna run --record, boruna replay, boruna policy simulate

const AGENT = `fn fetch_page(url: String) -> String !{net.fetch} { net.fetch(url) }

fn main() -> String !{net.fetch, llm.call, time.now} {
    let page: String = fetch_page("https://api.example.com/weather")
    let s: String = llm.call("Summarise: " ++ page)
    let t: Int = time.now()
    s
}
`

const boruna = borunaInProcess

describe("CLI: boruna replay and boruna policy simulate", () => {
  it.effect("record, replay identically, then a changed program: drift and the first divergence, exit 1", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "boruna-cli-replay-"))
      const file = join(dir, "agent.ax")
      const log = join(dir, "run.json")
      writeFileSync(file, AGENT)
      const policy = join(dir, "policy.json")
      writeFileSync(policy, JSON.stringify({ rules: { "net.fetch": { allow: true }, "llm.call": { allow: true, budget: 2 }, "time.now": { allow: true } } }))
      const rec = yield* boruna(["run", file, "--policy", policy, "--record", log])
      expect(rec.code).toBe(0)
      const rep = yield* boruna(["replay", file, log])
      expect(rep).toEqual({ code: 0, stdout: rec.stdout + "replay: identical (6 events)\n", stderr: "" })

      const changed = join(dir, "changed.ax")
      writeFileSync(changed, AGENT.replace(`"Summarise: "`, `"Summarise briefly: "`))
      const div = yield* boruna(["replay", changed, log])
      expect(div.code).toBe(1)
      expect(div.stdout.split("\n")).toEqual([
        "replay: diverged at event #2: the program's capability call differs from the recorded one",
        `  expected: llm.call("Summarise: {\\"mock\\": true, \\"url\\": \\"https://api.example.com/weather\\"}")`,
        `  actual:   llm.call("Summarise briefly: {\\"mock\\": true, \\"url\\": \\"https://api.example.com/weather\\"}")`,
        "  (they first differ at character 20)",
        `  at ${changed}:5:21 in main`,
        `  recorded at ${file}:5:21 in main`,
        ""
      ])
      expect(div.stderr).toMatch(/^warning: the program differs from the recorded run \(recorded sha256:[0-9a-f]{64}, now sha256:[0-9a-f]{64}\)\n/)

      // a different policy at replay is drift: one verdict, which the exit code matches; allow-drift
      // lets an otherwise identical replay pass and says so
      const drift = yield* boruna(["replay", file, log, "--policy", "allow-all"])
      expect(drift.code).toBe(1)
      expect(drift.stdout).toBe(
        rec.stdout +
          "replay: drifted: the events are identical (6 events), but the policy differs from the recorded run (--allow-drift accepts that)\n"
      )
      expect(drift.stderr).toMatch(/^warning: the policy differs from the recorded run \(recorded sha256:/)
      const allowed = yield* boruna(["replay", file, log, "--policy", "allow-all", "--allow-drift"])
      expect(allowed.code).toBe(0)
      expect(allowed.stdout).toBe(rec.stdout + "replay: identical (6 events), drift allowed: the policy differs from the recorded run\n")

      const sim = yield* boruna(["policy", "simulate", log, "--policy", "deny-all"])
      expect(sim.code).toBe(4)
      expect(sim.stdout.split("\n")[0]).toBe(
        "policy simulate: 3 of 3 recorded calls would be refused under deny-all (0 allowed, 3 denied, 0 over budget)"
      )
      expect(sim.stdout).toContain(`  event #0: net.fetch("https://api.example.com/weather") at ${file}:1:53 in fetch_page: denied: not granted by policy`)
      expect((yield* boruna(["policy", "simulate", log, "--policy", policy])).code).toBe(0)
    }))

  it.effect("a log changed after recording is reported as tampering (exit 3), distinct from drift", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "boruna-cli-replay-"))
      const file = join(dir, "agent.ax")
      const log = join(dir, "run.json")
      writeFileSync(file, AGENT)
      const policy = join(dir, "policy.json")
      writeFileSync(policy, JSON.stringify({ rules: { "net.fetch": { allow: true }, "llm.call": { allow: true }, "time.now": { allow: true } } }))
      expect((yield* boruna(["run", file, "--policy", policy, "--record", log])).code).toBe(0)
      const lines = readFileSync(log, "utf8").split("\n")
      // widen the recorded policy and recompute its hash: the header is self-consistent, the chain is not
      const h = JSON.parse(lines[0]) as Record<string, unknown>
      const widened = EventLogFile.encodeHeader({ ...EventLogFile.makeHeader({ programHash: String(h.program_hash), policy: allowAll, sourceFile: file }), created_at: String(h.created_at) })
      const forged = join(dir, "forged.json")
      writeFileSync(forged, [widened, ...lines.slice(1)].join("\n"))
      const r = yield* boruna(["replay", file, forged])
      expect(r.code).toBe(3)
      expect(r.stdout).toMatch(new RegExp(`^replay: tampered: ${forged.replace(/[.]/g, "\\.")}:2: \\$\\.Seal\\.digest: hash chain broken: the header changed after recording`))
      expect(r.stdout.trimEnd().split("\n")).toHaveLength(1)
      expect(r.stderr).toBe("")
      // an edited result: tampering too, where plain drift (another policy at replay) is not
      const edited = join(dir, "edited.json")
      writeFileSync(edited, readFileSync(log, "utf8").replace(`"mock\\": true`, `"mock\\": false`))
      expect(readFileSync(edited, "utf8")).not.toBe(readFileSync(log, "utf8"))
      const e = yield* boruna(["replay", file, edited])
      expect(e.code).toBe(3)
      expect(e.stdout).toMatch(/^replay: tampered: .*hash chain broken: lines \d+–\d+ changed after recording/)
      const sim = yield* boruna(["policy", "simulate", edited, "--policy", "allow-all"])
      expect(sim.code).toBe(3)
      expect(sim.stderr).toMatch(/^error\[tampered\]: .*hash chain broken/)
    }))

  it.effect("a replay whose policy refuses the first call says so and exits 4; a refused run's log tells simulate what was refused", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "boruna-cli-replay-"))
      const file = join(dir, "agent.ax")
      const log = join(dir, "run.json")
      writeFileSync(file, AGENT)
      expect((yield* boruna(["run", file, "--policy", "allow-all", "--record", log])).code).toBe(0)
      const r = yield* boruna(["replay", file, log, "--policy", "deny-all"])
      expect(r.code).toBe(4)
      expect(r.stdout.split("\n")).toEqual([
        "replay: refused at event #0: this replay's policy refused a call the recorded run made",
        `  recorded: net.fetch("https://api.example.com/weather")`,
        "  refused:  error[denied]: capability denied: net.fetch: not granted by policy",
        `  at ${file}:1:53 in fetch_page`,
        `  recorded at ${file}:1:53 in fetch_page`,
        ""
      ])
      expect(r.stderr).toContain(`${file}:1:53: error[denied]: capability denied: net.fetch: not granted by policy`)

      // recorded under deny-all: the refusal is in the log; a wider policy would have let it through
      const refused = join(dir, "refused.json")
      expect((yield* boruna(["run", file, "--record", refused])).code).toBe(4)
      const again = yield* boruna(["replay", file, refused])
      expect([again.code, again.stdout]).toEqual([0, "replay: identical (1 event)\n"])
      const sim = yield* boruna(["policy", "simulate", refused, "--policy", "allow-all"])
      expect(sim.code).toBe(0)
      expect(sim.stdout.split("\n")[0]).toBe("policy simulate: all 1 recorded calls would be allowed under allow-all, including 1 the recorded run was refused")
      expect(sim.stdout).toContain("the recorded run stopped at event #0, where its call was refused")
    }))

  it.effect("bad logs are one clear error line, exit 3", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "boruna-cli-replay-"))
      const file = join(dir, "agent.ax")
      writeFileSync(file, AGENT)
      const bad = join(dir, "bad.json")
      writeFileSync(bad, `{"format":"boruna-event-log","version":7}\n`)
      const r = yield* boruna(["replay", file, bad])
      expect(r).toEqual({ code: 3, stdout: "", stderr: `error[invalid_log]: ${bad}:1: $.version: unsupported event log version 7: this build reads versions 1 and 2\n` })
      const s = yield* boruna(["policy", "simulate", join(dir, "none.json"), "--policy", "allow-all"])
      expect(s.code).toBe(3)
      expect(s.stderr).toMatch(/^error\[invalid_log\]: .*none\.json: cannot read: ENOENT/)
    }))
})
