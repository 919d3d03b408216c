/**
 * Live `db.query` per-query cost, one process, modes interleaved (issue 11):
 *
 *   npm run build && node dist/bench/db.js [--rounds 7] [--queries 2000]
 *
 * - `effect-sql`: the design this replaced, `@effect/sql-sqlite-node` on the calling thread (the
 *   baseline, "today's 0.1 ms");
 * - `db.query`: the live handler (guard, then one line to the connection's child process and one
 *   line back; rows, bytes and time counted while stepping). Target ≤ 2× the baseline.
 * Both run `SELECT ? AS x` on `:memory:` with one parameter and return one row. Each round runs
 * every mode once, in turn; the table shows the median per-query time over the rounds.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { pathToFileURL } from "node:url"
import type { HandlerContext } from "../src/Handlers.js"
import * as Db from "../src/live/Db.js"

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? Number(process.argv[i + 1]) : dflt
}

export interface DbRow {
  readonly name: string
  readonly usPerQuery: number
  readonly ratio: number
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

export const measure = (rounds: number, queries: number) =>
  Effect.scoped(Effect.gen(function*() {
    const ctx = yield* Layer.build(SqliteClient.layer({ filename: ":memory:", disableWAL: true }))
    const sql = Context.get(ctx, SqlClient.SqlClient)
    const handler = yield* Db.open({ filename: ":memory:", readOnly: false }).pipe(Effect.orDie)
    const hctx = {} as HandlerContext
    const modes: ReadonlyArray<readonly [string, Effect.Effect<unknown, unknown>]> = [
      ["effect-sql", sql.unsafe("SELECT ? AS x", [1n]).pipe(Effect.provideService(SqlClient.SafeIntegers, true), Effect.withTracerEnabled(false))],
      ["db.query", handler(["SELECT ? AS x", [1n]], hctx)]
    ]
    const times = new Map<string, Array<number>>(modes.map(([n]) => [n, []]))
    for (let r = -1; r < rounds; r++) {
      for (const [name, q] of modes) {
        const t0 = performance.now()
        for (let i = 0; i < queries; i++) yield* q
        const us = ((performance.now() - t0) * 1000) / queries
        if (r >= 0) times.get(name)!.push(us) // round -1 is the warm-up
      }
    }
    const base = median(times.get("effect-sql")!)
    return modes.map(([name]): DbRow => {
      const us = median(times.get(name)!)
      return { name, usPerQuery: us, ratio: us / base }
    })
  }))

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const rows = await Effect.runPromise(measure(arg("--rounds", 7), arg("--queries", 2000)))
  console.log("| mode | µs / one-row query | × effect-sql |")
  console.log("|---|---:|---:|")
  for (const r of rows) console.log(`| ${r.name} | ${r.usPerQuery.toFixed(1)} | ${r.ratio.toFixed(2)}× |`)
}
