/**
 * The workflow tools of `boruna mcp` (boruna_workflow_validate / _run / _status), driven by the
 * official MCP SDK client against the built command: problems with paths and line:col, a run to
 * completion, a run that pauses at an approval gate — whose token goes to the server's stderr (the
 * person who runs it), never into a tool result — and its status.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { BIN, cleanEnv, ensureBuilt } from "./support/BuiltCli.js"

let dir: string
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "boruna-mcpwf-"))
  await ensureBuilt()
}, 180_000)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const workflow = (name: string, wf: unknown, files: Record<string, string>): string => {
  const d = join(dir, name)
  mkdirSync(d, { recursive: true })
  writeFileSync(join(d, "workflow.json"), JSON.stringify(wf, null, 2))
  for (const [f, t] of Object.entries(files)) writeFileSync(join(d, f), t)
  return name
}

const TWO = {
  schema_version: 1,
  name: "two",
  version: "1",
  steps: {
    a: { kind: "source", source: "a.ax" },
    b: { kind: "source", source: "b.ax", inputs: { x: "a.result" }, depends_on: ["a"] }
  },
  edges: []
}

const GATED = {
  schema_version: 1,
  name: "gated",
  version: "1",
  steps: {
    a: { kind: "source", source: "a.ax" },
    review: { kind: "approval_gate", required_role: "editor", depends_on: ["a"] },
    b: { kind: "source", source: "b.ax", depends_on: ["review"] }
  },
  edges: []
}

const A = "fn main() -> Int !{time.now} { time.now() - 1699999958 }\n"
const B = "fn main() -> String !{step.input} { step.input(\"x\") }\n"

interface Answer {
  readonly isError: boolean
  readonly json: Record<string, unknown>
  readonly text: string
  readonly raw: string
}

describe("boruna mcp: workflow tools", () => {
  it("validate, run, pause at a gate without handing out its token, status", async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, "mcp", "--policy", "allow-all", "--data-dir", join(dir, "data")],
      cwd: dir,
      env: cleanEnv(),
      stderr: "pipe"
    })
    let stderr = ""
    transport.stderr?.on("data", (d: Buffer) => void (stderr += d.toString()))
    const client = new Client({ name: "boruna-test", version: "1.0.0" })
    const errors: Array<unknown> = []
    client.onerror = (e) => void errors.push(e)
    await client.connect(transport)
    const call = async (name: string, args: Record<string, unknown>): Promise<Answer> => {
      const r = await client.callTool({ name, arguments: args })
      const content = r.content as ReadonlyArray<{ type: string; text: string }>
      return { isError: r.isError === true, json: r.structuredContent as Record<string, unknown>, text: content[0]?.text ?? "", raw: JSON.stringify(r) }
    }
    try {
      const names = (await client.listTools()).tools.map((t) => t.name)
      expect(names).toEqual(expect.arrayContaining(["boruna_workflow_validate", "boruna_workflow_run", "boruna_workflow_status"]))
      expect(names.filter((n) => /approve|reject|answer/.test(n))).toEqual([])

      const broken = workflow("broken", TWO, { "a.ax": "fn main() -> Int {\n  \"no\"\n}\n", "b.ax": B })
      const v = await call("boruna_workflow_validate", { path: broken })
      expect(v.json.valid).toBe(false)
      expect(v.json.problems).toEqual([expect.objectContaining({ kind: "compile_error", step: "a", line: 2, col: 3, path: "$.steps.a.source" })])

      const two = workflow("two", TWO, { "a.ax": A, "b.ax": B })
      const ok = await call("boruna_workflow_validate", { path: two })
      expect(ok.json).toMatchObject({ valid: true, name: "two", waves: [["a"], ["b"]] })

      const run = await call("boruna_workflow_run", { path: two })
      expect(run.isError, run.text).toBe(false)
      expect(run.json).toMatchObject({ status: "completed", pending_approvals: [] })
      expect((run.json.outputs as Record<string, string>).a).toBe("{\"Int\":42}")

      const refused = await call("boruna_workflow_run", { path: two, policy: { rules: { "time.now": { allow: true } }, fs_policy: { root: "/" } } })
      expect(refused.json.error).toMatchObject({ kind: "ceiling_exceeded" })

      const gated = workflow("gated", GATED, { "a.ax": A, "b.ax": "fn main() -> Int { 1 }\n" })
      const paused = await call("boruna_workflow_run", { path: gated })
      expect(paused.json).toMatchObject({ status: "paused" })
      const pending = paused.json.pending_approvals as ReadonlyArray<Record<string, unknown>>
      expect(pending).toEqual([expect.objectContaining({ id: "gate:review", kind: "gate", step: "review", required_role: "editor" })])
      // the token was printed for the person running the server, and appears nowhere in the answer
      const m = /boruna workflow approve (\S+) --step review --token (\S+)/.exec(stderr)
      expect(m, stderr).not.toBeNull()
      expect(m![1]).toBe(paused.json.run_id)
      expect(paused.raw).not.toContain(m![2])
      expect(paused.raw).not.toContain("token")

      const status = await call("boruna_workflow_status", { run_id: paused.json.run_id })
      expect(status.json).toMatchObject({ status: "paused", workflow: { name: "gated" } })
      expect((status.json.steps as ReadonlyArray<{ id: string; status: string }>).map((s) => [s.id, s.status])).toEqual([
        ["a", "completed"],
        ["review", "awaiting_approval"]
      ])
      expect(status.raw).not.toContain(m![2])
      expect(status.raw).not.toContain("token_hash")

      const unknown = await call("boruna_workflow_status", { run_id: "nope" })
      expect(unknown.json.error).toMatchObject({ kind: "unknown_run" })
      expect(errors).toEqual([])
    } finally {
      await client.close()
    }
  }, 60_000)

  it("--session-budget counts the capability calls of workflow steps too", async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, "mcp", "--policy", "allow-all", "--data-dir", join(dir, "data2"), "--session-budget", "2"],
      cwd: dir,
      env: cleanEnv(),
      stderr: "pipe"
    })
    const client = new Client({ name: "boruna-test", version: "1.0.0" })
    await client.connect(transport)
    try {
      const one = workflow("one", { schema_version: 1, name: "one", version: "1", steps: { a: { kind: "source", source: "a.ax" } }, edges: [] }, { "a.ax": A })
      const first = await client.callTool({ name: "boruna_run", arguments: { source: "fn main() -> Int !{time.now} { time.now() }\n" } })
      expect(first.isError).toBe(false)
      const second = await client.callTool({ name: "boruna_workflow_run", arguments: { path: one } })
      expect((second.structuredContent as { status: string }).status).toBe("completed")
      // two calls spent (one by the run, one by the workflow's step): the next workflow run is refused
      const third = await client.callTool({ name: "boruna_workflow_run", arguments: { path: one } })
      const r = third.structuredContent as { status: string; error: { kind: string; message: string } | null }
      expect(r.status).toBe("failed")
      expect(JSON.stringify(r.error)).toContain("session budget exceeded")
    } finally {
      await client.close()
    }
  }, 60_000)
})
