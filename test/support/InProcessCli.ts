/**
 * Run `boruna ARGV` inside the test process (no build, no child process): its exit code and what
 * it wrote to stdout and stderr. For flows that need in-process state (loopback servers, temp files);
 * the end-to-end tests use the built command instead (`BuiltCli.ts`).
 */
import * as Effect from "effect/Effect"
import { vi } from "vitest"

export const borunaInProcess = (argv: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const { main } = yield* Effect.promise(() => import("../../src/cli/entry.js"))
    const stdout: Array<string> = []
    const stderr: Array<string> = []
    const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => (stdout.push(String(s)), true))
    const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => (stderr.push(String(s)), true))
    const code = yield* main(argv, {}).pipe(Effect.ensuring(Effect.sync(() => (o.mockRestore(), e.mockRestore()))))
    return { code, stdout: stdout.join(""), stderr: stderr.join("") }
  })
