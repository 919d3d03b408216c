/**
 * The determinism contract: a recorded run replays identically (same output, same events, same span
 * names and attributes), results are the program's only inputs, and telemetry never enters the log.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type BytecodeProgram, programHash } from "../src/Bytecode.js"
import { compileSource } from "../src/Compiler.js"
import * as EventLogFile from "../src/EventLogFile.js"
import * as Gateway from "../src/Gateway.js"
import * as Handlers from "../src/Handlers.js"
import { parsePolicy, type Policy } from "../src/Policy.js"
import * as Replay from "../src/Replay.js"
import * as Telemetry from "../src/Telemetry.js"
import { AxFloat, show } from "../src/Value.js"
import { Vm } from "../src/Vm.js"
import { boruna, ensureBuilt } from "./support/BuiltCli.js"

const SOURCE = `type Report { page: String, summary: String, at: Int, luck: Float, big: Int }

fn fetch_page(url: String) -> String !{net.fetch} { net.fetch(url) }

fn main() -> Report !{net.fetch, llm.call, time.now, random} {
    let page: String = fetch_page("https://news.example/today")
    let summary: String = llm.call("Summarise: " ++ page)
    let at: Int = time.now()
    let luck: Float = random()
    let r: Report = Report { page: page, summary: summary, at: at, luck: luck, big: at * 1000000000 }
    emit r
    r
}
`

const ACTORS = `fn worker() -> Int {
    let m: Int = receive
    emit m
    m
}

fn main() -> Int !{time.now} {
    let a = spawn worker
    send a time.now()
    1
}
`

const policy: Policy = Either.getOrThrow(
  parsePolicy(JSON.stringify({ rules: { "net.fetch": { allow: true, budget: 2 }, "llm.call": { allow: true }, "time.now": { allow: true }, random: { allow: true } } }))
)

const compile = (source: string): BytecodeProgram => {
  const r = compileSource("det.ax", source)
  if (!r.ok) throw new Error(r.diagnostics.map((d) => d.message).join("\n"))
  return r.program
}

/** Handlers whose answers a replay cannot guess: a nonce, the real clock, real randomness. */
const unguessable = () => {
  const nonce = Math.random().toString(36).slice(2)
  let n = 0
  return Handlers.make({
    "net.fetch": (args) => Effect.sync(() => `page ${String(args[0])} #${++n} ${nonce}`),
    "llm.call": (args) => Effect.sync(() => `summary of ${String(args[0]).length} chars ${nonce}`),
    "time.now": () => Effect.sync(() => Math.floor(Date.now() / 1000) + n),
    random: () => Effect.sync(() => new AxFloat(Math.random()))
  })
}

interface SpanShape {
  readonly name: string
  readonly attributes: Readonly<Record<string, unknown>>
  readonly status: string
  readonly events: ReadonlyArray<string>
}

const spanShapes = Effect.map(Telemetry.SpanRecorder, (r) =>
  r.spans().map((s): SpanShape => ({ name: s.name, attributes: s.attributes, status: s.status, events: s.events.map((e) => e.name) }))
)

const allSpanIds = Effect.map(Telemetry.SpanRecorder, (r) => r.spans().flatMap((s) => [s.spanId, s.traceId]))

/** Run `program` live-ish, recording the log to `file`, with spans in memory. */
const record = (program: BytecodeProgram, file: string) =>
  Effect.provide(
    Effect.all({
      out: Effect.map(Telemetry.withRunSpan(Vm.run(program)), show),
      spans: spanShapes,
      ids: allSpanIds
    }),
    Gateway.layer(policy).pipe(
      Layer.provideMerge(
        Layer.mergeAll(
          unguessable(),
          Layer.orDie(EventLogFile.fileLayer(file, EventLogFile.makeHeader({ programHash: programHash(program), policy, sourceFile: "det.ax" })))
        )
      ),
      Layer.provideMerge(Telemetry.memory)
    )
  )

/** Replay `program` against `log`, with spans in memory. */
const replay = (program: BytecodeProgram, log: EventLogFile.RecordedLog) =>
  Effect.provide(
    Effect.all({
      out: Effect.exit(Effect.map(Telemetry.withRunSpan(Vm.run(program)), show)),
      verdict: Replay.verdict,
      spans: spanShapes
    }),
    Replay.runtime(log).pipe(Layer.provideMerge(Telemetry.memory))
  )

const tmpFile = () => join(mkdtempSync(join(tmpdir(), "boruna-det-")), "run.json")

describe("determinism contract (.ax programs on the VM)", () => {
  const program = compile(SOURCE)

  it.effect("the same program + policy + log replays identically 100 times, spans included (names and attributes)", () =>
    Effect.gen(function*() {
      const file = tmpFile()
      const live = yield* record(program, file)
      expect(live.out).toMatch(/^Report \{ page: "page https:\/\/news\.example\/today #1 [a-z0-9]+", summary: "summary of \d+ chars/)
      const log = yield* EventLogFile.readLog(file)
      expect(log.events.map((e) => e.type)).toEqual([
        "CapCall", "CapResult", "CapCall", "CapResult", "CapCall", "CapResult", "CapCall", "CapResult", "UiEmit"
      ])
      expect(live.spans.map((s) => s.name)).toEqual(["boruna.cap", "boruna.cap", "boruna.cap", "boruna.cap", "boruna.run"])
      for (let i = 0; i < 100; i++) {
        const r = yield* replay(program, log)
        expect(r.out).toEqual(Exit.succeed(live.out))
        expect(r.verdict).toEqual({ _tag: "Identical", events: 9 })
        expect(r.spans).toEqual(live.spans)
      }
    }))

  it.effect("no span field enters the log: no trace or span id, no span attribute", () =>
    Effect.gen(function*() {
      const file = tmpFile()
      const live = yield* record(program, file)
      const text = readFileSync(file, "utf8")
      expect(live.ids.length).toBeGreaterThan(0)
      for (const id of live.ids) expect(text).not.toContain(id)
      for (const key of ["bytes_in", "bytes_out", "cap.name", "cap.budget_remaining", "boruna.cap", "boruna.run", "span", "trace"]) {
        expect(text).not.toContain(key)
      }
      // and every key in the file is one of the log format's own
      const keys = new Set<string>()
      const walk = (j: unknown, inValue: boolean): void => {
        if (Array.isArray(j)) return j.forEach((x) => walk(x, inValue))
        if (typeof j !== "object" || j === null) return
        for (const [k, v] of Object.entries(j)) {
          if (!inValue) keys.add(k)
          walk(v, inValue || ["args", "result", "tree", "payload", "policy"].includes(k))
        }
      }
      text.trimEnd().split("\n").forEach((l) => walk(JSON.parse(l), false))
      expect([...keys].sort()).toEqual(
        [
          "CapCall", "CapResult", "UiEmit", "args", "capability", "capability_set_hash", "col", "created_at", "file", "fn", "format",
          "line", "policy", "policy_hash", "program_hash", "result", "site", "source_file", "tree", "version",
          // the hash chain's seals
          "Seal", "digest", "events", "final"
        ].sort()
      )
    }))

  it.effect("changing one byte of a recorded result changes the replayed output (results are the inputs)", () =>
    Effect.gen(function*() {
      const file = tmpFile()
      const live = yield* record(program, file)
      const text = readFileSync(file, "utf8")
      const at = text.indexOf(`"summary of `)
      expect(at).toBeGreaterThan(0)
      writeFileSync(file, text.slice(0, at + 1) + "S" + text.slice(at + 2)) // one byte: s → S
      // the hash chain sees the edit; read past it to replay the edited result
      const edited = yield* EventLogFile.readLog(file, { allowBrokenChain: true })
      expect(edited.chain?.broken?.reason).toMatch(/^hash chain broken: lines \d+–\d+ changed after recording/)
      const r = yield* replay(program, edited)
      expect(Exit.isSuccess(r.out)).toBe(true)
      if (Exit.isSuccess(r.out)) {
        expect(r.out.value).not.toBe(live.out)
        expect(r.out.value).toBe(live.out.replace(`summary: "summary of`, `summary: "Summary of`))
      }
    }))

  it.effect("changing the program's capability calls is a divergence naming the new call's source location, and drift", () =>
    Effect.gen(function*() {
      const file = tmpFile()
      yield* record(program, file)
      const log = yield* EventLogFile.readLog(file)
      const changed = compile(SOURCE.replace(`fetch_page("https://news.example/today")`, `fetch_page("https://news.example/tomorrow")`))
      expect(Replay.drift(log.header, { programHash: programHash(changed), policy }).map((d) => d.what)).toEqual(["program"])
      expect(Replay.drift(log.header, { programHash: programHash(program), policy })).toEqual([])
      const r = yield* replay(changed, log)
      expect(Exit.isFailure(r.out)).toBe(true)
      expect(r.verdict._tag).toBe("Diverged")
      if (r.verdict._tag !== "Diverged") return
      expect(r.verdict.divergence).toMatchObject({ index: 0, kind: "call" })
      const lines = Replay.formatVerdict(r.verdict)
      expect(lines[0]).toBe("replay: diverged at event #0: the program's capability call differs from the recorded one")
      expect(lines[1]).toBe(`  expected: net.fetch("https://news.example/today")`)
      expect(lines[2]).toBe(`  actual:   net.fetch("https://news.example/tomorrow")`)
      expect(lines[3]).toMatch(/^ {2}at det\.ax:3:\d+ in fetch_page$/)
      expect(lines[4]).toMatch(/^ {2}recorded at det\.ax:3:\d+ in fetch_page$/)

      // a call added after the recorded ones
      const extra = compile(SOURCE.replace("    emit r\n", "    emit r\n    let again: Int = time.now()\n"))
      const e = yield* replay(extra, log)
      expect(e.verdict._tag === "Diverged" && e.verdict.divergence).toMatchObject({ kind: "extra-call" })
    }))

  it.effect("actor runs (spawn, send, receive, scheduler ticks, UI) replay identically event for event", () =>
    Effect.gen(function*() {
      const actors = compile(ACTORS)
      const file = tmpFile()
      const live = yield* record(actors, file)
      const log = yield* EventLogFile.readLog(file)
      expect(log.events.some((e) => e.type === "ActorSpawn")).toBe(true)
      const r = yield* replay(actors, log)
      expect(r.out).toEqual(Exit.succeed(live.out))
      expect(r.verdict).toEqual({ _tag: "Identical", events: log.events.length })
    }))
})

describe("deep values through --record and replay (100,000 levels)", () => {
  it("emit and send of a value nested 100,000 levels deep record, and the log replays identically", async () => {
    await ensureBuilt()
    const dir = mkdtempSync(join(tmpdir(), "boruna-deep-"))
    const file = join(dir, "deep.ax")
    writeFileSync(file, `enum L { Nil, Cons(Cell) }
type Cell { h: Int, t: L }
fn build(n: Int) -> L {
  let mut l = Nil
  let mut i = 0
  while i < n {
    l = Cons(Cell { h: i, t: l })
    i = i + 1
  }
  l
}
fn sink() -> Int {
  let m = receive
  1
}
fn main() -> Bool {
  let a = build(100000)
  emit a
  let s = spawn sink
  send s a
  a == build(100000)
}
`)
    const log = join(dir, "run.jsonl")
    const rec = await boruna(["run", file, "--record", log])
    expect([rec.code, rec.stdout, rec.stderr]).toEqual([0, "true\n", `events recorded to ${log}\n`])
    const text = readFileSync(log, "utf8")
    expect(text).toContain(`{"UiEmit":{"tree":{"Enum":{"type":"L","variant":1,"name":"Cons","payload":{"Record":{"type":"P"`.replace("\"P\"", "\"Cell\""))
    const rep = await boruna(["replay", file, log])
    expect(rep.code, rep.stderr).toBe(0)
    expect(rep.stdout).toMatch(/^true\nreplay: identical \(\d+ events\)\n$/)
  }, 60_000)
})
