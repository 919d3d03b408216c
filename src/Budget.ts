/**
 * Per-capability call quotas for one run.
 *
 * Exact under concurrency: `take` is one synchronous step (read, compare, increment), and a fiber
 * can only be preempted between Effect steps, so no two fibers can both see the last unit of a
 * budget. Usage counts every allowed attempt, including the one that exceeds the budget (as the
 * reference does); `remaining` is the post-call quota.
 */
import type { CapabilityName } from "./Capability.js"
import type { Policy } from "./Policy.js"
import { budgetOf } from "./PolicyCore.js"

export type Take =
  | { readonly ok: true; readonly remaining: number | undefined }
  | { readonly ok: false; readonly budget: number }

export class Budget {
  private readonly usage = new Map<CapabilityName, number>()
  private readonly limits = new Map<CapabilityName, number | undefined>()

  constructor(private readonly policy: Policy) {}

  private limit(cap: CapabilityName): number | undefined {
    let l = this.limits.get(cap)
    if (l === undefined && !this.limits.has(cap)) {
      l = budgetOf(this.policy, cap)
      this.limits.set(cap, l)
    }
    return l
  }

  /** Count one call; say whether it is within budget and what remains after it. */
  take(cap: CapabilityName): Take {
    const used = (this.usage.get(cap) ?? 0) + 1
    this.usage.set(cap, used)
    const limit = this.limit(cap)
    if (limit === undefined) return { ok: true, remaining: undefined }
    if (used > limit) return { ok: false, budget: limit }
    return { ok: true, remaining: limit - used }
  }

  /** Calls counted so far for `cap`. */
  used(cap: CapabilityName): number {
    return this.usage.get(cap) ?? 0
  }

  /** What remains for `cap` (undefined when unlimited). */
  remaining(cap: CapabilityName): number | undefined {
    const limit = this.limit(cap)
    return limit === undefined ? undefined : Math.max(0, limit - this.used(cap))
  }
}
