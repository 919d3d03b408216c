/**
 * Checker types: constructors, printing and unification with a substitution for type variables.
 * The `Type` union itself lives in Ast.ts.
 */
import type { Type } from "./Ast.js"

export const tInt: Type = { kind: "Int" }
export const tFloat: Type = { kind: "Float" }
export const tString: Type = { kind: "String" }
export const tBool: Type = { kind: "Bool" }
export const tUnit: Type = { kind: "Unit" }
export const tActor: Type = { kind: "ActorId" }
export const tError: Type = { kind: "Error" }
export const tOption = (elem: Type): Type => ({ kind: "Option", elem })
export const tResult = (ok: Type, err: Type): Type => ({ kind: "Result", ok, err })
export const tList = (elem: Type): Type => ({ kind: "List", elem })
export const tMap = (key: Type, value: Type): Type => ({ kind: "Map", key, value })
export const tFn = (params: ReadonlyArray<Type>, ret: Type): Type => ({ kind: "Fn", params, ret })

/** `.ax` spelling of a type; open type variables print as `_` */
export const showType = (t: Type): string => {
  switch (t.kind) {
    case "Option":
      return `Option<${showType(t.elem)}>`
    case "Result":
      return `Result<${showType(t.ok)}, ${showType(t.err)}>`
    case "List":
      return `List<${showType(t.elem)}>`
    case "Map":
      return `Map<${showType(t.key)}, ${showType(t.value)}>`
    case "Record":
    case "Enum":
      return t.name
    case "Fn":
      return `Fn(${t.params.map(showType).join(", ")}) -> ${showType(t.ret)}`
    case "Var":
      return "_"
    case "Error":
      return "<error>"
    default:
      return t.kind
  }
}

/** Type variables and their bindings for one function body. */
export class Subst {
  private readonly bindings = new Map<number, Type>()
  private next = 0

  fresh(): Type {
    return { kind: "Var", id: this.next++ }
  }

  /** an independent copy (the checker keeps one per slice of a deeply nested function body) */
  clone(): Subst {
    const c = new Subst()
    for (const [id, t] of this.bindings) c.bindings.set(id, t)
    c.next = this.next
    return c
  }

  /** follow variable bindings at the top level only */
  shallow(t: Type): Type {
    let cur = t
    while (cur.kind === "Var") {
      const b = this.bindings.get(cur.id)
      if (b === undefined) return cur
      cur = b
    }
    return cur
  }

  /** resolve every bound variable inside `t` */
  resolve(t: Type): Type {
    const s = this.shallow(t)
    switch (s.kind) {
      case "Option":
        return tOption(this.resolve(s.elem))
      case "Result":
        return tResult(this.resolve(s.ok), this.resolve(s.err))
      case "List":
        return tList(this.resolve(s.elem))
      case "Map":
        return tMap(this.resolve(s.key), this.resolve(s.value))
      case "Fn":
        return tFn(s.params.map((p) => this.resolve(p)), this.resolve(s.ret))
      default:
        return s
    }
  }

  show(t: Type): string {
    return showType(this.resolve(t))
  }

  private occurs(id: number, t: Type): boolean {
    const s = this.shallow(t)
    switch (s.kind) {
      case "Var":
        return s.id === id
      case "Option":
      case "List":
        return this.occurs(id, s.elem)
      case "Result":
        return this.occurs(id, s.ok) || this.occurs(id, s.err)
      case "Map":
        return this.occurs(id, s.key) || this.occurs(id, s.value)
      case "Fn":
        return s.params.some((p) => this.occurs(id, p)) || this.occurs(id, s.ret)
      default:
        return false
    }
  }

  /** make `a` and `b` equal, binding variables; `Error` unifies with everything */
  unify(a: Type, b: Type): boolean {
    const x = this.shallow(a)
    const y = this.shallow(b)
    if (x === y) return true
    if (x.kind === "Error" || y.kind === "Error") return true
    if (x.kind === "Var") {
      if (y.kind === "Var" && y.id === x.id) return true
      if (this.occurs(x.id, y)) return false
      this.bindings.set(x.id, y)
      return true
    }
    if (y.kind === "Var") return this.unify(y, x)
    switch (x.kind) {
      case "Option":
        return y.kind === "Option" && this.unify(x.elem, y.elem)
      case "List":
        return y.kind === "List" && this.unify(x.elem, y.elem)
      case "Result":
        return y.kind === "Result" && this.unify(x.ok, y.ok) && this.unify(x.err, y.err)
      case "Map":
        return y.kind === "Map" && this.unify(x.key, y.key) && this.unify(x.value, y.value)
      case "Record":
      case "Enum":
        return y.kind === x.kind && y.name === x.name
      case "Fn":
        return y.kind === "Fn" && y.params.length === x.params.length &&
          x.params.every((p, i) => this.unify(p, y.params[i])) && this.unify(x.ret, y.ret)
      default:
        return x.kind === y.kind
    }
  }

  /** true when `t` (resolved) still contains an `Error` */
  hasError(t: Type): boolean {
    const s = this.shallow(t)
    switch (s.kind) {
      case "Error":
        return true
      case "Option":
      case "List":
        return this.hasError(s.elem)
      case "Result":
        return this.hasError(s.ok) || this.hasError(s.err)
      case "Map":
        return this.hasError(s.key) || this.hasError(s.value)
      case "Fn":
        return s.params.some((p) => this.hasError(p)) || this.hasError(s.ret)
      default:
        return false
    }
  }

  /** replace generic placeholders (variables with negative ids) by fresh variables */
  instantiate(t: Type, map: Map<number, Type> = new Map()): Type {
    switch (t.kind) {
      case "Var": {
        if (t.id >= 0) return t
        let v = map.get(t.id)
        if (v === undefined) {
          v = this.fresh()
          map.set(t.id, v)
        }
        return v
      }
      case "Option":
        return tOption(this.instantiate(t.elem, map))
      case "Result":
        return tResult(this.instantiate(t.ok, map), this.instantiate(t.err, map))
      case "List":
        return tList(this.instantiate(t.elem, map))
      case "Map":
        return tMap(this.instantiate(t.key, map), this.instantiate(t.value, map))
      case "Fn":
        return tFn(t.params.map((p) => this.instantiate(p, map)), this.instantiate(t.ret, map))
      default:
        return t
    }
  }
}
