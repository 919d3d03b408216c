/**
 * `boruna evidence report DIR -o report.html`: one self-contained HTML page about a bundle, for a
 * person — no script, no font, no image or style sheet fetched from anywhere (inline CSS and SVG
 * only), readable on screen and on paper.
 *
 * It shows: the run summary and the verification status (the verifier is run to make the page);
 * the step graph; a waterfall of the steps and their capability calls with durations; every
 * approval with its approver, time and what it approved; the policy in effect; the hashes.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as AuditChain from "./AuditChain.js"
import { type BundleFiles, EvidenceError, type Manifest, ManifestSchema, RunJson } from "./EvidenceBundle.js"
import type { VerifyReport } from "./EvidenceVerify.js"

const esc = (s: unknown): string =>
  String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!)

const text = (files: BundleFiles, p: string): string | undefined => {
  const c = files.get(p)
  return c === undefined ? undefined : typeof c === "string" ? c : Buffer.from(c).toString("utf8")
}

const fmtMs = (n: number | null | undefined): string =>
  n === null || n === undefined ? "—" : n < 1000 ? `${Math.round(n)} ms` : n < 60_000 ? `${(n / 1000).toFixed(2)} s` : `${(n / 60_000).toFixed(1)} min`

const short = (h: string | null | undefined, n = 16): string => (h === null || h === undefined ? "—" : h.length > n + 8 ? `${h.slice(0, n)}…` : h)

const t = (iso: string | null | undefined): number | undefined => {
  if (iso === null || iso === undefined) return undefined
  const v = Date.parse(iso)
  return Number.isFinite(v) ? v : undefined
}

const CSS = `
:root { --fg:#1b1f24; --muted:#5b6570; --line:#d7dce1; --ok:#1a7f37; --bad:#cf222e; --warn:#9a6700; --bar:#3b82f6; --call:#8b5cf6; --gate:#d97706; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); margin: 0; padding: 24px 32px; max-width: 1200px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.muted { color: var(--muted); } code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
pre { background: #f6f8fa; border: 1px solid var(--line); padding: 8px 10px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; } th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; background: #f6f8fa; } tr { break-inside: avoid; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; font-weight: 600; color: #fff; }
.ok { background: var(--ok); } .bad { background: var(--bad); } .skip { background: #6e7781; }
.status-completed { color: var(--ok); font-weight: 600; } .status-failed { color: var(--bad); font-weight: 600; } .status-other { color: var(--warn); font-weight: 600; }
.summary { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 10px 0; }
.summary dt { color: var(--muted); } .summary dd { margin: 0; }
.wf { width: 100%; } .wf .row { display: grid; grid-template-columns: 320px 1fr 80px; align-items: center; min-height: 22px; border-bottom: 1px solid #eef0f2; }
.wf .lane { position: relative; height: 16px; background: #fafbfc; }
.wf .bar { position: absolute; top: 2px; height: 12px; border-radius: 2px; background: var(--bar); min-width: 2px; }
.wf .call .bar { background: var(--call); top: 4px; height: 8px; } .wf .gate .bar { background: var(--gate); }
.wf .label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; padding-right: 8px; } .wf .call .label { padding-left: 18px; }
.wf .dur { text-align: right; color: var(--muted); font-size: 12px; }
svg text { font: 12px system-ui, sans-serif; }
@media print {
  body { padding: 0; max-width: none; font-size: 11px; } h2 { break-after: avoid; } section { break-inside: auto; }
  .badge { color: #000; border: 1px solid #000; background: none !important; } pre { white-space: pre-wrap; }
  .wf .bar { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
`

interface StepView {
  readonly id: string
  readonly kind: string
  readonly status: string
  readonly depends_on: ReadonlyArray<string>
}

/** The step graph as inline SVG: columns by depth (longest path from a root), one box per step. */
const graphSvg = (steps: ReadonlyArray<StepView>): string => {
  const ids = new Set(steps.map((s) => s.id))
  const depth = new Map<string, number>()
  const d = (id: string, seen: Set<string>): number => {
    const known = depth.get(id)
    if (known !== undefined) return known
    if (seen.has(id)) return 0
    seen.add(id)
    const s = steps.find((x) => x.id === id)
    const v = s === undefined ? 0 : Math.max(0, ...s.depends_on.filter((x) => ids.has(x)).map((x) => d(x, seen) + 1))
    depth.set(id, v)
    return v
  }
  for (const s of steps) d(s.id, new Set())
  const cols = new Map<number, Array<StepView>>()
  for (const s of steps) {
    const c = depth.get(s.id) ?? 0
    cols.set(c, [...(cols.get(c) ?? []), s])
  }
  const W = 170
  const H = 46
  const GX = 60
  const GY = 18
  const pos = new Map<string, { x: number; y: number }>()
  let maxRows = 1
  for (const [c, list] of cols) {
    maxRows = Math.max(maxRows, list.length)
    list.forEach((s, i) => pos.set(s.id, { x: 10 + c * (W + GX), y: 10 + i * (H + GY) }))
  }
  const width = 20 + cols.size * (W + GX) - GX
  const height = 20 + maxRows * (H + GY) - GY
  const color = (st: string) => (st === "completed" ? "#1a7f37" : st === "failed" ? "#cf222e" : st === "skipped" ? "#6e7781" : "#9a6700")
  const edges = steps.flatMap((s) =>
    s.depends_on.filter((x) => pos.has(x)).map((from) => {
      const a = pos.get(from)!
      const b = pos.get(s.id)!
      return `<line x1="${a.x + W}" y1="${a.y + H / 2}" x2="${b.x}" y2="${b.y + H / 2}" stroke="#8c959f" stroke-width="1.5" marker-end="url(#arrow)"/>`
    })
  )
  const nodes = steps.map((s) => {
    const p = pos.get(s.id)!
    return `<g><rect x="${p.x}" y="${p.y}" width="${W}" height="${H}" rx="6" fill="#fff" stroke="${color(s.status)}" stroke-width="2"/>` +
      `<text x="${p.x + 10}" y="${p.y + 19}" font-weight="600">${esc(s.id.length > 22 ? s.id.slice(0, 21) + "…" : s.id)}</text>` +
      `<text x="${p.x + 10}" y="${p.y + 36}" fill="${color(s.status)}">${esc(s.kind)} · ${esc(s.status)}</text></g>`
  })
  return `<svg role="img" aria-label="step graph" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" xmlns="http://www.w3.org/2000/svg">` +
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#8c959f"/></marker></defs>` +
    edges.join("") + nodes.join("") + `</svg>`
}

const statusClass = (s: string): string => (s === "completed" ? "status-completed" : s === "failed" ? "status-failed" : "status-other")

/** The report's HTML for a bundle's files and the verifier's report on them. */
export const renderReport = (files: BundleFiles, verify: VerifyReport): Either.Either<string, EvidenceError> => {
  const mText = text(files, "manifest.json")
  const rText = text(files, "run.json")
  if (mText === undefined || rText === undefined) return Either.left(new EvidenceError({ message: "not an evidence bundle (manifest.json or run.json missing)" }))
  let m: Manifest
  let run: RunJson
  try {
    m = Schema.decodeUnknownSync(ManifestSchema)(JSON.parse(mText))
    run = Schema.decodeUnknownSync(RunJson)(JSON.parse(rText))
  } catch (e) {
    return Either.left(new EvidenceError({ message: `cannot read the bundle: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}` }))
  }
  const entries = (() => {
    try {
      const d = AuditChain.decode(JSON.parse(text(files, "audit_log.json") ?? "[]"))
      return Either.isRight(d) ? d.right : []
    } catch {
      return []
    }
  })()
  const policy = text(files, "policy.json") ?? "(missing)"
  const problems = verify.checks.flatMap((c) => c.problems)

  // the waterfall: every step attempt and its calls on one time axis
  type Row = { kind: "step" | "call" | "gate"; label: string; title: string; start?: number | undefined; end?: number | undefined; dur?: number | null | undefined; id: string }
  const rows: Array<Row> = []
  for (const s of run.steps) {
    if (s.attempts.length === 0) {
      if (s.status === "skipped" || s.status === "pending") {
        rows.push({ kind: "step", id: `step-${s.id}`, label: `${s.id} (${s.status})`, title: s.status })
        continue
      }
      rows.push({ kind: s.kind === "source" ? "step" : "gate", id: `step-${s.id}`, label: `${s.id} · ${s.kind}`, title: s.status, start: t(s.started_at), end: t(s.ended_at), dur: s.duration_ms })
      continue
    }
    for (const a of s.attempts) {
      const st = t(a.started_at)
      const en = t(a.ended_at)
      rows.push({
        kind: "step",
        id: `step-${s.id}-${a.attempt}`,
        label: `${s.id}${s.attempts.length > 1 ? ` #${a.attempt}` : ""} · ${a.status}`,
        title: a.error ?? a.status,
        start: st,
        end: en,
        dur: st !== undefined && en !== undefined ? en - st : null
      })
      for (const c of a.calls) {
        const cs = t(c.started_at)
        const ce = t(c.ended_at)
        rows.push({
          kind: "call",
          id: `call-${s.id}-${a.attempt}-${c.seq}`,
          label: `#${c.seq} ${c.capability} · ${c.decision}${c.reexecuted ? " · re-executed" : ""}`,
          title: `args ${c.args_digest}`,
          start: cs,
          end: ce,
          dur: cs !== undefined && ce !== undefined ? ce - cs : null
        })
      }
    }
  }
  const times = rows.flatMap((r) => [r.start, r.end]).filter((x): x is number => x !== undefined)
  const t0 = Math.min(...times, t(run.started_at) ?? Infinity)
  const t1 = Math.max(...times, t(run.ended_at) ?? -Infinity)
  const span = Number.isFinite(t0) && Number.isFinite(t1) && t1 > t0 ? t1 - t0 : 1
  const waterfall = rows.map((r) => {
    const left = r.start === undefined ? 0 : ((r.start - t0) / span) * 100
    const width = r.start === undefined || r.end === undefined ? 0 : Math.max(0.3, ((r.end - r.start) / span) * 100)
    return `<div class="row ${r.kind}" data-row="${esc(r.id)}"><div class="label" title="${esc(r.title)}">${esc(r.label)}</div>` +
      `<div class="lane">${r.start === undefined ? "" : `<div class="bar" style="left:${left.toFixed(2)}%;width:${width.toFixed(2)}%"></div>`}</div>` +
      `<div class="dur">${fmtMs(r.dur)}</div></div>`
  })

  const approvals = run.approvals.map((a) =>
    `<tr data-approval="${esc(a.step_id)}"><td>${esc(a.step_id)}</td><td>${esc(a.kind === "gate" ? `gate (role ${a.role ?? "any"})` : `call #${a.seq ?? "?"} ${a.capability ?? ""}`)}</td>` +
    `<td class="${a.decision === "granted" ? "status-completed" : a.decision === "denied" ? "status-failed" : "status-other"}">${esc(a.decision)}</td>` +
    `<td>${esc(a.approver ?? "—")}</td><td>${esc(a.decided_at ?? "—")}</td><td>${esc(a.rendering ?? "")}${a.reason ? `<div class="muted">reason: ${esc(a.reason)}</div>` : ""}<div class="mono muted">${esc(a.digest)}</div></td></tr>`
  )
  const triggers = run.triggers.map((x) => `<tr><td>${esc(x.step_id)}</td><td>trigger</td><td>received</td><td>—</td><td>${esc(x.received_at ?? "—")}</td><td class="mono">payload ${esc(x.payload_hash)}</td></tr>`)

  const checks = verify.checks.map((c) =>
    `<tr><td>${esc(c.name)}</td><td><span class="badge ${c.status === "ok" ? "ok" : c.status === "failed" ? "bad" : "skip"}">${esc(c.status)}</span></td><td>` +
    c.problems.map((p) => `<div>${esc([p.file, p.entry === undefined ? undefined : `entry ${p.entry}`, p.step === undefined ? undefined : `step ${p.step}`].filter(Boolean).join(", "))}: ${esc(p.message)}</div>`).join("") +
    c.notes.map((n) => `<div class="muted">${esc(n)}</div>`).join("") + `</td></tr>`
  )

  const stepRows = run.steps.map((s) =>
    `<tr data-step="${esc(s.id)}"><td>${esc(s.id)}</td><td>${esc(s.kind)}</td><td class="${statusClass(s.status)}">${esc(s.status)}</td><td>${s.attempts.length}</td>` +
    `<td>${s.attempts.reduce((n, a) => n + a.calls.length, 0)}</td><td>${fmtMs(s.duration_ms)}</td><td class="mono">${esc(short(s.output_hash, 24))}</td><td>${esc(s.error ?? "")}</td></tr>`
  )
  const checksums = Object.entries(m.file_checksums).map(([f, h]) => `<tr><td class="mono">${esc(f)}</td><td class="mono">${esc(h)}</td></tr>`)
  const chain = entries.map((e) =>
    `<tr><td>${e.sequence}</td><td>${esc(AuditChain.eventTag(e.event))}${e.redacted ? ` <span class="muted">(redacted: ${esc(e.redacted.reason)})</span>` : ""}</td><td>${esc(String(AuditChain.eventBody(e.event).step_id ?? ""))}</td><td class="mono">${esc(short(e.entry_hash, 20))}</td></tr>`
  )

  const html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Evidence: ${esc(m.workflow_name)} run ${esc(m.run_id)}</title>
<style>${CSS}</style></head>
<body>
<header>
<h1>Evidence report: ${esc(m.workflow_name)} <span class="muted">v${esc(m.workflow_version)}</span></h1>
<div>Run <code>${esc(m.run_id)}</code> · <span class="${statusClass(m.status)}">${esc(m.status)}</span> ·
verification <span id="verification" class="badge ${verify.ok ? "ok" : "bad"}">${verify.ok ? "VERIFIED" : "NOT VERIFIED"}</span></div>
</header>
<section id="summary"><h2>Summary</h2>
<dl class="summary">
<dt>Started</dt><dd>${esc(m.started_at)}</dd>
<dt>Completed</dt><dd>${esc(m.completed_at ?? "—")}</dd>
<dt>Duration</dt><dd>${fmtMs(run.duration_ms)}</dd>
<dt>Steps</dt><dd>${run.steps.length} (${run.steps.filter((s) => s.status === "completed").length} completed)</dd>
<dt>Capability calls</dt><dd>${run.steps.reduce((n, s) => n + s.attempts.reduce((k, a) => k + a.calls.length, 0), 0)}</dd>
<dt>Approvals</dt><dd>${run.approvals.length}</dd>
<dt>Re-executed by verify</dt><dd>${verify.reexecuted.length > 0 ? esc(verify.reexecuted.join(", ")) : "none"}</dd>
<dt>Redacted entries</dt><dd>${verify.redacted.length > 0 ? esc(verify.redacted.join(", ")) : "none"}</dd>
<dt>boruna</dt><dd>${esc(m.boruna_version)} · bundle made ${esc(m.created_at)}</dd>
</dl>
<h2>Verification</h2>
<table><thead><tr><th>Check</th><th>Status</th><th>Details</th></tr></thead><tbody>${checks.join("")}</tbody></table>
${problems.length > 0 ? `<p class="status-failed">${problems.length} problem(s): this bundle must not be trusted as it is.</p>` : ""}
</section>
<section id="graph"><h2>Step graph</h2>${graphSvg(run.steps)}
<table><thead><tr><th>Step</th><th>Kind</th><th>Status</th><th>Attempts</th><th>Calls</th><th>Duration</th><th>Output hash</th><th>Error</th></tr></thead><tbody>${stepRows.join("")}</tbody></table>
</section>
<section id="timeline"><h2>Timeline</h2>
<p class="muted">Steps (blue), approval gates and triggers (amber) and capability calls (violet) on one time axis from ${esc(new Date(Number.isFinite(t0) ? t0 : 0).toISOString())}; ${fmtMs(span)} in all.</p>
<div class="wf">${waterfall.join("")}</div>
</section>
<section id="approvals"><h2>Approvals</h2>
${approvals.length + triggers.length === 0 ? "<p class=\"muted\">No approvals or triggers in this run.</p>" : `<table><thead><tr><th>Step</th><th>What</th><th>Decision</th><th>Approver</th><th>Time</th><th>Approved</th></tr></thead><tbody>${approvals.join("")}${triggers.join("")}</tbody></table>`}
</section>
${m.redactions.length === 0 ? "" : `<section id="redactions"><h2>Redactions</h2>
<p class="muted">Blanked after the run; each entry keeps its hash commitment, so the chain still verifies, but what was blanked is no longer checked.</p>
<table><thead><tr><th>Entry</th><th>Step</th><th>Fields</th><th>Reason</th><th>Also in</th><th>When</th></tr></thead><tbody>${
  m.redactions.map((r) => `<tr><td>${r.entry}</td><td>${esc(r.step_id ?? "—")}</td><td>${esc(r.fields.join(", "))}</td><td>${esc(r.reason)}</td><td class="mono">${esc(r.files.join(", ") || "—")}</td><td>${esc(r.at)}</td></tr>`).join("")
}</tbody></table></section>`}
<section id="policy"><h2>Policy in effect</h2>
<p class="muted">The run policy (<code>${esc(m.policy_hash)}</code>); each step ran under it narrowed to its declared capabilities and budget (the policy in its event log).</p>
<pre>${esc(policy)}</pre>
</section>
<section id="hashes"><h2>Hashes</h2>
<table><tbody>
<tr><th>bundle_hash</th><td class="mono">${esc(m.bundle_hash)}</td></tr>
<tr><th>audit_log_hash (chain head)</th><td class="mono">${esc(m.audit_log_hash)}</td></tr>
<tr><th>workflow_hash</th><td class="mono">${esc(m.workflow_hash)}</td></tr>
<tr><th>workflow.json sha256</th><td class="mono">${esc(m.workflow_file_sha256)}</td></tr>
<tr><th>policy_hash</th><td class="mono">${esc(m.policy_hash)}</td></tr>
<tr><th>inputs_hash</th><td class="mono">${esc(m.inputs_hash)}</td></tr>
</tbody></table>
<h3>Files</h3>
<table><thead><tr><th>File</th><th>SHA-256</th></tr></thead><tbody>${checksums.join("")}</tbody></table>
<h3>Audit chain (format ${AuditChain.FORMAT_VERSION})</h3>
<table><thead><tr><th>#</th><th>Event</th><th>Step</th><th>Entry hash</th></tr></thead><tbody>${chain.join("")}</tbody></table>
</section>
<footer class="muted"><p>Made by boruna evidence report from the bundle's own files. Check it yourself: <code>boruna evidence verify DIR --verify-key KEY.pub</code>.</p></footer>
</body></html>
`
  return Either.right(html)
}

/** Verify the bundle in `dir` and write its report to `out`. */
export const reportDir = (dir: string, out: string): Effect.Effect<VerifyReport, EvidenceError> =>
  Effect.gen(function*() {
    const [B, V, Fs] = yield* Effect.promise(() => Promise.all([import("./EvidenceBundle.js"), import("./EvidenceVerify.js"), import("node:fs/promises")]))
    const files = yield* B.readFiles(dir)
    const report = yield* V.verifyFiles(files)
    const html = renderReport(files, report)
    if (Either.isLeft(html)) return yield* Effect.fail(new EvidenceError({ message: `${dir}: ${html.left.message}` }))
    yield* Effect.tryPromise({
      try: () => Fs.writeFile(out, html.right, "utf8"),
      catch: (e) => new EvidenceError({ message: `cannot write ${out}: ${(e as { code?: string }).code === "ENOENT" ? "its directory does not exist" : String(e)}` })
    })
    return report
  })
