/**
 * Durable workflows (docs/workflows.md), same process, two figures:
 *
 *  1. A run of one step making N demo calls (default 1,000) as journaled Activities on the SQLite
 *     engine (`boruna workflow run FILE.ax`), against the same program under `boruna run --record`
 *     (the VM, the gateway and the fsynced event-log file writer). Target ≤ 5×. Interleaved rounds
 *     on one open engine (a fresh run each round), the first `--warmup` rounds (default 3) not
 *     counted, so both sides are measured warm; the ratio is the median over the counted rounds
 *     (default 15) of workflow time / the same round's baseline time. Opening and closing the
 *     engine (once per process) is printed on its own line.
 *  2. R concurrent runs (default 100) of a three-step workflow on one SQLite engine: runs/s and the
 *     peak RSS while they run.
 *
 *   npm run build && node --expose-gc dist/bench/workflow.js [--calls 1000] [--rounds 15] [--warmup 3] [--runs 100]
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { programHash } from "../src/Bytecode.js"
import { compileSource } from "../src/Compiler.js"
import { makeHeader, openWriter } from "../src/EventLogFile.js"
import * as Gateway from "../src/Gateway.js"
import * as EventLog from "../src/EventLog.js"
import { demoService } from "../src/Handlers.js"
import { allowAll } from "../src/PolicyCore.js"
import * as Telemetry from "../src/Telemetry.js"
import * as Vm from "../src/Vm.js"
import { sqliteEngine } from "../src/WorkflowEngine.js"
import * as Runner from "../src/WorkflowRunner.js"

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? dflt : Number(process.argv[i + 1])
}

const program = (n: number): string =>
  `fn go(n: Int, acc: Int) -> Int !{time.now} { if n == 0 { acc } else { go(n - 1, acc + time.now() - time.now() + 1) } }\n` +
  `fn main() -> Int !{time.now} { go(${Math.ceil(n / 2)}, 0) }\n`

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

/** `boruna run FILE.ax --record LOG`, in process */
const recorded = (file: string, source: string, log: string): Effect.Effect<void> =>
  Effect.gen(function*() {
    const r = compileSource(file, source)
    if (!r.ok) return yield* Effect.die(new Error("compile"))
    const w = openWriter(log, makeHeader({ programHash: programHash(r.program), policy: allowAll, sourceFile: file }))
    if (w._tag === "Left") return yield* Effect.die(w.left)
    const writer = w.right
    yield* Vm.run(r.program, {}).pipe(
      Effect.provideService(Gateway.Gateway, Gateway.make({ policy: allowAll, handlers: demoService, log: writer, traced: false })),
      Effect.provideService(EventLog.EventLog, writer),
      Effect.orDie,
      Effect.ensuring(Effect.sync(() => writer.close()))
    )
  })

const engineLayer = (dir: string) => Runner.layer(sqliteEngine(dir)).pipe(Layer.provide(Telemetry.off), Layer.orDie)

export const main = Effect.gen(function*() {
  const calls = arg("calls", 1000)
  const rounds = arg("rounds", 15)
  const warmup = arg("warmup", 3)
  const runs = arg("runs", 100)
  const work = mkdtempSync(join(tmpdir(), "boruna-bench-wf-"))
  const file = join(work, "calls.ax")
  const source = program(calls)
  writeFileSync(file, source)

  // 1. N journaled calls vs boruna run --record, interleaved rounds on one open engine (its start and
  // stop, once per process, are reported on their own line: the baseline has no engine to open)
  const ratios: Array<number> = []
  const wfMs: Array<number> = []
  const baseMs: Array<number> = []
  const dir = join(work, "data")
  mkdirSync(dir)
  const t0 = performance.now()
  const scope = yield* Scope.make()
  const ctx = yield* Layer.buildWithScope(engineLayer(dir), scope)
  const openMs = performance.now() - t0
  // CPU time of this process beside wall time: the steadier figure on a loaded machine
  const cpuRatios: Array<number> = []
  const cpuMs = (): number => {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1000
  }
  for (let round = 0; round < warmup + rounds; round++) {
    const t1 = performance.now()
    const c1 = cpuMs()
    yield* recorded(file, source, join(work, `run-${round}.log`))
    const base = performance.now() - t1
    const baseCpu = cpuMs() - c1
    const t2 = performance.now()
    const c2 = cpuMs()
    // a fresh run each round (another run input, another run id), its step making `calls` calls
    const r = yield* Runner.startRun({ path: file, policy: allowAll, inputs: { round: String(round) } }).pipe(Effect.provide(ctx), Effect.orDie)
    const wf = performance.now() - t2
    const wfCpu = cpuMs() - c2
    if (r.status !== "completed") return yield* Effect.die(new Error(`run ${r.status}: ${r.error}`))
    if (round < warmup) continue
    ratios.push(wf / base)
    cpuRatios.push(wfCpu / baseCpu)
    wfMs.push(wf)
    baseMs.push(base)
  }
  const t3 = performance.now()
  yield* Scope.close(scope, Exit.void)
  const closeMs = performance.now() - t3
  console.log(`| mode | calls | ms (median) | ratio |`)
  console.log(`|---|---|---|---|`)
  console.log(`| boruna run --record (baseline) | ${calls} | ${median(baseMs).toFixed(0)} | 1.00x |`)
  console.log(`| workflow run, one step, journaled Activities (SQLite engine) | ${calls} | ${median(wfMs).toFixed(0)} | ${median(ratios).toFixed(2)}x (target <= 5x) |`)
  console.log(`| (CPU time of the process: workflow / baseline, median) | | | ${median(cpuRatios).toFixed(2)}x |`)
  console.log(`| (once per process: open the engine ${openMs.toFixed(0)} ms, close it ${closeMs.toFixed(0)} ms) | | | |`)

  // 2. R concurrent runs of a three-step workflow
  const wfDir = join(work, "three")
  mkdirSync(wfDir)
  writeFileSync(join(wfDir, "s.ax"), 'fn main() -> String !{net.fetch} { net.fetch("https://example.com/x") }\n')
  const step = (deps: Array<string>) => ({ kind: "source", source: "s.ax", depends_on: deps })
  const manyDir = join(work, "data-many")
  mkdirSync(manyDir)
  let peak = 0
  const sample = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 20)
  const t4 = performance.now()
  const results = yield* Effect.forEach(
    Array.from({ length: runs }, (_, i) => i),
    (i) =>
      Effect.suspend(() => {
        // distinct workflows (name) so each run gets its own run id
        writeFileSync(join(wfDir, `w${i}.json`), JSON.stringify({ schema_version: 1, name: `three-${i}`, version: "1", steps: { a: step([]), b: step(["a"]), c: step(["b"]) }, edges: [] }))
        return Runner.startRun({ path: join(wfDir, `w${i}.json`), policy: allowAll })
      }),
    { concurrency: runs }
  ).pipe(Effect.scoped, Effect.provide(engineLayer(manyDir)), Effect.orDie)
  const secs = (performance.now() - t4) / 1000
  clearInterval(sample)
  const ok = results.filter((r) => r.status === "completed").length
  console.log("")
  console.log(`| concurrent runs (3 steps each) | completed | seconds | runs/s | peak RSS |`)
  console.log(`|---|---|---|---|---|`)
  console.log(`| ${runs} | ${ok} | ${secs.toFixed(2)} | ${(ok / secs).toFixed(1)} | ${(peak / 1024 / 1024).toFixed(0)} MiB |`)
  rmSync(work, { recursive: true, force: true })
  if (ok !== runs) return yield* Effect.die(new Error(`${runs - ok} run(s) did not complete`))
})

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  Effect.runPromise(main).catch((e) => {
    console.error(e)
    process.exit(1)
  })
}
