import { describe, expect, it } from "@effect/vitest"
import { AxFloat, EnumV, ErrV, mkMap, None, OkV, RecordV, show, SomeV, Unit, type Value } from "../src/Value.js"

describe("Value.show", () => {
  it("prints every value form in the .ax literal form", () => {
    const cases: Array<[Value, string]> = [
      [42, "42"],
      [-7, "-7"],
      [9007199254740993n, "9007199254740993"],
      [new AxFloat(3.5), "3.5"],
      [new AxFloat(1), "1.0"],
      [true, "true"],
      ["line1\nline2 \"q\"", "\"line1\\nline2 \\\"q\\\"\""],
      [Unit, "()"],
      [None, "None"],
      [new SomeV(1), "Some(1)"],
      [new OkV(new SomeV("x")), "Ok(Some(\"x\"))"],
      [new ErrV("e"), "Err(\"e\")"],
      [[1, 2], "[1, 2]"],
      [[], "[]"],
      [mkMap([["b", 2], ["a", 1]]), "{\"a\": 1, \"b\": 2}"],
      [mkMap([]), "{}"],
      [new RecordV("User", ["name", "age"], ["a", 3]), "User { name: \"a\", age: 3 }"],
      [new RecordV("Empty", [], []), "Empty {}"],
      [new EnumV("Color", 0, "Red", undefined), "Red"],
      [new EnumV("Color", 2, "Custom", [new SomeV(mkMap([[1, "x"]]))]), "Custom([Some({1: \"x\"})])"]
    ]
    for (const [v, text] of cases) expect(show(v)).toBe(text)
  })

  it("prints a value nested far deeper than the JS stack would allow recursion", () => {
    let v: Value = new EnumV("L", 0, "Nil", undefined)
    for (let i = 0; i < 100_000; i++) v = new EnumV("L", 1, "Cons", new RecordV("P", ["h", "t"], [i, v]))
    const text = show(v)
    expect(text.startsWith("Cons(P { h: 99999, t: Cons(P { h: 99998, ")).toBe(true)
    expect(text.endsWith("Cons(P { h: 0, t: Nil" + " })".repeat(100_000))).toBe(true)
  })
})
