/**
 * The `.ax` virtual machine: a stack machine over a verified `BytecodeProgram`.
 *
 * Pure code runs in one synchronous dispatch loop (`Machine.exec`: a `switch` over the flat code
 * array, locals and operands on one value stack per actor, call frames in typed arrays — no JS
 * recursion per `.ax` call, no Effect per opcode). At a `CAP` opcode the loop stops and hands a
 * request `{cap, args, site}` to the Effect driver (`run`), which performs `Gateway.call` and resumes
 * the same machine with the result.
 *
 * Actors: `spawn f` creates an actor running `f`; all actors (the entry function is actor 0) run
 * under a deterministic round-robin scheduler in spawn order, each for a slice of `SLICE` steps or
 * until it blocks on `receive`. Messages are delivered at once to the target's mailbox. The run
 * ends once actor 0 has returned and no other actor can make progress (each has returned or waits
 * in `receive` with an empty mailbox); their steps count against the step limit, so an actor that
 * never stops ends the run with `step_limit` (docs/language.md, "Actors and UI"). If actor 0 is
 * blocked and nothing can run, that is a deadlock (runtime error). An error in any actor fails the
 * whole run.
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { BUILTINS, type RuntimeErrorKind, typeFault, VmFault } from "./Builtins.js"
import { type BytecodeProgram, type FunctionDef, positionAt, Tag, verify, VerifyError } from "./Bytecode.js"
import { capabilityById, type CapabilityName } from "./Capability.js"
import type { CallSite, Event } from "./Event.js"
import { EventLog } from "./EventLog.js"
import { Gateway } from "./Gateway.js"
import {
  ActorIdV,
  AxFloat,
  compareStrings,
  EnumV,
  equals,
  ErrV,
  FnRefV,
  intFromBigInt,
  isList,
  listConcat,
  ListV,
  type MapKey,
  MapV,
  OkV,
  RecordV,
  SomeV,
  Unit,
  type Value
} from "./Value.js"

export type { RuntimeErrorKind } from "./Builtins.js"

/** A failed run: the error kind, a message, and where in the source it happened. */
export class VmError extends Data.TaggedError("VmError")<{
  readonly kind: RuntimeErrorKind
  readonly message: string
  readonly file: string
  readonly line: number
  readonly col: number
  readonly fn?: string
}> {}

export interface RunOptions {
  /** executed instructions before `step_limit` (default 10,000,000) */
  readonly maxSteps?: number
  /** call depth before `stack_overflow` (default 10,000) */
  readonly maxDepth?: number
  /** wall-clock milliseconds before `timeout` (default none; checked every 4096 steps) */
  readonly maxWallMs?: number
  /** entry function name (default: the program's entry, `main`) */
  readonly entry?: string
  /** called with the run's machine once it exists (`Vm.run`): a caller reads `stepCount` from it for progress */
  readonly onMachine?: (machine: Machine) => void
  /**
   * `Vm.run` only: the longest stretch, in milliseconds, that pure code (or a run of capability
   * calls that complete synchronously) holds the JS thread before the driver gives the event loop a
   * macrotask turn, so timers, sockets and signal handlers run during a long computation (default
   * `DEFAULT_TURN_MS`; `Infinity` never yields, for callers that need `Effect.runSync`).
   */
  readonly yieldMs?: number
}

export const DEFAULT_MAX_STEPS = 10_000_000
export const DEFAULT_MAX_DEPTH = 10_000
/** steps an actor runs before the scheduler moves to the next one (only once an actor was spawned) */
export const SLICE = 1000
/**
 * Default for `RunOptions.yieldMs`. SIGINT → exit 130 of `boruna run` on a pure loop took 26–137 ms
 * at 50 ms and 11 ms at 10 ms; at 25 ms, 28–82 ms under a load average of 12 on 2 cores (target:
 * within 100 ms). A turn itself (a `setImmediate` and a fiber resume) costs microseconds: what
 * once made turns cost ~10 % of a 3,000,000-iteration loop was V8 re-optimising the dispatch loop
 * after its first exits (see `R_CLOCK`). bench/vm.ts prints the current figure, warm and with one
 * fresh process per run.
 */
export const DEFAULT_TURN_MS = 25
/** steps between clock reads (wall-clock limit, event-loop turns): ~20–50 µs of pure code */
const WALL_EVERY = 4096
const MAXS = Number.MAX_SAFE_INTEGER
const MINS = -Number.MAX_SAFE_INTEGER

// ---------------------------------------------------------------------------
// loaded program (verified once, cached per program object)

interface Loaded {
  readonly program: BytecodeProgram
  readonly codes: ReadonlyArray<Int32Array>
  readonly arity: Int32Array
  readonly locals: Int32Array
  readonly maxStack: Int32Array
  readonly capMask: Int32Array
  readonly constants: ReadonlyArray<Value>
  /** per type index: field names (records) */
  readonly recordNames: ReadonlyArray<ReadonlyArray<string>>
  readonly typeNames: ReadonlyArray<string>
  /** per type index: variant names / payload flags (enums) */
  readonly variantNames: ReadonlyArray<ReadonlyArray<string>>
  readonly variantPayload: ReadonlyArray<ReadonlyArray<boolean>>
}

const loadedCache = new WeakMap<BytecodeProgram, Loaded>()

const load = (program: BytecodeProgram): Loaded => {
  const cached = loadedCache.get(program)
  if (cached !== undefined) return cached
  const maxStack = verify(program)
  const fns = program.functions
  const l: Loaded = {
    program,
    codes: fns.map((f) => Int32Array.from(f.code)),
    arity: Int32Array.from(fns.map((f) => f.arity)),
    locals: Int32Array.from(fns.map((f) => f.locals)),
    maxStack: Int32Array.from(maxStack),
    capMask: Int32Array.from(fns.map((f) => f.capabilities.reduce((m, c) => m | (1 << capId(c)), 0))),
    constants: program.constants,
    recordNames: program.types.map((t) => (t.kind === "record" ? t.fields : [])),
    typeNames: program.types.map((t) => t.name),
    variantNames: program.types.map((t) => (t.kind === "enum" ? t.variants.map((v) => v.name) : [])),
    variantPayload: program.types.map((t) => (t.kind === "enum" ? t.variants.map((v) => v.payload) : []))
  }
  loadedCache.set(program, l)
  return l
}

const capIds = new Map<string, number>()
const capId = (c: CapabilityName): number => {
  let id = capIds.get(c)
  if (id === undefined) {
    for (let i = 0; i < 32; i++) if (capabilityById(i)?.name === c) id = i
    if (id === undefined) throw new VerifyError("$.functions", `unknown capability ${c}`)
    capIds.set(c, id)
  }
  return id
}

// ---------------------------------------------------------------------------
// slow paths of the arithmetic and comparison opcodes

const isInt = (v: Value): v is number | bigint => typeof v === "number" || typeof v === "bigint"
const big = (v: number | bigint): bigint => (typeof v === "bigint" ? v : BigInt(v))

const overflow = (what: string): VmFault => new VmFault("integer_overflow", `integer overflow in ${what}`)

const intResult = (r: bigint, what: string): number | bigint => {
  const i = intFromBigInt(r)
  if (i === undefined) throw overflow(what)
  return i
}

const numericFault = (a: Value, b: Value): VmFault => typeFault("numeric operands of the same type", isInt(a) || a instanceof AxFloat ? b : a)

const addSlow = (a: Value, b: Value): Value => {
  if (isInt(a) && isInt(b)) return intResult(big(a) + big(b), "addition")
  if (a instanceof AxFloat && b instanceof AxFloat) return new AxFloat(a.value + b.value)
  if (typeof a === "string" && typeof b === "string") return a + b
  throw numericFault(a, b)
}
const subSlow = (a: Value, b: Value): Value => {
  if (isInt(a) && isInt(b)) return intResult(big(a) - big(b), "subtraction")
  if (a instanceof AxFloat && b instanceof AxFloat) return new AxFloat(a.value - b.value)
  throw numericFault(a, b)
}
const mulSlow = (a: Value, b: Value): Value => {
  if (isInt(a) && isInt(b)) return intResult(big(a) * big(b), "multiplication")
  if (a instanceof AxFloat && b instanceof AxFloat) return new AxFloat(a.value * b.value)
  throw numericFault(a, b)
}
const divSlow = (a: Value, b: Value): Value => {
  if (isInt(a) && isInt(b)) {
    if (b === 0) throw new VmFault("division_by_zero", "division by zero")
    return intResult(big(a) / big(b), "division") // BigInt division truncates toward zero
  }
  if (a instanceof AxFloat && b instanceof AxFloat) {
    if (b.value === 0) throw new VmFault("division_by_zero", "division by zero")
    return new AxFloat(a.value / b.value)
  }
  throw numericFault(a, b)
}
const modSlow = (a: Value, b: Value): Value => {
  if (isInt(a) && isInt(b)) {
    if (b === 0) throw new VmFault("division_by_zero", "remainder by zero")
    return intResult(big(a) % big(b), "remainder") // sign of the dividend
  }
  throw typeFault("Int", isInt(a) ? b : a)
}
const negSlow = (a: Value): Value => {
  if (typeof a === "bigint") return intResult(-a, "negation")
  if (a instanceof AxFloat) return new AxFloat(-a.value)
  throw typeFault("numeric", a)
}

/**
 * -1, 0, 1 for Int×Int, Float×Float, String×String (UTF-8 byte order); `NaN` when a Float operand is
 * NaN (IEEE: unordered), so every `< <= > >=` test on it is false.
 */
const compare = (a: Value, b: Value): number => {
  if (isInt(a) && isInt(b)) return a < b ? -1 : a > b ? 1 : 0
  if (a instanceof AxFloat && b instanceof AxFloat) {
    return a.value < b.value ? -1 : a.value > b.value ? 1 : a.value === b.value ? 0 : NaN
  }
  if (typeof a === "string" && typeof b === "string") return compareStrings(a, b)
  throw typeFault("comparable operands of the same type", a)
}

const concat = (a: Value, b: Value): Value => {
  if (typeof a === "string" && typeof b === "string") return a + b
  if (isList(a) && isList(b)) return listConcat(a, b)
  throw typeFault("String", typeof a === "string" ? b : a)
}

const tagOf = (v: Value): number => {
  if (typeof v !== "object" || Array.isArray(v)) return -1
  const o = v as Exclude<Value, ReadonlyArray<Value> | number | bigint | string | boolean>
  switch (o._tag) {
    case "None":
      return Tag.None
    case "Some":
      return Tag.Some
    case "Ok":
      return Tag.Ok
    case "Err":
      return Tag.Err
    case "Enum":
      return Tag.Variant + o.variant
    default:
      return -1
  }
}

const payloadOf = (v: Value): Value => {
  if (v instanceof SomeV || v instanceof OkV || v instanceof ErrV) return v.value
  if (v instanceof EnumV) return v.payload ?? Unit
  throw typeFault("a value with a payload", v)
}

const mapKey = (v: Value): MapKey => {
  if (typeof v === "string" || typeof v === "number" || typeof v === "bigint") return v
  throw typeFault("String or Int map key", v)
}

/** A larger value stack holding the first `sp` values of `stack`. */
const grow = (stack: Array<Value>, sp: number, need: number): Array<Value> => {
  const grown = new Array<Value>(Math.max(stack.length * 2, need + 1024)).fill(Unit)
  for (let i = 0; i < sp; i++) grown[i] = stack[i]
  return grown
}

// ---------------------------------------------------------------------------
// actors and the machine

const RUNNABLE = 0
const BLOCKED = 1
const FINISHED = 2

/** Why `exec` returned. */
const R_DONE = 0
const R_CAP = 1
const R_BLOCKED = 2
const R_SLICE = 3
/**
 * A clock check is due (every `WALL_EVERY` steps, with a wall-clock limit or turns): `resume` reads
 * the clock, then yields for a turn or re-enters the loop at once. Leaving the loop for every check,
 * not only for a turn, keeps its exit and its entry as hot as the loop itself: V8 sees `exec` called
 * thousands of times with full type feedback before it optimises it. With an exit only per turn
 * (every 25 ms) V8 optimised the first, still-looping call without feedback for the entry and the
 * exit, the first turns then deoptimised that code, and the loop ran unoptimised for another
 * compile or two: most of the measured cost of turns, ~10 % of a 3,000,000-iteration loop.
 * Measured (`loop 3M` through `Vm.run`, one fresh process per run, CPU-time medians of 10, load
 * average ~13 on 2 cores): turns every 25 ms against none, +10.9 % with an exit per turn, −1.4 %
 * with an exit per check. A check costs one return and one re-entry per ~40 µs of pure code.
 */
const R_CLOCK = 4

class Actor {
  stack: Array<Value>
  sp: number
  bp = 0
  pc = 0
  fn: number
  depth = 0
  readonly frameFn: Int32Array
  readonly framePc: Int32Array
  readonly frameBp: Int32Array
  readonly mailbox: Array<Value> = []
  mbHead = 0
  state = RUNNABLE
  result: Value = Unit

  constructor(
    readonly id: number,
    fn: number,
    l: Loaded,
    maxDepth: number
  ) {
    this.fn = fn
    const need = l.locals[fn] + l.maxStack[fn] + 64
    this.stack = new Array<Value>(Math.max(1024, need)).fill(Unit)
    this.sp = l.locals[fn]
    const frames = Math.min(maxDepth + 1, 1 << 20)
    this.frameFn = new Int32Array(frames)
    this.framePc = new Int32Array(frames)
    this.frameBp = new Int32Array(frames)
  }
}

const YIELD: Step = { _tag: "Yield" }

/** A pending capability call. */
export interface CapRequest {
  readonly cap: CapabilityName
  readonly args: ReadonlyArray<Value>
  readonly site: CallSite
}

export type Step =
  | { readonly _tag: "Done"; readonly value: Value }
  | { readonly _tag: "Cap"; readonly request: CapRequest }
  /** only with `yieldMs`: the turn interval elapsed; let the event loop run, then `resume()` again */
  | { readonly _tag: "Yield" }

/**
 * One run of a program. `resume()` runs until the program finishes (`Done`) or needs a capability
 * (`Cap`); then `provide(value)` supplies the capability's result and `resume()` continues.
 * Throws `VmError`.
 */
export class Machine {
  private readonly l: Loaded
  private readonly actors: Array<Actor> = []
  private current: Actor
  private steps = 0
  private readonly maxSteps: number
  private readonly maxDepth: number
  private readonly maxWallMs: number | undefined
  private readonly started = performance.now()
  private nextWall: number
  private sliceEnd = Infinity
  /** after a `Yield`, the current actor continues its slice (yields never change the schedule) */
  private keepSlice = false
  private readonly yieldMs: number
  private turnAt: number
  private round = 0
  private entries = 0
  private pending: CapRequest | undefined
  private readonly file: string

  constructor(
    program: BytecodeProgram,
    options: RunOptions = {},
    private readonly emit: (e: Event) => void = () => {}
  ) {
    this.file = program.sourceFile
    try {
      this.l = load(program)
    } catch (e) {
      if (e instanceof VerifyError) {
        throw new VmError({ kind: "runtime_error", message: `invalid bytecode: ${e.message}`, file: this.file, line: 0, col: 0 })
      }
      throw e
    }
    this.maxSteps = options.maxSteps ?? DEFAULT_MAX_STEPS
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH
    this.maxWallMs = options.maxWallMs
    this.yieldMs = options.yieldMs ?? Infinity
    this.turnAt = this.started + this.yieldMs
    this.nextWall = this.maxWallMs === undefined && this.yieldMs === Infinity ? Infinity : WALL_EVERY
    let entry = program.entry
    if (options.entry !== undefined) {
      entry = program.functions.findIndex((f) => f.name === options.entry)
      if (entry < 0) {
        throw new VmError({ kind: "runtime_error", message: `no function named \`${options.entry}\``, file: this.file, line: 0, col: 0 })
      }
    }
    const ef = program.functions[entry]
    if (ef.arity !== 0) {
      const { line, col } = positionAt(ef, 0)
      throw new VmError({
        kind: "runtime_error",
        message: `entry function \`${ef.name}\` takes ${ef.arity} parameters; it must take none`,
        file: this.file,
        line,
        col,
        fn: ef.name
      })
    }
    this.current = new Actor(0, entry, this.l, this.maxDepth)
    this.actors.push(this.current)
  }

  /** Number of instructions executed so far. */
  get stepCount(): number {
    return this.steps
  }

  /** How many times the dispatch loop was entered (see `R_CLOCK`: once per clock check with turns on). */
  get loopEntries(): number {
    return this.entries
  }

  /** Whether the event-loop turn interval (`yieldMs`) has elapsed since the last turn. */
  turnDue(): boolean {
    return this.yieldMs !== Infinity && performance.now() >= this.turnAt
  }

  /** The driver gave the event loop a turn: the next one is due `yieldMs` from now. */
  turnTaken(): void {
    this.turnAt = performance.now() + this.yieldMs
  }

  /** A VmError at the instruction the current actor runs next (for a limit that struck between turns). */
  failureHere(kind: RuntimeErrorKind, message: string): VmError {
    return this.errorAt(this.current, this.current.pc, kind, message)
  }

  /** Milliseconds since the machine was created. */
  elapsedMs(): number {
    return performance.now() - this.started
  }

  /** Supply the result of the pending capability call. */
  provide(value: Value): void {
    if (this.pending === undefined) throw new Error("no capability call is pending")
    this.pending = undefined
    const a = this.current
    a.stack[a.sp++] = value
  }

  /** The VmError for a failed capability call (gateway error), located at the call. */
  capFailure(kind: RuntimeErrorKind, message: string, site: CallSite): VmError {
    return new VmError({ kind, message, file: site.file, line: site.line, col: site.col, fn: site.fn })
  }

  resume(): Step {
    if (this.pending !== undefined) throw new Error("a capability call is pending: provide its result first")
    for (;;) {
      const a = this.current
      this.entries++
      const r = this.exec(a)
      if (r === R_CAP) return { _tag: "Cap", request: this.pending! }
      if (r === R_CLOCK) {
        this.keepSlice = true
        const now = performance.now()
        if (this.maxWallMs !== undefined && now - this.started > this.maxWallMs) {
          throw this.errorAt(a, a.pc, "timeout", `wall-clock limit exceeded: ${this.maxWallMs} ms`)
        }
        if (now >= this.turnAt) return YIELD
        continue
      }
      if (r === R_DONE) a.state = FINISHED
      else if (r === R_BLOCKED) a.state = BLOCKED
      const next = this.pickNext(a.id)
      if (next === undefined) {
        const main = this.actors[0]
        if (main.state === FINISHED) return { _tag: "Done", value: main.result }
        const blocked = this.actors.find((x) => x.state === BLOCKED)!
        throw this.errorAt(blocked, blocked.pc, "runtime_error", "deadlock: every actor is waiting in `receive` and no message is pending")
      }
      this.current = next
      if (this.actors.length > 1) this.emit({ type: "SchedulerTick", round: this.round, activeActor: next.id })
    }
  }

  private runnable(x: Actor): boolean {
    return x.state === RUNNABLE || (x.state === BLOCKED && x.mbHead < x.mailbox.length)
  }

  private pickNext(from: number): Actor | undefined {
    const n = this.actors.length
    for (let k = 1; k <= n; k++) {
      const i = (from + k) % n
      const x = this.actors[i]
      if (this.runnable(x)) {
        if (i <= from) this.round++
        x.state = RUNNABLE
        return x
      }
    }
    return undefined
  }

  private errorAt(a: Actor, pc: number, kind: RuntimeErrorKind, message: string): VmError {
    const f = this.l.program.functions[a.fn]
    const { line, col } = positionAt(f, pc)
    return new VmError({ kind, message, file: this.file, line, col, fn: f.name })
  }

  /** A contract's message plus the call that broke it: the caller's CALL instruction (none for an entry function). */
  private contractMessage(clause: string, a: Actor, depth: number): string {
    if (depth === 0) return clause
    const caller = this.l.program.functions[a.frameFn[depth - 1]]
    const { line, col } = positionAt(caller, a.framePc[depth - 1] - 1)
    return `${clause} (called from \`${caller.name}\` at ${this.file}:${line}:${col})`
  }

  private site(fn: FunctionDef, pc: number): CallSite {
    const { line, col } = positionAt(fn, pc)
    return { file: this.file, line, col, fn: fn.name }
  }

  private limit(): number {
    return Math.min(this.maxSteps, this.sliceEnd, this.nextWall)
  }

  private save(a: Actor, stack: Array<Value>, sp: number, bp: number, pc: number, fn: number, depth: number, steps: number): void {
    a.stack = stack
    a.sp = sp
    a.bp = bp
    a.pc = pc
    a.fn = fn
    a.depth = depth
    this.steps = steps
  }

  /** The dispatch loop: run actor `a` until it returns, blocks, needs a capability or its slice ends. */
  private exec(a: Actor): number {
    const l = this.l
    const codes = l.codes
    const consts = l.constants
    const arity = l.arity
    const localsN = l.locals
    const maxStack = l.maxStack
    const frameFn = a.frameFn
    const framePc = a.framePc
    const frameBp = a.frameBp
    const maxDepth = this.maxDepth
    let stack = a.stack
    let sp = a.sp
    let bp = a.bp
    let pc = a.pc
    let fn = a.fn
    let depth = a.depth
    let code = codes[fn]
    if (this.keepSlice) this.keepSlice = false
    else this.sliceEnd = this.actors.length > 1 ? this.steps + SLICE : Infinity
    let limit = this.limit()
    let steps = this.steps
    try {
      for (;;) {
        if (++steps > limit) {
          if (steps > this.maxSteps) {
            pc++
            throw new VmFault("step_limit", `step limit exceeded: more than ${this.maxSteps} instructions executed`)
          }
          if (steps > this.sliceEnd) {
            steps--
            this.save(a, stack, sp, bp, pc, fn, depth, steps)
            return R_SLICE
          }
          if (steps > this.nextWall) {
            // the clock is read in `resume`, outside this loop (see `R_CLOCK`)
            this.nextWall = steps + WALL_EVERY
            steps--
            this.save(a, stack, sp, bp, pc, fn, depth, steps)
            return R_CLOCK
          }
          limit = this.limit()
        }
        switch (code[pc++]) {
          case 0: // NOP
            break
          case 1: // CONST
            stack[sp++] = consts[code[pc++]]
            break
          case 2: // LOAD
            stack[sp++] = stack[bp + code[pc++]]
            break
          case 3: // STORE
            stack[bp + code[pc++]] = stack[--sp]
            break
          case 4: // POP
            sp--
            break
          case 5: // DUP
            stack[sp] = stack[sp - 1]
            sp++
            break
          case 6: // JMP
            pc = code[pc]
            break
          case 7: { // JMPF
            const c = stack[--sp]
            if (c === false) pc = code[pc]
            else if (c === true) pc++
            else throw typeFault("Bool", c)
            break
          }
          case 8: { // JMPT
            const c = stack[--sp]
            if (c === true) pc = code[pc]
            else if (c === false) pc++
            else throw typeFault("Bool", c)
            break
          }
          case 9: { // CALL
            const f = code[pc]
            pc += 2
            if (depth + 1 >= maxDepth) throw new VmFault("stack_overflow", `stack overflow: call depth exceeds ${maxDepth}`)
            frameFn[depth] = fn
            framePc[depth] = pc
            frameBp[depth] = bp
            depth++
            bp = sp - arity[f]
            const top = bp + localsN[f]
            if (top + maxStack[f] >= stack.length) stack = grow(stack, sp, top + maxStack[f])
            while (sp < top) stack[sp++] = Unit
            fn = f
            code = codes[f]
            pc = 0
            break
          }
          case 10: { // CALLI
            const argc = code[pc++]
            const callee = stack[--sp]
            if (!(callee instanceof FnRefV)) throw typeFault("a function reference", callee)
            const f = callee.index
            if (f < 0 || f >= codes.length || arity[f] !== argc) {
              throw new VmFault("runtime_error", `bad function reference ${callee.name}/${argc}`)
            }
            if (depth + 1 >= maxDepth) throw new VmFault("stack_overflow", `stack overflow: call depth exceeds ${maxDepth}`)
            frameFn[depth] = fn
            framePc[depth] = pc
            frameBp[depth] = bp
            depth++
            bp = sp - argc
            const top = bp + localsN[f]
            if (top + maxStack[f] >= stack.length) stack = grow(stack, sp, top + maxStack[f])
            while (sp < top) stack[sp++] = Unit
            fn = f
            code = codes[f]
            pc = 0
            break
          }
          case 11: { // RET
            const v = stack[sp - 1]
            if (depth === 0) {
              a.result = v
              sp = 0
              this.save(a, stack, sp, bp, pc, fn, depth, steps)
              return R_DONE
            }
            sp = bp
            stack[sp++] = v
            depth--
            fn = frameFn[depth]
            pc = framePc[depth]
            bp = frameBp[depth]
            code = codes[fn]
            break
          }
          case 12: { // ADD
            const b = stack[--sp]
            const x = stack[sp - 1]
            if (typeof x === "number" && typeof b === "number") {
              const r = x + b
              if (r <= MAXS && r >= MINS) {
                stack[sp - 1] = r
                break
              }
            }
            stack[sp - 1] = addSlow(x, b)
            break
          }
          case 13: { // SUB
            const b = stack[--sp]
            const x = stack[sp - 1]
            if (typeof x === "number" && typeof b === "number") {
              const r = x - b
              if (r <= MAXS && r >= MINS) {
                stack[sp - 1] = r
                break
              }
            }
            stack[sp - 1] = subSlow(x, b)
            break
          }
          case 14: { // MUL
            const b = stack[--sp]
            const x = stack[sp - 1]
            if (typeof x === "number" && typeof b === "number") {
              const r = x * b
              if (r <= MAXS && r >= MINS) {
                stack[sp - 1] = r + 0
                break
              }
            }
            stack[sp - 1] = mulSlow(x, b)
            break
          }
          case 15: { // DIV
            const b = stack[--sp]
            const x = stack[sp - 1]
            if (typeof x === "number" && typeof b === "number" && b !== 0) {
              stack[sp - 1] = (x - (x % b)) / b + 0
              break
            }
            stack[sp - 1] = divSlow(x, b)
            break
          }
          case 16: { // MOD
            const b = stack[--sp]
            const x = stack[sp - 1]
            if (typeof x === "number" && typeof b === "number" && b !== 0) {
              stack[sp - 1] = (x % b) + 0
              break
            }
            stack[sp - 1] = modSlow(x, b)
            break
          }
          case 17: { // NEG
            const x = stack[sp - 1]
            stack[sp - 1] = typeof x === "number" ? 0 - x : negSlow(x)
            break
          }
          case 18: { // NOT
            const x = stack[sp - 1]
            if (typeof x !== "boolean") throw typeFault("Bool", x)
            stack[sp - 1] = !x
            break
          }
          case 19: { // EQ
            const b = stack[--sp]
            const x = stack[sp - 1]
            stack[sp - 1] = typeof x === "object" ? equals(x, b) : x === b
            break
          }
          case 20: { // NE
            const b = stack[--sp]
            const x = stack[sp - 1]
            stack[sp - 1] = typeof x === "object" ? !equals(x, b) : x !== b
            break
          }
          case 21: { // LT
            const b = stack[--sp]
            const x = stack[sp - 1]
            stack[sp - 1] = typeof x === "number" && typeof b === "number" ? x < b : compare(x, b) < 0
            break
          }
          case 22: { // LE
            const b = stack[--sp]
            const x = stack[sp - 1]
            stack[sp - 1] = typeof x === "number" && typeof b === "number" ? x <= b : compare(x, b) <= 0
            break
          }
          case 23: { // GT
            const b = stack[--sp]
            const x = stack[sp - 1]
            stack[sp - 1] = typeof x === "number" && typeof b === "number" ? x > b : compare(x, b) > 0
            break
          }
          case 24: { // GE
            const b = stack[--sp]
            const x = stack[sp - 1]
            stack[sp - 1] = typeof x === "number" && typeof b === "number" ? x >= b : compare(x, b) >= 0
            break
          }
          case 25: { // CONCAT
            const b = stack[--sp]
            const x = stack[sp - 1]
            stack[sp - 1] = typeof x === "string" && typeof b === "string" ? x + b : concat(x, b)
            break
          }
          case 26: { // MKLIST
            const n = code[pc++]
            const xs = stack.slice(sp - n, sp)
            sp -= n
            stack[sp++] = xs
            break
          }
          case 27: { // MKMAP
            const n = code[pc++]
            const pairs: Array<readonly [MapKey, Value]> = []
            const base = sp - 2 * n
            for (let i = 0; i < n; i++) pairs.push([mapKey(stack[base + 2 * i]), stack[base + 2 * i + 1]])
            sp = base
            stack[sp++] = MapV.of(pairs)
            break
          }
          case 28: { // MKRECORD
            const t = code[pc++]
            const names = l.recordNames[t]
            const fields = stack.slice(sp - names.length, sp)
            sp -= names.length
            stack[sp++] = new RecordV(l.typeNames[t], names, fields)
            break
          }
          case 29: { // GETFIELD
            const i = code[pc++]
            const r = stack[sp - 1]
            if (!(r instanceof RecordV)) throw typeFault("a record", r)
            if (i >= r.fields.length) throw new VmFault("runtime_error", `record ${r.type} has no field #${i}`)
            stack[sp - 1] = r.fields[i]
            break
          }
          case 30: { // MKENUM
            const t = code[pc++]
            const v = code[pc++]
            const payload = l.variantPayload[t][v] ? stack[--sp] : undefined
            stack[sp++] = new EnumV(l.typeNames[t], v, l.variantNames[t][v], payload)
            break
          }
          case 31: // SOME
            stack[sp - 1] = new SomeV(stack[sp - 1])
            break
          case 32: // OK
            stack[sp - 1] = new OkV(stack[sp - 1])
            break
          case 33: // ERR
            stack[sp - 1] = new ErrV(stack[sp - 1])
            break
          case 34: { // BUILTIN
            const bi = BUILTINS[code[pc++]]
            const base = sp - bi.arity
            const r = bi.fn(stack[base], stack[base + 1], stack[base + 2])
            sp = base
            stack[sp++] = r
            break
          }
          case 35: { // CAP
            const id = code[pc]
            const argc = code[pc + 1]
            pc += 2
            const cap = capabilityById(id)!.name
            const f = l.program.functions[fn]
            if ((l.capMask[fn] & (1 << id)) === 0) {
              throw new VmFault(
                "capability_error",
                `\`${f.name}\` calls the capability ${cap}, which it does not declare (declared: !{${f.capabilities.join(", ")}})`
              )
            }
            const args = stack.slice(sp - argc, sp)
            // handlers see a List argument as a plain array (the persistent vector is the VM's)
            for (let i = 0; i < argc; i++) {
              const x = args[i]
              if (x instanceof ListV) args[i] = x.toArray()
            }
            sp -= argc
            this.pending = { cap, args, site: this.site(f, pc - 1) }
            this.save(a, stack, sp, bp, pc, fn, depth, steps)
            return R_CAP
          }
          case 36: { // EMIT
            this.emit({ type: "UiEmit", tree: stack[sp - 1] })
            stack[sp - 1] = Unit
            break
          }
          case 37: { // SPAWN
            const f = code[pc++]
            const child = new Actor(this.actors.length, f, l, maxDepth)
            this.actors.push(child)
            this.emit({ type: "ActorSpawn", actorId: child.id, function: l.program.functions[f].name })
            stack[sp++] = new ActorIdV(child.id)
            if (this.sliceEnd === Infinity) {
              this.sliceEnd = steps + SLICE
              limit = this.limit()
            }
            break
          }
          case 38: { // SEND
            const msg = stack[--sp]
            const target = stack[sp - 1]
            if (!(target instanceof ActorIdV)) throw typeFault("ActorId", target)
            const t = this.actors[target.id]
            if (t === undefined) throw new VmFault("runtime_error", `send to unknown actor #${target.id}`)
            this.emit({ type: "MessageSend", from: a.id, to: t.id, payload: msg })
            if (t.state !== FINISHED) t.mailbox.push(msg)
            stack[sp - 1] = Unit
            break
          }
          case 39: { // RECEIVE
            if (a.mbHead < a.mailbox.length) {
              const msg = a.mailbox[a.mbHead]
              a.mailbox[a.mbHead++] = Unit
              if (a.mbHead > 64 && a.mbHead * 2 > a.mailbox.length) {
                a.mailbox.splice(0, a.mbHead)
                a.mbHead = 0
              }
              this.emit({ type: "MessageReceive", actorId: a.id, payload: msg })
              stack[sp++] = msg
              break
            }
            pc--
            steps--
            this.save(a, stack, sp, bp, pc, fn, depth, steps)
            return R_BLOCKED
          }
          case 40: { // ASSERT
            const c = stack[--sp]
            if (c !== true) {
              if (c === false) throw new VmFault("contract_violation", this.contractMessage(consts[code[pc]] as string, a, depth))
              throw typeFault("Bool", c)
            }
            pc++
            break
          }
          case 41: { // JNTAG
            const v = stack[bp + code[pc]]
            if (tagOf(v) === code[pc + 1]) pc += 3
            else pc = code[pc + 2]
            break
          }
          case 42: // UNWRAP
            stack[sp++] = payloadOf(stack[bp + code[pc++]])
            break
          case 43: // FAIL
            throw new VmFault("runtime_error", consts[code[pc]] as string)
          case 44: { // JNEQ
            const x = stack[bp + code[pc]]
            const k = consts[code[pc + 1]]
            if (x === k || (typeof x === "object" && equals(x, k))) pc += 3
            else pc = code[pc + 2]
            break
          }
          case 45: { // ADDLK
            const x = stack[bp + code[pc++]]
            const b = consts[code[pc++]]
            if (typeof x === "number" && typeof b === "number") {
              const r = x + b
              if (r <= MAXS && r >= MINS) {
                stack[sp++] = r
                break
              }
            }
            stack[sp++] = addSlow(x, b)
            break
          }
          case 46: { // SUBLK
            const x = stack[bp + code[pc++]]
            const b = consts[code[pc++]]
            if (typeof x === "number" && typeof b === "number") {
              const r = x - b
              if (r <= MAXS && r >= MINS) {
                stack[sp++] = r
                break
              }
            }
            stack[sp++] = subSlow(x, b)
            break
          }
          case 47: { // JNLELK
            const x = stack[bp + code[pc]]
            const b = consts[code[pc + 1]]
            if (typeof x === "number" && typeof b === "number" ? x <= b : compare(x, b) <= 0) pc += 3
            else pc = code[pc + 2]
            break
          }
          case 48: { // JNLTLK
            const x = stack[bp + code[pc]]
            const b = consts[code[pc + 1]]
            if (typeof x === "number" && typeof b === "number" ? x < b : compare(x, b) < 0) pc += 3
            else pc = code[pc + 2]
            break
          }
          case 49: { // JNLTLL
            const x = stack[bp + code[pc]]
            const b = stack[bp + code[pc + 1]]
            if (typeof x === "number" && typeof b === "number" ? x < b : compare(x, b) < 0) pc += 3
            else pc = code[pc + 2]
            break
          }
          default:
            throw new VmFault("runtime_error", `invalid opcode ${code[pc - 1]}`)
        }
      }
    } catch (e) {
      if (e instanceof VmFault) {
        this.save(a, stack, sp, bp, pc, fn, depth, steps)
        throw this.errorAt(a, pc - 1, e.kind, e.message)
      }
      throw e
    }
  }
}

// ---------------------------------------------------------------------------
// drivers

/**
 * Run a program without capabilities, synchronously. A capability call fails the run with
 * `capability_error`. Events (UI emissions, actor steps) go to `onEvent`. Throws `VmError`.
 */
export const runPure = (program: BytecodeProgram, options: RunOptions = {}, onEvent?: (e: Event) => void): Value => {
  const m = new Machine(program, { ...options, yieldMs: Infinity }, onEvent)
  const s = m.resume()
  if (s._tag === "Done") return s.value
  if (s._tag === "Yield") throw new Error("unreachable: runPure never yields")
  throw m.capFailure("capability_error", `${s.request.cap}: capability calls need the gateway (use Vm.run)`, s.request.site)
}

const defectToVmError = (program: BytecodeProgram) => (e: unknown): VmError =>
  e instanceof VmError
    ? e
    : new VmError({ kind: "runtime_error", message: `internal VM error: ${e instanceof Error ? e.message : String(e)}`, file: program.sourceFile, line: 0, col: 0 })

/** One macrotask turn of the event loop (`setImmediate`: after pending I/O, timers and signals). */
const turn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const t = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(t))
})

/**
 * Run a program: pure code in the synchronous loop, every capability call through `Gateway.call`
 * (policy, budget, event log), UI and actor events appended to the `EventLog`.
 *
 * The driver gives the event loop a macrotask turn at least every `yieldMs` (default
 * `DEFAULT_TURN_MS`) while pure code runs and between capability calls that complete
 * synchronously, so the run can be interrupted (a signal, a timeout, a parent fiber) within about
 * that interval. With `maxWallMs`, the whole run — capability calls included — fails with
 * `timeout` once that much wall-clock time has passed.
 */
export const run = (program: BytecodeProgram, options: RunOptions = {}): Effect.Effect<Value, VmError, Gateway | EventLog> =>
  Effect.flatMap(Gateway, (gateway) =>
    Effect.flatMap(EventLog, (log) =>
      Effect.suspend(() => {
        const toError = defectToVmError(program)
        let m: Machine
        try {
          m = new Machine(program, { ...options, yieldMs: options.yieldMs ?? DEFAULT_TURN_MS }, log.append)
        } catch (e) {
          return Effect.fail(toError(e))
        }
        options.onMachine?.(m)
        // where the run is when the wall-clock limit strikes outside pure code (inside a call)
        let where: CallSite | undefined
        const loop = (): Effect.Effect<Value, VmError> => {
          let s: Step
          try {
            s = m.resume()
          } catch (e) {
            return Effect.fail(toError(e))
          }
          if (s._tag === "Done") return Effect.succeed(s.value)
          if (s._tag === "Yield") {
            return Effect.flatMap(turn, () => {
              m.turnTaken()
              return loop()
            })
          }
          const { cap, args, site } = s.request
          where = site
          return Effect.flatMap(
            Effect.mapError(gateway.call(cap, args, site), (e) => m.capFailure(e.kind, e.message, site)),
            (v) => {
              m.provide(v)
              where = undefined
              if (!m.turnDue()) return loop()
              return Effect.flatMap(turn, () => {
                m.turnTaken()
                return loop()
              })
            }
          )
        }
        const body = loop()
        const limit = options.maxWallMs
        if (limit === undefined) return body
        return Effect.timeoutFail(body, {
          duration: Duration.millis(Math.max(0, limit - m.elapsedMs())),
          onTimeout: () => {
            const message = `wall-clock limit exceeded: ${limit} ms`
            return where === undefined
              ? m.failureHere("timeout", message)
              : m.capFailure("timeout", `${message} (during this capability call)`, where)
          }
        })
      })
    )
  )

/** `Vm.run` / `Vm.runPure` for `import { Vm } from "./Vm.js"`. */
export const Vm = { run, runPure, Machine } as const
