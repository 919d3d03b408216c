/**
 * A loopback HTTP server for tests: 127.0.0.1, an ephemeral port, every request recorded, closed
 * (connections included) when the test's scope closes.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

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
