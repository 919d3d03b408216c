/**
 * Credentials in URLs are never recorded: `https://user:pw@host/` is written to the event log and
 * to the `--record-net-to` tape (and keyed there) as `https://REDACTED@host/`. Replay computes the
 * same form from the program's arguments, so it matches the recorded one.
 *
 * Dependency-free: the gateway imports it on every call path.
 */
import type { Value } from "../Value.js"

export const REDACTED = "REDACTED"

/** The authority part of `scheme://authority…` as WHATWG ends it for http(s): at `/`, `\`, `?` or `#`. */
const RAW = /^([\t\n\r\f\v \x00-\x1f]*[A-Za-z][A-Za-z0-9+.-]*:[\\/]*)([^/\\?#]*)(.*)$/s

/**
 * `url` with any userinfo replaced by `REDACTED`; `url` itself (the same string) when it has none.
 * A URL the WHATWG parser reads userinfo from (also `http:u:p@h`, tabs and newlines inside) is
 * redacted on its parsed form; text that does not parse is redacted on its raw authority.
 */
export const redactUrl = (url: string): string => {
  if (!url.includes("@")) return url
  let parsed: URL | undefined
  try {
    parsed = new URL(url)
  } catch {
    parsed = undefined
  }
  if (parsed !== undefined) {
    if (parsed.username === "" && parsed.password === "") return url
    parsed.username = REDACTED
    parsed.password = ""
    return parsed.href
  }
  const m = RAW.exec(url)
  if (m === null) return url
  const at = m[2].lastIndexOf("@")
  return at < 0 ? url : `${m[1]}${REDACTED}${m[2].slice(at)}${m[3]}`
}

/** The `net.fetch` arguments as they are recorded: the URL argument redacted; the same array when nothing changes. */
export const recordedNetArgs = (args: ReadonlyArray<Value>): ReadonlyArray<Value> => {
  const i = args.length === 1 ? 0 : args.length === 2 || args.length === 3 ? 1 : -1
  const u = i < 0 ? undefined : args[i]
  if (typeof u !== "string") return args
  const r = redactUrl(u)
  if (r === u) return args
  const out = [...args]
  out[i] = r
  return out
}
