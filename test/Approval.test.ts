import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { argsDigest, callDigest, needsApproval } from "../src/Approval.js"
import { createHash } from "node:crypto"
import { AxFloat, mkMap, None } from "../src/Value.js"
import { canonicalJson, toJson } from "../src/ValueJson.js"
import type { Policy } from "../src/Policy.js"
import * as Telemetry from "../src/Telemetry.js"
import { memoryEngine, sqliteEngine } from "../src/WorkflowEngine.js"
import * as Runner from "../src/WorkflowRunner.js"
import { wfDir } from "./support/WorkflowDir.js"

const policy: Policy = {
  schema_version: 1,
  default_allow: false,
  rules: { "net.fetch": { allow: true, budget: 0 }, "time.now": { allow: true, budget: 0, approve: true } },
  net_policy: { allowed_domains: [], allowed_methods: [], max_response_bytes: 1000, timeout_ms: 1000, allow_redirects: true, approve_methods: ["POST"] }
}

const GATED = {
  schema_version: 1, name: "gated", version: "1",
  steps: {
    a: { kind: "source", source: "a.ax" },
    gate: { kind: "approval_gate", required_role: "editor", depends_on: ["a"] },
    b: { kind: "source", source: "b.ax", depends_on: ["gate"] }
  },
  edges: []
}
const POST = 'fn main() -> String !{net.fetch} { let r: String = net.fetch("https://example.com/get")\n net.fetch("POST", "https://example.com/p", "body") }\n'
const FILES = { "a.ax": 'fn main() -> String !{net.fetch} { net.fetch("https://example.com/a") }\n', "b.ax": "fn main() -> Int { 1 }\n" }

const ONE_FOR_RUN = { schema_version: 1, name: "post", version: "1", steps: { p: { kind: "source", source: "p.ax" } }, edges: [] }
const mem = () => Runner.layer(memoryEngine).pipe(Layer.provide(Telemetry.off), Layer.orDie)

const refused = <A>(e: Effect.Effect<A, Runner.WorkflowError, Runner.Services>) =>
  Effect.map(Effect.either(e), (r) => {
    expect(Either.isLeft(r)).toBe(true)
    return Either.isLeft(r) ? r.left : undefined
  })

describe("argsDigest", () => {
  it("is SHA-256 of the canonical JSON of the arguments, for scalars (written directly) as for any other value", () => {
    const canonical = (args: ReadonlyArray<import("../src/Value.js").Value>) => createHash("sha256").update(canonicalJson(args.map(toJson))).digest("hex")
    const cases: Array<ReadonlyArray<import("../src/Value.js").Value>> = [
      [],
      [0], [-7, 1_700_000_000], [Number.MAX_SAFE_INTEGER], [123n, 4],
      ["https://example.com/a"], ['quote " backslash \\ newline \n tab \t', "ünïcødé ✓ \u2028"], [""],
      [true, false, "GET"],
      [new AxFloat(1.5)], [None], [["a", 1]], [mkMap([["b", 1], ["a", 2]])], ["POST", "https://example.com/p", mkMap([["z", true]])]
    ]
    for (const args of cases) expect(argsDigest(args), JSON.stringify(args, (_k, v) => typeof v === "bigint" ? `${v}n` : v)).toBe(canonical(args))
    expect(argsDigest(["a"])).not.toBe(argsDigest(["b"]))
    expect(argsDigest([1])).not.toBe(argsDigest(["1"]))
  })
})

describe("which calls need approval", () => {
  it("approve: true on the rule, or a method in net_policy.approve_methods", () => {
    expect(needsApproval(policy, "time.now", [])).toBe(true)
    expect(needsApproval(policy, "net.fetch", ["https://x"])).toBe(false)
    expect(needsApproval(policy, "net.fetch", ["POST", "https://x", "b"])).toBe(true)
    expect(needsApproval(policy, "net.fetch", ["post", "https://x", "b"])).toBe(true)
  })
  it("the digest binds run, step, attempt, sequence, capability and the exact arguments", () => {
    const base = { runId: "r", stepId: "s", attempt: 1, seq: 2, capability: "net.fetch", args: ["POST", "u", "b"] }
    const d = callDigest(base)
    for (const change of [{ runId: "r2" }, { stepId: "t" }, { attempt: 2 }, { seq: 3 }, { capability: "llm.call" }, { args: ["POST", "u", "c"] }]) {
      expect(callDigest({ ...base, ...change })).not.toBe(d)
    }
  })
})

describe("approval gates", () => {
  it.scopedLive("the run pauses at the gate; wrong token and double answers are refused and recorded; approve continues", () =>
    Effect.gen(function*() {
      const r = yield* Runner.startRun({ path: wfDir(GATED, FILES), policy })
      expect(r.status).toBe("paused")
      expect(r.pending).toEqual([expect.objectContaining({ id: "gate:gate", kind: "gate", step: "gate", required_role: "editor" })])
      const token = r.tokens["gate:gate"]
      expect(token).toMatch(/^bwt_[A-Za-z0-9_-]{22}$/)
      const wrong = yield* refused(Runner.answer({ runId: r.runId, step: "gate", token: "nope", as: "mallory", decision: "approved" }))
      expect(wrong?.message).toBe("wrong token for gate:gate")
      const done = yield* Runner.answer({ runId: r.runId, step: "gate", token, as: "ann", reason: "looks fine", decision: "approved" })
      expect(done.status).toBe("completed")
      const again = yield* refused(Runner.answer({ runId: r.runId, step: "gate", token, as: "bob", decision: "rejected" }))
      expect(again?.message).toMatch(/^gate:gate was already approved by ann at .*: an answer is single use$/)
      const v = yield* Runner.runStatus(r.runId)
      expect(v.history.map((h) => [h.event, h.actor])).toEqual([["pending", null], ["refused", "mallory"], ["approved", "ann"], ["refused", "bob"]])
      expect(v.approvals[0]).toMatchObject({ status: "approved", approver: "ann", reason: "looks fine" })
      expect(v.approvals[0].token_hash).not.toContain(token)
      expect(v.steps.find((s) => s.step_id === "b")?.status).toBe("completed")
    }).pipe(Effect.provide(mem())))

  it.scopedLive("reject fails the gate with approval_rejected and skips what depends on it", () =>
    Effect.gen(function*() {
      const r = yield* Runner.startRun({ path: wfDir(GATED, FILES), policy })
      const done = yield* Runner.answer({ runId: r.runId, step: "gate", token: r.tokens["gate:gate"], as: "ann", reason: "no", decision: "rejected" })
      expect(done.status).toBe("failed")
      expect(done.errorKind).toBe("approval_rejected")
      const v = yield* Runner.runStatus(r.runId)
      expect(v.steps.map((s) => [s.step_id, s.status])).toEqual([["a", "completed"], ["b", "skipped"], ["gate", "failed"]])
    }).pipe(Effect.provide(mem())))
})

describe("per-call approval", () => {
  const ONE = { schema_version: 1, name: "post", version: "1", steps: { p: { kind: "source", source: "p.ax" } }, edges: [] }
  it.scopedLive("a POST pauses before its handler runs; the approval names the call and its digest; a wrong digest is refused", () =>
    Effect.gen(function*() {
      const r = yield* Runner.startRun({ path: wfDir(ONE, { "p.ax": POST }), policy })
      expect(r.status).toBe("paused")
      const p = r.pending[0]
      expect(p).toMatchObject({ kind: "call", step: "p", capability: "net.fetch", call: 'net.fetch("POST", "https://example.com/p", "body")' })
      expect(p.digest).toBe(callDigest({ runId: r.runId, stepId: "p", attempt: 1, seq: 1, capability: "net.fetch", args: ["POST", "https://example.com/p", "body"] }))
      const v0 = yield* Runner.runStatus(r.runId)
      expect(v0.calls.map((c) => c.seq)).toEqual([0]) // the POST has not run
      const bad = yield* refused(Runner.answer({ runId: r.runId, call: "0".repeat(64), token: r.tokens[p.id], as: "ann", decision: "approved" }))
      expect(bad?.message).toContain("wrong digest")
      const viaStep = yield* refused(Runner.answer({ runId: r.runId, step: "p", token: r.tokens[p.id], as: "ann", decision: "approved" }))
      expect(viaStep?.message).toContain(`--call ${p.digest}`)
      const done = yield* Runner.answer({ runId: r.runId, call: p.digest, token: r.tokens[p.id], as: "ann", decision: "approved" })
      expect(done.status).toBe("completed")
      const v = yield* Runner.runStatus(r.runId)
      expect(v.calls.map((c) => [c.seq, c.decision])).toEqual([[0, "allowed"], [1, "allowed"]])
    }).pipe(Effect.provide(mem())))

  it.scopedLive("approve from a second process: the run continues on the same data dir (SQLite engine)", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "boruna-data-"))
      const eng = () => Runner.layer(sqliteEngine(dir)).pipe(Layer.provide(Telemetry.off), Layer.orDie)
      const r = yield* Runner.startRun({ path: wfDir(ONE, { "p.ax": POST }), policy }).pipe(Effect.scoped, Effect.provide(eng()))
      expect(r.status).toBe("paused")
      const p = r.pending[0]
      const done = yield* Runner.answer({ runId: r.runId, call: p.digest, token: r.tokens[p.id], as: "ann", decision: "approved" }).pipe(Effect.scoped, Effect.provide(eng()))
      expect(done.status).toBe("completed")
      expect(done.outputs.p).toContain("https://example.com/p")
    }), 60_000)
})

describe("a plain boruna run", () => {
  it.effect("reaching an approval-required call fails with approval_required (exit 4), naming boruna workflow run FILE.ax", () =>
    Effect.gen(function*() {
      const { borunaInProcess } = yield* Effect.promise(() => import("./support/InProcessCli.js"))
      const { writeFileSync } = yield* Effect.promise(() => import("node:fs"))
      const d = wfDir(ONE_FOR_RUN, { "p.ax": POST })
      const pol = join(d, "policy.json")
      writeFileSync(pol, JSON.stringify({ rules: { "net.fetch": { allow: true } }, net_policy: { approve_methods: ["POST"] } }))
      const r = yield* borunaInProcess(["run", join(d, "p.ax"), "--policy", pol])
      expect(r.code).toBe(4)
      expect(r.stderr).toContain(`error[approval_required]: approval required: net.fetch: the policy requires a person's approval before this call; run the program as a workflow, which pauses for it: boruna workflow run ${join(d, "p.ax")}`)
      // the GET before it ran; nothing after
      const ok = yield* borunaInProcess(["run", join(d, "p.ax"), "--policy", "allow-all"])
      expect(ok.code).toBe(0)
    }))
})

describe("tokens", () => {
  it("never start with '-' (a command line would read it as an option): 2,000 mints", async () => {
    const { mintToken, tokenHash, tokenMatches } = await import("../src/Approval.js")
    for (let i = 0; i < 2000; i++) {
      const t = mintToken()
      expect(t.startsWith("-")).toBe(false)
      if (i === 0) expect(tokenMatches(t, tokenHash(t))).toBe(true)
    }
  })
})
