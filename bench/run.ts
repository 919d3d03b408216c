/**
 * `npm run bench`: run every benchmark script that exists (vm, gateway, startup, record, db, workflow; the cluster bench is `npm run bench:cluster`, it starts PostgreSQL),
 * each in its own `node --expose-gc` process, one after another; exit non-zero if one fails.
 */
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))
const scripts = ["vm.js", "gateway.js", "startup.js", "record.js", "db.js", "workflow.js"]
let failed = 0
for (const s of scripts) {
  const path = join(here, s)
  if (!existsSync(path)) {
    console.log(`== ${s}: not present, skipped`)
    continue
  }
  console.log(`== ${s}`)
  const r = spawnSync(process.execPath, ["--expose-gc", path], { stdio: "inherit" })
  if (r.status !== 0) {
    failed++
    console.log(`== ${s} failed (exit ${r.status ?? r.signal})`)
  }
}
process.exit(failed === 0 ? 0 : 1)
