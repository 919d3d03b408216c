import { beforeAll, describe, expect, it } from "@effect/vitest"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { capabilitySetHash, CAPABILITIES } from "../src/Capability.js"
import { exitCodeOfKind, ExitCode, formatLine } from "../src/cli/CliError.js"
import { fastRun } from "../src/cli/entry.js"
import { formatTraceTable } from "../src/cli/traceTable.js"
import { VERSION } from "../src/cli/version.js"
import { policyHash, allowAll } from "../src/Policy.js"
import type { RecordedSpan } from "../src/Telemetry.js"
import { boruna, ensureBuilt, ROOT } from "./support/BuiltCli.js"

beforeAll(() => ensureBuilt(), 120_000)

describe("exit codes and the error line", () => {
  it("maps run-time kinds to distinct codes", () => {
    expect(exitCodeOfKind("denied")).toBe(ExitCode.policy)
    expect(exitCodeOfKind("budget_exceeded")).toBe(ExitCode.policy)
    expect(exitCodeOfKind("step_limit")).toBe(ExitCode.limit)
    expect(exitCodeOfKind("stack_overflow")).toBe(ExitCode.limit)
    expect(exitCodeOfKind("timeout")).toBe(ExitCode.limit)
    expect(exitCodeOfKind("division_by_zero")).toBe(ExitCode.runtime)
    expect(exitCodeOfKind("runtime_error")).toBe(ExitCode.runtime)
    const codes = [ExitCode.ok, ExitCode.runtime, ExitCode.usage, ExitCode.input, ExitCode.policy, ExitCode.limit, ExitCode.internal]
    expect(new Set(codes).size).toBe(codes.length)
  })
  it("prints one line, in the layout compilers use: location first", () => {
    expect(formatLine({ kind: "denied", message: "capability denied: net.fetch: not granted\nby policy", location: { file: "a.ax", line: 3, col: 7 } }))
      .toBe("a.ax:3:7: error[denied]: capability denied: net.fetch: not granted; by policy")
    expect(formatLine({ kind: "usage", message: "bad" })).toBe("error[usage]: bad")
  })
})

describe("fastRun: the lines the fast path takes", () => {
  it("parses plain run lines like the command tree", () => {
    expect(fastRun(["run", "x.ax"], {})).toEqual({ file: "x.ax", policy: "deny-all", live: false, trace: false, maxSteps: undefined, record: undefined })
    expect(fastRun(["run", "--policy", "allow-all", "x.ax", "--trace", "--max-steps", "100", "--record", "e.json", "--live"], {}))
      .toEqual({ file: "x.ax", policy: "allow-all", live: true, trace: true, maxSteps: 100, record: "e.json" })
    expect(fastRun(["run", "-p", "p.json", "x.axbc"], { BORUNA_TRACE: "1" })?.trace).toBe(true)
  })
  it("leaves everything else to @effect/cli", () => {
    for (
      const argv of [
        ["run"],
        ["run", "--help", "x.ax"],
        ["run", "x.ax", "-h"],
        ["run", "x.ax", "y.ax"],
        ["run", "x.ax", "--bogus"],
        ["run", "x.ax", "--max-steps", "0"],
        ["run", "x.ax", "--max-steps", "abc"],
        ["run", "x.ax", "--policy"],
        ["run", "--live", "true", "x.ax"],
        ["run", "x.ax", "--wizard"],
        ["check", "x.ax"],
        ["--version"],
        []
      ]
    ) expect(fastRun(argv, {}), argv.join(" ")).toBeUndefined()
  })
})

const span = (name: string, attributes: Record<string, unknown>, ms: number, status: "ok" | "error" = "ok"): RecordedSpan => ({
  name,
  traceId: "t".repeat(32),
  spanId: "s".repeat(16),
  parentSpanId: undefined,
  attributes,
  status,
  events: [],
  startTime: 1_000_000n,
  endTime: 1_000_000n + BigInt(ms * 1e6)
})

describe("the --trace table", () => {
  it("lists each boruna.cap span with duration, bytes, budget and error kind", () => {
    const table = formatTraceTable([
      span("boruna.cap", { "cap.name": "net.fetch", bytes_in: 31, bytes_out: 58, "cap.budget_remaining": 4 }, 1.5),
      span("boruna.cap", { "cap.name": "db.query", bytes_in: 19, "error.kind": "denied" }, 0.25, "error"),
      span("boruna.run", {}, 3, "error")
    ])
    const lines = table.split("\n")
    expect(lines[0]).toContain("2 capability calls")
    expect(lines[0]).toContain("(failed)")
    expect(lines[1]).toMatch(/#\s+capability\s+duration\s+bytes in\s+bytes out\s+budget left\s+error/)
    expect(lines[3]).toMatch(/^1\s+net\.fetch\s+1\.50 ms\s+31\s+58\s+4\s+-$/)
    expect(lines[4]).toMatch(/^2\s+db\.query\s+0\.25 ms\s+19\s+-\s+-\s+denied$/)
    // then the per-capability summary
    expect(lines.slice(5)).toEqual([
      "",
      "summary by capability:",
      expect.stringMatching(/^capability\s+calls\s+errors\s+bytes in\s+bytes out\s+total\s+p50\s+p99$/),
      expect.stringMatching(/^net\.fetch\s+1\s+-\s+31\s+58\s+1\.50 ms\s+1\.50 ms\s+1\.50 ms$/),
      expect.stringMatching(/^db\.query\s+1\s+denied 1\s+19\s+0\s+0\.25 ms\s+0\.25 ms\s+0\.25 ms$/)
    ])
  })

  it("a long run is folded (first 20 and last 10 rows, a count of the rest) and summarised; all: every row", () => {
    const many = Array.from({ length: 1000 }, (_, i) =>
      span("boruna.cap", i % 100 === 99 ? { "cap.name": "random", bytes_in: 0, "error.kind": "budget_exceeded" } : { "cap.name": "time.now", bytes_in: 0, bytes_out: 8 }, (i % 10) + 1)
    ).map((s, i) => ({ ...s, startTime: BigInt(i) * 1_000_000n, endTime: BigInt(i) * 1_000_000n + (s.endTime - s.startTime) }))
    const lines = formatTraceTable(many).split("\n")
    expect(lines[0]).toMatch(/^boruna trace: 1000 capability calls/)
    expect(lines[3]).toMatch(/^ *1\s+time\.now/)
    expect(lines[22]).toMatch(/^ *20\s+time\.now/)
    expect(lines[23]).toBe("… 970 rows left out (calls 21–990; --trace=all prints every row)")
    expect(lines[24]).toMatch(/^ *991\s+time\.now/)
    expect(lines[33]).toMatch(/^ *1000\s+random\s+10\.00 ms\s+0\s+-\s+-\s+budget_exceeded$/)
    expect(lines.slice(34)).toEqual([
      "",
      "summary by capability:",
      expect.stringMatching(/^capability/),
      // 990 calls: 100 each of 1..9 ms and 90 of 10 ms: total 5400 ms, p50 5 ms, p99 10 ms
      expect.stringMatching(/^time\.now\s+990\s+-\s+0\s+7920\s+5400\.00 ms\s+5\.00 ms\s+10\.00 ms$/),
      expect.stringMatching(/^random\s+10\s+budget_exceeded 10\s+0\s+0\s+100\.00 ms\s+10\.00 ms\s+10\.00 ms$/)
    ])
    const all = formatTraceTable(many, { all: true }).split("\n")
    expect(all).toHaveLength(3 + 1000 + 5)
    expect(all.some((l) => l.includes("rows left out"))).toBe(false)
  })
})

describe("boruna (built) — commands that need no program", () => {
  it("--version prints the package version", async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }
    expect(VERSION).toBe(pkg.version)
    const r = await boruna(["--version"])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(pkg.version)
  })

  it("--help on the root and on every command", async () => {
    const root = await boruna(["--help"])
    expect(root.code).toBe(0)
    for (const c of ["run", "compile", "check", "inspect", "capability", "policy"]) expect(root.stdout).toContain(c)
    for (const args of [["run", "--help"], ["compile", "--help"], ["check", "--help"], ["inspect", "--help"], ["capability", "list", "--help"], ["policy", "validate", "--help"]]) {
      const r = await boruna(args)
      expect(r.code, args.join(" ")).toBe(0)
      expect(r.stdout, args.join(" ")).toContain("USAGE")
    }
    const run = await boruna(["run", "--help"])
    for (const o of ["--policy", "--live", "--max-steps", "--record", "--trace"]) expect(run.stdout).toContain(o)
  })

  it("--completions bash comes from @effect/cli", async () => {
    const r = await boruna(["--completions", "bash"])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain("complete")
    expect(r.stdout).toContain("boruna")
  })

  it("capability list: text and --json with the capability_set_hash", async () => {
    const text = await boruna(["capability", "list"])
    expect(text.code).toBe(0)
    expect(text.stdout).toContain(`capability_set_hash: ${capabilitySetHash()}`)
    expect(text.stdout).toContain(`capabilities (${CAPABILITIES.length}):`)
    expect(text.stdout).toMatch(/net\.fetch\s+id\s+0\s+v1/)
    const json = await boruna(["capability", "list", "--json"])
    expect(json.code).toBe(0)
    const r = JSON.parse(json.stdout) as { capability_set_hash: string; capabilities: Array<{ name: string; id: number; version: string }> }
    expect(r.capability_set_hash).toBe(capabilitySetHash())
    expect(r.capabilities.map((c) => c.name)).toEqual([...CAPABILITIES].map((c) => c.name).sort())
    expect(r.capabilities.find((c) => c.name === "llm.call")).toMatchObject({ id: 7, version: "1" })
  })

  it("policy validate: a valid file, an invalid one (every issue with its JSON path), a missing one", async () => {
    const ok = await boruna(["policy", "validate", "examples/agent-policy.json"])
    expect(ok.code).toBe(0)
    expect(ok.stdout).toContain("is valid")
    expect(ok.stdout).toMatch(/llm\.call\s+allow \(budget 2\)/)
    expect(ok.stdout).toMatch(/db\.query\s+deny/)
    const json = await boruna(["policy", "validate", "examples/agent-policy.json", "--json"])
    expect(JSON.parse(json.stdout)).toMatchObject({ valid: true })
    expect(JSON.parse(json.stdout).policy_hash).not.toBe(policyHash(allowAll))

    const dir = mkdtempSync(join(tmpdir(), "boruna-cli-"))
    try {
      const bad = join(dir, "bad.json")
      writeFileSync(bad, JSON.stringify({ rules: { net: { allow: true } }, extra: 1 }))
      const r = await boruna(["policy", "validate", bad])
      expect(r.code).toBe(ExitCode.input)
      expect(r.stdout).toBe("")
      expect(r.stderr).toContain(`error[invalid_policy]: ${bad}: $.extra:`)
      expect(r.stderr).toContain(`$.rules.net: 'net' is an alias; policy rules use canonical names: use 'net.fetch'`)
      expect(r.stderr).not.toMatch(/\n\s+at /)

      writeFileSync(bad, "{\n  \"rules\": {,}\n}")
      const syntax = await boruna(["policy", "validate", bad])
      expect(syntax.code).toBe(ExitCode.input)
      expect(syntax.stderr).toMatch(/line 2, column \d+: invalid JSON/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    const missing = await boruna(["policy", "validate", "no/such/policy.json"])
    expect(missing.code).toBe(ExitCode.input)
    expect(missing.stderr.trim()).toBe("error[io_error]: cannot read no/such/policy.json: no such file")
  })

  it("usage errors exit 2", async () => {
    for (const args of [["bogus"], ["run"], ["run", "x.ax", "--max-steps", "abc"], ["run", "--bogus", "x.ax"], ["capability", "list", "extra"]]) {
      const r = await boruna(args)
      expect(r.code, args.join(" ")).toBe(ExitCode.usage)
      expect(r.stderr.length, args.join(" ")).toBeGreaterThan(0)
    }
    const ext = await boruna(["run", "README.md"])
    expect(ext.code).toBe(ExitCode.usage)
    expect(ext.stderr.trim()).toBe("error[usage]: unknown file extension: README.md (expected .ax or .axbc)")
    const steps = await boruna(["run", "x.ax", "--max-steps", "0"])
    expect(steps.code).toBe(ExitCode.usage)
    expect(steps.stderr).toContain("--max-steps must be a positive integer")
  })

  it("an unusable telemetry setting is one warning line and is ignored: the command runs (never exit 3)", async () => {
    const r = await boruna(["capability", "list"], { OTEL_EXPORTER_OTLP_ENDPOINT: "not a url" })
    expect(r.code).toBe(0)
    expect(r.stdout).toContain("net.fetch")
    expect(r.stderr.trim()).toBe("boruna: telemetry: OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' is not an absolute http(s) URL (e.g. http://localhost:4318); ignored")
  })
})
