/**
 * The event log of a run: every capability call and result, UI emission and actor step, in order.
 * Appends are synchronous so the VM loop and the gateway can record without leaving their step.
 */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import type { Event } from "./Event.js"

export interface EventLogService {
  readonly append: (event: Event) => void
  readonly events: () => ReadonlyArray<Event>
}

export class EventLog extends Context.Tag("boruna/EventLog")<EventLog, EventLogService>() {}

/** An in-memory log (the default for a run that is not recorded to a file). */
export const makeMemory = (): EventLogService => {
  const events: Array<Event> = []
  return { append: (e) => void events.push(e), events: () => events }
}

/** A fresh in-memory log per layer build. */
export const memory: Layer.Layer<EventLog> = Layer.sync(EventLog, makeMemory)
