/**
 * Security suite, db.query through the BUILT command: Ctrl-C (SIGINT) during a query that never
 * yields a row ends the run within a second and leaves no connection process behind (also when the
 * run is SIGKILLed: the orphan ends itself); a query past
 * `timeout_ms` is one error line naming the knob.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { boruna, ensureBuilt, start } from "../support/BuiltCli.js"

const FOREVER = `fn main() -> Int !{db.query} {
  let rows = db.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS n FROM c", [])
  list_len(rows)
}
`

const children = (pid: number): Array<number> => {
  try {
    return execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" }).split("\n").filter((l) => l !== "").map(Number)
  } catch {
    return []
  }
}

/** Whether process `pid` exists and is not a zombie. */
const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return false
  }
}

const fixture = () => {
  const dir = mkdtempSync(join(tmpdir(), "boruna-sec-dbsig-"))
  writeFileSync(join(dir, "q.ax"), FOREVER)
  writeFileSync(join(dir, "p.json"), JSON.stringify({ rules: { "db.query": { allow: true } } }))
  writeFileSync(join(dir, "t.json"), JSON.stringify({ rules: { "db.query": { allow: true } }, db_policy: { timeout_ms: 400 } }))
  return dir
}

describe("security: db.query under the built CLI", () => {
  it.live("SIGINT during a query: the run ends within 1 s, exit 130, and the connection process is gone", () =>
    Effect.promise(async () => {
      await ensureBuilt()
      const dir = fixture()
      const run = start(["run", join(dir, "q.ax"), "--live", "--policy", join(dir, "p.json")])
      const pid = run.child.pid!
      // wait until the query is running in the connection's child process
      let kids: Array<number> = []
      for (let i = 0; i < 100 && kids.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 50))
        kids = children(pid)
      }
      await new Promise((r) => setTimeout(r, 300))
      const t0 = Date.now()
      run.child.kill("SIGINT")
      const r = await run.done
      const took = Date.now() - t0
      rmSync(dir, { recursive: true, force: true })
      expect(kids.length).toBeGreaterThan(0)
      expect(r.code).toBe(130)
      expect(took).toBeLessThan(1000)
      expect(r.stderr).toContain("interrupted")
      await new Promise((r) => setTimeout(r, 100))
      // gone, or dead and not yet reaped (a zombie under an init that does not reap)
      for (const k of kids) expect(alive(k)).toBe(false)
    }), 60_000)

  it.live("SIGKILL of the run during a query: the orphaned connection process ends itself within 1 s", () =>
    Effect.promise(async () => {
      await ensureBuilt()
      const dir = fixture()
      const run = start(["run", join(dir, "q.ax"), "--live", "--policy", join(dir, "p.json")])
      const pid = run.child.pid!
      let kids: Array<number> = []
      for (let i = 0; i < 100 && kids.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 50))
        kids = children(pid)
      }
      await new Promise((r) => setTimeout(r, 300))
      expect(kids.length).toBeGreaterThan(0)
      expect(kids.every(alive)).toBe(true)
      run.child.kill("SIGKILL")
      await run.done
      await new Promise((r) => setTimeout(r, 1000))
      rmSync(dir, { recursive: true, force: true })
      for (const k of kids) expect(alive(k)).toBe(false)
    }), 60_000)

  it.live("timeout_ms: one error line naming the knob, exit 1", () =>
    Effect.promise(async () => {
      await ensureBuilt()
      const dir = fixture()
      const r = await boruna(["run", join(dir, "q.ax"), "--live", "--policy", join(dir, "t.json")])
      rmSync(dir, { recursive: true, force: true })
      expect(r.code).toBe(1)
      const lines = r.stderr.trim().split("\n")
      expect(lines).toHaveLength(1)
      expect(lines[0]).toContain("error[runtime_error]: db.query failed: a query ran longer than 400 ms (db_policy.timeout_ms)")
      expect(lines[0]).toContain(`${join(dir, "q.ax")}:2:14`)
    }), 60_000)
})
