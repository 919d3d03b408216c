/**
 * Reading JSON from outside (policy files, event logs, net tapes): one way to name where a problem
 * is — `line L, column C` for a syntax error, a JSON path (`$.rules["time.now"].allow`) for a
 * value the Schema decoder refused.
 */
import * as ParseResult from "effect/ParseResult"
import { jsonErrorOffset, lineCol } from "./JsonLocate.js"

/** `$`, `.name`, `["odd key"]`, `[3]`: the path format every error message uses. */
export const jsonPath = (path: ReadonlyArray<PropertyKey>): string =>
  "$" +
  path
    .map((p) =>
      typeof p === "number" ? `[${p}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(String(p)) ? `.${String(p)}` : `[${JSON.stringify(String(p))}]`
    )
    .join("")

export type JsonText =
  | { readonly ok: true; readonly value: unknown }
  /** `where`: `line L, column C` when the parser says where, else `$` */
  | { readonly ok: false; readonly where: string; readonly message: string }

/**
 * `JSON.parse` with the syntax error's place as line and column: from V8's "at position N" when
 * the message has one, else from our own scanner (V8 gives none for e.g. "Unexpected end of JSON
 * input" or an unexpected token).
 */
export const parseJson = (text: string): JsonText => {
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e)
    const m = /position (\d+)/.exec(msg)
    const offset = m !== null ? Number(m[1]) : jsonErrorOffset(text)
    if (offset === undefined) return { ok: false, where: "$", message: `invalid JSON: ${msg}` }
    const { line, col } = lineCol(text, offset)
    return { ok: false, where: `line ${line}, column ${col}`, message: `invalid JSON: ${msg}` }
  }
}

/**
 * A Schema decode error as `{path, message}` issues. An optional field's schema is a union with
 * `undefined`, whose second branch only restates the first ("Expected undefined, actual …"): dropped.
 */
export const schemaIssues = (e: ParseResult.ParseError): ReadonlyArray<{ readonly path: string; readonly message: string }> => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(e)
    .filter((i) => !i.message.startsWith("Expected undefined, actual"))
    .map((i) => ({ path: jsonPath(i.path), message: i.message }))
  return issues.length > 0 ? issues : [{ path: "$", message: "invalid" }]
}
