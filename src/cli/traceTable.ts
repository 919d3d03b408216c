/**
 * `--trace` / `BORUNA_TRACE=1`: the run's `boruna.cap` spans as a readable table on stderr, so a
 * user sees what the collector would receive without running one.
 */
import type { RecordedSpan } from "../Telemetry.js"

const ms = (s: RecordedSpan): string => (Number(s.endTime - s.startTime) / 1e6).toFixed(2) + " ms"
const cell = (v: unknown): string => (v === undefined || v === null ? "-" : String(v))

/** The table (several lines, no trailing newline); spans other than boruna.cap/boruna.run are ignored. */
export const formatTraceTable = (spans: ReadonlyArray<RecordedSpan>): string => {
  const caps = spans.filter((s) => s.name === "boruna.cap").sort((a, b) => (a.startTime < b.startTime ? -1 : a.startTime > b.startTime ? 1 : 0))
  const run = spans.find((s) => s.name === "boruna.run")
  const header = ["#", "capability", "duration", "bytes in", "bytes out", "budget left", "error"]
  const rows = caps.map((s, i) => [
    String(i + 1),
    cell(s.attributes["cap.name"]),
    ms(s),
    cell(s.attributes["bytes_in"]),
    cell(s.attributes["bytes_out"]),
    cell(s.attributes["cap.budget_remaining"]),
    s.attributes["error.kind"] !== undefined ? cell(s.attributes["error.kind"]) : s.status === "error" ? "interrupted" : "-"
  ])
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)))
  const right = new Set([0, 2, 3, 4, 5])
  const line = (r: ReadonlyArray<string>): string =>
    r.map((v, c) => (right.has(c) ? v.padStart(widths[c]) : v.padEnd(widths[c]))).join("  ").trimEnd()
  const title = `boruna trace: ${caps.length} capability call${caps.length === 1 ? "" : "s"}` +
    (run === undefined ? "" : `, run ${ms(run)}${run.status === "error" ? " (failed)" : ""}`) +
    (caps.length > 0 ? ` (trace ${caps[0].traceId})` : "")
  return [title, line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n")
}
