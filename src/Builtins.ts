/**
 * The pure builtins of `.ax` (ax-language.md, "Builtins"), by exact name, and the runtime fault
 * the VM and the builtins raise.
 *
 * Each builtin is a plain function of up to three values (the VM passes them straight from its
 * operand stack, no argument array). The order of `BUILTINS` is part of bytecode format 1: a
 * `BUILTIN id` instruction names its builtin by index here, so new builtins are only appended.
 *
 * The checker guarantees argument types for compiled programs; the builtins still check them (one
 * `typeof` each), so hand-edited bytecode gets a runtime error instead of a JS exception.
 */
import {
  AxFloat,
  ErrV,
  formatFloat,
  intFromBigInt,
  isInt,
  isList,
  listAt,
  listConcat,
  listPush,
  listReverse,
  listTail,
  type ListValue,
  type MapKey,
  MapV,
  None,
  OkV,
  SomeV,
  typeName,
  utf8Length,
  type Value
} from "./Value.js"

/** Runtime error kinds of the VM (ax-language.md "Error kinds", runtime half, plus `capability_error`). */
export type RuntimeErrorKind =
  | "integer_overflow"
  | "division_by_zero"
  | "index_out_of_bounds"
  | "contract_violation"
  | "step_limit"
  | "stack_overflow"
  | "timeout"
  | "denied"
  | "budget_exceeded"
  | "approval_required"
  | "runtime_error"
  | "capability_error"

/**
 * A runtime fault raised inside the dispatch loop or a builtin. Not an `Error` (no stack trace is
 * captured); the VM catches it and turns it into a `VmError` with the source position.
 */
export class VmFault {
  constructor(
    readonly kind: RuntimeErrorKind,
    readonly message: string
  ) {}
}

export const typeFault = (expected: string, got: Value): VmFault =>
  new VmFault("runtime_error", `type error: expected ${expected}, got ${typeName(got)}`)

// ---------------------------------------------------------------------------
// argument checks

const str = (v: Value): string => {
  if (typeof v !== "string") throw typeFault("String", v)
  return v
}
const list = (v: Value): ListValue => {
  if (!isList(v)) throw typeFault("List", v)
  return v
}
const int = (v: Value): number | bigint => {
  if (!isInt(v)) throw typeFault("Int", v)
  return v
}
const map = (v: Value): MapV => {
  if (!(v instanceof MapV)) throw typeFault("Map", v)
  return v
}
const key = (v: Value): MapKey => {
  if (typeof v === "string" || typeof v === "number" || typeof v === "bigint") return v
  throw typeFault("String or Int map key", v)
}

// ---------------------------------------------------------------------------
// helpers

const INT_RE = /^[+-]?[0-9]+$/

/** Parse a whole string as a signed 64-bit Int (optional sign, decimal digits). */
export const parseInt64 = (s: string): number | bigint | undefined => {
  if (!INT_RE.test(s)) return undefined
  if (s.length < 16) return Number(s) + 0
  return intFromBigInt(BigInt(s))
}

const FLOAT_RE = /^[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)$/i

export const parseFloat64 = (s: string): number | undefined => {
  if (!FLOAT_RE.test(s)) return undefined
  const body = s.replace(/^[+-]/, "").toLowerCase()
  const neg = s.startsWith("-")
  if (body === "inf" || body === "infinity") return neg ? -Infinity : Infinity
  if (body === "nan") return NaN
  return Number(s)
}

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8")

const toIndex = (i: number | bigint): number => (typeof i === "number" ? i : Number(i))

/** `s[start..end)` by UTF-8 byte offsets; error when out of range or not on a character boundary. */
export const sliceBytes = (s: string, start: number | bigint, end: number | bigint): string => {
  const len = utf8Length(s)
  const a = toIndex(start)
  const b = toIndex(end)
  if (a < 0 || b < a || b > len) {
    throw new VmFault("index_out_of_bounds", `string slice out of bounds: [${start}, ${end}) of a string of ${len} bytes`)
  }
  if (len === s.length) return s.slice(a, b)
  const bytes = encoder.encode(s)
  const boundary = (i: number): boolean => i === bytes.length || (bytes[i] & 0xc0) !== 0x80
  if (!boundary(a) || !boundary(b)) {
    throw new VmFault("index_out_of_bounds", `string slice [${start}, ${end}) is not on a UTF-8 character boundary`)
  }
  return decoder.decode(bytes.subarray(a, b))
}

const asciiUpper = (s: string): string => s.replace(/[a-z]+/g, (m) => m.toUpperCase())
const asciiLower = (s: string): string => s.replace(/[A-Z]+/g, (m) => m.toLowerCase())

export const listGet = (l: ListValue, i: number | bigint): Value => {
  if (typeof i !== "number" || i < 0 || i >= l.length) {
    throw new VmFault("index_out_of_bounds", `list index out of bounds: index ${i}, length ${l.length}`)
  }
  return listAt(l, i)
}

// ---------------------------------------------------------------------------
// the table

export type BuiltinFn = (a: Value, b: Value, c: Value) => Value

export interface Builtin {
  readonly name: string
  readonly arity: number
  readonly fn: BuiltinFn
}

const b = (name: string, arity: number, fn: BuiltinFn): Builtin => ({ name, arity, fn })

/** Every builtin, in bytecode-id order (append only). */
export const BUILTINS: ReadonlyArray<Builtin> = [
  // early names
  b("list_len", 1, (l) => list(l).length),
  b("list_get", 2, (l, i) => listGet(list(l), int(i))),
  b("list_push", 2, (l, x) => listPush(list(l), x)),
  b("parse_int", 1, (s) => parseInt64(str(s).trim()) ?? 0),
  b("try_parse_int", 1, (s) => {
    const n = parseInt64(str(s).trim())
    return n === undefined ? new ErrV(`invalid integer: ${s as string}`) : new OkV(n)
  }),
  b("str_contains", 2, (s, sub) => str(s).includes(str(sub))),
  b("str_starts_with", 2, (s, p) => str(s).startsWith(str(p))),
  b("int_to_string", 1, (n) => String(int(n))),

  // spec names
  b("__builtin_int_to_string", 1, (n) => String(int(n))),
  b("__builtin_float_to_string", 1, (x) => {
    if (!(x instanceof AxFloat)) throw typeFault("Float", x)
    return formatFloat(x.value)
  }),
  b("__builtin_bool_to_string", 1, (v) => {
    if (typeof v !== "boolean") throw typeFault("Bool", v)
    return v ? "true" : "false"
  }),
  b("__builtin_string_len", 1, (s) => utf8Length(str(s))),
  b("__builtin_string_chars", 1, (s) => [...str(s)]),
  b("__builtin_string_contains", 2, (s, sub) => str(s).includes(str(sub))),
  b("__builtin_string_starts_with", 2, (s, p) => str(s).startsWith(str(p))),
  b("__builtin_string_ends_with", 2, (s, p) => str(s).endsWith(str(p))),
  b("__builtin_string_to_upper", 1, (s) => asciiUpper(str(s))),
  b("__builtin_string_to_lower", 1, (s) => asciiLower(str(s))),
  b("__builtin_string_trim", 1, (s) => str(s).trim()),
  b("__builtin_string_join", 2, (l, sep) => {
    const xs = list(l)
    const sp = str(sep)
    let out = ""
    for (let i = 0; i < xs.length; i++) out += (i === 0 ? "" : sp) + str(listAt(xs, i))
    return out
  }),
  b("__builtin_string_split", 2, (s, sep) => {
    const x = str(s)
    const p = str(sep)
    return p === "" ? [...x] : x.split(p)
  }),
  b("__builtin_string_replace", 3, (s, pat, w) => {
    const x = str(s)
    const p = str(pat)
    const r = str(w)
    const i = x.indexOf(p)
    return i < 0 ? x : x.slice(0, i) + r + x.slice(i + p.length)
  }),
  b("__builtin_string_slice", 3, (s, start, end) => sliceBytes(str(s), int(start), int(end))),
  b("__builtin_int_parse", 1, (s) => {
    const n = parseInt64(str(s))
    return n === undefined ? new ErrV(`invalid integer: ${s as string}`) : new OkV(n)
  }),
  b("__builtin_float_parse", 1, (s) => {
    const x = parseFloat64(str(s))
    return x === undefined ? new ErrV(`invalid float: ${s as string}`) : new OkV(new AxFloat(x))
  }),
  b("__builtin_list_len", 1, (l) => list(l).length),
  b("__builtin_list_is_empty", 1, (l) => list(l).length === 0),
  b("__builtin_list_head", 1, (l) => {
    const xs = list(l)
    return xs.length === 0 ? None : new SomeV(listAt(xs, 0))
  }),
  b("__builtin_list_tail", 1, (l) => listTail(list(l))),
  b("__builtin_list_append", 2, (l, x) => listPush(list(l), x)),
  b("__builtin_list_concat", 2, (l, m) => listConcat(list(l), list(m))),
  b("__builtin_list_reverse", 1, (l) => listReverse(list(l))),
  b("__builtin_map_get", 2, (m, k) => {
    const v = map(m).get(key(k))
    return v === undefined ? None : new SomeV(v)
  }),
  b("__builtin_map_set", 3, (m, k, v) => map(m).set(key(k), v)),
  b("__builtin_map_remove", 2, (m, k) => map(m).remove(key(k))),
  b("__builtin_map_contains_key", 2, (m, k) => map(m).has(key(k))),
  b("__builtin_map_keys", 1, (m) => [...map(m).keys()]),
  b("__builtin_map_values", 1, (m) => {
    const mm = map(m)
    return mm.keys().map((k) => mm.get(k)!)
  }),
  b("__builtin_map_len", 1, (m) => map(m).size)
]

const byName = new Map<string, number>(BUILTINS.map((x, i) => [x.name, i]))

/** The bytecode id of a builtin, or undefined for an unknown name. */
export const builtinId = (name: string): number | undefined => byName.get(name)

/** Call a builtin by name (tests, tools). */
export const callBuiltin = (name: string, args: ReadonlyArray<Value>): Value => {
  const id = byName.get(name)
  if (id === undefined) throw new VmFault("runtime_error", `unknown builtin: ${name}`)
  const bi = BUILTINS[id]
  if (args.length !== bi.arity) throw new VmFault("runtime_error", `${name} takes ${bi.arity} arguments, got ${args.length}`)
  return bi.fn(args[0], args[1], args[2])
}
