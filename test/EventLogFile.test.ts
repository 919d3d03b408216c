import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import { execFile } from "node:child_process"
import { createHash } from "node:crypto"
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type { CallSite, Event } from "../src/Event.js"
import { EventLog } from "../src/EventLog.js"
import * as EventLogFile from "../src/EventLogFile.js"
import { allowAll, parsePolicy, type Policy, policyHash } from "../src/Policy.js"
import { canonicalJson, toJson } from "../src/ValueJson.js"
import { AxFloat, EnumV, equals, ErrV, mkMap, None, OkV, RecordV, SomeV, Unit, type Value } from "../src/Value.js"

/**
 * Structural equality of two values where a NaN float equals a NaN float (Value's `equals` is IEEE,
 * so a list holding NaN never equals itself); everything else is compared with `equals`.
 */
const sameValue = (a: Value, b: Value): boolean => {
  if (b instanceof AxFloat && Number.isNaN(b.value)) return a instanceof AxFloat && Number.isNaN(a.value)
  if (Array.isArray(b)) return Array.isArray(a) && a.length === b.length && b.every((x, i) => sameValue(a[i], x))
  return equals(a, b)
}

const sha256 = (text: string): string => `sha256:${createHash("sha256").update(text, "utf8").digest("hex")}`

const tmp = () => mkdtempSync(join(tmpdir(), "boruna-log-"))

const policy: Policy = Either.getOrThrow(
  parsePolicy(JSON.stringify({ rules: { "net.fetch": { allow: true, budget: 3 } }, net_policy: { allowed_domains: ["127.0.0.1"] } }))
)
const header = EventLogFile.makeHeader({ programHash: "sha256:abc", policy, sourceFile: "main.ax", createdAt: new Date(0) })

// values that a careless encoder would round, collapse or reorder
const tricky: ReadonlyArray<Value> = [
  2n ** 53n + 1n,
  -(2n ** 63n),
  2n ** 63n - 1n,
  Number.MAX_SAFE_INTEGER,
  -0,
  new AxFloat(NaN),
  new AxFloat(Infinity),
  new AxFloat(-Infinity),
  new AxFloat(-0),
  new AxFloat(1),
  new AxFloat(0.1 + 0.2),
  "unicode ✓ \u0000 \n \"quoted\"",
  true,
  Unit,
  None,
  new SomeV(new OkV(new ErrV(""))),
  new RecordV("User", ["name", "age"], ["Ada", 36]),
  new EnumV("Color", 2, "Custom", new RecordV("Rgb", ["r"], [255])),
  new EnumV("Color", 0, "Red", undefined),
  mkMap([["b", 1], ["a", [1, 2n ** 60n]]]),
  mkMap([[3, "x"], [2n ** 62n, "big"], [-1, "neg"]]),
  [[], [mkMap([])], [new AxFloat(2.5)]]
]

const events: ReadonlyArray<Event> = [
  { type: "CapCall", capability: "net.fetch", args: ["https://example.com/"], site: { file: "main.ax", line: 3, col: 13, fn: "main" } },
  { type: "CapResult", capability: "net.fetch", result: tricky },
  { type: "CapCall", capability: "random", args: [] },
  { type: "CapError", capability: "random", kind: "runtime_error", message: "random failed: boom" },
  { type: "UiEmit", tree: new RecordV("Node", ["tag"], ["div"]) },
  { type: "ActorSpawn", actorId: 1, function: "worker" },
  { type: "MessageSend", from: 0, to: 1, payload: 2n ** 53n + 1n },
  { type: "MessageReceive", actorId: 1, payload: new AxFloat(NaN) },
  { type: "SchedulerTick", round: 4, activeActor: 1 }
]

const valuesOf = (e: Event): ReadonlyArray<Value> =>
  e.type === "CapCall" ? e.args : e.type === "CapResult" ? [e.result] : e.type === "UiEmit" ? [e.tree] : "payload" in e ? [e.payload] : []

describe("EventLogFile: format", () => {
  it("round-trips every event kind and exact values; the file re-encodes byte for byte", () => {
    const file = join(tmp(), "run.json")
    expect(Either.isRight(EventLogFile.writeLog(file, header, events))).toBe(true)
    const text = readFileSync(file, "utf8")
    const log = Effect.runSync(EventLogFile.readLog(file))
    expect(log.header).toEqual(header)
    expect(log.torn).toBeUndefined()
    expect(log.events.map((e) => e.type)).toEqual(events.map((e) => e.type))
    log.events.forEach((e, i) => {
      const a = valuesOf(e)
      const b = valuesOf(events[i])
      expect(a.length).toBe(b.length)
      a.forEach((v, j) => expect(canonicalJson(toJson(v))).toBe(canonicalJson(toJson(b[j]))))
      a.forEach((v, j) => expect(sameValue(v, b[j])).toBe(true))
    })
    // the bigint survived as a bigint, not a rounded double
    const result = (log.events[1] as Extract<Event, { type: "CapResult" }>).result as ReadonlyArray<Value>
    expect(result[0]).toBe(2n ** 53n + 1n)
    expect(Object.is((result[8] as AxFloat).value, -0)).toBe(true)
    expect(result[9]).toBeInstanceOf(AxFloat)
    expect(EventLogFile.formatLog(log.header, log.events)).toBe(text)
  })

  it("header first, its seal, one event per line, values in the exact JSON form, then the seals", () => {
    const text = EventLogFile.formatLog(header, events.slice(0, 2))
    const lines = text.split("\n")
    expect(lines).toHaveLength(6)
    expect(lines[5]).toBe("")
    expect(JSON.parse(lines[1])).toEqual({ Seal: { events: 0, digest: sha256(lines[0] + "\n") } })
    expect(JSON.parse(lines[4])).toEqual({ Seal: { events: 2, digest: sha256(lines.slice(0, 4).join("\n") + "\n"), final: true } })
    expect(JSON.parse(lines[0])).toMatchObject({
      format: "boruna-event-log",
      version: 2,
      program_hash: "sha256:abc",
      policy_hash: policyHash(policy),
      source_file: "main.ax",
      created_at: "1970-01-01T00:00:00.000Z"
    })
    expect(JSON.parse(lines[0]).capability_set_hash).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(lines[2]).toBe(
      `{"CapCall":{"capability":"net.fetch","args":[{"String":"https://example.com/"}],"site":{"file":"main.ax","line":3,"col":13,"fn":"main"}}}`
    )
    expect(lines[3]).toContain(`{"Int":"9007199254740993"}`)
    expect(lines[3]).toContain(`{"Float":"NaN"}`)
    expect(lines[3]).toContain(`{"Record":{"type":"User","fields":{"name":{"String":"Ada"},"age":{"Int":36}}}}`)
  })
})

describe("EventLogFile: the writer's fast encoders", () => {
  it("encodeCall and encodeResult are byte for byte encodeEvent, for every tricky value and site form", () => {
    const sites = [undefined, { file: "a.ax", line: 1, col: 2 }, { file: "dir/ü \"q\".ax", line: 30, col: 4, fn: "main" }]
    for (const v of [...tricky, 0, -5, 2 ** 40, "", "ascii", "line\nbreak \u2028 ✓", false]) {
      expect(EventLogFile.encodeResult("net.fetch", v)).toBe(EventLogFile.encodeEvent({ type: "CapResult", capability: "net.fetch", result: v }))
      for (const site of sites) {
        const args = [v, "x", 3]
        const e: Event = site === undefined ? { type: "CapCall", capability: "llm.call", args } : { type: "CapCall", capability: "llm.call", args, site }
        expect(EventLogFile.encodeCall("llm.call", args, site)).toBe(EventLogFile.encodeEvent(e))
      }
    }
    expect(EventLogFile.encodeCall("time.now", [], undefined)).toBe(EventLogFile.encodeEvent({ type: "CapCall", capability: "time.now", args: [] }))
  })

  it("a result nested 100,000 levels deep: encodeResult writes what encodeEvent writes (V8's JSON.stringify would overflow)", () => {
    let deep: Value = 1
    for (let i = 0; i < 100_000; i++) deep = new SomeV(deep)
    const text = EventLogFile.encodeResult("json.parse", deep)
    expect(text).toBe(EventLogFile.encodeEvent({ type: "CapResult", capability: "json.parse", result: deep }))
    expect(text.startsWith(`{"CapResult":{"capability":"json.parse","result":{"Some":{"Some":`)).toBe(true)
  })

  it("the per-site text is never handed to another site: same line and column, another file, function, capability or column", () => {
    const sites: ReadonlyArray<CallSite> = [
      { file: "a.ax", line: 5, col: 12, fn: "main" },
      { file: "b.ax", line: 5, col: 12, fn: "main" },
      { file: "a.ax", line: 5, col: 12, fn: "other" },
      { file: "a.ax", line: 5, col: 12 },
      { file: "a.ax", line: 5, col: 12 + 65536, fn: "main" },
      { file: "a.ax", line: 6, col: 12, fn: "main" }
    ]
    // each site right after another: a cache keyed loosely would hand the previous one's text on
    for (const capability of ["time.now", "random"]) {
      for (const args of [[], ["x"]]) {
        for (const site of [...sites, ...sites]) {
          expect(EventLogFile.encodeCall(capability, args, site)).toBe(EventLogFile.encodeEvent({ type: "CapCall", capability, args, site }))
        }
      }
    }
  })

  it("what the writer writes is formatLog's text byte for byte: events larger than its buffer, multi-byte text across its refills", () => {
    const file = join(tmp(), "run.json")
    // a clock that never moves: one window, so the file is exactly formatLog's (header, events, final seal)
    const w = Either.getOrThrow(EventLogFile.openWriter(file, header, { io: { ...EventLogFile.nodeIo, now: () => 0 } }))
    const written: Array<Event> = []
    const site: CallSite = { file: "dir/ü.ax", line: 3, col: 7, fn: "main" }
    const big = "✓ü€😀".repeat(200_000) // 2.6 MB of UTF-8: ten times the writer's buffer
    for (let i = 0; i < 30_000; i++) {
      const args: ReadonlyArray<Value> = i % 3 === 0 ? [] : [`ü${i}😀`, i]
      const result: Value = i === 12_345 ? big : i % 2 === 0 ? i : `€${"x".repeat(i % 97)}`
      w.appendCall!("llm.call", args, site)
      w.appendResult!("llm.call", result)
      written.push({ type: "CapCall", capability: "llm.call", args, site }, { type: "CapResult", capability: "llm.call", result })
      if (i % 1000 === 0) {
        const e: Event = { type: "UiEmit", tree: mkMap([["k", big.slice(0, i)]]) }
        w.append(e)
        written.push(e)
      }
    }
    w.close()
    expect(w.failure()).toBeUndefined()
    expect(readFileSync(file, "utf8")).toBe(EventLogFile.formatLog(header, written))
    const log = Effect.runSync(EventLogFile.readLog(file))
    expect(log.events).toHaveLength(written.length)
    expect(log.chain).toEqual({ chained: true, seals: 2, unsealed: 0, closed: true })
  })
})

describe("EventLogFile: the hash chain", () => {
  const text = EventLogFile.formatLog(header, events.slice(0, 4))
  const lines = text.split("\n")
  const parse = (t: string) => EventLogFile.parseLog(t, "run.json")
  const tamperedAt = (t: string): { line: number | undefined; message: string } => {
    const r = parse(t)
    if (Either.isRight(r)) throw new Error("expected the edit to be detected")
    expect(r.left.tampered).toBe(true)
    return { line: r.left.line, message: r.left.message }
  }

  it("an intact log verifies: closed, every event sealed", () => {
    const r = Either.getOrThrow(parse(text))
    expect(r.chain).toEqual({ chained: true, seals: 2, unsealed: 0, closed: true })
  })

  it("a rewritten header policy with its policy_hash recomputed is tampering, not a valid log", () => {
    const widened = Either.getOrThrow(parsePolicy(JSON.stringify({ default_allow: true })))
    // a header line as boruna would write it for the wider policy: its policy_hash is right
    const forged = EventLogFile.encodeHeader({ ...header, policy: widened, policy_hash: policyHash(widened) })
    expect(forged).not.toBe(lines[0])
    const t = tamperedAt([forged, ...lines.slice(1)].join("\n"))
    expect(t.line).toBe(2)
    expect(t.message).toMatch(/^run\.json:2: \$\.Seal\.digest: hash chain broken: the header changed after recording/)
  })

  it("an edited, removed or inserted event, or a line after the final seal, is tampering at the seal that covers it", () => {
    const edited = [...lines]
    edited[3] = edited[3].replace(`"Int":36`, `"Int":37`)
    expect(tamperedAt(edited.join("\n")).message).toMatch(/^run\.json:7: \$\.Seal\.digest: hash chain broken: lines 3–6 changed after recording/)
    const removed = [...lines.slice(0, 4), ...lines.slice(5)]
    expect(tamperedAt(removed.join("\n")).line).toBe(6)
    const inserted = [...lines.slice(0, 3), lines[2], ...lines.slice(3)]
    expect(tamperedAt(inserted.join("\n")).line).toBe(8)
    expect(tamperedAt(text + lines[2] + "\n").message).toBe(
      "run.json:8: $: a line after the final seal: something was appended to the closed log"
    )
  })

  it("a log the run did not close (killed) is read, with its unsealed events counted, not called tampered", () => {
    const cut = lines.slice(0, 6).join("\n") + "\n" // header, seal, 4 events; no final seal
    const r = Either.getOrThrow(parse(cut))
    expect(r.events).toHaveLength(4)
    expect(r.chain).toEqual({ chained: true, seals: 1, unsealed: 4, closed: false })
  })

  it("a version 1 log (no chain) is still read, marked unchained", () => {
    const v1 = JSON.stringify({ ...JSON.parse(lines[0]), version: 1 })
    const r = Either.getOrThrow(parse([v1, lines[2], lines[3], ""].join("\n")))
    expect(r.events).toHaveLength(2)
    expect(r.chain).toEqual({ chained: false, seals: 0, unsealed: 2, closed: false })
  })
})

describe("EventLogFile: bad input is a clear error naming file, line and JSON path", () => {
  const good = EventLogFile.formatLog(header, events.slice(0, 2))
  const headerLine = good.split("\n")[0]
  // the header and its seal: what every log starts with
  const head = good.split("\n").slice(0, 2).join("\n")
  const parse = (text: string, options?: { allowTorn?: boolean }) => EventLogFile.parseLog(text, "run.json", options)
  const error = (text: string) => {
    const r = parse(text)
    if (Either.isRight(r)) throw new Error("expected an error")
    return r.left.message
  }

  it("unknown version", () => {
    const h = JSON.parse(headerLine)
    expect(error(JSON.stringify({ ...h, version: 3 }) + "\n")).toBe(
      "run.json:1: $.version: unsupported event log version 3: this build reads versions 1 and 2"
    )
  })

  it("not a boruna log (the reference's pretty JSON document, an empty file)", () => {
    expect(error(`{"version": 1, "events": []}\n`)).toBe(`run.json:1: $.format: not a boruna event log (expected format "boruna-event-log", got nothing)`)
    expect(error("")).toBe("run.json: empty event log (no header line)")
  })

  it("a malformed value inside an event names the JSON path into it", () => {
    expect(error(`${head}\n{"CapCall":{"capability":"net.fetch","args":[{"String":"a"},{"Int":1.5}]}}\n`)).toBe(
      "run.json:3: $.CapCall.args[1].Int: Int must be a safe integer or a decimal string"
    )
    expect(error(`${head}\n{"CapResult":{"capability":"x","result":{"Record":{"type":"T","fields":{"f":{"Nope":1}}}}}}\n`)).toBe(
      "run.json:3: $.CapResult.result.Record.fields.f: unknown value tag 'Nope'"
    )
  })

  it("structural problems: invalid JSON, unknown event, missing or extra field, wrong type", () => {
    expect(error(`${head}\n{"CapCall":\n`)).toMatch(/^run\.json:3: \$: invalid JSON: /)
    expect(error(`${head}\n{"CapCal":{}}\n`)).toMatch(/^run\.json:3: \$\.CapCal: unknown event 'CapCal'/)
    expect(error(`${head}\n{"CapCall":{"capability":"net.fetch"}}\n`)).toBe("run.json:3: $.CapCall.args: is missing")
    expect(error(`${head}\n{"CapError":{"capability":"a","kind":"k","message":"m","extra":1}}\n`)).toMatch(
      /^run\.json:3: \$\.CapError\.extra: /
    )
    expect(error(`${head}\n{"SchedulerTick":{"round":-1,"active_actor":0}}\n`)).toMatch(/^run\.json:3: \$\.SchedulerTick\.round: /)
    expect(error(`${head}\n\n{"SchedulerTick":{"round":1,"active_actor":0}}\n`)).toMatch(/^run\.json:3: \$: empty line/)
  })

  it("a header whose policy does not match its policy hash is refused", () => {
    const h = JSON.parse(headerLine)
    expect(error(JSON.stringify({ ...h, policy: { default_allow: true } }) + "\n")).toMatch(
      /^run\.json:1: \$\.policy_hash: does not match the recorded policy/
    )
    expect(error(JSON.stringify({ ...h, policy: { rules: { net: { allow: true } } } }) + "\n")).toMatch(/^run\.json:1: \$\.policy\.rules/)
  })

  it("a torn last line is an error naming its line, or with allowTorn a flagged, shorter log", () => {
    const torn = good + `{"CapCall":{"capability":"ne`
    expect(error(torn)).toBe(
      "run.json:6: torn last line (28 bytes without a newline: the run stopped while writing it); " +
        "the 2 events before it are intact (replay them with --allow-torn)"
    )
    const r = Either.getOrThrow(parse(torn, { allowTorn: true }))
    expect(r.torn).toEqual({ line: 6, bytes: 28 })
    expect(r.events).toHaveLength(2)
    // even a complete-looking JSON object is torn when its newline is missing
    expect(error(good + `{"SchedulerTick":{"round":1,"active_actor":0}}`)).toMatch(/^run\.json:6: torn last line/)
  })

  it("a file that cannot be read", () => {
    const exit = Effect.runSyncExit(EventLogFile.readLog(join(tmp(), "missing.json")))
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isFailure(exit)) expect(String(exit.cause)).toMatch(/missing\.json: cannot read: ENOENT/)
  })
})

describe("EventLogFile: incremental writing", () => {
  it.scoped("fileLayer writes the header on open and every event as it is appended (readable before close)", () =>
    Effect.gen(function*() {
      const file = join(tmp(), "run.json")
      const ctx = yield* Layer.build(EventLogFile.fileLayer(file, header))
      const log = ctx.unsafeMap.get(EventLog.key) as EventLog["Type"]
      expect(Effect.runSync(EventLogFile.readLog(file)).events).toEqual([])
      log.append(events[0])
      log.append(events[1])
      const mid = Effect.runSync(EventLogFile.readLog(file))
      expect(mid.events.map((e) => e.type)).toEqual(["CapCall", "CapResult"])
      expect(log.events()).toHaveLength(2)
    }))

  it("a file that cannot be created fails the layer with the path", () => {
    const exit = Effect.runSyncExit(Effect.scoped(Layer.build(EventLogFile.fileLayer(join(tmp(), "no", "such", "run.json"), header))))
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isFailure(exit)) expect(String(exit.cause)).toMatch(/run\.json: cannot write event log: ENOENT/)
  })

  it("a process killed mid-run (SIGKILL, no finalizers) keeps every event appended before it", async () => {
    const dir = tmp()
    const file = join(dir, "run.json")
    const repo = fileURLToPath(new URL("..", import.meta.url))
    const child = join(dir, "child.ts")
    writeFileSync(
      child,
      `import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { EventLog } from ${JSON.stringify(join(repo, "src/EventLog.ts"))}
import * as F from ${JSON.stringify(join(repo, "src/EventLogFile.ts"))}
import { allowAll } from ${JSON.stringify(join(repo, "src/Policy.ts"))}
const header = F.makeHeader({ programHash: "sha256:p", policy: allowAll, sourceFile: "x.ax" })
Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const ctx = yield* Layer.build(F.fileLayer(${JSON.stringify(file)}, header))
  const log = ctx.unsafeMap.get(EventLog.key)
  for (let i = 0; i < 5; i++) {
    log.append({ type: "CapCall", capability: "random", args: [] })
    log.append({ type: "CapResult", capability: "random", result: i })
  }
  // the gateway's path: a call and its result in one write, then a slow call's CapCall on flush
  for (let i = 5; i < 8; i++) {
    log.appendCall("random", [i], { file: "x.ax", line: 2, col: 3, fn: "main" })
    log.appendResult("random", i)
  }
  log.appendCall("random", [], undefined)
  log.flush()
  process.kill(process.pid, "SIGKILL")
})))
`
    )
    const code = await new Promise<string | null>((resolve) =>
      execFile(process.execPath, [join(repo, "node_modules/vite-node/vite-node.mjs"), child], { cwd: repo, timeout: 60_000 }, (err) =>
        resolve(err === null ? null : String((err as { signal?: string }).signal))
      )
    )
    expect(code).toBe("SIGKILL")
    const log = Effect.runSync(EventLogFile.readLog(file))
    expect(log.events).toHaveLength(17)
    expect(log.events[9]).toEqual({ type: "CapResult", capability: "random", result: 4 })
    expect(log.events.slice(14)).toEqual([
      { type: "CapCall", capability: "random", args: [7], site: { file: "x.ax", line: 2, col: 3, fn: "main" } },
      { type: "CapResult", capability: "random", result: 7 },
      { type: "CapCall", capability: "random", args: [] }
    ])
    expect(log.header.policy).toEqual(allowAll)
  })

  it("appending to a torn file and reading it back reports the torn line rather than losing it", () => {
    const file = join(tmp(), "run.json")
    Either.getOrThrow(EventLogFile.writeLog(file, header, events.slice(0, 2)))
    appendFileSync(file, `{"CapCall":{"capability":"random","ar`)
    const exit = Effect.runSyncExit(EventLogFile.readLog(file))
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isFailure(exit)) expect(String(exit.cause)).toContain(`${file}:6: torn last line`)
  })
})

describe("golden hashes: the canonical forms a log header commits to", () => {
  // An accidental change of the canonical policy JSON or of the bytecode encoding changes these,
  // and every recorded log would then drift. Change them only on purpose (and say so in the commit).
  it("policy hashes", () => {
    expect(policyHash(allowAll)).toBe("sha256:b81c52dc1656a99af57f2af0abe5d2f540a5410447b178e5674d9e1ff15bc1a1")
    const deny = Either.getOrThrow(parsePolicy(JSON.stringify({})))
    expect(policyHash(deny)).toBe("sha256:7daff77bea1aeb55596835764ace32a45aa43024d2b8e23716cfd1301a74b299")
    const agent = Either.getOrThrow(parsePolicy(readFileSync(fileURLToPath(new URL("../examples/agent-policy.json", import.meta.url)), "utf8")))
    expect(policyHash(agent)).toBe("sha256:f3e4888d615c7206eabdaa00d3cb93d88138837f54fd11617918a98116336b90")
    // defaults filled in: the same policy written out in full hashes the same
    expect(policyHash(Either.getOrThrow(parsePolicy(JSON.stringify({ schema_version: 1, default_allow: false, rules: {} }))))).toBe(policyHash(deny))
  })

  it("program hashes", async () => {
    const { compileSource } = await import("../src/Compiler.js")
    const { programHash } = await import("../src/Bytecode.js")
    const hashOf = (file: string, source: string): string => {
      const r = compileSource(file, source)
      if (!r.ok) throw new Error(`${file} does not compile`)
      return programHash(r.program)
    }
    expect(hashOf("golden.ax", "fn main() -> Int {\n    40 + 2\n}\n")).toBe("sha256:5f54657cd0b81f590a1567fb31123427fa1aa0eb86fbdf43e67cb29d0b0e3eca")
    const example = (name: string) => hashOf(`examples/${name}`, readFileSync(fileURLToPath(new URL(`../examples/${name}`, import.meta.url)), "utf8"))
    expect(example("hello.ax")).toBe("sha256:561a9f302497fefcca6422317b353c08fdc14725155a9fd348ba0fc1b5efd4e7")
    expect(example("agent.ax")).toBe("sha256:478aa3b56c8adefae2225d90802834373645fffa2642f591ac053c2658a83f77")
  })
})
