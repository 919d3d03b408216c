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
 *
 * Calls the recorded run was refused (`CapRefused` events) are simulated like any other: the report
 * says which of them the other policy would have let through. The recorded run stopped at such a
 * refusal, so what it would have done after it is not in the log, and the report says that too.
 */
import { Budget } from "./Budget.js"
import { isCapabilityName } from "./Capability.js"
import type { CallSite, Event } from "./Event.js"
import { compileAllowlist, hostAllowed, hostOf } from "./live/Url.js"
import { isAllowed, type Policy, policyHash } from "./Policy.js"
import { formatSite, type ReplaySource, showEvent } from "./Replay.js"
import type { Value } from "./Value.js"

export interface Refusal {
  /** index (0-based) of the `CapCall` (or `CapRefused`) in the recorded log */
  readonly index: number
  readonly capability: string
  readonly args: ReadonlyArray<Value>
  readonly site: CallSite | undefined
  readonly kind: "denied" | "budget_exceeded"
  readonly reason: string
  /** what happened to the call in the recorded run */
  readonly recorded: "allowed" | "denied" | "budget_exceeded"
}

/** A call the recorded run was refused that the other policy would allow. */
export interface Admitted {
  readonly index: number
  readonly capability: string
  readonly args: ReadonlyArray<Value>
  readonly site: CallSite | undefined
  readonly recorded: "denied" | "budget_exceeded"
  /** the refusal the recorded run got */
  readonly message: string
}

export interface SimulationReport {
  /** recorded capability calls examined (made or refused) */
  readonly calls: number
  /** calls the other policy would allow */
  readonly allowed: number
  /** calls it would deny */
  readonly denied: number
  /** calls it would push over budget */
  readonly overBudget: number
  readonly refusals: ReadonlyArray<Refusal>
  /** recorded refusals the other policy would allow */
  readonly admitted: ReadonlyArray<Admitted>
  /** the index of the recorded refusal the recorded run stopped at, when its log ends with one */
  readonly stoppedAt: number | undefined
  readonly policyHash: string
}

type CapCall = Extract<Event, { type: "CapCall" | "CapRefused" }>

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
  const admitted: Array<Admitted> = []
  let calls = 0
  let lastCall: CapCall | undefined
  let lastCallIndex = -1
  const judge = (e: CapCall): { kind: "denied" | "budget_exceeded"; reason: string } | undefined => {
    if (!isCapabilityName(e.capability)) return { kind: "denied", reason: `unknown capability '${e.capability}'` }
    if (!isAllowed(policy, e.capability)) return { kind: "denied", reason: "not granted by policy" }
    const t = budget.take(e.capability)
    if (!t.ok) return { kind: "budget_exceeded", reason: `call ${budget.used(e.capability)} of budget ${t.budget}` }
    const knob = knobRefusal(policy, e, allowlist)
    return knob === undefined ? undefined : { kind: "denied", reason: knob }
  }
  events.forEach((e, index) => {
    if (e.type !== "CapCall" && e.type !== "CapRefused") return
    calls++
    lastCall = e
    lastCallIndex = index
    const recorded = e.type === "CapRefused" ? e.kind : "allowed"
    const verdict = judge(e)
    if (verdict !== undefined) {
      refusals.push({ index, capability: e.capability, args: e.args, site: e.site, ...verdict, recorded })
    } else if (e.type === "CapRefused") {
      admitted.push({ index, capability: e.capability, args: e.args, site: e.site, recorded: e.kind, message: e.message })
    }
  })
  const denied = refusals.filter((r) => r.kind === "denied").length
  const overBudget = refusals.length - denied
  const stoppedAt = lastCall?.type === "CapRefused" ? lastCallIndex : undefined
  return { calls, allowed: calls - refusals.length, denied, overBudget, refusals, admitted, stoppedAt, policyHash: policyHash(policy) }
}

/** The report as lines: a summary, then one line per refused call, then what the log cannot show. */
export const formatReport = (r: SimulationReport, policyName: string): ReadonlyArray<string> => {
  const callText = (f: { readonly capability: string; readonly args: ReadonlyArray<Value>; readonly site: CallSite | undefined }) =>
    `${showEvent({ type: "CapCall", capability: f.capability, args: f.args })}${f.site === undefined ? "" : ` at ${formatSite(f.site)}`}`
  const tally = `${r.allowed} allowed, ${r.denied} denied, ${r.overBudget} over budget`
  const lines = [
    r.refusals.length === 0
      ? `policy simulate: all ${r.calls} recorded calls would be allowed under ${policyName}` +
        (r.admitted.length > 0 ? `, including ${r.admitted.length} the recorded run was refused` : "")
      : `policy simulate: ${r.refusals.length} of ${r.calls} recorded calls would be refused under ${policyName} (${tally})`
  ]
  const rows = [
    ...r.refusals.map((f) => ({
      index: f.index,
      text: `  event #${f.index}: ${callText(f)}: ${f.kind}: ${f.reason}${f.recorded === "allowed" ? "" : ` (refused in the recorded run too: ${f.recorded})`}`
    })),
    ...r.admitted.map((a) => ({
      index: a.index,
      text: `  event #${a.index}: ${callText(a)}: allowed (the recorded run was refused it: ${a.message})`
    }))
  ].sort((a, b) => a.index - b.index)
  for (const row of rows) lines.push(row.text)
  if (r.stoppedAt !== undefined) {
    lines.push(
      `  the recorded run stopped at event #${r.stoppedAt}, where its call was refused: the calls it would have made after it ` +
        `are not in the log, so this report cannot judge them`
    )
  }
  return lines
}
