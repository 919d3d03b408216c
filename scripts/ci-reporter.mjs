// The reporter .ci/run uses: vitest's JSON report, plus the unhandled errors (an unhandled
// rejection, an error thrown after a test ended) that vitest's own JSON reporter leaves out.
// scripts/ci-count.mjs counts from this file.
import { JsonReporter } from "vitest/reporters"

const describe = (e) => {
  if (e !== null && typeof e === "object") {
    const name = typeof e.name === "string" ? e.name : "Error"
    return typeof e.message === "string" ? `${name}: ${e.message}` : name
  }
  return String(e)
}

export default class CiReporter extends JsonReporter {
  unhandled = []
  async onFinished(files, errors = [], coverageMap) {
    this.unhandled = [...errors].map(describe)
    await super.onFinished(files, errors, coverageMap)
  }
  async writeReport(report) {
    const r = JSON.parse(report)
    r.unhandledErrors = this.unhandled
    await super.writeReport(JSON.stringify(r))
  }
}
