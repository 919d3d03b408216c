import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseWorkflow, runId, topoOrder, waves, workflowHash, type WorkflowDef } from "../src/WorkflowFile.js"
import { validateDir } from "../src/WorkflowValidate.js"

const dirWith = (wf: unknown, files: Record<string, string> = {}): string => {
  const d = mkdtempSync(join(tmpdir(), "boruna-wfv-"))
  writeFileSync(join(d, "workflow.json"), typeof wf === "string" ? wf : JSON.stringify(wf, null, 2))
  for (const [f, t] of Object.entries(files)) {
    mkdirSync(join(d, f, ".."), { recursive: true })
    writeFileSync(join(d, f), t)
  }
  return d
}

const problems = (d: string) => {
  const r = validateDir(d)
  if (Either.isRight(r)) throw new Error("expected problems")
  return r.left
}

const decoded = (wf: unknown): WorkflowDef => Either.getOrThrow(parseWorkflow(JSON.stringify(wf)))

const OK = "fn main() -> Int { 0 }\n"

describe("workflow.json decoding", () => {
  it("reports every schema problem at once, each with its JSON path", () => {
    const ps = problems(dirWith({
      schema_version: 1,
      name: "",
      version: 3,
      steps: { a: { kind: "sauce" }, b: { kind: "source", source: "b.ax", timeout_ms: -1, retry: { max_attempts: "x" } } },
      edges: [["a"]]
    }))
    const paths = ps.map((p) => p.path)
    expect(paths).toEqual(expect.arrayContaining(["$.name", "$.version", "$.steps.a.kind", "$.steps.b.timeout_ms", "$.steps.b.retry.max_attempts", "$.edges[0][1]"]))
    expect(ps.find((p) => p.path === "$.steps.a.kind")?.message).toBe(`Expected "source" | "approval_gate" | "external_trigger", actual "sauce"`)
    expect(new Set(paths).size).toBe(paths.length)
  })

  it("missing and unsupported schema_version have their own kinds", () => {
    expect(problems(dirWith({ name: "n", version: "1", steps: {}, edges: [] }))[0]).toMatchObject({ kind: "missing_schema_version", path: "$.schema_version" })
    expect(problems(dirWith({ schema_version: 2, name: "n", version: "1", steps: {}, edges: [] }))[0]).toMatchObject({ kind: "unsupported_schema_version" })
  })

  it("a JSON syntax error is at its line and column", () => {
    expect(problems(dirWith('{\n "schema_version": 1,,\n}'))[0]).toMatchObject({ kind: "invalid_json", path: "line 2, column 22" })
  })

  it("unknown fields are ignored (forward compatible)", () => {
    const d = dirWith({ schema_version: 1, name: "n", version: "1", future: true, steps: { a: { kind: "source", source: "a.ax", new_field: 1 } }, edges: [] }, { "a.ax": OK })
    expect(Either.isRight(validateDir(d))).toBe(true)
  })
})

describe("semantic checks", () => {
  it("unknown steps, bad refs, duplicate edges, a missing source, a missing role, unknown capabilities: all at once", () => {
    const ps = problems(dirWith({
      schema_version: 1, name: "n", version: "1",
      steps: {
        a: { kind: "source", source: "a.ax", capabilities: ["net"] },
        b: { kind: "source", depends_on: ["zz"], inputs: { x: "a", y: "q.result", z: "c.result" } },
        c: { kind: "approval_gate" }
      },
      edges: [["a", "b"], ["a", "b"], ["a", "nope"]]
    }, { "a.ax": OK }))
    const byPath = Object.fromEntries(ps.map((p) => [p.path, p.message]))
    expect(byPath["$.steps.b.depends_on[0]"]).toBe("unknown step 'zz'")
    expect(byPath["$.steps.b.inputs.x"]).toContain("invalid ref format 'a'")
    expect(byPath["$.steps.b.inputs.y"]).toContain("unknown step 'q'")
    expect(byPath["$.steps.b.inputs.z"]).toContain("not upstream")
    expect(byPath["$.edges[1]"]).toBe("duplicate edge a -> b")
    expect(byPath["$.edges[2][1]"]).toBe("edge to unknown step 'nope'")
    expect(byPath["$.steps.b.source"]).toContain("needs \"source\"")
    expect(byPath["$.steps.c.required_role"]).toContain("required_role")
    expect(byPath["$.steps.a.capabilities[0]"]).toBe("unknown capability 'net'")
  })

  it("a cycle is reported with the steps that form it", () => {
    const ps = problems(dirWith({
      schema_version: 1, name: "n", version: "1",
      steps: { a: { kind: "source", source: "a.ax" }, b: { kind: "source", source: "a.ax", depends_on: ["a", "d"] }, c: { kind: "source", source: "a.ax", depends_on: ["b"] }, d: { kind: "source", source: "a.ax", depends_on: ["c"] } },
      edges: []
    }, { "a.ax": OK }))
    const cycle = ps.find((p) => p.kind === "cycle_detected")
    expect(cycle?.message).toBe("cycle detected: b -> c -> d -> b (resolved 1 of 4 steps)")
  })

  it("a step whose source does not compile is reported with its step id and file:line:col", () => {
    const d = dirWith({ schema_version: 1, name: "n", version: "1", steps: { bad: { kind: "source", source: "s/bad.ax" }, gone: { kind: "source", source: "missing.ax" } }, edges: [] }, { "s/bad.ax": "fn main() -> Int {\n  1 + \"x\"\n}\n" })
    const ps = problems(d)
    const c = ps.find((p) => p.kind === "compile_error")!
    expect(c.step).toBe("bad")
    expect(c.message).toMatch(/^step 'bad': E\d{3} /)
    expect(c.location).toMatchObject({ file: join(d, "s/bad.ax"), line: 2 })
    expect(ps.find((p) => p.step === "gone")?.message).toContain("no such file")
  })

  it("the example workflow validates", () => {
    expect(Either.isRight(validateDir(join(__dirname, "..", "examples", "workflow")))).toBe(true)
  })
})

describe("order and identity", () => {
  const w = decoded({
    schema_version: 1, name: "n", version: "1",
    steps: { z: { kind: "source", source: "x" }, a: { kind: "source", source: "x" }, m: { kind: "source", source: "x", depends_on: ["z", "a"] }, b: { kind: "source", source: "x" } },
    edges: [["b", "m"]]
  })
  it("Kahn order, ties broken by step id; waves group independent steps", () => {
    expect(topoOrder(w).order).toEqual(["a", "b", "z", "m"])
    expect(waves(w)).toEqual([["a", "b", "z"], ["m"]])
  })
  it("run ids are deterministic: workflow hash, inputs hash and counter", () => {
    const h = workflowHash(w)
    expect(h).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(runId(h, "i", 0)).toBe(runId(h, "i", 0))
    expect(runId(h, "i", 0)).not.toBe(runId(h, "i", 1))
    expect(runId(h, "i", 0)).toMatch(/^[0-9a-f]{16}$/)
  })
})
