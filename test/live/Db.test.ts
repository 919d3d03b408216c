import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Gateway from "../../src/Gateway.js"
import * as Live from "../../src/Live.js"
import type { Policy } from "../../src/Policy.js"
import { AxFloat, formatFloat, mkMap, show } from "../../src/Value.js"
import { capSpans, dump, events, setup } from "./support.js"

const tmpDir = Effect.acquireRelease(
  Effect.sync(() => NodeFs.mkdtempSync(Path.join(Os.tmpdir(), "boruna-db-"))),
  (dir) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
)

const dbPolicy = (db: { path?: string; read_only?: boolean }): Policy => ({
  schema_version: 1,
  default_allow: false,
  rules: { "db.query": { allow: true, budget: 0 } },
  db_policy: { read_only: false, ...db }
})

const seed = [
  "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL, big INTEGER, avatar BLOB, note TEXT)",
  "INSERT INTO users (id, name, score, big, avatar, note) VALUES (1, 'ada', 1.0, 9007199254740993, x'00ff10', NULL)",
  "INSERT INTO users (id, name, score, big, avatar, note) VALUES (2, 'bob', 2.5, -3, NULL, 'hi')"
]

describe("live db.query", () => {
  it.scoped("a SQLite file: rows are maps of text; parameters are bound, never interpolated", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const file = Path.join(dir, "app.db")
      yield* Effect.gen(function*() {
        for (const s of seed) expect(yield* Gateway.call("db.query", [s, []])).toEqual([])
        const rows = yield* Gateway.call("db.query", ["SELECT id, name, score, big, avatar, note FROM users ORDER BY id", []])
        expect(show(rows)).toBe(
          `[{"avatar": "00ff10", "big": "9007199254740993", "id": "1", "name": "ada", "score": "1.0"}, ` +
            `{"big": "-3", "id": "2", "name": "bob", "note": "hi", "score": "2.5"}]`
        )
        // a classic injection string is just a value
        const inj = yield* Gateway.call("db.query", ["SELECT name FROM users WHERE name = ?", ["x' OR '1'='1"]])
        expect(inj).toEqual([])
        const one = yield* Gateway.call("db.query", ["SELECT name FROM users WHERE id = ? AND name = ?", [2, "bob"]])
        expect(one).toEqual([mkMap([["name", "bob"]])])
        yield* Gateway.call("db.query", ["INSERT INTO users (id, name, score) VALUES (?, ?, ?)", ["3", "o'neil; DROP TABLE users", new AxFloat(0.5)]])
        const count = yield* Gateway.call("db.query", ["SELECT count(*) AS n FROM users", []])
        expect(count).toEqual([mkMap([["n", "3"]])])
        const spans = yield* capSpans
        expect(spans.every((s) => s.attributes["cap.name"] === "db.query" && s.status === "ok")).toBe(true)
        expect(spans[3].attributes["bytes_out"]).toBeGreaterThan(0)
      }).pipe(Effect.provide(setup(dbPolicy({ path: file }))))
      // the data is in the file, and no WAL side files were made
      expect(NodeFs.existsSync(file)).toBe(true)
      expect(NodeFs.readdirSync(dir)).toEqual(["app.db"])
      // a fresh run sees the same data
      const again = yield* Gateway.call("db.query", ["SELECT name FROM users ORDER BY id", []]).pipe(
        Effect.provide(setup(dbPolicy({ path: file })))
      )
      expect(again).toEqual(["ada", "bob", "o'neil; DROP TABLE users"].map((n) => mkMap([["name", n]])))
    }))

  it.scoped("read_only: reads work; writes, PRAGMA and ATTACH are denied; the file is unchanged", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const file = Path.join(dir, "ro.db")
      yield* Effect.forEach(seed, (s) => Gateway.call("db.query", [s, []])).pipe(Effect.provide(setup(dbPolicy({ path: file }))))
      const before = NodeFs.readFileSync(file)
      yield* Effect.gen(function*() {
        expect(yield* Gateway.call("db.query", ["SELECT name FROM users WHERE id = ?", ["1"]])).toEqual([mkMap([["name", "ada"]])])
        const w = yield* Effect.flip(Gateway.call("db.query", ["UPDATE users SET name = 'eve'", []]))
        expect(w._tag).toBe("Denied")
        expect(w.message).toContain("the database is read-only (db_policy.read_only)")
        const d = yield* Effect.flip(Gateway.call("db.query", ["/* sneaky */ DROP TABLE users", []]))
        expect(d._tag).toBe("Denied")
        const p = yield* Effect.flip(Gateway.call("db.query", ["pragma query_only = 0", []]))
        expect(p._tag).toBe("Denied")
        expect(p.message).toContain("PRAGMA statements are not allowed")
        const a = yield* Effect.flip(Gateway.call("db.query", ["-- comment\n ATTACH DATABASE ? AS other", [Path.join(dir, "x.db")]]))
        expect(a._tag).toBe("Denied")
        expect((yield* capSpans).map((s) => s.attributes["error.kind"])).toEqual([undefined, "denied", "denied", "denied", "denied"])
      }).pipe(Effect.provide(setup(dbPolicy({ path: file, read_only: true }))))
      expect(NodeFs.readFileSync(file).equals(before)).toBe(true)
      expect(NodeFs.existsSync(Path.join(dir, "x.db"))).toBe(false)
    }))

  it.effect("the default database is in-memory and fresh per run; read_only holds for it too", () =>
    Effect.gen(function*() {
      yield* Effect.gen(function*() {
        yield* Gateway.call("db.query", ["CREATE TABLE t (x TEXT)", []])
        yield* Gateway.call("db.query", ["INSERT INTO t VALUES (?)", ["v"]])
        expect(yield* Gateway.call("db.query", ["SELECT x FROM t", []])).toEqual([mkMap([["x", "v"]])])
      }).pipe(Effect.provide(setup(dbPolicy({}))))
      yield* Effect.gen(function*() {
        const e = yield* Effect.flip(Gateway.call("db.query", ["SELECT x FROM t", []]))
        expect(e._tag).toBe("RuntimeError")
        expect(e.message).toBe("db.query failed: no such table: t")
      }).pipe(Effect.provide(setup(dbPolicy({}))))
      yield* Effect.gen(function*() {
        const e = yield* Effect.flip(Gateway.call("db.query", ["CREATE TABLE t (x TEXT)", []]))
        expect(e._tag).toBe("Denied")
        expect(yield* Gateway.call("db.query", ["SELECT 1 + 1 AS two", []])).toEqual([mkMap([["two", "2"]])])
      }).pipe(Effect.provide(setup(dbPolicy({ read_only: true }))))
    }))

  it.effect("Float parameters bind as REAL, also the non-finite ones", () =>
    Effect.gen(function*() {
      const r = yield* Gateway.call("db.query", ["SELECT ? AS a, ? AS b, ? AS c, typeof(?) AS t", [new AxFloat(2.5), new AxFloat(Infinity), new AxFloat(-Infinity), new AxFloat(Infinity)]])
      expect(r).toEqual([mkMap([["a", "2.5"], ["b", formatFloat(Infinity)], ["c", formatFloat(-Infinity)], ["t", "real"]])])
    }).pipe(Effect.provide(setup(dbPolicy({})))))

  it.effect("SQL errors and bad arguments are runtime_errors; the message carries neither SQL nor parameters", () =>
    Effect.gen(function*() {
      const a = yield* Effect.flip(Gateway.call("db.query", ["SELEC 1", []]))
      expect(a._tag).toBe("RuntimeError")
      expect(a.message).toContain("syntax error")
      const b = yield* Effect.flip(Gateway.call("db.query", ["SELECT ?", []]))
      expect(b.message).toContain("db.query failed:")
      const c = yield* Effect.flip(Gateway.call("db.query", ["SELECT 1", "nope"]))
      expect(c.message).toBe("db.query failed: params must be a List, got String")
      const d = yield* Effect.flip(Gateway.call("db.query", ["SELECT ?", [[1]]]))
      expect(d.message).toBe("db.query failed: parameter 1 must be a String (or Int, Float, Bool), got List")
      const e = yield* Effect.flip(Gateway.call("db.query", ["ATTACH ':memory:' AS m", []]))
      expect(e._tag).toBe("Denied")
      const f = yield* Effect.flip(Gateway.call("db.query", ["VACUUM INTO '/tmp/boruna-copy.db'", []]))
      expect(f._tag).toBe("Denied")
      const spans = yield* capSpans
      expect(spans.map((s) => s.attributes["error.kind"])).toEqual(["runtime_error", "runtime_error", "runtime_error", "runtime_error", "denied", "denied"])
      // no sql.execute span (it would carry the statement)
      expect(dump(spans)).not.toContain("SELEC")
      expect((yield* events).filter((ev) => ev.type === "CapError")).toHaveLength(6)
    }).pipe(Effect.provide(setup(dbPolicy({})))))

  it.scoped("a database that cannot be opened fails the live layer; an ungranted db.query never opens a file", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const bad = Path.join(dir, "no", "such", "dir", "x.db")
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(Live.layer(dbPolicy({ path: bad })))))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) expect(String(exit.cause)).toContain("db_policy.path: cannot open SQLite database")
      const unused = Path.join(dir, "unused.db")
      yield* Effect.scoped(Layer.build(Live.layer({ ...dbPolicy({ path: unused }), rules: {} })))
      expect(NodeFs.existsSync(unused)).toBe(false)
    }))
})
