/**
 * Compiler from a checked `.ax` program (see Ast.ts) to a `BytecodeProgram` (see Bytecode.ts).
 *
 * Stack-machine code generation, one flat `number[]` per function. Every expression leaves exactly
 * one value on the operand stack; statements leave none. Highlights:
 * - `&&` / `||` short-circuit; conditions of `if` / `while` compile to conditional jumps, with
 *   fused compare-and-branch instructions for `local < k`, `local <= k`, `local < local`;
 * - locals are lexically scoped (a `let` in an inner block does not rebind the outer name);
 * - record literals evaluate their fields in written order and store them in declaration order;
 *   a spread copies the fields not overridden;
 * - `match` compiles to tests and jumps over the scrutinee held in a local: literal patterns
 *   (Int, String, Bool) compare with `JNEQ`, `Some/None/Ok/Err` and enum variants with `JNTAG`,
 *   nested patterns unwrap into temporaries, bindings store into fresh locals;
 * - `requires` clauses are asserted at entry, `ensures` clauses at every return with `result`
 *   bound; a failure is a `contract_violation` naming the function and the clause;
 * - capability calls compile to `CAP id argc`; the function's declared set travels with it.
 */
import type {
  Block,
  Call,
  EnumDecl,
  Expr,
  FnDecl,
  Pattern,
  Pos,
  Program,
  RecordDecl,
  Stmt
} from "./Ast.js"
import { builtinId } from "./Builtins.js"
import {
  MAX_LOCALS,
  AXBC_FORMAT,
  AXBC_VERSION,
  type BytecodeProgram,
  type FunctionDef,
  Op,
  sha256,
  Tag,
  type TypeDef,
  verify,
  VerifyError
} from "./Bytecode.js"
import { capabilityByName, resolveAnnotation } from "./Capability.js"
import { check } from "./Checker.js"
import type { Diagnostic } from "./Diagnostic.js"
import { diagnostic } from "./Diagnostic.js"
import { parse } from "./Parser.js"
import { AxFloat, EnumV, FnRefV, intFromBigInt, None, Unit, type Value } from "./Value.js"
import { runSliced } from "./DeepSlice.js"

/** A program the compiler cannot translate (only possible for an unchecked or malformed AST). */
/** A bug in the compiler (never the program's fault): reported as kind `internal_error`. */
export class InternalCompilerBug extends Error {}

/**
 * A program the compiler cannot compile. `user`: the program's fault (a limit it exceeds), a
 * `type_error` at `pos`; otherwise an invariant the checker should have guaranteed broke, which is
 * a bug in boruna (kind `internal_error`).
 */
export class CompileError extends Error {
  constructor(
    readonly pos: Pos,
    readonly reason: string,
    readonly user = false
  ) {
    super(`${pos.line}:${pos.col}: ${reason}`)
  }
}

export interface CompileOptions {
  /** the source text, for `sourceHash` */
  readonly source?: string
  /** program name (default: the module name, else the file name without extension) */
  readonly name?: string
}


interface ProgramInfo {
  readonly fns: ReadonlyMap<string, number>
  readonly types: ReadonlyMap<string, number>
  readonly records: ReadonlyMap<string, RecordDecl>
  readonly enums: ReadonlyMap<string, EnumDecl>
  readonly constants: Array<Value>
  readonly constIndex: Map<string, number>
}

const constKey = (v: Value): string | undefined => {
  switch (typeof v) {
    case "number":
      return `i:${v}`
    case "bigint":
      return `i:${v}`
    case "string":
      return `s:${v}`
    case "boolean":
      return `b:${v}`
  }
  if (v === Unit) return "unit"
  if (v === None) return "none"
  if (v instanceof AxFloat) return `f:${Object.is(v.value, -0) ? "-0" : String(v.value)}`
  if (v instanceof EnumV && v.payload === undefined) return `e:${v.type}:${v.variant}`
  if (v instanceof FnRefV) return `fn:${v.index}`
  return undefined
}

const basename = (file: string): string => {
  const b = file.split(/[\\/]/).pop() ?? file
  return b.replace(/\.ax$/, "")
}

/** Compile a program the checker accepted. Throws `CompileError` on a malformed AST. */
export const compile = (program: Program, options: CompileOptions = {}): BytecodeProgram => {
  const fnDecls = program.items.filter((i): i is FnDecl => i.kind === "Fn")
  const typeDecls = program.items.filter((i): i is RecordDecl | EnumDecl => i.kind === "Record" || i.kind === "Enum")
  const info: ProgramInfo = {
    fns: new Map(fnDecls.map((f, i) => [f.name, i])),
    types: new Map(typeDecls.map((t, i) => [t.name, i])),
    records: new Map(typeDecls.filter((t): t is RecordDecl => t.kind === "Record").map((t) => [t.name, t])),
    enums: new Map(typeDecls.filter((t): t is EnumDecl => t.kind === "Enum").map((t) => [t.name, t])),
    constants: [],
    constIndex: new Map()
  }
  if (fnDecls.length === 0) throw new CompileError({ line: 1, col: 1 }, "the program has no functions", true)
  const types: Array<TypeDef> = typeDecls.map((t) =>
    t.kind === "Record"
      ? { name: t.name, kind: "record", fields: t.fields.map((f) => f.name) }
      : { name: t.name, kind: "enum", variants: t.variants.map((v) => ({ name: v.name, payload: v.payload !== undefined })) }
  )
  const functions = fnDecls.map((f) => new FnCompiler(info, f).compile())
  const out: BytecodeProgram = {
    format: AXBC_FORMAT,
    version: AXBC_VERSION,
    name: options.name ?? program.module ?? basename(program.file),
    sourceFile: program.file,
    sourceHash: sha256(options.source ?? ""),
    constants: info.constants,
    types,
    functions,
    entry: Math.max(0, info.fns.get("main") ?? 0)
  }
  try {
    verify(out)
  } catch (e) {
    if (e instanceof VerifyError) throw new InternalCompilerBug(`the generated bytecode fails verification (${e.message})`)
    throw e
  }
  return out
}

export type CompileSourceResult =
  | { readonly ok: true; readonly program: BytecodeProgram }
  | { readonly ok: false; readonly diagnostics: ReadonlyArray<Diagnostic> }

/** Parse, check and compile one `.ax` file. Never throws on bad input. */
export const compileSource = (file: string, source: string): CompileSourceResult => {
  try {
    return compileChecked(file, source)
  } catch (e) {
    // Last line of defence: the parser bounds nesting and operator chains so the recursive passes stay
    // far from the JS stack limit; should some shape still get past that, it is a diagnostic on the
    // file, never a thrown RangeError.
    if (!(e instanceof RangeError)) throw e
    return {
      ok: false,
      diagnostics: [diagnostic(file, { line: 1, col: 1 }, "parse_error", "the program is nested too deeply to compile",
        "split long expressions and deep nesting with `let` bindings or helper functions")]
    }
  }
}

const compileChecked = (file: string, source: string): CompileSourceResult => {
  const parsed = parse(file, source)
  if (parsed.program === undefined || parsed.diagnostics.length > 0) {
    return { ok: false, diagnostics: parsed.diagnostics }
  }
  const diagnostics = check(parsed.program)
  if (diagnostics.length > 0) return { ok: false, diagnostics }
  try {
    return { ok: true, program: compile(parsed.program, { source }) }
  } catch (e) {
    if (e instanceof CompileError && e.user) {
      return { ok: false, diagnostics: [diagnostic(file, e.pos, "type_error", e.reason)] }
    }
    if (e instanceof CompileError) {
      return {
        ok: false,
        diagnostics: [diagnostic(file, e.pos, "internal_error", `boruna could not compile this valid program: ${e.reason}`, "this is a bug in boruna, not in the program: please report it with the program")]
      }
    }
    if (e instanceof InternalCompilerBug) {
      return {
        ok: false,
        diagnostics: [diagnostic(file, { line: 1, col: 1 }, "internal_error", `boruna could not compile this valid program: ${e.message}`, "this is a bug in boruna, not in the program: please report it with the program")]
      }
    }
    throw e
  }
}

// ---------------------------------------------------------------------------
// one function

const LIST_LEN = builtinId("list_len")!
const LIST_GET = builtinId("list_get")!

/**
 * The compiler recurses at most this many expression levels on the JS stack. A deeper expression
 * is compiled on its own first, from a shallow stack, in the state the compiler had on reaching it
 * (kept when the deep point was reached); the state after it (code, positions, slots, constants) is
 * kept, and the function is compiled again from its start, picking that state up when it reaches
 * the expression. Code generation is deterministic, so the second pass reaches it in the same state.
 */
const DEEP_SLICE = 100

/**
 * Where compiling a function stood at one point. Code, positions and constants only grow there (an
 * expression or block patches only jumps it emitted itself), so their lengths say what they held;
 * an expression or block leaves the scopes as it found them, so the scope maps are shared.
 */
interface EmitState {
  readonly code: number
  readonly positions: number
  readonly lastLine: number
  readonly lastCol: number
  readonly scopes: ReadonlyArray<Map<string, number>>
  readonly nextSlot: number
  readonly resultSlot: number
  readonly constants: number
  readonly depth: number
}

/** what compiling one deep expression or block added */
interface EmitKept {
  readonly code: ReadonlyArray<number>
  readonly positions: ReadonlyArray<number>
  readonly lastLine: number
  readonly lastCol: number
  readonly nextSlot: number
  readonly resultSlot: number
  readonly constants: ReadonlyArray<Value>
}

/**
 * Thrown (and caught by `sliced`) when compiling reaches `DEEP_SLICE` levels above its slice base,
 * at an expression (`block` undefined) or at a statement block (`block`: its `want`).
 */
class EmitDeep {
  readonly _tag = "EmitDeep"
  constructor(readonly e: Expr, readonly block: boolean | undefined, readonly state: EmitState) {}
}

class FnCompiler {
  private readonly code: Array<number> = []
  private readonly positions: Array<number> = []
  private lastLine = -1
  private lastCol = -1
  private scopes: Array<Map<string, number>>
  private readonly paramScope: Map<string, number>
  private nextSlot: number
  private resultSlot = -1
  private depth = 0
  /** the depth the current slice started at (0 outside a sliced compile) */
  private sliceBase = 0
  /** deep expressions and blocks compiled on their own: the state after them (see DEEP_SLICE) */
  private memo: Map<Expr, EmitKept> | undefined
  private memoBlocks: Map<Block, EmitKept> | undefined

  constructor(
    private readonly info: ProgramInfo,
    private readonly decl: FnDecl
  ) {
    this.paramScope = new Map(decl.params.map((p, i) => [p.name, i]))
    this.scopes = [this.paramScope]
    this.nextSlot = decl.params.length
  }

  compile(): FunctionDef {
    const d = this.decl
    this.sliced(() => {
      d.requires.forEach((r, i) => {
        this.expr(r)
        this.emit(r.pos, Op.ASSERT, this.constant(this.contractMessage("requires", r, i, d.requires.length)))
      })
      this.block(d.body, true)
      this.ret(d.body.pos)
    })
    if (this.nextSlot > MAX_LOCALS) {
      throw new CompileError(d.pos, `\`${d.name}\` needs ${this.nextSlot} local slots (parameters, bindings and match temporaries); a function may have at most ${MAX_LOCALS}`, true)
    }
    // canonical names, each once, sorted (the order hashing and listing use)
    const caps = [...new Set(d.capSet ?? d.caps.flatMap((w) => resolveAnnotation(w.name)))].sort()
    return {
      name: d.name,
      arity: d.params.length,
      locals: this.nextSlot,
      capabilities: caps,
      code: this.code,
      positions: this.positions
    }
  }

  // -- deeply nested bodies: slices of DEEP_SLICE levels (see DEEP_SLICE) ----

  private snapshot(): EmitState {
    return {
      code: this.code.length,
      positions: this.positions.length,
      lastLine: this.lastLine,
      lastCol: this.lastCol,
      scopes: [...this.scopes],
      nextSlot: this.nextSlot,
      resultSlot: this.resultSlot,
      constants: this.info.constants.length,
      depth: this.depth
    }
  }

  /** back to `s`: what was added since is dropped (the run that added it is abandoned) */
  private restore(s: EmitState): void {
    this.code.length = s.code
    this.positions.length = s.positions
    this.lastLine = s.lastLine
    this.lastCol = s.lastCol
    this.scopes = [...s.scopes]
    this.nextSlot = s.nextSlot
    this.resultSlot = s.resultSlot
    const { constants, constIndex } = this.info
    for (let i = s.constants; i < constants.length; i++) {
      const key = constKey(constants[i])
      if (key !== undefined && constIndex.get(key) === i) constIndex.delete(key)
    }
    constants.length = s.constants
    this.depth = s.depth
  }

  /** what compiling added since `s` (the state at the start of a deep expression or block) */
  private kept(s: EmitState): EmitKept {
    return {
      code: this.code.slice(s.code),
      positions: this.positions.slice(s.positions),
      lastLine: this.lastLine,
      lastCol: this.lastCol,
      nextSlot: this.nextSlot,
      resultSlot: this.resultSlot,
      constants: this.info.constants.slice(s.constants)
    }
  }

  /** replay a kept compile (the state now is the one it started from) */
  private reuse(k: EmitKept): void {
    for (const c of k.code) this.code.push(c)
    for (const p of k.positions) this.positions.push(p)
    this.lastLine = k.lastLine
    this.lastCol = k.lastCol
    this.nextSlot = k.nextSlot
    this.resultSlot = k.resultSlot
    const { constants, constIndex } = this.info
    for (const c of k.constants) {
      const key = constKey(c)
      if (key !== undefined) constIndex.set(key, constants.length)
      constants.push(c)
    }
  }

  /** run `root` (one function's code), compiling every expression deeper than DEEP_SLICE levels on its own first */
  private sliced(root: () => void): void {
    // the root starts from the parameters' scope alone, which nothing writes to: it is shared too
    runSliced({
      root,
      start: this.snapshot(),
      restore: (s) => this.restore(s),
      isDeep: (e): e is EmitDeep => e instanceof EmitDeep,
      deep: (d) => this.emitDeep(d),
      done: () => {
        this.memo = undefined
        this.memoBlocks = undefined
        this.sliceBase = 0
      }
    })
  }

  /** compile the expression `first` stopped at (and any deeper one it stops at), keeping the states after them */
  private emitDeep(first: EmitDeep): void {
    const memo = this.memo ??= new Map()
    const memoBlocks = this.memoBlocks ??= new Map()
    const pending = [first]
    while (pending.length > 0) {
      const d = pending[pending.length - 1]
      this.restore(d.state)
      this.sliceBase = d.state.depth
      try {
        if (d.block === undefined) {
          this.expr(d.e)
          memo.set(d.e, this.kept(d.state))
        } else {
          const b = d.e as Block
          this.block(b, d.block)
          memoBlocks.set(b, this.kept(d.state))
        }
        pending.pop()
      } catch (e) {
        if (!(e instanceof EmitDeep)) throw e
        pending.push(e)
      }
    }
    this.sliceBase = 0
  }

  // -- emission --------------------------------------------------------------

  private emit(pos: Pos, op: number, ...operands: Array<number>): void {
    if (pos.line !== this.lastLine || pos.col !== this.lastCol) {
      this.positions.push(this.code.length, pos.line, pos.col)
      this.lastLine = pos.line
      this.lastCol = pos.col
    }
    this.code.push(op, ...operands)
  }

  /** Emit a jump-like instruction whose last operand is a target to patch; returns that operand's index. */
  private emitJump(pos: Pos, op: number, ...operands: Array<number>): number {
    this.emit(pos, op, ...operands, -1)
    return this.code.length - 1
  }

  private patch(at: number): void {
    this.code[at] = this.code.length
  }

  private patchAll(ats: ReadonlyArray<number>): void {
    for (const a of ats) this.patch(a)
  }

  private constant(v: Value): number {
    const key = constKey(v)
    if (key !== undefined) {
      const k = this.info.constIndex.get(key)
      if (k !== undefined) return k
    }
    const k = this.info.constants.length
    this.info.constants.push(v)
    if (key !== undefined) this.info.constIndex.set(key, k)
    return k
  }

  // -- scopes ----------------------------------------------------------------

  private declare(name: string): number {
    const slot = this.nextSlot++
    this.scopes[this.scopes.length - 1].set(name, slot)
    return slot
  }

  private temp(): number {
    return this.nextSlot++
  }

  private lookup(name: string): number | undefined {
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const s = this.scopes[i].get(name)
      if (s !== undefined) return s
    }
    return undefined
  }

  private localSlot(e: Expr): number | undefined {
    if (e.kind !== "Ident") return undefined
    if (e.res !== undefined && e.res.kind !== "local") return undefined
    return this.lookup(e.name)
  }

  // -- statements ------------------------------------------------------------

  private block(b: Block, want: boolean): void {
    if (this.memoBlocks !== undefined) {
      const kept = this.memoBlocks.get(b)
      if (kept !== undefined) return this.reuse(kept)
    }
    if (this.depth - this.sliceBase >= DEEP_SLICE) throw new EmitDeep(b, want, this.snapshot())
    this.depth++
    this.scopes.push(new Map())
    const n = b.stmts.length
    for (let i = 0; i < n; i++) {
      const s = b.stmts[i]
      if (s.kind === "ExprStmt") {
        this.expr(s.expr)
        if (!(want && i === n - 1)) this.emit(s.pos, Op.POP)
      } else {
        this.stmt(s)
      }
    }
    if (want && (n === 0 || b.stmts[n - 1].kind !== "ExprStmt")) this.emit(b.pos, Op.CONST, this.constant(Unit))
    this.scopes.pop()
    this.depth--
  }

  private stmt(s: Stmt): void {
    switch (s.kind) {
      case "Let": {
        this.expr(s.init)
        const slot = this.declare(s.name)
        this.emit(s.pos, Op.STORE, slot)
        return
      }
      case "Assign": {
        this.expr(s.value)
        const slot = this.lookup(s.name)
        if (slot === undefined) throw new CompileError(s.pos, `unknown local \`${s.name}\``)
        this.emit(s.pos, Op.STORE, slot)
        return
      }
      case "ExprStmt":
        this.expr(s.expr)
        this.emit(s.pos, Op.POP)
        return
      case "While": {
        const top = this.code.length
        const exits = this.cond(s.cond)
        this.block(s.body, false)
        this.emit(s.pos, Op.JMP, top)
        this.patchAll(exits)
        return
      }
      case "For": {
        const list = this.temp()
        const idx = this.temp()
        this.expr(s.iter)
        this.emit(s.pos, Op.STORE, list)
        this.emit(s.pos, Op.CONST, this.constant(0))
        this.emit(s.pos, Op.STORE, idx)
        const top = this.code.length
        this.emit(s.pos, Op.LOAD, idx)
        this.emit(s.pos, Op.LOAD, list)
        this.emit(s.pos, Op.BUILTIN, LIST_LEN)
        this.emit(s.pos, Op.LT)
        const exit = this.emitJump(s.pos, Op.JMPF)
        this.scopes.push(new Map())
        this.emit(s.pos, Op.LOAD, list)
        this.emit(s.pos, Op.LOAD, idx)
        this.emit(s.pos, Op.BUILTIN, LIST_GET)
        this.emit(s.pos, Op.STORE, this.declare(s.name))
        this.block(s.body, false)
        this.scopes.pop()
        this.emit(s.pos, Op.ADDLK, idx, this.constant(1))
        this.emit(s.pos, Op.STORE, idx)
        this.emit(s.pos, Op.JMP, top)
        this.patch(exit)
        return
      }
      case "Return":
        if (s.value === undefined) this.emit(s.pos, Op.CONST, this.constant(Unit))
        else this.expr(s.value)
        this.ret(s.pos)
        return
    }
  }

  /** Return the value on top of the stack, checking `ensures` first. */
  private ret(pos: Pos): void {
    const ens = this.decl.ensures
    if (ens.length === 0) {
      this.emit(pos, Op.RET)
      return
    }
    if (this.resultSlot < 0) this.resultSlot = this.temp()
    this.emit(pos, Op.STORE, this.resultSlot)
    const saved = this.scopes
    this.scopes = [this.paramScope, new Map([["result", this.resultSlot]])]
    ens.forEach((c, i) => {
      this.expr(c)
      this.emit(c.pos, Op.ASSERT, this.constant(this.contractMessage("ensures", c, i, ens.length)))
    })
    this.scopes = saved
    this.emit(pos, Op.LOAD, this.resultSlot)
    this.emit(pos, Op.RET)
  }

  private contractMessage(kind: "requires" | "ensures", e: Expr, i: number, n: number): string {
    const which = n > 1 ? ` (clause ${i + 1} of ${n})` : ""
    const when = kind === "requires" ? "on entry" : "on return"
    return `contract violation: \`${this.decl.name}\` ${kind} \`${showExpr(e)}\`${which}, false ${when}`
  }

  // -- conditions ------------------------------------------------------------

  /** Compile a Bool condition; returns the jump operands to patch with the "false" target. */
  private cond(e: Expr): Array<number> {
    if (e.kind === "Binary" && e.op === "&&") {
      // `a && b && c …` along its left spine, in a loop
      const rights: Array<Expr> = []
      let x: Expr = e
      while (x.kind === "Binary" && x.op === "&&") {
        rights.push(x.right)
        x = x.left
      }
      const jumps = this.cond1(x)
      for (let i = rights.length - 1; i >= 0; i--) for (const j of this.cond(rights[i])) jumps.push(j)
      return jumps
    }
    return this.cond1(e)
  }

  private cond1(e: Expr): Array<number> {
    if (e.kind === "Bool" && e.value) return []
    if (e.kind === "Binary") {
      if (e.op === "<" || e.op === "<=") {
        const a = this.localSlot(e.left)
        if (a !== undefined) {
          if (e.right.kind === "Int") {
            return [this.emitJump(e.pos, e.op === "<" ? Op.JNLTLK : Op.JNLELK, a, this.constant(e.right.value))]
          }
          const b = this.localSlot(e.right)
          if (b !== undefined && e.op === "<") return [this.emitJump(e.pos, Op.JNLTLL, a, b)]
        }
      }
    }
    this.expr(e)
    return [this.emitJump(e.pos, Op.JMPF)]
  }

  // -- expressions -----------------------------------------------------------

  private expr(e: Expr): void {
    if (this.memo !== undefined) {
      const kept = this.memo.get(e)
      if (kept !== undefined) return this.reuse(kept)
    }
    if (this.depth - this.sliceBase >= DEEP_SLICE) throw new EmitDeep(e, undefined, this.snapshot())
    this.depth++
    this.expr1(e)
    this.depth--
  }

  private expr1(e: Expr): void {
    switch (e.kind) {
      case "Block":
        return this.block(e, true)
      case "Int":
        return this.emit(e.pos, Op.CONST, this.constant(e.value))
      case "Float":
        return this.emit(e.pos, Op.CONST, this.constant(new AxFloat(e.value)))
      case "Str":
      case "Bool":
        return this.emit(e.pos, Op.CONST, this.constant(e.value))
      case "Unit":
        return this.emit(e.pos, Op.CONST, this.constant(Unit))
      case "None":
        return this.emit(e.pos, Op.CONST, this.constant(None))
      case "Ident":
        return this.ident(e)
      case "Binary":
        return this.binary(e)
      case "Unary": {
        if (e.op === "-" && e.operand.kind === "Int") {
          const v = e.operand.value
          const neg = typeof v === "number" ? 0 - v : intFromBigInt(-v)
          if (neg === undefined) throw new CompileError(e.pos, "integer literal out of range", true)
          return this.emit(e.pos, Op.CONST, this.constant(neg))
        }
        if (e.op === "-" && e.operand.kind === "Float") {
          return this.emit(e.pos, Op.CONST, this.constant(new AxFloat(-e.operand.value)))
        }
        this.expr(e.operand)
        return this.emit(e.pos, e.op === "-" ? Op.NEG : Op.NOT)
      }
      case "Call":
        return this.call(e)
      case "Field": {
        this.expr(e.target)
        let index = e.index
        if (index === undefined && e.record !== undefined) {
          index = this.info.records.get(e.record)?.fields.findIndex((f) => f.name === e.name)
        }
        if (index === undefined || index < 0) throw new CompileError(e.pos, `unresolved field \`${e.name}\``)
        return this.emit(e.pos, Op.GETFIELD, index)
      }
      case "Path": {
        const en = this.info.enums.get(e.enumName)
        const idx = e.index ?? en?.variants.findIndex((v) => v.name === e.variant)
        if (en === undefined || idx === undefined || idx < 0) throw new CompileError(e.pos, `unknown variant ${e.enumName}::${e.variant}`)
        return this.unitVariant(e.pos, en, idx)
      }
      case "If": {
        // an `else if` chain in a loop; every branch jumps to the one common end
        const ends: Array<number> = []
        let cur: Expr & { kind: "If" } = e
        for (;;) {
          const elseJumps = this.cond(cur.cond)
          this.block(cur.then, true)
          ends.push(this.emitJump(cur.pos, Op.JMP))
          this.patchAll(elseJumps)
          if (cur.else === undefined) {
            this.emit(cur.pos, Op.CONST, this.constant(Unit))
            break
          }
          if (cur.else.kind === "Block") {
            this.block(cur.else, true)
            break
          }
          cur = cur.else
        }
        for (let i = ends.length - 1; i >= 0; i--) this.patch(ends[i])
        return
      }
      case "Match":
        return this.match(e)
      case "RecordLit":
        return this.record(e)
      case "List":
        for (const x of e.items) this.expr(x)
        return this.emit(e.pos, Op.MKLIST, e.items.length)
      case "Map":
        for (const { key, value } of e.entries) {
          this.expr(key)
          this.expr(value)
        }
        return this.emit(e.pos, Op.MKMAP, e.entries.length)
      case "Some":
      case "Ok":
      case "Err":
        this.expr(e.value)
        return this.emit(e.pos, e.kind === "Some" ? Op.SOME : e.kind === "Ok" ? Op.OK : Op.ERR)
      case "Spawn": {
        const f = this.info.fns.get(e.fn)
        if (f === undefined) throw new CompileError(e.pos, `unknown function \`${e.fn}\``)
        return this.emit(e.pos, Op.SPAWN, f)
      }
      case "Send":
        this.expr(e.target)
        this.expr(e.message)
        return this.emit(e.pos, Op.SEND)
      case "Receive":
        return this.emit(e.pos, Op.RECEIVE)
      case "Emit":
        this.expr(e.value)
        return this.emit(e.pos, Op.EMIT)
    }
  }

  private unitVariant(pos: Pos, en: EnumDecl, idx: number): void {
    const v = en.variants[idx]
    if (v === undefined || v.payload !== undefined) throw new CompileError(pos, `variant ${en.name}::${v?.name ?? idx} needs a payload`)
    this.emit(pos, Op.CONST, this.constant(new EnumV(en.name, idx, v.name, undefined)))
  }

  private ident(e: Expr & { kind: "Ident" }): void {
    const res = e.res
    if (res === undefined || res.kind === "local") {
      const slot = this.lookup(e.name)
      if (slot !== undefined) return this.emit(e.pos, Op.LOAD, slot)
      if (res !== undefined) throw new CompileError(e.pos, `unknown local \`${e.name}\``)
    }
    if (res === undefined || res.kind === "fn") {
      const name = res?.kind === "fn" ? res.name : e.name
      const f = this.info.fns.get(name)
      if (f === undefined) throw new CompileError(e.pos, `unknown name \`${e.name}\``)
      return this.emit(e.pos, Op.CONST, this.constant(new FnRefV(f, name)))
    }
    const en = this.info.enums.get(res.enum)
    if (en === undefined) throw new CompileError(e.pos, `unknown enum ${res.enum}`)
    this.unitVariant(e.pos, en, res.variant)
  }

  /** A left-deep chain `a op b op c …`: its left spine in a loop (a chain is not nesting). */
  private binary(e: Expr & { kind: "Binary" }): void {
    const spine: Array<Expr & { kind: "Binary" }> = []
    let x: Expr & { kind: "Binary" } = e
    while (x.left.kind === "Binary") {
      spine.push(x)
      x = x.left
    }
    this.binary1(x)
    for (let i = spine.length - 1; i >= 0; i--) {
      const b = spine[i]
      if (b.op === "&&" || b.op === "||") {
        this.emit(b.pos, Op.DUP)
        const j = this.emitJump(b.pos, b.op === "&&" ? Op.JMPF : Op.JMPT)
        this.emit(b.pos, Op.POP)
        this.expr(b.right)
        this.patch(j)
      } else {
        this.expr(b.right)
        this.emit(b.pos, BINARY_OPS[b.op])
      }
    }
  }

  /** One operator whose left operand is not itself a binary expression. */
  private binary1(e: Expr & { kind: "Binary" }): void {
    switch (e.op) {
      case "&&":
      case "||": {
        this.expr(e.left)
        this.emit(e.pos, Op.DUP)
        const j = this.emitJump(e.pos, e.op === "&&" ? Op.JMPF : Op.JMPT)
        this.emit(e.pos, Op.POP)
        this.expr(e.right)
        this.patch(j)
        return
      }
      case "+":
      case "-": {
        const a = this.localSlot(e.left)
        if (a !== undefined && e.right.kind === "Int") {
          return this.emit(e.pos, e.op === "+" ? Op.ADDLK : Op.SUBLK, a, this.constant(e.right.value))
        }
        break
      }
    }
    this.expr(e.left)
    this.expr(e.right)
    this.emit(e.pos, BINARY_OPS[e.op])
  }

  private call(e: Call): void {
    const t = e.target
    const pos = startPos(e)
    if (t === undefined) throw new CompileError(e.pos, "unresolved call")
    switch (t.kind) {
      case "fn": {
        const f = this.info.fns.get(t.name)
        if (f === undefined) throw new CompileError(e.pos, `unknown function \`${t.name}\``)
        for (const a of e.args) this.expr(a)
        return this.emit(pos, Op.CALL, f, e.args.length)
      }
      case "builtin": {
        const id = builtinId(t.name)
        if (id === undefined) throw new CompileError(e.pos, `unknown builtin \`${t.name}\``)
        for (const a of e.args) this.expr(a)
        return this.emit(pos, Op.BUILTIN, id)
      }
      case "cap": {
        const c = capabilityByName(t.cap)
        if (c === undefined) throw new CompileError(e.pos, `unknown capability \`${t.cap}\``)
        for (const a of e.args) this.expr(a)
        return this.emit(pos, Op.CAP, c.id, e.args.length)
      }
      case "variant": {
        const ti = this.info.types.get(t.enum)
        if (ti === undefined) throw new CompileError(e.pos, `unknown enum ${t.enum}`)
        for (const a of e.args) this.expr(a)
        return this.emit(pos, Op.MKENUM, ti, t.variant)
      }
      case "indirect":
        for (const a of e.args) this.expr(a)
        this.expr(e.callee)
        return this.emit(pos, Op.CALLI, e.args.length)
    }
  }

  private record(e: Expr & { kind: "RecordLit" }): void {
    const decl = this.info.records.get(e.typeName)
    const ti = this.info.types.get(e.typeName)
    if (decl === undefined || ti === undefined) throw new CompileError(e.pos, `unknown record type ${e.typeName}`)
    const inOrder = e.spread === undefined && e.fields.length === decl.fields.length &&
      e.fields.every((f, i) => f.name === decl.fields[i].name)
    if (inOrder) {
      for (const f of e.fields) this.expr(f.value)
      return this.emit(e.pos, Op.MKRECORD, ti)
    }
    let base = -1
    if (e.spread !== undefined) {
      this.expr(e.spread)
      base = this.temp()
      this.emit(e.spread.pos, Op.STORE, base)
    }
    const given = new Map<string, number>()
    for (const f of e.fields) {
      this.expr(f.value)
      const slot = this.temp()
      this.emit(f.pos, Op.STORE, slot)
      given.set(f.name, slot)
    }
    decl.fields.forEach((f, i) => {
      const slot = given.get(f.name)
      if (slot !== undefined) this.emit(e.pos, Op.LOAD, slot)
      else if (base >= 0) {
        this.emit(e.pos, Op.LOAD, base)
        this.emit(e.pos, Op.GETFIELD, i)
      } else throw new CompileError(e.pos, `missing field \`${f.name}\` in ${e.typeName}`)
    })
    this.emit(e.pos, Op.MKRECORD, ti)
  }

  private match(e: Expr & { kind: "Match" }): void {
    let slot = this.localSlot(e.scrutinee)
    if (slot === undefined) {
      this.expr(e.scrutinee)
      slot = this.temp()
      this.emit(e.scrutinee.pos, Op.STORE, slot)
    }
    const ends: Array<number> = []
    for (const arm of e.arms) {
      this.scopes.push(new Map())
      const fails: Array<number> = []
      this.pattern(arm.pattern, slot, fails)
      this.expr(arm.body)
      ends.push(this.emitJump(arm.pos, Op.JMP))
      this.scopes.pop()
      this.patchAll(fails)
    }
    this.emit(e.pos, Op.FAIL, this.constant("no match arm covers the value"))
    this.patchAll(ends)
  }

  /**
   * Test the value in `slot` against `p`, binding its names; jumps recorded in `fails` when it does
   * not match. A nested pattern unwraps one payload per level, in a loop.
   */
  private pattern(p0: Pattern, slot0: number, fails: Array<number>): void {
    let p = p0
    let slot = slot0
    for (;;) {
      const inner = this.pattern1(p, slot, fails)
      if (inner === undefined || inner.kind === "PWild") return
      this.emit(inner.pos, Op.UNWRAP, slot)
      if (inner.kind === "PBind") {
        this.emit(inner.pos, Op.STORE, this.declare(inner.name))
        return
      }
      slot = this.temp()
      this.emit(inner.pos, Op.STORE, slot)
      p = inner
    }
  }

  /** the test of `p` itself; returns the payload pattern still to match, if any */
  private pattern1(p: Pattern, slot: number, fails: Array<number>): Pattern | undefined {
    switch (p.kind) {
      case "PWild":
        return
      case "PBind":
        this.emit(p.pos, Op.LOAD, slot)
        this.emit(p.pos, Op.STORE, this.declare(p.name))
        return
      case "PInt":
      case "PStr":
      case "PBool":
        fails.push(this.emitJump(p.pos, Op.JNEQ, slot, this.constant(p.value)))
        return
      case "PNone":
        fails.push(this.emitJump(p.pos, Op.JNTAG, slot, Tag.None))
        return
      case "PSome":
      case "POk":
      case "PErr": {
        const tag = p.kind === "PSome" ? Tag.Some : p.kind === "POk" ? Tag.Ok : Tag.Err
        fails.push(this.emitJump(p.pos, Op.JNTAG, slot, tag))
        return p.inner
      }
      case "PVariant": {
        const enumName = p.enum ?? p.enumName
        const en = enumName === undefined ? undefined : this.info.enums.get(enumName)
        const idx = p.index ?? en?.variants.findIndex((v) => v.name === p.name)
        if (idx === undefined || idx < 0) throw new CompileError(p.pos, `unresolved variant pattern \`${p.name}\``)
        fails.push(this.emitJump(p.pos, Op.JNTAG, slot, Tag.Variant + idx))
        return p.inner
      }
    }
  }
}

/** Where an expression starts in the source (a call's position is that of its callee's first token). */
const startPos = (e: Expr): Pos => {
  let x = e
  for (;;) {
    switch (x.kind) {
      case "Call":
        x = x.callee
        break
      case "Field":
        x = x.target
        break
      case "Binary":
        x = x.left
        break
      default:
        return x.pos
    }
  }
}

const BINARY_OPS: Readonly<Record<string, number>> = {
  "==": Op.EQ,
  "!=": Op.NE,
  "<": Op.LT,
  "<=": Op.LE,
  ">": Op.GT,
  ">=": Op.GE,
  "++": Op.CONCAT,
  "+": Op.ADD,
  "-": Op.SUB,
  "*": Op.MUL,
  "/": Op.DIV,
  "%": Op.MOD
}

// ---------------------------------------------------------------------------
// source text of an expression (for contract messages)

const PREC: Readonly<Record<string, number>> = {
  "||": 1,
  "&&": 2,
  "==": 3,
  "!=": 3,
  "<": 4,
  "<=": 4,
  ">": 4,
  ">=": 4,
  "++": 5,
  "+": 6,
  "-": 6,
  "*": 7,
  "/": 7,
  "%": 7
}

/** how deep `showExpr` writes a clause out; deeper compound parts are `…` (a contract message stays readable, and the walk shallow) */
const SHOW_DEPTH = 100
const SHOW_LEAVES: ReadonlySet<string> = new Set(["Int", "Float", "Str", "Bool", "Unit", "None", "Ident", "Path"])

export const showExpr = (e: Expr, prec = 0, depth = 0): string => {
  if (depth >= SHOW_DEPTH && !SHOW_LEAVES.has(e.kind)) return "…"
  const d = depth + 1
  switch (e.kind) {
    case "Int":
      return String(e.value)
    case "Float": {
      const s = String(e.value)
      return /[.eE]|inf|NaN/i.test(s) ? s : s + ".0"
    }
    case "Str":
      return JSON.stringify(e.value)
    case "Bool":
      return String(e.value)
    case "Unit":
      return "()"
    case "None":
      return "None"
    case "Ident":
      return e.name
    case "Binary": {
      const p = PREC[e.op]
      const s = `${showExpr(e.left, p, d)} ${e.op} ${showExpr(e.right, p + 1, d)}`
      return p < prec ? `(${s})` : s
    }
    case "Unary":
      return e.op + showExpr(e.operand, 8, d)
    case "Call":
      return `${showExpr(e.callee, 9, d)}(${e.args.map((a) => showExpr(a, 0, d)).join(", ")})`
    case "Field":
      return `${showExpr(e.target, 9, d)}.${e.name}`
    case "Path":
      return `${e.enumName}::${e.variant}`
    case "Some":
    case "Ok":
    case "Err":
      return `${e.kind}(${showExpr(e.value, 0, d)})`
    case "List":
      return `[${e.items.map((x) => showExpr(x, 0, d)).join(", ")}]`
    default:
      return "…"
  }
}
