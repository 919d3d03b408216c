/**
 * Typed errors of a capability call. Their tags map 1:1 to the span attribute `error.kind`
 * and to the `error[KIND]` line the CLI prints.
 */
import * as Data from "effect/Data"

/** The policy does not grant the capability (or a policy knob such as the net allowlist refused it). */
export class Denied extends Data.TaggedError("Denied")<{
  readonly capability: string
  readonly reason: string
}> {
  get kind(): "denied" {
    return "denied"
  }
  override get message(): string {
    return `capability denied: ${this.capability}: ${this.reason}`
  }
}

/** The call would exceed the capability's invocation budget. */
export class BudgetExceeded extends Data.TaggedError("BudgetExceeded")<{
  readonly capability: string
  readonly budget: number
}> {
  get kind(): "budget_exceeded" {
    return "budget_exceeded"
  }
  override get message(): string {
    return `capability budget exceeded: ${this.capability} (budget ${this.budget})`
  }
}

/** The capability handler failed (or died); the message says why. */
export class RuntimeError extends Data.TaggedError("RuntimeError")<{
  readonly capability: string
  readonly reason: string
}> {
  get kind(): "runtime_error" {
    return "runtime_error"
  }
  override get message(): string {
    return `${this.capability} failed: ${this.reason}`
  }
}

/**
 * The policy requires a person's approval for this call (rule `approve`, `net_policy.approve_methods`);
 * only a workflow run can pause for one (`boruna workflow run`).
 */
export class ApprovalRequired extends Data.TaggedError("ApprovalRequired")<{
  readonly capability: string
  readonly reason: string
}> {
  get kind(): "approval_required" {
    return "approval_required"
  }
  override get message(): string {
    return `approval required: ${this.capability}: ${this.reason}`
  }
}

export type CapabilityError = Denied | BudgetExceeded | RuntimeError | ApprovalRequired

/** What a handler fails with; the gateway turns it into a `RuntimeError` (or `Denied` when `denied`). */
export class HandlerFailure extends Data.TaggedError("HandlerFailure")<{
  readonly message: string
  /** true when a policy knob enforced inside the handler refused the call (net allowlist, fs root). */
  readonly denied?: boolean
}> {}

export const errorKind = (e: CapabilityError): "denied" | "budget_exceeded" | "runtime_error" | "approval_required" => e.kind
