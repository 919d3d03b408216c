/**
 * Runtime values of `.ax` programs.
 *
 * Representation (chosen for a fast VM loop and exact 64-bit integers):
 * - `Int`    → a JS `number` when it is a safe integer (|n| ≤ 2^53−1), a `bigint` otherwise
 *              (always within signed 64 bits). A bigint inside the safe range is never stored:
 *              `mkInt` canonicalises, so `===` is value equality for Ints.
 * - `Float`  → `AxFloat` (boxed, so `1.0` and `1` stay distinct).
 * - `String` → JS string, `Bool` → JS boolean, `Unit` → the `Unit` singleton.
 * - `Option` / `Result` → `None` singleton, `Some`, `Ok`, `Err`.
 * - records  → `RecordV` (type name, field names shared with the type, field values in declaration order).
 * - enums    → `EnumV` (type name, variant index and name, optional payload).
 * - `List`   → a frozen-by-convention JS array.
 * - `Map`    → `MapV` (keys String or Int, iterated in sorted key order).
 * - actors and function references → `ActorIdV`, `FnRefV`.
 * Values are immutable: every operation returns a new value.
 */

export class UnitV {
  readonly _tag = "Unit" as const
}
export const Unit: UnitV = new UnitV()

export class AxFloat {
  readonly _tag = "Float" as const
  constructor(readonly value: number) {}
}

export class NoneV {
  readonly _tag = "None" as const
}
export const None: NoneV = new NoneV()

export class SomeV {
  readonly _tag = "Some" as const
  constructor(readonly value: Value) {}
}
export class OkV {
  readonly _tag = "Ok" as const
  constructor(readonly value: Value) {}
}
export class ErrV {
  readonly _tag = "Err" as const
  constructor(readonly value: Value) {}
}

export class RecordV {
  readonly _tag = "Record" as const
  constructor(
    readonly type: string,
    readonly names: ReadonlyArray<string>,
    readonly fields: ReadonlyArray<Value>
  ) {}
  get(name: string): Value | undefined {
    const i = this.names.indexOf(name)
    return i < 0 ? undefined : this.fields[i]
  }
}

export class EnumV {
  readonly _tag = "Enum" as const
  constructor(
    readonly type: string,
    readonly variant: number,
    readonly name: string,
    readonly payload: Value | undefined
  ) {}
}

export type MapKey = string | number | bigint

export class MapV {
  readonly _tag = "Map" as const
  private sortedKeys: ReadonlyArray<MapKey> | undefined
  constructor(readonly entries: ReadonlyMap<MapKey, Value>) {}
  /** Keys in the canonical order: Ints numerically, then Strings by UTF-8 byte order. */
  keys(): ReadonlyArray<MapKey> {
    if (this.sortedKeys === undefined) this.sortedKeys = [...this.entries.keys()].sort(compareKeys)
    return this.sortedKeys
  }
  get size(): number {
    return this.entries.size
  }
  get(k: MapKey): Value | undefined {
    return this.entries.get(k)
  }
  set(k: MapKey, v: Value): MapV {
    const m = new Map(this.entries)
    m.set(k, v)
    return new MapV(m)
  }
  remove(k: MapKey): MapV {
    if (!this.entries.has(k)) return this
    const m = new Map(this.entries)
    m.delete(k)
    return new MapV(m)
  }
}

export class ActorIdV {
  readonly _tag = "ActorId" as const
  constructor(readonly id: number) {}
}

export class FnRefV {
  readonly _tag = "FnRef" as const
  constructor(
    readonly index: number,
    readonly name: string
  ) {}
}

export type Int = number | bigint
export type Value =
  | number
  | bigint
  | string
  | boolean
  | UnitV
  | AxFloat
  | NoneV
  | SomeV
  | OkV
  | ErrV
  | RecordV
  | EnumV
  | MapV
  | ActorIdV
  | FnRefV
  | ReadonlyArray<Value>

export const I64_MIN = -(2n ** 63n)
export const I64_MAX = 2n ** 63n - 1n

/** Canonical Int from a bigint; `undefined` when it does not fit in signed 64 bits. */
export const intFromBigInt = (b: bigint): Int | undefined => {
  if (b < I64_MIN || b > I64_MAX) return undefined
  if (b >= -9007199254740991n && b <= 9007199254740991n) return Number(b)
  return b
}

export const isInt = (v: Value): v is Int =>
  (typeof v === "number") || typeof v === "bigint"

export const mkMap = (pairs: Iterable<readonly [MapKey, Value]>): MapV => {
  const m = new Map<MapKey, Value>()
  for (const [k, v] of pairs) m.set(k, v)
  return new MapV(m)
}

const utf8 = new TextEncoder()

/** Byte-wise UTF-8 order of two JS strings (differs from UTF-16 order only around surrogates). */
export const compareStrings = (a: string, b: string): number => {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) {
      const xs = x >= 0xd800 && x <= 0xdfff
      const ys = y >= 0xd800 && y <= 0xdfff
      if (xs !== ys) return xs ? 1 : -1 // a surrogate (≥ U+10000) sorts after any BMP char in UTF-8
      return x < y ? -1 : 1
    }
  }
  return a.length - b.length
}

const compareKeys = (a: MapKey, b: MapKey): number => {
  const as = typeof a === "string"
  const bs = typeof b === "string"
  if (as && bs) return compareStrings(a, b)
  if (as) return 1
  if (bs) return -1
  return a < b ? -1 : a > b ? 1 : 0
}

export const utf8Length = (s: string): number => {
  // fast path for ASCII
  let n = s.length
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x80) return utf8.encode(s).length
  }
  return n
}

// ---------------------------------------------------------------------------
// equality and ordering

/** Whether a Float NaN is reachable from `v` (then `v` is not equal even to itself). */
const containsNaN = (v: Value): boolean => {
  if (typeof v !== "object") return false
  if (Array.isArray(v)) return v.some(containsNaN)
  const o = v as Exclude<Value, ReadonlyArray<Value> | number | bigint | string | boolean>
  switch (o._tag) {
    case "Float":
      return Number.isNaN(o.value)
    case "Some":
    case "Ok":
    case "Err":
      return containsNaN(o.value)
    case "Record":
      return o.fields.some(containsNaN)
    case "Enum":
      return o.payload !== undefined && containsNaN(o.payload)
    case "Map":
      for (const x of o.entries.values()) if (containsNaN(x)) return true
      return false
    default:
      return false
  }
}

export const equals = (a: Value, b: Value): boolean => {
  if (a === b) return typeof a !== "object" || !containsNaN(a) // IEEE: NaN equals nothing, not even itself
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!equals(a[i], b[i])) return false
    return true
  }
  if (Array.isArray(b)) return false
  const x = a as Exclude<Value, ReadonlyArray<Value> | number | bigint | string | boolean>
  const y = b as typeof x
  if (x._tag !== y._tag) return false
  switch (x._tag) {
    case "Float":
      return x.value === (y as AxFloat).value
    case "Some":
    case "Ok":
    case "Err":
      return equals(x.value, (y as SomeV).value)
    case "Record": {
      const r = y as RecordV
      if (x.type !== r.type || x.fields.length !== r.fields.length) return false
      for (let i = 0; i < x.fields.length; i++) if (!equals(x.fields[i], r.fields[i])) return false
      return true
    }
    case "Enum": {
      const e = y as EnumV
      if (x.type !== e.type || x.variant !== e.variant) return false
      if (x.payload === undefined || e.payload === undefined) return x.payload === e.payload
      return equals(x.payload, e.payload)
    }
    case "Map": {
      const m = y as MapV
      if (x.size !== m.size) return false
      for (const [k, v] of x.entries) {
        const w = m.get(k)
        if (w === undefined || !equals(v, w)) return false
      }
      return true
    }
    case "ActorId":
      return x.id === (y as ActorIdV).id
    case "FnRef":
      return x.index === (y as FnRefV).index
    default:
      return false
  }
}

// ---------------------------------------------------------------------------
// printing in the `.ax` literal form

export const formatFloat = (x: number): string => {
  if (Number.isNaN(x)) return "NaN"
  if (x === Infinity) return "inf"
  if (x === -Infinity) return "-inf"
  if (Object.is(x, -0)) return "-0.0"
  let s = String(x)
  if (s.includes("e")) return s.replace("e+", "e")
  if (!s.includes(".")) s += ".0"
  return s
}

export const quoteString = (s: string): string => {
  let out = "\""
  for (let i = 0; i < s.length; i++) {
    const c = s[i]
    switch (c) {
      case "\\": out += "\\\\"; break
      case "\"": out += "\\\""; break
      case "\n": out += "\\n"; break
      case "\t": out += "\\t"; break
      case "\r": out += "\\r"; break
      default: {
        const code = s.charCodeAt(i)
        out += code < 0x20 || code === 0x7f ? `\\u{${code.toString(16)}}` : c
      }
    }
  }
  return out + "\""
}

const showKey = (k: MapKey): string => (typeof k === "string" ? quoteString(k) : String(k))

/** The `.ax` literal form printed by `boruna run`. */
export const show = (v: Value): string => {
  // Iterative (an explicit work stack, not JS recursion): a value nested thousands of levels deep —
  // a long list built as a recursive enum, say — prints instead of overflowing the JS stack.
  // The stack holds values still to print and literal text, in reverse order of output.
  let out = ""
  const work: Array<Value | Text> = [v]
  const later = (parts: Array<Value | Text>): void => {
    for (let k = parts.length - 1; k >= 0; k--) work.push(parts[k])
  }
  while (work.length > 0) {
    const x = work.pop()!
    if (x instanceof Text) {
      out += x.text
      continue
    }
    switch (typeof x) {
      case "number":
      case "bigint":
        out += String(x)
        continue
      case "string":
        out += quoteString(x)
        continue
      case "boolean":
        out += x ? "true" : "false"
        continue
    }
    if (Array.isArray(x)) {
      const parts: Array<Value | Text> = [OPEN_LIST]
      x.forEach((e, k) => parts.push(...(k === 0 ? [e] : [COMMA, e])))
      parts.push(CLOSE_LIST)
      later(parts)
      continue
    }
    const o = x as Exclude<Value, ReadonlyArray<Value> | number | bigint | string | boolean>
    switch (o._tag) {
      case "Unit":
        out += "()"
        break
      case "Float":
        out += formatFloat(o.value)
        break
      case "None":
        out += "None"
        break
      case "Some":
      case "Ok":
      case "Err":
        out += o._tag + "("
        later([o.value, CLOSE_PAREN])
        break
      case "Record": {
        if (o.names.length === 0) {
          out += `${o.type} {}`
          break
        }
        out += `${o.type} { `
        const parts: Array<Value | Text> = []
        o.names.forEach((n, k) => parts.push(new Text(`${k === 0 ? "" : ", "}${n}: `), o.fields[k]))
        parts.push(CLOSE_RECORD)
        later(parts)
        break
      }
      case "Enum":
        if (o.payload === undefined) out += o.name
        else {
          out += o.name + "("
          later([o.payload, CLOSE_PAREN])
        }
        break
      case "Map": {
        out += "{"
        const parts: Array<Value | Text> = []
        o.keys().forEach((k, n) => parts.push(new Text(`${n === 0 ? "" : ", "}${showKey(k)}: `), o.get(k)!))
        parts.push(CLOSE_MAP)
        later(parts)
        break
      }
      case "ActorId":
        out += `Actor#${o.id}`
        break
      case "FnRef":
        out += `Fn#${o.name}`
        break
    }
  }
  return out
}

/** Literal text on `show`'s work stack (a class, so it can never be mistaken for a Value). */
class Text {
  constructor(readonly text: string) {}
}
const OPEN_LIST = new Text("[")
const CLOSE_LIST = new Text("]")
const COMMA = new Text(", ")
const CLOSE_PAREN = new Text(")")
const CLOSE_RECORD = new Text(" }")
const CLOSE_MAP = new Text("}")

/** Plain text of a value: a String as-is, anything else in literal form. */
export const display = (v: Value): string => (typeof v === "string" ? v : show(v))

/** Name of a value's runtime type, for error messages. */
export const typeName = (v: Value): string => {
  switch (typeof v) {
    case "number":
    case "bigint":
      return "Int"
    case "string":
      return "String"
    case "boolean":
      return "Bool"
  }
  if (Array.isArray(v)) return "List"
  const o = v as Exclude<Value, ReadonlyArray<Value> | number | bigint | string | boolean>
  return o._tag === "Record" || o._tag === "Enum" ? o.type : o._tag
}

// ---------------------------------------------------------------------------
// size accounting for spans (`bytes_in` / `bytes_out`)

/** Sum of the UTF-8 bytes of every string reachable from `v` (map keys included). */
export const approxBytes = (v: Value): number => {
  if (typeof v === "string") return utf8Length(v)
  if (typeof v !== "object") return 0
  if (Array.isArray(v)) {
    let n = 0
    for (const x of v) n += approxBytes(x)
    return n
  }
  const o = v as Exclude<Value, ReadonlyArray<Value> | number | bigint | string | boolean>
  switch (o._tag) {
    case "Some":
    case "Ok":
    case "Err":
      return approxBytes(o.value)
    case "Record": {
      let n = 0
      for (const x of o.fields) n += approxBytes(x)
      return n
    }
    case "Enum":
      return o.payload === undefined ? 0 : approxBytes(o.payload)
    case "Map": {
      let n = 0
      for (const [k, x] of o.entries) n += (typeof k === "string" ? utf8Length(k) : 0) + approxBytes(x)
      return n
    }
    default:
      return 0
  }
}

export const approxBytesAll = (vs: ReadonlyArray<Value>): number => {
  let n = 0
  for (const v of vs) n += approxBytes(v)
  return n
}
