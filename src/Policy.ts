/**
 * Policy: which capabilities a run may use, how often, and the knobs that bound live effects.
 *
 * Decoded with `effect/Schema` from JSON. Strict: an unknown field anywhere, a wrong type, an alias
 * used as a rule key or a bad value is an error naming its JSON path (`$.rules["net"]`, …).
 * Shorthands: `allow-all`, `deny-all`.
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { createHash } from "node:crypto"
import { CAPABILITIES, isCapabilityName } from "./Capability.js"
import { parseJson, schemaIssues } from "./Json.js"
import { canonicalJson } from "./ValueJson.js"

const strict = { onExcessProperty: "error" } as const

const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())
const PositiveInt = Schema.Int.pipe(Schema.positive())

export const Rule = Schema.Struct({
  allow: Schema.Boolean,
  /** maximum number of calls in one run; 0 (or absent) ⇒ unlimited */
  budget: Schema.optionalWith(NonNegativeInt, { default: () => 0 }),
  /** every call needs a person's approval first (`boruna workflow approve`; docs/workflows.md) */
  approve: Schema.optional(Schema.Boolean)
})
export type Rule = typeof Rule.Type

const HTTP_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] as const

const HttpMethod = Schema.String.pipe(
  Schema.filter((m) =>
    (HTTP_METHODS as ReadonlyArray<string>).includes(m) ||
    ((HTTP_METHODS as ReadonlyArray<string>).includes(m.toUpperCase())
      ? `method '${m}' must be upper-case: '${m.toUpperCase()}'`
      : `unknown HTTP method '${m}' (one of ${HTTP_METHODS.join(", ")})`)
  )
)

export const NetPolicy = Schema.Struct({
  /** exact host or `*.suffix` (the suffix itself and any subdomain); empty ⇒ any public host */
  allowed_domains: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  /** upper-case HTTP methods; empty ⇒ all */
  allowed_methods: Schema.optionalWith(Schema.Array(HttpMethod), { default: () => [] }),
  max_response_bytes: Schema.optionalWith(PositiveInt, { default: () => 10 * 1024 * 1024 }),
  timeout_ms: Schema.optionalWith(PositiveInt, { default: () => 30_000 }),
  allow_redirects: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /** HTTP methods whose calls need a person's approval first (docs/workflows.md); no default, so the hash of a policy without it is unchanged */
  approve_methods: Schema.optional(Schema.Array(HttpMethod))
})
export type NetPolicy = typeof NetPolicy.Type

export const FsPolicy = Schema.Struct({
  /** directory that fs.read / fs.write are confined to; default the working directory */
  root: Schema.optional(Schema.String),
  read_only: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  // the knobs below have no schema default, so a policy that does not name them keeps its hash;
  // live/Fs.ts applies the documented defaults
  /** read a regular file whose link count is above 1 (a hard link may name a file outside the root) */
  allow_hardlinks: Schema.optional(Schema.Boolean),
  /** largest file fs.read returns (default 10 MiB), enforced while reading */
  max_read_bytes: Schema.optional(PositiveInt),
  /** largest data fs.write writes (default 10 MiB) */
  max_write_bytes: Schema.optional(PositiveInt)
})
export type FsPolicy = typeof FsPolicy.Type

export const DbPolicy = Schema.Struct({
  /** SQLite database file; default an in-memory database */
  path: Schema.optional(Schema.String),
  read_only: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  // no schema defaults (a policy that does not name them keeps its hash); live/Db.ts applies them
  /** most rows one query returns (default 10,000) */
  max_rows: Schema.optional(PositiveInt),
  /** most bytes of result text one query returns (default 10 MiB) */
  max_result_bytes: Schema.optional(PositiveInt),
  /** a query running longer is stopped (default 30,000) */
  timeout_ms: Schema.optional(PositiveInt)
})
export type DbPolicy = typeof DbPolicy.Type

export const LlmPolicy = Schema.Struct({
  /** default model when the call does not name one */
  model: Schema.optional(Schema.String),
  /** cap on completion tokens per call (sent as max_tokens) */
  max_tokens: Schema.optional(PositiveInt),
  /** models a call may name; empty ⇒ any */
  allowed_models: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] })
})
export type LlmPolicy = typeof LlmPolicy.Type

const ruleKeyIssue = (k: string): string | undefined => {
  if (isCapabilityName(k)) return undefined
  if (k === "fs") {
    return `'fs' is an annotation alias for both file capabilities; policy rules use canonical names: write one rule for 'fs.read' and one for 'fs.write'`
  }
  const c = CAPABILITIES.find((c) => (c.aliases as ReadonlyArray<string>).includes(k))
  return c
    ? `'${k}' is an alias; policy rules use canonical names: use '${c.name}'`
    : `unknown capability '${k}' (known: ${CAPABILITIES.map((c) => c.name).join(", ")})`
}

const Rules = Schema.Record({ key: Schema.String, value: Rule }).pipe(
  Schema.filter((rules) => {
    const issues: Array<Schema.FilterIssue> = []
    for (const k of Object.keys(rules)) {
      const m = ruleKeyIssue(k)
      if (m !== undefined) issues.push({ path: [k], message: m })
    }
    return issues
  })
)

export const PolicySchema = Schema.Struct({
  schema_version: Schema.optionalWith(Schema.Literal(1), { default: () => 1 as const }),
  default_allow: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  rules: Schema.optionalWith(Rules, { default: () => ({}) }),
  net_policy: Schema.optional(NetPolicy),
  fs_policy: Schema.optional(FsPolicy),
  db_policy: Schema.optional(DbPolicy),
  llm_policy: Schema.optional(LlmPolicy)
})
export type Policy = typeof PolicySchema.Type

import { allowAll, denyAll } from "./PolicyCore.js"
export { allowAll, budgetOf, denyAll, isAllowed } from "./PolicyCore.js"

export class PolicyError extends Error {
  readonly _tag = "PolicyError"
  constructor(
    readonly source: string,
    readonly issues: ReadonlyArray<{ readonly path: string; readonly message: string }>
  ) {
    super(issues.map((i) => `${source}: ${i.path}: ${i.message}`).join("\n"))
  }
}

const decodeUnknown = Schema.decodeUnknownEither(PolicySchema, { errors: "all", ...strict })

/** Decode an already-parsed JSON value. */
export const decodePolicy = (json: unknown, source = "policy"): Either.Either<Policy, PolicyError> => {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return Either.left(new PolicyError(source, [{ path: "$", message: `expected a JSON object (or "allow-all" / "deny-all"), got ${Array.isArray(json) ? "an array" : JSON.stringify(json)}` }]))
  }
  return Either.mapLeft(decodeUnknown(json), (e) => new PolicyError(source, schemaIssues(e)))
}

/** Decode JSON text (syntax errors name line and column) or a shorthand. */
export const parsePolicy = (text: string, source = "policy"): Either.Either<Policy, PolicyError> => {
  const t = text.trim()
  if (t === "allow-all") return Either.right(allowAll)
  if (t === "deny-all") return Either.right(denyAll)
  const json = parseJson(text)
  if (!json.ok) return Either.left(new PolicyError(source, [{ path: json.where, message: json.message }]))
  return decodePolicy(json.value, source)
}

/** The policy with every default filled in, as plain JSON. */
export const policyToJson = (p: Policy): unknown => Schema.encodeSync(PolicySchema)(p)

/** Stable identity of a policy: SHA-256 over its canonical JSON (defaults filled, keys sorted). */
export const policyHash = (p: Policy): string =>
  "sha256:" + createHash("sha256").update(canonicalJson(policyToJson(p))).digest("hex")
