/**
 * Live `net.fetch(url)` / `net.fetch(method, url, body)` → String (the response body).
 *
 * Per hop (the first request and every redirect): parse the URL (http/https only), normalise the
 * host, check it against `net_policy.allowed_domains`, resolve it once and check every address (see
 * `Egress.ts`), then connect to the checked address. Each hop's decision is a `net.hop` event on the
 * call's `boruna.cap` span. A 2xx body is read under `max_response_bytes`; any other final status is
 * a `runtime_error` (`HTTP <status> from <origin>`). `timeout_ms` bounds the whole call (DNS, every
 * hop and the body).
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { HandlerFailure } from "../Errors.js"
import type { Handler, HandlerContext } from "../Handlers.js"
import { NetPolicy } from "../Policy.js"
import { typeName, type Value } from "../Value.js"
import { readCapped } from "./Body.js"
import { type CheckedAddress, errorCode, pinnedClient, resolveChecked, type Resolver, systemResolver } from "./Egress.js"
import { type Allowlist, hostAllowed, hostOf } from "./Url.js"
import { redactUrl } from "./Userinfo.js"

/** The most redirects one call follows (when `allow_redirects` is true). */
export const MAX_REDIRECTS = 10

const METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] as const
type Method = (typeof METHODS)[number]
const isMethod = (s: string): s is Method => (METHODS as ReadonlyArray<string>).includes(s)

export const defaultNetPolicy: NetPolicy = Schema.decodeSync(NetPolicy)({})

const fail = (message: string) => Effect.fail(new HandlerFailure({ message }))
const deny = (message: string) => Effect.fail(new HandlerFailure({ message, denied: true }))

interface Request {
  readonly method: Method
  readonly url: string
  readonly body: string | undefined
}

const parseArgs = (args: ReadonlyArray<Value>): Effect.Effect<Request, HandlerFailure> => {
  const str = (i: number, what: string): Effect.Effect<string, HandlerFailure> => {
    const v = args[i]
    return typeof v === "string" ? Effect.succeed(v) : fail(`${what} must be a String, got ${typeName(v)}`)
  }
  if (args.length === 1) return Effect.map(str(0, "url"), (url) => ({ method: "GET" as const, url, body: undefined }))
  if (args.length === 2 || args.length === 3) {
    return Effect.gen(function*() {
      const m = (yield* str(0, "method")).toUpperCase()
      if (!isMethod(m)) return yield* fail(`unsupported HTTP method '${m}' (use one of ${METHODS.join(", ")})`)
      const url = yield* str(1, "url")
      const body = args.length === 3 ? yield* str(2, "body") : ""
      if (body !== "" && (m === "GET" || m === "HEAD")) return yield* fail(`a ${m} request takes no body`)
      return { method: m, url, body: body === "" ? undefined : body }
    })
  }
  return fail(`expected net.fetch(url) or net.fetch(method, url, body), got ${args.length} arguments`)
}

const looksLikeJson = (s: string): boolean => {
  const t = s.trimStart()
  if (!t.startsWith("{") && !t.startsWith("[")) return false
  try {
    JSON.parse(s)
    return true
  } catch {
    return false
  }
}

const buildRequest = (r: Request): HttpClientRequest.HttpClientRequest => {
  const base = HttpClientRequest.make(r.method)(r.url, {
    headers: { "user-agent": "boruna", accept: "*/*" }
  })
  return r.body === undefined
    ? base
    : HttpClientRequest.bodyText(base, r.body, looksLikeJson(r.body) ? "application/json" : "text/plain; charset=utf-8")
}

const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308])

export interface NetFetchOptions {
  readonly allowlist: Allowlist
  readonly net: NetPolicy
  /** host resolver; the system resolver unless a test supplies one */
  readonly resolve?: Resolver
}

/** The live `net.fetch` handler under a compiled allowlist and the policy's net knobs. */
export const make = (options: NetFetchOptions): Handler => {
  const { allowlist, net } = options
  const resolve = options.resolve ?? systemResolver
  const allowedMethods = new Set<string>(net.allowed_methods)
  const liveClock = Clock.make()

  /** Check one hop; on success, the URL (userinfo removed) and the address to connect to. */
  const checkHop = (ctx: HandlerContext, hop: number, raw: string, base: URL | undefined) =>
    Effect.gen(function*() {
      const decide = (decision: "allow" | "deny", attrs: Record<string, string | number>) =>
        ctx.event("net.hop", { "net.hop": hop, "net.decision": decision, ...attrs })
      let url: URL
      try {
        url = base === undefined ? new URL(raw) : new URL(raw, base)
      } catch {
        decide("deny", { "net.reason": "invalid URL" })
        // the message is recorded (CapError, stderr): never with the URL's credentials
        const shown = redactUrl(raw)
        return yield* fail(hop === 0 ? `invalid URL '${shown}'` : `redirect to an invalid URL '${shown}'`)
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        decide("deny", { "net.scheme": url.protocol.slice(0, -1), "net.reason": "scheme" })
        return yield* deny(`scheme '${url.protocol.slice(0, -1)}' is not allowed (http and https only)`)
      }
      // credentials in a URL are never sent (and never reach an event)
      url.username = ""
      url.password = ""
      const host = hostOf(url)
      const where = { "net.scheme": url.protocol.slice(0, -1), "net.host": host, "net.port": Number(url.port || (url.protocol === "https:" ? 443 : 80)) }
      if (!hostAllowed(allowlist, host)) {
        decide("deny", { ...where, "net.reason": "host not in allowlist" })
        return yield* deny(`host '${host}' is not in net_policy.allowed_domains [${allowlist.written.join(", ")}]`)
      }
      const pin: CheckedAddress = yield* resolveChecked(host, allowlist, resolve).pipe(
        Effect.tapError((e) =>
          Effect.sync(() => decide("deny", { ...where, "net.reason": e.denied ? "address refused" : "dns failure" }))
        )
      )
      decide("allow", { ...where, "net.address": pin.address, "net.address_class": pin.class })
      return { url, pin }
    })

  const run = (req: Request, ctx: HandlerContext): Effect.Effect<string, HandlerFailure> =>
    Effect.gen(function*() {
      let current: Request = req
      let base: URL | undefined
      for (let hop = 0; ; hop++) {
        const { url, pin } = yield* checkHop(ctx, hop, current.url, base)
        const outcome = yield* Effect.scoped(
          Effect.gen(function*() {
            const client = yield* pinnedClient(pin)
            const response = yield* client.execute(buildRequest({ ...current, url: url.href })).pipe(
              Effect.mapError((e) => new HandlerFailure({ message: `request to ${url.origin} failed: ${errorCode(e)}` }))
            )
            const location = response.headers["location"]
            if (REDIRECT_STATUS.has(response.status) && location !== undefined) {
              return { _tag: "redirect" as const, status: response.status, location }
            }
            if (response.status < 200 || response.status > 299) {
              return yield* fail(`HTTP ${response.status} from ${url.origin}`)
            }
            if (current.method === "HEAD") return { _tag: "body" as const, body: "" }
            const body = yield* readCapped(response, net.max_response_bytes, `response body from ${url.origin}`)
            return { _tag: "body" as const, body }
          })
        )
        if (outcome._tag === "body") {
          ctx.annotate("http.response.hops", hop + 1)
          return outcome.body
        }
        if (!net.allow_redirects) {
          return yield* deny(`redirect (HTTP ${outcome.status}) not followed: net_policy.allow_redirects is false`)
        }
        if (hop + 1 > MAX_REDIRECTS) return yield* fail(`too many redirects (more than ${MAX_REDIRECTS})`)
        // 303, and 301/302 after a POST, continue as GET without a body (what browsers do)
        const toGet = outcome.status === 303 ? current.method !== "HEAD" : (outcome.status === 301 || outcome.status === 302) && current.method === "POST"
        current = toGet ? { method: "GET", url: outcome.location, body: undefined } : { ...current, url: outcome.location }
        if (toGet && allowedMethods.size > 0 && !allowedMethods.has("GET")) {
          return yield* deny(`redirect turns the request into GET, which net_policy.allowed_methods does not allow`)
        }
        base = url
      }
    })

  return (args, ctx) =>
    Effect.gen(function*() {
      const req = yield* parseArgs(args)
      if (allowedMethods.size > 0 && !allowedMethods.has(req.method)) {
        return yield* deny(`method ${req.method} is not in net_policy.allowed_methods [${[...allowedMethods].join(", ")}]`)
      }
      ctx.annotate("http.request.method", req.method)
      return yield* run(req, ctx).pipe(
        Effect.timeoutFail({
          duration: Duration.millis(net.timeout_ms),
          onTimeout: () => new HandlerFailure({ message: `timed out after ${net.timeout_ms} ms (net_policy.timeout_ms)` })
        }),
        // a real-world bound: always the wall clock, even under a TestClock
        Effect.withClock(liveClock)
      )
    })
}
