/**
 * Programs nested N levels deep in every form of true nesting the language has, for
 * test/Nesting.test.ts. Each form is `head + open.repeat(n) + core + close.repeat(n) + tail`, with
 * the value `main` prints and where the parse stops once the nesting bound is passed. Each `open`
 * opens `offsets.length` levels, at those offsets (0-based) in it.
 */
export interface NestingForm {
  readonly name: string
  /** text before the first `open` (its last line is the line the nesting is on) */
  readonly head: string
  readonly open: string
  readonly core: string
  readonly close: string
  readonly tail: string
  /**
   * nesting levels already open where the first `open` starts (the function body is one), plus the
   * level a unit opens inside its own for a moment (a match arm's pattern)
   */
  readonly base: number
  /** levels `core` itself opens (a type or a pattern: one) */
  readonly inner?: number
  /** offsets, in `open`, of the tokens that open a level (most forms: one); the first past the bound is refused */
  readonly offsets: ReadonlyArray<number>
  /** what `boruna run` prints for `n` levels */
  readonly value: (n: number) => string
}

const one = () => "1"

export const FORMS: ReadonlyArray<NestingForm> = [
  { name: "blocks", head: "fn main() -> Int {\n  ", open: "{ ", core: "1", close: " }", tail: "\n}\n", base: 1, offsets: [0], value: one },
  {
    name: "calls", head: "fn f(x: Int) -> Int { x + 1 }\nfn main() -> Int {\n  ", open: "f(", core: "0", close: ")", tail: "\n}\n",
    base: 1, offsets: [1], value: (n) => String(n)
  },
  { name: "parentheses", head: "fn main() -> Int {\n  ", open: "(1 + ", core: "1", close: ")", tail: "\n}\n", base: 1, offsets: [0], value: (n) => String(n + 1) },
  {
    name: "if bodies", head: "fn main() -> Int {\n  ", open: "if true { ", core: "1", close: " } else { 0 }", tail: "\n}\n",
    base: 1, offsets: [0], value: one
  },
  {
    name: "else bodies", head: "fn main() -> Int {\n  ", open: "if false { 0 } else { ", core: "1", close: " }", tail: "\n}\n",
    base: 1, offsets: [0], value: one
  },
  {
    name: "if conditions", head: "fn main() -> Bool {\n  ", open: "if ", core: "true", close: " { true } else { false }", tail: "\n}\n",
    base: 1, offsets: [0], value: () => "true"
  },
  {
    name: "match arms", head: "fn main() -> Int {\n  ", open: "match 1 { 0 => 0, _ => ", core: "1", close: " }", tail: "\n}\n",
    base: 2, offsets: [10], value: one
  },
  {
    name: "while bodies", head: "fn main() -> Int {\n  let mut i = 0\n  ", open: "while i < 1 { ", core: "i = i + 1", close: " }", tail: "\n  i\n}\n",
    base: 1, offsets: [12], value: one
  },
  {
    name: "for bodies", head: "fn main() -> Int {\n  let mut i = 0\n  ", open: "for x in [1] { ", core: "i = i + x", close: " }", tail: "\n  i\n}\n",
    base: 1, offsets: [9], value: one
  },
  { name: "list literals", head: "fn main() -> Int {\n  list_len(", open: "[", core: "1", close: "]", tail: ")\n}\n", base: 2, offsets: [0], value: one },
  {
    name: "map literals", head: "fn main() -> Int {\n  let m = ", open: "{1: ", core: "1", close: "}", tail: "\n  __builtin_map_len(m)\n}\n",
    base: 1, offsets: [0], value: one
  },
  {
    name: "record literals", head: "enum L { Nil, Cons(Box) }\ntype Box { v: Int, next: L }\nfn main() -> Int {\n  let l = ", open: "L::Cons(Box { v: 1, next: ",
    core: "L::Nil", close: " })", tail: "\n  1\n}\n", base: 1, offsets: [7, 12], value: one
  },
  {
    name: "Some", head: "fn main() -> Bool {\n  let x = ", open: "Some(", core: "1", close: ")", tail: "\n  true\n}\n",
    base: 1, offsets: [0], value: () => "true"
  },
  { name: "unary minus", head: "fn main() -> Int {\n  ", open: "- ", core: "1", close: "", tail: "\n}\n", base: 1, offsets: [0], value: (n) => (n % 2 === 0 ? "1" : "-1") },
  { name: "unary not", head: "fn main() -> Bool {\n  ", open: "!", core: "true", close: "", tail: "\n}\n", base: 1, offsets: [0], value: (n) => String(n % 2 === 0) },
  {
    name: "patterns", head: "enum L { Nil, Cons(L) }\nfn main() -> Int {\n  let v = L::Nil\n  match v {\n    ", open: "Cons(", core: "_", close: ")",
    tail: " => 1,\n    _ => 0\n  }\n}\n", base: 2, inner: 1, offsets: [0], value: () => "0"
  },
  {
    name: "generic types", head: "fn main() -> Int {\n  let x: ", open: "List<", core: "Int", close: ">", tail: " = []\n  list_len(x)\n}\n",
    base: 1, inner: 1, offsets: [0], value: () => "0"
  },
  {
    name: "function types", head: "fn g(h: ", open: "Fn(", core: "Int", close: ") -> Int", tail: ") -> Int { 0 }\nfn main() -> Int { 0 }\n",
    base: 0, inner: 1, offsets: [0], value: () => "0"
  }
]

/** the form with `open` repeated `n` times */
export const source = (f: NestingForm, n: number): string => f.head + f.open.repeat(n) + f.core + f.close.repeat(n) + f.tail

/** `open` repetitions of the deepest program the bound `maxDepth` allows */
export const deepestUnits = (f: NestingForm, maxDepth: number): number => Math.floor((maxDepth - f.base - (f.inner ?? 0)) / f.offsets.length)

/** `open` repetitions that pass the bound `maxDepth` at an `open` (refused at `boundPosition`) */
export const pastBoundUnits = (f: NestingForm, maxDepth: number): number => Math.floor((maxDepth - f.base) / f.offsets.length) + 1

/** the form nested (at least) `levels` levels deep */
export const nested = (f: NestingForm, levels: number): string => source(f, Math.ceil(levels / f.offsets.length))

/** line:col (1-based) of the token that opens level `maxDepth + 1`, where the parse refuses the program */
export const boundPosition = (f: NestingForm, maxDepth: number): { readonly line: number; readonly col: number } => {
  const lines = f.head.split("\n")
  const m = maxDepth - f.base // levels opened by `open`s before the refused one
  const unit = Math.floor(m / f.offsets.length)
  return { line: lines.length, col: lines[lines.length - 1].length + unit * f.open.length + f.offsets[m % f.offsets.length] + 1 }
}
