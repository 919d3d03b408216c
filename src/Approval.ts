/**
 * Approvals bound to what will happen.
 *
 * - Which calls need one: a policy rule with `"approve": true` for the capability, or a `net.fetch`
 *   whose HTTP method is in `net_policy.approve_methods`.
 * - The digest an approval is for: SHA-256 over canonical JSON of
 *   `[run_id, step_id, attempt, seq, capability, [args as Value JSON]]` (`callDigest`); a gate's
 *   digest is over `[run_id, step_id, "approval_gate"]`, a trigger's over `[run_id, step_id, "external_trigger"]`.
 * - Tokens: `bwt_` + 16 random bytes in base64url, printed once; only their SHA-256 is stored (`tokenHash`).
 *   The engine's DurableDeferred token is an address, not a secret: the CLI checks this token first.
 */
import { hash, randomBytes, timingSafeEqual } from "node:crypto"
import { display, type Value } from "./Value.js"
import { canonicalJson, scalarJsonText, toJson } from "./ValueJson.js"

const sha256 = (s: string): string => hash("sha256", s, "hex")

/** Which calls need approval: `PolicyCore.needsApproval` (the gateway refuses them outside a workflow). */
export { fetchMethod, needsApproval } from "./PolicyCore.js"

/** Hex SHA-256 of the canonical JSON of the arguments. */
export const argsDigest = (args: ReadonlyArray<Value>): string => {
  if (args.length === 0) return NO_ARGS
  // Ints, strings and booleans: their canonical JSON written directly
  let text = "["
  for (let i = 0; i < args.length; i++) {
    const t = scalarJsonText(args[i])
    if (t === undefined) return sha256(canonicalJson(args.map(toJson)))
    text += (i === 0 ? "" : ",") + t
  }
  return sha256(text + "]")
}
const NO_ARGS = sha256("[]")

/** The digest a per-call approval is bound to. */
export const callDigest = (o: {
  readonly runId: string
  readonly stepId: string
  readonly attempt: number
  readonly seq: number
  readonly capability: string
  readonly args: ReadonlyArray<Value>
}): string => sha256(canonicalJson([o.runId, o.stepId, o.attempt, o.seq, o.capability, o.args.map(toJson)]))

export const gateDigest = (runId: string, stepId: string, kind: "approval_gate" | "external_trigger"): string =>
  sha256(canonicalJson([runId, stepId, kind]))

/** A fresh random token (printed once): `bwt_` + 16 random bytes in base64url (never starts with '-', which a command line would take for an option). */
export const mintToken = (): string => "bwt_" + randomBytes(16).toString("base64url")

export const tokenHash = (token: string): string => sha256(`boruna-approval-token:${token}`)

/** Constant-time comparison of a presented token against a stored hash. */
export const tokenMatches = (token: string, hash: string): boolean => {
  const a = Buffer.from(tokenHash(token), "hex")
  const b = Buffer.from(hash, "hex")
  return a.length === b.length && timingSafeEqual(a, b)
}

/** A readable one-line rendering of a call: `net.fetch("POST", "https://…", "body…")`. */
export const renderCall = (cap: string, args: ReadonlyArray<Value>, max = 300): string => {
  const parts = args.map((a) => {
    const s = typeof a === "string" ? JSON.stringify(a) : display(a)
    return s.length > max ? s.slice(0, max) + "…" : s
  })
  return `${cap}(${parts.join(", ")})`
}
