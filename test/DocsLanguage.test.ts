/**
 * Every ```ax example of docs/language.md is a complete program preceded by
 * `<!-- expect: VALUE -->` or `<!-- expect-error: KIND -->` (optionally `<!-- policy: … -->`,
 * `<!-- mode: … -->`). This test runs each through the parser and checker and compares the
 * verdict; when the compiler exists it must agree (compile errors ⇔ `ok: false`).
 */
import { describe, expect, it } from "@effect/vitest"
import { existsSync, readFileSync } from "node:fs"
import * as path from "node:path"
import { check } from "../src/Checker.js"
import { parse } from "../src/Parser.js"

const DOC = path.resolve(__dirname, "../docs/language.md")
const COMPILER = path.resolve(__dirname, "../src/Compiler.ts")
const COMPILE_KINDS = new Set(["lex_error", "parse_error", "type_error", "capability_error", "non_exhaustive_match",
  "unknown_identifier", "unknown_field", "missing_field", "duplicate_field"])

interface Example {
  readonly line: number
  readonly source: string
  readonly directives: ReadonlyMap<string, string>
}

/** the ```ax blocks with the `<!-- key: value -->` lines right above them */
const examples = (md: string): Example[] => {
  const lines = md.split("\n")
  const out: Example[] = []
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== "```ax") continue
    const directives = new Map<string, string>()
    for (let j = i - 1; j >= 0; j--) {
      const m = /^<!--\s*([a-z-]+):\s*(.*?)\s*-->$/.exec(lines[j].trim())
      if (m === null) break
      directives.set(m[1], m[2])
    }
    const body: string[] = []
    let k = i + 1
    while (k < lines.length && lines[k].trim() !== "```") body.push(lines[k++])
    out.push({ line: i + 1, source: body.join("\n") + "\n", directives })
    i = k
  }
  return out
}

type CompileSource = (file: string, source: string) => { readonly ok: boolean }
const loadCompiler = async (): Promise<CompileSource | undefined> => {
  if (!existsSync(COMPILER)) return undefined
  const mod: unknown = await import(COMPILER)
  if (typeof mod !== "object" || mod === null || !("compileSource" in mod) || typeof mod.compileSource !== "function") {
    return undefined
  }
  const f = mod.compileSource
  return (file, source) => {
    const r: unknown = f(file, source)
    if (typeof r !== "object" || r === null || !("ok" in r) || typeof r.ok !== "boolean") throw new Error("unexpected compile result")
    return { ok: r.ok }
  }
}

describe("docs/language.md examples", () => {
  const all = examples(readFileSync(DOC, "utf8"))

  it("has many examples, each with an expectation", () => {
    expect(all.length).toBeGreaterThanOrEqual(30)
    for (const ex of all) {
      expect(ex.directives.has("expect") || ex.directives.has("expect-error"), `example at line ${ex.line}`).toBe(true)
    }
    // both kinds of verdict are exercised, including every compile-time kind but lex/parse at least once
    const kinds = new Set(all.map((e) => e.directives.get("expect-error")).filter((k) => k !== undefined))
    for (const k of COMPILE_KINDS) expect(kinds.has(k), k).toBe(true)
  })

  for (const ex of all) {
    const expectedError = ex.directives.get("expect-error")
    const label = expectedError !== undefined ? `error ${expectedError}` : `value ${ex.directives.get("expect")}`
    it(`line ${ex.line}: checker verdict (${label})`, async () => {
      const r = parse(`language.md:${ex.line}`, ex.source)
      const diagnostics = r.program === undefined ? r.diagnostics : check(r.program)
      const compileError = expectedError !== undefined && COMPILE_KINDS.has(expectedError)
      if (compileError) {
        expect(diagnostics.length).toBeGreaterThan(0)
        expect(diagnostics[0].kind).toBe(expectedError)
      } else {
        expect(diagnostics).toEqual([])
      }
      const compile = await loadCompiler()
      if (compile !== undefined) expect(compile(`language.md:${ex.line}`, ex.source).ok).toBe(!compileError)
    })
  }
})
