/**
 * Seeded, deterministic fuzzing of the frontend: every conformance program is mutated thousands of
 * times (characters and tokens deleted, inserted, duplicated, swapped; random bytes; truncation)
 * and each mutant must go through lex + parse + check (and the compiler, when it exists) without
 * a thrown exception, within a time bound, returning well-formed diagnostics.
 */
import { describe, expect, it } from "@effect/vitest"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import * as path from "node:path"
import { check } from "../src/Checker.js"
import { DIAGNOSTIC_CODES, type Diagnostic } from "../src/Diagnostic.js"
import { lex } from "../src/Lexer.js"
import { MAX_CHAIN, parse } from "../src/Parser.js"

const CONFORMANCE = path.resolve(__dirname, "conformance")
const COMPILER = path.resolve(__dirname, "../src/Compiler.ts")
const MUTANTS_PER_PROGRAM = 600
/** per-mutant bound: generous for slow CI machines, far below what a hang would take */
const MAX_MS_PER_MUTANT = 1000

/** mulberry32: small, fast, deterministic PRNG */
const mulberry32 = (seed: number) => {
  let a = seed >>> 0
  return (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const PIECES = [
  "{", "}", "(", ")", "[", "]", ",", ":", ";", ".", "..", "::", "->", "=>", "=", "==", "!", "!{", "+", "-", "*", "/",
  "%", "++", "<", ">", "<=", "&&", "||", "\n", "\r\n", " ", "\"", "\\", "//", "_", "x", "Int", "String", "fn", "let",
  "mut", "if", "else", "match", "while", "for", "in", "return", "type", "record", "enum", "Some", "None", "Ok", "Err",
  "spawn", "send", "receive", "emit", "requires", "ensures", "result", "net.fetch(", "time.now()", "random()", "0",
  "9223372036854775808", "1.5", "\"s\"", "\"\\q\"", "User {", "Color::", "list_get(", "__builtin_map_get(", "é", "😀", "\u0000"
]

type Rng = () => number
const pick = <T>(rng: Rng, xs: ReadonlyArray<T>): T => xs[Math.floor(rng() * xs.length)]
const int = (rng: Rng, n: number): number => Math.floor(rng() * n)

const mutateChars = (rng: Rng, s: string): string => {
  if (s.length === 0) return pick(rng, PIECES)
  const i = int(rng, s.length)
  const j = Math.min(s.length, i + 1 + int(rng, 12))
  switch (int(rng, 7)) {
    case 0: // delete a range
      return s.slice(0, i) + s.slice(j)
    case 1: // insert a piece
      return s.slice(0, i) + pick(rng, PIECES) + s.slice(i)
    case 2: // duplicate a range
      return s.slice(0, j) + s.slice(i, j) + s.slice(j)
    case 3: { // swap two ranges
      const k = int(rng, s.length)
      const l = Math.min(s.length, k + 1 + int(rng, 12))
      if (l <= i || k >= j) {
        const [a, b] = i < k ? [[i, j], [k, l]] : [[k, l], [i, j]]
        return s.slice(0, a[0]) + s.slice(b[0], b[1]) + s.slice(a[1], b[0]) + s.slice(a[0], a[1]) + s.slice(b[1])
      }
      return s.slice(0, i) + s.slice(j)
    }
    case 4: { // random code units
      let junk = ""
      for (let n = 1 + int(rng, 4); n > 0; n--) junk += String.fromCharCode(int(rng, 0x10000))
      return s.slice(0, i) + junk + s.slice(i)
    }
    case 5: // truncate
      return s.slice(0, i)
    default: // replace one character with a random ASCII one
      return s.slice(0, i) + String.fromCharCode(32 + int(rng, 95)) + s.slice(i + 1)
  }
}

/** token-level mutation: re-render the token stream with one token deleted, duplicated or swapped */
const mutateTokens = (rng: Rng, s: string): string => {
  const toks = lex("f.ax", s).tokens.filter((t) => t.kind !== "eof").map((t) => (t.kind === "nl" ? "\n" : t.text))
  if (toks.length === 0) return s
  const i = int(rng, toks.length)
  const j = int(rng, toks.length)
  switch (int(rng, 4)) {
    case 0:
      toks.splice(i, 1)
      break
    case 1:
      toks.splice(i, 0, toks[j])
      break
    case 2: {
      const t = toks[i]
      toks[i] = toks[j]
      toks[j] = t
      break
    }
    default:
      toks.splice(i, 0, pick(rng, PIECES))
  }
  return toks.join(" ")
}

const KINDS = new Set(Object.keys(DIAGNOSTIC_CODES))
const wellFormed = (d: Diagnostic): boolean =>
  KINDS.has(d.kind) && d.code === DIAGNOSTIC_CODES[d.kind] && d.line >= 1 && d.col >= 1 &&
  Number.isInteger(d.line) && Number.isInteger(d.col) && d.message.length > 0 && d.file === "f.ax"

type CompileResult = { readonly ok: boolean }
type CompileSource = (file: string, source: string) => CompileResult
const isCompileResult = (u: unknown): u is CompileResult =>
  typeof u === "object" && u !== null && "ok" in u && typeof u.ok === "boolean"

const loadCompiler = async (): Promise<CompileSource | undefined> => {
  if (!existsSync(COMPILER)) return undefined
  const mod: unknown = await import(COMPILER)
  if (typeof mod !== "object" || mod === null || !("compileSource" in mod)) return undefined
  const f = mod.compileSource
  if (typeof f !== "function") return undefined
  return (file, source) => {
    const r: unknown = f(file, source)
    if (!isCompileResult(r)) throw new Error("compileSource returned an unexpected shape")
    return r
  }
}

/** run one source through the whole frontend; returns the elapsed time and what came out */
const runOne = (source: string, compile: CompileSource | undefined) => {
  const t0 = performance.now()
  const r = parse("f.ax", source)
  const diagnostics = r.program === undefined ? r.diagnostics : check(r.program)
  const compiled = compile === undefined ? undefined : compile("f.ax", source)
  return { ms: performance.now() - t0, parsed: r.program !== undefined, diagnostics, compiled }
}

describe("Fuzz: mutated conformance programs", () => {
  const files = readdirSync(CONFORMANCE).filter((f) => f.endsWith(".ax")).sort()
  const sources = files.map((f) => readFileSync(path.join(CONFORMANCE, f), "utf8"))

  it("finds the corpus", () => {
    expect(files.length).toBeGreaterThanOrEqual(36)
  })

  it(`parse + check (+ compile) never throw, never hang, and report well-formed diagnostics`, async () => {
    const compile = await loadCompiler()
    const rng = mulberry32(0xa11ce)
    let total = 0
    let rejected = 0
    let accepted = 0
    let slowest = 0
    for (const [fi, original] of sources.entries()) {
      for (let m = 0; m < MUTANTS_PER_PROGRAM; m++) {
        let src = original
        const rounds = 1 + int(rng, 3)
        for (let r = 0; r < rounds; r++) src = rng() < 0.3 ? mutateTokens(rng, src) : mutateChars(rng, src)
        let out: ReturnType<typeof runOne>
        try {
          out = runOne(src, compile)
        } catch (e) {
          throw new Error(`${files[fi]} mutant ${m} threw ${String(e)}\n--- source ---\n${src}`)
        }
        total++
        slowest = Math.max(slowest, out.ms)
        expect(out.ms, `${files[fi]} mutant ${m} took ${out.ms} ms`).toBeLessThan(MAX_MS_PER_MUTANT)
        for (const d of out.diagnostics) {
          if (!wellFormed(d)) throw new Error(`malformed diagnostic ${JSON.stringify(d)} for\n${src}`)
        }
        if (out.diagnostics.length === 0) accepted++
        else rejected++
        // a program the frontend rejects is never compiled
        if (out.compiled !== undefined && out.diagnostics.length > 0) expect(out.compiled.ok).toBe(false)
      }
    }
    expect(total).toBe(files.length * MUTANTS_PER_PROGRAM)
    // the mutations exercise both outcomes: most mutants are rejected, some still compile
    expect(rejected).toBeGreaterThan(total / 2)
    expect(accepted).toBeGreaterThan(0)
    expect(slowest).toBeLessThan(MAX_MS_PER_MUTANT)
  })

  it("pathological inputs: deep nesting, long operator chains, huge literals, binary junk", () => {
    const cases = [
      `fn main() -> Int { ${"(".repeat(20000)}1${")".repeat(20000)} }`,
      `fn main() -> Int { ${Array.from({ length: 20000 }, () => "1").join(" + ")} }`,
      `fn main() -> Bool { ${"!".repeat(20000)}true }`,
      `fn main() -> Int { ${"{ ".repeat(5000)}1${" }".repeat(5000)} }`,
      `fn main() -> Int { ${"if true { ".repeat(3000)}1${" } else { 2 }".repeat(3000)} }`,
      `fn main() -> List<Int> { ${"[".repeat(20000)} }`,
      `fn main() -> Int { match 1 { ${"Some(".repeat(20000)} } }`,
      `fn f(x: ${"List<".repeat(20000)}Int${">".repeat(20000)}) {}`,
      "\"".repeat(10001),
      "fn main() {" + "\n".repeat(100000) + "}",
      Array.from({ length: 3000 }, (_, i) => `fn f${i}() -> Int { ${i} }`).join("\n") + "\nfn main() -> Int { f2999() }",
      String.fromCharCode(...Array.from({ length: 5000 }, (_, i) => (i * 7919) % 65536))
    ]
    for (const src of cases) {
      const out = runOne(src, undefined)
      expect(out.ms).toBeLessThan(5000)
      for (const d of out.diagnostics) expect(wellFormed(d), JSON.stringify(d)).toBe(true)
    }
    // a 20,000-operator chain is not nesting: it compiles; past the chain bound it is one parse error
    expect(runOne(cases[1], undefined).diagnostics).toEqual([])
    const long = `fn main() -> Int { ${Array.from({ length: MAX_CHAIN + 2 }, () => "1").join(" + ")} }`
    expect(runOne(long, undefined).diagnostics.map((d) => d.kind)).toEqual(["parse_error"])
    expect(runOne(cases[10], undefined).diagnostics).toEqual([])
  })
})
