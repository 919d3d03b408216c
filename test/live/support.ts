/**
 * Shared helpers of the live-capability tests: the gateway over `Live.layer` with the in-memory span
 * recorder and event log, and loopback HTTP servers that live for one test's scope.
 */
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as EventLog from "../../src/EventLog.js"
import * as Gateway from "../../src/Gateway.js"
import * as Live from "../../src/Live.js"
import type { Policy } from "../../src/Policy.js"
import * as Telemetry from "../../src/Telemetry.js"

/** Gateway under `policy` over the live handlers, with the event log and span recorder exposed. */
export const setup = (policy: Policy, options: Live.LiveOptions = {}) =>
  Gateway.layer(policy).pipe(
    Layer.provideMerge(Layer.mergeAll(Live.layer(policy, options), EventLog.memory, Telemetry.memory))
  )

export const capSpans = Effect.map(Telemetry.SpanRecorder, (r) => r.spans().filter((s) => s.name === "boruna.cap"))

/** The same, with the live layer's configuration (OPENAI_* variables) read from `env` instead of the process. */
export const setupWithEnv = (policy: Policy, env: Record<string, string>, options: Live.LiveOptions = {}) =>
  Gateway.layer(policy).pipe(
    Layer.provideMerge(Layer.mergeAll(
      Live.layer(policy, options).pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))),
      EventLog.memory,
      Telemetry.memory
    ))
  )

/** Every span the recorder holds (a live handler must not add spans of its own). */
export const allSpans = Effect.map(Telemetry.SpanRecorder, (r) => r.spans())

export const events = Effect.map(EventLog.EventLog, (l) => l.events())

export interface TestServer {
  readonly port: number
  readonly origin: string
  /** requests received, in order */
  readonly requests: Array<{ method: string; url: string; headers: Http.IncomingHttpHeaders; body: string }>
}

/** An HTTP server on 127.0.0.1 (ephemeral port), closed when the scope closes. */
export const server = (
  handler: (req: Http.IncomingMessage, body: string, res: Http.ServerResponse) => void
): Effect.Effect<TestServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ srv: Http.Server; info: TestServer }>((resume) => {
      const requests: TestServer["requests"] = []
      const srv = Http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8")
          requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body })
          handler(req, body, res)
        })
      })
      srv.listen(0, "127.0.0.1", () => {
        const port = (srv.address() as AddressInfo).port
        resume(Effect.succeed({ srv, info: { port, origin: `http://127.0.0.1:${port}`, requests } }))
      })
    }),
    ({ srv }) =>
      Effect.async<void>((resume) => {
        srv.closeAllConnections()
        srv.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ info }) => info))

/** JSON text of anything a test recorded (spans hold bigint times). */
export const dump = (x: unknown): string => JSON.stringify(x, (_k, v) => (typeof v === "bigint" ? v.toString() : v))
