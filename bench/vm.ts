/**
 * The `.ax` VM against plain TypeScript, same process, same algorithm:
 *
 *   npm run build && node --expose-gc dist/bench/vm.js [--runs 5] [--fresh]
 *
 * - `fib(30)`: call-heavy recursion (the headline ratio; target ≤ 30×);
 * - `loop`: a 3,000,000-iteration `while` loop of Int arithmetic;
 * - `strings`: 100,000 iterations of string building, splitting, case mapping, parsing and list
 *   access through the builtins;
 * - `list_push 1M`: a 1,000,000-element list built with `list_push` in a loop, against a plain
 *   array's `push` (target ≤ 20×);
 * - `map_set 100k`: a 100,000-key map built with `map_set` in a loop, against a plain `Map`'s `set`
 *   (target ≤ 20×);
 * - `map_get 1M`: 1,000,000 `map_get` lookups in a 1,000-key map, against a plain `Map`'s `get`;
 * - `list_tail 100k`: a 100,000-element list drained with `xs = list_tail(xs)` (reading the head
 *   each time), against an index moving along a plain array (linear; a copying tail would make it
 *   quadratic: ~5·10⁹ element copies).
 * Each program is compiled once; two warm-up runs, then the median of `--runs` runs of each side,
 * alternating, in wall-clock time (`ratio`) and in CPU time (`CPU ratio`, the steadier one when
 * other processes share the cores; GC and JIT threads count).
 * The VM runs with `maxSteps` raised (the default 10,000,000 would stop fib(30)).
 *
 * What would get within 3× of plain TypeScript: compile each `.ax` function to a JavaScript
 * function (`new Function` over generated source) instead of interpreting bytecode — locals as JS
 * `let`s, `.ax` calls as JS calls with an explicit depth counter, Int `+ - *` inlined as the same
 * `number` fast path with the overflow check (`r <= MAX_SAFE && r >= -MAX_SAFE`, BigInt only on the
 * slow path), step accounting per loop back-edge and per call instead of per instruction, and a
 * capability call as a generator `yield` (or a CPS split at CAP sites) so the Effect driver can
 * still resume it. The checker's types make the Int/Float/String specialisation static. V8 then
 * optimises the `.ax` code like the handwritten TypeScript; the remaining cost is the overflow and
 * depth checks.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { spawnSync } from "node:child_process"
import * as os from "node:os"
import { fileURLToPath, pathToFileURL } from "node:url"
import type { BytecodeProgram } from "../src/Bytecode.js"
import { compileSource } from "../src/Compiler.js"
import * as EventLog from "../src/EventLog.js"
import * as Gateway from "../src/Gateway.js"
import * as Handlers from "../src/Handlers.js"
import { denyAll } from "../src/Policy.js"
import { show } from "../src/Value.js"
import { DEFAULT_TURN_MS, Machine, Vm } from "../src/Vm.js"

export interface Row {
  readonly name: string
  readonly axMs: number
  readonly tsMs: number
  readonly ratio: number
  /** the same ratio in CPU time (steadier on a shared machine: waiting for a core is not counted) */
  readonly cpuRatio: number
  readonly steps: number
  readonly nsPerStep: number
}

const now = (): number => Number(process.hrtime.bigint()) / 1e6

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

interface Case {
  readonly name: string
  readonly source: string
  readonly ts: () => number
}

const FIB = `fn fib(n: Int) -> Int {
  if n <= 1 { n } else { fib(n - 1) + fib(n - 2) }
}
fn main() -> Int { fib(30) }
`
const fibTs = (n: number): number => (n <= 1 ? n : fibTs(n - 1) + fibTs(n - 2))

const LOOP = `fn main() -> Int {
  let mut s = 0
  let mut i = 0
  while i < 3000000 {
    s = (s + i * i) % 1000003
    i = i + 1
  }
  s
}
`
const loopTs = (): number => {
  let s = 0
  let i = 0
  while (i < 3000000) {
    s = (s + i * i) % 1000003
    i = i + 1
  }
  return s
}

const STRINGS = `fn main() -> Int {
  let mut total = 0
  let mut i = 0
  while i < 100000 {
    let line = "id-" ++ int_to_string(i) ++ ",alpha,beta,gamma," ++ int_to_string(i * 7)
    let parts = __builtin_string_split(line, ",")
    let up = __builtin_string_to_upper(list_get(parts, 1))
    total = total + __builtin_string_len(up) + parse_int(list_get(parts, 4)) % 10 + list_len(parts)
    i = i + 1
  }
  total
}
`
const stringsTs = (): number => {
  let total = 0
  let i = 0
  while (i < 100000) {
    const line = "id-" + String(i) + ",alpha,beta,gamma," + String(i * 7)
    const parts = line.split(",")
    const up = parts[1].toUpperCase()
    total = total + Buffer.byteLength(up) + (Number.parseInt(parts[4].trim(), 10) % 10) + parts.length
    i = i + 1
  }
  return total
}

// building collections in a loop: persistent structures, so each push/set is O(log n), not a copy
const LIST_PUSH = `fn main() -> Int {
  let mut xs: List<Int> = []
  let mut i = 0
  while i < 1000000 {
    xs = list_push(xs, i)
    i = i + 1
  }
  list_len(xs) + list_get(xs, 999999)
}
`
const listPushTs = (): number => {
  const xs: Array<number> = []
  let i = 0
  while (i < 1000000) {
    xs.push(i)
    i = i + 1
  }
  return xs.length + xs[999999]
}

const MAP_SET = `fn main() -> Int {
  let mut m: Map<Int, Int> = {}
  let mut i = 0
  while i < 100000 {
    m = __builtin_map_set(m, i, i * 2)
    i = i + 1
  }
  __builtin_map_len(m)
}
`
const mapSetTs = (): number => {
  const m = new Map<number, number>()
  let i = 0
  while (i < 100000) {
    m.set(i, i * 2)
    i = i + 1
  }
  return m.size
}

const MAP_GET = `fn main() -> Int {
  let mut m: Map<Int, Int> = {}
  let mut i = 0
  while i < 1000 {
    m = __builtin_map_set(m, i, i * 3)
    i = i + 1
  }
  let mut total = 0
  let mut j = 0
  while j < 1000000 {
    total = total + match __builtin_map_get(m, j % 1000) { Some(v) => v, None => 0 }
    j = j + 1
  }
  total
}
`
const mapGetTs = (): number => {
  const m = new Map<number, number>()
  let i = 0
  while (i < 1000) {
    m.set(i, i * 3)
    i = i + 1
  }
  let total = 0
  let j = 0
  while (j < 1000000) {
    const v = m.get(j % 1000)
    total = total + (v === undefined ? 0 : v)
    j = j + 1
  }
  return total
}

const LIST_TAIL = `fn main() -> Int {
  let mut xs: List<Int> = []
  let mut i = 0
  while i < 100000 {
    xs = list_push(xs, i)
    i = i + 1
  }
  let mut total = 0
  while list_len(xs) > 0 {
    total = total + list_get(xs, 0)
    xs = __builtin_list_tail(xs)
  }
  total
}
`
const listTailTs = (): number => {
  const xs: Array<number> = []
  let i = 0
  while (i < 100000) {
    xs.push(i)
    i = i + 1
  }
  let total = 0
  let start = 0
  while (xs.length - start > 0) {
    total = total + xs[start]
    start = start + 1
  }
  return total
}

/** Machines kept alive between rounds (see `runTurns`). */
const kept: Array<Machine> = []

/** The same program through `Vm.run` (the Effect driver, with its event-loop turns every `DEFAULT_TURN_MS`). */
const runDriver = async (p: BytecodeProgram, yieldMs?: number): Promise<{ value: string; ms: number; cpuMs: number }> => {
  const services = Gateway.layer(denyAll).pipe(
    Layer.provideMerge(Layer.mergeAll(Layer.succeed(Handlers.Handlers, Handlers.demoService), Layer.succeed(EventLog.EventLog, EventLog.makeMemory())))
  )
  const keep = (m: Machine): void => {
    kept.push(m)
    if (kept.length > 2) kept.shift()
  }
  const c0 = process.cpuUsage()
  const t0 = now()
  const v = await Effect.runPromise(
    Effect.provide(Vm.run(p, yieldMs === undefined ? { maxSteps: 1e12, onMachine: keep } : { maxSteps: 1e12, yieldMs, onMachine: keep }), services)
  )
  const ms = now() - t0
  const c = process.cpuUsage(c0)
  return { value: show(v), ms, cpuMs: (c.user + c.system) / 1000 }
}

const CASES: ReadonlyArray<Case> = [
  { name: "fib(30)", source: FIB, ts: () => fibTs(30) },
  { name: "loop 3M", source: LOOP, ts: loopTs },
  { name: "strings 100k", source: STRINGS, ts: stringsTs },
  { name: "list_push 1M", source: LIST_PUSH, ts: listPushTs },
  { name: "map_set 100k", source: MAP_SET, ts: mapSetTs },
  { name: "map_get 1M", source: MAP_GET, ts: mapGetTs },
  { name: "list_tail 100k", source: LIST_TAIL, ts: listTailTs }
]

const compile = (name: string, source: string): BytecodeProgram => {
  const r = compileSource(`${name}.ax`, source)
  if (!r.ok) throw new Error(`${name}: ${r.diagnostics.map((d) => d.message).join("; ")}`)
  return r.program
}

const cpuNow = (): number => {
  const c = process.cpuUsage()
  return (c.user + c.system) / 1000
}

const runAx = (p: BytecodeProgram): { value: string; ms: number; cpuMs: number; steps: number } => {
  const c0 = cpuNow()
  const t0 = now()
  const m = new Machine(p, { maxSteps: 1e12 })
  const s = m.resume()
  const ms = now() - t0
  const cpuMs = cpuNow() - c0
  if (s._tag !== "Done") throw new Error("unexpected capability call")
  return { value: show(s.value), ms, cpuMs, steps: m.stepCount }
}

const gc = (): void => {
  const g = (globalThis as { gc?: () => void }).gc
  if (g !== undefined) g()
}

export const run = (options: { readonly runs?: number } = {}): ReadonlyArray<Row> => {
  const runs = options.runs ?? 5
  return CASES.map((c) => {
    const p = compile(c.name, c.source)
    // two warm-up runs: V8 settles the dispatch loop's optimised code after the second
    runAx(p)
    const warm = runAx(p)
    c.ts()
    const expected = String(c.ts())
    if (warm.value !== expected) throw new Error(`${c.name}: .ax gave ${warm.value}, TypeScript ${expected}`)
    const ax: Array<number> = []
    const ts: Array<number> = []
    const axCpu: Array<number> = []
    const tsCpu: Array<number> = []
    for (let i = 0; i < runs; i++) {
      gc()
      const r = runAx(p)
      ax.push(r.ms)
      axCpu.push(r.cpuMs)
      gc()
      const c0 = cpuNow()
      const t0 = now()
      c.ts()
      ts.push(now() - t0)
      tsCpu.push(cpuNow() - c0)
    }
    const axMs = median(ax)
    const tsMs = median(ts)
    const cpuRatio = median(axCpu) / Math.max(median(tsCpu), 0.001)
    return { name: c.name, axMs, tsMs, ratio: axMs / tsMs, cpuRatio, steps: warm.steps, nsPerStep: (axMs * 1e6) / warm.steps }
  })
}

/**
 * The cost of the driver's event-loop turns: `loop 3M` through `Vm.run` with its default turns
 * against `Vm.run` with `yieldMs: Infinity` (never a turn), in ABBA order (so neither side always
 * runs first after a GC), median of `runs` each, as wall-clock and as CPU time (target: within 5 %).
 *
 * The last machines stay referenced across rounds: once every machine of a round is garbage, the
 * forced GC between rounds frees the hidden classes of `Machine` and `Actor`, which clears the
 * type feedback of the dispatch loop, and every round re-measures V8's warm-up (a few compiles of
 * `exec`, tens of ms on a loaded 2-core machine) instead of the turns. That warm-up is a one-time
 * cost per process, not per turn: in a fresh process it is there with or without turns (the turn
 * exits add a compile or two of it; `--fresh` measures that separately, one process per run).
 * CPU time is the steadier figure on a shared machine: waiting for a core is not a cost of turns.
 */
export const runTurns = async (
  options: { readonly runs?: number } = {}
): Promise<{ machineMs: number; driverMs: number; ratio: number; machineCpuMs: number; driverCpuMs: number; cpuRatio: number }> => {
  const runs = Math.max(options.runs ?? 5, 9)
  const p = compile("loop 3M", LOOP)
  for (let w = 0; w < 3; w++) {
    await runDriver(p, Infinity)
    await runDriver(p)
  }
  const bare: Array<number> = []
  const driven: Array<number> = []
  const bareCpu: Array<number> = []
  const drivenCpu: Array<number> = []
  const one = async (turns: boolean): Promise<void> => {
    gc()
    const r = await runDriver(p, turns ? undefined : Infinity)
    ;(turns ? driven : bare).push(r.ms)
    ;(turns ? drivenCpu : bareCpu).push(r.cpuMs)
  }
  for (let i = 0; i < runs; i++) {
    const turnsFirst = i % 2 === 1
    await one(turnsFirst)
    await one(!turnsFirst)
  }
  const machineMs = median(bare)
  const driverMs = median(driven)
  const machineCpuMs = median(bareCpu)
  const driverCpuMs = median(drivenCpu)
  return { machineMs, driverMs, ratio: driverMs / machineMs, machineCpuMs, driverCpuMs, cpuRatio: driverCpuMs / machineCpuMs }
}

/**
 * `--fresh`: the same comparison with one new process per run (alternating), so every run includes
 * V8's warm-up, as `boruna run` does: the median of `runs` CPU times each.
 */
export const runTurnsFresh = (options: { readonly runs?: number } = {}): { machineCpuMs: number; driverCpuMs: number; cpuRatio: number } => {
  const runs = Math.max(options.runs ?? 5, 9)
  const one = (turns: boolean): number => {
    const r = spawnSync(process.execPath, ["--expose-gc", fileURLToPath(import.meta.url), "--one", turns ? "turns" : "none"], { encoding: "utf8" })
    const ms = Number(r.stdout.trim())
    if (r.status !== 0 || !Number.isFinite(ms)) throw new Error(`--one failed: ${r.stderr}`)
    return ms
  }
  const bare: Array<number> = []
  const driven: Array<number> = []
  for (let i = 0; i < runs; i++) {
    const turnsFirst = i % 2 === 1
    ;(turnsFirst ? driven : bare).push(one(turnsFirst))
    ;(turnsFirst ? bare : driven).push(one(!turnsFirst))
  }
  const machineCpuMs = median(bare)
  const driverCpuMs = median(driven)
  return { machineCpuMs, driverCpuMs, cpuRatio: driverCpuMs / machineCpuMs }
}

export const print = (rows: ReadonlyArray<Row>): void => {
  const pad = (s: string, n: number) => s.padStart(n)
  console.log(`${"program".padEnd(15)}${pad(".ax ms", 10)}${pad("TS ms", 10)}${pad("ratio", 9)}${pad("CPU ratio", 11)}${pad("steps", 13)}${pad("ns/step", 9)}`)
  for (const r of rows) {
    console.log(
      r.name.padEnd(15) + pad(r.axMs.toFixed(1), 10) + pad(r.tsMs.toFixed(2), 10) + pad(r.ratio.toFixed(1) + "×", 9) +
        pad(r.cpuRatio.toFixed(1) + "×", 11) + pad(String(r.steps), 13) + pad(r.nsPerStep.toFixed(1), 9)
    )
  }
  const fib = rows.find((r) => r.name === "fib(30)")
  if (fib !== undefined) console.log(`fib(30) target ≤ 30×: ${fib.ratio <= 30 ? "met" : "NOT met"} (${fib.ratio.toFixed(1)}×)`)
  for (const name of ["list_push 1M", "map_set 100k"]) {
    const r = rows.find((x) => x.name === name)
    if (r !== undefined) console.log(`${name} target ≤ 20×: ${r.ratio <= 20 ? "met" : "NOT met"} (${r.ratio.toFixed(1)}×)`)
  }
}

const pct = (ratio: number): string => `${ratio >= 1 ? "+" : ""}${((ratio - 1) * 100).toFixed(1)} %`

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const one = process.argv.indexOf("--one")
  if (one >= 0) {
    // a child of `--fresh`: one cold run, its CPU milliseconds on stdout
    void runDriver(compile("loop 3M", LOOP), process.argv[one + 1] === "turns" ? undefined : Infinity).then((r) => console.log(r.cpuMs.toFixed(2)))
  } else {
    const i = process.argv.indexOf("--runs")
    const runs = i < 0 ? undefined : Number(process.argv[i + 1])
    console.log(`load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`)
    print(run({ runs }))
    void runTurns({ runs }).then((t) => {
      console.log(
        `loop 3M via Vm.run, a turn every ${DEFAULT_TURN_MS} ms vs no turns (warm, ABBA, medians): ` +
          `CPU ${t.driverCpuMs.toFixed(1)} vs ${t.machineCpuMs.toFixed(1)} ms: ${pct(t.cpuRatio)}, ` +
          `wall ${t.driverMs.toFixed(1)} vs ${t.machineMs.toFixed(1)} ms: ${pct(t.ratio)} (target ≤ 5 %)`
      )
      if (process.argv.includes("--fresh")) {
        const f = runTurnsFresh({ runs })
        console.log(
          `the same, one fresh process per run (JIT warm-up included): CPU ${f.driverCpuMs.toFixed(1)} vs ${f.machineCpuMs.toFixed(1)} ms: ${pct(f.cpuRatio)}`
        )
      }
      console.log(`load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`)
    })
  }
}
