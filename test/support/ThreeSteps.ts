import { expect } from "@effect/vitest"
import type { CallRecord } from "../../src/WorkflowStore.js"

/**
 * The three-step workflow the cluster tests run: a → b → c, each step one `net.fetch` of the
 * loopback origin (`step.input("origin")`) for its run's tag, b and c naming the upstream output in
 * their query, so an origin can count every call and check what each step read.
 */
export const stepSource = (name: string, prev?: string): string =>
  `fn main() -> String !{net.fetch, step.input} {\n` +
  `  let base: String = step.input("origin") ++ "/${name}/" ++ step.input("tag")\n` +
  (prev === undefined ? `  net.fetch(base)\n` : `  net.fetch(base ++ "?after=" ++ step.input("${prev}"))\n`) +
  `}\n`

/** `workflow.json` (named `name`) and its step files, at the given paths in the workflow directory. */
export const threeSteps = (name: string, paths: { readonly a: string; readonly b: string; readonly c: string } = { a: "a.ax", b: "b.ax", c: "c.ax" }) => ({
  WORKFLOW: {
    schema_version: 1,
    name,
    version: "1",
    steps: {
      a: { kind: "source", source: paths.a, capabilities: ["net.fetch"] },
      b: { kind: "source", source: paths.b, capabilities: ["net.fetch"], inputs: { a: "a.result" }, depends_on: ["a"] },
      c: { kind: "source", source: paths.c, capabilities: ["net.fetch"], inputs: { b: "b.result" }, depends_on: ["b"] }
    },
    edges: []
  },
  FILES: { [paths.a]: stepSource("a"), [paths.b]: stepSource("b", "a"), [paths.c]: stepSource("c", "b") } as Readonly<Record<string, string>>
})

/**
 * The `net.fetch` calls of one run of the three steps, by step, checked against the origin: it saw
 * each call exactly as often as the journal counts its executions, and a call ran more than once
 * only if it is marked `reexecuted` (it was in flight when its runner died or lost its shard).
 */
export const exactFetches = (
  view: { readonly calls: ReadonlyArray<CallRecord> },
  tag: string,
  count: (path: string) => number
): ReadonlyMap<string, CallRecord> => {
  const fetches = new Map(view.calls.filter((c) => c.capability === "net.fetch").map((c) => [c.step_id, c]))
  expect([...fetches.keys()], tag).toEqual(["a", "b", "c"])
  for (const [stepId, c] of fetches) {
    expect(count(`/${stepId}/${tag}`), `${tag}/${stepId}`).toBe(c.executions)
    expect(c.reexecuted, `${tag}/${stepId}`).toBe(c.executions > 1)
  }
  return fetches
}
