/**
 * The ceiling rule of `boruna mcp` (src/PolicyCeiling.ts): a requested policy is narrowed to the
 * ceiling (intersection of rules, the smaller budget, the narrower allowlist, the smaller limit),
 * inherits what it leaves out, and is refused — naming every place — when it asks for more.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import { allowAll, denyAll, parsePolicy, type Policy } from "../src/Policy.js"
import { isAllowed, budgetOf } from "../src/PolicyCore.js"
import { grants, narrow } from "../src/PolicyCeiling.js"

const policy = (json: unknown): Policy => Either.getOrThrow(parsePolicy(JSON.stringify(json)))

/** narrow a request given as JSON */
const ask = (ceiling: Policy, json: unknown) => narrow(ceiling, policy(json), json, "/srv")

const granted = (r: ReturnType<typeof ask>): Policy => {
  if (Either.isLeft(r)) throw new Error(r.left.message)
  return r.right
}
const refused = (r: ReturnType<typeof ask>) => {
  if (Either.isRight(r)) throw new Error("expected a refusal")
  return r.left
}

const CEILING = policy({
  rules: { "net.fetch": { allow: true, budget: 5 }, "time.now": { allow: true }, "llm.call": { allow: true, budget: 2 } },
  net_policy: { allowed_domains: ["*.example.com", "api.other.org"], allowed_methods: ["GET", "POST"], timeout_ms: 10_000, allow_redirects: false },
  fs_policy: { root: "data", read_only: true },
  llm_policy: { allowed_models: ["small", "large"], max_tokens: 500 }
})

describe("narrowing", () => {
  it("deny-all under any ceiling grants nothing", () => {
    const p = granted(ask(CEILING, { default_allow: false }))
    expect(grants(p)).toEqual([])
  })

  it("a capability only when both grant it; the smaller budget; an absent budget is the ceiling's", () => {
    const p = granted(ask(CEILING, { rules: { "net.fetch": { allow: true, budget: 3 }, "llm.call": { allow: true } } }))
    expect(isAllowed(p, "net.fetch")).toBe(true)
    expect(budgetOf(p, "net.fetch")).toBe(3)
    expect(budgetOf(p, "llm.call")).toBe(2)
    expect(isAllowed(p, "time.now")).toBe(false)
    expect(isAllowed(p, "fs.read")).toBe(false)
  })

  it("a request that leaves the sub-policies out inherits the ceiling's", () => {
    const p = granted(ask(CEILING, { rules: { "net.fetch": { allow: true } } }))
    expect(p.net_policy).toEqual({ allowed_domains: ["*.example.com", "api.other.org"], allowed_methods: ["GET", "POST"], max_response_bytes: 10 * 1024 * 1024, timeout_ms: 10_000, allow_redirects: false })
    expect(p.fs_policy).toEqual({ root: "data", read_only: true })
    expect(p.llm_policy).toEqual({ allowed_models: ["small", "large"], max_tokens: 500 })
  })

  it("narrower allowlists, smaller limits, a root inside the ceiling's", () => {
    const p = granted(ask(CEILING, {
      rules: { "net.fetch": { allow: true } },
      net_policy: { allowed_domains: ["api.example.com", "example.com"], allowed_methods: ["GET"], timeout_ms: 500 },
      fs_policy: { root: "data/sub" },
      llm_policy: { allowed_models: ["small"], max_tokens: 100, model: "small" }
    }))
    expect(p.net_policy).toMatchObject({ allowed_domains: ["api.example.com", "example.com"], allowed_methods: ["GET"], timeout_ms: 500, allow_redirects: false })
    expect(p.fs_policy).toEqual({ root: "data/sub", read_only: true })
    expect(p.llm_policy).toEqual({ allowed_models: ["small"], max_tokens: 100, model: "small" })
  })

  it("allow-all under an allow-all ceiling is allow-all", () => {
    const p = granted(narrow(allowAll, allowAll, { default_allow: true }, "/srv"))
    expect(grants(p)).toHaveLength(11)
    expect(grants(p).every((g) => g.budget === undefined)).toBe(true)
  })
})

describe("widening is refused, naming every place", () => {
  it("allow-all under deny-all names default_allow and the capabilities", () => {
    const e = refused(narrow(denyAll, allowAll, { default_allow: true }, "/srv"))
    expect(e.beyond).toHaveLength(1)
    expect(e.beyond[0].path).toBe("$.default_allow")
    expect(e.beyond[0].asked).toContain("net.fetch")
  })

  it("a capability, a budget, a domain, a method, a limit, redirects, a root, writes, a model, tokens", () => {
    const e = refused(ask(CEILING, {
      rules: { "net.fetch": { allow: true, budget: 50 }, "fs.write": { allow: true } },
      net_policy: { allowed_domains: ["example.com.evil.net", "*.com"], allowed_methods: ["DELETE"], timeout_ms: 60_000, allow_redirects: true },
      fs_policy: { root: "/etc", read_only: false },
      llm_policy: { allowed_models: ["huge"], model: "huge", max_tokens: 5000 }
    }))
    expect(e.beyond.map((b) => b.path)).toEqual([
      "$.rules[\"net.fetch\"].budget",
      "$.rules[\"fs.write\"]",
      "$.net_policy.allowed_domains[0]",
      "$.net_policy.allowed_domains[1]",
      "$.net_policy.allowed_methods[0]",
      "$.net_policy.timeout_ms",
      "$.net_policy.allow_redirects",
      "$.fs_policy.root",
      "$.fs_policy.read_only",
      "$.llm_policy.allowed_models[0]",
      "$.llm_policy.model",
      "$.llm_policy.max_tokens"
    ])
    expect(e.message).toContain("$.rules[\"net.fetch\"].budget: asks for 50 calls, but the ceiling allows 5")
    expect(e.message).toContain("'/srv/data'")
  })

  it("an empty ceiling allowlist (public hosts) does not cover a private address named by the request", () => {
    const open = policy({ rules: { "net.fetch": { allow: true } } })
    expect(Either.isRight(ask(open, { rules: { "net.fetch": { allow: true } }, net_policy: { allowed_domains: ["api.example.com"] } }))).toBe(true)
    const e = refused(ask(open, { rules: { "net.fetch": { allow: true } }, net_policy: { allowed_domains: ["127.0.0.1"] } }))
    expect(e.beyond[0]).toMatchObject({ path: "$.net_policy.allowed_domains[0]", ceiling: "the ceiling allows public hosts only" })
  })

  it("a database file when the ceiling allows only an in-memory one", () => {
    const e = refused(ask(policy({ rules: { "db.query": { allow: true } } }), { rules: { "db.query": { allow: true } }, db_policy: { path: "prod.sqlite" } }))
    expect(e.beyond[0].path).toBe("$.db_policy.path")
  })

  it("an approval the ceiling requires stays required, and cannot be switched off", () => {
    const ceiling = policy({ rules: { "net.fetch": { allow: true, approve: true } }, net_policy: { approve_methods: ["POST"] } })
    const p = granted(ask(ceiling, { rules: { "net.fetch": { allow: true, budget: 2 } }, net_policy: { approve_methods: ["DELETE"] } }))
    expect(p.rules["net.fetch"]).toEqual({ allow: true, budget: 2, approve: true })
    expect(p.net_policy?.approve_methods).toEqual(["POST", "DELETE"])
    const e = refused(ask(ceiling, { rules: { "net.fetch": { allow: true, approve: false } } }))
    expect(e.beyond.map((b) => b.path)).toEqual(["$.rules[\"net.fetch\"].approve"])
  })

  it("file and database limits: the smaller one, a larger one refused (against the documented default when the ceiling names none)", () => {
    const ceiling = policy({ rules: { "fs.read": { allow: true }, "db.query": { allow: true } }, fs_policy: { max_read_bytes: 1000 }, db_policy: { read_only: true } })
    const p = granted(ask(ceiling, { rules: { "fs.read": { allow: true } }, fs_policy: { max_read_bytes: 10 }, db_policy: { max_rows: 5 } }))
    expect(p.fs_policy).toMatchObject({ max_read_bytes: 10 })
    expect(p.db_policy).toEqual({ read_only: true, max_rows: 5 })
    const e = refused(ask(ceiling, { fs_policy: { max_read_bytes: 5000, allow_hardlinks: true }, db_policy: { max_rows: 20_000, read_only: false } }))
    expect(e.beyond.map((b) => b.path)).toEqual(["$.fs_policy.allow_hardlinks", "$.fs_policy.max_read_bytes", "$.db_policy.read_only", "$.db_policy.max_rows"])
    expect(e.message).toContain("$.db_policy.max_rows: asks for 20000, but the ceiling allows at most 10000")
  })
})
