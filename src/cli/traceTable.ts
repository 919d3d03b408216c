/**
 * `--trace` / `BORUNA_TRACE=1`: the run's `boruna.cap` spans as a readable table on stderr, so a
 * user sees what the collector would receive without running one.
 *
 * One row per call, then a per-capability summary: calls, errors by kind, total bytes in and out,
 * total, p50 and p99 duration. A long run is folded: the first `FOLD_HEAD` and last `FOLD_TAIL`
 * rows, with a line counting the rows left out, unless `all` (`--trace=all`, `BORUNA_TRACE=all`).
 */
import type { RecordedSpan } from "../Telemetry.js"

/** Rows shown from the start and the end of a folded table. */
export const FOLD_HEAD = 20
export const FOLD_TAIL = 10

const durationMs = (s: RecordedSpan): number => Number(s.endTime - s.startTime) / 1e6
const fmtMs = (x: number): string => x.toFixed(2) + " ms"
const ms = (s: RecordedSpan): string => fmtMs(durationMs(s))
const cell = (v: unknown): string => (v === undefined || v === null ? "-" : String(v))
const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0)

const errorOf = (s: RecordedSpan): string | undefined =>
  s.attributes["error.kind"] !== undefined ? String(s.attributes["error.kind"]) : s.status === "error" ? "interrupted" : undefined

/** The value at quantile `q` of sorted `xs` (nearest rank). */
const quantile = (xs: ReadonlyArray<number>, q: number): number =>
  xs.length === 0 ? 0 : xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(q * xs.length) - 1))]

const layout = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>, right: ReadonlySet<number>) => {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)))
  return (r: ReadonlyArray<string>): string => r.map((v, c) => (right.has(c) ? v.padStart(widths[c]) : v.padEnd(widths[c]))).join("  ").trimEnd()
}

/** The per-capability summary lines (a header, then one row per capability, in order of first call). */
export const formatSummary = (caps: ReadonlyArray<RecordedSpan>): ReadonlyArray<string> => {
  const by = new Map<string, Array<RecordedSpan>>()
  for (const s of caps) {
    const name = cell(s.attributes["cap.name"])
    let list = by.get(name)
    if (list === undefined) by.set(name, (list = []))
    list.push(s)
  }
  const header = ["capability", "calls", "errors", "bytes in", "bytes out", "total", "p50", "p99"]
  const rows = [...by.entries()].map(([name, spans]) => {
    const errors = new Map<string, number>()
    for (const s of spans) {
      const e = errorOf(s)
      if (e !== undefined) errors.set(e, (errors.get(e) ?? 0) + 1)
    }
    const durations = spans.map(durationMs).sort((a, b) => a - b)
    return [
      name,
      String(spans.length),
      errors.size === 0 ? "-" : [...errors.entries()].map(([k, n]) => `${k} ${n}`).join(", "),
      String(spans.reduce((t, s) => t + num(s.attributes["bytes_in"]), 0)),
      String(spans.reduce((t, s) => t + num(s.attributes["bytes_out"]), 0)),
      fmtMs(durations.reduce((t, d) => t + d, 0)),
      fmtMs(quantile(durations, 0.5)),
      fmtMs(quantile(durations, 0.99))
    ]
  })
  const line = layout(header, rows, new Set([1, 3, 4, 5, 6, 7]))
  return ["summary by capability:", line(header), ...rows.map(line)]
}

/** The table (several lines, no trailing newline); spans other than boruna.cap/boruna.run are ignored. */
export const formatTraceTable = (spans: ReadonlyArray<RecordedSpan>, options: { readonly all?: boolean } = {}): string => {
  const caps = spans.filter((s) => s.name === "boruna.cap").sort((a, b) => (a.startTime < b.startTime ? -1 : a.startTime > b.startTime ? 1 : 0))
  const run = spans.find((s) => s.name === "boruna.run")
  const header = ["#", "capability", "duration", "bytes in", "bytes out", "budget left", "error"]
  const fold = options.all !== true && caps.length > FOLD_HEAD + FOLD_TAIL + 1
  const shown = fold ? [...caps.slice(0, FOLD_HEAD).map((s, i) => [s, i] as const), ...caps.slice(-FOLD_TAIL).map((s, i) => [s, caps.length - FOLD_TAIL + i] as const)] : caps.map((s, i) => [s, i] as const)
  const rows = shown.map(([s, i]) => [
    String(i + 1),
    cell(s.attributes["cap.name"]),
    ms(s),
    cell(s.attributes["bytes_in"]),
    cell(s.attributes["bytes_out"]),
    cell(s.attributes["cap.budget_remaining"]),
    errorOf(s) ?? "-"
  ])
  const line = layout(header, rows, new Set([0, 2, 3, 4, 5]))
  const title = `boruna trace: ${caps.length} capability call${caps.length === 1 ? "" : "s"}` +
    (run === undefined ? "" : `, run ${ms(run)}${run.status === "error" ? " (failed)" : ""}`) +
    (caps.length > 0 ? ` (trace ${caps[0].traceId})` : "")
  const body = rows.map(line)
  if (fold) {
    const left = caps.length - FOLD_HEAD - FOLD_TAIL
    body.splice(FOLD_HEAD, 0, `… ${left} rows left out (calls ${FOLD_HEAD + 1}–${caps.length - FOLD_TAIL}; --trace=all prints every row)`)
  }
  const table = [title, line(header), line(header.map((h, c) => "-".repeat(Math.max(h.length, ...rows.map((r) => r[c].length))))), ...body]
  return caps.length === 0 ? table.join("\n") : [...table, "", ...formatSummary(caps)].join("\n")
}
