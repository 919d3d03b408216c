/**
 * DNS-rebinding-proof egress: resolve a host once, check every address it resolved to, then connect
 * to the checked address and nothing else.
 *
 * The connection is made by `@effect/platform-node`'s `HttpClient` over a fresh `http.Agent` /
 * `https.Agent` whose `lookup` returns the pre-checked address, so Node never performs a second DNS
 * lookup (an attacker's resolver cannot answer a public address to the check and a private one to the
 * connect). The URL keeps its host name, so the `Host` header and TLS SNI/certificate checks still use
 * the name. IP-literal hosts are never looked up at all.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { promises as dns } from "node:dns"
import type { LookupFunction } from "node:net"
import { HandlerFailure } from "../Errors.js"
import { type AddressClass, classify } from "./Address.js"
import { addressNamed, type Allowlist, ipOfHost } from "./Url.js"

export interface ResolvedAddress {
  readonly address: string
  readonly family: 4 | 6
}

/** Resolves a host name to all its addresses (the system resolver by default). */
export type Resolver = (host: string) => Promise<ReadonlyArray<ResolvedAddress>>

export const systemResolver: Resolver = async (host) => {
  const all = await dns.lookup(host, { all: true, verbatim: true })
  return all.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }))
}

export interface CheckedAddress {
  readonly address: string
  readonly family: 4 | 6
  readonly class: AddressClass
}

/**
 * Resolve `host` (a canonical URL host) and check every address: a non-public address is refused
 * (`denied`) unless the allowlist names that address itself. Returns the address to connect to.
 */
export const resolveChecked = (
  host: string,
  allowlist: Allowlist,
  resolve: Resolver
): Effect.Effect<CheckedAddress, HandlerFailure> =>
  Effect.gen(function*() {
    const literal = ipOfHost(host)
    const addresses: ReadonlyArray<ResolvedAddress> = literal !== undefined
      ? [{ address: literal, family: literal.includes(":") ? 6 : 4 }]
      : yield* Effect.tryPromise({
        try: () => resolve(host),
        catch: (e) => new HandlerFailure({ message: `DNS lookup of '${host}' failed: ${errorCode(e)}` })
      })
    if (addresses.length === 0) {
      return yield* Effect.fail(new HandlerFailure({ message: `DNS lookup of '${host}' returned no address` }))
    }
    const checked: Array<CheckedAddress> = []
    for (const a of addresses) {
      const c = classify(a.address)
      if (c === undefined) {
        return yield* Effect.fail(new HandlerFailure({ message: `DNS lookup of '${host}' returned a malformed address` }))
      }
      if (c !== "public" && !addressNamed(allowlist, a.address)) {
        const via = literal !== undefined ? "" : ` (resolved from '${host}')`
        return yield* Effect.fail(
          new HandlerFailure({
            message: `${c} address ${a.address}${via} refused: net_policy.allowed_domains does not name it`,
            denied: true
          })
        )
      }
      checked.push({ address: a.address, family: a.family, class: c })
    }
    return checked[0]
  })

/** A Node `lookup` that answers every query with the one pre-checked address. */
const pinnedLookup = (pin: CheckedAddress): LookupFunction => (_hostname, options, callback) => {
  if (options.all === true) callback(null, [{ address: pin.address, family: pin.family }])
  else callback(null, pin.address, pin.family)
}

/**
 * An `HttpClient` (Node implementation) that can only connect to `pin`: built per hop, its agents
 * are destroyed with the scope. Its own tracing is off: the capability's single `boruna.cap` span is
 * the record of the call, and no trace headers leak to the remote host.
 */
export const pinnedClient = (pin: CheckedAddress): Effect.Effect<HttpClient.HttpClient, never, Scope.Scope> =>
  Effect.gen(function*() {
    const agent = yield* NodeHttpClient.makeAgent({ lookup: pinnedLookup(pin), keepAlive: false })
    const client = yield* Effect.provideService(NodeHttpClient.make, NodeHttpClient.HttpAgent, agent)
    return client.pipe(HttpClient.withTracerDisabledWhen(() => true), HttpClient.withTracerPropagation(false))
  })

/** A short, key-free description of a transport error (its errno code when it has one). */
export const errorCode = (e: unknown): string => {
  let cur: unknown = e
  for (let depth = 0; depth < 5 && cur !== null && typeof cur === "object"; depth++) {
    const o = cur as { code?: unknown; cause?: unknown; message?: unknown }
    if (typeof o.code === "string") return o.code
    if (o.cause === undefined) return typeof o.message === "string" && o.message !== "" ? o.message : "unknown error"
    cur = o.cause
  }
  return typeof cur === "string" ? cur : "unknown error"
}
