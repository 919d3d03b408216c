/** A temporary workflow directory: workflow.json plus the given files (for the workflow tests). */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export const wfDir = (wf: unknown, files: Record<string, string>): string => {
  const d = mkdtempSync(join(tmpdir(), "boruna-wfr-"))
  writeFileSync(join(d, "workflow.json"), typeof wf === "string" ? wf : JSON.stringify(wf, null, 2))
  for (const [f, t] of Object.entries(files)) {
    mkdirSync(join(d, f, ".."), { recursive: true })
    writeFileSync(join(d, f), t)
  }
  return d
}
