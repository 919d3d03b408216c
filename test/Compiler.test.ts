import { describe, expect, it } from "@effect/vitest"
import type { Expr, FnDecl, Program } from "../src/Ast.js"
import { type BytecodeProgram, disassemble, encodeAxbc, Op, OPERANDS, verify } from "../src/Bytecode.js"
import { compile, compileSource } from "../src/Compiler.js"
import { AxFloat, show } from "../src/Value.js"
import { Machine, runPure, VmError } from "../src/Vm.js"
import { ensureBuilt } from "./support/BuiltCli.js"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

const pos = (line: number, col: number) => ({ line, col })

const compileOk = (source: string): BytecodeProgram => {
  const r = compileSource("c.ax", source)
  if (!r.ok) throw new Error(r.diagnostics.map((d) => d.message).join("\n"))
  return r.program
}

/** The opcodes of one function, in order (operands dropped). */
const ops = (p: BytecodeProgram, fn: string): Array<string> => {
  const f = p.functions.find((x) => x.name === fn)!
  const out: Array<string> = []
  for (let pc = 0; pc < f.code.length; pc += 1 + OPERANDS[f.code[pc]].length) {
    out.push(Object.entries(Op).find(([, v]) => v === f.code[pc])![0])
  }
  return out
}

describe("compile (hand-built, checked AST)", () => {
  it("compiles and runs an AST with the checker's annotations", () => {
    const x: Expr = { kind: "Ident", name: "x", pos: pos(3, 3), res: { kind: "local" }, type: { kind: "Int" } }
    const main: FnDecl = {
      kind: "Fn",
      name: "main",
      params: [],
      ret: { kind: "TypeExpr", name: "Int", args: [], pos: pos(1, 14) },
      caps: [],
      requires: [],
      ensures: [],
      exported: false,
      pos: pos(1, 1),
      capSet: [],
      body: {
        kind: "Block",
        pos: pos(1, 18),
        stmts: [
          { kind: "Let", name: "x", mutable: false, type: undefined, init: { kind: "Int", value: 40, pos: pos(2, 11) }, pos: pos(2, 3) },
          {
            kind: "ExprStmt",
            pos: pos(3, 3),
            expr: { kind: "Binary", op: "*", left: x, right: { kind: "Float", value: 1.5, pos: pos(3, 7) }, pos: pos(3, 5) }
          }
        ]
      }
    }
    const program: Program = { file: "hand.ax", module: undefined, items: [main] }
    const p = compile(program, { source: "…" })
    expect(p.name).toBe("hand")
    expect(p.sourceFile).toBe("hand.ax")
    expect(ops(p, "main")).toEqual(["CONST", "STORE", "LOAD", "CONST", "MUL", "RET"])
    // the VM checks operand types itself: Int * Float is a runtime type error at the `*`
    try {
      runPure(p)
      expect.unreachable()
    } catch (e) {
      expect(e).toMatchObject({ kind: "runtime_error", line: 3, col: 5 })
    }
  })
})

describe("compileSource", () => {
  it("returns diagnostics, never throws, for programs that do not check", () => {
    const bad = ["fn main( {", "fn main() -> Int { \"x\" }", "fn main() -> Int { y }", "", "fn f() -> Int { 1 }"]
    for (const src of bad) {
      const r = compileSource("bad.ax", src)
      expect(r.ok).toBe(false)
      if (!r.ok) expect(r.diagnostics.length).toBeGreaterThan(0)
    }
  })
  // programs whose bytecode could depend on hash or iteration order: maps with many keys, records
  // declared in one order and built in another, floats, 64-bit ints, enums, strings with non-ASCII
  const DETERMINISM_SOURCES = [
    `type P { a: Int, b: String }\nfn main() -> P { P { b: "x", a: 1 } }`,
    `fn main() -> Map<String, Int> { {${Array.from({ length: 40 }, (_, i) => `"k${(i * 7919) % 97}é": ${i}`).join(", ")}} }`,
    `enum E { A, B(Float), C(Int) }\nfn main() -> List<E> { [A, B(1.5), C(9223372036854775807), B(-0.0), C(-3)] }`,
    `fn main() -> Map<Int, String> { {${Array.from({ length: 30 }, (_, i) => `${(i * 31) % 53}: "v${i}"`).join(", ")}} }`
  ]

  it("is deterministic: the same source gives byte-identical .axbc in this process", () => {
    for (const src of DETERMINISM_SOURCES) expect(encodeAxbc(compileOk(src))).toBe(encodeAxbc(compileOk(src)))
  })

  it("is deterministic across processes: other processes (other hash and random seeds) give the same bytes", async () => {
    await ensureBuilt()
    const here = DETERMINISM_SOURCES.map((src) => encodeAxbc(compileOk(src)))
    const script = `import(${JSON.stringify(path.resolve(__dirname, "../dist/src/Compiler.js"))}).then(async (c) => {
      const b = await import(${JSON.stringify(path.resolve(__dirname, "../dist/src/Bytecode.js"))})
      const srcs = JSON.parse(process.argv[1])
      process.stdout.write(JSON.stringify(srcs.map((s) => b.encodeAxbc(c.compileSource("c.ax", s).program))))
    })`
    for (const seed of ["1", "987654321"]) {
      const r = spawnSync(process.execPath, [`--hash-seed=${seed}`, `--random-seed=${seed}`, "-e", script, JSON.stringify(DETERMINISM_SOURCES)], { encoding: "utf8" })
      expect(r.status, r.stderr).toBe(0)
      expect(JSON.parse(r.stdout)).toEqual(here)
    }
  }, 60_000)

  it("every compiled program has positions from pc 0, and the verifier compile runs rejects broken code", () => {
    const p = compileOk(`fn f(n: Int) -> Int { if n < 2 { n } else { f(n - 1) } }\nfn main() -> Int { f(3) }`)
    for (const f of p.functions) expect(f.positions[0]).toBe(0)
    // the same program with one defect each: compile's own verify() pass must catch every one
    const withF = (change: (f: BytecodeProgram["functions"][number]) => BytecodeProgram["functions"][number]): BytecodeProgram => ({
      ...p,
      functions: p.functions.map((f) => (f.name === "f" ? change(f) : f))
    })
    const jump = p.functions.find((x) => x.name === "f")!.code.findIndex((op) => op === Op.JMP)
    expect(jump).toBeGreaterThanOrEqual(0)
    const broken: ReadonlyArray<BytecodeProgram> = [
      withF((f) => ({ ...f, code: f.code.map((x, i) => (i === jump + 1 ? 100_000 : x)) })), // jump out of the code
      withF((f) => ({ ...f, code: [Op.POP, ...f.code] })), // pops an empty stack
      withF((f) => ({ ...f, arity: 256 })),
      withF((f) => ({ ...f, locals: 0 })) // fewer slots than parameters
    ]
    for (const b of broken) expect(() => verify(b)).toThrow()
  })
})

describe("code shape", () => {
  it("&& and || short-circuit with jumps", () => {
    const p = compileOk(`fn main() -> Bool { let a = true\n let b = false\n a && b || a }`)
    const o = ops(p, "main")
    expect(o).toContain("JMPF")
    expect(o).toContain("JMPT")
    expect(o).not.toContain("MUL")
  })
  it("conditions on locals use fused compare-and-branch; n - 1 is one instruction", () => {
    const p = compileOk(`fn fib(n: Int) -> Int { if n <= 1 { n } else { fib(n - 1) + fib(n - 2) } }\nfn main() -> Int { fib(10) }`)
    expect(ops(p, "fib")).toEqual(["JNLELK", "LOAD", "JMP", "SUBLK", "CALL", "SUBLK", "CALL", "ADD", "RET"])
    expect(show(runPure(p))).toBe("55")
  })
  it("string and int patterns compile to JNEQ tests; Option patterns to JNTAG/UNWRAP", () => {
    const p = compileOk(`fn f(s: String) -> Int { match s { "a" => 1, "b" => 2, _ => 0 } }
fn g(o: Option<Int>) -> Int { match o { Some(3) => 3, Some(n) => n, None => 0 } }
fn main() -> List<Int> { [f("b"), f("z"), g(Some(3)), g(Some(5)), g(None)] }`)
    expect(ops(p, "f").filter((o) => o === "JNEQ")).toHaveLength(2)
    expect(ops(p, "g")).toContain("UNWRAP")
    expect(show(runPure(p))).toBe("[2, 0, 3, 5, 0]")
  })
  it("identical constants are pooled", () => {
    const p = compileOk(`fn main() -> List<String> { ["k", "k", "k"] }`)
    expect(p.constants.filter((c) => c === "k")).toHaveLength(1)
    const q = compileOk(`fn main() -> List<Float> { [1.0, 1.0] }`)
    expect(q.constants.filter((c) => c instanceof AxFloat)).toHaveLength(1)
  })
  it("capability sets are canonical: aliases resolved, fs expanded, sorted", () => {
    const p = compileOk(`fn main() -> Int !{time, fs, net} { 1 }`)
    expect(p.functions[0].capabilities).toEqual(["fs.read", "fs.write", "net.fetch", "time.now"])
  })
  it("record fields are evaluated in written order and stored in declaration order", () => {
    const p = compileOk(`type R { first: Int, second: Float }
fn main() -> R !{time.now, random} { R { second: random(), first: time.now() } }`)
    const m = new Machine(p)
    const s1 = m.resume()
    expect(s1._tag === "Cap" && s1.request.cap).toBe("random")
    m.provide(new AxFloat(0.5))
    const s2 = m.resume()
    expect(s2._tag === "Cap" && s2.request.cap).toBe("time.now")
    m.provide(7)
    const done = m.resume()
    expect(done._tag === "Done" && show(done.value)).toBe("R { first: 7, second: 0.5 }")
  })
  it("unit enum variants are constants; payload variants are built", () => {
    const p = compileOk(`enum E { A, B(Int) }\nfn main() -> List<E> { [A, E::A, B(1)] }`)
    expect(ops(p, "main")).toEqual(["CONST", "CONST", "CONST", "MKENUM", "MKLIST", "RET"])
    expect(show(runPure(p))).toBe("[A, A, B(1)]")
  })
  it("disassembly names calls, builtins and capabilities", () => {
    const p = compileOk(`fn main() -> Int !{time.now} { list_len([time.now()]) }`)
    const d = disassemble(p)
    expect(d).toContain("; list_len")
    expect(d).toContain("; time.now")
  })
})

describe("robustness on mutated programs", () => {
  it("compileSource never throws; every program it accepts runs to a value or a VmError (no JS exception, no VM type error)", () => {
    const dir = path.resolve(__dirname, "conformance")
    const sources = fs.readdirSync(dir).filter((f) => f.endsWith(".ax")).sort().map((f) => fs.readFileSync(path.join(dir, f), "utf8"))
    let seed = 42
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed / 2147483648
    }
    const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(rnd() * xs.length)]
    const pieces = ["+", "-", "*", "/", "%", "(", ")", "{", "}", "[", "]", ",", "1", "0", "x", "\"s\"", "true", "None",
      "Some(", "match", "=>", "_", "if", "else", "let", "=", "\n", "..", "::", "!", "&&", "||", "<", "==", "++", "return",
      "while", "receive", "emit", "spawn main", "9223372036854775807", "-1", "2.5"]
    let accepted = 0
    for (let i = 0; i < 1500; i++) {
      let src = pick(sources)
      for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) {
        const at = Math.floor(rnd() * src.length)
        const r = rnd()
        if (r < 0.4) src = src.slice(0, at) + pick(pieces) + src.slice(at)
        else if (r < 0.7) src = src.slice(0, at) + src.slice(at + 1 + Math.floor(rnd() * 5))
        else {
          const from = Math.floor(rnd() * src.length)
          src = src.slice(0, at) + src.slice(from, from + 8) + src.slice(at)
        }
      }
      const r = compileSource("m.ax", src)
      if (!r.ok) continue
      accepted++
      try {
        runPure(r.program, { maxSteps: 100_000, maxDepth: 500 })
      } catch (e) {
        expect(e).toBeInstanceOf(VmError)
        if (e instanceof VmError) expect(e.message).not.toMatch(/^type error|internal/)
      }
    }
    // the mutations leave a fair share of programs valid, so the run half is exercised too
    expect(accepted).toBeGreaterThan(100)
  })
})
