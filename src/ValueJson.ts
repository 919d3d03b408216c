/**
 * The JSON form of a Value, used by the event log, `.axbc` constants, net tapes and hashes.
 *
 * Externally tagged like the reference (`"Unit"`, `{"Int":42}`, `{"String":"s"}`, `"None"`,
 * `{"Some":V}`, `{"List":[…]}`, `{"Map":{"k":V}}` with sorted keys), with these exact-value rules
 * of our own:
 * - an Int outside ±(2^53−1) is written as a decimal string, `{"Int":"9007199254740993"}`, so no
 *   JSON reader can round it;
 * - a non-finite Float is written as `{"Float":"NaN"|"inf"|"-inf"}`, and negative zero as
 *   `{"Float":"-0"}` (JSON numbers cannot carry its sign);
 * - records and enums carry their type name: `{"Record":{"type":"User","fields":{"name":V}}}`,
 *   `{"Enum":{"type":"Color","variant":2,"name":"Custom","payload":V}}` (payload absent for unit variants);
 * - an Int-keyed map is `{"IntMap":[[K,V],…]}` in key order.
 */
import {
  ActorIdV,
  AxFloat,
  EnumV,
  ErrV,
  FnRefV,
  intFromBigInt,
  isList,
  listAt,
  MapV,
  type MapKey,
  None,
  OkV,
  RecordV,
  SomeV,
  Unit,
  type Value
} from "./Value.js"

export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [k: string]: Json }

type Boxed = Exclude<Value, ReadonlyArray<Value> | number | bigint | string | boolean>
type Slot = Record<string | number, Json>

/** The JSON form of one value whose children are filled in later (`fill` pushes their slots). */
const shallow = (v: Value, fill: Array<[Value, Slot, string | number]>): Json => {
  switch (typeof v) {
    case "number":
      return { Int: v }
    case "bigint":
      return { Int: v.toString() }
    case "string":
      return { String: v }
    case "boolean":
      return { Bool: v }
  }
  if (isList(v)) {
    const n = v.length
    const arr = new Array<Json>(n).fill(null)
    for (let i = n - 1; i >= 0; i--) fill.push([listAt(v, i), arr as unknown as Slot, i])
    return { List: arr }
  }
  const o = v as Boxed
  switch (o._tag) {
    case "Unit":
      return "Unit"
    case "Float": {
      const x = o.value
      return { Float: Object.is(x, -0) ? "-0" : Number.isFinite(x) ? x : Number.isNaN(x) ? "NaN" : x > 0 ? "inf" : "-inf" }
    }
    case "None":
      return "None"
    case "Some":
    case "Ok":
    case "Err": {
      const out: Slot = { [o._tag]: null }
      fill.push([o.value, out, o._tag])
      return out
    }
    case "Record": {
      const fields: Slot = {}
      for (const n of o.names) fields[n] = null // declaration order
      for (let i = o.names.length - 1; i >= 0; i--) fill.push([o.fields[i], fields, o.names[i]])
      return { Record: { type: o.type, fields } }
    }
    case "Enum": {
      if (o.payload === undefined) return { Enum: { type: o.type, variant: o.variant, name: o.name } }
      const e: Slot = { type: o.type, variant: o.variant, name: o.name, payload: null }
      fill.push([o.payload, e, "payload"])
      return { Enum: e }
    }
    case "Map": {
      const keys = o.keys()
      if (keys.length > 0 && typeof keys[0] !== "string") {
        const pairs = keys.map((k) => [intJson(k as number | bigint), null] as Array<Json>)
        for (let i = keys.length - 1; i >= 0; i--) fill.push([o.get(keys[i])!, pairs[i] as unknown as Slot, 1])
        return { IntMap: pairs }
      }
      const out: Slot = {}
      for (const k of keys) out[k as string] = null
      for (let i = keys.length - 1; i >= 0; i--) fill.push([o.get(keys[i])!, out, keys[i] as string])
      return { Map: out }
    }
    case "ActorId":
      return { ActorId: o.id }
    case "FnRef":
      return { FnRef: { index: o.index, name: o.name } }
    default:
      throw new Error(`toJson: not a value (${String(o)})`)
  }
}

/**
 * The JSON text of an Int, String or Bool value's JSON form, written directly (one key, so it is
 * also the canonical text); undefined for any other value.
 */
export const scalarJsonText = (v: Value): string | undefined =>
  typeof v === "number" ? `{"Int":${v}}` : typeof v === "string" ? `{"String":${JSON.stringify(v)}}` : typeof v === "boolean" ? `{"Bool":${v}}` : undefined

/** The JSON form of a value (an explicit work stack: any nesting depth). */
export const toJson = (v: Value): Json => {
  const root: Slot = { v: null }
  const fill: Array<[Value, Slot, string | number]> = [[v, root, "v"]]
  while (fill.length > 0) {
    const [x, slot, key] = fill.pop()!
    slot[key] = shallow(x, fill)
  }
  return root.v
}

const intJson = (k: number | bigint): Json => (typeof k === "number" ? k : k.toString())

/** A decode failure, with the JSON path where it happened (`$.events[3].args[0].Int`). */
export class ValueJsonError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string
  ) {
    super(`${path}: ${reason}`)
  }
}

const isObj = (j: unknown): j is Record<string, unknown> =>
  typeof j === "object" && j !== null && !Array.isArray(j)

/** A JSON path built only when an error needs it (a deep value would otherwise build O(depth²) text). */
class Path {
  constructor(
    readonly parent: Path | string,
    readonly seg: string
  ) {}
  toString(): string {
    const segs: Array<string> = []
    let p: Path | string = this
    while (p instanceof Path) {
      segs.push(p.seg)
      p = p.parent
    }
    return p + segs.reverse().join("")
  }
}
type PathLike = Path | string
const at = (p: PathLike, seg: string): Path => new Path(p, seg)
const fail = (p: PathLike, reason: string): ValueJsonError => new ValueJsonError(String(p), reason)

const decodeIntAt = (j: unknown, path: PathLike): number | bigint => {
  if (typeof j === "number") {
    if (!Number.isSafeInteger(j)) throw fail(path, "Int must be a safe integer or a decimal string")
    return j
  }
  if (typeof j === "string" && /^-?[0-9]+$/.test(j)) {
    const i = intFromBigInt(BigInt(j))
    if (i === undefined) throw fail(path, "Int out of signed 64-bit range")
    return i
  }
  throw fail(path, "expected an Int")
}

/** A value to build once its `n` children (the top `n` results) are decoded. */
class Build {
  constructor(
    readonly n: number,
    readonly make: (children: Array<Value>) => Value
  ) {}
}
class Visit {
  constructor(
    readonly j: unknown,
    readonly path: PathLike
  ) {}
}

/** Decode the JSON form back to a Value; throws `ValueJsonError` naming the JSON path. */
export const fromJson = (j: unknown, path = "$"): Value => {
  const work: Array<Visit | Build> = [new Visit(j, path)]
  const results: Array<Value> = []
  const children = (b: Build, kids: ReadonlyArray<Visit>): void => {
    work.push(b)
    for (let i = kids.length - 1; i >= 0; i--) work.push(kids[i])
  }
  while (work.length > 0) {
    const w = work.pop()!
    if (w instanceof Build) {
      const kids = w.n === 0 ? [] : results.splice(results.length - w.n, w.n)
      results.push(w.make(kids))
      continue
    }
    const { j, path } = w
    if (j === "Unit") {
      results.push(Unit)
      continue
    }
    if (j === "None") {
      results.push(None)
      continue
    }
    if (!isObj(j)) throw fail(path, `expected a tagged value, got ${JSON.stringify(j)?.slice(0, 40)}`)
    const keys = Object.keys(j)
    if (keys.length !== 1) throw fail(path, "a tagged value has exactly one key")
    const tag = keys[0]
    const x = j[tag]
    const p = at(path, `.${tag}`)
    switch (tag) {
      case "Int":
        results.push(decodeIntAt(x, p))
        break
      case "Float":
        if (typeof x === "number") results.push(new AxFloat(x))
        else if (x === "NaN") results.push(new AxFloat(NaN))
        else if (x === "inf") results.push(new AxFloat(Infinity))
        else if (x === "-inf") results.push(new AxFloat(-Infinity))
        else if (x === "-0") results.push(new AxFloat(-0))
        else throw fail(p, "expected a number")
        break
      case "String":
        if (typeof x !== "string") throw fail(p, "expected a string")
        results.push(x)
        break
      case "Bool":
        if (typeof x !== "boolean") throw fail(p, "expected a boolean")
        results.push(x)
        break
      case "Some":
        children(new Build(1, (c) => new SomeV(c[0])), [new Visit(x, p)])
        break
      case "Ok":
        children(new Build(1, (c) => new OkV(c[0])), [new Visit(x, p)])
        break
      case "Err":
        children(new Build(1, (c) => new ErrV(c[0])), [new Visit(x, p)])
        break
      case "List":
        if (!Array.isArray(x)) throw fail(p, "expected an array")
        children(new Build(x.length, (c) => c), x.map((e, i) => new Visit(e, at(p, `[${i}]`))))
        break
      case "Map": {
        if (!isObj(x)) throw fail(p, "expected an object")
        const ks = Object.keys(x)
        children(new Build(ks.length, (c) => MapV.of(ks.map((k, i) => [k, c[i]] as const))), ks.map((k) => new Visit(x[k], at(p, `.${k}`))))
        break
      }
      case "IntMap": {
        if (!Array.isArray(x)) throw fail(p, "expected an array of [key, value] pairs")
        const ks: Array<MapKey> = []
        const kids: Array<Visit> = []
        x.forEach((e, i) => {
          if (!Array.isArray(e) || e.length !== 2) throw fail(at(p, `[${i}]`), "expected [key, value]")
          ks.push(decodeIntAt(e[0], at(p, `[${i}][0]`)))
          kids.push(new Visit(e[1], at(p, `[${i}][1]`)))
        })
        children(new Build(ks.length, (c) => MapV.of(ks.map((k, i) => [k, c[i]] as const))), kids)
        break
      }
      case "Record": {
        if (!isObj(x) || typeof x.type !== "string" || !isObj(x.fields)) throw fail(p, "expected {type, fields}")
        const names = Object.keys(x.fields)
        const fields = x.fields
        const type = x.type
        children(new Build(names.length, (c) => new RecordV(type, names, c)), names.map((n) => new Visit(fields[n], at(p, `.fields.${n}`))))
        break
      }
      case "Enum": {
        if (!isObj(x) || typeof x.type !== "string" || typeof x.variant !== "number" || typeof x.name !== "string") {
          throw fail(p, "expected {type, variant, name, payload?}")
        }
        const { type, variant, name } = x
        if (x.payload === undefined) results.push(new EnumV(type, variant, name, undefined))
        else children(new Build(1, (c) => new EnumV(type, variant, name, c[0])), [new Visit(x.payload, at(p, ".payload"))])
        break
      }
      case "ActorId":
        if (typeof x !== "number") throw fail(p, "expected a number")
        results.push(new ActorIdV(x))
        break
      case "FnRef":
        if (!isObj(x) || typeof x.index !== "number" || typeof x.name !== "string") throw fail(p, "expected {index, name}")
        results.push(new FnRefV(x.index, x.name))
        break
      default:
        throw fail(path, `unknown value tag '${tag}'`)
    }
  }
  return results[0]
}

/** Literal text on `stringify`'s work stack. */
class Raw {
  constructor(readonly text: string) {}
}
const COMMA = new Raw(",")
const CLOSE_ARR = new Raw("]")
const CLOSE_OBJ = new Raw("}")

/**
 * `JSON.stringify` of plain JSON data (no whitespace) without JS recursion, so any nesting depth
 * is written (V8's own `JSON.stringify` overflows the stack at a few thousand levels). With `sort`,
 * object keys are sorted (the canonical form used for hashes). `undefined` object members are
 * left out and `undefined` array elements written as `null`, as `JSON.stringify` does.
 */
const stringify = (j: unknown, sort: boolean): string => {
  let out = ""
  const work: Array<unknown> = [j]
  while (work.length > 0) {
    const x = work.pop()
    if (x instanceof Raw) {
      out += x.text
      continue
    }
    if (x === null || x === undefined || typeof x !== "object") {
      out += x === undefined ? "null" : JSON.stringify(x)
      continue
    }
    if (Array.isArray(x)) {
      out += "["
      work.push(CLOSE_ARR)
      for (let i = x.length - 1; i >= 0; i--) {
        work.push(x[i])
        if (i > 0) work.push(COMMA)
      }
      continue
    }
    const o = x as Record<string, unknown>
    let keys = Object.keys(o).filter((k) => o[k] !== undefined)
    if (sort) keys = keys.sort()
    out += "{"
    work.push(CLOSE_OBJ)
    for (let i = keys.length - 1; i >= 0; i--) {
      work.push(o[keys[i]])
      work.push(new Raw((i > 0 ? "," : "") + JSON.stringify(keys[i]) + ":"))
    }
  }
  return out
}

/** JSON text of plain JSON data, keys in their order, any depth (see `stringify`). */
export const stringifyJson = (j: unknown): string => stringify(j, false)

/** Canonical JSON text: object keys sorted, no whitespace. Used for hashes. Any depth. */
export const canonicalJson = (j: unknown): string => stringify(j, true)
