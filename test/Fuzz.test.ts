/**
 * Seeded, deterministic fuzzing of the frontend: every conformance program is mutated thousands of
 * times (characters and tokens deleted, inserted, duplicated, swapped; random bytes; truncation)
 * and each mutant must go through lex + parse + check (and the compiler, when it exists) without
 * a thrown exception, within a time bound, returning well-formed diagnostics — and never an
 * `internal_error` (a compiler bug: no test tolerates one).
 *
 * Untrusted inputs run in a worker thread (the built frontend in dist/) with a deadline per input:
 * a hang blocks only the worker, so the test sees it, terminates the worker and fails naming the
 * input. (A time check inside the test itself could never fire: a blocked test never reaches it.)
 */
import { describe, expect, it } from "@effect/vitest"
import { readdirSync, readFileSync } from "node:fs"
import * as path from "node:path"
import { Worker } from "node:worker_threads"
import { check } from "../src/Checker.js"
import { DIAGNOSTIC_CODES, type Diagnostic } from "../src/Diagnostic.js"
import { lex } from "../src/Lexer.js"
import { MAX_CHAIN, parse } from "../src/Parser.js"
import { ensureBuilt } from "./support/BuiltCli.js"

const CONFORMANCE = path.resolve(__dirname, "conformance")
const MUTANTS_PER_PROGRAM = 600

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

/** run one source through the whole frontend; returns the elapsed time and what came out */
const runOne = (source: string) => {
  const r = parse("f.ax", source)
  const diagnostics = r.program === undefined ? r.diagnostics : check(r.program)
  return { parsed: r.program !== undefined, diagnostics }
}

/** What the worker reports for one source. */
interface WorkerOut {
  readonly ms: number
  readonly parsed: boolean
  readonly diagnostics: ReadonlyArray<Diagnostic>
  readonly compiled: { readonly ok: boolean; readonly kinds: ReadonlyArray<string> }
  readonly threw?: string
}

/** the worker: parse, check and compileSource from dist/, one source per message */
const WORKER_SOURCE = (dist: string): string => `
const { parentPort } = require("node:worker_threads")
const load = Promise.all([import(${JSON.stringify(dist + "/src/Parser.js")}), import(${JSON.stringify(dist + "/src/Checker.js")}), import(${JSON.stringify(dist + "/src/Compiler.js")})])
parentPort.on("message", async (source) => {
  const [P, C, K] = await load
  const t0 = performance.now()
  try {
    const r = P.parse("f.ax", source)
    const diagnostics = r.program === undefined ? r.diagnostics : C.check(r.program)
    const c = K.compileSource("f.ax", source)
    parentPort.postMessage({ ms: performance.now() - t0, parsed: r.program !== undefined, diagnostics, compiled: { ok: c.ok, kinds: c.ok ? [] : c.diagnostics.map((d) => d.kind) } })
  } catch (e) {
    parentPort.postMessage({ ms: performance.now() - t0, parsed: false, diagnostics: [], compiled: { ok: false, kinds: [] }, threw: String(e && e.stack || e) })
  }
})
`

/** A frontend in a worker; `run` resolves with its output or rejects when `deadlineMs` passes (the worker is then replaced). */
const frontendWorker = async (deadlineMs: number) => {
  await ensureBuilt()
  const dist = path.resolve(__dirname, "../dist")
  let w = new Worker(WORKER_SOURCE(dist), { eval: true })
  const run = (source: string): Promise<WorkerOut> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        w.removeAllListeners("message")
        void w.terminate()
        w = new Worker(WORKER_SOURCE(dist), { eval: true })
        reject(new Error(`hang: no answer within ${deadlineMs} ms`))
      }, deadlineMs)
      w.once("message", (m: WorkerOut) => {
        clearTimeout(timer)
        resolve(m)
      })
      w.postMessage(source)
    })
  return { run, close: () => w.terminate() }
}

/** the invariants every input must keep, whatever it is */
const assertSound = (out: WorkerOut, what: string): void => {
  if (out.threw !== undefined) throw new Error(`${what} threw ${out.threw}`)
  for (const d of out.diagnostics) {
    if (!wellFormed(d)) throw new Error(`${what}: malformed diagnostic ${JSON.stringify(d)}`)
  }
  // an internal error is a bug in boruna, never an answer: no input may produce one
  const internal = [...out.diagnostics.map((d) => d.kind), ...out.compiled.kinds].filter((k) => k === "internal_error")
  if (internal.length > 0) throw new Error(`${what}: internal_error ${JSON.stringify(out)}`)
}

describe("Fuzz: the worker harness itself", () => {
  it("a hang in the worker is detected and reported, not waited for", async () => {
    const w = new Worker("setInterval(() => {}, 1000); require('node:worker_threads').parentPort.on('message', () => { for (;;) {} })", { eval: true })
    const answer = new Promise((resolve) => w.once("message", resolve))
    w.postMessage("x")
    const verdict = await Promise.race([answer.then(() => "answered"), new Promise((r) => setTimeout(() => r("hang"), 300))])
    await w.terminate()
    expect(verdict).toBe("hang")
  })

  it("an internal_error diagnostic fails the invariants", () => {
    const out: WorkerOut = { ms: 1, parsed: true, diagnostics: [], compiled: { ok: false, kinds: ["internal_error"] } }
    expect(() => assertSound(out, "x")).toThrow("internal_error")
    expect(DIAGNOSTIC_CODES.internal_error).toBe("E900")
  })
})

describe("Fuzz: mutated conformance programs", () => {
  const files = readdirSync(CONFORMANCE).filter((f) => f.endsWith(".ax")).sort()
  const sources = files.map((f) => readFileSync(path.join(CONFORMANCE, f), "utf8"))

  it("finds the corpus", () => {
    expect(files.length).toBeGreaterThanOrEqual(36)
  })

  it(`parse + check + compile never throw, never hang, never report an internal error, and report well-formed diagnostics`, async () => {
    const worker = await frontendWorker(10_000)
    const rng = mulberry32(0xa11ce)
    let total = 0
    let rejected = 0
    let accepted = 0
    try {
      for (const [fi, original] of sources.entries()) {
        for (let m = 0; m < MUTANTS_PER_PROGRAM; m++) {
          let src = original
          const rounds = 1 + int(rng, 3)
          for (let r = 0; r < rounds; r++) src = rng() < 0.3 ? mutateTokens(rng, src) : mutateChars(rng, src)
          const what = `${files[fi]} mutant ${m}\n--- source ---\n${src}\n---`
          const out = await worker.run(src).catch((e: Error) => {
            throw new Error(`${what}: ${e.message}`)
          })
          assertSound(out, what)
          total++
          if (out.diagnostics.length === 0) accepted++
          else rejected++
          // a program the frontend rejects is never compiled; one it accepts always compiles
          expect(out.compiled.ok, what).toBe(out.diagnostics.length === 0)
        }
      }
    } finally {
      await worker.close()
    }
    expect(total).toBe(files.length * MUTANTS_PER_PROGRAM)
    // the mutations exercise both outcomes: most mutants are rejected, some still compile
    expect(rejected).toBeGreaterThan(total / 2)
    expect(accepted).toBeGreaterThan(0)
  }, 300_000)

  it("pathological inputs: deep nesting, long operator chains, huge literals, binary junk", async () => {
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
    const worker = await frontendWorker(20_000)
    try {
      for (const [i, src] of cases.entries()) {
        const out = await worker.run(src)
        assertSound(out, `pathological case ${i}`)
      }
    } finally {
      await worker.close()
    }
    // a 20,000-operator chain is not nesting: it compiles; past the chain bound it is one parse error
    expect(runOne(cases[1]).diagnostics).toEqual([])
    const long = `fn main() -> Int { ${Array.from({ length: MAX_CHAIN + 2 }, () => "1").join(" + ")} }`
    expect(runOne(long).diagnostics.map((d) => d.kind)).toEqual(["parse_error"])
    expect(runOne(cases[10]).diagnostics).toEqual([])
  })
})
