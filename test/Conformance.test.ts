/**
 * Every program of the conformance corpus (test/conformance), through both paths:
 * - the library: `compileSource`, then `Vm.run` with the gateway under the header's policy
 *   (`mode: demo` ⇒ the demo handlers);
 * - the CLI: the built `boruna run FILE --policy P` as a child process (demo handlers are its
 *   default), stdout compared with the expected value, or the `error[KIND]` line and a non-zero exit.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { compileSource } from "../src/Compiler.js"
import * as EventLog from "../src/EventLog.js"
import * as Gateway from "../src/Gateway.js"
import * as Handlers from "../src/Handlers.js"
import { parsePolicy } from "../src/Policy.js"
import { show } from "../src/Value.js"
import { Vm } from "../src/Vm.js"
import { boruna, ensureBuilt } from "./support/BuiltCli.js"

const dir = path.resolve(__dirname, "conformance")
const files = fs.readdirSync(dir).filter((f) => f.endsWith(".ax")).sort()

interface Header {
  readonly expect?: string
  readonly expectError?: string
  readonly policy: string
  readonly demo: boolean
}

const header = (source: string): Header => {
  const get = (key: string): string | undefined => {
    const m = new RegExp(`^//\\s*${key}:\\s*(.*)$`, "m").exec(source)
    return m === null ? undefined : m[1].trim()
  }
  return {
    expect: get("expect"),
    expectError: get("expect-error"),
    policy: get("policy") ?? "deny-all",
    demo: get("mode") === "demo"
  }
}

/** Outcome of a run: `ok <value>` or `error <kind>`. */
const outcome = (file: string, source: string, h: Header): Effect.Effect<string> => {
  const compiled = compileSource(file, source)
  if (!compiled.ok) return Effect.succeed(`error ${compiled.diagnostics[0].kind}`)
  const policy = Either.getOrThrow(parsePolicy(h.policy, file))
  const layer = Gateway.layer(policy).pipe(
    Layer.provideMerge(Layer.mergeAll(h.demo ? Handlers.demo : Handlers.make({}), EventLog.memory))
  )
  return Vm.run(compiled.program).pipe(
    Effect.map((v) => `ok ${show(v)}`),
    Effect.catchTag("VmError", (e) => Effect.succeed(`error ${e.kind}`)),
    Effect.provide(layer)
  )
}

describe("conformance corpus (library path)", () => {
  it("finds the corpus", () => {
    expect(files.length).toBeGreaterThanOrEqual(36)
  })
  for (const file of files) {
    it.effect(file, () =>
      Effect.gen(function*() {
        const source = fs.readFileSync(path.join(dir, file), "utf8")
        const h = header(source)
        const expected = h.expect !== undefined ? `ok ${h.expect}` : `error ${h.expectError}`
        expect(h.expect !== undefined || h.expectError !== undefined).toBe(true)
        expect(yield* outcome(file, source, h)).toBe(expected)
      }))
  }
})

describe("conformance corpus (CLI path)", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "boruna-conformance-"))
  for (const file of files) {
    it(file, async () => {
      await ensureBuilt()
      const source = fs.readFileSync(path.join(dir, file), "utf8")
      const h = header(source)
      let policy = h.policy
      if (policy.startsWith("{")) {
        policy = path.join(tmp, `${file}.policy.json`)
        fs.writeFileSync(policy, h.policy)
      }
      const r = await boruna(["run", path.join(dir, file), "--policy", policy])
      if (h.expect !== undefined) {
        expect({ code: r.code, stdout: r.stdout.trim(), stderr: r.stderr }).toEqual({ code: 0, stdout: h.expect, stderr: "" })
      } else {
        expect(r.code).not.toBe(0)
        expect(r.stdout).toBe("")
        const first = r.stderr.split("\n")[0]
        expect(first).toMatch(new RegExp(`^.*${file.replace(".", "\\.")}:\\d+:\\d+: error\\[${h.expectError}\\]: .+$`))
      }
    }, 60_000)
  }
})
