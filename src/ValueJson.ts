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

export const toJson = (v: Value): Json => {
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
  if (Array.isArray(v)) return { List: v.map(toJson) }
  const o = v as Exclude<Value, ReadonlyArray<Value> | number | bigint | string | boolean>
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
      return { Some: toJson(o.value) }
    case "Ok":
      return { Ok: toJson(o.value) }
    case "Err":
      return { Err: toJson(o.value) }
    case "Record": {
      const fields: Record<string, Json> = {}
      o.names.forEach((n, i) => (fields[n] = toJson(o.fields[i])))
      return { Record: { type: o.type, fields } }
    }
    case "Enum":
      return {
        Enum: o.payload === undefined
          ? { type: o.type, variant: o.variant, name: o.name }
          : { type: o.type, variant: o.variant, name: o.name, payload: toJson(o.payload) }
      }
    case "Map": {
      const keys = o.keys()
      if (keys.length > 0 && typeof keys[0] !== "string") {
        return { IntMap: keys.map((k) => [intJson(k as number | bigint), toJson(o.get(k)!)]) }
      }
      const out: Record<string, Json> = {}
      for (const k of keys) out[k as string] = toJson(o.get(k)!)
      return { Map: out }
    }
    case "ActorId":
      return { ActorId: o.id }
    case "FnRef":
      return { FnRef: { index: o.index, name: o.name } }
  }
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

const decodeInt = (j: unknown, path: string): number | bigint => {
  if (typeof j === "number") {
    if (!Number.isSafeInteger(j)) throw new ValueJsonError(path, "Int must be a safe integer or a decimal string")
    return j
  }
  if (typeof j === "string" && /^-?[0-9]+$/.test(j)) {
    const i = intFromBigInt(BigInt(j))
    if (i === undefined) throw new ValueJsonError(path, "Int out of signed 64-bit range")
    return i
  }
  throw new ValueJsonError(path, "expected an Int")
}

/** Decode the JSON form back to a Value; throws `ValueJsonError` naming the JSON path. */
export const fromJson = (j: unknown, path = "$"): Value => {
  if (j === "Unit") return Unit
  if (j === "None") return None
  if (!isObj(j)) throw new ValueJsonError(path, `expected a tagged value, got ${JSON.stringify(j)?.slice(0, 40)}`)
  const keys = Object.keys(j)
  if (keys.length !== 1) throw new ValueJsonError(path, "a tagged value has exactly one key")
  const tag = keys[0]
  const x = j[tag]
  const p = `${path}.${tag}`
  switch (tag) {
    case "Int":
      return decodeInt(x, p)
    case "Float":
      if (typeof x === "number") return new AxFloat(x)
      if (x === "NaN") return new AxFloat(NaN)
      if (x === "inf") return new AxFloat(Infinity)
      if (x === "-inf") return new AxFloat(-Infinity)
      if (x === "-0") return new AxFloat(-0)
      throw new ValueJsonError(p, "expected a number")
    case "String":
      if (typeof x !== "string") throw new ValueJsonError(p, "expected a string")
      return x
    case "Bool":
      if (typeof x !== "boolean") throw new ValueJsonError(p, "expected a boolean")
      return x
    case "Some":
      return new SomeV(fromJson(x, p))
    case "Ok":
      return new OkV(fromJson(x, p))
    case "Err":
      return new ErrV(fromJson(x, p))
    case "List":
      if (!Array.isArray(x)) throw new ValueJsonError(p, "expected an array")
      return x.map((e, i) => fromJson(e, `${p}[${i}]`))
    case "Map": {
      if (!isObj(x)) throw new ValueJsonError(p, "expected an object")
      const m = new Map<MapKey, Value>()
      for (const k of Object.keys(x)) m.set(k, fromJson(x[k], `${p}.${k}`))
      return new MapV(m)
    }
    case "IntMap": {
      if (!Array.isArray(x)) throw new ValueJsonError(p, "expected an array of [key, value] pairs")
      const m = new Map<MapKey, Value>()
      x.forEach((e, i) => {
        if (!Array.isArray(e) || e.length !== 2) throw new ValueJsonError(`${p}[${i}]`, "expected [key, value]")
        m.set(decodeInt(e[0], `${p}[${i}][0]`), fromJson(e[1], `${p}[${i}][1]`))
      })
      return new MapV(m)
    }
    case "Record": {
      if (!isObj(x) || typeof x.type !== "string" || !isObj(x.fields)) {
        throw new ValueJsonError(p, "expected {type, fields}")
      }
      const names = Object.keys(x.fields)
      const fields = x.fields
      return new RecordV(x.type, names, names.map((n) => fromJson(fields[n], `${p}.fields.${n}`)))
    }
    case "Enum": {
      if (!isObj(x) || typeof x.type !== "string" || typeof x.variant !== "number" || typeof x.name !== "string") {
        throw new ValueJsonError(p, "expected {type, variant, name, payload?}")
      }
      return new EnumV(x.type, x.variant, x.name, x.payload === undefined ? undefined : fromJson(x.payload, `${p}.payload`))
    }
    case "ActorId":
      if (typeof x !== "number") throw new ValueJsonError(p, "expected a number")
      return new ActorIdV(x)
    case "FnRef":
      if (!isObj(x) || typeof x.index !== "number" || typeof x.name !== "string") {
        throw new ValueJsonError(p, "expected {index, name}")
      }
      return new FnRefV(x.index, x.name)
    default:
      throw new ValueJsonError(path, `unknown value tag '${tag}'`)
  }
}

/** Canonical JSON text: object keys sorted, no whitespace. Used for hashes. */
export const canonicalJson = (j: unknown): string => {
  if (j === null || typeof j !== "object") return JSON.stringify(j)
  if (Array.isArray(j)) return "[" + j.map(canonicalJson).join(",") + "]"
  const o = j as Record<string, unknown>
  return "{" + Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => JSON.stringify(k) + ":" + canonicalJson(o[k])).join(",") + "}"
}
