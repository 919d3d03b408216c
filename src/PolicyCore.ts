/**
 * The parts of a policy the gateway needs at run time, free of `effect/Schema` so that `boruna run`
 * does not pay for loading the decoder (~0.1 s) when no policy file is given. Decoding lives in
 * `Policy.ts`, which re-exports everything here.
 */
import type { CapabilityName } from "./Capability.js"
import type { Policy } from "./Policy.js"

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
