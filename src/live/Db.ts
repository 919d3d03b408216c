/**
 * Live `db.query(sql, params)` → `List<Map<String, String>>` on SQLite through
 * `@effect/sql-sqlite-node` (better-sqlite3). The database is the file `db_policy.path` names
 * (default `:memory:`, fresh per run).
 *
 * - Parameters are bound positionally (`?`), never interpolated: a String binds as TEXT, an Int as
 *   INTEGER, a Float as REAL, a Bool as 1/0.
 * - Each row is a map from column name to text: TEXT as-is, INTEGER in decimal (exact, 64-bit),
 *   REAL in the `.ax` Float form (`1.0`, `2.5`), BLOB as lower-case hex; a NULL column is absent
 *   from the row's map (so `map_get` gives `None`). A statement that returns no rows gives `[]`.
 * - `ATTACH` / `DETACH` / `VACUUM … INTO` are always `denied` (they would reach files the policy does
 *   not name). With `db_policy.read_only`, a file database is opened read-only, the connection is
 *   `query_only`, `PRAGMA` statements are `denied`, and any write SQLite refuses is `denied`.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import { HandlerFailure } from "../Errors.js"
import type { Handler } from "../Handlers.js"
import { AxFloat, formatFloat, mkMap, typeName, type Value } from "../Value.js"

const fail = (message: string) => Effect.fail(new HandlerFailure({ message }))
const deny = (message: string) => Effect.fail(new HandlerFailure({ message, denied: true }))

/** The first keyword of a statement, after whitespace and comments, upper-cased. */
export const leadingKeyword = (sql: string): string => {
  let s = sql
  for (;;) {
    const t = s.trimStart()
    if (t.startsWith("--")) {
      const nl = t.indexOf("\n")
      s = nl < 0 ? "" : t.slice(nl + 1)
    } else if (t.startsWith("/*")) {
      const end = t.indexOf("*/", 2)
      s = end < 0 ? "" : t.slice(end + 2)
    } else {
      s = t
      break
    }
  }
  const m = /^[A-Za-z]+/.exec(s)
  return m === null ? "" : m[0].toUpperCase()
}

const renderCell = (v: unknown): string | undefined => {
  if (v === null || v === undefined) return undefined
  if (typeof v === "string") return v
  if (typeof v === "bigint") return v.toString()
  if (typeof v === "number") return formatFloat(v) // REAL (INTEGER columns arrive as bigint)
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex")
  return String(v)
}

const toParam = (v: Value, i: number): Effect.Effect<string | bigint | number, HandlerFailure> => {
  if (typeof v === "string") return Effect.succeed(v)
  if (typeof v === "number" || typeof v === "bigint") return Effect.succeed(BigInt(v))
  if (typeof v === "boolean") return Effect.succeed(v ? 1n : 0n)
  if (v instanceof AxFloat) return Effect.succeed(v.value)
  return fail(`parameter ${i + 1} must be a String (or Int, Float, Bool), got ${typeName(v)}`)
}

/** The SQLite message of a statement failure (its cause), never the statement or parameters. */
const sqliteMessage = (e: SqlError): { readonly message: string; readonly code: string | undefined } => {
  const c = e.cause
  if (c !== null && typeof c === "object") {
    const code = "code" in c && typeof c.code === "string" ? c.code : undefined
    const message = "message" in c && typeof c.message === "string" ? c.message : e.message
    return { message, code }
  }
  return { message: e.message, code: undefined }
}

export interface DbOptions {
  readonly sql: SqlClient.SqlClient
  readonly readOnly: boolean
}

export const make = (options: DbOptions): Handler => {
  const { sql, readOnly } = options
  return (args) =>
    Effect.gen(function*() {
      if (args.length < 1 || args.length > 2) return yield* fail(`expected db.query(sql, params), got ${args.length} arguments`)
      const query = args[0]
      if (typeof query !== "string") return yield* fail(`sql must be a String, got ${typeName(query)}`)
      const rawParams = args.length === 2 ? args[1] : []
      if (!Array.isArray(rawParams)) return yield* fail(`params must be a List, got ${typeName(rawParams as Value)}`)
      const params = yield* Effect.forEach(rawParams as ReadonlyArray<Value>, toParam)

      const kw = leadingKeyword(query)
      if (kw === "ATTACH" || kw === "DETACH") return yield* deny(`${kw} is not allowed: db.query reaches only the database db_policy names`)
      if (kw === "VACUUM" && /\bINTO\b/i.test(query)) return yield* deny(`VACUUM INTO is not allowed: it writes a file db_policy does not name`)
      if (readOnly && kw === "PRAGMA") return yield* deny(`PRAGMA statements are not allowed with db_policy.read_only (use the pragma_* table functions)`)

      const rows = yield* sql.unsafe<Record<string, unknown>>(query, params).pipe(
        Effect.provideService(SqlClient.SafeIntegers, true),
        // the capability's boruna.cap span is the record; no per-statement span carrying the SQL
        Effect.withTracerEnabled(false),
        Effect.catchAll((e) => {
          const { message, code } = sqliteMessage(e)
          return readOnly && code !== undefined && code.startsWith("SQLITE_READONLY")
            ? deny(`the database is read-only (db_policy.read_only): ${message}`)
            : fail(message)
        })
      )
      return rows.map((row) => {
        const pairs: Array<readonly [string, string]> = []
        for (const [k, v] of Object.entries(row)) {
          const s = renderCell(v)
          if (s !== undefined) pairs.push([k, s])
        }
        return mkMap(pairs)
      })
    })
}
