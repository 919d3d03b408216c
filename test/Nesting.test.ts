/**
 * True nesting of every form (test/NestingForms.ts) up to the parser's bound, MAX_DEPTH levels,
 * through every pass (lexer, parser, checker, compiler, verifier, VM) on Node's default stack:
 * in this test worker, and in the BUILT command on a cold start (a child process per program).
 * Past the bound, one parse_error at the token that opens the level too many.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { compileSource } from "../src/Compiler.js"
import { MAX_DEPTH } from "../src/Parser.js"
import { boruna, ensureBuilt } from "./support/BuiltCli.js"
import { boundPosition, deepestUnits as deepest, FORMS, type NestingForm, nested, pastBoundUnits, source } from "./NestingForms.js"

let dir: string
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "boruna-nesting-"))
  await ensureBuilt()
}, 120_000)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const deepestUnits = (f: NestingForm): number => deepest(f, MAX_DEPTH)

const compiles = (file: string, src: string): void => {
  const r = compileSource(file, src)
  expect(r.ok ? [] : r.diagnostics.map((d) => `${d.line}:${d.col} ${d.kind} ${d.message}`)).toEqual([])
}

describe("nesting in the test worker (default stack)", () => {
  it("the bound is well above 2,000 levels", () => {
    expect(MAX_DEPTH).toBeGreaterThanOrEqual(2000)
  })

  it.each(FORMS.map((f) => [f.name, f] as const))("%s: 1,000, 2,000 and MAX_DEPTH levels compile (and verify)", (_name, f) => {
    compiles("n1000.ax", nested(f, 1000))
    compiles("n2000.ax", nested(f, 2000))
    compiles("max.ax", source(f, deepestUnits(f)))
  })

  it.each(FORMS.map((f) => [f.name, f] as const))("%s: one level past the bound is one parse_error at the token opening it", (_name, f) => {
    const r = compileSource("bound.ax", source(f, pastBoundUnits(f, MAX_DEPTH)))
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(r.diagnostics).toHaveLength(1)
    expect(r.diagnostics[0]).toMatchObject({ kind: "parse_error", message: `nesting deeper than ${MAX_DEPTH} levels`, ...boundPosition(f, MAX_DEPTH) })
  })

  it("a deep construct after shallow ones, and several deep ones side by side, keep their positions and values", () => {
    const deep = "(".repeat(1500) + "x" + ")".repeat(1500)
    const src = `fn main() -> Int {\n  let x = 2\n  let a = ${deep}\n  let b = ${"{ ".repeat(1500)}a + 1${" }".repeat(1500)}\n  if a + b == 5 { ${"[".repeat(1200)}b${"]".repeat(1200)}; a + b } else { 0 }\n}\n`
    compiles("side.ax", src)
    // an error inside a deep construct is reported at its own position
    const bad = compileSource("bad.ax", `fn main() -> Int {\n  ${"(".repeat(2500)}"s" + 1${")".repeat(2500)}\n}\n`)
    expect(bad.ok).toBe(false)
    if (!bad.ok) expect(bad.diagnostics[0]).toMatchObject({ kind: "type_error", line: 2, col: 2 + 2500 + 5 })
    const syntax = compileSource("syntax.ax", `fn main() -> Int {\n  ${"{ ".repeat(2500)}1 +${" }".repeat(2500)}\n}\n`)
    expect(syntax.ok).toBe(false)
    if (!syntax.ok) expect(syntax.diagnostics[0]).toMatchObject({ kind: "parse_error", line: 2, col: 3 + 2 * 2500 + 4 })
  })
})

describe("postfix chains (not nesting: no bound)", () => {
  it("a 20,000-field chain ending in a call compiles (the call's start is found in a loop)", () => {
    const chain = ".a".repeat(20_000)
    compiles("field.ax", `type R { n: Int, a: R, f: Fn(Int) -> Int }\nfn g(r: R) -> Int { r${chain}.f(1) + r${chain}.n }\nfn main() -> Int { 0 }\n`)
  })
})

describe("deep contract clauses", () => {
  it("a 2,900-level `requires` / `ensures` compiles; its message writes the clause out to 100 levels, then `…`", () => {
    const n = 2900
    const r = compileSource("req.ax", `fn f(x: Int) -> Int { x + 1 }\nfn g(y: Int) -> Int requires ${"f(".repeat(n)}y${")".repeat(n)} > 0 ensures result > ${"f(".repeat(n)}0${")".repeat(n)} - 1 { y }\nfn main() -> Int { g(1) }\n`)
    expect(r.ok).toBe(true)
    if (!r.ok) return
    const messages = r.program.constants.filter((c): c is string => typeof c === "string" && c.startsWith("contract violation"))
    // the `>` is level 1, each `f(` one more: 99 calls are written out
    expect(messages).toEqual([
      `contract violation: \`g\` requires \`${"f(".repeat(99)}…${")".repeat(99)} > 0\`, false on entry`,
      `contract violation: \`g\` ensures \`result > ${"f(".repeat(98)}…${")".repeat(98)} - 1\`, false on return`
    ])
  })
})

describe("nesting in the built command (cold start, default stack)", () => {
  const runForm = async (f: NestingForm, levels: number): Promise<void> => {
    const n = Math.ceil(levels / f.offsets.length)
    const file = join(dir, `${f.name.replace(/\W/g, "_")}-${levels}.ax`)
    writeFileSync(file, source(f, n))
    const r = await boruna(["run", file])
    expect({ form: f.name, levels, code: r.code, out: r.stdout, err: r.stderr }).toEqual({ form: f.name, levels, code: 0, out: f.value(n) + "\n", err: "" })
  }

  it.each([1000, 2000])("every form, %i levels: boruna run prints the value", async (levels) => {
    // two children at a time: the machine is shared
    for (let i = 0; i < FORMS.length; i += 2) await Promise.all(FORMS.slice(i, i + 2).map((f) => runForm(f, levels)))
  }, 120_000)

  it("boruna check accepts the deepest program; one level more is refused at its position", async () => {
    for (const f of [FORMS[0], FORMS.find((x) => x.name === "calls")!]) {
      const ok = join(dir, "deepest.ax")
      writeFileSync(ok, source(f, deepestUnits(f)))
      const r = await boruna(["check", ok])
      expect(r.code, r.stderr).toBe(0)
      const over = join(dir, "over.ax")
      writeFileSync(over, source(f, pastBoundUnits(f, MAX_DEPTH)))
      const { line, col } = boundPosition(f, MAX_DEPTH)
      for (const cmd of ["check", "run"]) {
        const e = await boruna([cmd, over])
        expect(e.code).toBe(3)
        // `check` reports on stdout (its output is the report), `run` on stderr
        expect((cmd === "check" ? e.stdout : e.stderr).split("\n")[0]).toBe(`${over}:${line}:${col}: error[parse_error]: E002 nesting deeper than ${MAX_DEPTH} levels`)
      }
    }
  }, 60_000)

  it("a 2,000-level program with a capability call deep inside runs with --record and replays identically", async () => {
    const file = join(dir, "deep-record.ax")
    writeFileSync(file, `fn f(x: Int) -> Int { x + 1 }\nfn main() -> Int !{time.now} {\n  ${"f(".repeat(1000)}${"{ ".repeat(1000)}time.now() - time.now()${" }".repeat(1000)}${")".repeat(1000)}\n}\n`)
    const log = join(dir, "deep-record.json")
    const r = await boruna(["run", file, "--policy", "allow-all", "--record", log])
    expect({ code: r.code, out: r.stdout, err: r.stderr }).toEqual({ code: 0, out: "1000\n", err: `events recorded to ${log}\n` })
    const again = await boruna(["replay", file, log])
    expect({ code: again.code, out: again.stdout, err: again.stderr }).toEqual({ code: 0, out: "1000\nreplay: identical (4 events)\n", err: "" })
  }, 60_000)
})
