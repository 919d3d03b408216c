// Bundle the `boruna` command into dist/cli/ (run by `npm run build` after tsc).
//
// Why: `effect` ships as hundreds of small ESM files; loading them one by one is most of the
// command's start-up (~0.1 s of ~0.2 s). One tree-shaken bundle with lazily loaded chunks (the
// @effect/cli command tree, live handlers, the Schema-based decoders, OpenTelemetry wiring) starts
// in about half the time. The OpenTelemetry SDK and native/network packages stay external: they
// load from node_modules, and only when telemetry or live capabilities are on.
import { build } from "esbuild"
import { rmSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const outdir = join(root, "dist", "cli")
rmSync(outdir, { recursive: true, force: true })

await build({
  entryPoints: [join(root, "dist", "src", "main.js")],
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  minifySyntax: true,
  minifyWhitespace: true,
  // packages without an `effect` dependency of their own (so no second copy of Effect's runtime)
  external: ["@opentelemetry/*", "better-sqlite3", "undici", "ws", "mime", "protobufjs", "pg", "pg-cursor", "pg-pool", "pg-connection-string"],
  logLevel: "warning"
})
