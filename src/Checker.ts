/**
 * Static checker for `.ax`: resolves names, infers and checks types, checks match exhaustiveness
 * and capability propagation, and annotates the AST in place (the fields marked "checker" in
 * Ast.ts, plus `type` on every expression).
 *
 * Errors are reported all at once; an expression that already produced a diagnostic gets the
 * `Error` type, which is compatible with everything, so one mistake yields one diagnostic.
 */
import type {
  Block, Call, EnumDecl, Expr, FnDecl, MatchExpr, Pattern, Pos, Program, RecordDecl, RecordLit, Stmt, Type, TypeExpr
} from "./Ast.js"
import { MAX_LOCALS, MAX_PARAMS } from "./Bytecode.js"
import { BUILTIN_SIGNATURES, CAPABILITY_CALLS, CAPABILITY_NAMESPACES, type Signature } from "./BuiltinTypes.js"
import { CAPABILITIES, resolveAnnotation, sortedCapabilities, type CapabilityName } from "./Capability.js"
import { diagnostic, type CompileErrorKind, type Diagnostic } from "./Diagnostic.js"
import { closest, parse } from "./Parser.js"
import { runSliced } from "./DeepSlice.js"
import {
  showType, Subst, tActor, tBool, tError, tFloat, tFn, tInt, tList, tMap, tOption, tResult, tString, tUnit
} from "./Types.js"

/**
 * The checker recurses at most this many expression levels on the JS stack. A deeper expression is
 * checked on its own first, from a shallow stack, in the state the checker had on reaching it (kept
 * when the deep point was reached); its type and the state after it are kept, and the function is
 * checked again from its start, picking them up when it reaches the expression. Checking is
 * deterministic, so the second pass reaches it in the same state. Nesting is bounded by the parser
 * (MAX_DEPTH); an operator chain or an `else if` chain is walked in a loop, not nested.
 */
const DEEP_SLICE = 100

/**
 * Where a function's check stood at one point. `annotated` and `diags` only grow, so their lengths
 * say what they held; an expression or block leaves the scopes as it found them (it pushes its own),
 * so the scope maps are shared, not copied.
 */
interface CheckState {
  readonly subst: Subst
  readonly scopes: ReadonlyArray<Map<string, Local>>
  readonly annotated: number
  readonly depth: number
  readonly bindings: number
  readonly diags: number
}

/** what checking one deep expression or block did: its type and what it added */
interface CheckKept {
  readonly type: Type
  readonly subst: Subst
  readonly annotated: ReadonlyArray<Expr>
  readonly bindings: number
  readonly diags: ReadonlyArray<Diagnostic>
}

/** thrown (and caught by `sliced`) when the check reaches `DEEP_SLICE` levels above its slice base */
class CheckDeep {
  readonly _tag = "CheckDeep"
  /** `block`: stopped at a statement block (`inferBlock`), else at an expression (`infer`) */
  constructor(readonly e: Expr, readonly block: boolean, readonly state: CheckState) {}
}

interface FnInfo {
  readonly decl: FnDecl
  readonly params: ReadonlyArray<Type>
  readonly ret: Type
  readonly caps: ReadonlySet<CapabilityName>
}
interface FieldInfo {
  readonly index: number
  readonly type: Type
}
interface RecordInfo {
  readonly decl: RecordDecl
  readonly fields: Map<string, FieldInfo>
}
interface VariantInfo {
  readonly name: string
  readonly payload: Type | undefined
}
interface EnumInfo {
  readonly decl: EnumDecl
  readonly variants: VariantInfo[]
  readonly index: Map<string, number>
}
interface Local {
  readonly type: Type
  readonly mutable: boolean
  readonly param?: boolean
}

const CAP_ORDER: ReadonlyArray<CapabilityName> = sortedCapabilities().map((c) => c.name)
const ANNOTATION_NAMES: ReadonlyArray<string> = [
  "fs", ...CAPABILITIES.flatMap((c) => [c.name, ...c.aliases])
]
const BUILTIN_TYPE_NAMES = new Set(["Int", "Float", "String", "Bool", "Unit", "Option", "Result", "List", "Map", "Fn", "ActorId"])

const capList = (caps: Iterable<CapabilityName>): string => {
  const s = new Set(caps)
  return `!{${CAP_ORDER.filter((c) => s.has(c)).join(", ")}}`
}

const wild = (pos: Pos): Pattern => ({ kind: "PWild", pos })

class Checker {
  readonly diags: Diagnostic[] = []
  private readonly file: string
  private readonly fns = new Map<string, FnInfo>()
  private readonly records = new Map<string, RecordInfo>()
  private readonly enums = new Map<string, EnumInfo>()
  /** variant name → enums declaring it, in declaration order */
  private readonly variantOwners = new Map<string, string[]>()

  // per-function state
  private subst = new Subst()
  private scopes: Array<Map<string, Local>> = []
  private current: FnInfo | undefined
  private annotated: Expr[] = []
  private depth = 0
  /** the depth the current slice started at (0 outside a sliced check) */
  private sliceBase = 0
  /** deep expressions checked on their own: their type and the state after them (see DEEP_SLICE) */
  private memo: Map<Expr, CheckKept> | undefined
  private memoBlocks: Map<Block, CheckKept> | undefined
  /** bindings declared in the current function (parameters included), against MAX_LOCALS */
  private bindings = 0

  constructor(private readonly program: Program) {
    this.file = program.file
  }

  private error(pos: Pos, kind: CompileErrorKind, message: string, suggestion?: string): Type {
    this.diags.push(diagnostic(this.file, pos, kind, message, suggestion))
    return tError
  }

  // -------------------------------------------------------------------------
  // declarations

  run(): void {
    this.collectTypes()
    this.collectFns()
    const main = this.fns.get("main")
    if (main === undefined) {
      this.error({ line: 1, col: 1 }, "unknown_identifier", "the program has no entry point `main`",
        "add `fn main() { … }`")
    } else if (main.decl.params.length > 0) {
      this.error(main.decl.pos, "type_error", "`main` must not take parameters")
    }
    for (const item of this.program.items) {
      if (item.kind === "Fn") {
        const info = this.fns.get(item.name)
        if (info !== undefined && info.decl === item) this.checkFn(info)
      }
    }
  }

  private collectTypes(): void {
    for (const item of this.program.items) {
      if (item.kind === "Fn") continue
      if (BUILTIN_TYPE_NAMES.has(item.name)) {
        this.error(item.pos, "type_error", `\`${item.name}\` is a built-in type and cannot be redefined`)
        continue
      }
      if (this.records.has(item.name) || this.enums.has(item.name)) {
        this.error(item.pos, "type_error", `the type \`${item.name}\` is defined twice`)
        continue
      }
      if (item.kind === "Record") {
        this.records.set(item.name, { decl: item, fields: new Map() })
      } else {
        this.enums.set(item.name, { decl: item, variants: [], index: new Map() })
      }
    }
    for (const info of this.records.values()) {
      info.decl.fields.forEach((f, index) => {
        if (info.fields.has(f.name)) {
          this.error(f.pos, "duplicate_field", `field \`${f.name}\` is declared twice in \`${info.decl.name}\``)
          return
        }
        info.fields.set(f.name, { index, type: this.resolveTypeExpr(f.type) })
      })
    }
    for (const info of this.enums.values()) {
      for (const v of info.decl.variants) {
        if (info.index.has(v.name)) {
          this.error(v.pos, "type_error", `variant \`${v.name}\` is declared twice in \`${info.decl.name}\``)
          // keep indices aligned with declaration order
        }
        if (!info.index.has(v.name)) info.index.set(v.name, info.variants.length)
        info.variants.push({ name: v.name, payload: v.payload === undefined ? undefined : this.resolveTypeExpr(v.payload) })
        const owners = this.variantOwners.get(v.name)
        if (owners === undefined) this.variantOwners.set(v.name, [info.decl.name])
        else if (!owners.includes(info.decl.name)) owners.push(info.decl.name)
      }
    }
  }

  private collectFns(): void {
    for (const item of this.program.items) {
      if (item.kind !== "Fn") continue
      const caps = new Set<CapabilityName>()
      for (const c of item.caps) {
        const resolved = resolveAnnotation(c.name)
        if (resolved.length === 0) {
          const near = closest(c.name, ANNOTATION_NAMES)
          this.error(c.pos, "capability_error", `unknown capability \`${c.name}\``,
            near !== undefined ? `did you mean \`${near}\`?` : `known capabilities: ${CAP_ORDER.join(", ")}`)
        }
        for (const r of resolved) caps.add(r)
      }
      item.capSet = CAP_ORDER.filter((c) => caps.has(c))
      if (this.fns.has(item.name)) {
        this.error(item.pos, "type_error", `the function \`${item.name}\` is defined twice`)
        continue
      }
      const params = item.params.map((p) => this.resolveTypeExpr(p.type))
      const ret = item.ret === undefined ? tUnit : this.resolveTypeExpr(item.ret)
      this.fns.set(item.name, { decl: item, params, ret, caps })
    }
  }

  private resolveTypeExpr(te: TypeExpr): Type {
    const arity = (n: number): boolean => {
      if (te.args.length === n) return true
      this.error(te.pos, "type_error", `\`${te.name}\` takes ${n} type argument${n === 1 ? "" : "s"}, got ${te.args.length}`)
      return false
    }
    switch (te.name) {
      case "Int":
        return arity(0) ? tInt : tError
      case "Float":
        return arity(0) ? tFloat : tError
      case "String":
        return arity(0) ? tString : tError
      case "Bool":
        return arity(0) ? tBool : tError
      case "Unit":
        return arity(0) ? tUnit : tError
      case "ActorId":
        return arity(0) ? tActor : tError
      case "Option":
        return arity(1) ? tOption(this.resolveTypeExpr(te.args[0])) : tError
      case "List":
        return arity(1) ? tList(this.resolveTypeExpr(te.args[0])) : tError
      case "Result":
        return arity(2) ? tResult(this.resolveTypeExpr(te.args[0]), this.resolveTypeExpr(te.args[1])) : tError
      case "Map": {
        if (!arity(2)) return tError
        const key = this.resolveTypeExpr(te.args[0])
        if (key.kind !== "String" && key.kind !== "Int" && key.kind !== "Error") {
          return this.error(te.args[0].pos, "type_error", `map keys must be String or Int, not ${showType(key)}`)
        }
        return tMap(key, this.resolveTypeExpr(te.args[1]))
      }
      case "Fn": {
        if (te.args.length === 0) return this.error(te.pos, "type_error", "a function type is written `Fn(A, B) -> R`")
        const all: Type[] = []
        for (const a of te.args) all.push(this.resolveTypeExpr(a))
        return tFn(all.slice(0, -1), all[all.length - 1])
      }
    }
    if (this.records.has(te.name)) return arity(0) ? { kind: "Record", name: te.name } : tError
    if (this.enums.has(te.name)) return arity(0) ? { kind: "Enum", name: te.name } : tError
    const near = closest(te.name, [...BUILTIN_TYPE_NAMES, ...this.records.keys(), ...this.enums.keys()])
    return this.error(te.pos, "type_error", `unknown type \`${te.name}\``, near !== undefined ? `did you mean \`${near}\`?` : undefined)
  }

  // -------------------------------------------------------------------------
  // functions

  private checkFn(info: FnInfo): void {
    this.subst = new Subst()
    this.current = info
    this.annotated = []
    this.depth = 0
    const params = new Map<string, Local>()
    if (info.decl.params.length > MAX_PARAMS) {
      this.error(info.decl.pos, "type_error", `\`${info.decl.name}\` has ${info.decl.params.length} parameters; a function may have at most ${MAX_PARAMS}`,
        "pass a record (or a List or Map) instead of many separate parameters")
    }
    this.bindings = info.decl.params.length
    info.decl.params.forEach((p, i) => {
      if (params.has(p.name)) this.error(p.pos, "type_error", `parameter \`${p.name}\` is declared twice`)
      params.set(p.name, { type: info.params[i], mutable: false, param: true })
    })
    this.scopes = [params]
    this.sliced(() => {
      for (const r of info.decl.requires) this.expect(r, this.infer(r), tBool, "a `requires` clause")
      const bodyType = this.inferBlock(info.decl.body)
      if (!this.subst.unify(bodyType, info.ret)) {
        const last = lastExpr(info.decl.body)
        this.error(last?.pos ?? info.decl.body.pos, "type_error",
          `\`${info.decl.name}\` must return ${this.subst.show(info.ret)}, but its body has type ${this.subst.show(bodyType)}`,
          info.decl.ret === undefined ? `declare the return type: \`fn ${info.decl.name}(…) -> ${this.subst.show(bodyType)}\`` : undefined)
      }
      if (info.decl.ensures.length > 0) {
        this.scopes = [params, new Map([["result", { type: info.ret, mutable: false }]])]
        for (const e of info.decl.ensures) this.expect(e, this.infer(e), tBool, "an `ensures` clause")
      }
    })
    for (const e of this.annotated) {
      if (e.type !== undefined) e.type = this.subst.resolve(e.type)
    }
    if (this.bindings > MAX_LOCALS) {
      this.error(info.decl.pos, "type_error", `\`${info.decl.name}\` declares ${this.bindings} local bindings; a function may have at most ${MAX_LOCALS}`,
        "split the function into smaller functions")
    }
    this.scopes = []
    this.current = undefined
  }

  // -------------------------------------------------------------------------
  // deeply nested bodies: slices of DEEP_SLICE levels (see DEEP_SLICE)

  private snapshot(): CheckState {
    return {
      subst: this.subst.clone(),
      scopes: [...this.scopes],
      annotated: this.annotated.length,
      depth: this.depth,
      bindings: this.bindings,
      diags: this.diags.length
    }
  }

  /** back to `s`: what was added since is dropped (the run that added it is abandoned) */
  private restore(s: CheckState): void {
    this.subst = s.subst.clone()
    this.scopes = [...s.scopes]
    this.annotated.length = s.annotated
    this.depth = s.depth
    this.bindings = s.bindings
    this.diags.length = s.diags
  }

  /** what the check did since `s` (the state at the start of a deep expression or block) */
  private kept(type: Type, s: CheckState): CheckKept {
    return { type, subst: this.subst.clone(), annotated: this.annotated.slice(s.annotated), bindings: this.bindings, diags: this.diags.slice(s.diags) }
  }

  /** replay a kept check (the state now is the one it started from) */
  private reuse(k: CheckKept): Type {
    this.subst = k.subst.clone()
    for (const e of k.annotated) this.annotated.push(e)
    this.bindings = k.bindings
    for (const d of k.diags) this.diags.push(d)
    return k.type
  }

  /** run `root` (one function's check), checking every expression deeper than DEEP_SLICE levels on its own first */
  private sliced(root: () => void): void {
    // the root starts from the parameters' scope alone, which nothing writes to: it is shared too
    runSliced({
      root,
      start: this.snapshot(),
      restore: (s) => this.restore(s),
      isDeep: (e): e is CheckDeep => e instanceof CheckDeep,
      deep: (d) => this.checkDeep(d),
      done: () => {
        this.memo = undefined
        this.memoBlocks = undefined
        this.sliceBase = 0
      }
    })
  }

  /** check the expression `first` stopped at (and any deeper one it stops at), keeping the results */
  private checkDeep(first: CheckDeep): void {
    const memo = this.memo ??= new Map()
    const memoBlocks = this.memoBlocks ??= new Map()
    const pending = [first]
    while (pending.length > 0) {
      const d = pending[pending.length - 1]
      this.restore(d.state)
      this.sliceBase = d.state.depth
      try {
        if (d.block) {
          const b = d.e as Block
          memoBlocks.set(b, this.kept(this.inferBlock(b), d.state))
        } else {
          memo.set(d.e, this.kept(this.infer(d.e), d.state))
        }
        pending.pop()
      } catch (e) {
        if (!(e instanceof CheckDeep)) throw e
        pending.push(e)
      }
    }
    this.sliceBase = 0
  }

  // -------------------------------------------------------------------------
  // scopes

  private lookup(name: string): Local | undefined {
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const l = this.scopes[i].get(name)
      if (l !== undefined) return l
    }
    return undefined
  }

  private declare(name: string, type: Type, mutable: boolean): void {
    this.bindings++
    this.scopes[this.scopes.length - 1].set(name, { type, mutable })
  }

  private unknownName(pos: Pos, name: string, what = "name"): Type {
    const candidates: string[] = []
    for (const s of this.scopes) candidates.push(...s.keys())
    candidates.push(...this.fns.keys(), ...this.variantOwners.keys(), ...BUILTIN_SIGNATURES.keys())
    const near = name.length > 1 ? closest(name, candidates) : closest(name, candidates, 1)
    return this.error(pos, "unknown_identifier", `unknown ${what} \`${name}\``,
      near !== undefined ? `did you mean \`${near}\`?` : undefined)
  }

  // -------------------------------------------------------------------------
  // helpers

  /** unify `actual` with `expected`, reporting a type error at `e` on mismatch */
  private expect(e: Expr | Pos, actual: Type, expected: Type, what: string): boolean {
    if (this.subst.unify(actual, expected)) return true
    const pos = "line" in e ? e : e.pos
    this.error(pos, "type_error", `${what}: expected ${this.subst.show(expected)}, found ${this.subst.show(actual)}`,
      mixesNumbers(this.subst.resolve(actual), this.subst.resolve(expected))
        ? "there is no implicit Int↔Float conversion: write a Float literal like `1.0`, or convert explicitly"
        : undefined)
    return false
  }

  private set(e: Expr, t: Type): Type {
    e.type = t
    this.annotated.push(e)
    return t
  }

  private checkCapsSubset(pos: Pos, callee: string, needed: ReadonlySet<CapabilityName>, how: string): void {
    const cur = this.current
    if (cur === undefined) return
    const missing = [...needed].filter((c) => !cur.caps.has(c))
    if (missing.length === 0) return
    const union = new Set([...cur.caps, ...missing])
    this.error(pos, "capability_error",
      `\`${cur.decl.name}\` ${how} \`${callee}\`, which requires ${capList(needed)}, but \`${cur.decl.name}\` declares ${capList(cur.caps)}`,
      `add the capabilities to \`${cur.decl.name}\`: \`${capList(union)}\``)
  }

  // -------------------------------------------------------------------------
  // blocks and statements

  private inferBlock(b: Block): Type {
    if (this.memoBlocks !== undefined) {
      const kept = this.memoBlocks.get(b)
      if (kept !== undefined) return this.reuse(kept)
    }
    if (this.depth - this.sliceBase >= DEEP_SLICE) throw new CheckDeep(b, true, this.snapshot())
    this.depth++
    this.scopes.push(new Map())
    let t: Type = tUnit
    const n = b.stmts.length
    for (let i = 0; i < n; i++) {
      const s = b.stmts[i]
      const st = this.checkStmt(s)
      if (i === n - 1) t = st
    }
    this.scopes.pop()
    this.depth--
    return this.set(b, t)
  }

  /** returns the value type the statement gives its block when it is the last one */
  private checkStmt(s: Stmt): Type {
    switch (s.kind) {
      case "Let": {
        let t = this.infer(s.init)
        if (s.type !== undefined) {
          const declared = this.resolveTypeExpr(s.type)
          this.expect(s.init, t, declared, `the value of \`${s.name}\``)
          t = declared
        }
        this.declare(s.name, t, s.mutable)
        return tUnit
      }
      case "Assign": {
        const local = this.lookup(s.name)
        const vt = this.infer(s.value)
        if (local === undefined) {
          if (this.fns.has(s.name)) this.error(s.pos, "type_error", `cannot assign to the function \`${s.name}\``)
          else this.unknownName(s.pos, s.name, "variable")
          return tUnit
        }
        if (!local.mutable && local.param === true) {
          this.error(s.pos, "type_error", `cannot assign to the parameter \`${s.name}\`: parameters are immutable`,
            `copy it into a mutable variable first: \`let mut ${s.name}_copy = ${s.name}\``)
        } else if (!local.mutable) {
          this.error(s.pos, "type_error", `cannot assign twice to immutable variable \`${s.name}\``,
            `declare it with \`let mut ${s.name}\``)
        }
        this.expect(s.value, vt, local.type, `the new value of \`${s.name}\``)
        return tUnit
      }
      case "ExprStmt":
        return this.infer(s.expr)
      case "While": {
        this.expect(s.cond, this.infer(s.cond), tBool, "a `while` condition")
        this.inferBlock(s.body)
        // `while true { … }` only ends by `return`: it can stand for any type
        return s.cond.kind === "Bool" && s.cond.value ? this.subst.fresh() : tUnit
      }
      case "For": {
        const it = this.infer(s.iter)
        const elem = this.subst.fresh()
        this.expect(s.iter, it, tList(elem), "the value iterated by `for`")
        this.scopes.push(new Map([[s.name, { type: elem, mutable: false }]]))
        this.inferBlock(s.body)
        this.scopes.pop()
        return tUnit
      }
      case "Return": {
        const ret = this.current?.ret ?? tUnit
        if (s.value === undefined) {
          if (!this.subst.unify(tUnit, ret)) {
            this.error(s.pos, "type_error", `\`return\` without a value in a function that returns ${this.subst.show(ret)}`)
          }
        } else {
          this.expect(s.value, this.infer(s.value), ret, "the returned value")
        }
        return this.subst.fresh()
      }
    }
  }

  // -------------------------------------------------------------------------
  // expressions

  private infer(e: Expr): Type {
    if (this.memo !== undefined) {
      const kept = this.memo.get(e)
      if (kept !== undefined) return this.reuse(kept)
    }
    if (this.depth - this.sliceBase >= DEEP_SLICE) throw new CheckDeep(e, false, this.snapshot())
    this.depth++
    const t = this.inferInner(e)
    this.depth--
    return this.set(e, t)
  }

  private inferInner(e: Expr): Type {
    switch (e.kind) {
      case "Int":
        return tInt
      case "Float":
        return tFloat
      case "Str":
        return tString
      case "Bool":
        return tBool
      case "Unit":
        return tUnit
      case "Block":
        return this.inferBlock(e)
      case "Ident":
        return this.inferIdent(e)
      case "Binary":
        return this.inferBinary(e)
      case "Unary": {
        const t = this.infer(e.operand)
        if (e.op === "!") {
          this.expect(e.operand, t, tBool, "the operand of `!`")
          return tBool
        }
        const r = this.subst.shallow(t)
        if (r.kind === "Int" || r.kind === "Float" || r.kind === "Error" || r.kind === "Var") return r
        return this.error(e.pos, "type_error", `unary \`-\` needs an Int or a Float, found ${this.subst.show(t)}`)
      }
      case "Call":
        return this.inferCall(e)
      case "Field":
        return this.inferField(e)
      case "Path":
        return this.inferPath(e)
      case "If":
        return this.inferIf(e)
      case "Match":
        return this.inferMatch(e)
      case "RecordLit":
        return this.inferRecordLit(e)
      case "List": {
        const elem = this.subst.fresh()
        for (const item of e.items) this.expect(item, this.infer(item), elem, "a list element")
        return tList(elem)
      }
      case "Map": {
        const k = this.subst.fresh()
        const v = this.subst.fresh()
        for (const entry of e.entries) {
          this.expect(entry.key, this.infer(entry.key), k, "a map key")
          this.expect(entry.value, this.infer(entry.value), v, "a map value")
        }
        const kr = this.subst.shallow(k)
        if (kr.kind !== "String" && kr.kind !== "Int" && kr.kind !== "Var" && kr.kind !== "Error") {
          return this.error(e.pos, "type_error", `map keys must be String or Int, not ${this.subst.show(kr)}`)
        }
        return tMap(k, v)
      }
      case "Some":
        return tOption(this.infer(e.value))
      case "Ok":
        return tResult(this.infer(e.value), this.subst.fresh())
      case "Err":
        return tResult(this.subst.fresh(), this.infer(e.value))
      case "None":
        return tOption(this.subst.fresh())
      case "Spawn": {
        const f = this.fns.get(e.fn)
        if (f === undefined) return this.unknownName(e.pos, e.fn, "function")
        if (f.params.length > 0) {
          this.error(e.pos, "type_error", `\`spawn ${e.fn}\`: an actor function takes no parameters, \`${e.fn}\` takes ${f.params.length}`)
        }
        this.checkCapsSubset(e.pos, e.fn, f.caps, "spawns")
        return tActor
      }
      case "Send": {
        this.expect(e.target, this.infer(e.target), tActor, "the target of `send`")
        this.infer(e.message)
        return tUnit
      }
      case "Receive":
        return this.subst.fresh()
      case "Emit":
        this.infer(e.value)
        return tUnit
    }
  }

  private inferIdent(e: Expr & { kind: "Ident" }): Type {
    const local = this.lookup(e.name)
    if (local !== undefined) {
      e.res = { kind: "local" }
      return local.type
    }
    const f = this.fns.get(e.name)
    if (f !== undefined) {
      e.res = { kind: "fn", name: e.name }
      if (f.caps.size > 0) {
        this.error(e.pos, "capability_error",
          `\`${e.name}\` uses ${capList(f.caps)} and cannot be used as a value; only direct calls are checked for capabilities`,
          `call it directly: \`${e.name}(…)\``)
      }
      return tFn(f.params, f.ret)
    }
    const owners = this.variantOwners.get(e.name)
    if (owners !== undefined) {
      const en = this.enums.get(owners[0])
      if (en === undefined) return tError
      if (owners.length > 1) {
        return this.error(e.pos, "type_error", `variant \`${e.name}\` is ambiguous: it belongs to ${owners.join(" and ")}`,
          `write \`${owners[0]}::${e.name}\``)
      }
      const idx = en.index.get(e.name) ?? 0
      if (en.variants[idx].payload !== undefined) {
        return this.error(e.pos, "type_error", `variant \`${e.name}\` carries a value: write \`${e.name}(…)\``)
      }
      e.res = { kind: "variant", enum: en.decl.name, variant: idx }
      return { kind: "Enum", name: en.decl.name }
    }
    if (this.records.has(e.name)) {
      return this.error(e.pos, "type_error", `\`${e.name}\` is a type, not a value`, `build one with \`${e.name} { … }\``)
    }
    if (BUILTIN_SIGNATURES.has(e.name) || CAPABILITY_CALLS.has(e.name)) {
      return this.error(e.pos, "type_error", `\`${e.name}\` can only be called, not used as a value`)
    }
    return this.unknownName(e.pos, e.name)
  }

  /**
   * An `if` and its `else if` chain, in a loop (a chain is not nesting): conditions and branches
   * top-down, then each `else` unified with its `then` from the last branch up.
   */
  private inferIf(e: Expr & { kind: "If" }): Type {
    const chain: Array<Expr & { kind: "If" }> = []
    let cur: Expr & { kind: "If" } = e
    const thens: Array<Type> = []
    let tail: Type | undefined
    for (;;) {
      chain.push(cur)
      this.expect(cur.cond, this.infer(cur.cond), tBool, "an `if` condition")
      thens.push(this.inferBlock(cur.then))
      if (cur.else === undefined || cur.else.kind !== "If") {
        if (cur.else !== undefined) tail = this.inferBlock(cur.else)
        break
      }
      cur = cur.else
    }
    let result: Type = tUnit
    for (let i = chain.length - 1; i >= 0; i--) {
      const x = chain[i]
      const then = thens[i]
      if (x.else === undefined) {
        if (!this.subst.unify(then, tUnit)) {
          const last = lastExpr(x.then)
          this.error(last?.pos ?? x.then.pos, "type_error",
            `an \`if\` without \`else\` has type Unit, but this branch has type ${this.subst.show(then)}`,
            "add an `else` branch, or end the block with `()`")
        }
        result = tUnit
      } else {
        const els = x.else.kind === "If" ? result : tail!
        if (!this.subst.unify(then, els)) {
          const last = x.else.kind === "If" ? x.else : lastExpr(x.else) ?? x.else
          this.error(last.pos, "type_error",
            `\`if\` and \`else\` have different types: ${this.subst.show(then)} and ${this.subst.show(els)}`)
          result = tError
        } else result = then
      }
      if (i > 0) this.set(x, result)
    }
    return result
  }

  /** A left-deep chain `a op b op c …` is walked along its left spine in a loop (not nesting). */
  private inferBinary(e: Expr & { kind: "Binary" }): Type {
    const spine: Array<Expr & { kind: "Binary" }> = [e]
    let x = e.left
    while (x.kind === "Binary") {
      spine.push(x)
      x = x.left
    }
    let l = this.infer(x)
    for (let i = spine.length - 1; i >= 0; i--) {
      const b = spine[i]
      l = this.binaryType(b, l, this.infer(b.right))
      if (i > 0) this.set(b, l)
    }
    return l
  }

  private binaryType(e: Expr & { kind: "Binary" }, l: Type, r: Type): Type {
    const op = e.op
    switch (op) {
      case "&&":
      case "||":
        return this.operands(e, l, r, tBool, `\`${op}\` needs Bool operands`)
      case "==":
      case "!=":
        if (!this.subst.unify(l, r)) {
          this.error(e.pos, "type_error", `cannot compare ${this.subst.show(l)} with ${this.subst.show(r)} using \`${op}\``,
            mixesNumbers(this.subst.resolve(l), this.subst.resolve(r)) ? "there is no implicit Int↔Float conversion" : undefined)
        }
        return tBool
      case "<":
      case "<=":
      case ">":
      case ">=": {
        if (!this.subst.unify(l, r)) {
          this.error(e.pos, "type_error", `cannot compare ${this.subst.show(l)} with ${this.subst.show(r)} using \`${op}\``,
            mixesNumbers(this.subst.resolve(l), this.subst.resolve(r)) ? "there is no implicit Int↔Float conversion" : undefined)
          return tBool
        }
        const t = this.subst.shallow(l)
        if (t.kind !== "Int" && t.kind !== "Float" && t.kind !== "String" && t.kind !== "Var" && t.kind !== "Error") {
          this.error(e.pos, "type_error", `\`${op}\` compares Int, Float or String values, not ${this.subst.show(t)}`)
        }
        return tBool
      }
      case "++":
        return this.operands(e, l, r, tString, "`++` joins two Strings")
      case "%":
        return this.operands(e, l, r, tInt, "`%` is defined for Int only")
      case "+":
      case "-":
      case "*":
      case "/": {
        const lr = this.subst.shallow(l)
        const rr = this.subst.shallow(r)
        if (lr.kind === "Error" || rr.kind === "Error") return tError
        if (!this.subst.unify(l, r)) {
          return this.error(e.pos, "type_error", `\`${op}\` needs two operands of the same type, found ${this.subst.show(l)} and ${this.subst.show(r)}`,
            mixesNumbers(this.subst.resolve(l), this.subst.resolve(r)) ? "there is no implicit Int↔Float conversion: write `1.0` for a Float" : undefined)
        }
        const t = this.subst.shallow(l)
        if (t.kind === "Int" || t.kind === "Float" || t.kind === "Var") return t
        if (t.kind === "String" && op === "+") return tString
        return this.error(e.pos, "type_error", `\`${op}\` is not defined for ${this.subst.show(t)}`,
          t.kind === "String" ? "use `++` or `+` to join strings" : undefined)
      }
    }
  }

  /** both operands must have type `want`; one diagnostic at the operator otherwise */
  private operands(e: Expr, l: Type, r: Type, want: Type, what: string): Type {
    const okL = this.subst.unify(l, want)
    const okR = this.subst.unify(r, want)
    if (!okL || !okR) {
      // the expression failed: its type is Error, so the mistake is not reported again further up
      return this.error(e.pos, "type_error", `${what}, found ${this.subst.show(l)} and ${this.subst.show(r)}`)
    }
    return want
  }

  // -------------------------------------------------------------------------
  // calls

  private checkArgs(call: Call, name: string, sig: Signature): Type {
    const argTypes = call.args.map((a) => this.infer(a))
    if (argTypes.length !== sig.params.length) {
      const n = sig.params.length
      return this.error(call.pos, "type_error", `\`${name}\` expects ${n} argument${n === 1 ? "" : "s"}, got ${argTypes.length}`,
        `\`${name}(${sig.params.map((p) => this.subst.show(p)).join(", ")})\``)
    }
    argTypes.forEach((t, i) => this.expect(call.args[i], t, sig.params[i], `argument ${i + 1} of \`${name}\``))
    return sig.ret
  }

  private inferCall(call: Call): Type {
    const callee = call.callee
    if (callee.kind === "Ident" && this.lookup(callee.name) === undefined) {
      const name = callee.name
      const f = this.fns.get(name)
      if (f !== undefined) {
        call.target = { kind: "fn", name }
        callee.res = { kind: "fn", name }
        this.set(callee, tFn(f.params, f.ret))
        this.checkCapsSubset(call.pos, name, f.caps, "calls")
        return this.checkArgs(call, name, { params: f.params, ret: f.ret })
      }
      const b = BUILTIN_SIGNATURES.get(name)
      if (b !== undefined) {
        call.target = { kind: "builtin", name }
        const inst = this.subst.instantiate(tFn(b.params, b.ret))
        this.set(callee, inst)
        if (inst.kind !== "Fn") return tError
        return this.checkArgs(call, name, inst)
      }
      const cap = CAPABILITY_CALLS.get(name)
      if (cap !== undefined) return this.capCall(call, name)
      const owners = this.variantOwners.get(name)
      if (owners !== undefined) {
        if (owners.length > 1) {
          this.inferAll(call.args)
          return this.error(call.pos, "type_error", `variant \`${name}\` is ambiguous: it belongs to ${owners.join(" and ")}`,
            `write \`${owners[0]}::${name}(…)\``)
        }
        return this.variantCall(call, owners[0], name, callee.pos)
      }
      if (this.records.has(name)) {
        this.inferAll(call.args)
        return this.error(call.pos, "type_error", `\`${name}\` is a record type: build it with \`${name} { … }\``)
      }
      this.inferAll(call.args)
      return this.unknownName(callee.pos, name, "function")
    }
    if (callee.kind === "Path") {
      return this.variantCall(call, callee.enumName, callee.variant, callee.pos)
    }
    if (callee.kind === "Field" && callee.target.kind === "Ident" && this.lookup(callee.target.name) === undefined &&
      !this.fns.has(callee.target.name) && CAPABILITY_NAMESPACES.has(callee.target.name)) {
      const written = `${callee.target.name}.${callee.name}`
      if (CAPABILITY_CALLS.has(written)) return this.capCall(call, written)
      this.inferAll(call.args)
      const near = closest(written, [...CAPABILITY_CALLS.keys()].filter((k) => k.includes(".")))
      return this.error(callee.pos, "unknown_identifier", `unknown capability call \`${written}\``,
        near !== undefined ? `did you mean \`${near}\`?` : `capability calls: ${[...CAPABILITY_CALLS.keys()].join(", ")}`)
    }
    // a value of function type
    const ct = this.infer(callee)
    const args = call.args.map((a) => this.infer(a))
    const r = this.subst.shallow(ct)
    if (r.kind === "Error") return tError
    if (r.kind === "Var") {
      const ret = this.subst.fresh()
      this.subst.unify(r, tFn(args, ret))
      call.target = { kind: "indirect" }
      return ret
    }
    if (r.kind !== "Fn") {
      return this.error(callee.pos, "type_error", `a value of type ${this.subst.show(r)} cannot be called`)
    }
    call.target = { kind: "indirect" }
    if (args.length !== r.params.length) {
      return this.error(call.pos, "type_error", `this function expects ${r.params.length} argument${r.params.length === 1 ? "" : "s"}, got ${args.length}`)
    }
    args.forEach((t, i) => this.expect(call.args[i], t, r.params[i], `argument ${i + 1}`))
    return r.ret
  }

  private inferAll(es: ReadonlyArray<Expr>): void {
    for (const e of es) this.infer(e)
  }

  private capCall(call: Call, written: string): Type {
    const info = CAPABILITY_CALLS.get(written)
    if (info === undefined) return tError
    call.target = { kind: "cap", cap: info.cap }
    const sig = info.overloads.find((o) => o.params.length === call.args.length)
    // `net.fetch(…)`: report at `net`, where the call starts (the VM's call site for it too)
    const start = call.callee.kind === "Field" ? call.callee.target.pos : call.pos
    this.checkCapsSubset(start, written, new Set([info.cap]), "calls the capability")
    if (sig === undefined) {
      this.inferAll(call.args)
      const forms = info.overloads.map((o) => `${written}(${o.params.map(showType).join(", ")})`).join(" or ")
      return this.error(start, "type_error", `\`${written}\` takes ${info.overloads.map((o) => o.params.length).join(" or ")} argument(s), got ${call.args.length}`, forms)
    }
    this.set(call.callee, tFn(sig.params, sig.ret))
    return this.checkArgs(call, written, sig)
  }

  private variantCall(call: Call, enumName: string, variant: string, pos: Pos): Type {
    const en = this.enums.get(enumName)
    if (en === undefined) {
      this.inferAll(call.args)
      return this.unknownEnum(pos, enumName)
    }
    const idx = en.index.get(variant)
    if (idx === undefined) {
      this.inferAll(call.args)
      return this.unknownVariant(pos, en, variant)
    }
    const v = en.variants[idx]
    call.target = { kind: "variant", enum: enumName, variant: idx }
    if (call.callee.kind === "Path") call.callee.index = idx
    const enumType: Type = { kind: "Enum", name: enumName }
    if (v.payload === undefined) {
      this.inferAll(call.args)
      return this.error(call.pos, "type_error", `variant \`${variant}\` of \`${enumName}\` carries no value`, `write \`${variant}\` without parentheses`)
    }
    this.set(call.callee, tFn([v.payload], enumType))
    this.checkArgs(call, variant, { params: [v.payload], ret: enumType })
    return enumType
  }

  private unknownEnum(pos: Pos, name: string): Type {
    const near = closest(name, this.enums.keys())
    return this.error(pos, "type_error",
      this.records.has(name) ? `\`${name}\` is a record type, not an enum` : `unknown enum \`${name}\``,
      near !== undefined ? `did you mean \`${near}\`?` : undefined)
  }

  private unknownVariant(pos: Pos, en: EnumInfo, name: string): Type {
    const near = closest(name, en.index.keys())
    // a name that is no variant of any enum is an unknown identifier; a variant of another enum is a type mismatch
    return this.error(pos, this.variantOwners.has(name) ? "type_error" : "unknown_identifier", `enum \`${en.decl.name}\` has no variant \`${name}\``,
      near !== undefined ? `did you mean \`${near}\`?` : `variants: ${en.variants.map((v) => v.name).join(", ")}`)
  }

  private inferPath(e: Expr & { kind: "Path" }): Type {
    const en = this.enums.get(e.enumName)
    if (en === undefined) return this.unknownEnum(e.pos, e.enumName)
    const idx = en.index.get(e.variant)
    if (idx === undefined) return this.unknownVariant(e.pos, en, e.variant)
    e.index = idx
    if (en.variants[idx].payload !== undefined) {
      return this.error(e.pos, "type_error", `variant \`${e.enumName}::${e.variant}\` carries a value: write \`${e.enumName}::${e.variant}(…)\``)
    }
    return { kind: "Enum", name: e.enumName }
  }

  private inferField(e: Expr & { kind: "Field" }): Type {
    const t = this.subst.shallow(this.infer(e.target))
    if (t.kind === "Error") return tError
    if (t.kind === "Var") {
      return this.error(e.pos, "type_error", `the type of this value is not known here, so \`.${e.name}\` cannot be resolved`,
        "add a type annotation to the `let` that binds it")
    }
    if (t.kind !== "Record") {
      if (e.target.kind === "Ident" && CAPABILITY_NAMESPACES.has(e.target.name) && e.target.res?.kind !== "local") {
        return this.error(e.pos, "type_error", `capability \`${e.target.name}.${e.name}\` must be called`)
      }
      return this.error(e.pos, "type_error", `a value of type ${this.subst.show(t)} has no field \`${e.name}\``)
    }
    const rec = this.records.get(t.name)
    if (rec === undefined) return tError
    const f = rec.fields.get(e.name)
    if (f === undefined) {
      const near = closest(e.name, rec.fields.keys())
      return this.error(e.pos, "unknown_field", `record \`${t.name}\` has no field \`${e.name}\``,
        near !== undefined ? `did you mean \`${near}\`?` : `fields: ${[...rec.fields.keys()].join(", ")}`)
    }
    e.record = t.name
    e.index = f.index
    return f.type
  }

  // -------------------------------------------------------------------------
  // records

  private inferRecordLit(e: RecordLit): Type {
    const rec = this.records.get(e.typeName)
    if (rec === undefined) {
      if (e.spread !== undefined) this.infer(e.spread)
      for (const f of e.fields) this.infer(f.value)
      const near = closest(e.typeName, this.records.keys())
      return this.error(e.pos, "type_error",
        this.enums.has(e.typeName) ? `\`${e.typeName}\` is an enum, not a record` : `unknown record type \`${e.typeName}\``,
        near !== undefined ? `did you mean \`${near}\`?` : undefined)
    }
    const self: Type = { kind: "Record", name: rec.decl.name }
    if (e.spread !== undefined) this.expect(e.spread, this.infer(e.spread), self, `the spread base of \`${rec.decl.name} { .. }\``)
    const seen = new Set<string>()
    for (const f of e.fields) {
      const vt = this.infer(f.value)
      if (seen.has(f.name)) {
        this.error(f.pos, "duplicate_field", `field \`${f.name}\` is given twice in \`${rec.decl.name} { … }\``)
        continue
      }
      seen.add(f.name)
      const info = rec.fields.get(f.name)
      if (info === undefined) {
        const near = closest(f.name, [...rec.fields.keys()].filter((k) => !seen.has(k)))
        this.error(f.pos, "unknown_field", `record \`${rec.decl.name}\` has no field \`${f.name}\``,
          near !== undefined ? `did you mean \`${near}\`?` : `fields: ${[...rec.fields.keys()].join(", ")}`)
        continue
      }
      this.expect(f.value, vt, info.type, `field \`${f.name}\` of \`${rec.decl.name}\``)
    }
    if (e.spread === undefined) {
      const missing = [...rec.fields.keys()].filter((k) => !seen.has(k))
      if (missing.length > 0) {
        this.error(e.pos, "missing_field",
          `\`${rec.decl.name} { … }\` is missing field${missing.length === 1 ? "" : "s"} ${missing.map((m) => `\`${m}\``).join(", ")}`,
          `give every field, or start from an existing value with \`${rec.decl.name} { ..base, … }\``)
      }
    }
    return self
  }

  // -------------------------------------------------------------------------
  // match

  private inferMatch(m: MatchExpr): Type {
    const st = this.infer(m.scrutinee)
    let result: Type | undefined
    let patternErrors = false
    for (const arm of m.arms) {
      this.scopes.push(new Map())
      const before = this.diags.length
      this.checkPattern(arm.pattern, st)
      if (this.diags.length > before) patternErrors = true
      const bt = this.infer(arm.body)
      this.scopes.pop()
      if (result === undefined) {
        result = bt
      } else if (!this.subst.unify(result, bt)) {
        const pos = arm.body.kind === "Block" ? lastExpr(arm.body)?.pos ?? arm.body.pos : arm.body.pos
        this.error(pos, "type_error", `match arms have different types: ${this.subst.show(result)} and ${this.subst.show(bt)}`)
      }
    }
    if (!patternErrors && !this.subst.hasError(st)) {
      const miss = this.missing(m.arms.map((a) => a.pattern), this.subst.resolve(st))
      if (miss !== undefined) {
        const t = this.subst.show(st)
        this.error(m.pos, "non_exhaustive_match",
          miss === "_" ? `non-exhaustive match on ${t}: a catch-all arm is required` : `non-exhaustive match on ${t}: \`${miss}\` is not covered`,
          miss === "_" ? "add an arm `_ => …`" : `add an arm \`${miss} => …\` or a catch-all \`_ => …\``)
      }
    }
    return result ?? this.subst.fresh()
  }

  /** `p` against a value of type `t`, then its payload pattern against the payload's type, in a loop */
  private checkPattern(p0: Pattern, t0: Type): void {
    let next: { readonly p: Pattern; readonly t: Type } | undefined = { p: p0, t: t0 }
    while (next !== undefined) next = this.checkPattern1(next.p, next.t)
  }

  /** the test of `p` itself; returns the payload pattern still to check, with its type */
  private checkPattern1(p: Pattern, t: Type): { readonly p: Pattern; readonly t: Type } | undefined {
    const lit = (pt: Type, what: string): undefined => {
      if (!this.subst.unify(t, pt)) {
        this.error(p.pos, "type_error", `${what} pattern cannot match a value of type ${this.subst.show(t)}`)
      }
      return undefined
    }
    switch (p.kind) {
      case "PWild":
        return
      case "PBind":
        this.declare(p.name, t, false)
        return
      case "PInt":
        return lit(tInt, "an Int")
      case "PStr":
        return lit(tString, "a String")
      case "PBool":
        return lit(tBool, "a Bool")
      case "PNone":
        return lit(tOption(this.subst.fresh()), "a `None`")
      case "PSome": {
        const a = this.subst.fresh()
        if (!this.subst.unify(t, tOption(a))) return lit(tOption(a), "a `Some(…)`")
        return { p: p.inner, t: a }
      }
      case "POk":
      case "PErr": {
        const a = this.subst.fresh()
        const b = this.subst.fresh()
        if (!this.subst.unify(t, tResult(a, b))) return lit(tResult(a, b), p.kind === "POk" ? "an `Ok(…)`" : "an `Err(…)`")
        return { p: p.inner, t: p.kind === "POk" ? a : b }
      }
      case "PVariant": {
        let enumName = p.enumName
        if (enumName === undefined) {
          const r = this.subst.shallow(t)
          if (r.kind === "Enum") {
            enumName = r.name
          } else {
            const owners = this.variantOwners.get(p.name)
            if (owners === undefined) {
              if (r.kind === "Error") return
              const near = closest(p.name, this.variantOwners.keys())
              this.error(p.pos, "unknown_identifier", `unknown variant \`${p.name}\``,
                near !== undefined ? `did you mean \`${near}\`?` : "a pattern that binds a value starts with a lower-case letter")
              return
            }
            enumName = owners[0]
          }
        }
        const en = this.enums.get(enumName)
        if (en === undefined) {
          this.unknownEnum(p.pos, enumName)
          return
        }
        if (!this.subst.unify(t, { kind: "Enum", name: enumName })) {
          this.error(p.pos, "type_error", `a \`${enumName}\` pattern cannot match a value of type ${this.subst.show(t)}`)
          return
        }
        const idx = en.index.get(p.name)
        if (idx === undefined) {
          if (p.enumName === undefined && !this.variantOwners.has(p.name)) {
            const near = closest(p.name, en.index.keys())
            this.error(p.pos, "unknown_identifier", `unknown variant \`${p.name}\` of \`${enumName}\``,
              near !== undefined ? `did you mean \`${near}\`?` : `variants: ${en.variants.map((v) => v.name).join(", ")}`)
          } else {
            this.unknownVariant(p.pos, en, p.name)
          }
          return
        }
        p.enum = enumName
        p.index = idx
        const payload = en.variants[idx].payload
        if (payload === undefined) {
          if (p.inner !== undefined) this.error(p.inner.pos, "type_error", `variant \`${p.name}\` carries no value`)
          return
        }
        return p.inner === undefined ? undefined : { p: p.inner, t: payload }
      }
    }
  }

  /** an example of a value no pattern covers (`_` = anything), or undefined when exhaustive */
  private missing(pats: ReadonlyArray<Pattern>, t: Type): string | undefined {
    if (pats.some((p) => p.kind === "PWild" || p.kind === "PBind")) return undefined
    const r = this.subst.shallow(t)
    switch (r.kind) {
      case "Error":
      case "Var":
        return pats.length > 0 ? undefined : "_"
      case "Bool": {
        const has = (v: boolean) => pats.some((p) => p.kind === "PBool" && p.value === v)
        return !has(true) ? "true" : !has(false) ? "false" : undefined
      }
      case "Option": {
        if (!pats.some((p) => p.kind === "PNone")) return "None"
        const inner = this.missing(pats.flatMap((p) => (p.kind === "PSome" ? [p.inner] : [])), r.elem)
        return inner === undefined ? undefined : `Some(${inner})`
      }
      case "Result": {
        const ok = this.missing(pats.flatMap((p) => (p.kind === "POk" ? [p.inner] : [])), r.ok)
        if (ok !== undefined) return `Ok(${ok})`
        const err = this.missing(pats.flatMap((p) => (p.kind === "PErr" ? [p.inner] : [])), r.err)
        return err === undefined ? undefined : `Err(${err})`
      }
      case "Enum": {
        const en = this.enums.get(r.name)
        if (en === undefined) return undefined
        for (let i = 0; i < en.variants.length; i++) {
          const v = en.variants[i]
          const ps = pats.flatMap((p) => (p.kind === "PVariant" && p.index === i ? [p] : []))
          if (ps.length === 0) return v.payload === undefined ? v.name : `${v.name}(_)`
          if (v.payload !== undefined) {
            const inner = this.missing(ps.map((p) => p.inner ?? wild(p.pos)), v.payload)
            if (inner !== undefined) return `${v.name}(${inner})`
          }
        }
        return undefined
      }
      default:
        return "_"
    }
  }
}

const lastExpr = (b: Block): Expr | undefined => {
  const s = b.stmts[b.stmts.length - 1]
  return s !== undefined && s.kind === "ExprStmt" ? s.expr : undefined
}

const mixesNumbers = (a: Type, b: Type): boolean =>
  (a.kind === "Int" && b.kind === "Float") || (a.kind === "Float" && b.kind === "Int")

/**
 * Check a parsed program: resolve names, infer and check types, exhaustiveness and capability
 * propagation. Annotates the AST in place and returns every diagnostic (empty ⇒ the program is
 * ready for the compiler).
 */
export const check = (program: Program): Diagnostic[] => {
  const c = new Checker(program)
  c.run()
  return c.diags
}

/**
 * The whole frontend for one source file: lex, parse and check. `program` (annotated) is present
 * only when there is no diagnostic; `boruna check` prints `diagnostics` as they are.
 */
export const checkSource = (
  file: string,
  source: string
): { readonly program: Program | undefined; readonly diagnostics: Diagnostic[] } => {
  const r = parse(file, source)
  if (r.program === undefined) return { program: undefined, diagnostics: r.diagnostics }
  const diagnostics = check(r.program)
  return { program: diagnostics.length === 0 ? r.program : undefined, diagnostics }
}
