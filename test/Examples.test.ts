/**
 * Every program in examples/ runs through the BUILT command and does what its header says
 * (`// expect: VALUE` or `// expect-error: KIND`, under `// policy: …`, default deny-all), from
 * source and from compiled bytecode; every example policy validates; the README's program checks.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { exitCodeOfKind, ExitCode } from "../src/cli/CliError.js"
import { boruna, ensureBuilt, ROOT } from "./support/BuiltCli.js"

beforeAll(() => ensureBuilt(), 120_000)

interface Example {
  readonly file: string
  readonly expect?: string
  readonly error?: string
  readonly policy: string
}

const header = (file: string): Example => {
  const text = readFileSync(join(ROOT, file), "utf8")
  const tag = (name: string) => new RegExp(`^// ${name}: (.*)$`, "m").exec(text)?.[1]
  return { file, expect: tag("expect"), error: tag("expect-error"), policy: tag("policy") ?? "deny-all" }
}

const examples = readdirSync(join(ROOT, "examples")).filter((f) => f.endsWith(".ax")).sort().map((f) => header(`examples/${f}`))

describe("examples/", () => {
  it("has the programs the README and docs point at, each with an expectation", () => {
    expect(examples.map((e) => e.file)).toEqual(expect.arrayContaining(["examples/hello.ax", "examples/agent.ax", "examples/denied.ax"]))
    for (const e of examples) expect(e.expect !== undefined || e.error !== undefined, e.file).toBe(true)
  })

  for (const e of examples) {
    it(`${e.file}: ${e.expect !== undefined ? "prints its value" : `fails with ${e.error}`}`, async () => {
      const r = await boruna(["run", e.file, "--policy", e.policy])
      if (e.expect !== undefined) {
        expect(r.stderr).toBe("")
        expect(r.stdout).toBe(e.expect + "\n")
        expect(r.code).toBe(0)
      } else {
        expect(r.stdout).toBe("")
        const lines = r.stderr.trimEnd().split("\n")
        expect(lines).toHaveLength(1)
        expect(lines[0]).toMatch(new RegExp(`^${e.file.replace(".", "\\.")}:\\d+:\\d+: error\\[${e.error}\\]: .+$`))
        expect(r.code).toBe(exitCodeOfKind(e.error!))
      }
    })
  }

  it("compiled to .axbc, each example runs to the same outcome; inspect reads the bytecode", async () => {
    const dir = mkdtempSync(join(tmpdir(), "boruna-examples-"))
    try {
      for (const e of examples) {
        const out = join(dir, e.file.replace("examples/", "").replace(/\.ax$/, ".axbc"))
        const c = await boruna(["compile", e.file, "-o", out])
        expect(c.code, c.stderr).toBe(0)
        expect(c.stdout).toContain(`compiled ${e.file} -> ${out}`)
        const fromSource = await boruna(["run", e.file, "--policy", e.policy])
        const fromBytecode = await boruna(["run", out, "--policy", e.policy])
        expect(fromBytecode.code, e.file).toBe(fromSource.code)
        expect(fromBytecode.stdout, e.file).toBe(fromSource.stdout)
        expect(fromBytecode.stderr.replace(/^\S+:\d+:\d+: /m, ""), e.file).toBe(fromSource.stderr.replace(/^\S+:\d+:\d+: /m, ""))
        const i = await boruna(["inspect", out])
        expect(i.code, i.stderr).toBe(0)
        expect(i.stdout).toContain("main")
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("every example policy validates", async () => {
    const policies = readdirSync(join(ROOT, "examples")).filter((f) => f.endsWith(".json"))
    expect(policies.length).toBeGreaterThan(0)
    for (const p of policies) {
      const r = await boruna(["policy", "validate", `examples/${p}`])
      expect(r.code, r.stderr).toBe(0)
    }
  })
})

describe("check, compile errors and --record", () => {
  it("check: no errors, and a broken file's diagnostics as text and --json (exit 3)", async () => {
    const ok = await boruna(["check", "examples/agent.ax"])
    expect(ok.code).toBe(0)
    expect(ok.stdout).toContain("no errors")
    const dir = mkdtempSync(join(tmpdir(), "boruna-check-"))
    try {
      const bad = join(dir, "bad.ax")
      writeFileSync(bad, "fn main() -> Int {\n    let x: Int = \"text\"\n    x + y\n}\n")
      const text = await boruna(["check", bad])
      expect(text.code).toBe(ExitCode.input)
      expect(text.stdout).toMatch(new RegExp(`^${bad.replace(/[.]/g, "\\.")}:2:\\d+: error\\[type_error\\]: E003 `, "m"))
      const json = await boruna(["check", bad, "--json"])
      expect(json.code).toBe(ExitCode.input)
      const ds = JSON.parse(json.stdout) as Array<{ file: string; line: number; col: number; kind: string; code: string; message: string }>
      expect(ds.length).toBeGreaterThanOrEqual(2)
      expect(ds[0]).toMatchObject({ file: bad, line: 2, kind: "type_error", code: "E003" })
      expect(ds.some((d) => d.kind === "unknown_identifier" && d.line === 3)).toBe(true)
      // run: the same diagnostics, one error line each, exit 3, nothing on stdout
      const run = await boruna(["run", bad])
      expect(run.code).toBe(ExitCode.input)
      expect(run.stdout).toBe("")
      const all = run.stderr.trimEnd().split("\n")
      const lines = all.filter((l) => !l.startsWith("  help: "))
      expect(lines).toHaveLength(ds.length)
      // each suggestion as a help: line under its error, as check prints it
      expect(all.filter((l) => l.startsWith("  help: "))).toHaveLength(ds.filter((d) => "suggestion" in d).length)
      expect(run.stderr.trimEnd()).toBe(text.stdout.trimEnd())
      expect(lines[0]).toMatch(new RegExp(`^${bad.replace(/[.]/g, "\\.")}:2:\\d+: error\\[type_error\\]: E003 .*$`))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("run --record writes the run's events (header line, then one event per line), also when the run fails", async () => {
    const dir = mkdtempSync(join(tmpdir(), "boruna-record-"))
    try {
      const log = join(dir, "events.jsonl")
      const r = await boruna(["run", "examples/agent.ax", "--policy", "examples/agent-policy.json", "--record", log])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stderr).toBe(`events recorded to ${log}\n`)
      const lines = readFileSync(log, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, { capability?: string }>)
      expect(lines[0]).toMatchObject({ format: "boruna-event-log", version: 2, source_file: "examples/agent.ax" })
      // the seals of the hash chain: one after the header, one per fsync, the final one at close
      expect(Object.keys(lines[1])).toEqual(["Seal"])
      expect(Object.keys(lines[lines.length - 1])).toEqual(["Seal"])
      const events = lines.slice(1).filter((e) => !("Seal" in e))
      expect(events.map((e) => Object.keys(e)[0])).toEqual(["CapCall", "CapResult", "CapCall", "CapResult", "CapCall", "CapResult", "CapCall", "CapResult"])
      expect(events.filter((e) => "CapCall" in e).map((e) => e.CapCall.capability)).toEqual(["net.fetch", "llm.call", "time.now", "fs.write"])

      const failed = join(dir, "denied.jsonl")
      const d = await boruna(["run", "examples/denied.ax", "--policy", "examples/agent-policy.json", "--record", failed])
      expect(d.code).toBe(ExitCode.policy)
      const kept = readFileSync(failed, "utf8").trimEnd().split("\n").filter((l) => !l.startsWith(`{"Seal":`))
      expect(kept).toHaveLength(4) // header, the granted fetch and its result, the refused query
      expect(kept[1]).toContain("net.fetch")
      expect(JSON.parse(kept[3])).toMatchObject({ CapRefused: { capability: "db.query", kind: "denied" } })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("the README's program type-checks", async () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8")
    const m = /```ax\n([\s\S]*?)```/.exec(readme)
    expect(m).not.toBeNull()
    expect(m![1].trimEnd().split("\n").length).toBeLessThanOrEqual(10)
    const dir = mkdtempSync(join(tmpdir(), "boruna-readme-"))
    try {
      const f = join(dir, "readme.ax")
      writeFileSync(f, m![1])
      const r = await boruna(["run", f, "--policy", "allow-all"])
      expect(r.stderr).toBe("")
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(/^Report \{ url: "https:\/\/api\.example\.com\/weather", summary: "mock llm response to: /)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("README.md", () => {
  it("links the docs pages, and every link resolves", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8")
    for (const page of ["cli.md", "language.md", "capabilities.md", "policy.md", "design-otel.md"]) expect(readme, page).toContain(`](docs/${page})`)
    for (const m of readme.matchAll(/\]\((docs\/[^)]+)\)/g)) expect(readdirSync(join(ROOT, "docs"))).toContain(m[1].slice(5))
  })
})
