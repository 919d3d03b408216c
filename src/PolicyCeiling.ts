/**
 * The ceiling: the most a server (`boruna mcp --policy CEILING`) may ever grant, and how a policy
 * that a client asks for is held to it.
 *
 * `narrow(ceiling, requested, raw)` gives the policy a run gets: the intersection of the two —
 * a capability only when both grant it, the smaller of two budgets, the narrower allowlist (net
 * domains and methods, LLM models), the smaller size/time/token limit, read-only when either says
 * so, a file-system root inside the ceiling's. What the request leaves out it inherits from the
 * ceiling (an absent budget is the ceiling's budget, an absent allowlist the ceiling's).
 *
 * A request that asks for *more* than the ceiling anywhere is refused, never silently cut down:
 * the refusal lists every place (JSON path, what was asked, what the ceiling allows), so the
 * caller learns exactly what it may not have. `raw` is the request as written (JSON): it tells a
 * limit the request set itself (`"timeout_ms": 60000`, compared) from one the decoder filled in
 * (inherited).
 */
import * as Either from "effect/Either"
import { resolve, relative, isAbsolute } from "node:path"
import { CAPABILITIES, type CapabilityName } from "./Capability.js"
import { classify } from "./live/Address.js"
import { ipOfHost, normaliseHost } from "./live/Url.js"
import type { DbPolicy, FsPolicy, LlmPolicy, NetPolicy, Policy, Rule } from "./Policy.js"
import { budgetOf, isAllowed } from "./PolicyCore.js"

/** One place where the request asks for more than the ceiling. */
export interface Beyond {
  /** JSON path in the requested policy, e.g. `$.rules["net.fetch"]` */
  readonly path: string
  /** what was asked, in words */
  readonly asked: string
  /** what the ceiling allows, in words */
  readonly ceiling: string
}

export class CeilingExceeded extends Error {
  readonly _tag = "CeilingExceeded"
  constructor(readonly beyond: ReadonlyArray<Beyond>) {
    super(
      "the requested policy asks for more than the server's ceiling allows: " +
        beyond.map((b) => `${b.path}: ${b.asked}, but ${b.ceiling}`).join("; ")
    )
  }
}

const NET_DEFAULTS = { max_response_bytes: 10 * 1024 * 1024, timeout_ms: 30_000, allow_redirects: true } as const

const has = (raw: unknown, ...path: ReadonlyArray<string>): boolean => {
  let o: unknown = raw
  for (const k of path) {
    if (typeof o !== "object" || o === null || Array.isArray(o) || !Object.hasOwn(o, k)) return false
    o = (o as Record<string, unknown>)[k]
  }
  return o !== undefined
}

const ruleKey = (cap: string): string => `$.rules[${JSON.stringify(cap)}]`

const listText = (xs: ReadonlyArray<string>): string => (xs.length === 0 ? "none" : xs.join(", "))

/** `*.s` covers `s` and its subdomains; an exact host covers itself. */
const domainCovered = (ceiling: ReadonlyArray<string>, asked: string): boolean => {
  const norm = (e: string): { readonly wild: boolean; readonly host: string } =>
    e.startsWith("*.")
      ? { wild: true, host: normaliseHost(e.slice(2)) ?? e.slice(2).toLowerCase() }
      : { wild: false, host: normaliseHost(e) ?? e.toLowerCase() }
  const a = norm(asked)
  if (ceiling.length === 0) {
    // an empty ceiling list means any *public* host: naming a non-public IP literal is more than that
    const ip = a.wild ? undefined : ipOfHost(a.host)
    return ip === undefined || classify(ip) === "public"
  }
  return ceiling.some((c) => {
    const e = norm(c)
    if (!e.wild) return !a.wild && e.host === a.host
    return a.host === e.host || a.host.endsWith("." + e.host)
  })
}

const insideDir = (root: string, p: string): boolean => {
  const r = relative(root, p)
  return r === "" || (!r.startsWith("..") && !isAbsolute(r))
}

/**
 * The policy a run under `ceiling` gets when `requested` is asked for, or every place it asks for
 * more. `raw` is the request as written (the parsed JSON; for a shorthand, its object form).
 * Relative paths (fs root, db path) resolve against `cwd`.
 */
export const narrow = (
  ceiling: Policy,
  requested: Policy,
  raw: unknown,
  cwd: string = process.cwd()
): Either.Either<Policy, CeilingExceeded> => {
  const beyond: Array<Beyond> = []

  // --- capabilities and budgets
  const rules: Record<string, Rule> = {}
  const viaDefault: Array<CapabilityName> = []
  for (const { name } of CAPABILITIES) {
    const granted = isAllowed(ceiling, name)
    const asked = isAllowed(requested, name)
    if (asked && !granted) {
      if (requested.rules[name] !== undefined) {
        beyond.push({ path: ruleKey(name), asked: `asks for ${name}`, ceiling: `the ceiling does not grant ${name}` })
      } else viaDefault.push(name)
    }
    const cb = budgetOf(ceiling, name)
    const rb = budgetOf(requested, name)
    if (asked && granted && rb !== undefined && cb !== undefined && rb > cb) {
      beyond.push({ path: `${ruleKey(name)}.budget`, asked: `asks for ${rb} calls`, ceiling: `the ceiling allows ${cb}` })
    }
    const budget = cb === undefined ? rb ?? 0 : rb === undefined ? cb : Math.min(cb, rb)
    // a call the ceiling says needs a person's approval keeps needing it
    const approve = ceiling.rules[name]?.approve === true || requested.rules[name]?.approve === true
    if (asked && granted && ceiling.rules[name]?.approve === true && requested.rules[name]?.approve === false) {
      beyond.push({ path: `${ruleKey(name)}.approve`, asked: "false asks to skip the approval", ceiling: `the ceiling requires a person's approval for every ${name} call` })
    }
    rules[name] = asked && granted
      ? (approve ? { allow: true, budget, approve: true } : { allow: true, budget })
      : { allow: false, budget: 0 }
  }
  if (viaDefault.length > 0) {
    beyond.push({
      path: "$.default_allow",
      asked: `true asks for every capability without a rule, among them ${viaDefault.join(", ")}`,
      ceiling: `the ceiling does not grant ${viaDefault.length === 1 ? "it" : "them"}`
    })
  }

  const out: { -readonly [K in keyof Policy]: Policy[K] } = { schema_version: 1, default_allow: false, rules }

  /** the smaller of two optional limits (`dflt` is what applies when neither names one) */
  const smaller = (path: string, asked: number | undefined, cap: number | undefined, dflt: number): number | undefined => {
    if (asked === undefined) return cap
    if (asked > (cap ?? dflt)) beyond.push({ path, asked: `asks for ${asked}`, ceiling: `the ceiling allows at most ${cap ?? dflt}` })
    return Math.min(asked, cap ?? dflt)
  }
  /** a knob this rule does not know how to compare: the request may only repeat the ceiling's value */
  const unknownKeys = (section: string, known: ReadonlyArray<string>) => {
    const r = (raw as Record<string, unknown> | undefined)?.[section]
    const c = (ceiling as unknown as Record<string, Record<string, unknown> | undefined>)[section]
    if (typeof r !== "object" || r === null) return
    for (const [k, v] of Object.entries(r)) {
      if (known.includes(k)) continue
      if (JSON.stringify(v) !== JSON.stringify(c?.[k])) {
        beyond.push({ path: `$.${section}.${k}`, asked: `sets ${JSON.stringify(v)}`, ceiling: "boruna mcp cannot tell whether that narrows the ceiling, so only the ceiling's own value is accepted" })
      }
    }
  }

  // --- net
  if (ceiling.net_policy !== undefined || requested.net_policy !== undefined) {
    const c: NetPolicy = ceiling.net_policy ?? { allowed_domains: [], allowed_methods: [], ...NET_DEFAULTS }
    const r = requested.net_policy
    let domains = c.allowed_domains
    if (r !== undefined && r.allowed_domains.length > 0) {
      r.allowed_domains.forEach((d, i) => {
        if (!domainCovered(c.allowed_domains, d)) {
          beyond.push({
            path: `$.net_policy.allowed_domains[${i}]`,
            asked: `asks for '${d}'`,
            ceiling: c.allowed_domains.length === 0
              ? "the ceiling allows public hosts only"
              : `the ceiling allows only ${listText(c.allowed_domains)}`
          })
        }
      })
      domains = r.allowed_domains
    }
    let methods = c.allowed_methods
    if (r !== undefined && r.allowed_methods.length > 0) {
      r.allowed_methods.forEach((m, i) => {
        if (c.allowed_methods.length > 0 && !c.allowed_methods.includes(m)) {
          beyond.push({ path: `$.net_policy.allowed_methods[${i}]`, asked: `asks for ${m}`, ceiling: `the ceiling allows only ${listText(c.allowed_methods)}` })
        }
      })
      methods = r.allowed_methods
    }
    const limit = (key: "max_response_bytes" | "timeout_ms"): number => {
      if (r === undefined || !has(raw, "net_policy", key)) return c[key]
      if (r[key] > c[key]) beyond.push({ path: `$.net_policy.${key}`, asked: `asks for ${r[key]}`, ceiling: `the ceiling allows at most ${c[key]}` })
      return Math.min(r[key], c[key])
    }
    const maxBytes = limit("max_response_bytes")
    const timeout = limit("timeout_ms")
    let redirects = c.allow_redirects
    if (r !== undefined && has(raw, "net_policy", "allow_redirects")) {
      if (r.allow_redirects && !c.allow_redirects) {
        beyond.push({ path: "$.net_policy.allow_redirects", asked: "asks to follow redirects", ceiling: "the ceiling does not allow them" })
      }
      redirects = c.allow_redirects && r.allow_redirects
    }
    // methods that need a person's approval: those of either
    const approveMethods = [...new Set([...(c.approve_methods ?? []), ...(r?.approve_methods ?? [])])]
    out.net_policy = {
      allowed_domains: domains,
      allowed_methods: methods,
      max_response_bytes: maxBytes,
      timeout_ms: timeout,
      allow_redirects: redirects,
      ...(c.approve_methods === undefined && r?.approve_methods === undefined ? {} : { approve_methods: approveMethods })
    }
    unknownKeys("net_policy", ["allowed_domains", "allowed_methods", "max_response_bytes", "timeout_ms", "allow_redirects", "approve_methods"])
  }

  // --- files
  if (ceiling.fs_policy !== undefined || requested.fs_policy !== undefined) {
    const c: FsPolicy = ceiling.fs_policy ?? { read_only: false }
    const r = requested.fs_policy
    const ceilingRoot = resolve(cwd, c.root ?? ".")
    let root = c.root
    if (r?.root !== undefined) {
      if (!insideDir(ceilingRoot, resolve(cwd, r.root))) {
        beyond.push({ path: "$.fs_policy.root", asked: `asks for the directory '${r.root}'`, ceiling: `the ceiling confines files to '${ceilingRoot}'` })
      }
      root = r.root
    }
    let readOnly = c.read_only
    if (r !== undefined && has(raw, "fs_policy", "read_only")) {
      if (!r.read_only && c.read_only) beyond.push({ path: "$.fs_policy.read_only", asked: "false asks to write files", ceiling: "the ceiling is read-only" })
      readOnly = c.read_only || r.read_only
    }
    let hardlinks = c.allow_hardlinks
    if (r?.allow_hardlinks !== undefined) {
      if (r.allow_hardlinks && c.allow_hardlinks !== true) {
        beyond.push({ path: "$.fs_policy.allow_hardlinks", asked: "true asks to read hard-linked files", ceiling: "the ceiling does not allow them" })
      }
      hardlinks = r.allow_hardlinks && c.allow_hardlinks === true
    }
    const maxRead = smaller("$.fs_policy.max_read_bytes", r?.max_read_bytes, c.max_read_bytes, 10 * 1024 * 1024)
    const maxWrite = smaller("$.fs_policy.max_write_bytes", r?.max_write_bytes, c.max_write_bytes, 10 * 1024 * 1024)
    out.fs_policy = {
      ...(root === undefined ? {} : { root }),
      read_only: readOnly,
      ...(hardlinks === undefined ? {} : { allow_hardlinks: hardlinks }),
      ...(maxRead === undefined ? {} : { max_read_bytes: maxRead }),
      ...(maxWrite === undefined ? {} : { max_write_bytes: maxWrite })
    }
    unknownKeys("fs_policy", ["root", "read_only", "allow_hardlinks", "max_read_bytes", "max_write_bytes"])
  }

  // --- database
  if (ceiling.db_policy !== undefined || requested.db_policy !== undefined) {
    const c: DbPolicy = ceiling.db_policy ?? { read_only: false }
    const r = requested.db_policy
    if (r?.path !== undefined && (c.path === undefined || resolve(cwd, r.path) !== resolve(cwd, c.path))) {
      beyond.push({
        path: "$.db_policy.path",
        asked: `asks for the database '${r.path}'`,
        ceiling: c.path === undefined ? "the ceiling allows only an in-memory database" : `the ceiling allows only '${c.path}'`
      })
    }
    let readOnly = c.read_only
    if (r !== undefined && has(raw, "db_policy", "read_only")) {
      if (!r.read_only && c.read_only) beyond.push({ path: "$.db_policy.read_only", asked: "false asks to write", ceiling: "the ceiling is read-only" })
      readOnly = c.read_only || r.read_only
    }
    const maxRows = smaller("$.db_policy.max_rows", r?.max_rows, c.max_rows, 10_000)
    const maxResult = smaller("$.db_policy.max_result_bytes", r?.max_result_bytes, c.max_result_bytes, 10 * 1024 * 1024)
    const dbTimeout = smaller("$.db_policy.timeout_ms", r?.timeout_ms, c.timeout_ms, 30_000)
    out.db_policy = {
      ...(c.path === undefined ? {} : { path: c.path }),
      read_only: readOnly,
      ...(maxRows === undefined ? {} : { max_rows: maxRows }),
      ...(maxResult === undefined ? {} : { max_result_bytes: maxResult }),
      ...(dbTimeout === undefined ? {} : { timeout_ms: dbTimeout })
    }
    unknownKeys("db_policy", ["path", "read_only", "max_rows", "max_result_bytes", "timeout_ms"])
  }

  // --- model
  if (ceiling.llm_policy !== undefined || requested.llm_policy !== undefined) {
    const c: LlmPolicy = ceiling.llm_policy ?? { allowed_models: [] }
    const r = requested.llm_policy
    let models = c.allowed_models
    if (r !== undefined && r.allowed_models.length > 0) {
      r.allowed_models.forEach((m, i) => {
        if (c.allowed_models.length > 0 && !c.allowed_models.includes(m)) {
          beyond.push({ path: `$.llm_policy.allowed_models[${i}]`, asked: `asks for '${m}'`, ceiling: `the ceiling allows only ${listText(c.allowed_models)}` })
        }
      })
      models = r.allowed_models
    }
    const model = r?.model ?? c.model
    if (r?.model !== undefined && c.allowed_models.length > 0 && !c.allowed_models.includes(r.model)) {
      beyond.push({ path: "$.llm_policy.model", asked: `asks for '${r.model}'`, ceiling: `the ceiling allows only ${listText(c.allowed_models)}` })
    }
    let maxTokens = c.max_tokens
    if (r?.max_tokens !== undefined) {
      if (c.max_tokens !== undefined && r.max_tokens > c.max_tokens) {
        beyond.push({ path: "$.llm_policy.max_tokens", asked: `asks for ${r.max_tokens}`, ceiling: `the ceiling allows at most ${c.max_tokens}` })
      }
      maxTokens = c.max_tokens === undefined ? r.max_tokens : Math.min(c.max_tokens, r.max_tokens)
    }
    out.llm_policy = {
      allowed_models: models,
      ...(model === undefined ? {} : { model }),
      ...(maxTokens === undefined ? {} : { max_tokens: maxTokens })
    }
    unknownKeys("llm_policy", ["allowed_models", "model", "max_tokens"])
  }

  // a section this rule does not know: only the ceiling's own value is accepted, and kept
  const KNOWN = ["schema_version", "default_allow", "rules", "net_policy", "fs_policy", "db_policy", "llm_policy"]
  for (const k of Object.keys(ceiling)) if (!KNOWN.includes(k)) (out as Record<string, unknown>)[k] = (ceiling as unknown as Record<string, unknown>)[k]
  if (typeof raw === "object" && raw !== null) {
    for (const [k, v] of Object.entries(raw)) {
      if (!KNOWN.includes(k) && JSON.stringify(v) !== JSON.stringify((ceiling as unknown as Record<string, unknown>)[k])) {
        beyond.push({ path: `$.${k}`, asked: `sets ${JSON.stringify(v)}`, ceiling: "boruna mcp cannot tell whether that narrows the ceiling, so only the ceiling's own value is accepted" })
      }
    }
  }

  return beyond.length > 0 ? Either.left(new CeilingExceeded(beyond)) : Either.right(out)
}

/** The capabilities a policy grants, with their budgets (undefined: unlimited). */
export const grants = (p: Policy): ReadonlyArray<{ readonly capability: CapabilityName; readonly budget: number | undefined }> =>
  CAPABILITIES.filter((c) => isAllowed(p, c.name)).map((c) => ({ capability: c.name, budget: budgetOf(p, c.name) }))
