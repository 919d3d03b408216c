/**
 * Security suite, db.query: SQL escapes (issue 11) and resource bounds. Every attack here worked on
 * the text-prefix guard this replaced (a leading `;` made its first keyword empty).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { createRequire } from "node:module"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Gateway from "../../src/Gateway.js"
import * as SqlGuard from "../../src/live/SqlGuard.js"
import type { Policy } from "../../src/Policy.js"
import { mkMap } from "../../src/Value.js"
import { setup } from "../live/support.js"

const tmpDir = Effect.acquireRelease(
  Effect.sync(() => NodeFs.mkdtempSync(Path.join(Os.tmpdir(), "boruna-sec-db-"))),
  (dir) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
)

type DbKnobs = NonNullable<Policy["db_policy"]>
const dbPolicy = (db: Partial<DbKnobs>): Policy => ({
  schema_version: 1,
  default_allow: false,
  rules: { "db.query": { allow: true, budget: 0 } },
  db_policy: { read_only: false, ...db }
})

const q = (sql: string, params: ReadonlyArray<string> = []) => Gateway.call("db.query", [sql, [...params]])
const outcome = (sql: string) =>
  Effect.match(q(sql), { onFailure: (e) => `${e._tag}: ${e.message}`, onSuccess: () => "ok" })

/** A second database with a secret table, and the main one with a users table. */
const fixtures = (dir: string) =>
  Effect.gen(function*() {
    const secret = Path.join(dir, "secret.db")
    yield* Effect.gen(function*() {
      yield* q("CREATE TABLE secrets (s TEXT)")
      yield* q("INSERT INTO secrets VALUES ('the-secret')")
    }).pipe(Effect.provide(setup(dbPolicy({ path: secret }))))
    const main = Path.join(dir, "app.db")
    yield* Effect.gen(function*() {
      yield* q("CREATE TABLE users (name TEXT)")
      yield* q("INSERT INTO users VALUES ('ada')")
    }).pipe(Effect.provide(setup(dbPolicy({ path: main }))))
    return { secret, main }
  })

describe("security: db.query", () => {
  it.scoped("a leading ';' (or any spelling) cannot ATTACH another database, read_only or not", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const { main, secret } = yield* fixtures(dir)
      const spellings = [
        `; ATTACH '${secret}' AS o`,
        `;;\n ;ATTACH '${secret}' AS o`,
        `/* x */ ; -- y\n attach database '${secret}' as o`,
        `\v\f;\tAtTaCh '${secret}' AS o`,
        `EXPLAIN ATTACH '${secret}' AS o`,
        `(ATTACH '${secret}' AS o)`,
        `SELECT 1; ATTACH '${secret}' AS o`
      ]
      for (const readOnly of [true, false]) {
        yield* Effect.gen(function*() {
          for (const s of spellings) {
            const r = yield* outcome(s)
            expect(r, s).not.toBe("ok")
            const read = yield* outcome("SELECT s FROM o.secrets")
            expect(read, s).toContain("no such table: o.secrets")
          }
          expect(yield* q("SELECT name FROM users")).toEqual([mkMap([["name", "ada"]])])
        }).pipe(Effect.provide(setup(dbPolicy({ path: main, read_only: readOnly }))))
      }
    }))

  it.scoped("read_only: query_only cannot be turned off, VACUUM INTO copies nothing, the file is unchanged", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const { main } = yield* fixtures(dir)
      const before = NodeFs.readFileSync(main)
      const copy = Path.join(dir, "copy.db")
      yield* Effect.gen(function*() {
        for (
          const s of [
            "; PRAGMA query_only = OFF",
            "PRAGMA \"query_only\" = 0",
            "pragma main.query_only=false",
            "EXPLAIN PRAGMA query_only = 0",
            "EXPLAIN QUERY PLAN PRAGMA query_only = 0",
            "SELECT 1; PRAGMA query_only = 0"
          ]
        ) {
          expect(yield* outcome(s), s).not.toBe("ok")
          expect(yield* outcome("INSERT INTO users VALUES ('eve')"), s).toMatch(/^Denied: /)
        }
        for (const s of [`;VACUUM INTO '${copy}'`, `vacuum main into '${copy}'`, `/**/VACUUM/**/INTO/**/'${copy}'`]) {
          expect(yield* outcome(s), s).toMatch(/^Denied: capability denied: db.query: VACUUM INTO is not allowed/)
        }
        expect(yield* outcome("SELECT 1; DELETE FROM users")).toContain("more than one statement")
        expect(yield* q("SELECT pragma_query_only.query_only AS q FROM pragma_query_only")).toEqual([mkMap([["q", "1"]])])
      }).pipe(Effect.provide(setup(dbPolicy({ path: main, read_only: true }))))
      expect(NodeFs.existsSync(copy)).toBe(false)
      expect(NodeFs.readFileSync(main).equals(before)).toBe(true)
    }))

  it.scoped(":memory: with read_only: ATTACH cannot plant a database file", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const planted = Path.join(dir, "planted.db")
      yield* Effect.gen(function*() {
        for (const s of [`; ATTACH '${planted}' AS p`, `;ATTACH DATABASE '${planted}' AS p`]) {
          expect(yield* outcome(s)).toMatch(/^Denied: capability denied: db.query: ATTACH is not allowed/)
        }
        expect(yield* outcome("CREATE TABLE t (x)")).toMatch(/^Denied: /)
      }).pipe(Effect.provide(setup(dbPolicy({ read_only: true }))))
      expect(NodeFs.readdirSync(dir)).toEqual([])
    }))

  it.scoped("read-write: one statement only; load_extension and writable_schema stay off", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const { main } = yield* fixtures(dir)
      yield* Effect.gen(function*() {
        expect(yield* outcome("SELECT 1; DROP TABLE users")).toContain("more than one statement")
        expect(yield* outcome("SELECT 1 /* a */; -- b")).toBe("ok")
        expect(yield* outcome(";SELECT 1")).toBe("RuntimeError: db.query failed: a query is exactly one statement: remove the empty statement (';') before it")
        expect(yield* outcome("SELECT load_extension('/nonexistent/lib')")).toContain("not authorized")
        expect(yield* outcome("; PRAGMA writable_schema = ON")).toMatch(/^Denied: capability denied: db.query: PRAGMA writable_schema is not allowed/)
        expect(yield* outcome("PRAGMA trusted_schema = 1")).toMatch(/^Denied: /)
        expect(yield* outcome("UPDATE sqlite_master SET sql = 'x'")).toContain("may not be modified")
        expect(yield* q("SELECT name FROM users")).toEqual([mkMap([["name", "ada"]])])
      }).pipe(Effect.provide(setup(dbPolicy({ path: main }))))
    }))

  it("the guard follows SQLite's tokens: quoted words are not keywords, comments are skipped, ';' before a statement is refused", () => {
    expect(SqlGuard.check("'ATTACH'", false).ok).toBe(true) // a string literal: a syntax error in SQLite
    expect(SqlGuard.check("\"x\" ; ATTACH", false).ok).toBe(true) // first token is an identifier
    expect(SqlGuard.check("-- ATTACH\nSELECT 1", false).ok).toBe(true)
    expect(SqlGuard.check("/* ; */ ; /* */ DETACH o", false)).toEqual({
      ok: false,
      message: "DETACH is not allowed: db.query reaches only the database db_policy names",
      denied: true
    })
    // one statement: an empty one before it is refused (not a policy denial: a malformed query)
    expect(SqlGuard.check("; SELECT 1", false)).toEqual({
      ok: false,
      message: "a query is exactly one statement: remove the empty statement (';') before it",
      denied: false
    })
    expect(SqlGuard.check("SELECT 1;", false).ok).toBe(true)
    expect(SqlGuard.check("  -- only a comment", false)).toEqual({ ok: false, message: "the query holds no SQL statement", denied: false })
    expect(SqlGuard.check("VACUUM 'INTO'", false).ok).toBe(true) // a schema name, not INTO
    expect(SqlGuard.check("VACUUM [x] INTO 'y'", false).ok).toBe(false)
    expect(SqlGuard.check("PRAGMA [writable_schema]=1", false).ok).toBe(false)
    expect(SqlGuard.check("PRAGMA user_version", true).ok).toBe(false)
    expect(SqlGuard.check("PRAGMA user_version", false).ok).toBe(true)
  })

  it.scoped("differential: whatever the spelling, a statement the guard lets through never attaches, turns query_only off or writes a copy", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      interface RawStatement { readonly reader: boolean; all(): Array<unknown>; run(): unknown }
      interface RawDb { prepare(sql: string): RawStatement; pragma(s: string, o?: { simple: boolean }): unknown; close(): void }
      const Database: new (file: string) => RawDb = createRequire(import.meta.url)("better-sqlite3")
      const raw = new Database(":memory:")
      raw.pragma("query_only = ON")
      let state = 12345
      const rand = (n: number) => {
        state = (Math.imul(state, 1103515245) + 12345) >>> 0
        return state % n
      }
      const noise = [" ", "\t", "\n", "\f", "\r", "\v", ";", " ; ", "--x\n", "/*x*/", "/* ; */", "(", "EXPLAIN ", "explain query plan ", "\u00a0", ""]
      const word = (w: string) => [...w].map((c) => (rand(2) === 0 ? c.toUpperCase() : c.toLowerCase())).join("")
      const copy = Path.join(dir, "copy.db")
      const bodies = [
        () => `${word("attach")} ':memory:' AS o${rand(1000)}`,
        () => `${word("attach")}${pick([" ", "/**/", "\n"])}${word("database")} ':memory:' AS o${rand(1000)}`,
        () => `${word("pragma")} ${pick(["", "main.", "\"main\"."])}${pick(["query_only", "\"query_only\"", "[query_only]", "`query_only`"])} ${pick(["= 0", "=OFF", "(0)", "= false"])}`,
        () => `${word("vacuum")} ${pick(["", "main ", "'main' "])}${word("into")} '${copy}'`,
        () => `${word("select")} 1`
      ]
      const pick = <A>(xs: ReadonlyArray<A>): A => xs[rand(xs.length)]
      let allowed = 0
      let refused = 0
      for (let i = 0; i < 3000; i++) {
        const sql = pick(noise) + pick(noise) + pick(bodies)() + pick(["", ";", " -- c", ";;"])
        const v = SqlGuard.check(sql, true)
        if (!v.ok) {
          refused++
          continue
        }
        allowed++
        try {
          const st = raw.prepare(sql)
          if (st.reader) st.all()
          else st.run()
        } catch {
          // SQLite refused it: fine
        }
        expect([sql, raw.prepare("PRAGMA database_list").all().length]).toEqual([sql, 1])
        expect([sql, raw.pragma("query_only", { simple: true })]).toEqual([sql, 1])
        expect([sql, NodeFs.existsSync(copy)]).toEqual([sql, false])
      }
      raw.close()
      expect(allowed).toBeGreaterThan(100)
      expect(refused).toBeGreaterThan(1000)
    }))

  it.effect("max_rows and max_result_bytes stop a query while it steps", () =>
    Effect.gen(function*() {
      const many = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 1000000) SELECT x FROM c"
      expect(yield* outcome(many)).toBe("RuntimeError: db.query failed: the result has more than 10000 rows (db_policy.max_rows)")
      expect(yield* outcome("SELECT zeroblob(200000000) AS b")).toBe(
        "RuntimeError: db.query failed: the result is larger than 10485760 bytes (db_policy.max_result_bytes)"
      )
      // exactly at the cap is fine
      const r = yield* q("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 10000) SELECT x FROM c")
      expect(Array.isArray(r) && r.length).toBe(10000)
    }).pipe(Effect.provide(setup(dbPolicy({})))))

  it.effect("policy caps: max_rows 3, max_result_bytes 10", () =>
    Effect.gen(function*() {
      expect(yield* outcome("SELECT 1 AS a UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4")).toContain("more than 3 rows")
      expect((yield* q("SELECT 1 AS a UNION ALL SELECT 2 UNION ALL SELECT 3"))).toHaveLength(3)
      expect(yield* outcome("SELECT 'abcdefghij' AS a")).toContain("larger than 10 bytes")
      expect(yield* q("SELECT 'abcdefgh' AS a")).toEqual([mkMap([["a", "abcdefgh"]])])
    }).pipe(Effect.provide(setup(dbPolicy({ max_rows: 3, max_result_bytes: 10 })))))

  const forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS n FROM c"

  it.effect("timeout_ms stops a query that never yields a row, within 1 s of the deadline", () =>
    Effect.gen(function*() {
      const t0 = Date.now()
      const r = yield* outcome(forever)
      const took = Date.now() - t0
      expect(r).toBe("RuntimeError: db.query failed: a query ran longer than 300 ms (db_policy.timeout_ms)")
      expect(took).toBeGreaterThanOrEqual(300)
      expect(took).toBeLessThan(1300)
      // the connection is gone: later calls say so
      expect(yield* outcome("SELECT 1")).toContain("the database connection is closed: a query ran longer than 300 ms")
    }).pipe(Effect.provide(setup(dbPolicy({ timeout_ms: 300 })))))

  it.live("an interrupted run (SIGINT, a run deadline) stops the running query at once", () =>
    Effect.gen(function*() {
      const t0 = Date.now()
      const r = yield* Effect.timeoutTo(q(forever), { duration: "200 millis", onSuccess: () => "done", onTimeout: () => "interrupted" })
      expect(r).toBe("interrupted")
      expect(Date.now() - t0).toBeLessThan(1200)
      expect(yield* outcome("SELECT 1")).toContain("the database connection is closed: the query was interrupted")
    }).pipe(Effect.provide(setup(dbPolicy({})))))
})
