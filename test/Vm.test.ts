import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import type { BytecodeProgram } from "../src/Bytecode.js"
import type { CapabilityName } from "../src/Capability.js"
import { compileSource } from "../src/Compiler.js"
import { HandlerFailure } from "../src/Errors.js"
import type { Event } from "../src/Event.js"
import * as EventLog from "../src/EventLog.js"
import * as Gateway from "../src/Gateway.js"
import * as Handlers from "../src/Handlers.js"
import { allowAll, denyAll, type Policy } from "../src/Policy.js"
import { show, type Value } from "../src/Value.js"
import { Machine, run, runPure, Vm, VmError } from "../src/Vm.js"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { boruna, ensureBuilt, start } from "./support/BuiltCli.js"

const compile = (source: string, file = "t.ax"): BytecodeProgram => {
  const r = compileSource(file, source)
  if (!r.ok) throw new Error(r.diagnostics.map((d) => `${d.line}:${d.col} ${d.kind} ${d.message}`).join("\n"))
  return r.program
}

const evalPure = (source: string, options: Parameters<typeof runPure>[1] = {}): string => show(runPure(compile(source), options))

const failPure = (source: string, options: Parameters<typeof runPure>[1] = {}): VmError => {
  try {
    runPure(compile(source), options)
  } catch (e) {
    if (e instanceof VmError) return e
    throw e
  }
  throw new Error("expected the run to fail")
}

const withEvents = (source: string): { value: string; events: Array<Event> } => {
  const events: Array<Event> = []
  const value = show(runPure(compile(source), {}, (e) => events.push(e)))
  return { value, events }
}

const main = (body: string, ret = "Int"): string => `fn main() -> ${ret} {\n${body}\n}`

describe("Vm: Int arithmetic is exact signed 64-bit", () => {
  it("beyond 2^53 stays exact", () => {
    expect(evalPure(main("let a: Int = 9007199254740993\na * 2 - 1"))).toBe("18014398509481985")
    expect(evalPure(main("let a: Int = 4611686018427387904\na + (a - 1)"))).toBe("9223372036854775807")
    expect(evalPure(main("let a: Int = 3037000499\na * a"))).toBe("9223372030926249001")
  })
  it("results outside i64 are integer_overflow, in every operator", () => {
    expect(failPure(main("let a: Int = 9223372036854775807\na + 1")).kind).toBe("integer_overflow")
    expect(failPure(main("let a: Int = -9223372036854775807\na - 2")).kind).toBe("integer_overflow")
    expect(failPure(main("let a: Int = 4294967296\na * a * 2")).kind).toBe("integer_overflow")
    expect(failPure(main("let a: Int = -9223372036854775807 - 1\na / -1")).kind).toBe("integer_overflow")
    expect(failPure(main("let a: Int = -9223372036854775807 - 1\n-a")).kind).toBe("integer_overflow")
    const e = failPure(main("let a: Int = 9223372036854775807\na * 3"))
    expect(e.message).toContain("multiplication")
    expect([e.line, e.col]).toEqual([3, 3])
  })
  it("/ truncates toward zero, % takes the dividend's sign, by zero is division_by_zero", () => {
    expect(evalPure(main("[-7 / 2, 7 / -2, -7 % 2, 7 % -2, -6 % 3, 0 / -5]", "List<Int>"))).toBe("[-3, -3, -1, 1, 0, 0]")
    expect(evalPure(main("let b: Int = 9223372036854775807\n[b / 2, b % 10, -b / 3]", "List<Int>")))
      .toBe("[4611686018427387903, 7, -3074457345618258602]")
    expect(failPure(main("let z = 0\n1 % z")).kind).toBe("division_by_zero")
    expect(failPure(main("let z = 0\n1 / z")).kind).toBe("division_by_zero")
  })
  it("Float arithmetic and formatting; Float division by zero is an error too", () => {
    expect(evalPure(main("0.1 + 0.2", "Float"))).toBe("0.30000000000000004")
    expect(evalPure(main("2.0 * 3.0 - 1.0", "Float"))).toBe("5.0")
    expect(evalPure(main("-1.5 / 0.5", "Float"))).toBe("-3.0")
    expect(failPure(main("let z = 0.0\n1.0 / z", "Float")).kind).toBe("division_by_zero")
  })
})

describe("Vm: operators", () => {
  it("&& and || short-circuit", () => {
    expect(evalPure(main("let z = 0\nfalse && 1 / z == 1", "Bool"))).toBe("false")
    expect(evalPure(main("let z = 0\ntrue || 1 / z == 1", "Bool"))).toBe("true")
    expect(failPure(main("let z = 0\ntrue && 1 / z == 1", "Bool")).kind).toBe("division_by_zero")
    expect(evalPure(main("let a = 3\nif a > 1 && a < 5 || a == 10 { 1 } else { 0 }"))).toBe("1")
  })
  it("comparisons on Int, Float, String (UTF-8 byte order); structural equality", () => {
    expect(evalPure(main(`[1 < 2, 2.5 >= 2.5, "b" > "a", "Z" < "a", "é" > "z"]`, "List<Bool>"))).toBe("[true, true, true, true, true]")
    expect(evalPure(main(`[Some([1, 2]) == Some([1, 2]), Ok(1) != Err(1), {"a": 1} == {"a": 1}]`, "List<Bool>")))
      .toBe("[true, true, true]")
    expect(evalPure(`type P { x: Int, y: Int }\n${main("P { x: 1, y: 2 } == P { y: 2, x: 1 }", "Bool")}`)).toBe("true")
  })
  it("++ concatenates strings", () => {
    expect(evalPure(main(`"a" ++ "b" ++ int_to_string(3)`, "String"))).toBe(`"ab3"`)
  })
})

describe("Vm: control flow and data", () => {
  it("while, for, lexical scope and early return", () => {
    expect(evalPure(main("let mut s = 0\nfor x in [1, 2, 3, 4] { s = s + x * x }\ns"))).toBe("30")
    expect(evalPure(main("let x = 1\nlet y = if true { let x = 2\n x * 10 } else { 0 }\nx + y"))).toBe("21")
    const src = `fn f(o: Option<Int>) -> Int {
  let x = match o { Some(v) => v, None => { return 0 } }
  x + 1
}
${main("[f(Some(4)), f(None)]", "List<Int>")}`
    expect(evalPure(src)).toBe("[5, 0]")
  })
  it("match: literals, nested Option/Result, enum variants, bindings, Bool", () => {
    const src = `enum Shape { Dot, Circle(Int), Label(String) }
fn area(s: Shape) -> Int { match s { Dot => 0, Circle(r) => 3 * r * r, Label(_) => -1 } }
fn kind(o: Option<Result<Int, String>>) -> String {
  match o { Some(Ok(0)) => "zero", Some(Ok(n)) => "ok " ++ int_to_string(n), Some(Err(e)) => "err " ++ e, None => "none" }
}
fn word(n: Int) -> String { match n { 1 => "one", 2 => "two", other => int_to_string(other) } }
fn flag(b: Bool) -> Int { match b { true => 1, false => 0 } }
${main(`[int_to_string(area(Dot) + area(Circle(2)) + area(Shape::Label("x"))), kind(Some(Ok(0))), kind(Some(Ok(5))),
kind(Some(Err("bad"))), kind(None), word(2), word(9), int_to_string(flag(1 < 2))]`, "List<String>")}`
    expect(evalPure(src)).toBe(`["11", "zero", "ok 5", "err bad", "none", "two", "9", "1"]`)
  })
  it("records: fields by declaration order, spread, printing; lists and maps (sorted)", () => {
    const src = `type User { name: String, age: Int, admin: Bool }
${main(`let u = User { age: 3, admin: false, name: "a" }
let v = User { ..u, admin: true }
[show_user(u), show_user(v)]`, "List<String>")}
fn show_user(u: User) -> String { u.name ++ ":" ++ int_to_string(u.age) ++ ":" ++ __builtin_bool_to_string(u.admin) }`
    expect(evalPure(src)).toBe(`["a:3:false", "a:3:true"]`)
    expect(evalPure(`type User { name: String, age: Int }\n${main(`User { age: 3, name: "a" }`, "User")}`))
      .toBe(`User { name: "a", age: 3 }`)
    expect(evalPure(main(`let m = {"b": 2, "a": 1, "c": 3}\n__builtin_map_keys(__builtin_map_remove(m, "c"))`, "List<String>")))
      .toBe(`["a", "b"]`)
  })
  it("functions as values (indirect calls)", () => {
    expect(evalPure(`fn dbl(x: Int) -> Int { x * 2 }\n${main("let f = dbl\nf(21)")}`)).toBe("42")
  })
})

describe("Vm: contracts", () => {
  it("requires is checked on entry and ensures on every return, naming the function and clause", () => {
    const src = `fn half(n: Int) -> Int requires n >= 0 requires n % 2 == 0 ensures result * 2 == n {
  if n == 4 { return 3 }
  n / 2
}
`
    expect(evalPure(src + main("half(10)"))).toBe("5")
    const pre = failPure(src + main("half(3)"))
    expect(pre.kind).toBe("contract_violation")
    expect(pre.message).toContain("`half` requires `n % 2 == 0` (clause 2 of 2)")
    expect(pre.fn).toBe("half")
    const post = failPure(src + main("half(4)"))
    expect(post.kind).toBe("contract_violation")
    expect(post.message).toContain("`half` ensures `result * 2 == n`")
    expect(post.line).toBe(1)
  })

  it("a contract violation names the call that broke it, not only the clause", () => {
    const src = `fn safe_div(a: Int, b: Int) -> Int requires b != 0 { a / b }
fn pos(n: Int) -> Int ensures result > 0 { n }
fn g() -> Int { pos(5) + pos(-1) }
fn main() -> Int {
  let x = 1
  x + safe_div(1, 0)
}
fn main2() -> Int { g() }
`
    const pre = failPure(src)
    expect([pre.kind, pre.message, pre.fn]).toEqual([
      "contract_violation",
      "contract violation: `safe_div` requires `b != 0`, false on entry (called from `main` at t.ax:6:7)",
      "safe_div"
    ])
    const post = failPure(src, { entry: "main2" })
    expect(post.message).toBe("contract violation: `pos` ensures `result > 0`, false on return (called from `g` at t.ax:3:26)")
    // an entry function has no caller to name
    expect(failPure(`fn main() -> Int requires 1 > 2 { 1 }`).message).toBe("contract violation: `main` requires `1 > 2`, false on entry")
  })
})

describe("Vm: limits", () => {
  const loop = main("let mut i = 0\nwhile true { i = i + 1 }\ni")
  it("step_limit at maxSteps, counting every instruction", () => {
    const e = failPure(loop, { maxSteps: 1000 })
    expect(e.kind).toBe("step_limit")
    expect(e.message).toContain("1000")
    // main() { 42 } is CONST, RET: exactly two steps
    expect(evalPure(main("42"), { maxSteps: 2 })).toBe("42")
    expect(failPure(main("42"), { maxSteps: 1 }).kind).toBe("step_limit")
  })
  it("stack_overflow at maxDepth, never a JS RangeError, even at the default depth", () => {
    const src = `fn down(n: Int) -> Int { down(n + 1) + 1 }\n${main("down(0)")}`
    expect(failPure(src, { maxDepth: 50 }).kind).toBe("stack_overflow")
    const deep = failPure(src)
    expect(deep.kind).toBe("stack_overflow")
    expect(deep.message).toContain("10000")
    // just under the limit works
    const ok = `fn count(n: Int) -> Int { if n == 0 { 0 } else { count(n - 1) + 1 } }\n${main("count(9990)")}`
    expect(evalPure(ok)).toBe("9990")
  })
  it("timeout when the wall-clock limit passes", () => {
    const e = failPure(loop, { maxSteps: Number.MAX_SAFE_INTEGER, maxWallMs: 20 })
    expect(e.kind).toBe("timeout")
  })
  it("index_out_of_bounds carries the source position", () => {
    const e = failPure(main("let xs = [1]\nlist_get(xs, -1)"))
    expect(e.kind).toBe("index_out_of_bounds")
    expect([e.file, e.line, e.col, e.fn]).toEqual(["t.ax", 3, 1, "main"])
  })
  it("an entry other than main can be chosen; an unknown one is an error", () => {
    const p = compile(`fn other() -> Int { 7 }\n${main("1")}`)
    expect(show(runPure(p, { entry: "other" }))).toBe("7")
    expect(() => runPure(p, { entry: "nope" })).toThrow(VmError)
  })
})

describe("Vm: emit and actors", () => {
  it("emit records a UiEmit event and yields Unit", () => {
    const { value, events } = withEvents(`type S { n: Int }\n${main("let u = emit S { n: 1 }\nu", "Unit")}`)
    expect(value).toBe("()")
    expect(events).toHaveLength(1)
    expect(events[0].type).toBe("UiEmit")
    expect(events[0].type === "UiEmit" && show(events[0].tree)).toBe("S { n: 1 }")
  })
  it("messages flow both ways and the event log is identical on every run", () => {
    const src = `fn worker() -> Unit {
  let boss: ActorId = receive
  let mut i = 0
  while i < 3 {
    let x: Int = receive
    send boss (x * 10)
    i = i + 1
  }
}
fn collector() -> Unit {
  let mut total = 0
  let mut i = 0
  while i < 3 {
    let x: Int = receive
    total = total + x
    i = i + 1
  }
  emit total
}
fn main() -> Int {
  let w = spawn worker
  let c = spawn collector
  send w c
  send w 1
  send w 2
  send w 3
  0
}
`
    const a = withEvents(src)
    const b = withEvents(src)
    expect(a.value).toBe("0")
    expect(a.events).toEqual(b.events)
    const types = a.events.map((e) => e.type)
    expect(types.filter((t) => t === "ActorSpawn")).toHaveLength(2)
    expect(types).toContain("SchedulerTick")
    const received = a.events.filter((e) => e.type === "MessageReceive")
    // worker gets its boss + 3 numbers, the collector 3 answers
    expect(received).toHaveLength(7)
    const ui = a.events.filter((e) => e.type === "UiEmit")
    expect(ui.map((e) => e.type === "UiEmit" && show(e.tree))).toEqual(["60"])
    const sends = a.events.filter((e): e is Extract<Event, { type: "MessageSend" }> => e.type === "MessageSend")
    // the worker answers its boss (the collector) three times: 10, 20, 30
    expect(sends.filter((s) => s.from === 1).map((s) => show(s.payload))).toEqual(["10", "20", "30"])
  })
  it("receive with nothing that could ever send is a deadlock error", () => {
    const e = failPure(main("let x: Int = receive\nx"))
    expect(e.kind).toBe("runtime_error")
    expect(e.message).toContain("deadlock")
    expect(e.line).toBe(2)
  })
  it("after main returns, waiting actors end the run; a busy one runs to the step limit (docs/language.md)", () => {
    const waiting = `fn idle() -> Int { let m: Int = receive\n m }\n${main("let a = spawn idle\n7")}`
    expect(evalPure(waiting)).toBe("7")
    const busy = `fn spin() -> Int { let mut i = 0\n while true { i = i + 1 }\n i }\n${main("let a = spawn spin\n7")}`
    const e = failPure(busy, { maxSteps: 100_000 })
    expect([e.kind, e.fn]).toEqual(["step_limit", "spin"])
  })
  it("a child actor's error fails the run", () => {
    const e = failPure(`fn bad() -> Int { let z = 0\n 1 / z }\n${main("let a = spawn bad\n1")}`)
    expect(e.kind).toBe("division_by_zero")
    expect(e.fn).toBe("bad")
  })
})

// ---------------------------------------------------------------------------
// capability calls through the gateway

const layerFor = (policy: Policy, handlers: Partial<Record<CapabilityName, Handlers.Handler>> = Handlers.demoHandlers) =>
  Gateway.layer(policy).pipe(Layer.provideMerge(Layer.mergeAll(Handlers.make(handlers), EventLog.memory)))

const events = Effect.map(EventLog.EventLog, (l) => l.events())

describe("Vm.run: capabilities through the gateway", () => {
  it.effect("arguments, results, the call site and the event log", () =>
    Effect.gen(function*() {
      const p = compile(`fn get(u: String) -> String !{net.fetch} {
  net.fetch(u)
}
fn main() -> String !{net.fetch, time.now} {
  let t = time.now()
  get("https://x.example/" ++ int_to_string(t))
}`)
      const v = yield* Vm.run(p)
      expect(v).toBe(`{"mock": true, "url": "https://x.example/1700000000"}`)
      const log = yield* events
      expect(log.map((e) => e.type)).toEqual(["CapCall", "CapResult", "CapCall", "CapResult"])
      const call = log[2]
      expect(call.type === "CapCall" && call.site).toEqual({ file: "t.ax", line: 2, col: 3, fn: "get" })
      expect(call.type === "CapCall" && call.args).toEqual(["https://x.example/1700000000"])
    }).pipe(Effect.provide(layerFor(allowAll))))

  it.effect("denied maps to a VmError of kind denied at the call", () =>
    Effect.gen(function*() {
      const p = compile(main("let a = 1\ntime.now() + a", "Int !{time.now}"))
      const r = yield* Effect.either(run(p))
      expect(Either.isLeft(r)).toBe(true)
      if (Either.isLeft(r)) {
        expect(r.left).toBeInstanceOf(VmError)
        expect([r.left.kind, r.left.line, r.left.col, r.left.fn]).toEqual(["denied", 3, 1, "main"])
      }
    }).pipe(Effect.provide(layerFor(denyAll))))

  it.effect("budget_exceeded on the call past the budget", () =>
    Effect.gen(function*() {
      const p = compile(main("let mut i = 0\nwhile i < 5 { let t = random()\n i = i + 1 }\ni", "Int !{random}"))
      const r = yield* Effect.either(run(p))
      expect(Either.isLeft(r) && r.left.kind).toBe("budget_exceeded")
      const log = yield* events
      expect(log.filter((e) => e.type === "CapResult")).toHaveLength(3)
    }).pipe(Effect.provide(layerFor({ schema_version: 1, default_allow: false, rules: { random: { allow: true, budget: 3 } } }))))

  it.effect("a failing handler is runtime_error", () =>
    Effect.gen(function*() {
      const p = compile(main(`fs.read("/nope")`, "String !{fs.read}"))
      const r = yield* Effect.either(run(p))
      expect(Either.isLeft(r) && [r.left.kind, r.left.message]).toEqual(["runtime_error", "fs.read failed: no such file"])
    }).pipe(Effect.provide(layerFor(allowAll, {
      "fs.read": () => Effect.fail(new HandlerFailure({ message: "no such file" }))
    }))))

  it.effect("the run is re-runnable: each execution starts a fresh machine", () =>
    Effect.gen(function*() {
      const eff = run(compile(main("time.now() / 1000000", "Int !{time.now}")))
      expect(yield* eff).toBe(1700)
      expect(yield* eff).toBe(1700)
    }).pipe(Effect.provide(layerFor(allowAll))))

  it("runPure refuses capability calls", () => {
    const e = failPure(main("time.now()", "Int !{time.now}"))
    expect(e.kind).toBe("capability_error")
  })

  it("Machine can be driven by hand: resume → Cap → provide → Done", () => {
    const m = new Machine(compile(main("time.now() + 1", "Int !{time.now}")))
    const s = m.resume()
    expect(s._tag).toBe("Cap")
    if (s._tag === "Cap") expect(s.request.cap).toBe("time.now")
    m.provide(41 as Value)
    const d = m.resume()
    expect(d._tag === "Done" && d.value).toBe(42)
  })
})

describe("Vm: the dispatch loop's opcode numbers match Bytecode.Op", () => {
  it("every `case N: // NAME` in Vm.ts is Op.NAME", async () => {
    const { Op } = await import("../src/Bytecode.js")
    const text = fs.readFileSync(path.resolve(__dirname, "../src/Vm.ts"), "utf8")
    const cases = [...text.matchAll(/case (\d+): \{? ?\/\/ ([A-Z]+)/g)]
    expect(cases.length).toBe(Object.keys(Op).length)
    for (const [, n, name] of cases) expect([name, Number(n)]).toEqual([name, Op[name as keyof typeof Op]])
  })
})

describe("Vm.run: a responsive run (event-loop turns while pure code runs)", () => {
  const busy = main("let mut i = 0\nwhile true { i = i + 1 }\ni")

  it("with turns on, the dispatch loop is left and re-entered at every clock check, not only per turn (V8 then optimises its entry and exit too)", () => {
    const p = compile(main("let mut i = 0\nwhile i < 100000 { i = i + 1 }\ni"))
    const drive = (yieldMs: number): Machine => {
      const m = new Machine(p, { maxSteps: 1e12, yieldMs })
      while (m.resume()._tag === "Yield") m.turnTaken()
      return m
    }
    // no turn is ever due in an hour: the exits are the clock checks themselves (one per 4096 steps)
    const checked = drive(3_600_000)
    expect(checked.stepCount).toBeGreaterThan(4096 * 50)
    expect(checked.loopEntries).toBe(Math.floor(checked.stepCount / 4096) + 1)
    // without turns (and without a wall-clock limit) nothing reads the clock: one entry
    expect(drive(Infinity).loopEntries).toBe(1)
  })

  it.live("a pure infinite loop can be interrupted: timers fire while it runs", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(run(compile(busy), { maxSteps: 1e15 }))
      // without turns the sleep's timer would never fire while the loop holds the thread
      yield* Effect.sleep("100 millis")
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
    }).pipe(Effect.provide(layerFor(allowAll))))

  it.live("a setTimeout and a setImmediate both run during a long pure computation", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      let steps = 0
      setTimeout(() => seen.push(`timer@${steps > 0 ? "running" : "before"}`), 20)
      const p = compile(main("let mut i = 0\nwhile i < 30000000 { i = i + 1 }\ni"))
      const v = yield* run(p, { maxSteps: 1e12, onMachine: (m) => void setImmediate(() => (steps = m.stepCount)) })
      expect(v).toBe(30000000)
      expect(seen).toEqual(["timer@running"])
    }).pipe(Effect.provide(layerFor(allowAll))))

  it.live("synchronously completing capability calls also give the event loop turns", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(run(compile(main("let mut i = 0\nwhile true { i = i + time.now() }\ni", "Int !{time.now}")), { maxSteps: 1e15 }))
      yield* Effect.sleep("100 millis")
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      const log = yield* events
      expect(log.length).toBeGreaterThan(10)
    }).pipe(Effect.provide(layerFor({ schema_version: 1, default_allow: true, rules: {} }))))

  it.live("yieldMs: Infinity keeps a run synchronous (Effect.runSync works)", () =>
    Effect.sync(() => {
      // long enough (tens of ms) that the default would take a turn, which runSync cannot
      const p = compile(main("let mut i = 0\nwhile i < 2000000 { i = i + 1 }\ni"))
      const v = Effect.runSync(Effect.provide(run(p, { yieldMs: Infinity, maxSteps: 1e12 }), layerFor(allowAll)))
      expect(v).toBe(2000000)
    }))

  it.live("turns never change an actor schedule: the same events with and without them", () =>
    Effect.gen(function*() {
      const src = `fn worker() -> Int {
  let mut n = 0
  let mut i = 0
  while i < 200000 { n = n + i % 3
    i = i + 1 }
  let m = receive
  n + m
}
fn main() -> Int {
  let w = spawn worker
  let mut i = 0
  while i < 300000 { i = i + 1 }
  send w 5
  i
}`
      const p = compile(src)
      const once = (yieldMs: number) =>
        Effect.gen(function*() {
          const log = EventLog.makeMemory()
          const v = yield* Effect.provide(run(p, { yieldMs }), Gateway.layer(allowAll).pipe(Layer.provideMerge(Layer.mergeAll(Handlers.make({}), Layer.succeed(EventLog.EventLog, log)))))
          return [show(v), JSON.stringify(log.events())]
        })
      const a = yield* once(Infinity)
      const b = yield* once(0.001) // a turn at nearly every check
      expect(b).toEqual(a)
    }))

  it.live("maxWallMs bounds a capability call that never returns: timeout at the call site", () =>
    Effect.gen(function*() {
      const p = compile(main(`fs.read("/slow")`, "String !{fs.read}"))
      const r = yield* Effect.either(run(p, { maxWallMs: 150 }))
      expect(Either.isLeft(r) && [r.left.kind, r.left.message, r.left.line, r.left.col]).toEqual([
        "timeout",
        "wall-clock limit exceeded: 150 ms (during this capability call)",
        2,
        1
      ])
    }).pipe(Effect.provide(layerFor(allowAll, { "fs.read": () => Effect.never }))))

  it.live("maxWallMs in pure code: timeout at the instruction running when it struck", () =>
    Effect.gen(function*() {
      const r = yield* Effect.either(run(compile(busy), { maxSteps: 1e15, maxWallMs: 100 }))
      expect(Either.isLeft(r) && [r.left.kind, r.left.message, r.left.line]).toEqual(["timeout", "wall-clock limit exceeded: 100 ms", 3])
    }).pipe(Effect.provide(layerFor(allowAll))))
})

// ---------------------------------------------------------------------------
// the built command: signals and --timeout while a program computes

describe("boruna run: signals and --timeout during pure computation", () => {
  const busyFile = (): { dir: string; file: string } => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "boruna-busy-"))
    const file = path.join(dir, "busy.ax")
    fs.writeFileSync(file, "fn main() -> Int {\n  let mut i = 0\n  while true { i = i + 1 }\n  i\n}\n")
    return { dir, file }
  }
  /** CPU seconds the process has used (Linux /proc): past start-up, it is in the loop. */
  const cpuSeconds = (pid: number): number => {
    const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")
    return (Number(f[11]) + Number(f[12])) / 100
  }
  const inLoop = async (pid: number): Promise<void> => {
    while (cpuSeconds(pid) < 1.2) await new Promise((r) => setTimeout(r, 50))
  }

  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    it.live(`${signal} during a pure while loop exits ${code} promptly`, () =>
      Effect.promise(async () => {
        await ensureBuilt()
        const { dir, file } = busyFile()
        try {
          const r = start(["run", file, "--max-steps", "100000000000000"])
          await inLoop(r.child.pid!)
          const t0 = Date.now()
          r.child.kill(signal)
          const done = await r.done
          const ms = Date.now() - t0
          expect([done.code, done.signal]).toEqual([code, null])
          expect(done.stderr).toContain("run interrupted")
          // a hang detector, not a speed target (the interval is measured in bench/vm.ts)
          expect(ms).toBeLessThan(5000)
        } finally {
          fs.rmSync(dir, { recursive: true, force: true })
        }
      }), 30_000)
  }

  it.live("--timeout and BORUNA_TIMEOUT stop a pure loop: error kind timeout at the loop, exit 5; a bad value is a usage error", () =>
    Effect.promise(async () => {
      await ensureBuilt()
      const { dir, file } = busyFile()
      try {
        const a = await boruna(["run", file, "--max-steps", "100000000000000", "--timeout", "300ms"])
        expect([a.code, a.stdout]).toEqual([5, ""])
        expect(a.stderr).toMatch(/^.*busy\.ax:3:\d+: error\[timeout\]: wall-clock limit exceeded: 300 ms\n$/)
        const b = await boruna(["run", file, "--max-steps", "100000000000000"], { BORUNA_TIMEOUT: "0.2s" })
        expect(b.code).toBe(5)
        expect(b.stderr).toContain("wall-clock limit exceeded: 200 ms")
        const c = await boruna(["run", file, "--timeout", "soon"])
        expect([c.code, c.stderr]).toEqual([2, "error[usage]: --timeout: expected a positive duration such as 500ms, 30s or 5m, got \"soon\"\n"])
        const d = await boruna(["run", file], { BORUNA_TIMEOUT: "-1" })
        expect(d.code).toBe(2)
        expect(d.stderr).toContain("BORUNA_TIMEOUT: expected a positive duration")
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    }), 60_000)
})
