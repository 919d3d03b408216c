/**
 * Start-up benchmark: wall time of `boruna run examples/hello.ax` as a ratio to `node -e 0`,
 * median of 10 runs each (after one warm-up round), with telemetry off (target ≤ 4×) and on
 * (OTLP/HTTP to a loopback receiver that answers 200). The modes are interleaved — each round runs
 * every mode once, in turn — so background load falls on all of them alike; each ratio is the
 * median of the per-round ratios to that round's `node -e 0`.
 *
 *   npm run build && node dist/bench/startup.js
 */
import { spawn } from "node:child_process"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..")
const BIN = join(ROOT, "bin", "boruna")
const RUNS = 10
const TARGET = 4

const baseEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("OTEL_") && !k.startsWith("BORUNA_")) env[k] = v
  return env
}

const once = (args: ReadonlyArray<string>, env: Record<string, string>): Promise<number> =>
  new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["ignore", "ignore", "pipe"] })
    let err = ""
    child.stderr.on("data", (d: Buffer) => void (err += d.toString()))
    child.on("error", reject)
    child.on("close", (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      if (code !== 0) reject(new Error(`${args.join(" ")} exited ${code}: ${err}`))
      else resolve(ms)
    })
  })

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** Every mode once per round (after one warm-up round), in turn: the times of each mode, by round. */
const measureInterleaved = async (modes: ReadonlyArray<readonly [ReadonlyArray<string>, Record<string, string>]>): Promise<Array<Array<number>>> => {
  const times: Array<Array<number>> = modes.map(() => [])
  for (let round = 0; round <= RUNS; round++) {
    for (let m = 0; m < modes.length; m++) {
      const ms = await once(modes[m][0], modes[m][1])
      if (round > 0) times[m].push(ms) // round 0 warms the file-system cache
    }
  }
  return times
}

const main = async (): Promise<void> => {
  const server = createServer((req, res) => {
    req.resume()
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" })
      res.end("{}")
    })
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  try {
    const env = baseEnv()
    const hello = [BIN, "run", "examples/hello.ax"]
    const [node, off, on, help] = await measureInterleaved([
      [["-e", "0"], env],
      [hello, env],
      [hello, { ...env, OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }],
      [[BIN, "--help"], env]
    ])
    const ratio = (xs: ReadonlyArray<number>) => median(xs.map((ms, round) => ms / node[round]))
    const row = (name: string, xs: ReadonlyArray<number>) =>
      `  ${name.padEnd(44)} ${median(xs).toFixed(1).padStart(7)} ms  ${ratio(xs).toFixed(2).padStart(5)}×`
    console.log(`startup (median of ${RUNS} interleaved rounds, ratio to the same round's node -e 0)`)
    console.log(row("node -e 0", node))
    console.log(row("boruna run examples/hello.ax (telemetry off)", off))
    console.log(row("boruna run examples/hello.ax (telemetry on)", on))
    console.log(row("boruna --help (@effect/cli command tree)", help))
    const ok = ratio(off) <= TARGET
    console.log(`  target: telemetry off ≤ ${TARGET}× → ${ok ? "met" : "MISSED"} (${ratio(off).toFixed(2)}×)`)
  } finally {
    server.close()
  }
}

await main()
