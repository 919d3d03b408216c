/**
 * Per-capability call quotas for one run.
 *
 * Exact under concurrency: a take is one synchronous step (read, compare, increment), and a fiber
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

/** `Counter.take()` for an allowed call with no budget. */
export const UNLIMITED = -1
/** `Counter.take()` for a call over its budget. */
export const EXCEEDED = -2

/** The usage counter of one capability (what the gateway caches per capability). */
export class Counter {
  used = 0
  /** the budget, or `UNLIMITED` */
  readonly limit: number

  constructor(limit: number | undefined) {
    this.limit = limit === undefined ? UNLIMITED : limit
  }

  /**
   * Count one call; the post-call remaining quota (≥ 0), `UNLIMITED` or `EXCEEDED`. A number rather
   * than a `Take` so the gateway's per-call path allocates nothing here.
   */
  take(): number {
    const used = ++this.used
    const limit = this.limit
    if (limit === UNLIMITED) return UNLIMITED
    return used > limit ? EXCEEDED : limit - used
  }
}

export class Budget {
  private readonly counters = new Map<CapabilityName, Counter>()

  constructor(private readonly policy: Policy) {}

  /** The counter of `cap` (one per capability per run). */
  counter(cap: CapabilityName): Counter {
    let c = this.counters.get(cap)
    if (c === undefined) {
      c = new Counter(budgetOf(this.policy, cap))
      this.counters.set(cap, c)
    }
    return c
  }

  /** Count one call; say whether it is within budget and what remains after it. */
  take(cap: CapabilityName): Take {
    const c = this.counter(cap)
    const r = c.take()
    if (r === UNLIMITED) return { ok: true, remaining: undefined }
    if (r === EXCEEDED) return { ok: false, budget: c.limit }
    return { ok: true, remaining: r }
  }

  /** Calls counted so far for `cap`. */
  used(cap: CapabilityName): number {
    return this.counters.get(cap)?.used ?? 0
  }

  /** What remains for `cap` (undefined when unlimited). */
  remaining(cap: CapabilityName): number | undefined {
    const c = this.counter(cap)
    return c.limit === UNLIMITED ? undefined : Math.max(0, c.limit - c.used)
  }
}
