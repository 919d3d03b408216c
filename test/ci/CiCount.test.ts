/**
 * .ci/run's summary line, counted by scripts/ci-count.mjs from the per-file results of the report
 * scripts/ci-reporter.mjs writes: every test that did not pass, every file that failed to load and
 * every unhandled error is one failure.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"

const root = resolve(__dirname, "../..")
const script = join(root, "scripts/ci-count.mjs")
const reports = join(__dirname, "fixtures/reports")

const count = (args: ReadonlyArray<string>): { lines: ReadonlyArray<string>; last: string; status: number | null } => {
  const r = spawnSync(process.execPath, [script, ...args], { encoding: "utf8" })
  const lines = r.stdout.trimEnd().split("\n")
  return { lines, last: lines[lines.length - 1], status: r.status }
}
const fixture = (name: string, ...more: ReadonlyArray<string>) => count([join(reports, `${name}.json`), ...more])

describe("scripts/ci-count.mjs on fixture reports", () => {
  it("a clean run: every test passed, exit 0", () => {
    const r = fixture("clean", "--status", "0")
    expect(r.lines).toEqual(["3 passed, 0 failed"])
    expect(r.status).toBe(0)
  })

  it("an unhandled rejection is a failure (it used to print '3 passed, 0 failed')", () => {
    const r = fixture("unhandled-rejection", "--status", "1")
    expect(r.last).toBe("3 passed, 1 failed")
    expect(r.lines).toContain("  unhandled error: Error: nobody handles this rejection")
    expect(r.status).toBe(1)
  })

  it("no test files is a failure, not '0 passed, 0 failed'", () => {
    const r = fixture("no-files", "--status", "1")
    expect(r.last).toBe("0 passed, 1 failed")
    expect(r.lines).toContain("  no test ran")
    expect(r.status).toBe(1)
  })

  it("the tests under a failed beforeAll count as failed instead of vanishing", () => {
    const r = fixture("failed-before-all", "--status", "1")
    expect(r.last).toBe("1 passed, 2 failed")
    expect(r.lines).toContain("  skipped: /repo/test/hook.test.ts > suite first")
  })

  it("a failing test plus a file that fails to load are two failures", () => {
    const r = fixture("failed-test-and-load-error", "--status", "1")
    expect(r.last).toBe("1 passed, 2 failed")
    expect(r.lines).toContain("  file error: /repo/test/load.test.ts: Cannot find module './missing.js'")
  })

  it("a file reported failed with every test passed (an afterAll error) counts once", () => {
    expect(fixture("failed-file-without-message", "--status", "1").last).toBe("2 passed, 1 failed")
  })

  it("todo and pending tests did not pass", () => {
    expect(fixture("todo-and-pending", "--status", "0").last).toBe("1 passed, 2 failed")
  })

  it("a failed CI step (the typecheck) and a non-zero status nothing explains each count", () => {
    expect(fixture("clean", "--status", "0", "--failed-step", "npm run typecheck").last).toBe("3 passed, 1 failed")
    const r = fixture("clean", "--status", "1")
    expect(r.last).toBe("3 passed, 1 failed")
    expect(r.lines).toContain("  vitest exited with status 1")
  })

  it("a missing report is a failure", () => {
    const r = count([join(reports, "does-not-exist.json"), "--status", "1"])
    expect(r.last).toBe("0 passed, 1 failed")
    expect(r.status).toBe(1)
  })
})

describe("scripts/ci-reporter.mjs with vitest", () => {
  it("reports per-file results and unhandled errors that ci-count counts", () => {
    const dir = mkdtempSync(join(tmpdir(), "boruna-ci-"))
    try {
      const out = join(dir, "report.json")
      const v = spawnSync(
        process.execPath,
        [
          join(root, "node_modules/vitest/vitest.mjs"),
          "run",
          "--config",
          "vitest.config.mjs",
          `--reporter=${join(root, "scripts/ci-reporter.mjs")}`,
          `--outputFile.json=${out}`
        ],
        { cwd: join(__dirname, "fixtures"), encoding: "utf8", env: { ...process.env, CI: "1" } }
      )
      expect(v.status).toBe(1)
      const report = JSON.parse(readFileSync(out, "utf8")) as { unhandledErrors: ReadonlyArray<string> }
      expect(report.unhandledErrors).toEqual(["Error: fixture: nobody handles this rejection"])
      const r = count([out, "--status", String(v.status)])
      // pass.fixture.ts: 3 passed + 1 unhandled; fail.fixture.ts: 1 passed + 1 failed;
      // hook.fixture.ts: 2 skipped under the failed hook; load.fixture.ts: 1 file error
      expect(r.last).toBe("4 passed, 5 failed")
      expect(r.lines.filter((l) => l.includes("fixture: this file fails to load"))).toHaveLength(1)
      expect(r.status).toBe(1)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe(".ci/run", () => {
  const ci = readFileSync(join(root, ".ci/run"), "utf8")
  it("typechecks, runs vitest with the counting reporter, and ends with ci-count's line", () => {
    expect(ci).toContain("npm run typecheck || steps+=(--failed-step")
    expect(ci).toContain("--reporter=./scripts/ci-reporter.mjs")
    const lines = ci.trimEnd().split("\n")
    expect(lines.slice(-4)).toEqual([
      `node scripts/ci-count.mjs "$report" --status "$status" "\${steps[@]}"`,
      "counted=$?",
      `if [ "$status" -eq 0 ] && [ "$counted" -ne 0 ]; then status=$counted; fi`,
      "exit $status"
    ])
  })
})
