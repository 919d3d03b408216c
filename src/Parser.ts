/**
 * Recursive-descent parser for `.ax` (see docs/language.md for the grammar we accept).
 *
 * Newlines: a newline ends a statement, except inside `( )` / `[ ]`, right after a binary operator
 * (or `=`, `=>`, `,`), before a line that starts with a binary operator other than `-` (or with
 * `.field`), and in declaration headers. `;` also separates statements. A statement that ends
 * with `}` needs no separator.
 *
 * Braces in expression position: `Name {` (upper-case name) is a record literal except in the
 * condition of `if` / `while` / `match` / `for` / `requires` / `ensures` (like Rust); `{` followed by
 * a literal or name and `:` is a map literal; `{}` is an empty map, except as a statement or a match
 * arm body, where it is an empty block (`Unit`); any other `{` is a block.
 *
 * Errors: the first error of an item is reported, then the parser skips to the next item keyword
 * (`fn`, `type`, `record`, `enum`, `export`, `import`, `module`). `parse` never throws and always
 * terminates; when there is any diagnostic the program is `undefined`.
 */
import type {
  BinaryOp, Block, CapRef, EnumDecl, Expr, FnDecl, IfExpr, Item, MatchArm, Param, Pattern, Pos, Program, RecordDecl,
  Stmt, TypeExpr
} from "./Ast.js"
import { diagnostic, type Diagnostic } from "./Diagnostic.js"
import { KEYWORDS, lex, type Token } from "./Lexer.js"
import { runSliced } from "./DeepSlice.js"

/**
 * Bound on true nesting: blocks, parentheses, calls, list / map / record literals, `Some(…)`, unary
 * operators, `if` conditions, `match`, patterns and types each count one level. The parser's stack
 * use does not depend on it (see `DEEP_SLICE`); it keeps one program to a sane shape.
 */
export const MAX_DEPTH = 3000
/**
 * The parser recurses at most this many nesting levels on the JS stack. A construct deeper than
 * that is parsed on its own first, from a shallow stack, and its tree kept (by production and token
 * position); the item is then parsed again from its start and picks the tree up when it reaches the
 * construct. Parsing is deterministic, so the second pass reaches the construct in the same state.
 * Each slice of `DEEP_SLICE` levels is parsed about twice: deep programs stay linear, and a shallow
 * one never takes this path.
 */
const DEEP_SLICE = 128
/**
 * Bound on binary operators in one expression. A chain `a + b + … + z` is not nesting: the parser
 * reads it in a loop, and the checker and compiler walk its left spine in a loop too, so the bound
 * only keeps one expression to a sane size.
 */
export const MAX_CHAIN = 100_000

class ParseFailure {
  readonly _tag = "ParseFailure"
}
const FAILURE = new ParseFailure()

/** the memoisable productions (the recursion points where a deep parse is sliced) */
const enum Prod {
  Expr = 0,
  Block = 1,
  Pattern = 2,
  Type = 3
}
type ProdNode = Expr | Block | Pattern | TypeExpr

interface ParserState {
  readonly pos: number
  readonly nlModes: ReadonlyArray<boolean>
  readonly noStruct: boolean
  readonly depth: number
  readonly chain: number
}

/** thrown (and caught by `sliced`) when the parse reaches `DEEP_SLICE` levels above its slice base */
class DeepSlice {
  readonly _tag = "DeepSlice"
  constructor(readonly key: number, readonly prod: Prod, readonly state: ParserState) {}
}

const ITEM_KEYWORDS: ReadonlySet<string> = new Set(["fn", "type", "enum", "export", "import", "module"])

const BINARY_LEVELS: ReadonlyArray<ReadonlySet<string>> = [
  new Set(["||"]),
  new Set(["&&"]),
  new Set(["==", "!="]),
  new Set(["<", "<=", ">", ">="]),
  new Set(["++"]),
  new Set(["+", "-"]),
  new Set(["*", "/", "%"])
]
const COMPARISON_LEVEL = 3
const BINARY_LEVEL: ReadonlyMap<string, number> = new Map(BINARY_LEVELS.flatMap((ops, level) => [...ops].map((op) => [op, level] as const)))

const isUpper = (s: string): boolean => {
  const c = s.charCodeAt(0)
  return c >= 65 && c <= 90
}

const describe = (t: Token): string => {
  switch (t.kind) {
    case "eof":
      return "end of input"
    case "nl":
      return "end of line"
    case "str":
      return `string ${t.text}`
    case "int":
    case "float":
      return `number ${t.text}`
    case "ident":
      return `\`${t.text}\``
    default:
      return `\`${t.text}\``
  }
}

/** Levenshtein distance, bounded by `max` (returns max + 1 when farther) */
export const editDistance = (a: string, b: string, max = 2): number => {
  if (Math.abs(a.length - b.length) > max) return max + 1
  const prev = new Array<number>(b.length + 1)
  for (let j = 0; j <= b.length; j++) prev[j] = j
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]
    prev[0] = i
    let rowMin = prev[0]
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + cost)
      diag = tmp
      if (prev[j] < rowMin) rowMin = prev[j]
    }
    if (rowMin > max) return max + 1
  }
  return prev[b.length]
}

/** the closest candidate within edit distance `max` (ties: first in order) */
export const closest = (name: string, candidates: Iterable<string>, max = 2): string | undefined => {
  let best: string | undefined
  let bestD = max + 1
  for (const c of candidates) {
    if (c === name) continue
    const d = editDistance(name, c, max)
    if (d < bestD) {
      bestD = d
      best = c
    }
  }
  return best
}

class Parser {
  private pos = 0
  /** stack of newline modes: true = newlines are insignificant here */
  private nlModes: boolean[] = [true]
  private ignoreNl = true
  /** record literals are not allowed (condition position) */
  private noStruct = false
  private depth = 0
  private chain = 0
  /** the depth the current slice started at (0 outside a sliced parse) */
  private sliceBase = 0
  /** trees of deep constructs parsed on their own, by `pos * 4 + prod`, while one item is parsed */
  private memo: Map<number, { readonly node: ProdNode; readonly end: number }> | undefined
  readonly diagnostics: Diagnostic[] = []

  constructor(private readonly file: string, private readonly toks: ReadonlyArray<Token>) {}

  // -------------------------------------------------------------------------
  // token helpers

  private peek(): Token {
    if (this.ignoreNl) while (this.toks[this.pos].kind === "nl") this.pos++
    return this.toks[this.pos]
  }

  /** the token after the current one (newlines skipped) */
  private peekAfter(): Token {
    this.peek()
    let p = this.pos + 1
    while (p < this.toks.length - 1 && this.toks[p].kind === "nl") p++
    return this.toks[Math.min(p, this.toks.length - 1)]
  }

  private advance(): Token {
    const t = this.peek()
    if (t.kind !== "eof") this.pos++
    return t
  }

  private prev(): Token | undefined {
    return this.pos > 0 ? this.toks[this.pos - 1] : undefined
  }

  /** a line break separates the last consumed token from the next one */
  private newlineBefore(): boolean {
    const t = this.peek()
    return t.kind === "nl" || (this.pos > 0 && this.toks[this.pos - 1].kind === "nl")
  }

  private skipNl(): void {
    while (this.toks[this.pos].kind === "nl") this.pos++
  }

  private is(text: string): boolean {
    const t = this.peek()
    return (t.kind === "punct" || t.kind === "kw") && t.text === text
  }

  private eat(text: string): boolean {
    if (this.is(text)) {
      this.pos++
      return true
    }
    return false
  }

  private expect(text: string, context?: string): Token {
    const t = this.peek()
    if ((t.kind === "punct" || t.kind === "kw") && t.text === text) {
      this.pos++
      return t
    }
    return this.fail(t, `expected \`${text}\`${context ? " " + context : ""}, found ${describe(t)}`)
  }

  private expectIdent(what: string): Token {
    const t = this.peek()
    if (t.kind === "ident") {
      this.pos++
      return t
    }
    return this.fail(t, `expected ${what}, found ${describe(t)}`,
      t.kind === "kw" ? `\`${t.text}\` is a keyword and cannot be used as a name` : undefined)
  }

  private fail(t: Token, message: string, suggestion?: string): never {
    this.diagnostics.push(diagnostic(this.file, t, "parse_error", message, suggestion))
    throw FAILURE
  }

  private pushMode(ignore: boolean): void {
    this.nlModes.push(ignore)
    this.ignoreNl = ignore
  }

  private popMode(): void {
    this.nlModes.pop()
    this.ignoreNl = this.nlModes[this.nlModes.length - 1] ?? true
  }

  private enter(t: Token): void {
    if (++this.depth > MAX_DEPTH) this.fail(t, `nesting deeper than ${MAX_DEPTH} levels`)
  }

  private posOf(t: Token): Pos {
    return { line: t.line, col: t.col }
  }

  // -------------------------------------------------------------------------
  // deep programs: slices of DEEP_SLICE levels (see DEEP_SLICE)

  private snapshot(): ParserState {
    return { pos: this.pos, nlModes: [...this.nlModes], noStruct: this.noStruct, depth: this.depth, chain: this.chain }
  }

  private restore(s: ParserState): void {
    this.pos = s.pos
    this.nlModes = [...s.nlModes]
    this.ignoreNl = this.nlModes[this.nlModes.length - 1] ?? true
    this.noStruct = s.noStruct
    this.depth = s.depth
    this.chain = s.chain
  }

  /**
   * At the start of a memoisable production: the tree kept for it (the parse resumes after it), or
   * undefined to parse it here; throws `DeepSlice` when the JS stack holds `DEEP_SLICE` levels already.
   */
  private slice(prod: Prod): ProdNode | undefined {
    const key = this.pos * 4 + prod
    const kept = this.memo?.get(key)
    if (kept !== undefined) {
      this.pos = kept.end
      return kept.node
    }
    if (this.depth - this.sliceBase >= DEEP_SLICE) throw new DeepSlice(key, prod, this.snapshot())
    return undefined
  }

  /** run `root` (one item), parsing every construct deeper than DEEP_SLICE levels on its own first */
  private sliced<T>(root: () => T): T {
    return runSliced({
      root,
      start: this.snapshot(),
      restore: (s) => this.restore(s),
      isDeep: (e): e is DeepSlice => e instanceof DeepSlice,
      deep: (d) => this.parseDeep(d),
      done: () => {
        this.memo = undefined
        this.sliceBase = 0
      }
    })
  }

  /** parse the construct `first` stopped at (and any deeper one it stops at), keeping the trees */
  private parseDeep(first: DeepSlice): void {
    const memo = this.memo ??= new Map()
    const pending = [first]
    while (pending.length > 0) {
      const d = pending[pending.length - 1]
      this.restore(d.state)
      this.sliceBase = d.state.depth
      try {
        const node = d.prod === Prod.Expr ? this.parseExpr()
          : d.prod === Prod.Block ? this.parseBlock()
          : d.prod === Prod.Pattern ? this.parsePattern()
          : this.parseType()
        memo.set(d.key, { node, end: this.pos })
        pending.pop()
      } catch (e) {
        if (!(e instanceof DeepSlice)) throw e
        pending.push(e)
      }
    }
    this.sliceBase = 0
  }

  // -------------------------------------------------------------------------
  // program and items

  parseProgram(): Program {
    let module: string | undefined
    const items: Item[] = []
    while (this.peek().kind !== "eof") {
      const start = this.pos
      try {
        if (this.is("module")) {
          this.advance()
          module = this.parseDottedName()
        } else if (this.is("import")) {
          this.advance()
          const t = this.peek()
          if (t.kind === "str") this.advance()
          else this.parseDottedName()
        } else if (this.eat(";")) {
          // stray separator between items
        } else {
          items.push(this.sliced(() => this.parseItem()))
        }
      } catch (e) {
        if (e !== FAILURE) throw e
        this.recover(start)
      }
    }
    return { file: this.file, module, items }
  }

  private recover(itemStart: number): void {
    this.nlModes = [true]
    this.ignoreNl = true
    this.noStruct = false
    this.depth = 0
    if (this.pos <= itemStart) this.pos = itemStart + 1
    for (;;) {
      const t = this.toks[this.pos]
      if (t.kind === "eof") return
      if ((t.kind === "kw" && ITEM_KEYWORDS.has(t.text) || t.kind === "ident" && t.text === "record" && this.toks[this.pos + 1]?.kind === "ident") &&
        this.pos > itemStart) return
      this.pos++
    }
  }

  private parseDottedName(): string {
    let name = this.expectIdent("a module name").text
    while (this.eat(".")) name += "." + this.expectIdent("a module name").text
    return name
  }

  private parseItem(): Item {
    const exported = this.eat("export")
    const t = this.peek()
    if (t.kind === "ident" && t.text === "record" && this.peekAfter().kind === "ident") return this.parseRecordDecl()
    if (t.kind === "kw") {
      if (t.text === "fn") return this.parseFn(exported)
      if (t.text === "type") return this.parseRecordDecl()
      if (t.text === "enum") return this.parseEnumDecl()
    }
    const kw = t.kind === "ident" ? closest(t.text, ["fn", "type", "record", "enum", "import", "module", "export"], 1) : undefined
    return this.fail(t, `expected an item (\`fn\`, \`type\`, \`enum\`), found ${describe(t)}`,
      kw !== undefined ? `did you mean \`${kw}\`?` : undefined)
  }

  private parseFn(exported: boolean): FnDecl {
    const fnTok = this.expect("fn")
    const name = this.expectIdent("a function name").text
    this.expect("(", "after the function name")
    const params: Param[] = []
    while (!this.is(")")) {
      const p = this.expectIdent("a parameter name")
      this.expect(":", `after parameter \`${p.text}\``)
      const type = this.parseType()
      params.push({ name: p.text, type, pos: this.posOf(p) })
      if (!this.eat(",")) break
    }
    this.expect(")", "to close the parameter list")
    let ret: TypeExpr | undefined
    const caps: CapRef[] = []
    const requires: Expr[] = []
    const ensures: Expr[] = []
    let sawCaps = false
    for (;;) {
      if (this.is("->")) {
        const arrow = this.advance()
        if (ret !== undefined) this.fail(arrow, "the return type is given twice")
        ret = this.parseType()
      } else if (this.is("!")) {
        const bang = this.advance()
        if (sawCaps) this.fail(bang, "the capability annotation `!{…}` is given twice")
        sawCaps = true
        this.parseCaps(caps)
      } else if (this.is("requires")) {
        this.advance()
        requires.push(this.parseCondExpr())
      } else if (this.is("ensures")) {
        this.advance()
        ensures.push(this.parseCondExpr())
      } else {
        break
      }
    }
    if (!this.is("{")) {
      const t = this.peek()
      this.fail(t, `expected \`{\` to start the body of \`${name}\`, found ${describe(t)}`)
    }
    const body = this.parseBlock()
    return { kind: "Fn", name, params, ret, caps, requires, ensures, body, exported, pos: this.posOf(fnTok) }
  }

  private parseCaps(out: CapRef[]): void {
    this.expect("{", "after `!` (capability annotation `!{…}`)")
    while (!this.is("}")) {
      const t = this.peek()
      if (t.kind !== "ident" && t.kind !== "kw") this.fail(t, `expected a capability name, found ${describe(t)}`)
      this.advance()
      let name = t.text
      if (this.eat(".")) {
        const u = this.peek()
        if (u.kind !== "ident" && u.kind !== "kw") this.fail(u, `expected a capability name after \`.\`, found ${describe(u)}`)
        this.advance()
        name += "." + u.text
      }
      out.push({ name, pos: this.posOf(t) })
      if (!this.eat(",")) break
    }
    this.expect("}", "to close the capability annotation")
  }

  private parseRecordDecl(): RecordDecl {
    const kw = this.advance()
    const name = this.expectIdent("a type name")
    this.expect("{", `after \`${kw.text} ${name.text}\``)
    const fields: Array<{ name: string; type: TypeExpr; pos: Pos }> = []
    while (!this.is("}")) {
      const f = this.expectIdent("a field name")
      this.expect(":", `after field \`${f.text}\``)
      const type = this.parseType()
      fields.push({ name: f.text, type, pos: this.posOf(f) })
      if (!this.eat(",")) {
        // a line break also separates fields
        if (this.newlineBefore()) continue
        break
      }
    }
    this.expect("}", `to close \`${name.text}\``)
    return { kind: "Record", name: name.text, fields, pos: this.posOf(kw) }
  }

  private parseEnumDecl(): EnumDecl {
    const kw = this.advance()
    const name = this.expectIdent("an enum name")
    this.expect("{", `after \`enum ${name.text}\``)
    const variants: Array<{ name: string; payload: TypeExpr | undefined; pos: Pos }> = []
    while (!this.is("}")) {
      const v = this.expectIdent("a variant name")
      let payload: TypeExpr | undefined
      if (this.eat("(")) {
        payload = this.parseType()
        this.expect(")", "after the variant's payload type (a variant has at most one payload)")
      }
      variants.push({ name: v.text, payload, pos: this.posOf(v) })
      if (!this.eat(",")) {
        if (this.newlineBefore()) continue
        break
      }
    }
    this.expect("}", `to close \`${name.text}\``)
    return { kind: "Enum", name: name.text, variants, pos: this.posOf(kw) }
  }

  // -------------------------------------------------------------------------
  // types

  private parseType(): TypeExpr {
    if (this.memo !== undefined || this.depth - this.sliceBase >= DEEP_SLICE) {
      const kept = this.slice(Prod.Type)
      if (kept !== undefined) return kept as TypeExpr
    }
    const t = this.peek()
    this.enter(t)
    let result: TypeExpr
    if (this.is("(")) {
      this.advance()
      this.expect(")", "(the unit type is written `()`)")
      result = { kind: "TypeExpr", name: "Unit", args: [], pos: this.posOf(t) }
    } else {
      const name = this.expectIdent("a type")
      const args: TypeExpr[] = []
      // look at the very next token: a line break ends the type
      const n = this.toks[this.pos]
      if (name.text === "Fn" && n.kind === "punct" && n.text === "(") {
        this.advance()
        this.pushMode(true)
        while (!this.is(")")) {
          args.push(this.parseType())
          if (!this.eat(",")) break
        }
        this.expect(")", "to close the parameter types of `Fn(…)`")
        this.expect("->", "(a function type is written `Fn(A, B) -> R`)")
        args.push(this.parseType())
        this.popMode()
      } else if (n.kind === "punct" && n.text === "<") {
        this.advance()
        this.pushMode(true)
        while (!this.is(">")) {
          args.push(this.parseType())
          if (!this.eat(",")) break
        }
        this.expect(">", "to close the type arguments")
        this.popMode()
      }
      result = { kind: "TypeExpr", name: name.text, args, pos: this.posOf(name) }
    }
    this.depth--
    return result
  }

  // -------------------------------------------------------------------------
  // blocks and statements

  private parseBlock(): Block {
    if (this.memo !== undefined || this.depth - this.sliceBase >= DEEP_SLICE) {
      const kept = this.slice(Prod.Block)
      if (kept !== undefined) return kept as Block
    }
    const open = this.expect("{")
    this.enter(open)
    this.pushMode(false)
    const savedNoStruct = this.noStruct
    this.noStruct = false
    const stmts: Stmt[] = []
    for (;;) {
      this.skipNl()
      while (this.eat(";")) this.skipNl()
      if (this.is("}")) break
      const t = this.peek()
      if (t.kind === "eof") this.fail(t, "expected `}` to close the block, found end of input")
      stmts.push(this.parseStmt())
      const after = this.peek()
      if (after.kind === "nl" || (after.kind === "punct" && (after.text === ";" || after.text === "}"))) continue
      if (this.prev()?.text === "}" && this.prev()?.kind === "punct") continue
      this.fail(after, `expected a line break or \`;\` after the statement, found ${describe(after)}`)
    }
    this.advance()
    this.noStruct = savedNoStruct
    this.popMode()
    this.depth--
    return { kind: "Block", stmts, pos: this.posOf(open) }
  }

  private parseStmt(): Stmt {
    const t = this.peek()
    if (t.kind === "kw") {
      switch (t.text) {
        case "let": {
          this.advance()
          const mutable = this.eat("mut")
          const name = this.expectIdent("a variable name after `let`")
          let type: TypeExpr | undefined
          if (this.eat(":")) type = this.parseType()
          this.expect("=", `in \`let ${name.text}\``)
          this.skipNl()
          const init = this.parseExpr()
          return { kind: "Let", name: name.text, mutable, type, init, pos: this.posOf(t) }
        }
        case "while": {
          this.advance()
          const cond = this.parseCondExpr()
          const body = this.parseBlock()
          return { kind: "While", cond, body, pos: this.posOf(t) }
        }
        case "for": {
          this.advance()
          const name = this.expectIdent("a loop variable after `for`")
          this.expect("in", "after the loop variable")
          const iter = this.parseCondExpr()
          const body = this.parseBlock()
          return { kind: "For", name: name.text, iter, body, pos: this.posOf(t) }
        }
        case "return": {
          this.advance()
          const n = this.peek()
          const value = n.kind === "nl" || n.kind === "eof" || (n.kind === "punct" && (n.text === "}" || n.text === ";"))
            ? undefined
            : this.parseExpr()
          return { kind: "Return", value, pos: this.posOf(t) }
        }
      }
    }
    if (t.kind === "punct" && t.text === "{" && this.peekAfter().text === "}" && this.peekAfter().kind === "punct") {
      return { kind: "ExprStmt", expr: this.parseBlock(), pos: this.posOf(t) }
    }
    const expr = this.parseExpr()
    if (this.is("=")) {
      const eq = this.advance()
      if (expr.kind !== "Ident") this.fail(eq, "invalid assignment target: only a variable can be assigned")
      this.skipNl()
      const value = this.parseExpr()
      return { kind: "Assign", name: expr.name, value, pos: expr.pos }
    }
    return { kind: "ExprStmt", expr, pos: expr.pos }
  }

  // -------------------------------------------------------------------------
  // expressions

  /** an expression in condition position: no record literals at its top level */
  private parseCondExpr(): Expr {
    const saved = this.noStruct
    this.noStruct = true
    const e = this.parseExpr()
    this.noStruct = saved
    // `if p == P { x: 1 } { … }`: the `{` after `P` opened the branch, which starts `field:`
    const open = this.peek()
    const a = this.toks[this.pos + 1]
    const b = this.toks[this.pos + 2]
    let last: Expr = e
    while (last.kind === "Binary") last = last.right
    if (open.kind === "punct" && open.text === "{" && a?.kind === "ident" && b?.kind === "punct" && b.text === ":" &&
      last.kind === "Ident" && isUpper(last.name)) {
      this.fail(open, `a record literal cannot appear directly in a condition: the \`{\` after \`${last.name}\` starts the branch`,
        `wrap the literal in parentheses: \`(${last.name} { ${a.text}: … })\``)
    }
    return e
  }

  parseExpr(): Expr {
    if (this.memo !== undefined || this.depth - this.sliceBase >= DEEP_SLICE) {
      const kept = this.slice(Prod.Expr)
      if (kept !== undefined) return kept as Expr
    }
    const chainAtEntry = this.chain
    try {
      return this.climb(this.parseUnary(), 0)
    } finally {
      this.chain = chainAtEntry
    }
  }

  /**
   * The binary operator next (at precedence `minLevel` or tighter), or undefined. A line that starts
   * with a binary operator (other than `-`, which may start an expression) continues the expression.
   */
  private binaryAhead(minLevel: number): { t: Token; level: number; nl: boolean } | undefined {
    let t = this.peek()
    let nl = false
    if (t.kind === "nl") {
      const n = this.toks[this.pos + 1]
      if (n.kind !== "punct" || n.text === "-") return undefined
      t = n
      nl = true
    }
    if (t.kind !== "punct") return undefined
    const level = BINARY_LEVEL.get(t.text)
    return level === undefined || level < minLevel ? undefined : { t, level, nl }
  }

  /**
   * Precedence climbing: `left` followed by operators of level ≥ `minLevel`. A chain of one level is
   * a loop; only a tighter operator on the right recurses, once per level (not once per operator and
   * not once per level on every operand, so nesting costs few JS frames).
   */
  private climb(first: Expr, minLevel: number): Expr {
    let left = first
    for (;;) {
      const op = this.binaryAhead(minLevel)
      if (op === undefined) return left
      const t = op.t
      if (++this.chain > MAX_CHAIN) {
        this.fail(t, `more than ${MAX_CHAIN} operators in one expression`, "split it with `let` bindings or a helper function")
      }
      if (op.nl) this.pos++
      this.advance()
      const eq = this.peek()
      if (eq.kind === "punct" && eq.text === "=" && eq.line === t.line && eq.col === t.col + t.text.length) {
        const name = left.kind === "Ident" ? left.name : "x"
        const v = this.toks[this.pos + 1]
        const rhs = v !== undefined && (v.kind === "int" || v.kind === "ident") && v.line === eq.line ? v.text : "…"
        this.fail(t, `there is no compound assignment \`${t.text}=\` in .ax`, `write \`${name} = ${name} ${t.text} ${rhs}\` (the variable must be \`let mut\`)`)
      }
      this.skipNl()
      let right = this.parseUnary()
      for (;;) {
        const n = this.binaryAhead(op.level + 1)
        if (n === undefined) break
        right = this.climb(right, n.level)
      }
      left = { kind: "Binary", op: t.text as BinaryOp, left, right, pos: this.posOf(t) }
      if (op.level === COMPARISON_LEVEL) {
        const n = this.peek()
        if (n.kind === "punct" && BINARY_LEVELS[COMPARISON_LEVEL].has(n.text)) {
          this.fail(n, "comparison operators cannot be chained", "combine comparisons with `&&`, e.g. `a < b && b < c`")
        }
      }
    }
  }

  /** prefix operators are read in a loop (each one a nesting level), then applied inside out */
  private parseUnary(): Expr {
    let t = this.peek()
    if (t.kind !== "punct" || (t.text !== "-" && t.text !== "!")) return this.parsePostfix()
    const ops: Token[] = []
    do {
      this.advance()
      this.enter(t)
      ops.push(t)
      t = this.peek()
    } while (t.kind === "punct" && (t.text === "-" || t.text === "!"))
    let e = this.parsePostfix()
    for (let i = ops.length - 1; i >= 0; i--) {
      const o = ops[i]
      e = { kind: "Unary", op: o.text as "-" | "!", operand: e, pos: this.posOf(o) }
    }
    this.depth -= ops.length
    return e
  }

  private parsePostfix(): Expr {
    let e = this.parsePrimary()
    for (;;) {
      let t = this.peek()
      if (t.kind === "nl") {
        // a line that starts with `.field` continues the expression (method-chain layout)
        const n = this.toks[this.pos + 1]
        if (n.kind !== "punct" || n.text !== ".") return e
        this.pos++
        t = n
      }
      if (t.kind !== "punct") return e
      if (t.text === "(") {
        this.advance()
        this.enter(t)
        const args = this.parseDelimited(")", "arguments")
        this.depth--
        e = { kind: "Call", callee: e, args, pos: e.pos }
      } else if (t.text === ".") {
        this.advance()
        const f = this.peek()
        if (f.kind !== "ident") this.fail(f, `expected a field name after \`.\`, found ${describe(f)}`)
        this.advance()
        e = { kind: "Field", target: e, name: f.text, pos: this.posOf(f) }
      } else if (t.text === "::") {
        this.fail(t, "`::` can only follow an enum name, as in `Color::Red`")
      } else if (t.text === "[") {
        const what = e.kind === "Ident" ? e.name : "xs"
        this.fail(t, "there is no indexing syntax `xs[i]` in .ax",
          `use \`list_get(${what}, i)\` for a List, or \`__builtin_map_get(${what}, key)\` for a Map (an Option)`)
      } else {
        return e
      }
    }
  }

  /** comma-separated expressions up to `close` (newlines insignificant, trailing comma allowed) */
  private parseDelimited(close: string, what: string): Expr[] {
    this.pushMode(true)
    const savedNoStruct = this.noStruct
    this.noStruct = false
    const out: Expr[] = []
    while (!this.is(close)) {
      out.push(this.parseExpr())
      if (!this.eat(",")) break
    }
    this.expect(close, `to close the ${what}`)
    this.noStruct = savedNoStruct
    this.popMode()
    return out
  }

  private parsePrimary(): Expr {
    const t = this.peek()
    const pos = this.posOf(t)
    switch (t.kind) {
      case "int":
        this.advance()
        return { kind: "Int", value: t.value as number | bigint, pos }
      case "float":
        this.advance()
        return { kind: "Float", value: t.value as number, pos }
      case "str":
        this.advance()
        return { kind: "Str", value: t.value as string, pos }
      case "ident":
        return this.parseIdentExpr(t)
      case "kw":
        return this.parseKeywordExpr(t)
      case "punct":
        if (t.text === "(") {
          this.advance()
          this.pushMode(true)
          if (this.is(")")) {
            this.advance()
            this.popMode()
            return { kind: "Unit", pos }
          }
          this.enter(t)
          const saved = this.noStruct
          this.noStruct = false
          const inner = this.parseExpr()
          this.expect(")", "to close the parenthesis")
          this.noStruct = saved
          this.popMode()
          this.depth--
          return inner
        }
        if (t.text === "[") {
          this.advance()
          this.enter(t)
          const items = this.parseDelimited("]", "list")
          this.depth--
          return { kind: "List", items, pos }
        }
        if (t.text === "{") return this.parseBraceExpr(t)
        break
      default:
        break
    }
    return this.fail(t, `expected an expression, found ${describe(t)}`)
  }

  private parseIdentExpr(t: Token): Expr {
    const pos = this.posOf(t)
    this.advance()
    if (this.is("::")) {
      this.advance()
      const v = this.expectIdent("a variant name after `::`")
      return { kind: "Path", enumName: t.text, variant: v.text, pos }
    }
    if (!this.noStruct && isUpper(t.text) && this.is("{")) return this.parseRecordLit(t)
    return { kind: "Ident", name: t.text, pos }
  }

  private parseRecordLit(name: Token): Expr {
    const open = this.advance()
    this.enter(open)
    this.pushMode(true)
    const saved = this.noStruct
    this.noStruct = false
    let spread: Expr | undefined
    const fields: Array<{ name: string; value: Expr; pos: Pos }> = []
    while (!this.is("}")) {
      if (this.is("..")) {
        const dots = this.advance()
        if (spread !== undefined || fields.length > 0) {
          this.fail(dots, "a spread `..base` must come first in a record literal, and only once")
        }
        spread = this.parseExpr()
      } else {
        const f = this.expectIdent(`a field name in \`${name.text} { … }\``)
        this.expect(":", `after field \`${f.text}\``)
        fields.push({ name: f.text, value: this.parseExpr(), pos: this.posOf(f) })
      }
      if (!this.eat(",")) {
        if (this.newlineBefore()) continue
        break
      }
    }
    this.expect("}", `to close \`${name.text} { … }\``)
    this.noStruct = saved
    this.popMode()
    this.depth--
    return { kind: "RecordLit", typeName: name.text, spread, fields, pos: this.posOf(name) }
  }

  /** `{` in expression position: a map literal or a block */
  private parseBraceExpr(open: Token): Expr {
    const a = this.peekAfter()
    if (a.kind === "punct" && a.text === "}") {
      this.advance()
      this.advance()
      return { kind: "Map", entries: [], pos: this.posOf(open) }
    }
    if (this.looksLikeMap()) {
      this.advance()
      this.enter(open)
      this.pushMode(true)
      const saved = this.noStruct
      this.noStruct = false
      const entries: Array<{ key: Expr; value: Expr }> = []
      while (!this.is("}")) {
        const key = this.parseExpr()
        this.expect(":", "between a map key and its value")
        entries.push({ key, value: this.parseExpr() })
        if (!this.eat(",")) break
      }
      this.expect("}", "to close the map literal")
      this.noStruct = saved
      this.popMode()
      this.depth--
      return { kind: "Map", entries, pos: this.posOf(open) }
    }
    return this.parseBlock()
  }

  /** after `{`: a literal (an Int optionally negative) or a name, then `:` */
  private looksLikeMap(): boolean {
    this.peek()
    let p = this.pos + 1
    const skip = () => {
      while (this.toks[p].kind === "nl") p++
    }
    skip()
    let t = this.toks[p]
    if (t.kind === "punct" && t.text === "-") {
      p++
      skip()
      t = this.toks[p]
      if (t.kind !== "int") return false
    } else if (t.kind !== "str" && t.kind !== "int" && t.kind !== "float" && t.kind !== "ident" &&
      !(t.kind === "kw" && (t.text === "true" || t.text === "false"))) {
      return false
    }
    p++
    skip()
    const c = this.toks[p]
    return c.kind === "punct" && c.text === ":"
  }

  private parseKeywordExpr(t: Token): Expr {
    const pos = this.posOf(t)
    switch (t.text) {
      case "fn":
        this.fail(t, "there are no closures or lambdas in .ax: `fn` declares a top-level function",
          "declare `fn helper(x: Int) -> Int { … }` at the top level and pass it by name (`let f = helper`)")
      case "true":
      case "false":
        this.advance()
        return { kind: "Bool", value: t.text === "true", pos }
      case "None":
        this.advance()
        return { kind: "None", pos }
      case "Some":
      case "Ok":
      case "Err": {
        this.advance()
        if (!this.is("(")) {
          const n = this.peek()
          this.fail(n, `expected \`(\` after \`${t.text}\`, found ${describe(n)}`, `write \`${t.text}(value)\``)
        }
        this.advance()
        this.enter(t)
        const args = this.parseDelimitedAfterOpen(")", `\`${t.text}(…)\``)
        this.depth--
        if (args.length !== 1) this.fail(t, `\`${t.text}\` takes exactly one value, got ${args.length}`)
        return { kind: t.text, value: args[0], pos }
      }
      case "if":
        return this.parseIf()
      case "match":
        return this.parseMatch()
      case "spawn": {
        this.advance()
        const f = this.expectIdent("a function name after `spawn`")
        return { kind: "Spawn", fn: f.text, pos }
      }
      case "send": {
        this.advance()
        this.enter(t)
        const target = this.parseSendTarget()
        const message = this.parseUnary()
        this.depth--
        return { kind: "Send", target, message, pos }
      }
      case "receive":
        this.advance()
        return { kind: "Receive", pos }
      case "emit": {
        this.advance()
        this.enter(t)
        const value = this.parseExpr()
        this.depth--
        return { kind: "Emit", value, pos }
      }
    }
    return this.fail(t, `expected an expression, found keyword \`${t.text}\``)
  }

  private parseDelimitedAfterOpen(close: string, what: string): Expr[] {
    return this.parseDelimited(close, what)
  }

  /** `send TARGET MSG`: the target is a primary with field accesses only (no calls) */
  private parseSendTarget(): Expr {
    let e = this.parsePrimary()
    while (this.is(".")) {
      this.advance()
      const f = this.expectIdent("a field name after `.`")
      e = { kind: "Field", target: e, name: f.text, pos: this.posOf(f) }
    }
    return e
  }

  private parseIf(): IfExpr {
    // an `else if` chain is read in a loop (it is not nesting): the branches are collected, then
    // linked from the last one up, so 10,000 branches cost no parser recursion
    const branches: Array<{ t: Token; cond: Expr; then: Block }> = []
    let last: Block | undefined
    for (;;) {
      const t = this.advance()
      // the condition is one level inside the `if`; the branches are blocks (a level each)
      this.enter(t)
      const cond = this.parseCondExpr()
      this.depth--
      if (!this.is("{")) {
        const n = this.peek()
        this.fail(n, `expected \`{\` after the \`if\` condition, found ${describe(n)}`)
      }
      const then = this.parseBlock()
      branches.push({ t, cond, then })
      if (!this.elseAhead()) break
      this.skipNl()
      this.advance()
      if (this.is("if")) continue
      if (this.is("{")) {
        last = this.parseBlock()
        break
      }
      const n = this.peek()
      this.fail(n, `expected \`{\` or \`if\` after \`else\`, found ${describe(n)}`)
    }
    let els: Block | IfExpr | undefined = last
    for (let i = branches.length - 1; i >= 0; i--) {
      const b = branches[i]
      els = { kind: "If", cond: b.cond, then: b.then, else: els, pos: this.posOf(b.t) }
    }
    return els as IfExpr
  }

  /** `else` follows, possibly after line breaks */
  private elseAhead(): boolean {
    let p = this.pos
    while (this.toks[p].kind === "nl") p++
    const t = this.toks[p]
    return t.kind === "kw" && t.text === "else"
  }

  private parseMatch(): Expr {
    const t = this.advance()
    this.enter(t)
    const scrutinee = this.parseCondExpr()
    this.expect("{", "after the `match` value")
    this.pushMode(false)
    const saved = this.noStruct
    this.noStruct = false
    const arms: MatchArm[] = []
    for (;;) {
      this.skipNl()
      if (this.is("}")) break
      const pt = this.peek()
      if (pt.kind === "eof") this.fail(pt, "expected `}` to close the match, found end of input")
      const pattern = this.parsePattern()
      this.skipNl()
      this.expect("=>", "after the pattern")
      this.skipNl()
      let body: Expr
      const b = this.peek()
      if (b.kind === "punct" && b.text === "{" && this.peekAfter().kind === "punct" && this.peekAfter().text === "}") {
        body = this.parseBlock()
      } else {
        body = this.parseExpr()
      }
      arms.push({ pattern, body, pos: this.posOf(pt) })
      const after = this.peek()
      if (this.eat(",")) continue
      if (after.kind === "nl" || (after.kind === "punct" && after.text === "}")) continue
      if (this.prev()?.kind === "punct" && this.prev()?.text === "}") continue
      this.fail(after, `expected \`,\` or a line break after the match arm, found ${describe(after)}`)
    }
    this.advance()
    this.noStruct = saved
    this.popMode()
    this.depth--
    return { kind: "Match", scrutinee, arms, pos: this.posOf(t) }
  }

  // -------------------------------------------------------------------------
  // patterns

  private parsePattern(): Pattern {
    if (this.memo !== undefined || this.depth - this.sliceBase >= DEEP_SLICE) {
      const kept = this.slice(Prod.Pattern)
      if (kept !== undefined) return kept as Pattern
    }
    const t = this.peek()
    const pos = this.posOf(t)
    this.enter(t)
    let p: Pattern
    if (t.kind === "int") {
      this.advance()
      p = { kind: "PInt", value: t.value as number | bigint, pos }
    } else if (t.kind === "punct" && t.text === "-") {
      this.advance()
      const n = this.peek()
      if (n.kind !== "int") this.fail(n, `expected an integer after \`-\` in a pattern, found ${describe(n)}`)
      this.advance()
      const v = n.value as number | bigint
      p = { kind: "PInt", value: typeof v === "bigint" ? negateBig(v) : v === 0 ? 0 : -v, pos }
    } else if (t.kind === "str") {
      this.advance()
      p = { kind: "PStr", value: t.value as string, pos }
    } else if (t.kind === "float") {
      this.fail(t, "float literals cannot be used as patterns", "bind the value and compare it in the arm instead")
    } else if (t.kind === "kw" && (t.text === "true" || t.text === "false")) {
      this.advance()
      p = { kind: "PBool", value: t.text === "true", pos }
    } else if (t.kind === "kw" && t.text === "None") {
      this.advance()
      p = { kind: "PNone", pos }
    } else if (t.kind === "kw" && (t.text === "Some" || t.text === "Ok" || t.text === "Err")) {
      this.advance()
      this.expect("(", `after \`${t.text}\` in a pattern`)
      this.pushMode(true)
      const inner = this.parsePattern()
      this.expect(")", `to close \`${t.text}(…)\``)
      this.popMode()
      p = { kind: t.text === "Some" ? "PSome" : t.text === "Ok" ? "POk" : "PErr", inner, pos }
    } else if (t.kind === "ident") {
      this.advance()
      if (t.text === "_") {
        p = { kind: "PWild", pos }
      } else if (this.is("::")) {
        this.advance()
        const v = this.expectIdent("a variant name after `::`")
        p = { kind: "PVariant", enumName: t.text, name: v.text, inner: this.parseVariantPayload(), pos }
      } else if (isUpper(t.text)) {
        p = { kind: "PVariant", enumName: undefined, name: t.text, inner: this.parseVariantPayload(), pos }
      } else {
        p = { kind: "PBind", name: t.text, pos }
      }
    } else {
      this.fail(t, `expected a pattern, found ${describe(t)}`)
    }
    this.depth--
    return p
  }

  private parseVariantPayload(): Pattern | undefined {
    if (!this.is("(")) return undefined
    this.advance()
    this.pushMode(true)
    const inner = this.parsePattern()
    this.expect(")", "to close the variant pattern (a variant has at most one payload)")
    this.popMode()
    return inner
  }
}

const negateBig = (v: bigint): number | bigint => {
  const r = -v
  return r >= -9007199254740991n ? Number(r) : r
}

export interface ParseResult {
  readonly program: Program | undefined
  readonly diagnostics: Diagnostic[]
}

/**
 * Lex and parse one source file. Lexical errors and the first syntax error of every item are
 * reported; `program` is present only when there is no diagnostic at all.
 */
export const parse = (file: string, source: string): ParseResult => {
  const lexed = lex(file, source)
  const parser = new Parser(file, lexed.tokens)
  const program = parser.parseProgram()
  let diagnostics: Diagnostic[]
  if (lexed.diagnostics.length === 0) {
    diagnostics = parser.diagnostics
  } else {
    // a parse error on a line with a lexical error (or after an unterminated string) is a follow-up
    const lexLines = new Set(lexed.diagnostics.map((d) => d.line))
    const lastLex = lexed.diagnostics[lexed.diagnostics.length - 1]
    const eofLine = lexed.truncated ? lastLex.line : Infinity
    diagnostics = [
      ...lexed.diagnostics,
      ...parser.diagnostics.filter((d) => !lexLines.has(d.line) && d.line < eofLine)
    ]
    diagnostics.sort((a, b) => a.line - b.line || a.col - b.col)
  }
  return { program: diagnostics.length === 0 ? program : undefined, diagnostics }
}

/** true when `name` is a reserved word of `.ax` */
export const isKeyword = (name: string): boolean => KEYWORDS.has(name)
