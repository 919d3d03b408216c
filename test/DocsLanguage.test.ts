/**
 * Every ```ax example of docs/language.md is a complete program preceded by
 * `<!-- expect: VALUE -->` or `<!-- expect-error: KIND -->` (optionally `<!-- policy: … -->`,
 * `<!-- mode: … -->`). This test runs each through the parser and checker and compares the
 * verdict, then compiles it (the compiler must agree) and runs it on the VM under the example's
 * policy (`mode: demo` ⇒ the demo handlers), comparing the printed value or the runtime error kind.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { readFileSync } from "node:fs"
import * as path from "node:path"
import { check } from "../src/Checker.js"
import { compileSource } from "../src/Compiler.js"
import * as EventLog from "../src/EventLog.js"
import * as Gateway from "../src/Gateway.js"
import * as Handlers from "../src/Handlers.js"
import { parse } from "../src/Parser.js"
import { parsePolicy } from "../src/Policy.js"
import { show } from "../src/Value.js"
import { Vm } from "../src/Vm.js"

const DOC = path.resolve(__dirname, "../docs/language.md")
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

/** `ok <value>` or `error <kind>` of running a compiled example */
const runExample = (file: string, source: string, directives: ReadonlyMap<string, string>): Promise<string> => {
  const compiled = compileSource(file, source)
  if (!compiled.ok) return Promise.resolve(`error ${compiled.diagnostics[0].kind}`)
  const policy = Either.getOrThrow(parsePolicy(directives.get("policy") ?? "deny-all", file))
  const handlers = directives.get("mode") === "demo" ? Handlers.demo : Handlers.make({})
  return Effect.runPromise(Vm.run(compiled.program).pipe(
    Effect.map((v) => `ok ${show(v)}`),
    Effect.catchTag("VmError", (e) => Effect.succeed(`error ${e.kind}`)),
    Effect.provide(Gateway.layer(policy).pipe(Layer.provideMerge(Layer.mergeAll(handlers, EventLog.memory))))
  ))
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
      expect(compileSource(`language.md:${ex.line}`, ex.source).ok).toBe(!compileError)
    })
    if (expectedError === undefined || !COMPILE_KINDS.has(expectedError)) {
      it(`line ${ex.line}: runs to its documented outcome (${label})`, async () => {
        const expected = expectedError !== undefined ? `error ${expectedError}` : `ok ${ex.directives.get("expect")}`
        expect(await runExample(`language.md:${ex.line}`, ex.source, ex.directives)).toBe(expected)
      })
    }
  }
})
