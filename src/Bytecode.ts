/**
 * The compiled form of an `.ax` program and its `.axbc` file format (JSON).
 *
 * A program is a constant pool, a table of record/enum types (field and variant names), and a list
 * of functions, each with a flat `number[]` of code: an opcode followed by its operands. The VM is
 * a stack machine: a function's parameters and `let` locals live in slots `0..locals-1` of its
 * frame; operands are pushed above them.
 *
 * Every program the VM runs goes through `verify` first (and `decodeAxbc` verifies what it reads),
 * so hand-edited bytecode cannot make the VM read outside its stack, constants, locals or code:
 * every opcode and operand is range-checked, every jump lands on an instruction, the operand-stack
 * depth is the same on every path into an instruction and never goes below the frame's locals,
 * and control never runs off the end of a function.
 *
 * File format (`format: "boruna-axbc"`, `version: 1`):
 * ```json
 * { "format": "boruna-axbc", "version": 1, "name": "app", "sourceFile": "app.ax",
 *   "sourceHash": "sha256:…", "constants": [ValueJson…],
 *   "types": [{"name":"User","kind":"record","fields":["name","age"]},
 *             {"name":"Color","kind":"enum","variants":[{"name":"Red","payload":false}]}],
 *   "functions": [{"name":"main","arity":0,"locals":2,"capabilities":["time.now"],
 *                  "code":[1,0,11],"positions":[0,3,5]}],
 *   "entry": 0 }
 * ```
 * `positions` is a flat list of `(pc, line, col)` triples, ascending by pc: the source position of
 * the instruction at `pc` and of every following instruction up to the next triple.
 */
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import { createHash } from "node:crypto"
import { BUILTINS } from "./Builtins.js"
import { CAPABILITIES, capabilityById, type CapabilityName } from "./Capability.js"
import type { Value } from "./Value.js"
import { canonicalJson, fromJson, type Json, toJson, ValueJsonError } from "./ValueJson.js"

/** The most parameters one function may have (bytecode format 1: one operand byte). */
export const MAX_PARAMS = 255
/** The most local slots (parameters, bindings, temporaries) one function may have (bytecode format 1). */
export const MAX_LOCALS = 65_535

export const AXBC_FORMAT = "boruna-axbc"
export const AXBC_VERSION = 1

// ---------------------------------------------------------------------------
// opcodes

/** Opcodes. Operands follow the opcode in the code array; see `OPERANDS`. */
export const Op = {
  NOP: 0,
  /** k: push constants[k] */
  CONST: 1,
  /** slot: push local */
  LOAD: 2,
  /** slot: pop into local */
  STORE: 3,
  POP: 4,
  DUP: 5,
  /** target */
  JMP: 6,
  /** target: pop a Bool, jump when false */
  JMPF: 7,
  /** target: pop a Bool, jump when true */
  JMPT: 8,
  /** fn argc: call a function with the top argc values as its first locals */
  CALL: 9,
  /** argc: pop a function reference, then call it like CALL */
  CALLI: 10,
  /** pop the result, drop the frame, push the result in the caller */
  RET: 11,
  ADD: 12,
  SUB: 13,
  MUL: 14,
  DIV: 15,
  MOD: 16,
  NEG: 17,
  NOT: 18,
  EQ: 19,
  NE: 20,
  LT: 21,
  LE: 22,
  GT: 23,
  GE: 24,
  /** `++`: Strings (or Lists) */
  CONCAT: 25,
  /** n: pop n values (first pushed = first element), push a List */
  MKLIST: 26,
  /** n: pop n key/value pairs, push a Map */
  MKMAP: 27,
  /** type: pop one value per field (declaration order), push a record */
  MKRECORD: 28,
  /** i: pop a record, push its field i (declaration order) */
  GETFIELD: 29,
  /** type variant: push an enum value (popping the payload when the variant has one) */
  MKENUM: 30,
  SOME: 31,
  OK: 32,
  ERR: 33,
  /** id: call builtin id on its arity's worth of values */
  BUILTIN: 34,
  /** cap argc: call capability `cap` (id) through the gateway */
  CAP: 35,
  /** pop a value, record it as a UiEmit event, push Unit */
  EMIT: 36,
  /** fn: start an actor running fn (arity 0), push its ActorId */
  SPAWN: 37,
  /** pop message, pop target ActorId; deliver; push Unit */
  SEND: 38,
  /** push the next message of the current actor (blocks until there is one) */
  RECEIVE: 39,
  /** k: pop a Bool; false ⇒ contract_violation with message constants[k] */
  ASSERT: 40,
  /** slot tag target: jump unless the local's tag is `tag` (0 None, 1 Some, 2 Ok, 3 Err, 16+v enum variant v) */
  JNTAG: 41,
  /** slot: push the payload of the Some/Ok/Err/enum value in the local */
  UNWRAP: 42,
  /** k: runtime_error with message constants[k] (a match that no arm covered) */
  FAIL: 43,
  /** slot k target: jump unless the local equals constants[k] */
  JNEQ: 44,
  /** slot k: push local + constants[k] (Int fast path; generic `+` otherwise) */
  ADDLK: 45,
  /** slot k: push local - constants[k] */
  SUBLK: 46,
  /** slot k target: jump unless local <= constants[k] */
  JNLELK: 47,
  /** slot k target: jump unless local < constants[k] */
  JNLTLK: 48,
  /** slot slot2 target: jump unless local < local2 */
  JNLTLL: 49
} as const

export type OpCode = (typeof Op)[keyof typeof Op]

export type OperandKind =
  | "const"
  | "local"
  | "target"
  | "fn"
  | "argc"
  | "type"
  | "index"
  | "variant"
  | "builtin"
  | "cap"
  | "count"
  | "tag"
  | "string"

/** Operand kinds of every opcode, indexed by opcode. */
export const OPERANDS: ReadonlyArray<ReadonlyArray<OperandKind>> = (() => {
  const t: Array<ReadonlyArray<OperandKind>> = []
  const set = (op: number, kinds: ReadonlyArray<OperandKind>): void => void (t[op] = kinds)
  for (const v of Object.values(Op)) set(v, [])
  set(Op.CONST, ["const"])
  set(Op.LOAD, ["local"])
  set(Op.STORE, ["local"])
  set(Op.JMP, ["target"])
  set(Op.JMPF, ["target"])
  set(Op.JMPT, ["target"])
  set(Op.CALL, ["fn", "argc"])
  set(Op.CALLI, ["argc"])
  set(Op.MKLIST, ["count"])
  set(Op.MKMAP, ["count"])
  set(Op.MKRECORD, ["type"])
  set(Op.GETFIELD, ["index"])
  set(Op.MKENUM, ["type", "variant"])
  set(Op.BUILTIN, ["builtin"])
  set(Op.CAP, ["cap", "argc"])
  set(Op.SPAWN, ["fn"])
  set(Op.ASSERT, ["string"])
  set(Op.JNTAG, ["local", "tag", "target"])
  set(Op.UNWRAP, ["local"])
  set(Op.FAIL, ["string"])
  set(Op.JNEQ, ["local", "const", "target"])
  set(Op.ADDLK, ["local", "const"])
  set(Op.SUBLK, ["local", "const"])
  set(Op.JNLELK, ["local", "const", "target"])
  set(Op.JNLTLK, ["local", "const", "target"])
  set(Op.JNLTLL, ["local", "local", "target"])
  return t
})()

export const OP_NAMES: ReadonlyArray<string> = (() => {
  const t: Array<string> = []
  for (const [k, v] of Object.entries(Op)) t[v] = k
  return t
})()

/** Match tags used by JNTAG. */
export const Tag = { None: 0, Some: 1, Ok: 2, Err: 3, Variant: 16 } as const

// ---------------------------------------------------------------------------
// the program

export type TypeDef =
  | { readonly name: string; readonly kind: "record"; readonly fields: ReadonlyArray<string> }
  | {
    readonly name: string
    readonly kind: "enum"
    readonly variants: ReadonlyArray<{ readonly name: string; readonly payload: boolean }>
  }

export interface FunctionDef {
  readonly name: string
  readonly arity: number
  /** frame slots: parameters first, then every local the function binds */
  readonly locals: number
  /** the declared capability set (`!{…}`, canonical) — the VM refuses any other CAP */
  readonly capabilities: ReadonlyArray<CapabilityName>
  readonly code: ReadonlyArray<number>
  /** flat (pc, line, col) triples, ascending by pc */
  readonly positions: ReadonlyArray<number>
}

export interface BytecodeProgram {
  readonly format: typeof AXBC_FORMAT
  readonly version: typeof AXBC_VERSION
  readonly name: string
  readonly sourceFile: string
  /** `sha256:<hex>` of the source text */
  readonly sourceHash: string
  readonly constants: ReadonlyArray<Value>
  readonly types: ReadonlyArray<TypeDef>
  readonly functions: ReadonlyArray<FunctionDef>
  /** index of the entry function (`main`) */
  readonly entry: number
}

export const sha256 = (text: string): string => "sha256:" + createHash("sha256").update(text).digest("hex")

/** Source position of the instruction at `pc` (or of the one the pc is inside). */
export const positionAt = (fn: FunctionDef, pc: number): { line: number; col: number } => {
  const p = fn.positions
  let line = 0
  let col = 0
  for (let i = 0; i + 2 < p.length; i += 3) {
    if (p[i] > pc) break
    line = p[i + 1]
    col = p[i + 2]
  }
  return { line, col }
}

// ---------------------------------------------------------------------------
// verification

export class VerifyError extends Error {
  constructor(
    /** JSON path of the offending item, e.g. `$.functions[2].code[14]` */
    readonly path: string,
    readonly reason: string
  ) {
    super(`${path}: ${reason}`)
  }
}

const stringConst = (p: BytecodeProgram, k: number): boolean => typeof p.constants[k] === "string"

/**
 * Check that a program is safe to run (see the module comment); returns each function's maximum
 * operand-stack depth above its locals. Throws `VerifyError`.
 */
export const verify = (p: BytecodeProgram): ReadonlyArray<number> => {
  const nf = p.functions.length
  if (!Number.isInteger(p.entry) || p.entry < 0 || p.entry >= nf) throw new VerifyError("$.entry", `no function #${p.entry}`)
  p.types.forEach((t, i) => {
    if (t.kind === "record" && new Set(t.fields).size !== t.fields.length) {
      throw new VerifyError(`$.types[${i}]`, `duplicate field in record ${t.name}`)
    }
  })
  return p.functions.map((f, fi) => verifyFunction(p, f, fi))
}

const verifyFunction = (p: BytecodeProgram, f: FunctionDef, fi: number): number => {
  const at = (pc: number) => `$.functions[${fi}].code[${pc}]`
  const code = f.code
  if (!Number.isInteger(f.arity) || f.arity < 0 || f.arity > MAX_PARAMS) throw new VerifyError(`$.functions[${fi}].arity`, "bad arity")
  if (!Number.isInteger(f.locals) || f.locals < f.arity || f.locals > MAX_LOCALS) {
    throw new VerifyError(`$.functions[${fi}].locals`, "locals must be an integer ≥ arity")
  }
  if (code.length === 0) throw new VerifyError(`$.functions[${fi}].code`, "empty function")
  // Sizes the VM allocates from: a frame is locals + operand-stack depth values, per call. The
  // compiler gives every slot past the parameters a STORE of its own (two code words), so compiled
  // code never has more locals than arity + code length; a larger count only buys memory (65535
  // locals × 10,000 frames is 5 GB). The stack depth is bounded by the code length below.
  if (f.locals > f.arity + code.length) {
    throw new VerifyError(
      `$.functions[${fi}].locals`,
      `${f.locals} locals is more than a function of ${code.length} code words and ${f.arity} parameters can use (at most ${f.arity + code.length})`
    )
  }
  const starts = new Uint8Array(code.length)
  const targets: Array<[number, number]> = []
  // pass 1: decode, check operands
  let pc = 0
  let last = -1
  while (pc < code.length) {
    const op = code[pc]
    const kinds = Number.isInteger(op) ? OPERANDS[op] : undefined
    if (kinds === undefined) throw new VerifyError(at(pc), `unknown opcode ${op}`)
    if (pc + kinds.length >= code.length) throw new VerifyError(at(pc), `${OP_NAMES[op]}: missing operands`)
    starts[pc] = 1
    for (let i = 0; i < kinds.length; i++) {
      const v = code[pc + 1 + i]
      const where = at(pc + 1 + i)
      if (!Number.isInteger(v) || v < 0) throw new VerifyError(where, `${OP_NAMES[op]}: operand must be a non-negative integer`)
      switch (kinds[i]) {
        case "const":
          if (v >= p.constants.length) throw new VerifyError(where, `no constant #${v}`)
          break
        case "string":
          if (v >= p.constants.length || !stringConst(p, v)) throw new VerifyError(where, `constant #${v} is not a String`)
          break
        case "local":
          if (v >= f.locals) throw new VerifyError(where, `no local #${v} (function has ${f.locals})`)
          break
        case "target":
          targets.push([pc + 1 + i, v])
          break
        case "fn":
          if (v >= p.functions.length) throw new VerifyError(where, `no function #${v}`)
          if (op === Op.SPAWN && p.functions[v].arity !== 0) throw new VerifyError(where, "an actor function takes no parameters")
          break
        case "argc":
          if (op === Op.CALL && v !== p.functions[code[pc + 1]].arity) {
            throw new VerifyError(where, `${p.functions[code[pc + 1]].name} takes ${p.functions[code[pc + 1]].arity} arguments, not ${v}`)
          }
          if (v > 255) throw new VerifyError(where, "too many arguments")
          break
        case "type": {
          const t = p.types[v]
          if (t === undefined) throw new VerifyError(where, `no type #${v}`)
          if (op === Op.MKRECORD && t.kind !== "record") throw new VerifyError(where, `type ${t.name} is not a record`)
          if (op === Op.MKENUM && t.kind !== "enum") throw new VerifyError(where, `type ${t.name} is not an enum`)
          break
        }
        case "variant": {
          const t = p.types[code[pc + 1]]
          if (t.kind !== "enum" || v >= t.variants.length) throw new VerifyError(where, `no variant #${v} in ${t.name}`)
          break
        }
        case "builtin":
          if (v >= BUILTINS.length) throw new VerifyError(where, `no builtin #${v}`)
          break
        case "cap":
          if (capabilityById(v) === undefined) throw new VerifyError(where, `unknown capability id ${v}`)
          break
        case "count":
        case "index":
        case "tag":
          if (v > 0xffffff) throw new VerifyError(where, "operand too large")
          break
      }
    }
    last = pc
    pc += 1 + kinds.length
  }
  for (const [where, t] of targets) {
    if (t >= code.length || starts[t] !== 1) throw new VerifyError(at(where), `jump target ${t} is not an instruction`)
  }
  const lastOp = code[last]
  if (lastOp !== Op.RET && lastOp !== Op.JMP && lastOp !== Op.FAIL) {
    throw new VerifyError(at(last), "a function must end with RET, JMP or FAIL")
  }
  // pass 2: operand-stack depth along every path
  const depth = new Int32Array(code.length).fill(-1)
  const work: Array<number> = [0]
  depth[0] = 0
  let max = 0
  const flow = (from: number, to: number, d: number): void => {
    if (depth[to] === -1) {
      depth[to] = d
      work.push(to)
    } else if (depth[to] !== d) {
      throw new VerifyError(at(to), `operand stack depth ${d} (from ${from}) differs from ${depth[to]} on another path`)
    }
  }
  while (work.length > 0) {
    const pc0 = work.pop()!
    const op = code[pc0]
    const d = depth[pc0]
    const [pops, pushes] = stackEffect(p, code, pc0)
    if (d < pops) throw new VerifyError(at(pc0), `${OP_NAMES[op]} needs ${pops} operands, the stack holds ${d}`)
    const nd = d - pops + pushes
    if (nd > max) max = nd
    const next = pc0 + 1 + OPERANDS[op].length
    switch (op) {
      case Op.RET:
      case Op.FAIL:
        break
      case Op.JMP:
        flow(pc0, code[pc0 + 1], nd)
        break
      case Op.JMPF:
      case Op.JMPT:
        flow(pc0, code[pc0 + 1], nd)
        flow(pc0, next, nd)
        break
      case Op.JNTAG:
      case Op.JNEQ:
      case Op.JNLELK:
      case Op.JNLTLK:
      case Op.JNLTLL:
        flow(pc0, code[pc0 + 3], nd)
        flow(pc0, next, nd)
        break
      default:
        flow(pc0, next, nd)
    }
  }
  return max
}

/** [values popped, values pushed] of the instruction at pc. */
const stackEffect = (p: BytecodeProgram, code: ReadonlyArray<number>, pc: number): readonly [number, number] => {
  const op = code[pc]
  switch (op) {
    case Op.NOP:
    case Op.JMP:
    case Op.JNTAG:
    case Op.JNEQ:
    case Op.JNLELK:
    case Op.JNLTLK:
    case Op.JNLTLL:
      return [0, 0]
    case Op.CONST:
    case Op.LOAD:
    case Op.SPAWN:
    case Op.RECEIVE:
    case Op.UNWRAP:
    case Op.ADDLK:
    case Op.SUBLK:
      return [0, 1]
    case Op.STORE:
    case Op.POP:
    case Op.JMPF:
    case Op.JMPT:
    case Op.ASSERT:
      return [1, 0]
    case Op.DUP:
      return [1, 2]
    case Op.CALL:
      return [code[pc + 2], 1]
    case Op.CALLI:
      return [code[pc + 1] + 1, 1]
    case Op.RET:
      return [1, 0]
    case Op.FAIL:
      return [0, 0]
    case Op.NEG:
    case Op.NOT:
    case Op.GETFIELD:
    case Op.SOME:
    case Op.OK:
    case Op.ERR:
    case Op.EMIT:
      return [1, 1]
    case Op.MKLIST:
      return [code[pc + 1], 1]
    case Op.MKMAP:
      return [2 * code[pc + 1], 1]
    case Op.MKRECORD: {
      const t = p.types[code[pc + 1]]
      return [t.kind === "record" ? t.fields.length : 0, 1]
    }
    case Op.MKENUM: {
      const t = p.types[code[pc + 1]]
      return [t.kind === "enum" && t.variants[code[pc + 2]].payload ? 1 : 0, 1]
    }
    case Op.BUILTIN:
      return [BUILTINS[code[pc + 1]].arity, 1]
    case Op.CAP:
      return [code[pc + 2], 1]
    case Op.SEND:
      return [2, 1]
    default:
      // binary operators
      return [2, 1]
  }
}

// ---------------------------------------------------------------------------
// encoding

const programJson = (p: BytecodeProgram): Json => ({
  format: p.format,
  version: p.version,
  name: p.name,
  sourceFile: p.sourceFile,
  sourceHash: p.sourceHash,
  constants: p.constants.map(toJson),
  types: p.types.map((t): Json =>
    t.kind === "record"
      ? { name: t.name, kind: t.kind, fields: [...t.fields] }
      : { name: t.name, kind: t.kind, variants: t.variants.map((v) => ({ name: v.name, payload: v.payload })) }
  ),
  functions: p.functions.map((f): Json => ({
    name: f.name,
    arity: f.arity,
    locals: f.locals,
    capabilities: [...f.capabilities],
    code: [...f.code],
    positions: [...f.positions]
  })),
  entry: p.entry
})

/** The `.axbc` text of a program (JSON, one function per line for readable diffs). */
export const encodeAxbc = (p: BytecodeProgram): string => {
  const j = programJson(p) as { readonly [k: string]: Json }
  const head = Object.entries(j)
    .filter(([k]) => k !== "functions")
    .map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`)
  const fns = (j.functions as ReadonlyArray<Json>).map((f) => "    " + JSON.stringify(f))
  return "{\n" + head.join(",\n") + ",\n  \"functions\": [\n" + fns.join(",\n") + "\n  ]\n}\n"
}

/** Stable identity of a compiled program: SHA-256 over its canonical JSON. */
export const programHash = (p: BytecodeProgram): string => sha256(canonicalJson(programJson(p)))

// ---------------------------------------------------------------------------
// decoding

export class AxbcError extends Data.TaggedError("AxbcError")<{
  readonly file: string
  /** JSON path (`$.functions[0].code[3]`) or `line L, column C` for a JSON syntax error */
  readonly path: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.file}: ${this.path}: ${this.reason}`
  }
}

// ---------------------------------------------------------------------------
// disassembly (debugging, `boruna` tooling)

export const disassemble = (p: BytecodeProgram): string => {
  const out: Array<string> = []
  p.functions.forEach((f, fi) => {
    out.push(`fn #${fi} ${f.name}/${f.arity} locals=${f.locals} caps=[${f.capabilities.join(", ")}]`)
    let pc = 0
    while (pc < f.code.length) {
      const op = f.code[pc]
      const kinds = OPERANDS[op] ?? []
      const args = kinds.map((_, i) => f.code[pc + 1 + i])
      let note = ""
      if (op === Op.CONST || op === Op.ASSERT || op === Op.FAIL) note = `  ; ${String(JSON.stringify(toJson(p.constants[args[0]])))}`
      if (op === Op.CALL || op === Op.SPAWN) note = `  ; ${p.functions[args[0]]?.name}`
      if (op === Op.BUILTIN) note = `  ; ${BUILTINS[args[0]]?.name}`
      if (op === Op.CAP) note = `  ; ${capabilityById(args[0])?.name}`
      out.push(`  ${String(pc).padStart(4)}  ${(OP_NAMES[op] ?? `?${op}`).padEnd(9)} ${args.join(" ")}${note}`)
      pc += 1 + kinds.length
    }
  })
  return out.join("\n")
}
