/**
 * Syntax tree of an `.ax` program: what the parser produces, the checker annotates, and the
 * compiler consumes.
 *
 * Contract between the stages:
 * - the parser fills every field not marked "checker";
 * - `check()` resolves names and types and fills the fields marked "checker" in place;
 * - the compiler only runs on a program the checker accepted (no diagnostics), so every
 *   "checker" field it needs is present.
 */
import type { CapabilityName } from "./Capability.js"

/** 1-based line and column (column counts UTF-16 code units from the start of the line). */
export interface Pos {
  readonly line: number
  readonly col: number
}

// ---------------------------------------------------------------------------
// types as written

export interface TypeExpr {
  readonly kind: "TypeExpr"
  /** `Int`, `Float`, `String`, `Bool`, `Unit`, `Option`, `Result`, `List`, `Map`, or a user type. */
  readonly name: string
  readonly args: ReadonlyArray<TypeExpr>
  readonly pos: Pos
}

/** Types as the checker understands them. */
export type Type =
  | { readonly kind: "Int" }
  | { readonly kind: "Float" }
  | { readonly kind: "String" }
  | { readonly kind: "Bool" }
  | { readonly kind: "Unit" }
  | { readonly kind: "Option"; readonly elem: Type }
  | { readonly kind: "Result"; readonly ok: Type; readonly err: Type }
  | { readonly kind: "List"; readonly elem: Type }
  | { readonly kind: "Map"; readonly key: Type; readonly value: Type }
  | { readonly kind: "Record"; readonly name: string }
  | { readonly kind: "Enum"; readonly name: string }
  | { readonly kind: "Fn"; readonly params: ReadonlyArray<Type>; readonly ret: Type }
  | { readonly kind: "ActorId" }
  /** a type variable still open during inference (e.g. the element type of `[]`, `None`) */
  | { readonly kind: "Var"; readonly id: number }
  /** the type of an expression that already produced a diagnostic: compatible with everything */
  | { readonly kind: "Error" }

// ---------------------------------------------------------------------------
// declarations

export interface Program {
  readonly file: string
  readonly module: string | undefined
  readonly items: ReadonlyArray<Item>
}

export type Item = FnDecl | RecordDecl | EnumDecl

export interface Param {
  readonly name: string
  readonly type: TypeExpr
  readonly pos: Pos
}

export interface CapRef {
  /** as written: a canonical name, an alias, or `fs` */
  readonly name: string
  readonly pos: Pos
}

export interface FnDecl {
  readonly kind: "Fn"
  readonly name: string
  readonly params: ReadonlyArray<Param>
  /** absent ⇒ `Unit` */
  readonly ret: TypeExpr | undefined
  readonly caps: ReadonlyArray<CapRef>
  readonly requires: ReadonlyArray<Expr>
  readonly ensures: ReadonlyArray<Expr>
  readonly body: Block
  readonly exported: boolean
  readonly pos: Pos
  /** checker: the canonical capability set (aliases resolved, `fs` expanded) */
  capSet?: ReadonlyArray<CapabilityName>
}

export interface RecordDecl {
  readonly kind: "Record"
  readonly name: string
  readonly fields: ReadonlyArray<{ readonly name: string; readonly type: TypeExpr; readonly pos: Pos }>
  readonly pos: Pos
}

export interface EnumDecl {
  readonly kind: "Enum"
  readonly name: string
  readonly variants: ReadonlyArray<{ readonly name: string; readonly payload: TypeExpr | undefined; readonly pos: Pos }>
  readonly pos: Pos
}

// ---------------------------------------------------------------------------
// statements

export type Stmt = LetStmt | AssignStmt | ExprStmt | WhileStmt | ForStmt | ReturnStmt

export interface LetStmt {
  readonly kind: "Let"
  readonly name: string
  readonly mutable: boolean
  readonly type: TypeExpr | undefined
  readonly init: Expr
  readonly pos: Pos
}
export interface AssignStmt {
  readonly kind: "Assign"
  readonly name: string
  readonly value: Expr
  readonly pos: Pos
}
export interface ExprStmt {
  readonly kind: "ExprStmt"
  readonly expr: Expr
  readonly pos: Pos
}
export interface WhileStmt {
  readonly kind: "While"
  readonly cond: Expr
  readonly body: Block
  readonly pos: Pos
}
export interface ForStmt {
  readonly kind: "For"
  readonly name: string
  readonly iter: Expr
  readonly body: Block
  readonly pos: Pos
}
export interface ReturnStmt {
  readonly kind: "Return"
  readonly value: Expr | undefined
  readonly pos: Pos
}

// ---------------------------------------------------------------------------
// expressions

interface ExprBase {
  readonly pos: Pos
  /** checker: the inferred type (type variables resolved where inference could) */
  type?: Type
}

export interface Block extends ExprBase {
  readonly kind: "Block"
  /** value of the block = the last statement when it is an `ExprStmt`, else `Unit` */
  readonly stmts: ReadonlyArray<Stmt>
}

export interface IntLit extends ExprBase {
  readonly kind: "Int"
  /** canonical Int (see Value.ts): number when safe, bigint otherwise */
  readonly value: number | bigint
}
export interface FloatLit extends ExprBase {
  readonly kind: "Float"
  readonly value: number
}
export interface StrLit extends ExprBase {
  readonly kind: "Str"
  /** escapes already decoded */
  readonly value: string
}
export interface BoolLit extends ExprBase {
  readonly kind: "Bool"
  readonly value: boolean
}
/** `()` */
export interface UnitLit extends ExprBase {
  readonly kind: "Unit"
}

export type IdentRes =
  | { readonly kind: "local" }
  /** a top-level function used as a value */
  | { readonly kind: "fn"; readonly name: string }
  /** a unit enum variant written bare (`Red`) */
  | { readonly kind: "variant"; readonly enum: string; readonly variant: number }

export interface Ident extends ExprBase {
  readonly kind: "Ident"
  readonly name: string
  /** checker */
  res?: IdentRes
}

export type BinaryOp =
  | "||" | "&&" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "++" | "+" | "-" | "*" | "/" | "%"

export interface Binary extends ExprBase {
  readonly kind: "Binary"
  readonly op: BinaryOp
  readonly left: Expr
  readonly right: Expr
}
export interface Unary extends ExprBase {
  readonly kind: "Unary"
  readonly op: "-" | "!"
  readonly operand: Expr
}

export type CallTarget =
  | { readonly kind: "fn"; readonly name: string }
  | { readonly kind: "builtin"; readonly name: string }
  | { readonly kind: "cap"; readonly cap: CapabilityName }
  /** a payload enum variant used as a constructor: `Custom("x")` / `Color::Custom("x")` */
  | { readonly kind: "variant"; readonly enum: string; readonly variant: number }
  /** the callee is a value of function type (a local holding a function reference) */
  | { readonly kind: "indirect" }

/**
 * `callee(args)`. Capability calls are written like `net.fetch(url)` (callee is a `Field` on the
 * identifier `net`) or `random()`; the checker recognises them when no local shadows the name.
 */
export interface Call extends ExprBase {
  readonly kind: "Call"
  readonly callee: Expr
  readonly args: ReadonlyArray<Expr>
  /** checker */
  target?: CallTarget
}

export interface FieldAccess extends ExprBase {
  readonly kind: "Field"
  readonly target: Expr
  readonly name: string
  /** checker: the record type of `target` and the field's index in declaration order */
  record?: string
  index?: number
}

/** `Enum::Variant` (without a payload; with one it is the callee of a `Call`) */
export interface PathExpr extends ExprBase {
  readonly kind: "Path"
  readonly enumName: string
  readonly variant: string
  /** checker: the variant index */
  index?: number
}

export interface IfExpr extends ExprBase {
  readonly kind: "If"
  readonly cond: Expr
  readonly then: Block
  /** `else { … }` or `else if …` (ours) */
  readonly else: Block | IfExpr | undefined
}

export interface MatchArm {
  readonly pattern: Pattern
  readonly body: Expr
  readonly pos: Pos
}
export interface MatchExpr extends ExprBase {
  readonly kind: "Match"
  readonly scrutinee: Expr
  readonly arms: ReadonlyArray<MatchArm>
}

export interface RecordLit extends ExprBase {
  readonly kind: "RecordLit"
  readonly typeName: string
  readonly spread: Expr | undefined
  readonly fields: ReadonlyArray<{ readonly name: string; readonly value: Expr; readonly pos: Pos }>
}
export interface ListLit extends ExprBase {
  readonly kind: "List"
  readonly items: ReadonlyArray<Expr>
}
export interface MapLit extends ExprBase {
  readonly kind: "Map"
  readonly entries: ReadonlyArray<{ readonly key: Expr; readonly value: Expr }>
}
export interface WrapExpr extends ExprBase {
  readonly kind: "Some" | "Ok" | "Err"
  readonly value: Expr
}
export interface NoneLit extends ExprBase {
  readonly kind: "None"
}
export interface SpawnExpr extends ExprBase {
  readonly kind: "Spawn"
  readonly fn: string
}
export interface SendExpr extends ExprBase {
  readonly kind: "Send"
  readonly target: Expr
  readonly message: Expr
}
export interface ReceiveExpr extends ExprBase {
  readonly kind: "Receive"
}
export interface EmitExpr extends ExprBase {
  readonly kind: "Emit"
  readonly value: Expr
}

export type Expr =
  | Block
  | IntLit
  | FloatLit
  | StrLit
  | BoolLit
  | UnitLit
  | Ident
  | Binary
  | Unary
  | Call
  | FieldAccess
  | PathExpr
  | IfExpr
  | MatchExpr
  | RecordLit
  | ListLit
  | MapLit
  | WrapExpr
  | NoneLit
  | SpawnExpr
  | SendExpr
  | ReceiveExpr
  | EmitExpr

// ---------------------------------------------------------------------------
// patterns

export type Pattern =
  | { readonly kind: "PWild"; readonly pos: Pos }
  | { readonly kind: "PBind"; readonly name: string; readonly pos: Pos }
  | { readonly kind: "PInt"; readonly value: number | bigint; readonly pos: Pos }
  | { readonly kind: "PStr"; readonly value: string; readonly pos: Pos }
  | { readonly kind: "PBool"; readonly value: boolean; readonly pos: Pos }
  | { readonly kind: "PNone"; readonly pos: Pos }
  | { readonly kind: "PSome" | "POk" | "PErr"; readonly inner: Pattern; readonly pos: Pos }
  | PVariant

export interface PVariant {
  readonly kind: "PVariant"
  /** `Color` in `Color::Custom(p)`, absent for a bare `Custom(p)` */
  readonly enumName: string | undefined
  readonly name: string
  readonly inner: Pattern | undefined
  readonly pos: Pos
  /** checker */
  enum?: string
  index?: number
}
