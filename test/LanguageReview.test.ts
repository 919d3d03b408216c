/**
 * Regression tests from a review of the language against the contract (`ax-language.md`): each case
 * is a small program and the outcome the contract (or a documented decision in docs/language.md)
 * prescribes — `ok <printed value>` or `error <kind>@line:col`.
 */
import { describe, expect, it } from "@effect/vitest"
import { compileSource } from "../src/Compiler.js"
import { show } from "../src/Value.js"
import { runPure, VmError } from "../src/Vm.js"

const outcome = (source: string): string => {
  const c = compileSource("t.ax", source)
  if (!c.ok) return c.diagnostics.map((d) => `error ${d.kind}@${d.line}:${d.col}`).join(" | ")
  try {
    return `ok ${show(runPure(c.program))}`
  } catch (e) {
    if (e instanceof VmError) return `error ${e.kind}@${e.line}:${e.col}`
    throw e
  }
}

const nan = `match __builtin_float_parse("NaN") { Ok(x) => x, Err(_) => 0.0 }`

describe("Float NaN follows IEEE (the contract: Float is an IEEE double)", () => {
  it("NaN is not equal to itself, also when the same value is compared (was: identity made it equal)", () => {
    expect(outcome(`fn main() -> List<Bool> {
    let x = ${nan}
    [x == x, x != x]
}`)).toBe("ok [false, true]")
  })

  it("a NaN inside a list, an option or a record makes the whole value unequal to itself", () => {
    expect(outcome(`type R { f: Float }
fn main() -> List<Bool> {
    let x = ${nan}
    let l = [1.0, x]
    let o = Some(x)
    let r = R { f: x }
    [l == l, o == o, r == r, l != l, [1.0] == [1.0]]
}`)).toBe("ok [false, false, false, true, true]")
  })

  it("every ordering test with NaN is false (was: NaN compared as equal, so <= and >= were true)", () => {
    expect(outcome(`fn main() -> List<Bool> {
    let x = ${nan}
    [x < 1.0, x <= 1.0, x > 1.0, x >= 1.0, x <= x, x >= x, 1.0 <= 1.0, 1.0 >= 1.0]
}`)).toBe("ok [false, false, false, false, false, false, true, true]")
  })

  it("a loop guarded by `i <= NaN` does not run (fused compare-and-jump opcodes agree)", () => {
    expect(outcome(`fn main() -> Int {
    let x = ${nan}
    let mut f = 0.0
    let mut n = 0
    while f <= x {
        n = n + 1
        f = f + 1.0
        if n > 3 { return -1 }
    }
    n
}`)).toBe("ok 0")
  })
})

describe("one mistake, one diagnostic", () => {
  it("`%` on Floats is reported once (was: also `main must return Float, but its body has type Int`)", () => {
    expect(outcome(`fn main() -> Float { 5.0 % 2.0 }`)).toBe("error type_error@1:26")
  })

  it("`++` on Ints is reported once (was: also a return-type mismatch with String)", () => {
    expect(outcome(`fn main() -> Int { 1 ++ 2 }`)).toBe("error type_error@1:22")
  })

  it("`&&` on an Int is reported once", () => {
    expect(outcome(`fn main() -> Int { 1 && true }`)).toBe("error type_error@1:22")
  })
})

describe("unknown variants are unknown identifiers", () => {
  it("`A::Q` where no enum has a variant `Q` is unknown_identifier (was: type_error)", () => {
    expect(outcome(`enum A { X, Y }
fn main() -> A { A::Q }`)).toBe("error unknown_identifier@2:18")
  })

  it("the same in a pattern", () => {
    expect(outcome(`enum A { X, Y }
fn f(a: A) -> Int { match a { A::Q => 1, _ => 2 } }
fn main() -> Int { f(X) }`)).toBe("error unknown_identifier@2:31")
  })

  it("a variant of another enum stays a type_error", () => {
    expect(outcome(`enum A { X, Y }
enum B { Z }
fn main() -> A { A::Z }`)).toBe("error type_error@3:18")
  })
})

describe("diagnostic positions", () => {
  it("an undeclared capability call is reported where the call starts (`net`), as the VM reports its call site (was: at `fetch`)", () => {
    expect(outcome(`fn main() -> String {
    let x = 1
    net.fetch("u")
}`)).toBe("error capability_error@3:5")
  })

  it("a capability call with the wrong number of arguments, likewise", () => {
    expect(outcome(`fn main() -> String !{net} {
    net.fetch()
}`)).toBe("error type_error@2:5")
  })

  it("a compile error after a tab, CJK text and CRLF line ends keeps its line:column", () => {
    expect(outcome("fn main() -> String {\r\n\tlet s = \"日本語\" ++ \"x\"\r\n\ts ++ y\r\n}\r\n")).toBe("error unknown_identifier@3:7")
  })
})
