/**
 * The OTLP/HTTP transport: one POST of an already serialised export request, answered as
 * `@opentelemetry/otlp-exporter-base`'s `ExportResponse` (success / retryable with `Retry-After` /
 * failure).
 *
 * Why by hand: 0.208's export delegate takes a transport through its public
 * `createOtlpNetworkExportDelegate(options, serializer, transport)`, but its own HTTP transport is
 * not exported — only inside `createOtlpHttpExportDelegate`, already wrapped in its retrying
 * transport (no retry on a refused or reset connection, ±0.2 ms of jitter), which boruna used to
 * replace through a private field. So boruna's retries (`retrying` in Telemetry.ts) wrap this
 * transport instead, and the delegate, its configuration merge (URL, headers, compression,
 * timeout, agent) and its response handling stay the package's. The behaviour mirrors the
 * package's `sendWithHttp`: 2xx success; 429/502/503/504 retryable; anything else a failure with
 * the status; the request timeout destroys the request.
 */
import type * as Http from "node:http"

export interface ExportResponse {
  readonly status: "success" | "failure" | "retryable"
  readonly data?: Uint8Array
  readonly error?: Error
  readonly retryInMillis?: number
}

export interface ExporterTransport {
  send(data: Uint8Array, timeoutMillis: number): Promise<ExportResponse>
  shutdown(): void
}

/** The part of the package's merged node-http configuration the transport uses. */
export interface HttpTransportOptions {
  readonly url: string
  readonly headers: () => Promise<Record<string, string>>
  readonly compression: "none" | "gzip"
  readonly agentFactory: (protocol: string) => Http.Agent | Promise<Http.Agent>
  readonly userAgent?: string | undefined
}

/** An error with the HTTP status as its `code` (as the package's `OTLPExporterError`). */
export class HttpExportError extends Error {
  constructor(message: string, readonly code: number, readonly data: string) {
    super(message)
  }
}

const RETRYABLE = new Set([429, 502, 503, 504])

/** `Retry-After`: seconds, or an HTTP date; undefined when absent or unusable. */
export const parseRetryAfter = (value: string | undefined, now: number = Date.now()): number | undefined => {
  if (value === undefined || value.trim() === "") return undefined
  const v = value.trim()
  if (/^\d+$/.test(v)) return Number(v) * 1_000
  // an HTTP date names its day and month ("Tue, 01 Dec 2026 20:00:02 GMT"); Date.parse alone takes "-1"
  if (!/[A-Za-z]{3}/.test(v)) return undefined
  const at = Date.parse(v)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

export const httpTransport = (options: HttpTransportOptions, userAgent: string): ExporterTransport => {
  const url = new URL(options.url)
  let loaded: Promise<{ readonly agent: Http.Agent; readonly request: typeof Http.request }> | undefined
  const load = () =>
    loaded ??= Promise.all([
      options.agentFactory(url.protocol),
      url.protocol === "http:" ? import("node:http") : import("node:https")
    ]).then(([agent, m]) => ({ agent, request: m.request as typeof Http.request }))
  return {
    send: async (data, timeoutMillis) => {
      const [{ agent, request }, headers, zlib] = await Promise.all([
        load(),
        options.headers(),
        options.compression === "gzip" ? import("node:zlib") : Promise.resolve(undefined)
      ])
      // compressed on libuv's thread pool, not on the thread the run computes on
      const body = zlib === undefined
        ? data
        : await new Promise<Uint8Array | Error>((resolve) => zlib.gzip(data, (error, out) => resolve(error ?? out)))
      if (body instanceof Error) return { status: "failure", error: body }
      return new Promise<ExportResponse>((resolve) => {
        let done = false
        const finish = (r: ExportResponse) => {
          if (done) return
          done = true
          resolve(r)
        }
        const req = request({
          hostname: url.hostname,
          port: url.port,
          path: url.pathname + url.search,
          method: "POST",
          agent,
          headers: {
            ...headers,
            "Content-Length": String(body.length),
            ...(zlib === undefined ? {} : { "Content-Encoding": "gzip" }),
            "User-Agent": options.userAgent === undefined ? userAgent : `${options.userAgent} ${userAgent}`
          }
        }, (res) => {
          const chunks: Array<Buffer> = []
          res.on("data", (c: Buffer) => chunks.push(c))
          res.on("error", (error) => finish({ status: "failure", error }))
          res.on("end", () => {
            const status = res.statusCode ?? 0
            if (status >= 200 && status < 299) finish({ status: "success", data: Buffer.concat(chunks) })
            else if (RETRYABLE.has(status)) {
              const retryInMillis = parseRetryAfter(res.headers["retry-after"])
              finish(retryInMillis === undefined ? { status: "retryable" } : { status: "retryable", retryInMillis })
            } else finish({ status: "failure", error: new HttpExportError(res.statusMessage ?? "", status, Buffer.concat(chunks).toString()) })
          })
        })
        req.setTimeout(timeoutMillis, () => {
          req.destroy()
          finish({ status: "failure", error: new Error("Request Timeout") })
        })
        req.on("error", (error) => finish({ status: "failure", error }))
        req.end(body)
      })
    },
    shutdown: () => {}
  }
}
