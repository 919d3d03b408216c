#!/usr/bin/env node
// Count a vitest run for .ci/run from the per-file results of the JSON report written by
// scripts/ci-reporter.mjs, and print them as the last line: "N passed, N failed".
//
//   node scripts/ci-count.mjs REPORT.json [--status N] [--failed-step NAME]...
//
// What counts as failed (each is one failure; the reason is printed above the summary):
//   - every test whose status is not "passed" (failed, skipped because a hook failed, pending, todo);
//   - every file with an error of its own (it failed to load, or a file-level hook failed);
//   - every file reported failed without any failed test or error of its own;
//   - every unhandled error of the run (`unhandledErrors`, e.g. an unhandled rejection);
//   - every --failed-step (a CI step such as the typecheck that failed before or beside the tests);
//   - a missing or unreadable report, or a run with no test at all;
//   - a non-zero --status (vitest's exit code) when nothing above explains it.
// Exit 0 only when nothing failed and at least one test passed.
import { readFileSync } from "node:fs"
import { pathToFileURL } from "node:url"

export const count = (report, options = {}) => {
  const reasons = []
  let passed = 0
  const files = Array.isArray(report?.testResults) ? report.testResults : []
  for (const f of files) {
    const name = typeof f?.name === "string" ? f.name : "(unnamed file)"
    const tests = Array.isArray(f?.assertionResults) ? f.assertionResults : []
    let failedHere = 0
    for (const t of tests) {
      if (t?.status === "passed") passed++
      else {
        failedHere++
        reasons.push(`${t?.status ?? "unknown"}: ${name} > ${t?.fullName ?? t?.title ?? "(unnamed test)"}`)
      }
    }
    const message = typeof f?.message === "string" ? f.message : ""
    if (message !== "") reasons.push(`file error: ${name}: ${message.split("\n")[0]}`)
    else if (f?.status === "failed" && failedHere === 0) reasons.push(`file failed: ${name}`)
  }
  for (const e of Array.isArray(report?.unhandledErrors) ? report.unhandledErrors : []) {
    reasons.push(`unhandled error: ${String(e).split("\n")[0]}`)
  }
  for (const s of options.failedSteps ?? []) reasons.push(`step failed: ${s}`)
  if (passed + reasons.length === 0) reasons.push("no test ran")
  if (reasons.length === 0 && options.status !== undefined && options.status !== 0) {
    reasons.push(`vitest exited with status ${options.status}`)
  }
  return { passed, failed: reasons.length, reasons }
}

const main = (argv) => {
  let file
  let status
  const failedSteps = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === "--status") status = Number(argv[++i])
    else if (a === "--failed-step") failedSteps.push(argv[++i])
    else file = a
  }
  let report
  if (file !== undefined) {
    try {
      report = JSON.parse(readFileSync(file, "utf8"))
    } catch (e) {
      failedSteps.push(`cannot read the test report ${file}: ${e instanceof Error ? e.message : String(e)}`)
    }
  } else {
    failedSteps.push("no test report")
  }
  const r = count(report, { status, failedSteps })
  for (const reason of r.reasons) console.log(`  ${reason}`)
  console.log(`${r.passed} passed, ${r.failed} failed`)
  return r.failed === 0 ? 0 : 1
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2))
