import { describe, expect, it } from "@effect/vitest"
import { BUILTIN_SIGNATURES } from "../src/BuiltinTypes.js"
import { BUILTINS, callBuiltin, VmFault } from "../src/Builtins.js"
import { compileSource } from "../src/Compiler.js"
import { AxFloat, ListV, mkMap, show, type Value } from "../src/Value.js"
import { runPure } from "../src/Vm.js"

const call = (name: string, ...args: Array<Value>): string => show(callBuiltin(name, args))

const fault = (name: string, ...args: Array<Value>): VmFault => {
  try {
    callBuiltin(name, args)
  } catch (e) {
    if (e instanceof VmFault) return e
    throw e
  }
  throw new Error(`${name} did not fail`)
}

describe("builtins table", () => {
  it("has exactly the names and arities the checker knows", () => {
    expect(BUILTINS.map((b) => b.name).sort()).toEqual([...BUILTIN_SIGNATURES.keys()].sort())
    for (const b of BUILTINS) expect([b.name, b.arity]).toEqual([b.name, BUILTIN_SIGNATURES.get(b.name)!.params.length])
  })
})

describe("early names", () => {
  it("list_len, list_get (bounds), list_push (new list)", () => {
    const xs = [1, 2, 3]
    expect(call("list_len", xs)).toBe("3")
    expect(call("list_get", xs, 2)).toBe("3")
    expect(fault("list_get", xs, 3).kind).toBe("index_out_of_bounds")
    expect(fault("list_get", xs, -1).message).toBe("list index out of bounds: index -1, length 3")
    expect(fault("list_get", xs, 2n ** 60n).kind).toBe("index_out_of_bounds")
    expect(call("list_push", xs, 4)).toBe("[1, 2, 3, 4]")
    expect(xs).toEqual([1, 2, 3])
  })
  it("parse_int (0 on failure, trims, exact i64), try_parse_int", () => {
    expect(call("parse_int", " 42 ")).toBe("42")
    expect(call("parse_int", "-7")).toBe("-7")
    expect(call("parse_int", "+7")).toBe("7")
    expect(call("parse_int", "abc")).toBe("0")
    expect(call("parse_int", "1.5")).toBe("0")
    expect(call("parse_int", "9223372036854775807")).toBe("9223372036854775807")
    expect(call("parse_int", "9223372036854775808")).toBe("0")
    expect(call("try_parse_int", "12")).toBe("Ok(12)")
    expect(call("try_parse_int", "abc")).toBe(`Err("invalid integer: abc")`)
  })
  it("str_contains, str_starts_with, int_to_string", () => {
    expect(call("str_contains", "hello", "ell")).toBe("true")
    expect(call("str_contains", "hello", "")).toBe("true")
    expect(call("str_starts_with", "hello", "lo")).toBe("false")
    expect(call("int_to_string", -9007199254740993n)).toBe(`"-9007199254740993"`)
  })
})

describe("__builtin_ strings", () => {
  it("to_string conversions", () => {
    expect(call("__builtin_int_to_string", 5)).toBe(`"5"`)
    expect(call("__builtin_float_to_string", new AxFloat(1))).toBe(`"1.0"`)
    expect(call("__builtin_float_to_string", new AxFloat(0.1))).toBe(`"0.1"`)
    expect(call("__builtin_bool_to_string", false)).toBe(`"false"`)
  })
  it("len counts UTF-8 bytes; chars splits code points", () => {
    expect(call("__builtin_string_len", "héllo")).toBe("6")
    expect(call("__builtin_string_len", "😀")).toBe("4")
    expect(call("__builtin_string_chars", "a😀é")).toBe(`["a", "😀", "é"]`)
  })
  it("contains / starts_with / ends_with / trim", () => {
    expect(call("__builtin_string_contains", "abc", "bc")).toBe("true")
    expect(call("__builtin_string_starts_with", "abc", "ab")).toBe("true")
    expect(call("__builtin_string_ends_with", "abc", "ab")).toBe("false")
    expect(call("__builtin_string_trim", "  a b \n")).toBe(`"a b"`)
  })
  it("to_upper / to_lower are ASCII only", () => {
    expect(call("__builtin_string_to_upper", "abc-é-z")).toBe(`"ABC-é-Z"`)
    expect(call("__builtin_string_to_lower", "ABC-É-Z")).toBe(`"abc-É-z"`)
  })
  it("join, split (keeps empty pieces; empty separator splits characters)", () => {
    expect(call("__builtin_string_join", ["a", "b", "c"], ", ")).toBe(`"a, b, c"`)
    expect(call("__builtin_string_join", [], "-")).toBe(`""`)
    expect(call("__builtin_string_split", "a,,b", ",")).toBe(`["a", "", "b"]`)
    expect(call("__builtin_string_split", "hé", "")).toBe(`["h", "é"]`)
    expect(fault("__builtin_string_join", ["a", 1], "-").message).toContain("expected String, got Int")
  })
  it("replace replaces the first occurrence only, literally", () => {
    expect(call("__builtin_string_replace", "a-b-c", "-", "+")).toBe(`"a+b-c"`)
    expect(call("__builtin_string_replace", "abc", "x", "y")).toBe(`"abc"`)
    expect(call("__builtin_string_replace", "a.b", ".", "$&$&")).toBe(`"a$&$&b"`)
  })
  it("slice takes UTF-8 byte offsets and refuses bad ranges and non-boundaries", () => {
    expect(call("__builtin_string_slice", "hello", 1, 3)).toBe(`"el"`)
    expect(call("__builtin_string_slice", "héllo", 1, 3)).toBe(`"é"`)
    expect(call("__builtin_string_slice", "héllo", 0, 0)).toBe(`""`)
    expect(fault("__builtin_string_slice", "héllo", 2, 3).message).toContain("character boundary")
    expect(fault("__builtin_string_slice", "abc", 2, 5).kind).toBe("index_out_of_bounds")
    expect(fault("__builtin_string_slice", "abc", -1, 2).kind).toBe("index_out_of_bounds")
    expect(fault("__builtin_string_slice", "abc", 2, 1).kind).toBe("index_out_of_bounds")
  })
  it("int_parse and float_parse return Result", () => {
    expect(call("__builtin_int_parse", "-12")).toBe("Ok(-12)")
    expect(call("__builtin_int_parse", " 12")).toBe(`Err("invalid integer:  12")`)
    expect(call("__builtin_int_parse", "99999999999999999999")).toBe(`Err("invalid integer: 99999999999999999999")`)
    expect(call("__builtin_float_parse", "2.5")).toBe("Ok(2.5)")
    expect(call("__builtin_float_parse", "1e3")).toBe("Ok(1000.0)")
    expect(call("__builtin_float_parse", "-inf")).toBe("Ok(-inf)")
    expect(call("__builtin_float_parse", "x1")).toBe(`Err("invalid float: x1")`)
  })
})

describe("__builtin_ lists and maps", () => {
  it("lists", () => {
    expect(call("__builtin_list_len", [1, 2])).toBe("2")
    expect(call("__builtin_list_is_empty", [])).toBe("true")
    expect(call("__builtin_list_head", [7, 8])).toBe("Some(7)")
    expect(call("__builtin_list_head", [])).toBe("None")
    expect(call("__builtin_list_tail", [7, 8, 9])).toBe("[8, 9]")
    expect(call("__builtin_list_tail", [])).toBe("[]")
    expect(call("__builtin_list_append", [1], 2)).toBe("[1, 2]")
    expect(call("__builtin_list_concat", [1], [2, 3])).toBe("[1, 2, 3]")
    const xs = [1, 2, 3]
    expect(call("__builtin_list_reverse", xs)).toBe("[3, 2, 1]")
    expect(xs).toEqual([1, 2, 3])
    expect(call("__builtin_list_reverse", [])).toBe("[]")
    expect(call("__builtin_list_tail", callBuiltin("__builtin_list_reverse", [xs]))).toBe("[2, 1]")
  })
  it("list_tail and list_reverse in a loop do O(1) work per call, not a copy of the list", () => {
    // `xs = list_tail(xs)` over 100,000 elements: a copy per call would move ~5·10⁹ elements
    const n = 100_000
    let xs: Value = Array.from({ length: n }, (_, i) => i)
    const before = ListV.copied
    let sum = 0
    for (let k = 0; k < n; k++) {
      sum += callBuiltin("list_get", [xs, 0]) as number
      xs = callBuiltin("__builtin_list_tail", [callBuiltin("__builtin_list_reverse", [callBuiltin("__builtin_list_reverse", [xs])])])
    }
    expect(show(xs)).toBe("[]")
    expect(sum).toBe((n * (n - 1)) / 2)
    expect(ListV.copied - before).toBeLessThan(4 * n)
  })
  it("maps: get/set/remove/contains_key/len, keys sorted, values in key order, values immutable", () => {
    const m = mkMap([["b", 2], ["a", 1], ["é", 3], ["Z", 0]])
    expect(call("__builtin_map_get", m, "a")).toBe("Some(1)")
    expect(call("__builtin_map_get", m, "q")).toBe("None")
    expect(call("__builtin_map_keys", m)).toBe(`["Z", "a", "b", "é"]`)
    expect(call("__builtin_map_values", m)).toBe("[0, 1, 2, 3]")
    expect(call("__builtin_map_set", m, "c", 9)).toBe(`{"Z": 0, "a": 1, "b": 2, "c": 9, "é": 3}`)
    expect(call("__builtin_map_remove", m, "b")).toBe(`{"Z": 0, "a": 1, "é": 3}`)
    expect(call("__builtin_map_contains_key", m, "b")).toBe("true")
    expect(call("__builtin_map_len", m)).toBe("4")
    const ints = mkMap([[10, "x"], [2, "y"]])
    expect(call("__builtin_map_keys", ints)).toBe("[2, 10]")
  })
  it("wrong argument types are runtime errors, not JS exceptions", () => {
    expect(fault("list_len", "abc").message).toBe("type error: expected List, got String")
    expect(fault("__builtin_map_get", [1], "a").message).toContain("expected Map")
  })
})

describe("builtins from .ax source", () => {
  it("every builtin is callable by name from a program, each with its result", () => {
    const src = `fn main() -> List<String> {
  let xs = list_push([3, 1], 2)
  let m = __builtin_map_set({"x": 1, "z": 9}, "y", 2)
  [
    int_to_string(list_len(xs)),
    int_to_string(list_get(xs, 2)),
    int_to_string(parse_int(" 41 ") + 1),
    match try_parse_int("x7") { Ok(n) => int_to_string(n), Err(e) => e },
    __builtin_bool_to_string(str_contains("haystack", "st")),
    __builtin_bool_to_string(str_starts_with("haystack", "hay")),
    __builtin_int_to_string(-5),
    __builtin_float_to_string(2.5),
    __builtin_string_join(__builtin_string_chars("héj"), "|"),
    int_to_string(__builtin_string_len("héllo")),
    __builtin_bool_to_string(__builtin_string_contains("abc", "d")),
    __builtin_bool_to_string(__builtin_string_starts_with("abc", "ab")),
    __builtin_bool_to_string(__builtin_string_ends_with("abc", "bc")),
    __builtin_string_to_upper("mIxé"),
    __builtin_string_to_lower("MiXÉ"),
    __builtin_string_trim("  pad  "),
    __builtin_string_join(__builtin_string_split("a,b,,c", ","), "/"),
    __builtin_string_replace("a-b-c", "-", "+"),
    __builtin_string_slice("héllo", 1, 3),
    match __builtin_int_parse("12") { Ok(n) => int_to_string(n * 2), Err(e) => e },
    match __builtin_float_parse("nope") { Ok(x) => __builtin_float_to_string(x), Err(e) => e },
    int_to_string(__builtin_list_len(__builtin_list_tail(xs))),
    __builtin_bool_to_string(__builtin_list_is_empty(__builtin_list_tail([1]))),
    match __builtin_list_head(__builtin_list_reverse(xs)) { Some(h) => int_to_string(h), None => "none" },
    __builtin_string_join(__builtin_list_append(["p"], "q"), ""),
    int_to_string(list_len(__builtin_list_concat(xs, xs))),
    match __builtin_map_get(m, "y") { Some(v) => int_to_string(v), None => "none" },
    __builtin_string_join(__builtin_map_keys(__builtin_map_remove(m, "x")), "+"),
    __builtin_bool_to_string(__builtin_map_contains_key(m, "z")),
    int_to_string(list_get(__builtin_map_values(m), 0) + __builtin_map_len(m))
  ]
}
`
    // the program names every builtin of the table (so a new builtin must be added here)
    for (const { name } of BUILTINS) expect(new RegExp(`(?<![A-Za-z_])${name}\\(`).test(src), name).toBe(true)
    const r = compileSource("b.ax", src)
    if (!r.ok) throw new Error(r.diagnostics.map((d) => d.message).join("\n"))
    expect(show(runPure(r.program))).toBe(
      `["3", "2", "42", "invalid integer: x7", "true", "true", "-5", "2.5", "h|é|j", "6", "false", "true", "true", "MIXé", "mixÉ", "pad", ` +
        `"a/b//c", "a+b-c", "é", "24", "invalid float: nope", "2", "true", "2", "pq", "6", "2", "y+z", "true", "4"]`
    )
  })
})
