/**
 * Security suite, `.axbc` (issue 11): sizes the VM allocates from are bounded by what the compiler
 * can emit, and a seeded fuzz of 20,000 mutated modules, decoded (and run when they verify) in a
 * child process, so that a hang is seen as silence and counts as a failure, like a crash.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { spawn } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { encodeAxbc, verify } from "../../src/Bytecode.js"
import { decodeAxbc } from "../../src/BytecodeDecode.js"
import { compileSource } from "../../src/Compiler.js"
import { borunaInProcess } from "../support/InProcessCli.js"

const SEED = 20261101
const MODULES = 20_000
/** silence longer than this on the child's stdout is a hang */
const HANG_MS = 10_000

const recursive = `fn down(n: Int) -> Int {
  if n == 0 { 0 } else { down(n - 1) }
}
fn main() -> Int { down(9000) }
`

describe("security: .axbc sizes", () => {
  it.effect("locals beyond what the function's code can use are invalid bytecode (exit 3), not 6 GB", () =>
    Effect.gen(function*() {
      const r = compileSource("deep.ax", recursive)
      if (!r.ok) throw new Error("does not compile")
      const json = JSON.parse(encodeAxbc(r.program))
      const fi = json.functions.findIndex((f: { name: string }) => f.name === "down")
      json.functions[fi].locals = 65535
      const text = JSON.stringify(json)
      expect(text.length).toBeLessThan(2048)
      const d = decodeAxbc(text, "deep.axbc")
      expect(Either.isLeft(d)).toBe(true)
      if (Either.isLeft(d)) {
        expect(d.left.path).toBe(`$.functions[${fi}].locals`)
        expect(d.left.reason).toMatch(/^65535 locals is more than a function of \d+ code words and 1 parameters can use/)
      }
      const dir = mkdtempSync(join(tmpdir(), "boruna-sec-axbc-"))
      const file = join(dir, "deep.axbc")
      writeFileSync(file, text)
      const run = yield* borunaInProcess(["run", file])
      rmSync(dir, { recursive: true, force: true })
      expect(run.code).toBe(3)
      expect(run.stderr).toContain(`$.functions[${fi}].locals`)
      expect(run.stderr.trim().split("\n")).toHaveLength(1)
    }))

  it("every conformance program the compiler emits stays inside the bounds", () => {
    const dir = join(import.meta.dirname, "..", "conformance")
    let n = 0
    for (const f of readdirSync(dir).filter((f) => f.endsWith(".ax"))) {
      const r = compileSource(f, readFileSync(join(dir, f), "utf8"))
      if (!r.ok) continue
      expect(() => verify(r.program)).not.toThrow()
      for (const fn of r.program.functions) expect(fn.locals).toBeLessThanOrEqual(fn.arity + fn.code.length)
      n++
    }
    expect(n).toBeGreaterThanOrEqual(20)
  })
})

describe("security: .axbc fuzz", () => {
  it.live(`${MODULES} seeded mutations: 0 crashes, 0 hangs`, () =>
    Effect.async<{ crashes: Array<string>; done: string | undefined; hang: string | undefined; last: number }>((resume) => {
      const viteNode = join(import.meta.dirname, "..", "..", "node_modules", ".bin", "vite-node")
      const child = spawn(viteNode, [join(import.meta.dirname, "fixtures", "axbc-fuzz.ts"), String(SEED), String(MODULES)], {
        stdio: ["ignore", "pipe", "inherit"]
      })
      const crashes: Array<string> = []
      let done: string | undefined
      let hang: string | undefined
      let last = -1
      let buf = ""
      let timer: NodeJS.Timeout
      const arm = () => {
        clearTimeout(timer)
        timer = setTimeout(() => {
          hang = `no progress for ${HANG_MS} ms after module ${last} (seed ${SEED})`
          child.kill("SIGKILL")
        }, HANG_MS)
      }
      arm()
      child.stdout.setEncoding("utf8")
      child.stdout.on("data", (d: string) => {
        arm()
        buf += d
        let i: number
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i)
          buf = buf.slice(i + 1)
          if (line.startsWith(". ")) last = Number(line.slice(2))
          else if (line.startsWith("CRASH")) crashes.push(line)
          else if (line.startsWith("DONE")) done = line
        }
      })
      child.on("exit", () => {
        clearTimeout(timer)
        resume(Effect.succeed({ crashes, done, hang, last }))
      })
    }).pipe(Effect.map((r) => {
      expect(r.hang).toBeUndefined()
      expect(r.crashes.slice(0, 3)).toEqual([])
      expect(r.last).toBe(MODULES - 1)
      const m = /^DONE modules=(\d+) rejected=(\d+) accepted=(\d+) faulted=(\d+)$/.exec(r.done ?? "")
      expect(m).not.toBeNull()
      // not vacuous: many mutants are refused, and many still verify and run
      expect(Number(m![1])).toBe(MODULES)
      expect(Number(m![2])).toBeGreaterThan(MODULES / 4)
      expect(Number(m![3])).toBeGreaterThan(MODULES / 20)
    })), 120_000)
})
