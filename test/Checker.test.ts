import { describe, expect, it } from "@effect/vitest"
import { readdirSync, readFileSync } from "node:fs"
import * as path from "node:path"
import type { Block, Expr, FnDecl, Pattern, Program, Stmt } from "../src/Ast.js"
import { check, checkSource } from "../src/Checker.js"
import { compileSource } from "../src/Compiler.js"
import type { Diagnostic } from "../src/Diagnostic.js"
import { parse } from "../src/Parser.js"
import { showType } from "../src/Types.js"

const CONFORMANCE = path.resolve(__dirname, "conformance")

const parsed = (src: string): Program => {
  const r = parse("t.ax", src)
  expect(r.diagnostics).toEqual([])
  if (r.program === undefined) throw new Error("no program")
  return r.program
}
const diags = (src: string): Diagnostic[] => check(parsed(src))
const ok = (src: string): Program => {
  const p = parsed(src)
  expect(check(p)).toEqual([])
  return p
}
/** exactly one diagnostic, of `kind` */
const one = (src: string, kind: Diagnostic["kind"]): Diagnostic => {
  const d = diags(src)
  expect(d.map((x) => x.kind)).toEqual([kind])
  return d[0]
}
const main = (body: string, ret = "Int") => `fn main() -> ${ret} {\n${body}\n}`
const fnNamed = (p: Program, name: string): FnDecl => {
  const f = p.items.find((i): i is FnDecl => i.kind === "Fn" && i.name === name)
  if (f === undefined) throw new Error(`no fn ${name}`)
  return f
}

/** every expression node of a program, including contracts */
const allExprs = (p: Program): Expr[] => {
  const out: Expr[] = []
  const stmt = (s: Stmt) => {
    switch (s.kind) {
      case "Let":
        return expr(s.init)
      case "Assign":
        return expr(s.value)
      case "ExprStmt":
        return expr(s.expr)
      case "While":
        expr(s.cond)
        return expr(s.body)
      case "For":
        expr(s.iter)
        return expr(s.body)
      case "Return":
        if (s.value) expr(s.value)
    }
  }
  const expr = (e: Expr): void => {
    out.push(e)
    switch (e.kind) {
      case "Block":
        return e.stmts.forEach(stmt)
      case "Binary":
        expr(e.left)
        return expr(e.right)
      case "Unary":
        return expr(e.operand)
      case "Call":
        // the callee of a capability call (`net.fetch`) is syntax, not a value
        if (e.target?.kind !== "cap") expr(e.callee)
        return e.args.forEach(expr)
      case "Field":
        return expr(e.target)
      case "If":
        expr(e.cond)
        expr(e.then)
        if (e.else) expr(e.else)
        return
      case "Match":
        expr(e.scrutinee)
        return e.arms.forEach((a) => expr(a.body))
      case "RecordLit":
        if (e.spread) expr(e.spread)
        return e.fields.forEach((f) => expr(f.value))
      case "List":
        return e.items.forEach(expr)
      case "Map":
        return e.entries.forEach((x) => {
          expr(x.key)
          expr(x.value)
        })
      case "Some":
      case "Ok":
      case "Err":
      case "Emit":
        return expr(e.value)
      case "Send":
        expr(e.target)
        return expr(e.message)
      default:
        return
    }
  }
  for (const it of p.items) {
    if (it.kind !== "Fn") continue
    it.requires.forEach(expr)
    it.ensures.forEach(expr)
    expr(it.body)
  }
  return out
}
const findExpr = <K extends Expr["kind"]>(p: Program, kind: K): Extract<Expr, { kind: K }>[] =>
  allExprs(p).filter((e): e is Extract<Expr, { kind: K }> => e.kind === kind)

describe("Checker: conformance verdicts", () => {
  const files = readdirSync(CONFORMANCE).filter((f) => f.endsWith(".ax")).sort()
  const COMPILE_KINDS = new Set(["lex_error", "parse_error", "type_error", "capability_error", "non_exhaustive_match",
    "unknown_identifier", "unknown_field", "missing_field", "duplicate_field"])
  it("finds the corpus", () => {
    expect(files.length).toBeGreaterThanOrEqual(36)
  })
  for (const f of files) {
    it(`${f}: compile-time verdict`, () => {
      const src = readFileSync(path.join(CONFORMANCE, f), "utf8")
      const expected = /^\/\/ expect-error: (\w+)/m.exec(src)?.[1]
      const r = parse(f, src)
      const d = r.program === undefined ? r.diagnostics : check(r.program)
      if (expected !== undefined && COMPILE_KINDS.has(expected)) {
        expect(d.length).toBeGreaterThan(0)
        expect(d.map((x) => x.kind)).toEqual([expected])
        expect(d[0].file).toBe(f)
        expect(d[0].line).toBeGreaterThan(0)
      } else {
        expect(d).toEqual([])
        // every expression is annotated with a type
        if (r.program === undefined) throw new Error("no program")
        for (const e of allExprs(r.program)) expect(e.type, `${e.kind} at ${e.pos.line}:${e.pos.col}`).toBeDefined()
      }
    })
  }
})

describe("Checker: annotations", () => {
  it("resolves identifiers, calls, fields, paths, variants and capability sets", () => {
    const p = ok(`type U { a: Int, b: String }
enum Color { Red, Custom(String) }
fn helper(x: Int) -> Int { x }
fn now() -> Int !{time, fs} { time.now() }
fn main() -> Int !{time.now, fs.read, fs.write} {
  let u = U { a: 1, b: "x" }
  let c = Color::Custom("t")
  let r = Red
  let q = Color::Red
  let n = list_len([1])
  match c { Custom(s) => 1, Color::Red => 2 }
  helper(u.a) + now() + n
}`)
    expect(fnNamed(p, "now").capSet).toEqual(["fs.read", "fs.write", "time.now"])
    const calls = findExpr(p, "Call").map((c) => c.target)
    expect(calls).toEqual(expect.arrayContaining([
      { kind: "fn", name: "helper" }, { kind: "fn", name: "now" }, { kind: "builtin", name: "list_len" },
      { kind: "cap", cap: "time.now" }, { kind: "variant", enum: "Color", variant: 1 }
    ]))
    const field = findExpr(p, "Field").find((f) => f.name === "a")
    expect(field).toMatchObject({ record: "U", index: 0, type: { kind: "Int" } })
    expect(findExpr(p, "Path").map((x) => x.index)).toEqual([1, 0])
    const red = findExpr(p, "Ident").find((i) => i.name === "Red")
    expect(red?.res).toEqual({ kind: "variant", enum: "Color", variant: 0 })
    expect(findExpr(p, "Ident").find((i) => i.name === "u")?.res).toEqual({ kind: "local" })
    const m = findExpr(p, "Match")[0]
    const pats = m.arms.map((a) => a.pattern)
    expect(pats.map((x: Pattern) => (x.kind === "PVariant" ? [x.enum, x.index] : x.kind))).toEqual([["Color", 1], ["Color", 0]])
  })

  it("resolves type variables of empty literals through later uses", () => {
    const p = ok(main(`let mut xs = []\nxs = list_push(xs, 1)\nlet m = {}\nlet m2 = __builtin_map_set(m, "k", 2.5)\nlist_len(xs)`))
    const lists = findExpr(p, "List")
    expect(showType(lists[0].type ?? { kind: "Error" })).toBe("List<Int>")
    const maps = findExpr(p, "Map")
    expect(showType(maps[0].type ?? { kind: "Error" })).toBe("Map<String, Float>")
  })

  it("marks a function used as a value and calls through a local as indirect", () => {
    const p = ok(`fn inc(x: Int) -> Int { x + 1 }
fn apply(f: Fn(Int) -> Int, v: Int) -> Int { f(v) }
fn main() -> Int { apply(inc, 1) }`)
    expect(findExpr(p, "Ident").find((i) => i.name === "inc")?.res).toEqual({ kind: "fn", name: "inc" })
    expect(findExpr(p, "Call").find((c) => c.callee.kind === "Ident" && c.callee.name === "f")?.target).toEqual({ kind: "indirect" })
  })
})

describe("Checker: types", () => {
  it("requires let annotations to match exactly (no Int↔Float coercion)", () => {
    const d = one(main(`let x: Float = 1\n0`), "type_error")
    expect(d).toMatchObject({ line: 2, col: 16, code: "E003" })
    expect(d.message).toContain("expected Float, found Int")
    expect(d.suggestion).toContain("Int↔Float")
    ok(main(`let o: Option<Int> = None\nlet r: Result<Int, String> = Ok(1)\nlet l: List<String> = []\n0`))
  })

  it("types arithmetic, concatenation and comparisons", () => {
    ok(main(`let a = 1 + 2 * 3 % 2\nlet f = 1.5 / 2.0\nlet s = "a" + "b" ++ "c"\nlet b = a < 3 && f >= 1.0 || s == "x" && !(s != "y")\nif b { a } else { -a }`))
    expect(one(main("1 + 1.0"), "type_error").message).toContain("Int and Float")
    expect(one(main(`let x = 1.5 % 2.0\n0`), "type_error").message).toContain("%")
    expect(one(main(`let x = 1 < 2.0\n0`), "type_error").message).toContain("cannot compare")
    expect(one(main(`let x = true < false\n0`), "type_error").message).toContain("compares Int, Float or String")
    expect(one(main(`let x = 1 ++ "a"\n0`), "type_error").message).toContain("`++`")
    expect(one(main(`if 1 { 1 } else { 2 }`), "type_error").message).toContain("condition")
    expect(one(main(`let b = !3\n0`), "type_error").message).toContain("`!`")
  })

  it("checks if branches and return types", () => {
    expect(one(main(`if true { 1 } else { "no" }`), "type_error").message).toContain("different types")
    expect(one(main(`if true { 1 }\n2`), "type_error").message).toContain("without `else`")
    ok(main(`if true { () }\nif false { let x = 1 }\n2`))
    const d = one(`fn f() -> Int { "s" }\nfn main() -> Int { f() }`, "type_error")
    expect(d).toMatchObject({ line: 1, col: 17 })
    expect(one(`fn f() -> Int { return "s" }\nfn main() -> Int { f() }`, "type_error").message).toContain("returned value")
    ok(`fn f(x: Int) -> Int {\n  if x > 0 { return 1 }\n  return 0\n}\nfn g() -> Int {\n  let mut i = 0\n  while true { if i > 3 { return i }\n i = i + 1 }\n}\nfn main() -> Int { f(1) + g() }`)
    expect(one(`fn f() -> Int { 1 }\nfn main() { let x: Int = f() }`.replace("{ let x: Int = f() }", "{ f() }"), "type_error").message)
      .toContain("`main` must return Unit")
  })

  it("checks call arity and argument types of functions, builtins and variants", () => {
    expect(one(`fn f(a: Int) -> Int { a }\nfn main() -> Int { f(1, 2) }`, "type_error").message).toBe("`f` expects 1 argument, got 2")
    expect(one(`fn f(a: Int) -> Int { a }\nfn main() -> Int { f("x") }`, "type_error").message).toContain("argument 1 of `f`")
    expect(one(main(`list_get([1], "0")`), "type_error").message).toContain("argument 2 of `list_get`")
    expect(one(main(`let x: Int = list_get(["a"], 0)\nx`), "type_error").message).toContain("expected Int, found String")
    expect(one(`enum E { A(Int) }\nfn main() -> E { A("x") }`, "type_error").message).toContain("argument 1 of `A`")
    expect(one(`enum E { A, B(Int) }\nfn main() -> E { A(1) }`, "type_error").message).toContain("carries no value")
    expect(one(`enum E { A, B(Int) }\nfn main() -> E { B }`, "type_error").message).toContain("carries a value")
  })

  it("gives every builtin its documented signature", () => {
    ok(main(`let a: Int = list_len([1])
let b: Int = list_get([1], 0)
let c: List<Int> = list_push([1], 2)
let d: Int = parse_int("1")
let e: Result<Int, String> = try_parse_int("1")
let f: Bool = str_contains("a", "b") && str_starts_with("a", "b")
let g: String = int_to_string(1) ++ __builtin_int_to_string(1) ++ __builtin_float_to_string(1.0) ++ __builtin_bool_to_string(true)
let h: Int = __builtin_string_len("x")
let i: List<String> = __builtin_string_chars("x")
let j: Bool = __builtin_string_contains("a", "b") || __builtin_string_starts_with("a", "b") || __builtin_string_ends_with("a", "b")
let k: String = __builtin_string_to_upper(__builtin_string_to_lower(__builtin_string_trim(" x ")))
let l: String = __builtin_string_join(__builtin_string_split("a,b", ","), "-")
let m: String = __builtin_string_replace(__builtin_string_slice("abc", 0, 1), "a", "b")
let n: Result<Int, String> = __builtin_int_parse("1")
let o: Result<Float, String> = __builtin_float_parse("1.5")
let p: Int = __builtin_list_len([1])
let q: Bool = __builtin_list_is_empty([1])
let r: Option<Int> = __builtin_list_head([1])
let s: List<Int> = __builtin_list_reverse(__builtin_list_concat(__builtin_list_tail([1]), __builtin_list_append([2], 3)))
let mm: Map<String, Int> = {"a": 1}
let t: Option<Int> = __builtin_map_get(mm, "a")
let u: Map<String, Int> = __builtin_map_remove(__builtin_map_set(mm, "b", 2), "a")
let v: Bool = __builtin_map_contains_key(mm, "a")
let w: List<String> = __builtin_map_keys(mm)
let x: List<Int> = __builtin_map_values(mm)
let y: Int = __builtin_map_len(mm)
0`))
    expect(one(main(`let m: Map<String, Int> = {"a": 1}\nlet v = __builtin_map_get(m, 1)\n0`), "type_error").message).toContain("argument 2")
  })

  it("types maps: String or Int keys, uniform values", () => {
    ok(main(`let m: Map<Int, String> = {1: "a", 2: "b"}\nlet e: Map<String, Bool> = {}\n0`))
    expect(one(main(`let m = {"a": 1, "b": "x"}\n0`), "type_error").message).toContain("a map value")
    expect(one(main(`let m = {1.5: 1}\n0`), "type_error").message).toContain("map keys")
    expect(one(`fn f(m: Map<Float, Int>) {}\nfn main() {}`, "type_error").message).toContain("map keys")
  })

  it("reports unknown types with a suggestion", () => {
    const d = one(`fn f(x: Strng) {}\nfn main() {}`, "type_error")
    expect(d.message).toBe("unknown type `Strng`")
    expect(d.suggestion).toBe("did you mean `String`?")
    expect(one(`fn f(x: Option<Int, Int>) {}\nfn main() {}`, "type_error").message).toContain("takes 1 type argument")
  })

  it("checks mutability and assignment types", () => {
    const d = one(main(`let x = 1\nx = 2\nx`), "type_error")
    expect(d.suggestion).toContain("let mut x")
    expect(one(main(`let mut x = 1\nx = "s"\nx`), "type_error").message).toContain("new value of `x`")
    expect(one(main(`z = 1\n0`), "unknown_identifier").message).toContain("`z`")
  })

  it("types for loops over lists, and actors", () => {
    ok(main(`let mut t = 0\nfor x in [1, 2] { t = t + x }\nt`))
    expect(one(main(`for x in 3 { () }\n0`), "type_error").message).toContain("iterated")
    ok(`fn worker() { let m: Int = receive\n emit m }\nfn main() { let a = spawn worker\n send a 1 }`)
    expect(one(`fn w(x: Int) {}\nfn main() { let a = spawn w }`, "type_error").message).toContain("no parameters")
    expect(one(`fn main() { send 1 2 }`, "type_error").message).toContain("target of `send`")
  })

  it("checks contracts: Bool, and `result` bound in ensures only", () => {
    ok(`fn f(a: Int) -> Int requires a > 0 ensures result > a { a + 1 }\nfn main() -> Int { f(1) }`)
    expect(one(`fn f(a: Int) -> Int requires a { a }\nfn main() -> Int { f(1) }`, "type_error").message).toContain("requires")
    expect(one(`fn f(a: Int) -> Int requires result > 0 { a }\nfn main() -> Int { f(1) }`, "unknown_identifier").message).toContain("result")
  })

  it("requires main, without parameters", () => {
    expect(one(`fn f() {}`, "unknown_identifier").message).toContain("main")
    expect(one(`fn main(x: Int) {}`, "type_error").message).toContain("parameters")
  })

  it("reports duplicate definitions", () => {
    expect(one(`fn main() {}\nfn main() {}`, "type_error").message).toContain("twice")
    expect(one(`type T { a: Int, a: Int }\nfn main() {}`, "duplicate_field").message).toContain("twice")
  })
})

describe("Checker: records", () => {
  const U = `type User { name: String, age: Int }\n`
  it("accepts complete literals and spreads", () => {
    ok(U + main(`let u = User { age: 3, name: "a" }\nlet v = User { ..u, age: 4 }\nv.age`))
  })
  it("reports missing, unknown and duplicate fields", () => {
    const m = one(U + main(`let u = User { name: "a" }\n0`), "missing_field")
    expect(m).toMatchObject({ code: "E008", line: 3, col: 9 })
    expect(m.message).toContain("`age`")
    const u = one(U + main(`let u = User { name: "a", age: 1, agee: 2 }\n0`), "unknown_field")
    expect(u.code).toBe("E007")
    const d = one(U + main(`let u = User { name: "a", age: 1, age: 2 }\n0`), "duplicate_field")
    expect(d).toMatchObject({ code: "E009", line: 3, col: 35 })
    const f = one(U + main(`let u = User { name: "a", age: 1 }\nu.agee`), "unknown_field")
    expect(f.suggestion).toBe("did you mean `age`?")
  })
  it("checks the spread base and field types", () => {
    expect(one(U + `type P { x: Int }\n` + main(`let p = P { x: 1 }\nlet u = User { ..p, age: 1 }\n0`), "type_error").message).toContain("spread base")
    expect(one(U + main(`let u = User { name: 1, age: 1 }\n0`), "type_error").message).toContain("field `name`")
    expect(one(main(`let u = Nope { a: 1 }\n0`), "type_error").message).toContain("unknown record type")
    expect(one(main(`let x = 1\nx.a`), "type_error").message).toContain("has no field")
  })
})

describe("Checker: exhaustiveness", () => {
  const E = `enum Shape { Circle(Int), Square(Int), Dot }\n`
  it("accepts complete matches", () => {
    ok(main(`let b = true\nmatch b { true => 1, false => 0 }`))
    ok(main(`let o: Option<Int> = None\nmatch o { Some(x) => x, None => 0 }`))
    ok(main(`let r: Result<Int, String> = Ok(1)\nmatch r { Ok(x) => x, Err(e) => 0 }`))
    ok(E + main(`let s = Dot\nmatch s { Circle(r) => r, Square(x) => x, Dot => 0 }`))
    ok(E + main(`let s = Dot\nmatch s { Shape::Circle(_) => 1, _ => 0 }`))
    ok(main(`let o: Option<Option<Int>> = None\nmatch o { Some(Some(x)) => x, Some(None) => 0, None => 1 }`))
    ok(main(`let s = "a"\nmatch s { "a" => 1, other => 2 }`))
  })
  it("reports a missing case with an example", () => {
    const cases: Array<[string, string]> = [
      [main(`let b = true\nmatch b { true => 1 }`), "`false`"],
      [main(`let o: Option<Int> = None\nmatch o { None => 1 }`), "`Some(_)`"],
      [main(`let r: Result<Int, String> = Ok(1)\nmatch r { Ok(x) => x }`), "`Err(_)`"],
      [E + main(`let s = Dot\nmatch s { Circle(r) => r, Dot => 0 }`), "`Square(_)`"],
      [main(`let o: Option<Option<Int>> = None\nmatch o { Some(Some(x)) => x, None => 1 }`), "`Some(None)`"],
      [main(`let o: Option<Bool> = None\nmatch o { Some(true) => 1, None => 1 }`), "`Some(false)`"]
    ]
    for (const [src, missing] of cases) {
      const d = one(src, "non_exhaustive_match")
      expect(d.code).toBe("E005")
      expect(d.message).toContain(missing)
    }
  })
  it("requires a catch-all for Int, String, Float and records", () => {
    expect(one(main(`match 3 { 1 => 1, 2 => 2 }`), "non_exhaustive_match").message).toContain("catch-all")
    expect(one(main(`match "s" { "a" => 1 }`), "non_exhaustive_match").message).toContain("catch-all")
    expect(one(main(`match 1.5 { x => 1 }`.replace("x => 1", "")), "non_exhaustive_match").message).toContain("catch-all")
  })
  it("checks pattern types and arm types", () => {
    expect(one(main(`match 3 { "a" => 1, _ => 2 }`), "type_error").message).toContain("String pattern")
    expect(one(main(`match 3 { 1 => 1, _ => "x" }`), "type_error").message).toContain("arms have different types")
    expect(one(main(`match 3 { Blue => 1, _ => 2 }`), "unknown_identifier").message).toContain("Blue")
  })
})

describe("Checker: names", () => {
  it("reports unknown identifiers with a suggestion at distance ≤ 2", () => {
    const d = one(main(`let count = 1\ncuont + 1`), "unknown_identifier")
    expect(d).toMatchObject({ line: 3, col: 1, code: "E006" })
    expect(d.suggestion).toBe("did you mean `count`?")
    expect(one(main(`list_lne([1])`), "unknown_identifier").suggestion).toBe("did you mean `list_len`?")
    expect(one(main(`zzzzzz + 1`), "unknown_identifier").suggestion).toBeUndefined()
  })

  it("scopes: block lets do not leak, match bindings stay in their arm", () => {
    expect(one(main(`if true { let y = 1 } else { () }\ny`), "unknown_identifier").message).toContain("`y`")
    expect(one(main(`let o: Option<Int> = None\nlet a = match o { Some(v) => v, None => 0 }\nv`), "unknown_identifier").message).toContain("`v`")
  })

  it("reports all independent errors without cascading", () => {
    const d = diags(main(`let a = nope + 1\nlet b: Int = "s"\nlet c = a + b\nmissing(a)`))
    expect(d.map((x) => [x.kind, x.line])).toEqual([["unknown_identifier", 2], ["type_error", 3], ["unknown_identifier", 5]])
  })
})

describe("Checker: capabilities", () => {
  it("allows calls within the declared set, including aliases and `fs`", () => {
    ok(`fn f() -> String !{net, fs, db, llm, time, random, step.input} {
  let a = net.fetch("u") ++ net.fetch("POST", "u", "b") ++ fs.read("p") ++ llm.call("x") ++ llm.call("m", "x")
  fs.write("p", a)
  let rows: List<Map<String, String>> = db.query("select", ["x"])
  let t: Int = time.now()
  let r: Float = random()
  step.input("s") ++ step_input("t")
}
fn main() -> String !{net, fs, db, llm, time, random, step.input} { f() }`)
  })

  it("rejects an undeclared capability call, naming both", () => {
    const d = one(`fn main() -> String !{fs.read} { fs.write("p", "x")\n"" }`, "capability_error")
    expect(d.code).toBe("E004")
    expect(d.message).toContain("fs.write")
    expect(d.message).toContain("!{fs.read}")
    expect(d.suggestion).toContain("!{fs.read, fs.write}")
  })

  it("propagates through calls and spawn", () => {
    const d = one(`fn a() -> Int !{time} { time.now() }\nfn b() -> Int { a() }\nfn main() -> Int !{time} { b() }`, "capability_error")
    expect(d.message).toContain("`b` calls `a`")
    expect(one(`fn w() !{random} { let r = random() }\nfn main() { let x = spawn w }`, "capability_error").message).toContain("spawns")
    expect(one(`fn w() !{random} { let r = random() }\nfn main() !{random} { let f = w }`, "capability_error").message).toContain("value")
  })

  it("rejects unknown capability names and calls, and checks capability call arity", () => {
    expect(one(`fn main() !{nett} {}`, "capability_error").suggestion).toBe("did you mean `net`?")
    expect(one(`fn main() -> String !{net} { net.fetchh("u") }`, "unknown_identifier").suggestion).toBe("did you mean `net.fetch`?")
    expect(one(`fn main() -> String !{net} { net.fetch() }`, "type_error").message).toContain("1 or 3")
  })

  it("a local named like a namespace shadows it; emit needs no capability", () => {
    ok(`type N { fetch: Int }\nfn main() -> Int { let net = N { fetch: 1 }\n emit net\n net.fetch }`)
  })
})

describe("checkSource", () => {
  it("runs the whole frontend and returns the annotated program only when it is clean", () => {
    const good = checkSource("a.ax", "fn main() -> Int { 1 + 2 }")
    expect(good.diagnostics).toEqual([])
    expect(good.program?.items[0]).toMatchObject({ kind: "Fn", capSet: [] })
    const lexBad = checkSource("a.ax", "fn main() -> Int { 1 $ 2 }")
    expect(lexBad.program).toBeUndefined()
    expect(lexBad.diagnostics.map((d) => [d.kind, d.file, d.line, d.col])).toEqual([["lex_error", "a.ax", 1, 22]])
    const typeBad = checkSource("a.ax", "fn main() -> Int { \"s\" }")
    expect(typeBad.program).toBeUndefined()
    expect(typeBad.diagnostics.map((d) => d.kind)).toEqual(["type_error"])
  })
})

describe("Checker: limits of the bytecode format, reported at the function", () => {
  it("more than 255 parameters is a type error at the function, never an internal compiler error", () => {
    const params = (n: number) => Array.from({ length: n }, (_, i) => `p${i}: Int`).join(", ")
    const src = (n: number) => `fn main() -> Int { 1 }\n\nfn wide(${params(n)}) -> Int { p0 }\n`
    const r = compileSource("w.ax", src(256))
    expect(r.ok).toBe(false)
    if (!r.ok) {
      expect(r.diagnostics).toHaveLength(1)
      expect(r.diagnostics[0]).toMatchObject({ kind: "type_error", line: 3, col: 1, message: "`wide` has 256 parameters; a function may have at most 255" })
    }
    expect(compileSource("w.ax", src(255)).ok).toBe(true)
  })

  it("more than 65,535 locals is a type error at the function (bindings in the checker, temporaries in the compiler)", () => {
    const lets = (n: number) => Array.from({ length: n }, (_, i) => `  let v${i} = ${i}`).join("\n")
    const many = compileSource("l.ax", `fn main() -> Int { 1 }\n\nfn big() -> Int {\n${lets(65_536)}\n  v0\n}\n`)
    expect(many.ok).toBe(false)
    if (!many.ok) expect(many.diagnostics[0]).toMatchObject({ kind: "type_error", line: 3, col: 1, message: "`big` declares 65536 local bindings; a function may have at most 65535" })
    // 65,535 bindings pass the checker; the match's temporaries take the compiler past the bound
    const temps = compileSource("l.ax", `fn main() -> Int { 1 }\n\nfn big() -> Int {\n${lets(65_534)}\n  match Some(1) { Some(x) => x, None => 0 }\n}\n`)
    expect(temps.ok).toBe(false)
    if (!temps.ok) {
      expect(temps.diagnostics[0]).toMatchObject({ kind: "type_error", line: 3, col: 1 })
      expect(temps.diagnostics[0].message).toMatch(/^`big` needs 655\d\d local slots .*; a function may have at most 65535$/)
    }
    for (const r of [many, temps]) if (!r.ok) expect(JSON.stringify(r.diagnostics)).not.toMatch(/internal/)
  }, 60_000)
})
