/**
 * The event log of a run: every capability call and result, UI emission and actor step, in order.
 * Appends are synchronous so the VM loop and the gateway can record without leaving their step.
 */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import type { CallSite, Event } from "./Event.js"
import type { Value } from "./Value.js"

export interface EventLogService {
  readonly append: (event: Event) => void
  readonly events: () => ReadonlyArray<Event>
  /**
   * Optional fast forms the gateway uses when present: `appendCall(c, a, s)` must be the same as
   * `append({ type: "CapCall", capability: c, args: a, site: s })` (no `site` key when undefined),
   * and `appendResult(c, r)` the same as `append({ type: "CapResult", capability: c, result: r })`.
   * They are called as plain functions (no `this`). A wrapper that changes `append` must drop or
   * wrap these too, or gateway calls would bypass it.
   */
  readonly appendCall?: (capability: string, args: ReadonlyArray<Value>, site: CallSite | undefined) => void
  readonly appendResult?: (capability: string, result: Value) => void
  /**
   * Optional: a log that holds the `CapCall` of `appendCall` back (to write it together with its
   * outcome, in one write) writes it now. The gateway calls it before it runs a handler that did not
   * answer at once, so the call is on record before any of its effects can happen.
   */
  readonly flush?: () => void
}

export class EventLog extends Context.Tag("boruna/EventLog")<EventLog, EventLogService>() {}

// Pending entries of the in-memory log, flat in fixed-size chunks: [CALL, cap, args, site],
// [RESULT, cap, result] or [EVENT, event]; END closes a chunk early.
const CALL = 0
const RESULT = 1
const EVENT = 2
const END = 3
const CHUNK = 4096

/**
 * An in-memory log (the default for a run that is not recorded to a file).
 *
 * Capability calls and results — two events per gateway call — are kept flat in chunks and become
 * event objects only when `events()` is read. Retaining two fresh objects per call in one growing
 * array was most of the untraced gateway's cost (GC: every one survives, is copied and promoted,
 * and the array is copied as it grows); a run that never reads its log (`boruna run` without
 * `--record`) never pays for them. `events()` returns the same array every time, complete up to
 * the moment it is called.
 */
export const makeMemory = (): EventLogService => {
  const events: Array<Event> = []
  const full: Array<Array<unknown>> = []
  let cur: Array<unknown> = new Array(CHUNK)
  let i = 0
  const room = (n: number): void => {
    if (i + n > CHUNK) {
      if (i < CHUNK) cur[i] = END
      full.push(cur)
      cur = new Array(CHUNK)
      i = 0
    }
  }
  const drain = (chunk: Array<unknown>, end: number): void => {
    let j = 0
    while (j < end) {
      const tag = chunk[j]
      if (tag === CALL) {
        const capability = chunk[j + 1] as string
        const args = chunk[j + 2] as ReadonlyArray<Value>
        const site = chunk[j + 3] as CallSite | undefined
        events.push(site === undefined ? { type: "CapCall", capability, args } : { type: "CapCall", capability, args, site })
        chunk[j + 1] = chunk[j + 2] = chunk[j + 3] = undefined
        j += 4
      } else if (tag === RESULT) {
        events.push({ type: "CapResult", capability: chunk[j + 1] as string, result: chunk[j + 2] as Value })
        chunk[j + 1] = chunk[j + 2] = undefined
        j += 3
      } else if (tag === EVENT) {
        events.push(chunk[j + 1] as Event)
        chunk[j + 1] = undefined
        j += 2
      } else {
        break
      }
    }
  }
  return {
    append: (e) => {
      room(2)
      cur[i] = EVENT
      cur[i + 1] = e
      i += 2
    },
    appendCall: (capability, args, site) => {
      room(4)
      cur[i] = CALL
      cur[i + 1] = capability
      cur[i + 2] = args
      cur[i + 3] = site
      i += 4
    },
    appendResult: (capability, result) => {
      room(3)
      cur[i] = RESULT
      cur[i + 1] = capability
      cur[i + 2] = result
      i += 3
    },
    events: () => {
      for (const chunk of full) drain(chunk, CHUNK)
      full.length = 0
      drain(cur, i)
      i = 0
      return events
    }
  }
}

/** A fresh in-memory log per layer build. */
export const memory: Layer.Layer<EventLog> = Layer.sync(EventLog, makeMemory)
