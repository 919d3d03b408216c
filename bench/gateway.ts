/**
 * Cost of one `Gateway.call`, same process, in two tables, each with ONE baseline:
 *  1. untraced: against calling the same handler Effect directly (telemetry off);
 *  2. traced: against the raw OpenTelemetry JS span (a `BasicTracerProvider` with a
 *     `BatchSpanProcessor` over an in-memory exporter, four attributes), beside `Effect.withSpan`
 *     with Effect's native tracer, the in-memory recorder, and OTLP/HTTP (protobuf) export to a
 *     loopback receiver that decodes every body and counts its spans.
 *
 *   npm run build && node --expose-gc dist/bench/gateway.js [--calls 200000] [--runs 7]
 *
 * Each mode runs `calls` calls in one Effect loop. Within a table the modes are interleaved run by
 * run (one warm-up round, then `runs` rounds), so background load falls on all of them alike; a
 * ratio is the median over rounds of the mode's time / the same round's baseline time. The OTLP
 * mode measures the loop and, separately, the loop plus the final flush; "all spans delivered" is
 * checked against the spans the receiver decoded, not the requests it answered.
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
import { createRequire } from "node:module"
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
  /** the mode the ratio is taken against (one per table) */
  readonly base: string
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

type Decoder = { readonly decode: (b: Uint8Array) => { resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: Array<unknown> }> }> } }

/** The generated OTLP protobuf code (@opentelemetry/otlp-transformer, a dev dependency). */
const traceRequest = (): Decoder =>
  (createRequire(import.meta.url)("@opentelemetry/otlp-transformer/build/src/generated/root.js") as {
    opentelemetry: { proto: { collector: { trace: { v1: { ExportTraceServiceRequest: Decoder } } } } }
  }).opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest

/**
 * A loopback OTLP/HTTP sink: answers 200 and keeps every protobuf body; `spans()` decodes the bodies
 * kept so far and counts their spans (outside the timed loop: the receiver's decoding is not
 * boruna's cost, and it shares this process).
 */
const startSink = (): Promise<{ url: string; spans: () => number; requests: () => number; close: () => Promise<void> }> =>
  new Promise((resolve) => {
    const decoder = traceRequest()
    let requests = 0
    let spans = 0
    let bodies: Array<Buffer> = []
    const count = (): number => {
      for (const body of bodies) {
        const msg = decoder.decode(body)
        for (const rs of msg.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans += ss.spans?.length ?? 0
      }
      bodies = []
      return spans
    }
    const server = http.createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        requests++
        bodies.push(Buffer.concat(chunks))
        res.writeHead(200, { "content-type": "application/x-protobuf" })
        res.end()
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({
        url: `http://127.0.0.1:${port}`,
        spans: count,
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
  // the default queue (2048) and batch (512): backpressure, not a queue sized to the run, keeps every span
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url }

  // the raw OpenTelemetry JS span: provider + batch processor over an in-memory exporter
  const sdk = await import("@opentelemetry/sdk-trace-base")
  const rawExporter = new sdk.InMemorySpanExporter()
  const rawProvider = new sdk.BasicTracerProvider({ spanProcessors: [new sdk.BatchSpanProcessor(rawExporter)] })
  const rawTracer = rawProvider.getTracer("bench")

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
    // the traced table's baseline: a raw OTel span with the gateway's four attributes, per call
    rawOtel: async () => {
      const t0 = now()
      for (let i = 0; i < n; i++) {
        const span = rawTracer.startSpan("boruna.cap")
        span.setAttribute("cap.name", "time.now")
        span.setAttribute("bytes_in", 0)
        span.setAttribute("bytes_out", 0)
        span.setAttribute("cap.budget_remaining", 1)
        span.end()
      }
      const ms = now() - t0
      await rawProvider.forceFlush()
      rawExporter.reset()
      return [ms]
    },
    // Effect.withSpan with Effect's native tracer, the same four attributes
    withSpan: async () => {
      const attributes = { "cap.name": "time.now", bytes_in: 0, bytes_out: 0, "cap.budget_remaining": 1 }
      return [await Effect.runPromise(loop(n, () => Effect.withSpan(handler(noArgs, ctx), "boruna.cap", { attributes, captureStackTrace: false })))]
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
      const before = sink.spans()
      const t0 = now()
      const loopMs = await Effect.runPromise(Effect.provide(Effect.flatMap(Gateway.Gateway, (g) => loop(n, () => g.call("time.now", noArgs))), layer))
      const total = now() - t0
      if (sink.spans() - before !== n) undelivered += n - (sink.spans() - before)
      return [loopMs, total]
    }
  }
  let undelivered = 0

  const times: Record<string, Array<ReadonlyArray<number>>> = {}
  /** One table: its modes interleaved run by run (round 0 warms up). */
  const table = async (names: ReadonlyArray<string>) => {
    for (const m of names) times[m] = []
    for (let r = 0; r <= runs; r++) {
      for (const mode of names) {
        gc()
        const t = await modes[mode]()
        if (r > 0) times[mode].push(t)
      }
    }
  }
  // the untraced table first, while the JIT has seen no span code
  await table(["direct", "suspend", "off", "offRead", "directSync", "offSync"])
  await table(["rawOtel", "withSpan", "memory", "otlp"])
  await sink.close()
  await rawProvider.shutdown()

  const per = (ms: number) => (ms * 1e6) / n
  /** median ns/call of a mode, and the median over rounds of its ratio to the same round's baseline */
  const stat = (name: string, base: string, i = 0) => {
    const ns = per(median(times[name].map((t) => t[i])))
    const ratio = median(times[name].map((t, r) => t[i] / times[base][r][0]))
    return { nsPerCall: ns, ratio, base }
  }
  return [
    { mode: "direct handler call", ...stat("direct", "direct") },
    { mode: "Effect.suspend(handler) (floor)", ...stat("suspend", "direct") },
    { mode: "Gateway.call, telemetry off", ...stat("off", "direct"), note: "target ≤ 2×; the suspend row is the floor" },
    { mode: "Gateway.call, off, then read the whole log", ...stat("offRead", "direct") },
    { mode: "Gateway.call, off, Effect.sync handler", ...stat("offSync", "direct"), note: `${per(median(times.directSync.map((t) => t[0]))).toFixed(0)} ns for the Effect.sync direct call` },
    { mode: "raw OpenTelemetry span (BatchSpanProcessor, in-memory exporter)", ...stat("rawOtel", "rawOtel") },
    { mode: "Effect.withSpan, Effect's native tracer", ...stat("withSpan", "rawOtel") },
    { mode: "Gateway.call, in-memory recorder", ...stat("memory", "rawOtel"), note: "target ≤ 2×" },
    { mode: "Gateway.call, OTLP export (loop)", ...stat("otlp", "rawOtel", 0), note: "target ≤ 3×" },
    {
      mode: "Gateway.call, OTLP export (loop + flush)",
      ...stat("otlp", "rawOtel", 1),
      note: lost.length === 0 && undelivered === 0
        ? `all ${(n * runs + n).toLocaleString("en")} spans decoded by the receiver (${sink.requests()} requests)`
        : `${undelivered} span(s) NOT received; ${lost.join("; ")}`
    }
  ]
}

export const print = (rows: ReadonlyArray<Row>, calls: number): void => {
  const w = Math.max(...rows.map((r) => r.mode.length))
  process.stdout.write(`Gateway.call cost (${calls.toLocaleString("en")} calls per run, median of interleaved rounds)\n`)
  let base: string | undefined
  for (const r of rows) {
    if (r.base !== base) {
      base = r.base
      const title = rows.find((x) => x.base === base && x.ratio === 1)?.mode ?? base
      process.stdout.write(`\n${"mode".padEnd(w)}  ${"ns/call".padStart(9)}  × ${title}\n`)
    }
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
