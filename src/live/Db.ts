/**
 * Live `db.query(sql, params)` → `List<Map<String, String>>` on SQLite (better-sqlite3). The database
 * is the file `db_policy.path` names (default `:memory:`, fresh per run).
 *
 * - Parameters are bound positionally (`?`), never interpolated: a String binds as TEXT, an Int as
 *   INTEGER, a Float as REAL, a Bool as 1/0.
 * - Each row is a map from column name to text: TEXT as-is, INTEGER in decimal (exact, 64-bit),
 *   REAL in the `.ax` Float form (`1.0`, `2.5`), BLOB as lower-case hex; a NULL column is absent
 *   from the row's map (so `map_get` gives `None`). A statement that returns no rows gives `[]`.
 *
 * How each rule is enforced (docs/capabilities.md, "Threat model"):
 * - one statement: SQLite's parser, through better-sqlite3's `prepare`, which refuses any tail that
 *   is not whitespace or comments;
 * - ATTACH / DETACH / VACUUM INTO / the PRAGMAs that would undo a connection setting: refused on the
 *   statement's first token by `SqlGuard.ts` (SQLite's token rules, an allowlist of statement kinds),
 *   and after every statement the connection's database list must still be `main` (+ `temp`);
 * - `load_extension()` and `writable_schema`: off in the connection (better-sqlite3 opens it with
 *   SQL-level extension loading off and `SQLITE_DBCONFIG_DEFENSIVE` on; `unsafeMode` is never called);
 *   `trusted_schema` is OFF;
 * - `db_policy.read_only`: a file is opened `SQLITE_OPEN_READONLY`, the connection is `query_only`,
 *   a statement SQLite does not flag read-only (`sqlite3_stmt_readonly`) is `denied`, and
 *   `query_only` is checked after every prepare;
 * - `max_rows`, `max_result_bytes`, `timeout_ms`: counted while stepping rows (`stmt.iterate()`);
 *   the connection lives in a child process (better-sqlite3 is synchronous and SQLite's progress
 *   handler is compiled out), so a query past `timeout_ms`, or an interrupted run, is stopped by
 *   killing that process, whatever SQLite is doing. After that the connection is gone: later calls fail.
 *   Should the run's process die without closing it (SIGKILL), a watchdog thread in the child sees
 *   its parent change and ends it, even in the middle of a query.
 */
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import { type ChildProcess, spawn } from "node:child_process"
import { createRequire } from "node:module"
import { HandlerFailure } from "../Errors.js"
import type { Handler } from "../Handlers.js"
import { AxFloat, formatFloat, mkMap, typeName, type Value } from "../Value.js"
import * as SqlGuard from "./SqlGuard.js"

const fail = (message: string) => Effect.fail(new HandlerFailure({ message }))
const deny = (message: string) => Effect.fail(new HandlerFailure({ message, denied: true }))

export const DEFAULT_MAX_ROWS = 10_000
export const DEFAULT_MAX_RESULT_BYTES = 10 * 1024 * 1024
export const DEFAULT_TIMEOUT_MS = 30_000

/** The child's program: one connection, one request per stdin line, one reply per stdout line. */
const CHILD = String.raw`"use strict";
const [bsPath, filename, ro] = process.argv.slice(1);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const msg = (e) => (e && typeof e.message === "string" ? e.message : String(e));
let db;
try {
  const Database = require(bsPath);
  db = new Database(filename, { readonly: ro === "1" && filename !== ":memory:" });
  db.pragma("trusted_schema = OFF");
  if (ro === "1") db.pragma("query_only = ON");
} catch (e) { out({ ok: false, message: msg(e) }); process.exit(0); }
const queryOnly = db.prepare("PRAGMA query_only").pluck();
const dbList = db.prepare("PRAGMA database_list").raw(true);
// orphaned (the run's process died without closing us, e.g. SIGKILL) while a query may hold this
// thread in SQLite: a watchdog thread ends the process
try {
  const { Worker } = require("node:worker_threads");
  new Worker("const { workerData } = require('node:worker_threads');" +
    "setInterval(() => { if (process.ppid !== workerData) process.kill(process.pid, 'SIGKILL'); }, 200);",
    { eval: true, workerData: process.ppid }).unref();
} catch {}
out({ ok: true });
const strayDatabases = () => {
  const extra = dbList.all().map((r) => r[1]).filter((n) => n !== "main" && n !== "temp");
  for (const n of extra) { try { db.prepare("DETACH DATABASE " + JSON.stringify(n)).run(); } catch {} }
  return extra.length > 0;
};
const handle = (q) => {
  const t0 = Date.now();
  let stmt;
  try { stmt = db.prepare(q.sql); } catch (e) { return { ok: false, message: msg(e), code: e && e.code }; }
  if (q.ro) {
    if (queryOnly.get() !== 1) { db.pragma("query_only = ON"); return { ok: false, denied: true, message: "the statement turned query_only off (db_policy.read_only)" }; }
    if (!stmt.readonly) return { ok: false, denied: true, message: "the database is read-only (db_policy.read_only): the statement writes" };
  }
  const params = q.params.map((p) => (Array.isArray(p) ? BigInt(p[0]) : p !== null && typeof p === "object" ? Number(p.f) : p));
  const rows = [];
  let result;
  try {
    if (!stmt.reader) {
      stmt.run(...params);
    } else {
      stmt.safeIntegers(true);
      let bytes = 0;
      const it = stmt.iterate(...params);
      for (const row of it) {
        if (rows.length >= q.maxRows) { it.return(); result = { ok: false, message: "the result has more than " + q.maxRows + " rows (db_policy.max_rows)" }; break; }
        const flat = [];
        for (const k in row) {
          const v = row[k];
          if (v === null || v === undefined) continue;
          let cell, size;
          if (typeof v === "string") { size = Buffer.byteLength(v); cell = v; }
          else if (typeof v === "bigint") { cell = v.toString(); size = cell.length; }
          else if (typeof v === "number") { cell = [String(v)]; size = 24; }
          else if (v instanceof Uint8Array) { size = v.length * 2; cell = size + bytes > q.maxBytes ? "" : Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex"); }
          else { cell = String(v); size = cell.length; }
          bytes += size + Buffer.byteLength(k);
          flat.push(k, cell);
        }
        if (bytes > q.maxBytes) { it.return(); result = { ok: false, message: "the result is larger than " + q.maxBytes + " bytes (db_policy.max_result_bytes)" }; break; }
        if (Date.now() - t0 > q.timeoutMs) { it.return(); result = { ok: false, timeout: true, message: "the query ran longer than " + q.timeoutMs + " ms (db_policy.timeout_ms)" }; break; }
        rows.push(flat);
      }
    }
    if (result === undefined) result = { ok: true, rows };
  } catch (e) {
    result = { ok: false, message: msg(e), code: e && e.code };
  }
  if (strayDatabases()) return { ok: false, denied: true, message: "the statement attached a database: db.query reaches only the database db_policy names" };
  return result;
};
let buf = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf("\n")) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    out(handle(JSON.parse(line)));
  }
});
process.stdin.on("end", () => { try { db.close(); } catch {} process.exit(0); });
`

interface Reply {
  readonly ok: boolean
  readonly message?: string
  readonly code?: string
  readonly denied?: boolean
  readonly timeout?: boolean
  readonly rows?: ReadonlyArray<ReadonlyArray<string | readonly [string]>>
}

/** Every connection process still running: killed when this process exits, however it exits. */
const running = new Set<ChildProcess>()
let exitHook = false
const track = (child: ChildProcess) => {
  running.add(child)
  child.once("exit", () => running.delete(child))
  if (!exitHook) {
    exitHook = true
    process.once("exit", () => {
      for (const c of running) c.kill("SIGKILL")
    })
  }
}

/** One SQLite connection in a child process. */
class Connection {
  private buf = ""
  private waiting: ((r: Reply | Error) => void) | undefined
  private gone: string | undefined
  private constructor(private readonly child: ChildProcess) {
    track(child)
    child.stdout!.setEncoding("utf8")
    child.stdout!.on("data", (d: string) => {
      this.buf += d
      let i: number
      while ((i = this.buf.indexOf("\n")) >= 0) {
        const line = this.buf.slice(0, i)
        this.buf = this.buf.slice(i + 1)
        const w = this.waiting
        this.waiting = undefined
        this.idle()
        w?.(JSON.parse(line) as Reply)
      }
    })
    child.on("exit", (code, signal) => {
      this.gone ??= `the database process ended (${signal ?? `exit ${code}`})`
      const w = this.waiting
      this.waiting = undefined
      w?.(new Error(this.gone))
    })
    child.stdin!.on("error", () => undefined)
  }

  static spawn(filename: string, readOnly: boolean): Connection {
    const bs = createRequire(import.meta.url).resolve("better-sqlite3")
    const child = spawn(process.execPath, ["-e", CHILD, bs, filename, readOnly ? "1" : "0"], {
      stdio: ["pipe", "pipe", "ignore"],
      env: {}
    })
    return new Connection(child)
  }

  private idle() {
    this.child.unref()
    ;(this.child.stdout as unknown as { unref?: () => void }).unref?.()
    ;(this.child.stdin as unknown as { unref?: () => void }).unref?.()
  }
  private busy() {
    this.child.ref()
    ;(this.child.stdout as unknown as { ref?: () => void }).ref?.()
    ;(this.child.stdin as unknown as { ref?: () => void }).ref?.()
  }

  /** Send `line` (or nothing, for the ready line) and wait for one reply, at most `timeoutMs`. */
  request(line: string | undefined, timeoutMs: number, why: string): Effect.Effect<Reply, HandlerFailure> {
    return Effect.async<Reply, HandlerFailure>((resume) => {
      if (this.gone !== undefined) {
        resume(fail(`the database connection is closed: ${this.gone}`))
        return
      }
      this.busy()
      const timer = setTimeout(() => {
        this.kill(why)
      }, timeoutMs)
      this.waiting = (r) => {
        clearTimeout(timer)
        resume(r instanceof Error ? fail(r.message) : Effect.succeed(r))
      }
      if (line !== undefined) this.child.stdin!.write(line + "\n")
      // interrupted (SIGINT, a timeout of the run): stop the query by ending its process
      return Effect.sync(() => {
        clearTimeout(timer)
        if (this.waiting !== undefined) {
          this.waiting = undefined
          this.kill("the query was interrupted")
        }
      })
    })
  }

  kill(why: string) {
    this.gone ??= why
    this.child.kill("SIGKILL")
  }

  /** End the connection: the child closes the database and exits; killed if it has not within 1 s. */
  close = Effect.async<void>((resume) => {
    this.gone ??= "closed"
    if (this.child.exitCode !== null || this.child.signalCode !== null) return resume(Effect.void)
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 1000)
    this.child.once("exit", () => {
      clearTimeout(timer)
      resume(Effect.void)
    })
    if (this.waiting !== undefined) this.child.kill("SIGKILL")
    else this.child.stdin!.end()
  })
}

const renderRow = (flat: ReadonlyArray<string | readonly [string]>) => {
  const pairs: Array<readonly [string, string]> = []
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const v = flat[i + 1]
    pairs.push([flat[i] as string, typeof v === "string" ? v : formatFloat(Number(v[0]))])
  }
  return mkMap(pairs)
}

/** a String, a finite Float, an Int (or Bool) as `[decimal]`, a non-finite Float as `{ f: "Infinity" }` */
type Param = string | number | readonly [string] | { readonly f: string }
const toParam = (v: Value, i: number): Effect.Effect<Param, HandlerFailure> => {
  if (typeof v === "string") return Effect.succeed(v)
  if (typeof v === "number" || typeof v === "bigint") return Effect.succeed([BigInt(v).toString()] as const)
  if (typeof v === "boolean") return Effect.succeed([v ? "1" : "0"] as const)
  if (v instanceof AxFloat) return Effect.succeed(Number.isFinite(v.value) ? v.value : { f: String(v.value) })
  return fail(`parameter ${i + 1} must be a String (or Int, Float, Bool), got ${typeName(v)}`)
}

export interface DbOptions {
  /** the database file, or `:memory:` */
  readonly filename: string
  readonly readOnly: boolean
  readonly maxRows?: number | undefined
  readonly maxResultBytes?: number | undefined
  readonly timeoutMs?: number | undefined
}

/** How long opening the connection may take. */
const OPEN_TIMEOUT_MS = 30_000

/** Open the connection (its process lives as long as the scope) and return the handler. */
export const open = (options: DbOptions): Effect.Effect<Handler, string, Scope.Scope> =>
  Effect.gen(function*() {
    const { filename, readOnly } = options
    const maxRows = options.maxRows ?? DEFAULT_MAX_ROWS
    const maxBytes = options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    const conn = yield* Effect.acquireRelease(Effect.sync(() => Connection.spawn(filename, readOnly)), (c) => c.close)
    const ready = yield* conn.request(undefined, OPEN_TIMEOUT_MS, "opening the database took too long").pipe(Effect.mapError((e) => e.message))
    if (!ready.ok) return yield* Effect.fail(ready.message ?? "unknown error")
    const lock = yield* Effect.makeSemaphore(1)

    const handler: Handler = (args) =>
      Effect.gen(function*() {
        if (args.length < 1 || args.length > 2) return yield* fail(`expected db.query(sql, params), got ${args.length} arguments`)
        const query = args[0]
        if (typeof query !== "string") return yield* fail(`sql must be a String, got ${typeName(query)}`)
        const rawParams = args.length === 2 ? args[1] : []
        if (!Array.isArray(rawParams)) return yield* fail(`params must be a List, got ${typeName(rawParams as Value)}`)
        const params = yield* Effect.forEach(rawParams as ReadonlyArray<Value>, toParam)
        const verdict = SqlGuard.check(query, readOnly)
        if (!verdict.ok) return yield* (verdict.denied ? deny(verdict.message) : fail(verdict.message))
        const line = JSON.stringify({ sql: query, params, ro: readOnly, maxRows, maxBytes, timeoutMs })
        const r = yield* lock.withPermits(1)(conn.request(line, timeoutMs + 50, `a query ran longer than ${timeoutMs} ms (db_policy.timeout_ms)`))
        if (!r.ok) {
          const message = r.message ?? "unknown error"
          if (r.denied === true) return yield* deny(message)
          if (readOnly && typeof r.code === "string" && r.code.startsWith("SQLITE_READONLY")) {
            return yield* deny(`the database is read-only (db_policy.read_only): ${message}`)
          }
          return yield* fail(message)
        }
        return (r.rows ?? []).map(renderRow)
      })
    return handler
  })
