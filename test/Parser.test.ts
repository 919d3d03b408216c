import { describe, expect, it } from "@effect/vitest"
import { readdirSync, readFileSync } from "node:fs"
import * as path from "node:path"
import type { Expr, FnDecl, Program, Stmt } from "../src/Ast.js"
import { compileSource } from "../src/Compiler.js"
import { MAX_CHAIN, MAX_DEPTH, parse } from "../src/Parser.js"
import { show as showValue } from "../src/Value.js"
import { runPure } from "../src/Vm.js"

const CONFORMANCE = path.resolve(__dirname, "conformance")

const ok = (src: string): Program => {
  const r = parse("t.ax", src)
  expect(r.diagnostics).toEqual([])
  if (r.program === undefined) throw new Error("no program")
  return r.program
}
const errs = (src: string) => {
  const r = parse("t.ax", src)
  expect(r.program).toBeUndefined()
  expect(r.diagnostics.length).toBeGreaterThan(0)
  return r.diagnostics
}
const fn = (p: Program, i = 0): FnDecl => {
  const it = p.items.filter((x) => x.kind === "Fn")[i]
  if (it === undefined || it.kind !== "Fn") throw new Error("no fn")
  return it
}
/** the statements of `fn main() { … }` wrapped around `body` */
const body = (src: string): ReadonlyArray<Stmt> => fn(ok(`fn main() {\n${src}\n}`)).body.stmts
/** the single expression of a body */
const expr = (src: string): Expr => {
  const s = body(src)
  expect(s).toHaveLength(1)
  const first = s[0]
  if (first.kind !== "ExprStmt") throw new Error(`not an expression: ${first.kind}`)
  return first.expr
}
/** compact rendering of an expression tree */
const show = (e: Expr): string => {
  switch (e.kind) {
    case "Binary":
      return `(${show(e.left)} ${e.op} ${show(e.right)})`
    case "Unary":
      return `(${e.op}${show(e.operand)})`
    case "Int":
    case "Float":
    case "Bool":
      return String(e.value)
    case "Str":
      return JSON.stringify(e.value)
    case "Ident":
      return e.name
    case "Call":
      return `${show(e.callee)}(${e.args.map(show).join(", ")})`
    case "Field":
      return `${show(e.target)}.${e.name}`
    case "Path":
      return `${e.enumName}::${e.variant}`
    case "List":
      return `[${e.items.map(show).join(", ")}]`
    case "Map":
      return `{${e.entries.map((x) => `${show(x.key)}: ${show(x.value)}`).join(", ")}}`
    case "RecordLit":
      return `${e.typeName}{${e.spread ? ".." + show(e.spread) + " " : ""}${e.fields.map((f) => `${f.name}: ${show(f.value)}`).join(", ")}}`
    case "Some":
    case "Ok":
    case "Err":
      return `${e.kind}(${show(e.value)})`
    case "None":
      return "None"
    case "Unit":
      return "()"
    case "Block":
      return `{${e.stmts.length}}`
    case "If":
      return `if ${show(e.cond)} ${show(e.then)}${e.else ? " else " + show(e.else) : ""}`
    case "Match":
      return `match ${show(e.scrutinee)} [${e.arms.length}]`
    case "Spawn":
      return `spawn ${e.fn}`
    case "Send":
      return `send ${show(e.target)} ${show(e.message)}`
    case "Receive":
      return "receive"
    case "Emit":
      return `emit ${show(e.value)}`
  }
}

describe("Parser: declarations", () => {
  it("parses a function with params, return type, capabilities and contracts in any order", () => {
    const p = ok(`fn f(a: Int, b: List<String>,) -> Option<Int> !{net.fetch, fs, llm} requires a > 0 ensures result != None requires b != [] { Some(a) }`)
    const f = fn(p)
    expect(f.name).toBe("f")
    expect(f.params.map((x) => [x.name, x.type.name, x.type.args.map((a) => a.name)])).toEqual([["a", "Int", []], ["b", "List", ["String"]]])
    expect(f.ret).toMatchObject({ name: "Option", args: [{ name: "Int" }] })
    expect(f.caps.map((c) => c.name)).toEqual(["net.fetch", "fs", "llm"])
    expect(f.requires.map(show)).toEqual(["(a > 0)", "(b != [])"])
    expect(f.ensures.map(show)).toEqual(["(result != None)"])
    expect(f.pos).toEqual({ line: 1, col: 1 })
  })

  it("parses record and enum declarations, `record` spelling, export, module and import", () => {
    const p = ok(`module app.core\nimport utils\nimport "std"\ntype User { name: String, age: Int, }\nrecord P {\n  x: Int\n  y: Int\n}\nexport enum Color { Red, Green, Custom(String), }\nexport fn main() {}`)
    expect(p.module).toBe("app.core")
    expect(p.items.map((i) => i.kind)).toEqual(["Record", "Record", "Enum", "Fn"])
    const [u, pt, c] = p.items
    if (u.kind !== "Record" || pt.kind !== "Record" || c.kind !== "Enum") throw new Error("shape")
    expect(u.fields.map((f) => f.name)).toEqual(["name", "age"])
    expect(pt.fields.map((f) => f.name)).toEqual(["x", "y"])
    expect(c.variants.map((v) => [v.name, v.payload?.name])).toEqual([["Red", undefined], ["Green", undefined], ["Custom", "String"]])
    expect(fn(p).exported).toBe(true)
  })

  it("parses nested generic and function types", () => {
    const f = fn(ok(`fn f(m: Map<String, List<Int>>, g: Fn(Int, Int) -> Bool, u: ()) {}`))
    expect(f.params[0].type).toMatchObject({ name: "Map", args: [{ name: "String" }, { name: "List", args: [{ name: "Int" }] }] })
    expect(f.params[1].type.args.map((a) => a.name)).toEqual(["Int", "Int", "Bool"])
    expect(f.params[2].type.name).toBe("Unit")
  })
})

describe("Parser: statements and newlines", () => {
  it("separates statements by newlines and `;`", () => {
    expect(body("let x = 1; let mut y: Int = 2\ny = x + y\nwhile y > 0 { y = y - 1 }\nfor v in [1, 2] { emit v }\nreturn y").map((s) => s.kind))
      .toEqual(["Let", "Let", "Assign", "While", "For", "Return"])
  })

  it("a newline ends an expression: `x` then `-1` are two statements", () => {
    const s = body("x\n-1")
    expect(s).toHaveLength(2)
  })

  it("continues after a binary operator or inside parentheses and brackets", () => {
    expect(show(expr("1 +\n  2"))).toBe("(1 + 2)")
    expect(show(expr("f(1,\n  2)"))).toBe("f(1, 2)")
    expect(show(expr("(1\n + 2)"))).toBe("(1 + 2)")
    expect(show(expr("[1,\n2,\n]"))).toBe("[1, 2]")
  })

  it("return without a value before `}` or a newline", () => {
    const s = body("if true { return }\nreturn")
    expect(s[1]).toMatchObject({ kind: "Return", value: undefined })
  })

  it("assignment needs a variable on the left", () => {
    const d = errs("fn main() { a.b = 1 }")
    expect(d[0].message).toContain("invalid assignment target")
  })

  it("two expressions on one line need a separator", () => {
    const d = errs("fn main() { 1 2 }")
    expect(d[0]).toMatchObject({ kind: "parse_error", line: 1, col: 15 })
  })
})

describe("Parser: expressions", () => {
  it("follows the precedence table", () => {
    expect(show(expr("a || b && c == d < e ++ f + g * -h"))).toBe("(a || (b && (c == (d < (e ++ (f + (g * (-h))))))))")
    expect(show(expr("1 - 2 - 3"))).toBe("((1 - 2) - 3)")
    expect(show(expr("!a.b(c).d"))).toBe("(!a.b(c).d)")
    expect(show(expr("a % b / c"))).toBe("((a % b) / c)")
  })

  it("comparisons are non-associative", () => {
    const d = errs("fn main() { a < b < c }")
    expect(d[0]).toMatchObject({ kind: "parse_error", line: 1, col: 19 })
    expect(d[0].suggestion).toContain("&&")
  })

  it("parses literals, unit, lists, maps, options and results", () => {
    expect(show(expr(`[1, 2.5, "s", true, (), None, Some(1), Ok(2), Err("e")]`))).toBe(`[1, 2.5, "s", true, (), None, Some(1), Ok(2), Err("e")]`)
    expect(show(expr(`{"a": 1, "b": 2,}`))).toBe(`{"a": 1, "b": 2}`)
    expect(show(expr(`{1: "x", -2: "y"}`))).toBe(`{1: "x", (-2): "y"}`)
    expect(show(expr(`{k: 1}`))).toBe(`{k: 1}`)
    expect(show(expr(`f({})`))).toBe(`f({})`)
  })

  it("an empty `{}` is a block as a statement or an arm body, a map elsewhere", () => {
    expect(body("{}")[0]).toMatchObject({ kind: "ExprStmt", expr: { kind: "Block" } })
    const m = expr("match x { _ => {} }")
    if (m.kind !== "Match") throw new Error("not a match")
    expect(m.arms[0].body.kind).toBe("Block")
    const l = body("let m: Map<String, Int> = {}")[0]
    expect(l).toMatchObject({ kind: "Let", init: { kind: "Map" } })
  })

  it("parses record literals with spread and field access", () => {
    expect(show(expr(`User { ..u, age: u.age + 1, }`))).toBe("User{..u age: (u.age + 1)}")
    expect(show(expr(`User {\n name: "a"\n age: 3\n}`))).toBe(`User{name: "a", age: 3}`)
    const d = errs(`fn main() { User { age: 1, ..u } }`)
    expect(d[0].message).toContain("spread")
  })

  it("does not take `Name {` as a record literal in condition position", () => {
    const e = expr("if x == Red { 1 } else { 2 }")
    expect(show(e)).toBe("if (x == Red) {1} else {1}")
    const w = body("while c != Stop { x = 1 }")[0]
    expect(w.kind).toBe("While")
    expect(show(expr("match P { x: 1 } { _ => 1 }".replace("P { x: 1 }", "(P { x: 1 })")))).toBe("match P{x: 1} [1]")
  })

  it("parses enum paths, constructors and capability calls", () => {
    expect(show(expr("Color::Red"))).toBe("Color::Red")
    expect(show(expr(`Color::Custom("x")`))).toBe(`Color::Custom("x")`)
    expect(show(expr(`net.fetch("u") ++ time.now()`))).toBe(`(net.fetch("u") ++ time.now())`)
  })

  it("parses if / else if / else, also with else on the next line", () => {
    expect(show(expr("if a { 1 } else if b { 2 } else { 3 }"))).toBe("if a {1} else if b {1} else {1}")
    expect(show(expr("if a { 1 }\nelse { 2 }"))).toBe("if a {1} else {1}")
  })

  it("parses match arms with every pattern form, separated by commas or newlines", () => {
    const m = expr(`match v {\n 1 => a, -2 => b\n "s" => c\n true => d, None => e, Some(Ok(x)) => x, Err(_) => f,\n Red => g, Custom(s) => h, Color::Custom(t) => i, Color::Red => j\n y => { y }\n}`)
    if (m.kind !== "Match") throw new Error("not a match")
    expect(m.arms.map((a) => a.pattern.kind)).toEqual([
      "PInt", "PInt", "PStr", "PBool", "PNone", "PSome", "PErr", "PVariant", "PVariant", "PVariant", "PVariant", "PBind"
    ])
    expect(m.arms[1].pattern).toMatchObject({ value: -2 })
    expect(m.arms[5].pattern).toMatchObject({ inner: { kind: "POk", inner: { kind: "PBind", name: "x" } } })
    expect(m.arms[9].pattern).toMatchObject({ enumName: "Color", name: "Custom", inner: { kind: "PBind", name: "t" } })
    expect(m.arms[0].pos).toEqual({ line: 3, col: 2 })
  })

  it("parses actor and emit expressions", () => {
    expect(body("let a = spawn worker\nsend a 1 + 2\nlet m = receive\nemit m").map((s) => s.kind === "Let" ? show(s.init) : s.kind === "ExprStmt" ? show(s.expr) : s.kind))
      .toEqual(["spawn worker", "(send a 1 + 2)", "receive", "emit m"])
  })

  it("records positions of operators, fields and calls", () => {
    const e = expr("foo(1) + bar.baz")
    if (e.kind !== "Binary" || e.right.kind !== "Field") throw new Error("shape")
    expect(e.pos).toEqual({ line: 2, col: 8 })
    expect(e.left.pos).toEqual({ line: 2, col: 1 })
    expect(e.right.pos).toEqual({ line: 2, col: 14 })
  })
})

describe("Parser: errors", () => {
  it("reports the first error of each item and keeps going", () => {
    const d = errs("fn a() { let = 1 }\nfn b() { ) }\nfn c() { 1 }\ntype T { x Int }")
    expect(d.map((x) => x.line)).toEqual([1, 2, 4])
    expect(d.every((x) => x.kind === "parse_error" && x.code === "E002")).toBe(true)
  })

  it("suggests a keyword for a misspelled item", () => {
    const d = errs("fnn main() {}")
    expect(d[0].suggestion).toBe("did you mean `fn`?")
  })

  it("`record` declares a record at item level and is a plain name elsewhere", () => {
    const p = ok("record R { a: Int }\nfn main() -> Int { let record = 1\n record }")
    expect(p.items.map((i) => i.kind)).toEqual(["Record", "Fn"])
  })

  it("a line starting with a binary operator (not `-`) or `.field` continues the expression", () => {
    expect(show(expr("a\n  || b\n  && c"))).toBe("(a || (b && c))")
    expect(show(expr("a\n  .b\n  .c"))).toBe("a.b.c")
    expect(body("a\n-b")).toHaveLength(2)
  })

  it("reports a missing closing brace at end of input", () => {
    const d = errs("fn main() {\n  1\n")
    expect(d[0].message).toContain("end of input")
  })

  it("bounds nesting depth instead of overflowing the stack", () => {
    const d = errs(`fn main() { ${"(".repeat(5000)}1${")".repeat(5000)} }`)
    expect(d[0].message).toContain("nesting")
    const d2 = errs(`fn main() { ${"-".repeat(5000)}1 }`)
    expect(d2[0].message).toContain("nesting")
  })

  it("lexical errors are reported without follow-up parse errors on the same line", () => {
    const d = errs(`fn main() { let x = 1 @ 2 }\nfn b() { "open }`)
    expect(d.map((x) => [x.kind, x.line])).toEqual([["lex_error", 1], ["lex_error", 2]])
  })

  it("rejects float patterns and `Some` without a payload", () => {
    expect(errs("fn main() { match x { 1.5 => 1, _ => 2 } }")[0].message).toContain("float")
    expect(errs("fn main() { Some }")[0].message).toContain("`(`")
  })
})

describe("Parser: conformance corpus", () => {
  const files = readdirSync(CONFORMANCE).filter((f) => f.endsWith(".ax")).sort()
  it("finds the corpus", () => {
    expect(files.length).toBeGreaterThanOrEqual(36)
  })
  for (const f of files) {
    it(`parses ${f} as expected`, () => {
      const src = readFileSync(path.join(CONFORMANCE, f), "utf8")
      const r = parse(f, src)
      if (/^\/\/ expect-error: (parse_error|lex_error)$/m.test(src)) {
        expect(r.program).toBeUndefined()
        expect(r.diagnostics[0].kind).toMatch(/parse_error|lex_error/)
      } else {
        expect(r.diagnostics).toEqual([])
        expect(r.program?.items.length).toBeGreaterThan(0)
      }
    })
  }
  it("032 reports the unclosed parenthesis at the next line's token", () => {
    const r = parse("032.ax", readFileSync(path.join(CONFORMANCE, "032-parse-error.ax"), "utf8"))
    expect(r.diagnostics).toHaveLength(1)
    expect(r.diagnostics[0]).toMatchObject({ line: 4, col: 5, kind: "parse_error" })
  })
})


describe("operator chains", () => {
  it("a chain up to the bound compiles; one operator more is a parse error at that operator, never a throw", () => {
    const chain = (n: number) => `fn main() -> Int { ${Array(n + 1).fill("1").join(" + ")} }\n`
    const ok = compileSource("c.ax", chain(MAX_CHAIN))
    expect(ok.ok).toBe(true)
    const bad = compileSource("c.ax", chain(MAX_CHAIN + 1))
    expect(bad.ok).toBe(false)
    if (!bad.ok) {
      expect(bad.diagnostics[0]).toMatchObject({ kind: "parse_error", line: 1, col: 22 + MAX_CHAIN * 4 })
      expect(bad.diagnostics[0].message).toContain(`more than ${MAX_CHAIN} operators`)
    }
    // nothing shape-wise throws: deep parens wrapped around long chains
    const mixed = `fn main() -> Int { ${"(".repeat(250)}${Array(4500).fill("1").join(" * ")}${")".repeat(250)} }\n`
    expect(() => compileSource("m.ax", mixed)).not.toThrow()
  })

  const value = (src: string): string => {
    const r = compileSource("t.ax", src)
    if (!r.ok) throw new Error(r.diagnostics.map((d) => `${d.line}:${d.col} ${d.message}`).join("\n"))
    return showValue(runPure(r.program, { maxSteps: 1e9 }))
  }

  it("10,000-term chains of every operator kind parse, check, compile and run (a chain is not nesting)", () => {
    const N = 10_000
    const terms = (t: (i: number) => string, op: string) => Array.from({ length: N }, (_, i) => t(i)).join(` ${op} `)
    expect(value(`fn main() -> Int { ${terms((i) => String(i % 10), "+")} }`)).toBe("45000")
    expect(value(`fn main() -> Int { let x = 2\n ${terms(() => "x", "-")} }`)).toBe(String(2 - 2 * (N - 1)))
    expect(value(`fn main() -> Int { let x = 3\n ${terms(() => "x * 1", "+")} }`)).toBe(String(3 * N))
    expect(value(`fn main() -> Bool { let x = 3\n ${terms(() => "x > 1", "&&")} }`)).toBe("true")
    expect(value(`fn main() -> Int { let x = 3\n if ${terms(() => "x > 1", "&&")} { 1 } else { 0 } }`)).toBe("1")
    expect(value(`fn main() -> Bool { let x = 3\n ${terms((i) => (i === N - 1 ? "x == 3" : "x < 1"), "||")} }`)).toBe("true")
    expect(value(`fn main() -> Int { __builtin_string_len(${terms(() => "\"ab\"", "++")}) }`)).toBe(String(2 * N))
  })

  it("a 10,000-branch else-if chain parses, checks, compiles and picks the right branch", () => {
    const N = 10_000
    const chain = (x: number) =>
      `fn main() -> Int { let x = ${x}\n ${Array.from({ length: N }, (_, i) => `if x == ${i} { ${i * 2} }`).join(" else ")} else { -1 } }`
    expect(value(chain(N - 1))).toBe(String(2 * (N - 1)))
    expect(value(chain(17))).toBe("34")
    expect(value(chain(N))).toBe("-1")
    // without a final else the chain has type Unit
    expect(value(`fn main() -> Int { let x = 5\n ${Array.from({ length: N }, (_, i) => `if x == ${i} { () }`).join(" else ")}\n 1 }`)).toBe("1")
    // a type error deep in the chain is reported at its branch
    const bad = compileSource("t.ax", `fn main() -> Int { let x = 1\n ${Array.from({ length: 5000 }, (_, i) => `if x == ${i} { ${i === 4000 ? "\"s\"" : i} }`).join(" else ")} else { 0 } }`)
    expect(bad.ok).toBe(false)
    if (!bad.ok) expect(bad.diagnostics[0]).toMatchObject({ kind: "type_error" })
  })

  it("true nesting is bounded at MAX_DEPTH, at least 1,000 levels", () => {
    expect(MAX_DEPTH).toBeGreaterThanOrEqual(1000)
    expect(value(`fn main() -> Int { ${"(".repeat(800)}1${")".repeat(800)} }`)).toBe("1")
    expect(value(`fn main() -> Int { let x = ${"[".repeat(800)}1${"]".repeat(800)}\n 1 }`)).toBe("1")
    const deep = parse("d.ax", `fn main() -> Int { ${"(".repeat(MAX_DEPTH + 5)}1${")".repeat(MAX_DEPTH + 5)} }`)
    expect(deep.diagnostics[0]).toMatchObject({ kind: "parse_error", line: 1 })
    expect(deep.diagnostics[0].message).toBe(`nesting deeper than ${MAX_DEPTH} levels`)
  })
})
