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
 * - `List`   → a frozen-by-convention JS array, or a `ListV` persistent vector (what `list_push`
 *              and list `++` build); both are Lists everywhere (`isList`, `listItems`).
 * - `Map`    → `MapV`, a persistent hash trie (keys String or Int, iterated in sorted key order).
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

// ---------------------------------------------------------------------------
// the hash trie behind `MapV`

/** bits per level of the list's vector trie */
const BITS = 5
const WIDTH = 1 << BITS
const MASK = WIDTH - 1
/**
 * bits per level of the map's hash trie: 16-way nodes copy at most 32 slots per level on an update
 * (against 64 for 32-way), which halved the cost of building a 100,000-Int-key map by `map_set`;
 * lookups cost one level more and stayed as fast as Effect's `HashMap` (bench/vm.ts, `map_get`)
 */
const HBITS = 4
const HMASK = (1 << HBITS) - 1

/**
 * A trie node. `BNode` (bitmap-indexed): bit `f` of `bitmap` is set when the 4-bit hash fragment
 * `f` of this level is present, and `arr` holds one (key, value) pair per set bit in bit order — a
 * key of `undefined` marks a sub-node in the value slot. `CNode` (collision): keys whose full
 * 32-bit hashes are all `hash`, as (key, value) pairs. Nodes are never changed once built.
 */
class BNode {
  constructor(
    readonly bitmap: number,
    readonly arr: Array<unknown>
  ) {}
}
class CNode {
  constructor(
    readonly hash: number,
    readonly arr: Array<unknown>
  ) {}
}
type HNode = BNode | CNode
const EMPTY_NODE: HNode = new BNode(0, [])
/** whether the last `hSet` added a key (a module-level flag: no result object per update) */
let added = false

const popcount = (x: number): number => {
  x -= (x >>> 1) & 0x55555555
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333)
  x = (x + (x >>> 4)) & 0x0f0f0f0f
  return Math.imul(x, 0x01010101) >>> 24
}

/** MurmurHash3's 32-bit finaliser: every input bit reaches every output bit. */
const fmix = (h: number): number => {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return h ^ (h >>> 16)
}

/**
 * The 32-bit hash a `MapV` files key `k` under (exported for tests: they look for colliding keys).
 * An Int in ±2³¹ is its own hash (so a run of consecutive keys fills whole trie nodes, and a lookup
 * costs no arithmetic); a larger one folds its high 32 bits in. A String's is FNV-1a over its UTF-16
 * units with MurmurHash3's finaliser. Hashes only place keys in the trie: equality is `===`.
 */
export const hashKey = (k: MapKey): number => (typeof k === "number" ? ((k | 0) === k ? k : bigIntHash(k)) : otherHash(k))

const bigIntHash = (k: number): number => (k | 0) ^ Math.imul(Math.floor(k / 4294967296) | 0, 0x9e3779b1)

const otherHash = (k: string | bigint): number => {
  if (typeof k === "string") {
    let h = 0x811c9dc5
    for (let i = 0; i < k.length; i++) h = Math.imul(h ^ k.charCodeAt(i), 0x01000193)
    return fmix(h)
  }
  return fmix(Number(BigInt.asIntN(32, k)) ^ Math.imul(Number(BigInt.asIntN(32, k >> 32n)), 0x9e3779b1))
}

const hGet = (node: HNode, h: number, k: MapKey): Value | undefined => {
  for (let shift = 0; ; shift += HBITS) {
    if (node instanceof CNode) {
      if (node.hash !== h) return undefined
      const arr = node.arr
      for (let i = 0; i < arr.length; i += 2) if (arr[i] === k) return arr[i + 1] as Value
      return undefined
    }
    const bit = 1 << ((h >>> shift) & HMASK)
    const bitmap = node.bitmap
    if ((bitmap & bit) === 0) return undefined
    const i = 2 * popcount(bitmap & (bit - 1))
    const key = node.arr[i]
    if (key === undefined) node = node.arr[i + 1] as HNode
    else return key === k ? (node.arr[i + 1] as Value) : undefined
  }
}

/** A copy of `arr` with `x`, `y` inserted at `i`. */
const insert2 = (arr: Array<unknown>, i: number, x: unknown, y: unknown): Array<unknown> => {
  const n = arr.length
  const out = new Array<unknown>(n + 2)
  for (let j = 0; j < i; j++) out[j] = arr[j]
  out[i] = x
  out[i + 1] = y
  for (let j = i; j < n; j++) out[j + 2] = arr[j]
  return out
}

/** A copy of `arr` without the pair at `i`. */
const remove2 = (arr: Array<unknown>, i: number): Array<unknown> => {
  const n = arr.length
  const out = new Array<unknown>(n - 2)
  for (let j = 0; j < i; j++) out[j] = arr[j]
  for (let j = i + 2; j < n; j++) out[j - 2] = arr[j]
  return out
}

/** A copy of `arr` with slot `i` replaced. */
const update1 = (arr: Array<unknown>, i: number, x: unknown): Array<unknown> => {
  const out = arr.slice()
  out[i] = x
  return out
}

/** The node (at `shift`) holding two entries with different keys. */
const pair = (shift: number, h1: number, k1: MapKey, v1: Value, h2: number, k2: MapKey, v2: Value): HNode => {
  if (h1 === h2) return new CNode(h1, [k1, v1, k2, v2])
  const f1 = (h1 >>> shift) & HMASK
  const f2 = (h2 >>> shift) & HMASK
  if (f1 === f2) return new BNode(1 << f1, [undefined, pair(shift + HBITS, h1, k1, v1, h2, k2, v2)])
  return f1 < f2 ? new BNode((1 << f1) | (1 << f2), [k1, v1, k2, v2]) : new BNode((1 << f1) | (1 << f2), [k2, v2, k1, v1])
}

const hSet = (node: HNode, shift: number, h: number, k: MapKey, v: Value): HNode => {
  if (node instanceof CNode) {
    if (node.hash === h) {
      const arr = node.arr
      for (let i = 0; i < arr.length; i += 2) {
        if (arr[i] === k) return arr[i + 1] === v ? node : new CNode(h, update1(arr, i + 1, v))
      }
      added = true
      return new CNode(h, insert2(arr, arr.length, k, v))
    }
    // a different hash: a bitmap node at this level holding the collision node, then the new key
    return hSet(new BNode(1 << ((node.hash >>> shift) & HMASK), [undefined, node]), shift, h, k, v)
  }
  const bit = 1 << ((h >>> shift) & HMASK)
  const bitmap = node.bitmap
  const arr = node.arr
  const i = 2 * popcount(bitmap & (bit - 1))
  if ((bitmap & bit) === 0) {
    added = true
    return new BNode(bitmap | bit, insert2(arr, i, k, v))
  }
  const key = arr[i]
  if (key === undefined) {
    const child = arr[i + 1] as HNode
    const c = hSet(child, shift + HBITS, h, k, v)
    return c === child ? node : new BNode(bitmap, update1(arr, i + 1, c))
  }
  if (key === k) return arr[i + 1] === v ? node : new BNode(bitmap, update1(arr, i + 1, v))
  added = true
  const sub = pair(shift + HBITS, hashKey(key as MapKey), key as MapKey, arr[i + 1] as Value, h, k, v)
  const out = arr.slice()
  out[i] = undefined
  out[i + 1] = sub
  return new BNode(bitmap, out)
}

/** `node` without `k`: the same node when `k` is absent, `undefined` when nothing is left. */
const hRemove = (node: HNode, shift: number, h: number, k: MapKey): HNode | undefined => {
  if (node instanceof CNode) {
    if (node.hash !== h) return node
    const arr = node.arr
    for (let i = 0; i < arr.length; i += 2) {
      if (arr[i] === k) return arr.length === 2 ? undefined : new CNode(h, remove2(arr, i))
    }
    return node
  }
  const bit = 1 << ((h >>> shift) & HMASK)
  const bitmap = node.bitmap
  if ((bitmap & bit) === 0) return node
  const arr = node.arr
  const i = 2 * popcount(bitmap & (bit - 1))
  const key = arr[i]
  if (key === undefined) {
    const child = arr[i + 1] as HNode
    const c = hRemove(child, shift + HBITS, h, k)
    if (c === child) return node
    if (c === undefined) return bitmap === bit ? undefined : new BNode(bitmap & ~bit, remove2(arr, i))
    // a child left with one entry and no sub-node moves up into this node (keeps the trie shallow)
    if (c instanceof BNode && c.arr.length === 2 && c.arr[0] !== undefined) {
      const out = arr.slice()
      out[i] = c.arr[0]
      out[i + 1] = c.arr[1]
      return new BNode(bitmap, out)
    }
    return new BNode(bitmap, update1(arr, i + 1, c))
  }
  if (key !== k) return node
  return bitmap === bit ? undefined : new BNode(bitmap & ~bit, remove2(arr, i))
}

/**
 * A `Map` value: a persistent hash array mapped trie (Bagwell's HAMT, the structure of Clojure's
 * and Scala's hash maps, and of Effect's `HashMap`), specialised to the two key types `.ax` allows:
 * keys are compared with `===` (Ints are canonical, so that is value equality for both `number`
 * and `bigint`) and hashed by the Int itself (folded to 32 bits) or by a 32-bit hash of the String, with
 * no `Equal`/`Hash` protocol dispatch, no `Option` per lookup and no closure per update. `set`
 * and `remove` copy only the path to the key (O(log16 n) nodes) and share the rest with the map
 * they came from. Iteration, printing and the JSON form use the canonical key order (`keys()`),
 * computed once per map value.
 */
export class MapV {
  readonly _tag = "Map" as const
  private sortedKeys: ReadonlyArray<MapKey> | undefined
  private constructor(
    private readonly root: HNode,
    readonly size: number
  ) {}
  static readonly empty: MapV = new MapV(EMPTY_NODE, 0)
  /** A map of these pairs (a later pair wins over an earlier one with the same key). */
  static of(pairs: Iterable<readonly [MapKey, Value]>): MapV {
    let m = MapV.empty
    for (const [k, v] of pairs) m = m.set(k, v)
    return m
  }
  /** Keys in the canonical order: Ints numerically, then Strings by UTF-8 byte order. */
  keys(): ReadonlyArray<MapKey> {
    if (this.sortedKeys === undefined) {
      const ks: Array<MapKey> = []
      this.forEach((_, k) => ks.push(k))
      this.sortedKeys = ks.sort(compareKeys)
    }
    return this.sortedKeys
  }
  get(k: MapKey): Value | undefined {
    return hGet(this.root, hashKey(k), k)
  }
  has(k: MapKey): boolean {
    return hGet(this.root, hashKey(k), k) !== undefined
  }
  set(k: MapKey, v: Value): MapV {
    added = false
    const root = hSet(this.root, 0, hashKey(k), k, v)
    return root === this.root ? this : new MapV(root, added ? this.size + 1 : this.size)
  }
  remove(k: MapKey): MapV {
    const root = hRemove(this.root, 0, hashKey(k), k)
    if (root === this.root) return this
    return new MapV(root ?? EMPTY_NODE, this.size - 1)
  }
  /** Every entry, in no particular order (use `keys()` for the canonical order). */
  forEach(f: (v: Value, k: MapKey) => void): void {
    const work: Array<HNode> = [this.root]
    while (work.length > 0) {
      const arr = work.pop()!.arr
      for (let i = 0; i < arr.length; i += 2) {
        const k = arr[i]
        if (k === undefined) work.push(arr[i + 1] as HNode)
        else f(arr[i + 1] as Value, k as MapKey)
      }
    }
  }
}

// ---------------------------------------------------------------------------
// persistent lists

type Node = Array<unknown>

/**
 * A `List` value built by `list_push` / `list_concat` / `++` / `list_tail` / `list_reverse`: a
 * persistent vector (a 32-way trie of full 32-element leaves plus a tail, the structure of
 * Clojure's and Scala's vectors), so `list_get` and `list_push` cost O(log32 n) and a push never
 * copies the list it came from.
 *
 * The tail is an append buffer shared by the versions that were pushed in sequence: a version
 * whose `tailLen` equals the buffer's length pushes in place (the versions before it only ever read
 * their own first `tailLen` slots, so they cannot see the new slot), any other version copies its
 * ≤ 32 tail slots first. Building a list in a loop is therefore one array push plus one small
 * object per element. A full tail becomes a leaf of the trie and is never written again.
 *
 * A `ListV` is a window onto its vector: the `length` elements from index `start`, read backwards
 * when `rev` is set. `list_tail` moves the window (O(1)), `list_reverse` flips `rev` (O(1)); the
 * vector is rebuilt only once more than half of it lies outside the window (so a list drained with
 * `xs = list_tail(xs)` costs O(1) amortised per step and never holds more than twice what it shows)
 * or when a list whose window does not end at the vector's end (a reversed list, say) is pushed to:
 * a push appends to the vector's end. `ListV.copied` counts every element a `ListV` copies (tests and the bench read it).
 *
 * A plain JS array is a List too (list literals, builtin results, handler results): every
 * consumer goes through `isList` / `listItems` / `listLength` / `listAt`.
 */
export class ListV {
  readonly _tag = "List" as const
  /** elements copied by `from`, `toArray` and the rebuilds of `tail1` (work accounting for tests and the bench) */
  static copied = 0
  constructor(
    readonly length: number,
    private readonly shift: number,
    private readonly root: Node,
    private readonly tail: Array<Value>,
    private readonly tailLen: number,
    /** elements in the vector (trie + tail); the window is [start, start + length) of them */
    private readonly count: number = length,
    private readonly start: number = 0,
    private readonly rev: boolean = false
  ) {}

  static readonly empty: ListV = new ListV(0, BITS, [], [], 0)

  static from(xs: ReadonlyArray<Value>): ListV {
    let l = ListV.empty
    const n = xs.length
    ListV.copied += n
    let i = 0
    // whole leaves straight into the trie (the last ≤ 32 elements stay in the tail)
    while (n - i > WIDTH) {
      l = l.withLeaf(xs.slice(i, i + WIDTH))
      i += WIDTH
    }
    const tail = xs.slice(i)
    return new ListV(n, l.shift, l.root, tail, tail.length)
  }

  /** A list of the trie of `this` plus `leaf` (32 elements), with an empty tail (only for a window reaching the vector's end). */
  private withLeaf(leaf: Array<Value>): ListV {
    const inTrie = this.count - this.tailLen
    let root: Node
    let shift = this.shift
    if (inTrie === 1 << (shift + BITS)) {
      root = [this.root, newPath(shift, leaf)]
      shift += BITS
    } else {
      root = pushLeaf(this.root, shift, inTrie, leaf)
    }
    const count = inTrie + WIDTH
    return new ListV(count - this.start, shift, root, [], 0, count, this.start)
  }

  /** Element `i` of the vector (0 ≤ i < count). */
  private at(i: number): Value {
    const off = this.count - this.tailLen
    if (i >= off) return this.tail[i - off]
    let node = this.root
    for (let level = this.shift; level > 0; level -= BITS) node = node[(i >>> level) & MASK] as Node
    return node[i & MASK] as Value
  }

  /** The vector index of element `i` of the list. */
  private index(i: number): number {
    return this.rev ? this.start + this.length - 1 - i : this.start + i
  }

  get(i: number): Value {
    return this.at(this.rev ? this.start + this.length - 1 - i : this.start + i)
  }

  push(x: Value): ListV {
    // a push appends to the vector: a window that does not end at the vector's end is rebuilt first
    if (this.rev || this.start + this.length !== this.count) return ListV.from(this.toArray()).push(x)
    const t = this.tailLen
    if (t < WIDTH) {
      let tail = this.tail
      if (tail.length !== t) tail = tail.slice(0, t)
      tail.push(x)
      return new ListV(this.length + 1, this.shift, this.root, tail, t + 1, this.count + 1, this.start)
    }
    const l = this.withLeaf(this.tail)
    return new ListV(l.length + 1, l.shift, l.root, [x], 1, l.count + 1, l.start)
  }

  set(i: number, x: Value): ListV {
    const j = this.index(i)
    const off = this.count - this.tailLen
    if (j >= off) {
      const tail = this.tail.slice(0, this.tailLen)
      tail[j - off] = x
      return new ListV(this.length, this.shift, this.root, tail, this.tailLen, this.count, this.start, this.rev)
    }
    return new ListV(this.length, this.shift, setIn(this.root, this.shift, j, x), this.tail, this.tailLen, this.count, this.start, this.rev)
  }

  /** The list without its first element (the empty list stays empty): O(1) amortised, shares the vector. */
  tail1(): ListV {
    if (this.length === 0) return this
    const length = this.length - 1
    const start = this.rev ? this.start : this.start + 1
    // more than half of the vector outside the window: rebuild, so a drained list frees its prefix
    if (this.count - length > WIDTH && this.count - length > length) {
      const out = new Array<Value>(length)
      for (let i = 0; i < length; i++) out[i] = this.get(i + 1)
      ListV.copied += length
      return ListV.from(out)
    }
    return new ListV(length, this.shift, this.root, this.tail, this.tailLen, this.count, start, this.rev)
  }

  /** The list backwards: O(1), shares the vector. */
  reverse(): ListV {
    return new ListV(this.length, this.shift, this.root, this.tail, this.tailLen, this.count, this.start, !this.rev)
  }

  /** The elements as a fresh array. */
  toArray(): Array<Value> {
    const n = this.length
    ListV.copied += n
    const out = new Array<Value>(n)
    if (this.rev || this.start !== 0 || n !== this.count) {
      for (let i = 0; i < n; i++) out[i] = this.get(i)
      return out
    }
    const off = n - this.tailLen
    let k = 0
    for (let i = 0; i < off; i += WIDTH) {
      let node = this.root
      for (let level = this.shift; level > 0; level -= BITS) node = node[(i >>> level) & MASK] as Node
      for (let j = 0; j < WIDTH; j++) out[k++] = node[j] as Value
    }
    for (let j = 0; j < this.tailLen; j++) out[k++] = this.tail[j]
    return out
  }
}

const newPath = (level: number, leaf: Node): Node => (level === 0 ? leaf : [newPath(level - BITS, leaf)])

const pushLeaf = (node: Node, level: number, index: number, leaf: Node): Node => {
  const copy = node.slice()
  const sub = (index >>> level) & MASK
  if (level === BITS) copy[sub] = leaf
  else {
    const child = node[sub] as Node | undefined
    copy[sub] = child === undefined ? newPath(level - BITS, leaf) : pushLeaf(child, level - BITS, index, leaf)
  }
  return copy
}

const setIn = (node: Node, level: number, i: number, x: Value): Node => {
  const copy = node.slice()
  if (level === 0) copy[i & MASK] = x
  else {
    const sub = (i >>> level) & MASK
    copy[sub] = setIn(node[sub] as Node, level - BITS, i, x)
  }
  return copy
}

/** A List value in either representation. */
export type ListValue = ReadonlyArray<Value> | ListV

export const isList = (v: Value): v is ListValue => Array.isArray(v) || v instanceof ListV

/** The elements of a List (the array itself for an array; a fresh copy for a `ListV`). */
export const listItems = (l: ListValue): ReadonlyArray<Value> => (l instanceof ListV ? l.toArray() : (l as ReadonlyArray<Value>))

export const listLength = (l: ListValue): number => l.length

/** Element `i` (0 ≤ i < length, unchecked). */
export const listAt = (l: ListValue, i: number): Value => (l instanceof ListV ? l.get(i) : (l as ReadonlyArray<Value>)[i])

/** `l` with `x` appended: O(log32 n), never a copy of `l`. */
export const listPush = (l: ListValue, x: Value): ListV => (l instanceof ListV ? l : ListV.from(l as ReadonlyArray<Value>)).push(x)

/** `l` without its first element (`[]` stays `[]`): O(1) amortised for a `ListV`, one copy to a `ListV` for an array. */
export const listTail = (l: ListValue): ListValue =>
  l.length === 0 ? l : (l instanceof ListV ? l : ListV.from(l as ReadonlyArray<Value>)).tail1()

/** `l` backwards: O(1) for a `ListV`, one copy to a `ListV` for an array. */
export const listReverse = (l: ListValue): ListValue =>
  l.length <= 1 ? l : (l instanceof ListV ? l : ListV.from(l as ReadonlyArray<Value>)).reverse()

/** `a` followed by `b`. */
export const listConcat = (a: ListValue, b: ListValue): ListValue => {
  if (b.length === 0) return a
  if (a.length === 0) return b
  let l = a instanceof ListV ? a : ListV.from(a as ReadonlyArray<Value>)
  const n = b.length
  for (let i = 0; i < n; i++) l = l.push(listAt(b, i))
  return l
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
  | ListV
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

export const mkMap = (pairs: Iterable<readonly [MapKey, Value]>): MapV => MapV.of(pairs)

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

type Boxed = Exclude<Value, ReadonlyArray<Value> | number | bigint | string | boolean>

/**
 * Push the values directly inside `v` onto `out` (elements, fields, payload, map values; map
 * keys are scalars and not pushed). The traversals below are loops over an explicit work stack
 * built with this, never JS recursion: a value nested 100,000 levels deep (a long list built as a
 * recursive enum) is walked like a flat one.
 */
export const pushChildren = (v: Value, out: Array<Value>): void => {
  if (typeof v !== "object") return
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) out.push(v[i])
    return
  }
  const o = v as Boxed
  switch (o._tag) {
    case "Some":
    case "Ok":
    case "Err":
      out.push(o.value)
      return
    case "Record":
      for (let i = 0; i < o.fields.length; i++) out.push(o.fields[i])
      return
    case "Enum":
      if (o.payload !== undefined) out.push(o.payload)
      return
    case "Map":
      o.forEach((x) => out.push(x))
      return
    case "List":
      for (let i = 0; i < o.length; i++) out.push(o.get(i))
      return
  }
}

/** Whether a Float NaN is reachable from `v` (then `v` is not equal even to itself). */
const containsNaN = (v: Value): boolean => {
  const work: Array<Value> = [v]
  while (work.length > 0) {
    const x = work.pop()!
    if (typeof x !== "object") continue
    if (x instanceof AxFloat) {
      if (Number.isNaN(x.value)) return true
      continue
    }
    pushChildren(x, work)
  }
  return false
}

/** Structural equality (IEEE for Floats: a NaN anywhere makes a value unequal to everything). */
export const equals = (a: Value, b: Value): boolean => {
  // pairs still to compare, flattened: [x0, y0, x1, y1, …]
  const work: Array<Value> = [a, b]
  while (work.length > 0) {
    const y = work.pop()!
    const x = work.pop()!
    if (x === y) {
      if (typeof x === "object" && containsNaN(x)) return false
      continue
    }
    if (typeof x !== "object" || typeof y !== "object" || x === null || y === null) return false
    const xl = isList(x)
    if (xl || isList(y)) {
      if (!xl || !isList(y)) return false
      const n = x.length
      if (n !== y.length) return false
      for (let i = n - 1; i >= 0; i--) work.push(listAt(x, i), listAt(y, i))
      continue
    }
    const p = x as Boxed
    const q = y as Boxed
    if (p._tag !== q._tag) return false
    switch (p._tag) {
      case "Float":
        if (p.value !== (q as AxFloat).value) return false
        break
      case "Some":
      case "Ok":
      case "Err":
        work.push(p.value, (q as SomeV).value)
        break
      case "Record": {
        const r = q as RecordV
        if (p.type !== r.type || p.fields.length !== r.fields.length) return false
        for (let i = p.fields.length - 1; i >= 0; i--) work.push(p.fields[i], r.fields[i])
        break
      }
      case "Enum": {
        const e = q as EnumV
        if (p.type !== e.type || p.variant !== e.variant) return false
        if (p.payload === undefined || e.payload === undefined) {
          if (p.payload !== e.payload) return false
        } else work.push(p.payload, e.payload)
        break
      }
      case "Map": {
        const m = q as MapV
        if (p.size !== m.size) return false
        let missing = false
        p.forEach((v, k) => {
          const w = m.get(k)
          if (w === undefined) missing = true
          else work.push(v, w)
        })
        if (missing) return false
        break
      }
      case "ActorId":
        if (p.id !== (q as ActorIdV).id) return false
        break
      case "FnRef":
        if (p.index !== (q as FnRefV).index) return false
        break
      case "Unit":
      case "None":
        break
      default:
        return false
    }
  }
  return true
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
    if (isList(x)) {
      const n = x.length
      work.push(CLOSE_LIST)
      for (let k = n - 1; k >= 0; k--) {
        work.push(listAt(x, k))
        if (k > 0) work.push(COMMA)
      }
      out += "["
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
  const o = v as Boxed
  return o._tag === "Record" || o._tag === "Enum" ? o.type : o._tag
}

// ---------------------------------------------------------------------------
// size accounting for spans (`bytes_in` / `bytes_out`)

/** Sum of the UTF-8 bytes of every string reachable from `v` (map keys included). */
export const approxBytes = (v: Value): number => {
  let n = 0
  const work: Array<Value> = [v]
  while (work.length > 0) {
    const x = work.pop()!
    if (typeof x === "string") n += utf8Length(x)
    else if (x instanceof MapV) {
      x.forEach((y, k) => {
        if (typeof k === "string") n += utf8Length(k)
        work.push(y)
      })
    } else pushChildren(x, work)
  }
  return n
}

export const approxBytesAll = (vs: ReadonlyArray<Value>): number => {
  let n = 0
  for (const v of vs) n += approxBytes(v)
  return n
}
