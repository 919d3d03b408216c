import { describe, expect, it } from "@effect/vitest"
import {
  approxBytes,
  AxFloat,
  EnumV,
  equals,
  ErrV,
  hashKey,
  isList,
  listConcat,
  listPush,
  listReverse,
  listTail,
  ListV,
  type MapKey,
  MapV,
  mkMap,
  None,
  OkV,
  RecordV,
  show,
  SomeV,
  Unit,
  type Value
} from "../src/Value.js"
import { canonicalJson, fromJson, stringifyJson, toJson } from "../src/ValueJson.js"

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

describe("persistent lists (ListV)", () => {
  const items = (l: ListV): ReadonlyArray<Value> => l.toArray()

  it("push never changes the list it came from, also when two pushes branch from one version", () => {
    let l = ListV.empty
    const versions: Array<ListV> = [l]
    for (let i = 0; i < 2000; i++) {
      l = l.push(i)
      versions.push(l)
    }
    // branch from versions whose tail is shared with later ones: each branch sees only its own prefix
    const a = versions[40].push("a")
    const b = versions[40].push("b")
    const c = versions[1024].push("c") // a version whose tail became a trie leaf
    const d = versions[1056].push("d")
    expect(items(a)).toEqual([...Array.from({ length: 40 }, (_, i) => i), "a"])
    expect(items(b)).toEqual([...Array.from({ length: 40 }, (_, i) => i), "b"])
    expect(items(c).length).toBe(1025)
    expect(c.get(1024)).toBe("c")
    expect(d.get(1056)).toBe("d")
    for (let n = 0; n <= 2000; n += 37) {
      expect(versions[n].length).toBe(n)
      expect(items(versions[n])).toEqual(Array.from({ length: n }, (_, i) => i))
    }
    expect(versions[2000].get(1999)).toBe(1999)
    expect(versions[2000].get(1023)).toBe(1023)
  })

  it("set copies a path: the old version keeps its element", () => {
    const l = ListV.from(Array.from({ length: 5000 }, (_, i) => i))
    const m = l.set(10, "x").set(4999, "y")
    expect([l.get(10), l.get(4999), m.get(10), m.get(4999), m.get(11)]).toEqual([10, 4999, "x", "y", 11])
  })

  it("from, push and get agree with a plain array at every size around the leaf and level boundaries", () => {
    for (const n of [0, 1, 31, 32, 33, 64, 1023, 1024, 1025, 1056, 32 * 1024 + 33]) {
      const xs = Array.from({ length: n }, (_, i) => i * 3)
      const l = ListV.from(xs)
      expect(l.length).toBe(n)
      expect(items(l)).toEqual(xs)
      const p = l.push(-1)
      expect(p.get(n)).toBe(-1)
      if (n > 0) expect(p.get(n - 1)).toBe((n - 1) * 3)
    }
  })

  it("a ListV and an array with the same elements are equal, print alike and have one JSON form", () => {
    const arr = [1, "two", [3]]
    const l = listPush(listPush(listPush([], 1), "two"), [3])
    expect(isList(l)).toBe(true)
    expect(equals(l, arr)).toBe(true)
    expect(equals(arr, l)).toBe(true)
    expect(equals(l, [1, "two", [4]])).toBe(false)
    expect(show(l)).toBe(show(arr))
    expect(JSON.stringify(toJson(l))).toBe(JSON.stringify(toJson(arr)))
    expect(listConcat(l, arr).length).toBe(6)
    expect(show(listConcat(l, arr))).toBe("[1, \"two\", [3], 1, \"two\", [3]]")
  })
})

describe("list windows: list_tail and list_reverse without copying", () => {
  // a small deterministic PRNG (xorshift32), so a failure reproduces
  const rng = (seed: number) => () => {
    seed ^= seed << 13
    seed ^= seed >>> 17
    seed ^= seed << 5
    return (seed >>> 0) / 2 ** 32
  }

  it("any mix of push, tail, reverse, set and concat agrees with a plain array, and never changes an earlier version", () => {
    const next = rng(12345)
    for (const n0 of [0, 1, 31, 32, 33, 100, 1057]) {
      let l: ReturnType<typeof listTail> = Array.from({ length: n0 }, (_, i) => i)
      let model: Array<Value> = Array.from({ length: n0 }, (_, i) => i)
      const kept: Array<[ReturnType<typeof listTail>, Array<Value>]> = []
      for (let step = 0; step < 400; step++) {
        const r = next()
        if (r < 0.35) {
          l = listPush(l, `p${step}`)
          model = [...model, `p${step}`]
        } else if (r < 0.6) {
          l = listTail(l)
          model = model.slice(1)
        } else if (r < 0.75) {
          l = listReverse(l)
          model = [...model].reverse()
        } else if (r < 0.85 && model.length > 0) {
          const i = Math.floor(next() * model.length)
          l = (l instanceof ListV ? l : ListV.from(l)).set(i, `s${step}`)
          model = model.map((x, j) => (j === i ? `s${step}` : x))
        } else if (r < 0.9) {
          l = listConcat(l, [1, 2])
          model = [...model, 1, 2]
        }
        if (step % 7 === 0) kept.push([l, model])
        expect(l.length).toBe(model.length)
        if (step % 5 === 0) expect(show(l)).toBe(show(model))
      }
      for (const [v, m] of kept) {
        expect(show(v)).toBe(show(m))
        expect(equals(v, m)).toBe(true)
        for (let i = 0; i < m.length; i++) expect(v instanceof ListV ? v.get(i) : v[i]).toEqual(m[i])
      }
    }
  })

  it("draining 100,000 elements with list_tail copies O(n) elements in all, not O(n²)", () => {
    const n = 100_000
    let l: ReturnType<typeof listTail> = ListV.from(Array.from({ length: n }, (_, i) => i))
    const before = ListV.copied
    let sum = 0
    while (l.length > 0) {
      sum += (l as ListV).get(0) as number
      l = listTail(l)
    }
    expect(sum).toBe((n * (n - 1)) / 2)
    // the rebuilds (each once more than half the vector is outside the window) copy < 2n in all
    expect(ListV.copied - before).toBeLessThan(4 * n)
  })

  it("list_reverse is O(1): reversing a 100,000-element list 10,000 times copies nothing, and reverse twice is the list", () => {
    const n = 100_000
    const base = ListV.from(Array.from({ length: n }, (_, i) => i))
    const before = ListV.copied
    let l: ReturnType<typeof listReverse> = base
    for (let k = 0; k < 10_000; k++) l = listReverse(l)
    expect(ListV.copied - before).toBe(0)
    expect(equals(l, base)).toBe(true)
    const r = listReverse(base) as ListV
    expect([r.get(0), r.get(n - 1), listTail(r).length, (listTail(r) as ListV).get(0)]).toEqual([n - 1, 0, n - 1, n - 2])
    expect(ListV.copied - before).toBe(0)
  })
})

describe("persistent maps (MapV, a hash trie)", () => {
  it("set and remove leave the original map unchanged; keys print in canonical order", () => {
    const m0 = mkMap([["b", 1], ["a", 2]])
    const m1 = m0.set("c", 3)
    const m2 = m1.remove("a")
    expect([show(m0), show(m1), show(m2)]).toEqual(["{\"a\": 2, \"b\": 1}", "{\"a\": 2, \"b\": 1, \"c\": 3}", "{\"b\": 1, \"c\": 3}"])
    expect(m2.remove("zz")).toBe(m2)
    expect(equals(m1.remove("c"), m0)).toBe(true)
    expect(equals(m0, mkMap([["a", 2], ["b", 1]]))).toBe(true)
    expect(equals(m0, mkMap([["a", 2], ["b", 9]]))).toBe(false)
    expect(equals(m0, mkMap([["a", 2], ["c", 1]]))).toBe(false)
  })

  it("any mix of set and remove agrees with a JS Map, and every earlier version keeps its entries", () => {
    let seed = 99
    const next = () => {
      seed ^= seed << 13
      seed ^= seed >>> 17
      seed ^= seed << 5
      return (seed >>> 0) / 2 ** 32
    }
    const pool: Array<MapKey> = []
    for (let i = 0; i < 300; i++) pool.push(i, -i - 1, i * 4294967296, `k${i}`, `é${i}`)
    pool.push(2n ** 62n, -(2n ** 62n), 2n ** 62n + 1n, 9007199254740991, -9007199254740991, "", "\u{1F600}")
    let m = MapV.empty
    let model = new Map<MapKey, Value>()
    const kept: Array<[MapV, Map<MapKey, Value>]> = []
    for (let step = 0; step < 6000; step++) {
      const k = pool[Math.floor(next() * pool.length)]
      if (next() < 0.7) {
        m = m.set(k, step)
        model = new Map(model).set(k, step)
      } else {
        m = m.remove(k)
        model = new Map(model)
        model.delete(k)
      }
      if (step % 97 === 0) kept.push([m, model])
    }
    kept.push([m, model])
    for (const [v, mm] of kept) {
      expect(v.size).toBe(mm.size)
      for (const k of pool) expect([k, v.get(k)]).toEqual([k, mm.get(k)])
      expect(show(v)).toBe(show(mkMap(mm)))
      let n = 0
      v.forEach((x, k) => {
        expect(mm.get(k)).toBe(x)
        n++
      })
      expect(n).toBe(mm.size)
    }
  })

  it("keys whose 32-bit hashes collide are kept apart, set over, removed, and mixed with other keys", () => {
    // find String keys with equal hashes (birthday bound: a few hundred thousand candidates)
    const seen = new Map<number, string>()
    const colliding: Array<[string, string]> = []
    for (let i = 0; colliding.length < 2; i++) {
      const k = `c${i}`
      const h = hashKey(k)
      const other = seen.get(h)
      if (other === undefined) seen.set(h, k)
      else colliding.push([other, k])
    }
    const [[a, b], [c, d]] = colliding
    expect(hashKey(a)).toBe(hashKey(b))
    let m = mkMap([[a, 1], [b, 2], [c, 3]])
    const m0 = m
    m = m.set(d, 4).set(a, 10).set("other", 5)
    expect([m.get(a), m.get(b), m.get(c), m.get(d), m.get("other"), m.size]).toEqual([10, 2, 3, 4, 5, 5])
    expect([m0.get(a), m0.get(d), m0.size]).toEqual([1, undefined, 3])
    const m1 = m.remove(b)
    expect([m1.get(a), m1.get(b), m1.size, m.get(b)]).toEqual([10, undefined, 4, 2])
    const empty = m1.remove(a).remove(c).remove(d).remove("other")
    expect(empty.size).toBe(0)
    expect(show(empty)).toBe("{}")
    expect(equals(empty, mkMap([]))).toBe(true)
    expect(equals(m1.set(b, 2).set(a, 1), m.set(a, 1))).toBe(true)
  })

  it("Int keys (safe and 64-bit) are distinct from String keys", () => {
    const m = mkMap([[1, "i"], ["1", "s"], [2n ** 62n, "big"]])
    expect(m.size).toBe(3)
    expect([m.get(1), m.get("1"), m.get(2n ** 62n), m.get(2)]).toEqual(["i", "s", "big", undefined])
  })
})

// a linked list of `depth` cells as a recursive enum, the shape the issue reports
const deep = (depth: number, leaf: Value = "end"): Value => {
  let v: Value = new EnumV("L", 0, "Nil", leaf === undefined ? undefined : new SomeV(leaf))
  for (let i = 0; i < depth; i++) v = new EnumV("L", 1, "Cons", new RecordV("P", ["h", "t"], [i % 7, v]))
  return v
}

describe("values nested 100,000 levels deep", () => {
  const N = 100_000

  it("equality: equal, unequal at the bottom, and NaN at the bottom", () => {
    expect(equals(deep(N), deep(N))).toBe(true)
    expect(equals(deep(N), deep(N, "other"))).toBe(false)
    const nan = deep(N, new AxFloat(NaN))
    expect(equals(nan, nan)).toBe(false)
    let lists: Value = []
    let lists2: Value = []
    for (let i = 0; i < N; i++) {
      lists = [lists]
      lists2 = listPush([], lists2)
    }
    expect(equals(lists, lists2)).toBe(true)
    expect(equals(new OkV(lists), new OkV(lists2))).toBe(true)
  })

  it("JSON: encode, text (plain and canonical), decode and compare", () => {
    const v = deep(N)
    const j = toJson(v)
    const text = stringifyJson(j)
    expect(text.startsWith("{\"Enum\":{\"type\":\"L\",\"variant\":1,\"name\":\"Cons\",\"payload\":{\"Record\":{\"type\":\"P\",\"fields\":{\"h\":{\"Int\":" + ((N - 1) % 7) + "},\"t\":")).toBe(true)
    expect(canonicalJson(j).length).toBe(text.length)
    const back = fromJson(JSON.parse(text))
    expect(equals(back, v)).toBe(true)
    expect(show(back)).toBe(show(v))
  })

  it("a decode error deep inside names its full JSON path", () => {
    let j: unknown = { Bool: 3 }
    for (let i = 0; i < 3; i++) j = { Some: j }
    expect(() => fromJson(j)).toThrow("$.Some.Some.Some.Bool: expected a boolean")
    let big: unknown = { Int: "x" }
    for (let i = 0; i < N; i++) big = { Ok: big }
    expect(() => fromJson(big)).toThrow(`$${".Ok".repeat(N)}.Int: expected an Int`)
  })

  it("approxBytes counts every string of a deep value", () => {
    expect(approxBytes(deep(N, "é"))).toBe(2)
    let v: Value = "ab"
    for (let i = 0; i < N; i++) v = new SomeV(mkMap([["k", v]]))
    expect(approxBytes(v)).toBe(N + 2)
  })
})

describe("approxBytes", () => {
  // independent count: the UTF-8 bytes of every string, by Buffer.byteLength
  const b = (s: string): number => Buffer.byteLength(s, "utf8")

  it("counts every entry of a map with several entries, keys included", () => {
    const m = mkMap([["alpha", "x"], ["β", "yy"], ["日本", "zzz"], ["k4", 7]])
    expect(approxBytes(m)).toBe(b("alpha") + b("x") + b("β") + b("yy") + b("日本") + b("zzz") + b("k4"))
  })

  it("counts nested containers and non-ASCII strings", () => {
    const strs = ["héllo", "😀", "plain", "ключ", "v", "𝄞x"]
    const v: Value = [
      new RecordV("R", ["a", "b"], [strs[0], [strs[1], new SomeV(strs[2])]]),
      mkMap([[strs[3], mkMap([[1, strs[4]]])]]),
      new EnumV("E", 1, "V", new OkV([strs[5], 42, new AxFloat(1.5)]))
    ]
    expect(approxBytes(v)).toBe(strs.reduce((n, s) => n + b(s), 0))
    expect(approxBytes(listPush([], "ü"))).toBe(2)
  })
})
