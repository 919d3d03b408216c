/**
 * The parts of a policy the gateway needs at run time, free of `effect/Schema` so that `boruna run`
 * does not pay for loading the decoder (~0.1 s) when no policy file is given. Decoding lives in
 * `Policy.ts`, which re-exports everything here.
 */
import type { CapabilityName } from "./Capability.js"
import type { Policy } from "./Policy.js"
import type { Value } from "./Value.js"

export const allowAll: Policy = { schema_version: 1, default_allow: true, rules: {} }
export const denyAll: Policy = { schema_version: 1, default_allow: false, rules: {} }

/** Whether the policy lets a run call `cap` at all. */
export const isAllowed = (p: Policy, cap: CapabilityName): boolean => {
  const rule = p.rules[cap]
  return rule ? rule.allow : p.default_allow
}

/** The call budget for `cap`, or undefined when unlimited (no rule, or budget 0). */
export const budgetOf = (p: Policy, cap: CapabilityName): number | undefined => {
  const rule = p.rules[cap]
  return rule && rule.budget > 0 ? rule.budget : undefined
}

/** The HTTP method of a `net.fetch` call: `net.fetch(url)` is GET, `net.fetch(method, url, body)` names it. */
export const fetchMethod = (args: ReadonlyArray<Value>): string =>
  args.length >= 2 && typeof args[0] === "string" ? args[0].toUpperCase() : "GET"

/** Whether the policy can require approval for some call of `cap` (rule `approve`, or `net_policy.approve_methods`). */
export const mayNeedApproval = (p: Policy, cap: CapabilityName): boolean =>
  p.rules[cap]?.approve === true || (cap === "net.fetch" && (p.net_policy?.approve_methods?.length ?? 0) > 0)

/** Whether this call needs a person's approval before its handler runs (docs/workflows.md). */
export const needsApproval = (p: Policy, cap: CapabilityName, args: ReadonlyArray<Value>): boolean =>
  p.rules[cap]?.approve === true || (cap === "net.fetch" && (p.net_policy?.approve_methods ?? []).includes(fetchMethod(args)))
