/**
 * Events of a run, in the order they happened. The gateway appends `CapCall` / `CapResult` /
 * `CapError`, and `CapRefused` for a call the policy refused before any handler ran; the VM appends
 * `UiEmit`, actor and scheduler events. Telemetry never enters here.
 */
import type { Value } from "./Value.js"

/** Where in the source a capability call was made (for divergence and simulate reports). */
export interface CallSite {
  readonly file: string
  readonly line: number
  readonly col: number
  readonly fn?: string
}

export type Event =
  | { readonly type: "CapCall"; readonly capability: string; readonly args: ReadonlyArray<Value>; readonly site?: CallSite }
  | { readonly type: "CapResult"; readonly capability: string; readonly result: Value }
  /** the handler failed: recorded so a replay reproduces the same failure */
  | { readonly type: "CapError"; readonly capability: string; readonly kind: string; readonly message: string }
  /**
   * the gateway refused the call before its handler ran: not granted by the policy (`denied`) or over
   * its budget (`budget_exceeded`); `message` is the error the program got. Replay enforces it like
   * any other event; `policy simulate` asks whether another policy would have let it through.
   */
  | {
    readonly type: "CapRefused"
    readonly capability: string
    readonly args: ReadonlyArray<Value>
    readonly kind: "denied" | "budget_exceeded"
    readonly message: string
    readonly site?: CallSite
  }
  | { readonly type: "UiEmit"; readonly tree: Value }
  | { readonly type: "ActorSpawn"; readonly actorId: number; readonly function: string }
  | { readonly type: "MessageSend"; readonly from: number; readonly to: number; readonly payload: Value }
  | { readonly type: "MessageReceive"; readonly actorId: number; readonly payload: Value }
  | { readonly type: "SchedulerTick"; readonly round: number; readonly activeActor: number }
