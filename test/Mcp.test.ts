/**
 * `boruna mcp` driven by the official MCP TypeScript SDK client (@modelcontextprotocol/sdk), which
 * spawns the BUILT command (`node bin/boruna mcp …`) over stdio: tools and their schemas, runs that
 * succeed and fail with each error kind, limits, the ceiling (narrowing, refusal, widening), the
 * session budget, bad input as MCP errors, progress and cancellation, spans at a loopback OTLP
 * receiver, and a whole agent-like session (check, fix, run, replay).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { McpError } from "@modelcontextprotocol/sdk/types.js"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { spawn } from "node:child_process"
import { join } from "node:path"
import { BIN, boruna, cleanEnv, ensureBuilt, importLogger } from "./support/BuiltCli.js"
import { startOtlpReceiver } from "./support/OtlpReceiver.js"

let dir: string
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "boruna-mcp-"))
  await ensureBuilt()
}, 180_000)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

interface Session {
  readonly client: Client
  /** errors the client met reading the server (a non-protocol line on stdout would be one) */
  readonly errors: Array<unknown>
  readonly stderr: () => string
  readonly close: () => Promise<void>
}

const open = async (args: ReadonlyArray<string> = [], env: Record<string, string> = {}, cwd = dir): Promise<Session> => {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, "mcp", ...args],
    cwd,
    env: cleanEnv(env),
    stderr: "pipe"
  })
  let stderr = ""
  transport.stderr?.on("data", (d: Buffer) => void (stderr += d.toString()))
  const errors: Array<unknown> = []
  const client = new Client({ name: "boruna-test", version: "1.0.0" })
  client.onerror = (e) => void errors.push(e)
  await client.connect(transport)
  return { client, errors, stderr: () => stderr, close: () => client.close() }
}

const withSession = async (
  args: ReadonlyArray<string>,
  f: (s: Session) => Promise<void>,
  env: Record<string, string> = {}
): Promise<void> => {
  const s = await open(args, env)
  try {
    await f(s)
    expect(s.errors, s.stderr()).toEqual([])
  } finally {
    await s.close()
  }
}

interface Structured {
  readonly ok?: boolean
  readonly value_text?: string
  readonly value?: unknown
  readonly steps?: number
  readonly capability_calls?: number
  readonly error?: { readonly kind: string; readonly message: string; readonly line?: number; readonly col?: number }
  readonly summary?: ReadonlyArray<{ readonly capability: string; readonly outcome: string; readonly bytes_in: unknown; readonly duration_ms: number }>
  readonly event_log?: string
  readonly beyond?: ReadonlyArray<{ readonly path: string; readonly asked: string; readonly ceiling: string }>
  readonly [k: string]: unknown
}

const call = async (s: Session, name: string, args: Record<string, unknown>) => {
  const r = await s.client.callTool({ name, arguments: args })
  const content = r.content as ReadonlyArray<{ type: string; text: string }>
  return { isError: r.isError === true, json: r.structuredContent as Structured, text: content[0]?.text ?? "" }
}

/** the MCP error a call is answered with */
const mcpError = async (s: Session, name: string, args: unknown): Promise<McpError> => {
  try {
    await s.client.callTool({ name, arguments: args as Record<string, unknown> })
  } catch (e) {
    if (e instanceof McpError) return e
    throw e
  }
  throw new Error(`${name} did not fail`)
}

const policyFile = (name: string, policy: unknown): string => {
  const p = join(dir, name)
  writeFileSync(p, JSON.stringify(policy))
  return p
}

const TIME2 = "fn main() -> Int !{time.now} { time.now() + time.now() }\n"

describe("boruna mcp: tools", () => {
  it("lists its tools with JSON Schemas derived from their argument schemas", async () => {
    await withSession([], async (s) => {
      const { tools } = await s.client.listTools()
      const names = tools.map((t) => t.name)
      expect(names).toEqual(expect.arrayContaining(["boruna_run", "boruna_check", "boruna_capability_list", "boruna_policy_validate", "boruna_replay"]))
      expect(names).not.toContain("boruna_approve")
      for (const t of tools) {
        expect(t.inputSchema.type, t.name).toBe("object")
        expect(t.description, t.name).toBeTruthy()
      }
      const run = tools.find((t) => t.name === "boruna_run")!
      const props = run.inputSchema.properties as Record<string, { type?: string; exclusiveMinimum?: number }>
      expect(Object.keys(props).sort()).toEqual(["max_output_bytes", "max_steps", "path", "policy", "record", "source", "timeout_ms"])
      expect(props.max_steps).toMatchObject({ type: "integer", exclusiveMinimum: 0 })
      expect(props.record.type).toBe("boolean")
      expect((run.inputSchema as { additionalProperties?: unknown }).additionalProperties).toBe(false)
      const list = tools.find((t) => t.name === "boruna_capability_list")!
      expect(list.inputSchema).toMatchObject({ type: "object", properties: {} })
      expect(tools.find((t) => t.name === "boruna_policy_validate")!.inputSchema.required).toEqual(["policy"])
    })
  })

  it("boruna_run: the value as text and JSON, the steps used", async () => {
    await withSession([], async (s) => {
      const r = await call(s, "boruna_run", { source: "fn main() -> Int { 40 + 2 }\n" })
      expect(r.isError).toBe(false)
      expect(r.text.split("\n")[0]).toBe("42")
      expect(r.json).toMatchObject({ ok: true, value_text: "42", capability_calls: 0 })
      expect(r.json.value).toEqual({ Int: 42 })
      expect(r.json.steps).toBeGreaterThan(0)
    })
  })

  it("boruna_run: each error kind with its message and line:col", async () => {
    await withSession(["--policy", policyFile("time1.json", { rules: { "time.now": { allow: true, budget: 1 } } })], async (s) => {
      const div = await call(s, "boruna_run", { source: "fn main() -> Int {\n  let z: Int = 0\n  10 / z\n}\n" })
      expect(div.isError).toBe(true)
      expect(div.json.error).toMatchObject({ kind: "division_by_zero", line: 3 })
      expect(div.text).toMatch(/^<source>:3:\d+: error\[division_by_zero\]: /)

      const compile = await call(s, "boruna_run", { source: "fn main() -> Int { \"x\" }\n" })
      expect(compile.isError).toBe(true)
      expect(compile.json.error).toMatchObject({ kind: "compile_error", line: 1 })
      expect(compile.json.diagnostics).toEqual([expect.objectContaining({ kind: "type_error", line: 1, code: "E003" })])

      const denied = await call(s, "boruna_run", { source: "fn main() -> Float !{random} { random() }\n" })
      expect(denied.json.error).toMatchObject({ kind: "denied", line: 1 })
      expect(denied.json.summary).toEqual([expect.objectContaining({ capability: "random", outcome: "denied" })])

      const budget = await call(s, "boruna_run", { source: TIME2 })
      expect(budget.json.error?.kind).toBe("budget_exceeded")
      expect(budget.json.summary?.map((c) => c.outcome)).toEqual(["ok", "budget_exceeded"])
      expect(budget.json.capability_calls).toBe(1)

      const loop = "fn main() -> Int {\n  let mut i: Int = 0\n  while i < 100000000 { i = i + 1 }\n  i\n}\n"
      const steps = await call(s, "boruna_run", { source: loop, max_steps: 1000 })
      expect(steps.json.error?.kind).toBe("step_limit")
      expect(steps.json.steps).toBeGreaterThanOrEqual(1000)

      const slow = await call(s, "boruna_run", { source: loop, timeout_ms: 30 })
      expect(slow.json.error?.kind).toBe("timeout")

      const big = await call(s, "boruna_run", { source: "fn main() -> String { \"0123456789\" }\n", max_output_bytes: 5 })
      expect(big.json.error).toMatchObject({ kind: "output_limit" })
      expect(big.json.error?.message).toContain("more than max_output_bytes (5)")
    })
  })

  it("boruna_run: a path under the server's directory; outside it is refused", async () => {
    mkdirSync(join(dir, "progs"), { recursive: true })
    writeFileSync(join(dir, "progs", "hello.ax"), "fn main() -> String { \"hi\" }\n")
    await withSession([], async (s) => {
      const r = await call(s, "boruna_run", { path: "progs/hello.ax" })
      expect(r.json.value_text).toBe("\"hi\"")
      const out = await mcpError(s, "boruna_run", { path: "../outside.ax" })
      expect(out.code).toBe(-32602)
      expect(out.message).toMatch(/outside the server's directory|no such file/)
      const both = await mcpError(s, "boruna_run", { path: "progs/hello.ax", source: "x" })
      expect(both.message).toContain("either source or path")
      // a link inside the directory that points outside it is outside it
      const outside = mkdtempSync(join(tmpdir(), "boruna-mcp-outside-"))
      writeFileSync(join(outside, "secret.ax"), "fn main() -> Int { 1 }\n")
      symlinkSync(join(outside, "secret.ax"), join(dir, "progs", "link.ax"))
      const link = await mcpError(s, "boruna_check", { path: "progs/link.ax" })
      expect(link.message).toContain("outside the server's directory")
      rmSync(outside, { recursive: true, force: true })
    })
  })

  it("boruna_check: every diagnostic with its position and help", async () => {
    await withSession([], async (s) => {
      const r = await call(s, "boruna_check", { source: "fn main() -> Int {\n  let count: Int = 1\n  cuont + 1\n}\n" })
      expect(r.isError).toBe(false)
      expect(r.json.ok).toBe(false)
      const ds = r.json.diagnostics as ReadonlyArray<Record<string, unknown>>
      expect(ds[0]).toMatchObject({ kind: "unknown_identifier", line: 3, col: 3, code: "E006" })
      expect(ds[0].help).toBe("did you mean `count`?")
      const clean = await call(s, "boruna_check", { source: "fn main() -> Int { 1 }\n" })
      expect(clean.json).toEqual({ ok: true, diagnostics: [] })
    })
  })

  it("boruna_capability_list and boruna_policy_validate", async () => {
    await withSession(["--policy", policyFile("ceil-time.json", { rules: { "time.now": { allow: true, budget: 3 } } })], async (s) => {
      const list = await call(s, "boruna_capability_list", {})
      expect(list.json.capability_set_hash).toMatch(/^sha256:/)
      expect((list.json.capabilities as ReadonlyArray<unknown>).length).toBe(11)
      expect(list.json.granted).toEqual([{ capability: "time.now", budget: 3 }])

      const fine = await call(s, "boruna_policy_validate", { policy: { rules: { "time.now": { allow: true, budget: 1 } } } })
      expect(fine.json).toMatchObject({ valid: true, within_ceiling: true })
      const wide = await call(s, "boruna_policy_validate", { policy: "allow-all" })
      expect(wide.json).toMatchObject({ valid: true, within_ceiling: false })
      expect(wide.json.beyond?.[0].path).toBe("$.default_allow")
      const bad = await call(s, "boruna_policy_validate", { policy: { rules: { net: { allow: true } } } })
      expect(bad.json.valid).toBe(false)
      expect(JSON.stringify(bad.json.issues)).toContain("alias")
    })
  })
})

describe("boruna mcp: the ceiling", () => {
  it("defaults to deny-all: with no --policy a program gets no capability", async () => {
    await withSession([], async (s) => {
      const r = await call(s, "boruna_run", { source: "fn main() -> Int !{time.now} { time.now() }\n" })
      expect(r.json.error?.kind).toBe("denied")
      const wide = await call(s, "boruna_run", { source: "fn main() -> Int !{time.now} { time.now() }\n", policy: "allow-all" })
      expect(wide.json.error?.kind).toBe("ceiling_exceeded")
    })
  })

  it("a call's policy narrows the ceiling (smaller budget); asking beyond it is refused, naming what", async () => {
    const ceiling = policyFile("ceil.json", {
      rules: { "time.now": { allow: true, budget: 5 }, "net.fetch": { allow: true } },
      net_policy: { allowed_domains: ["api.example.com"] }
    })
    await withSession(["--policy", ceiling], async (s) => {
      const narrowed = await call(s, "boruna_run", { source: TIME2, policy: { rules: { "time.now": { allow: true, budget: 1 } } } })
      expect(narrowed.json.error?.kind).toBe("budget_exceeded")
      const within = await call(s, "boruna_run", { source: TIME2, policy: JSON.stringify({ rules: { "time.now": { allow: true, budget: 2 } } }) })
      expect(within.json.value_text).toBe("3400000000")

      const widen = await call(s, "boruna_run", {
        source: TIME2,
        policy: { rules: { "time.now": { allow: true, budget: 50 }, "llm.call": { allow: true } }, net_policy: { allowed_domains: ["evil.example.org"] } }
      })
      expect(widen.isError).toBe(true)
      expect(widen.json.error?.kind).toBe("ceiling_exceeded")
      expect(widen.json.beyond?.map((b) => b.path)).toEqual([
        "$.rules[\"time.now\"].budget",
        "$.rules[\"llm.call\"]",
        "$.net_policy.allowed_domains[0]"
      ])
      expect(widen.json.error?.message).toContain("asks for 50 calls, but the ceiling allows 5")
      expect(widen.json.error?.message).toContain("'evil.example.org'")
      // nothing ran
      expect(widen.json.steps).toBeUndefined()
    })
  })

  it("--session-budget: capability calls over all tool calls together", async () => {
    await withSession(["--policy", "allow-all", "--session-budget", "3"], async (s) => {
      const first = await call(s, "boruna_run", { source: TIME2 })
      expect(first.json.ok).toBe(true)
      const second = await call(s, "boruna_run", { source: TIME2 })
      expect(second.json.error?.kind).toBe("budget_exceeded")
      expect(second.json.error?.message).toContain("session budget")
      expect(second.json.capability_calls).toBe(1)
      const third = await call(s, "boruna_run", { source: "fn main() -> Int !{time.now} { time.now() }\n" })
      expect(third.json.error?.kind).toBe("budget_exceeded")
      // pure code still runs
      const pure = await call(s, "boruna_run", { source: "fn main() -> Int { 7 }\n" })
      expect(pure.json.value_text).toBe("7")
    })
  })
})

describe("boruna mcp: live handlers and approvals", () => {
  it("--live: real capabilities under the ceiling (the live net policy still refuses loopback)", async () => {
    await withSession(["--live", "--policy", "allow-all"], async (s) => {
      const now = await call(s, "boruna_run", { source: "fn main() -> Int !{time.now} { time.now() }\n" })
      expect(Number(now.json.value_text)).toBeGreaterThan(1_700_000_000)
      const fetch = await call(s, "boruna_run", { source: "fn main() -> String !{net.fetch} { net.fetch(\"http://127.0.0.1:9/x\") }\n" })
      expect(fetch.json.error?.kind).toBe("denied")
      expect(fetch.json.error?.message).toContain("loopback")
    })
  })

  it("a call the ceiling says needs a person's approval is refused in a plain run, whatever the call's policy", async () => {
    const ceiling = policyFile("approve.json", { rules: { "time.now": { allow: true, approve: true } } })
    await withSession(["--policy", ceiling], async (s) => {
      const r = await call(s, "boruna_run", { source: "fn main() -> Int !{time.now} { time.now() }\n", policy: { rules: { "time.now": { allow: true } } } })
      expect(r.json.error?.kind).toBe("approval_required")
      const off = await call(s, "boruna_run", { source: "fn main() -> Int !{time.now} { time.now() }\n", policy: { rules: { "time.now": { allow: true, approve: false } } } })
      expect(off.json.error?.kind).toBe("ceiling_exceeded")
    })
  })
})

describe("boruna mcp: bad input gets MCP errors and the server goes on", () => {
  it("oversize source, invalid policy JSON, unknown tool, invalid arguments", async () => {
    await withSession([], async (s) => {
      const big = await mcpError(s, "boruna_run", { source: "x".repeat(1024 * 1024 + 1) })
      expect(big.code).toBe(-32602)
      expect(big.message).toContain("more than the limit of 1048576 bytes (1 MiB)")

      const json = await mcpError(s, "boruna_run", { source: "fn main() -> Int { 1 }", policy: "{\"rules\": " })
      expect(json.code).toBe(-32602)
      expect(json.message).toMatch(/policy: line 1, column \d+: invalid JSON/)

      const schema = await mcpError(s, "boruna_run", { source: "fn main() -> Int { 1 }", policy: { rules: { "time.now": { allow: "yes" } } } })
      expect(schema.message).toContain("policy: $.rules[\"time.now\"].allow")

      const unknown = await mcpError(s, "boruna_frobnicate", {})
      expect(unknown.code).toBe(-32602)
      expect(unknown.message).toContain("unknown tool 'boruna_frobnicate'")

      const args = await mcpError(s, "boruna_run", { source: "fn main() -> Int { 1 }", max_steps: -3, colour: "red" })
      expect(args.code).toBe(-32602)
      expect(args.message).toContain("max_steps")
      expect(args.message).toContain("colour")

      const over = await mcpError(s, "boruna_run", { source: "fn main() -> Int { 1 }", max_steps: 10_000_000_000 })
      expect(over.message).toContain("more than the server's limit")

      // still serving
      const r = await call(s, "boruna_run", { source: "fn main() -> Int { 1 }\n" })
      expect(r.json.value_text).toBe("1")
    })
  })
})

describe("boruna mcp: long runs", () => {
  it("sends progress for a progress token and stops a cancelled run", async () => {
    const loop = "fn main() -> Int !{time.now} {\n  let mut i: Int = 0\n  while i < 100000 { i = i + time.now() - 1699999999 }\n  i\n}\n"
    await withSession(["--policy", "allow-all"], async (s) => {
      const progress: Array<{ progress: number; message?: string }> = []
      const abort = new AbortController()
      let cancelledAt = 0
      const pending = s.client.callTool({ name: "boruna_run", arguments: { source: loop } }, undefined, {
        signal: abort.signal,
        onprogress: (p) => {
          progress.push(p)
          if (progress.length === 3) {
            cancelledAt = Date.now()
            abort.abort("enough")
          }
        }
      })
      await expect(pending).rejects.toThrow()
      expect(progress.length).toBeGreaterThanOrEqual(3)
      expect(progress[0].message).toMatch(/^steps \d+, capability calls \d+$/)
      expect(progress[1].progress).toBeGreaterThan(progress[0].progress)
      // the server is free again at once: the run (100000 calls of 20 ms) did not go on
      const next = await call(s, "boruna_run", { source: "fn main() -> Int { 5 }\n" })
      expect(next.json.value_text).toBe("5")
      expect(Date.now() - cancelledAt).toBeLessThan(5_000)
      await new Promise((r) => setTimeout(r, 300))
    }, { BORUNA_DEMO_LATENCY_MS: "20" })
  }, 30_000)
})

describe("boruna mcp: cancelling pure computation", () => {
  it("a cancelled loop stops at once: the VM gives the event loop turns while it computes", async () => {
    const loop = "fn main() -> Int {\n  let mut i: Int = 0\n  while i < 1000000000 { i = i + 1 }\n  i\n}\n"
    await withSession(["--max-steps", "5000000000"], async (s) => {
      const progress: Array<{ progress: number; message?: string }> = []
      const abort = new AbortController()
      const pending = s.client.callTool({ name: "boruna_run", arguments: { source: loop } }, undefined, {
        signal: abort.signal,
        onprogress: (p) => {
          progress.push(p)
          if (progress.length === 3) abort.abort("enough")
        }
      })
      await expect(pending).rejects.toThrow()
      const steps = progress.map((p) => Number(/^steps (\d+)/.exec(p.message ?? "")?.[1]))
      expect(steps[0]).toBeGreaterThan(0)
      expect(steps[2]).toBeGreaterThan(steps[0])
      // the loop would run on for ~30 s (the server's timeout); the next call is answered at once
      const t0 = Date.now()
      const next = await call(s, "boruna_run", { source: "fn main() -> Int { 5 }\n" })
      expect(next.json.value_text).toBe("5")
      expect(Date.now() - t0).toBeLessThan(5_000)
      // a run that went on would go on sending progress for the cancelled token: the client reports
      // each such notification as an error (withSession expects none)
      await new Promise((r) => setTimeout(r, 300))
    })
  }, 30_000)
})

describe("boruna mcp: telemetry", () => {
  it("each tool call is an mcp.tool span, parent of the run's spans, joining _meta.traceparent", async () => {
    const rx = await startOtlpReceiver()
    try {
      const traceId = "0af7651916cd43dd8448eb211c80319c"
      const parentId = "b7ad6b7169203331"
      const s = await open(["--policy", "allow-all"], { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_BSP_SCHEDULE_DELAY: "50" })
      try {
        const r = await s.client.callTool({
          name: "boruna_run",
          arguments: { source: TIME2 },
          _meta: { traceparent: `00-${traceId}-${parentId}-01` }
        })
        expect(r.isError).toBe(false)
        expect((r.structuredContent as Structured).summary?.map((c) => [c.capability, c.outcome])).toEqual([["time.now", "ok"], ["time.now", "ok"]])
        await s.client.callTool({ name: "boruna_check", arguments: { source: "fn main() -> Int { 1 }" } })
        const failed = await s.client.callTool({ name: "boruna_run", arguments: { source: "fn main() -> Int { 1 / 0 }" } })
        expect(failed.isError).toBe(true)
        await expect(s.client.callTool({ name: "boruna_run", arguments: { sauce: "x" } })).rejects.toThrow(/sauce/)
      } finally {
        await s.close()
      }
      const spans = await rx.waitForSpans(8)
      const tools = spans.filter((x) => x.name === "mcp.tool")
      expect(tools).toHaveLength(4)
      const toolError = tools.find((x) => x.attributes["boruna.error.kind"] !== undefined)!
      expect(toolError.attributes).toMatchObject({ "error.type": "tool_error", "boruna.error.kind": "division_by_zero" })
      expect(toolError.status.code).toBe(2)
      // the result (which may hold program data) is not in the span: its status says the kind only
      expect(toolError.status.message ?? "").not.toContain("<source>")
      expect(JSON.stringify(toolError.events)).not.toContain("<source>")
      const rpcError = tools.find((x) => x.attributes["rpc.response.status_code"] !== undefined)!
      expect(rpcError.attributes).toMatchObject({ "error.type": "-32602", "rpc.response.status_code": "-32602" })
      expect(rpcError.status.code).toBe(2)
      const run = tools.find((x) => x.attributes["gen_ai.tool.name"] === "boruna_run")!
      expect(run.traceId).toBe(traceId)
      expect(run.parentSpanId).toBe(parentId)
      expect(run.kind).toBe(2) // SERVER
      expect(run.attributes).toMatchObject({ "mcp.method.name": "tools/call", "gen_ai.operation.name": "execute_tool", "mcp.protocol.version": "2025-06-18", "network.transport": "pipe" })
      expect(run.attributes["mcp.session.id"]).toMatch(/^[0-9a-f-]{36}$/)
      expect(run.status.code).not.toBe(2)
      expect(run.attributes["error.type"]).toBeUndefined()
      const check = tools.find((x) => x.attributes["gen_ai.tool.name"] === "boruna_check")!
      expect(check.attributes["mcp.session.id"]).toBe(run.attributes["mcp.session.id"])
      expect(check.traceId).not.toBe(traceId)
      expect(check.parentSpanId).toBeUndefined()
      const borunaRun = spans.find((x) => x.name === "boruna.run" && x.parentSpanId === run.spanId)!
      expect(borunaRun.parentSpanId).toBe(run.spanId)
      const caps = spans.filter((x) => x.name === "boruna.cap" && x.traceId === traceId)
      expect(caps).toHaveLength(2)
      for (const c of caps) {
        expect(c.parentSpanId).toBe(borunaRun.spanId)
        expect(c.traceId).toBe(traceId)
      }
      // nothing of the protocol machinery is traced
      expect(spans.filter((x) => x.name.startsWith("McpServer"))).toEqual([])
    } finally {
      await rx.close()
    }
  }, 30_000)
})

describe("boruna mcp: an agent's session", () => {
  it("check, fix, run with record, replay", async () => {
    await withSession(["--policy", policyFile("agent.json", { rules: { "time.now": { allow: true }, "net.fetch": { allow: true, budget: 2 } } })], async (s) => {
      const draft = "fn main() -> String !{net.fetch} {\n  let body: String = net.fetch(\"https://api.example.com/x\")\n  body ++ stamp()\n}\n"
      const checked = await call(s, "boruna_check", { source: draft })
      expect(checked.json.ok).toBe(false)
      const d = (checked.json.diagnostics as ReadonlyArray<{ line: number; message: string }>)[0]
      expect(d.line).toBe(3)
      expect(d.message).toContain("stamp")

      const fixed = "fn main() -> String !{net.fetch, time.now} {\n  let body: String = net.fetch(\"https://api.example.com/x\")\n  body ++ int_to_string(time.now())\n}\n"
      expect((await call(s, "boruna_check", { source: fixed })).json.ok).toBe(true)

      const run = await call(s, "boruna_run", { source: fixed, record: true })
      expect(run.json.ok).toBe(true)
      expect(run.json.summary?.map((c) => c.capability)).toEqual(["net.fetch", "time.now"])
      expect(run.json.event_log?.split("\n")[0]).toContain("boruna-event-log")

      const replay = await call(s, "boruna_replay", { source: fixed, event_log: run.json.event_log })
      expect(replay.isError).toBe(false)
      expect(replay.json).toMatchObject({ verdict: "identical", value_text: run.json.value_text })
      expect(replay.text).toMatch(/^replay: identical \(4 events\)/)

      const changed = fixed.replace("api.example.com/x", "api.example.com/y")
      const diverged = await call(s, "boruna_replay", { source: changed, event_log: run.json.event_log })
      expect(diverged.isError).toBe(true)
      expect(diverged.json).toMatchObject({ verdict: "diverged", divergence: { index: 0, kind: "call" } })
      expect(diverged.json.drift).toEqual([expect.objectContaining({ what: "program" })])
    })
  })
})

describe("boruna mcp: the bundle", () => {
  it("loads the MCP server (and @effect/ai) only for `boruna mcp`", async () => {
    writeFileSync(join(dir, "lazy.ax"), "fn main() -> Int { 1 }\n")
    const loaded = (name: string): ReadonlyArray<string> => {
      const p = join(dir, name)
      return existsSync(p) ? readFileSync(p, "utf8").split("\n").filter((l) => l !== "") : []
    }
    const needles = ["/Mcp-", "/Mcp.js", "McpServer"]
    const run = await boruna(["run", join(dir, "lazy.ax")], {}, importLogger(join(dir, "run.log"), needles))
    expect(run.stdout).toBe("1\n")
    const help = await boruna(["mcp", "--help"], {}, importLogger(join(dir, "help.log"), needles))
    expect(help.code).toBe(0)
    expect(loaded("run.log")).toEqual([])
    expect(loaded("help.log")).toEqual([])
    // `boruna mcp` itself does load it (and exits 0 when the client closes stdin at once)
    const served = await boruna(["mcp"], {}, importLogger(join(dir, "mcp.log"), needles))
    expect(served.code).toBe(0)
    expect(served.stdout).toBe("")
    expect(loaded("mcp.log").some((u) => u.includes("/Mcp-"))).toBe(true)
  }, 30_000)
})

describe("boruna mcp: raw protocol input", () => {
  it("answers garbage, unknown methods and bad params as JSON-RPC says, and loses no other message", async () => {
    const child = spawn(process.execPath, [BIN, "mcp"], { cwd: dir, env: cleanEnv(), stdio: ["pipe", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (d: Buffer) => void (out += d.toString()))
    const lines = [
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{\"name\":\"raw\",\"version\":\"1\"}}}",
      "this is not json",
      "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"boruna_capability_list\"}}",
      "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"frob/nicate\"}",
      "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/frob\"}",
      "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"boruna_run\",\"arguments\":[1,2]}}",
      "{\"id\":5}",
      "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/call\",\"params\":{\"name\":\"boruna_run\",\"arguments\":{\"source\":\"fn main() -> Int { 6 }\"}}}"
    ]
    // all in one write: one chunk, as a pipe may deliver it
    child.stdin.write(lines.join("\n") + "\n")
    const deadline = Date.now() + 10_000
    while (out.split("\n").filter((l) => l !== "").length < 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    child.stdin.end()
    await new Promise((r) => child.on("close", r))
    const answers = out.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { id: unknown; result?: { structuredContent?: { value_text?: string } }; error?: { code: number; message: string } })
    const byId = (id: unknown) => answers.find((a) => a.id === id)
    expect(answers.every((a) => (a as { jsonrpc?: unknown }).jsonrpc === "2.0")).toBe(true)
    expect(byId(1)?.result).toBeDefined()
    expect(byId(null)?.error?.code).toBe(-32700)
    expect(byId(2)?.result).toBeDefined()
    expect(byId(3)?.error).toMatchObject({ code: -32601, message: "Method not found: frob/nicate" })
    expect(byId(4)?.error?.code).toBe(-32602)
    expect(byId(4)?.error?.message).toContain("$.arguments")
    expect(byId(5)?.error?.code).toBe(-32600)
    expect(byId(6)?.result?.structuredContent?.value_text).toBe("6")
    expect(answers).toHaveLength(7)
  }, 30_000)
})

describe("boruna mcp: the command line", () => {
  it("a bad ceiling or option is one error line and an exit code, before any protocol", async () => {
    const bad = policyFile("bad-ceiling.json", { rules: { net: { allow: true } } })
    const r = await boruna(["mcp", "--policy", bad])
    expect(r.code).toBe(3)
    expect(r.stdout).toBe("")
    expect(r.stderr.trimEnd().split("\n")).toEqual([expect.stringMatching(/^error\[invalid_policy\]: .*\$\.rules\.net: 'net' is an alias/)])
    const zero = await boruna(["mcp", "--session-budget", "0"])
    expect(zero.code).toBe(2)
    expect(zero.stderr).toContain("--session-budget must be a positive integer")
    // a telemetry warning is printed once (not once per telemetry layer)
    const warned = await boruna(["mcp"], { OTEL_EXPORTER_OTLP_ENDPOINT: "notaurl" })
    expect(warned.code).toBe(0)
    expect(warned.stdout).toBe("")
    expect(warned.stderr.match(/not an absolute http\(s\) URL/g)).toHaveLength(1)
  })

  it("--data-dir keeps recorded runs: boruna_replay takes their run_id", async () => {
    await withSession(["--policy", "allow-all", "--data-dir", join(dir, "mcp-data")], async (s) => {
      const run = await call(s, "boruna_run", { source: TIME2, record: true })
      const runId = run.json.run_id as string
      expect(runId).toMatch(/^run-\d+-[0-9a-f]{8}$/)
      expect(existsSync(join(dir, "mcp-data", "runs", `${runId}.json`))).toBe(true)
      const replay = await call(s, "boruna_replay", { source: TIME2, run_id: runId })
      expect(replay.json).toMatchObject({ verdict: "identical", events: 4, value_text: "3400000000" })
      const missing = await mcpError(s, "boruna_replay", { source: TIME2, run_id: "run-1-00000000" })
      expect(missing.message).toContain("no recorded run")
      const traversal = await mcpError(s, "boruna_replay", { source: TIME2, run_id: "../../etc/passwd" })
      expect(traversal.message).toContain("is not a run id")
    })
  })
})
