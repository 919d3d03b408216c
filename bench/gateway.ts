/**
 * Cost of one `Gateway.call` relative to calling the same handler Effect directly, same process:
 * telemetry off, the in-memory recorder, and OTLP/HTTP export to a loopback receiver.
 *
 *   npm run build && node dist/bench/gateway.js [--calls 200000] [--runs 7]
 *
 * Each mode runs `calls` calls of `time.now` (demo handler) in one Effect loop; one warm-up run,
 * then the median of `runs`, interleaved with direct runs; ratios are medians of per-run ratios. The OTLP mode measures the loop (span creation + hand-off to the batch
 * processor) and, separately, the loop plus the final flush of every span to the receiver.
 *
 * Two baselines for the untraced path:
 *  - `Effect.succeed` (the demo handler): the handler returns an already-completed Exit. Inside
 *    `Effect.gen`, yielding an Exit never reaches the fiber's run loop: the generator step
 *    (`contOpSuccess[OP_ITERATOR]` in effect 3.22's fiberRuntime) sees `exitIsExit` and feeds the
 *    value straight back into the generator. Any lazy Effect — `Effect.suspend`, an
 *    `Effectable.Class` with `commit()`, `Effect.sync` — is not an Exit, so the generator must
 *    push itself on the stack and return to the run loop, which takes at least two full steps
 *    (evaluate the op; then deliver its Exit back to the generator), each with the scheduler's
 *    yield check, the tracer context wrapper and the op dispatch. The "Effect.suspend(handler)"
 *    row measures exactly that floor: ≈ 2.2–2.9× here, before the gateway does any work. So ≤ 2×
 *    against this baseline is out of reach for any Effect that performs nothing until it runs
 *    (which `Gateway.call` must: building a call may not take budget or log anything). Returning
 *    a fake "lazy Exit" (getters that perform the call when the generator reads `_tag`) was
 *    rejected: it would run on inspection, break Exit's contract and could not express a handler
 *    that suspends.
 *  - `Effect.sync` (a handler that really computes): the direct call pays the run loop too, so the
 *    ratio shows the gateway's own cost (policy, budget, log, result mapping).
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { pathToFileURL } from "node:url"
import * as EventLog from "../src/EventLog.js"
import * as Gateway from "../src/Gateway.js"
import { DEMO_TIME, demoHandlers, demoService, fromRecord, type Handler, type HandlerContext, Handlers } from "../src/Handlers.js"
import { allowAll } from "../src/Policy.js"
import * as Telemetry from "../src/Telemetry.js"

export interface Row {
  readonly mode: string
  readonly nsPerCall: number
  readonly ratio: number
  readonly note?: string
}

const now = (): number => Number(process.hrtime.bigint()) / 1e6 // ms

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

const loop = (n: number, call: () => Effect.Effect<unknown, unknown>): Effect.Effect<number, unknown> =>
  Effect.gen(function*() {
    const t0 = now()
    for (let i = 0; i < n; i++) yield* call()
    return now() - t0
  })

const gc = (): void => {
  const g = (globalThis as { gc?: () => void }).gc
  if (g !== undefined) g()
}

/** A loopback OTLP/HTTP sink: answers 200 to everything and counts requests. */
const startSink = (): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> =>
  new Promise((resolve) => {
    let requests = 0
    const server = http.createServer((req, res) => {
      req.resume()
      req.on("end", () => {
        requests++
        res.writeHead(200, { "content-type": "application/json" })
        res.end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({
        url: `http://127.0.0.1:${port}`,
        requests: () => requests,
        close: () => new Promise<void>((done) => {
          server.close(() => done())
          server.closeAllConnections()
        })
      })
    })
  })

export const run = async (options: { readonly calls?: number; readonly runs?: number } = {}): Promise<ReadonlyArray<Row>> => {
  const n = options.calls ?? 200_000
  const runs = options.runs ?? 7
  const handler = demoHandlers["time.now"]
  // the same value, computed when the effect runs (a handler that really does something)
  const syncHandler: Handler = () => Effect.sync(() => DEMO_TIME)
  const syncService = fromRecord({ "time.now": syncHandler })
  const ctx: HandlerContext = { capability: "time.now", policy: allowAll, annotate: () => {}, event: () => {} }
  const noArgs: ReadonlyArray<never> = []
  const sink = await startSink()
  const lost: Array<string> = []
  const env = {
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
    OTEL_BSP_MAX_QUEUE_SIZE: String(n + 1),
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "2048"
  }

  /** One timed run per mode; the OTLP mode reports [loop, loop + flush]. */
  const modes: Record<string, () => Promise<ReadonlyArray<number>>> = {
    direct: async () => [await Effect.runPromise(loop(n, () => handler(noArgs, ctx)))],
    // the floor of any lazy wrapper: the same handler behind one Effect.suspend
    suspend: async () => [await Effect.runPromise(loop(n, () => Effect.suspend(() => handler(noArgs, ctx))))],
    off: async () => {
      const g = Gateway.make({ policy: allowAll, handlers: demoService, log: EventLog.makeMemory(), traced: false })
      return [await Effect.runPromise(loop(n, () => g.call("time.now", noArgs)))]
    },
    // the same, plus reading the whole event log afterwards (the in-memory log builds its event
    // objects when read, so this shows the cost a reader pays)
    offRead: async () => {
      const log = EventLog.makeMemory()
      const g = Gateway.make({ policy: allowAll, handlers: demoService, log, traced: false })
      const t0 = now()
      await Effect.runPromise(loop(n, () => g.call("time.now", noArgs)))
      if (log.events().length !== 2 * n) throw new Error("event log incomplete")
      return [now() - t0]
    },
    directSync: async () => [await Effect.runPromise(loop(n, () => syncHandler(noArgs, ctx)))],
    offSync: async () => {
      const g = Gateway.make({ policy: allowAll, handlers: syncService, log: EventLog.makeMemory(), traced: false })
      return [await Effect.runPromise(loop(n, () => g.call("time.now", noArgs)))]
    },
    memory: async () => {
      const { tracer } = Telemetry.makeMemoryTracer()
      const g = Gateway.make({ policy: allowAll, handlers: demoService, log: EventLog.makeMemory(), traced: true })
      return [await Effect.runPromise(Effect.withTracer(loop(n, () => g.call("time.now", noArgs)), tracer))]
    },
    otlp: async () => {
      const layer = Gateway.layer(allowAll).pipe(Layer.provide(Layer.mergeAll(
        Layer.succeed(Handlers, demoService),
        EventLog.memory,
        Telemetry.fromEnv(env, { stderr: (l) => lost.push(l), flushTimeoutMillis: 60_000 })
      )))
      const t0 = now()
      const loopMs = await Effect.runPromise(Effect.provide(Effect.flatMap(Gateway.Gateway, (g) => loop(n, () => g.call("time.now", noArgs))), layer))
      return [loopMs, now() - t0]
    }
  }

  // Two phases, each interleaving its modes run by run (so background load hits them alike; the
  // first run warms up): direct vs off first, while the JIT has seen no span code; then direct vs the
  // traced modes, each ratio taken against the direct runs of its own phase.
  const times: Record<string, Array<ReadonlyArray<number>>> = {
    direct: [], suspend: [], off: [], offRead: [], directSync: [], offSync: [], direct2: [], memory: [], otlp: []
  }
  const phase = async (names: ReadonlyArray<[string, string]>) => {
    for (let r = 0; r <= runs; r++) {
      for (const [key, mode] of names) {
        gc()
        const t = await modes[mode]()
        if (r > 0) times[key].push(t)
      }
    }
  }
  await phase([["direct", "direct"], ["suspend", "suspend"], ["off", "off"], ["offRead", "offRead"], ["directSync", "directSync"], ["offSync", "offSync"]])
  await phase([["direct2", "direct"], ["memory", "memory"], ["otlp", "otlp"]])
  await sink.close()

  const per = (ms: number) => (ms * 1e6) / n
  /** median ns/call of a mode, and the median over runs of its ratio to the same run's direct time */
  const stat = (name: string, base: string, i = 0) => {
    const ns = per(median(times[name].map((t) => t[i])))
    const ratio = median(times[name].map((t, r) => t[i] / times[base][r][0]))
    return { nsPerCall: ns, ratio }
  }
  return [
    { mode: "direct handler call", ...stat("direct", "direct") },
    { mode: "Effect.suspend(handler) (floor)", ...stat("suspend", "direct") },
    { mode: "Gateway.call, telemetry off", ...stat("off", "direct"), note: "target ≤ 2×; the suspend row is the floor" },
    { mode: "Gateway.call, off, then read the whole log", ...stat("offRead", "direct") },
    { mode: "direct handler call, Effect.sync handler", ...stat("directSync", "directSync") },
    { mode: "Gateway.call, off, Effect.sync handler", ...stat("offSync", "directSync"), note: "× the Effect.sync direct call" },
    { mode: "direct handler call (phase 2)", ...stat("direct2", "direct2") },
    { mode: "Gateway.call, in-memory recorder", ...stat("memory", "direct2") },
    { mode: "Gateway.call, OTLP export (loop)", ...stat("otlp", "direct2", 0) },
    {
      mode: "Gateway.call, OTLP export (loop + flush)",
      ...stat("otlp", "direct2", 1),
      note: lost.length === 0 ? `all spans delivered in ${sink.requests()} requests` : lost.join("; ")
    }
  ]
}

export const print = (rows: ReadonlyArray<Row>, calls: number): void => {
  const w = Math.max(...rows.map((r) => r.mode.length))
  process.stdout.write(`Gateway.call cost (${calls.toLocaleString("en")} calls per run, median)\n`)
  process.stdout.write(`${"mode".padEnd(w)}  ${"ns/call".padStart(9)}  ${"× direct".padStart(9)}\n`)
  for (const r of rows) {
    process.stdout.write(
      `${r.mode.padEnd(w)}  ${r.nsPerCall.toFixed(1).padStart(9)}  ${r.ratio.toFixed(2).padStart(8)}×${r.note === undefined ? "" : `  (${r.note})`}\n`
    )
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string): number | undefined => {
    const i = process.argv.indexOf(name)
    return i < 0 ? undefined : Number(process.argv[i + 1])
  }
  const calls = arg("--calls") ?? 200_000
  run({ calls, runs: arg("--runs") ?? 7 }).then((rows) => print(rows, calls), (e) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? e.message : String(e)}\n`)
    process.exitCode = 1
  })
}
