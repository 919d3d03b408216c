/**
 * Run the BUILT `boruna` command (`node bin/boruna …`) as a child process. `ensureBuilt()` rebuilds
 * `dist/` (`tsc -p tsconfig.build.json`, then `scripts/bundle.mjs`) once when it is missing or older than any file under
 * src/ (a lock directory keeps parallel test files from building at the same time); CI builds first.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..")
export const BIN = join(ROOT, "bin", "boruna")
const MAIN = join(ROOT, "dist", "cli", "main.js")
const LOCK = join(ROOT, "dist", ".build-lock")

const newest = (dir: string): number => {
  let t = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    t = Math.max(t, e.isDirectory() ? newest(p) : e.name.endsWith(".ts") ? statSync(p).mtimeMs : 0)
  }
  return t
}

const stale = (): boolean => !existsSync(MAIN) || statSync(MAIN).mtimeMs < newest(join(ROOT, "src"))

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

let built: Promise<void> | undefined

/** Build dist/ if it is stale (once per test process). */
export const ensureBuilt = (): Promise<void> => {
  built ??= (async () => {
    if (!stale()) return
    mkdirSync(join(ROOT, "dist"), { recursive: true })
    for (;;) {
      try {
        mkdirSync(LOCK)
        break
      } catch {
        // another test file is building; wait for it, then re-check
        await sleep(200)
        if (!existsSync(LOCK) && !stale()) return
      }
    }
    try {
      if (stale()) {
        // type errors elsewhere mid-work still emit JS; what matters is that main.js exists
        spawnSync(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", join(ROOT, "tsconfig.build.json")], { cwd: ROOT, stdio: "ignore" })
        spawnSync(process.execPath, [join(ROOT, "scripts", "bundle.mjs")], { cwd: ROOT, stdio: "ignore" })
        if (!existsSync(MAIN)) throw new Error("npm run build did not produce dist/cli/main.js")
      }
    } finally {
      rmdirSync(LOCK)
    }
  })()
  return built
}

export interface CliResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  /** wall time from spawn to exit, ms */
  readonly ms: number
}

/** A clean environment: no OTEL_* or BORUNA_* from the caller, plus `env`. */
export const cleanEnv = (env: Record<string, string> = {}): Record<string, string> => {
  const base: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("OTEL_") && !k.startsWith("BORUNA_") && k !== "TRACEPARENT" && k !== "TRACESTATE") base[k] = v
  }
  return { ...base, NO_COLOR: "1", ...env }
}

export interface Running {
  readonly child: ChildProcess
  readonly stderrSoFar: () => string
  readonly done: Promise<CliResult>
}

export const start = (args: ReadonlyArray<string>, env: Record<string, string> = {}, nodeArgs: ReadonlyArray<string> = []): Running => {
  const t0 = Date.now()
  const child = spawn(process.execPath, [...nodeArgs, BIN, ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] })
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (d: Buffer) => void (stdout += d.toString()))
  child.stderr!.on("data", (d: Buffer) => void (stderr += d.toString()))
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 }))
  })
  return { child, stderrSoFar: () => stderr, done }
}

/** Run `boruna args…` to completion. */
export const boruna = (args: ReadonlyArray<string>, env: Record<string, string> = {}, nodeArgs: ReadonlyArray<string> = []): Promise<CliResult> =>
  start(args, env, nodeArgs).done

/**
 * Node arguments that log every ES module URL the child resolves whose URL contains one of
 * `needles` to the file `log` (one per line): how a test proves a module was never loaded.
 */
export const importLogger = (log: string, needles: ReadonlyArray<string>): ReadonlyArray<string> => {
  const hook = `data:text/javascript,import{appendFileSync}from"node:fs";const N=${JSON.stringify(needles)};` +
    `export async function resolve(s,c,n){const r=await n(s,c);` +
    `if(N.some((x)=>r.url.includes(x)))appendFileSync(${JSON.stringify(log)},r.url+"\\n");return r}`
  return ["--import", `data:text/javascript,import{register}from"node:module";register(${JSON.stringify(hook)});`]
}
