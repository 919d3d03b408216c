/**
 * Static signatures of the pure builtins and of the capability calls (ax-language.md tables).
 * Generic parameters are type variables with negative ids (`T` = -1, `K` = -2, `V` = -3); the
 * checker instantiates them with fresh variables at every call.
 */
import type { Type } from "./Ast.js"
import type { CapabilityName } from "./Capability.js"
import { tBool, tFloat, tInt, tList, tMap, tOption, tResult, tString, tUnit } from "./Types.js"

export interface Signature {
  readonly params: ReadonlyArray<Type>
  readonly ret: Type
}

const T: Type = { kind: "Var", id: -1 }
const K: Type = { kind: "Var", id: -2 }
const V: Type = { kind: "Var", id: -3 }
const sig = (params: ReadonlyArray<Type>, ret: Type): Signature => ({ params, ret })
const S = tString

/** every pure builtin, early names first, then the `__builtin_*` set */
export const BUILTIN_SIGNATURES: ReadonlyMap<string, Signature> = new Map<string, Signature>([
  ["list_len", sig([tList(T)], tInt)],
  ["list_get", sig([tList(T), tInt], T)],
  ["list_push", sig([tList(T), T], tList(T))],
  ["parse_int", sig([S], tInt)],
  ["try_parse_int", sig([S], tResult(tInt, S))],
  ["str_contains", sig([S, S], tBool)],
  ["str_starts_with", sig([S, S], tBool)],
  ["int_to_string", sig([tInt], S)],

  ["__builtin_int_to_string", sig([tInt], S)],
  ["__builtin_float_to_string", sig([tFloat], S)],
  ["__builtin_bool_to_string", sig([tBool], S)],
  ["__builtin_string_len", sig([S], tInt)],
  ["__builtin_string_chars", sig([S], tList(S))],
  ["__builtin_string_contains", sig([S, S], tBool)],
  ["__builtin_string_starts_with", sig([S, S], tBool)],
  ["__builtin_string_ends_with", sig([S, S], tBool)],
  ["__builtin_string_to_upper", sig([S], S)],
  ["__builtin_string_to_lower", sig([S], S)],
  ["__builtin_string_trim", sig([S], S)],
  ["__builtin_string_join", sig([tList(S), S], S)],
  ["__builtin_string_split", sig([S, S], tList(S))],
  ["__builtin_string_replace", sig([S, S, S], S)],
  ["__builtin_string_slice", sig([S, tInt, tInt], S)],
  ["__builtin_int_parse", sig([S], tResult(tInt, S))],
  ["__builtin_float_parse", sig([S], tResult(tFloat, S))],
  ["__builtin_list_len", sig([tList(T)], tInt)],
  ["__builtin_list_is_empty", sig([tList(T)], tBool)],
  ["__builtin_list_head", sig([tList(T)], tOption(T))],
  ["__builtin_list_tail", sig([tList(T)], tList(T))],
  ["__builtin_list_append", sig([tList(T), T], tList(T))],
  ["__builtin_list_concat", sig([tList(T), tList(T)], tList(T))],
  ["__builtin_list_reverse", sig([tList(T)], tList(T))],
  ["__builtin_map_get", sig([tMap(K, V), K], tOption(V))],
  ["__builtin_map_set", sig([tMap(K, V), K, V], tMap(K, V))],
  ["__builtin_map_remove", sig([tMap(K, V), K], tMap(K, V))],
  ["__builtin_map_contains_key", sig([tMap(K, V), K], tBool)],
  ["__builtin_map_keys", sig([tMap(K, V)], tList(K))],
  ["__builtin_map_values", sig([tMap(K, V)], tList(V))],
  ["__builtin_map_len", sig([tMap(K, V)], tInt)]
])

export interface CapabilityCall {
  readonly cap: CapabilityName
  /** overloads, distinguished by arity */
  readonly overloads: ReadonlyArray<Signature>
}

/**
 * Capability calls as written in source: `net.fetch(url)`, `random()`, … `step_input(name)` is the
 * reference's spelling of `step.input(name)` and is accepted as an alias.
 */
export const CAPABILITY_CALLS: ReadonlyMap<string, CapabilityCall> = new Map<string, CapabilityCall>([
  ["net.fetch", { cap: "net.fetch", overloads: [sig([S], S), sig([S, S, S], S)] }],
  ["fs.read", { cap: "fs.read", overloads: [sig([S], S)] }],
  ["fs.write", { cap: "fs.write", overloads: [sig([S, S], tUnit)] }],
  ["db.query", { cap: "db.query", overloads: [sig([S, tList(S)], tList(tMap(S, S)))] }],
  ["llm.call", { cap: "llm.call", overloads: [sig([S], S), sig([S, S], S)] }],
  ["time.now", { cap: "time.now", overloads: [sig([], tInt)] }],
  ["random", { cap: "random", overloads: [sig([], tFloat)] }],
  ["step.input", { cap: "step.input", overloads: [sig([S], S)] }],
  ["step_input", { cap: "step.input", overloads: [sig([S], S)] }]
])

/** the first segment of a dotted capability call (`net` in `net.fetch(…)`) */
export const CAPABILITY_NAMESPACES: ReadonlySet<string> = new Set(["net", "fs", "db", "llm", "time", "step", "ui", "actor"])
