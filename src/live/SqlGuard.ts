/**
 * The statement guard of live `db.query`: a tokenizer that follows SQLite's own token rules
 * (whitespace, `--` and `/* *\/` comments, '…' strings, "…", `…` and […] quoted identifiers), so the
 * kind of a statement is decided on its first *token*, not on a prefix of the text. Leading `;`
 * (empty statements SQLite skips) are skipped here too, and `EXPLAIN [QUERY PLAN]` is looked through
 * (SQLite runs a PRAGMA's assignment while preparing it, even under EXPLAIN).
 *
 * SQLite's grammar starts every statement with one of a fixed set of keywords (SELECT, VALUES, WITH,
 * INSERT, REPLACE, UPDATE, DELETE, CREATE, DROP, ALTER, BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT,
 * RELEASE, ANALYZE, REINDEX, VACUUM, PRAGMA, ATTACH, DETACH, EXPLAIN); anything else is a syntax
 * error in SQLite's own parser, so a refusal on the first token covers every spelling of a refused
 * statement. A leading `;` (an empty statement SQLite would skip) is refused too: a query is
 * exactly one statement. That the text holds exactly one statement is checked by
 * SQLite's parser (better-sqlite3's `prepare` refuses a tail that is not whitespace or comments).
 */

export interface Token {
  /** upper-cased text of a bare word; the raw text of anything else */
  readonly text: string
  readonly kind: "word" | "quoted" | "string" | "punct" | "other"
}

const isSpace = (c: string) => c === " " || c === "\t" || c === "\n" || c === "\f" || c === "\r" || c === "\v"
// SQLite: ASCII letters, digits, `_`, `$` and every byte >= 0x80 are identifier characters
const isIdStart = (c: string) => /[A-Za-z_]/.test(c) || c.charCodeAt(0) >= 0x80
const isIdChar = (c: string) => /[A-Za-z0-9_$]/.test(c) || c.charCodeAt(0) >= 0x80

/** The significant tokens of `sql` (at most `limit`), in order; comments and whitespace dropped. */
export const tokens = (sql: string, limit = Number.POSITIVE_INFINITY): Array<Token> => {
  const out: Array<Token> = []
  let i = 0
  const n = sql.length
  while (i < n && out.length < limit) {
    const c = sql[i]
    if (isSpace(c)) {
      i++
    } else if (c === "-" && sql[i + 1] === "-") {
      const nl = sql.indexOf("\n", i + 2)
      i = nl < 0 ? n : nl + 1
    } else if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2)
      i = end < 0 ? n : end + 2
    } else if (c === "'" || c === '"' || c === "`" || c === "[") {
      const close = c === "[" ? "]" : c
      let j = i + 1
      for (;;) {
        const k = sql.indexOf(close, j)
        if (k < 0) {
          j = n
          break
        }
        if (close !== "]" && sql[k + 1] === close) {
          j = k + 2
          continue
        }
        j = k + 1
        break
      }
      out.push({ text: sql.slice(i, j), kind: c === "'" ? "string" : "quoted" })
      i = j
    } else if (isIdStart(c)) {
      let j = i + 1
      while (j < n && isIdChar(sql[j])) j++
      // ASCII upper-casing only: SQLite's keywords are ASCII and it folds nothing else
      out.push({ text: sql.slice(i, j).replace(/[a-z]+/g, (w) => w.toUpperCase()), kind: "word" })
      i = j
    } else {
      out.push({ text: c, kind: /[;(),=.]/.test(c) ? "punct" : "other" })
      i++
    }
  }
  return out
}

/** PRAGMAs no query may set: they would undo a guarantee of the connection. */
const GUARDED_PRAGMAS = new Set(["QUERY_ONLY", "WRITABLE_SCHEMA", "TRUSTED_SCHEMA", "CELL_SIZE_CHECK"])

export type Verdict =
  | { readonly ok: true; readonly keyword: string }
  | { readonly ok: false; readonly message: string; readonly denied: boolean }

/** refused by a rule of the policy (`denied`) */
const no = (message: string): Verdict => ({ ok: false, message, denied: true })
/** not one well-formed statement (a `runtime_error`) */
const malformed = (message: string): Verdict => ({ ok: false, message, denied: false })

/** Whether `sql` may be prepared by `db.query` under `readOnly`; the refusal says why. */
export const check = (sql: string, readOnly: boolean): Verdict => {
  const ts = tokens(sql)
  let i = 0
  while (i < ts.length && ts[i].text === ";") i++
  // EXPLAIN [QUERY PLAN] <stmt>: the inner statement is prepared, so it is what is judged
  if (ts[i]?.kind === "word" && ts[i].text === "EXPLAIN") {
    i++
    if (ts[i]?.text === "QUERY" && ts[i + 1]?.text === "PLAN") i += 2
  }
  const first = ts[i]
  if (first === undefined) return malformed("the query holds no SQL statement")
  const kw = first.kind === "word" ? first.text : ""
  if (kw === "ATTACH" || kw === "DETACH") return no(`${kw} is not allowed: db.query reaches only the database db_policy names`)
  if (kw === "VACUUM" && ts.slice(i + 1).some((t) => t.kind === "word" && t.text === "INTO")) {
    return no(`VACUUM INTO is not allowed: it writes a file db_policy does not name`)
  }
  if (kw === "PRAGMA") {
    if (readOnly) return no(`PRAGMA statements are not allowed with db_policy.read_only (use the pragma_* table functions)`)
    // PRAGMA [schema.]name [= value | (value)]
    let j = i + 1
    if (ts[j + 1]?.text === ".") j += 2
    const name = ts[j]
    const bare = name === undefined ? "" : name.kind === "quoted" ? name.text.slice(1, -1).toUpperCase() : name.text
    if (GUARDED_PRAGMAS.has(bare)) return no(`PRAGMA ${bare.toLowerCase()} is not allowed: the connection keeps it fixed`)
  }
  // any other first token is not a statement SQLite knows: its parser reports the syntax error
  // a query is exactly one statement: SQLite would skip an empty one before it, db.query does not
  if (ts[0].text === ";") return malformed("a query is exactly one statement: remove the empty statement (';') before it")
  return { ok: true, keyword: kw }
}
