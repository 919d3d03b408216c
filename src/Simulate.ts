/**
 * Policy simulation: which recorded calls would another policy refuse? Pure — no effect runs.
 *
 * Every recorded `CapCall` is put, in order, through what the gateway would do under the other
 * policy: the grant (`rules` / `default_allow` → `denied`), then the budget (counted per capability
 * exactly as the gateway counts: every granted attempt, the refused one included → `budget_exceeded`),
 * then the policy knobs that can be judged from the arguments alone: `net_policy.allowed_domains`
 * (by host name; the address checks that need DNS are not simulated) and `allowed_methods`,
 * `fs_policy.read_only` for `fs.write`, and `llm_policy.allowed_models` when the model is named (in
 * the call or by `llm_policy.model`).
 *
 * The simulation continues past a refusal as if the call had gone through, so one report lists every
 * call the other policy would refuse (the live run would have stopped at the first one the program
 * does not handle).
 */
import { Budget } from "./Budget.js"
import { isCapabilityName } from "./Capability.js"
import type { CallSite, Event } from "./Event.js"
import { compileAllowlist, hostAllowed, hostOf } from "./live/Url.js"
import { isAllowed, type Policy, policyHash } from "./Policy.js"
import { formatSite, type ReplaySource, showEvent } from "./Replay.js"
import type { Value } from "./Value.js"

export interface Refusal {
  /** index (0-based) of the `CapCall` in the recorded log */
  readonly index: number
  readonly capability: string
  readonly args: ReadonlyArray<Value>
  readonly site: CallSite | undefined
  readonly kind: "denied" | "budget_exceeded"
  readonly reason: string
}

export interface SimulationReport {
  /** recorded capability calls examined */
  readonly calls: number
  readonly refusals: ReadonlyArray<Refusal>
  readonly policyHash: string
}

type CapCall = Extract<Event, { type: "CapCall" }>

const knobRefusal = (policy: Policy, call: CapCall, allowlist: ReturnType<typeof compileAllowlist>): string | undefined => {
  const a = call.args
  switch (call.capability) {
    case "net.fetch": {
      const url = a.length === 1 ? a[0] : a[1]
      const method = a.length === 1 ? "GET" : typeof a[0] === "string" ? a[0].toUpperCase() : undefined
      if (!allowlist.ok) return `net_policy.allowed_domains is invalid: ${allowlist.problems.join("; ")}`
      if (typeof url === "string") {
        let parsed: URL | undefined
        try {
          parsed = new URL(url)
        } catch {
          parsed = undefined
        }
        if (parsed !== undefined && !hostAllowed(allowlist.allowlist, hostOf(parsed))) {
          return `host '${hostOf(parsed)}' is not in net_policy.allowed_domains [${allowlist.allowlist.written.join(", ")}]`
        }
      }
      const methods = policy.net_policy?.allowed_methods ?? []
      if (method !== undefined && methods.length > 0 && !(methods as ReadonlyArray<string>).includes(method)) {
        return `method ${method} is not in net_policy.allowed_methods [${methods.join(", ")}]`
      }
      return undefined
    }
    case "fs.write":
      return policy.fs_policy?.read_only ? "fs_policy.read_only is set: writes are not allowed" : undefined
    case "llm.call": {
      const allowed = policy.llm_policy?.allowed_models ?? []
      const model = a.length === 2 ? a[0] : policy.llm_policy?.model
      if (allowed.length > 0 && typeof model === "string" && !allowed.includes(model)) {
        return `model '${model}' is not in llm_policy.allowed_models [${allowed.join(", ")}]`
      }
      return undefined
    }
    default:
      return undefined
  }
}

/** Put every recorded call through `policy`; list the ones it would refuse. */
export const simulate = (source: ReplaySource, policy: Policy): SimulationReport => {
  const events = "header" in source ? source.events : (source as ReadonlyArray<Event>)
  const budget = new Budget(policy)
  const allowlist = compileAllowlist(policy.net_policy?.allowed_domains ?? [])
  const refusals: Array<Refusal> = []
  let calls = 0
  events.forEach((e, index) => {
    if (e.type !== "CapCall") return
    calls++
    const base = { index, capability: e.capability, args: e.args, site: e.site }
    if (!isCapabilityName(e.capability)) {
      refusals.push({ ...base, kind: "denied", reason: `unknown capability '${e.capability}'` })
      return
    }
    if (!isAllowed(policy, e.capability)) {
      refusals.push({ ...base, kind: "denied", reason: "not granted by policy" })
      return
    }
    const t = budget.take(e.capability)
    if (!t.ok) {
      refusals.push({ ...base, kind: "budget_exceeded", reason: `call ${budget.used(e.capability)} of budget ${t.budget}` })
      return
    }
    const knob = knobRefusal(policy, e, allowlist)
    if (knob !== undefined) refusals.push({ ...base, kind: "denied", reason: knob })
  })
  return { calls, refusals, policyHash: policyHash(policy) }
}

/** The report as lines: a summary, then one line per refused call. */
export const formatReport = (r: SimulationReport, policyName: string): ReadonlyArray<string> => {
  const lines = [
    r.refusals.length === 0
      ? `policy simulate: all ${r.calls} recorded calls would be allowed under ${policyName}`
      : `policy simulate: ${r.refusals.length} of ${r.calls} recorded calls would be refused under ${policyName}`
  ]
  for (const f of r.refusals) {
    const call = showEvent({ type: "CapCall", capability: f.capability, args: f.args })
    const where = f.site === undefined ? "" : ` at ${formatSite(f.site)}`
    lines.push(`  event #${f.index}: ${call}${where}: ${f.kind}: ${f.reason}`)
  }
  return lines
}
