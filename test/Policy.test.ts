import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import { capabilitySetHash, resolveAnnotation } from "../src/Capability.js"
import { allowAll, budgetOf, denyAll, isAllowed, parsePolicy, policyHash } from "../src/Policy.js"

const ok = (text: string) => {
  const r = parsePolicy(text, "p.json")
  if (Either.isLeft(r)) throw new Error(r.left.message)
  return r.right
}
const err = (text: string) => {
  const r = parsePolicy(text, "p.json")
  if (Either.isRight(r)) throw new Error("expected a policy error")
  return r.left
}

describe("Policy", () => {
  it("decodes the full schema with defaults filled in", () => {
    const p = ok(`{"rules": {"llm.call": {"allow": true, "budget": 5}}, "net_policy": {"allowed_domains": ["*.example.com"]}}`)
    expect(p.schema_version).toBe(1)
    expect(p.default_allow).toBe(false)
    expect(p.rules["llm.call"]).toEqual({ allow: true, budget: 5 })
    expect(p.net_policy).toEqual({
      allowed_domains: ["*.example.com"],
      allowed_methods: [],
      max_response_bytes: 10 * 1024 * 1024,
      timeout_ms: 30_000,
      allow_redirects: true
    })
    expect(isAllowed(p, "llm.call")).toBe(true)
    expect(isAllowed(p, "net.fetch")).toBe(false)
    expect(budgetOf(p, "llm.call")).toBe(5)
  })

  it("budget 0 means unlimited; absent default_allow means deny", () => {
    const p = ok(`{"rules": {"time.now": {"allow": true, "budget": 0}}}`)
    expect(budgetOf(p, "time.now")).toBeUndefined()
    expect(isAllowed(p, "random")).toBe(false)
  })

  it("accepts the shorthands", () => {
    expect(ok("allow-all")).toEqual(allowAll)
    expect(ok(" deny-all\n")).toEqual(denyAll)
  })

  it("names the JSON path of a wrong field type", () => {
    const e = err(`{"rules": {"time.now": {"allow": "yes"}}}`)
    expect(e.issues[0].path).toBe(`$.rules["time.now"].allow`)
    expect(e.message).toContain("p.json")
  })

  it("rejects unknown fields, aliases as rule keys, bad methods and a bad schema_version", () => {
    expect(err(`{"default_allow": true, "extra": 1}`).issues[0].path).toBe("$.extra")
    const alias = err(`{"rules": {"net": {"allow": true}}}`)
    expect(alias.message).toContain("use 'net.fetch'")
    expect(err(`{"net_policy": {"allowed_methods": ["get"]}}`).issues[0].path).toBe("$.net_policy.allowed_methods[0]")
    expect(err(`{"schema_version": 2}`).issues[0].path).toBe("$.schema_version")
    expect(err(`{"net_policy": {"timeout_ms": 0}}`).issues[0].path).toBe("$.net_policy.timeout_ms")
  })

  it("reports each mistake once, in words a user can act on", () => {
    expect(err(`{"default_allow": 1}`).issues).toEqual([{ path: "$.default_allow", message: "Expected boolean, actual 1" }])
    expect(err(`{"net_policy": {"allowed_methods": ["get"]}}`).issues).toEqual([
      { path: "$.net_policy.allowed_methods[0]", message: "method 'get' must be upper-case: 'GET'" }
    ])
    expect(err(`[]`).issues[0].message).toContain("expected a JSON object")
  })

  it("reports invalid JSON with line and column", () => {
    const e = err(`{\n  "rules": {,}\n}`)
    expect(e.issues[0].path).toMatch(/^line 2, column \d+$/)
  })

  it("has a stable hash that ignores key order and spelled-out defaults", () => {
    const a = policyHash(ok(`{"default_allow": true, "rules": {}}`))
    const b = policyHash(ok(`{"rules": {}, "default_allow": true, "schema_version": 1}`))
    const c = policyHash(ok(`{"rules": {}, "default_allow": false}`))
    expect(a).toBe(b)
    expect(a).not.toBe(c)
    expect(a).toMatch(/^sha256:[0-9a-f]{64}$/)
  })
})

describe("Policy: live-capability bounds (fs_policy, db_policy)", () => {
  it("decodes the bounds; zero, negative and fractional values are errors at their JSON path", () => {
    const p = ok(`{"fs_policy": {"allow_hardlinks": true, "max_read_bytes": 5, "max_write_bytes": 6}, "db_policy": {"max_rows": 1, "max_result_bytes": 2, "timeout_ms": 3}}`)
    expect(p.fs_policy).toEqual({ read_only: false, allow_hardlinks: true, max_read_bytes: 5, max_write_bytes: 6 })
    expect(p.db_policy).toEqual({ read_only: false, max_rows: 1, max_result_bytes: 2, timeout_ms: 3 })
    expect(err(`{"fs_policy": {"max_read_bytes": 0}}`).issues[0].path).toBe("$.fs_policy.max_read_bytes")
    expect(err(`{"fs_policy": {"max_write_bytes": -1}}`).issues[0].path).toBe("$.fs_policy.max_write_bytes")
    expect(err(`{"fs_policy": {"allow_hardlinks": "yes"}}`).issues[0].path).toBe("$.fs_policy.allow_hardlinks")
    expect(err(`{"db_policy": {"max_rows": 1.5}}`).issues[0].path).toBe("$.db_policy.max_rows")
    expect(err(`{"db_policy": {"timeout_ms": 0}}`).issues[0].path).toBe("$.db_policy.timeout_ms")
    expect(err(`{"db_policy": {"max_result_bytes": 0}}`).issues[0].path).toBe("$.db_policy.max_result_bytes")
  })

  it("a policy that does not name the bounds keeps the hash it had before they existed", () => {
    const p = ok(`{"rules": {"fs.read": {"allow": true}, "db.query": {"allow": true}}, "fs_policy": {"root": "data", "read_only": true}, "db_policy": {"path": "app.db"}}`)
    // computed with the policy schema before fs_policy / db_policy had bounds
    expect(policyHash(p)).toBe("sha256:e6403c6f767ec2b0e51f8eae7fa3700e65cce09972ef197ce2717581fda29fdf")
    const bounded = ok(`{"rules": {"fs.read": {"allow": true}, "db.query": {"allow": true}}, "fs_policy": {"root": "data", "read_only": true, "max_read_bytes": 10485760}, "db_policy": {"path": "app.db"}}`)
    expect(policyHash(bounded)).not.toBe(policyHash(p))
  })
})

describe("Capability", () => {
  it("capability_set_hash matches the reference's value for the 11-capability namespace", () => {
    expect(capabilitySetHash()).toBe("sha256:980d017dc54e30c39c329484b501fbe46914d9ad344bfcb4610b0280f4300a67")
  })
  it("resolves annotation aliases", () => {
    expect(resolveAnnotation("net")).toEqual(["net.fetch"])
    expect(resolveAnnotation("fs")).toEqual(["fs.read", "fs.write"])
    expect(resolveAnnotation("llm.call")).toEqual(["llm.call"])
    expect(resolveAnnotation("nope")).toEqual([])
  })
})
