import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { existsSync, mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as AuditChain from "../src/AuditChain.js"
import * as Attest from "../src/EvidenceAttest.js"
import * as Bundle from "../src/EvidenceBundle.js"
import * as Report from "../src/EvidenceReport.js"
import * as Verify from "../src/EvidenceVerify.js"
import { runFixture, smallRun } from "./EvidenceFixture.js"

const fixed = { createdAt: new Date("2026-12-01T00:00:00.000Z"), env: { boruna_version: "0.1.0" } }

const apply = (files: Map<string, string | Uint8Array>, r: Bundle.RedactResult) => {
  const next = new Map(files)
  for (const [p, c] of r.files_out) next.set(p, c)
  for (const p of r.removed) next.delete(p)
  return next
}

const redactOk = (files: Map<string, string | Uint8Array>, o: { entry: number; field?: string; reason: string }) =>
  Either.getOrThrow(Bundle.redactFiles(files, o))

const status = (r: Verify.VerifyReport) => Object.fromEntries(r.checks.map((c) => [c.name, c.status]))

describe("evidence redact", () => {
  it.effect("redacting an approver: the chain still verifies, run.json no longer names them, verify says what was redacted", () =>
    Effect.gen(function*() {
      const files = new Map<string, string | Uint8Array>(Bundle.buildBundle(smallRun(), fixed))
      const r = redactOk(files, { entry: 6, field: "approver", reason: "personal data (GDPR art. 17)" })
      expect(r).toMatchObject({ event: "ApprovalGranted", stepId: "approve", fields: ["approver"], files: ["run.json"] })
      const next = apply(files, r)
      expect(String(next.get("run.json"))).not.toContain("alice")
      expect(String(next.get("audit_log.json"))).not.toContain("alice")
      const v = yield* Verify.verifyFiles(next)
      expect(v.checks.flatMap((c) => c.problems)).toEqual([])
      expect(v.ok).toBe(true)
      expect(v.redacted).toEqual([6])
      expect(v.checks.find((c) => c.name === "chain")!.notes[0]).toMatch(/entry 6 \(ApprovalGranted\) is redacted \(personal data \(GDPR art\. 17\)\): fields approver are not checked/)
      // every step still re-executes: no step's recorded data changed
      expect(v.reexecuted).toEqual(["fetch", "report"])
      const m = JSON.parse(String(next.get("manifest.json"))) as Bundle.Manifest
      expect(m.redactions).toEqual([{ entry: 6, step_id: "approve", fields: ["approver"], reason: "personal data (GDPR art. 17)", files: ["run.json"], at: expect.any(String) }])
    }))

  it.effect("redacting a capability call blanks its arguments and result in the event log; verify passes except the step's re-execution, and says so", () =>
    Effect.gen(function*() {
      const files = new Map<string, string | Uint8Array>(Bundle.buildBundle(smallRun(), fixed))
      // entry 2 is fetch's net.fetch call
      const entries = Either.getOrThrow(AuditChain.decode(JSON.parse(String(files.get("audit_log.json")))))
      expect(AuditChain.eventTag(entries[2].event)).toBe("CapabilityInvoked")
      const r = redactOk(files, { entry: 2, reason: "customer URL" })
      expect(r.files).toEqual(["event_logs/fetch.jsonl"])
      const next = apply(files, r)
      const log = String(next.get("event_logs/fetch.jsonl"))
      expect(log).not.toContain("https://example.com/a")
      expect(log).toContain(`"args":[{"String":"[REDACTED]"}]`)
      const v = yield* Verify.verifyFiles(next)
      expect(v.checks.flatMap((c) => c.problems)).toEqual([])
      expect(v.ok).toBe(true)
      expect(v.reexecuted).toEqual(["report"])
      expect(v.checks.find((c) => c.name === "reexecute")!.notes).toEqual(["step fetch: not re-executed: its recorded data was redacted (audit entry 2: customer URL)"])
    }))

  it.effect("a failed step's error message, redacted in the chain and in run.json", () =>
    Effect.gen(function*() {
      const rec = runFixture({ steps: [{ id: "a", source: `fn main() -> Int { let x: Int = 1 / 0\n x }` }] })
      const files = new Map<string, string | Uint8Array>(Bundle.buildBundle(rec, fixed))
      const entries = Either.getOrThrow(AuditChain.decode(JSON.parse(String(files.get("audit_log.json")))))
      const n = entries.findIndex((e) => AuditChain.eventTag(e.event) === "StepFailed")
      const next = apply(files, redactOk(files, { entry: n, field: "error", reason: "stack detail" }))
      const run = JSON.parse(String(next.get("run.json"))) as { steps: Array<{ error: string; attempts: Array<{ error: string; error_kind: string }> }> }
      expect(run.steps[0].error).toBe("[REDACTED]")
      expect(run.steps[0].attempts[0]).toMatchObject({ error: "[REDACTED]", error_kind: "division_by_zero" })
      const v = yield* Verify.verifyFiles(next)
      expect(v.checks.flatMap((c) => c.problems)).toEqual([])
      expect(v.reexecuted).toEqual(["a"])
    }))

  it.effect("on disk: redact removes the attestation (it signed the unredacted bytes); re-attesting makes it verify with the key again", () =>
    Effect.gen(function*() {
      const dir = join(mkdtempSync(join(tmpdir(), "ev-red-")), "b")
      yield* Bundle.createBundle(smallRun(), dir, fixed)
      const keys = Attest.generateKeys()
      yield* Attest.attestDir(dir, keys.privatePem, "k.pem")
      const r = yield* Bundle.redactDir(dir, { entry: 6, reason: "privacy" })
      expect(r.removed).toEqual([Bundle.DSSE_FILE, Bundle.SIGSTORE_FILE])
      expect(existsSync(join(dir, Bundle.DSSE_FILE))).toBe(false)
      expect(readFileSync(join(dir, "audit_log.json"), "utf8")).not.toContain("alice")
      expect(status(yield* Verify.verifyDir(dir))).toMatchObject({ chain: "ok", record: "ok", checksums: "ok", manifest: "ok", reexecute: "ok" })
      yield* Attest.attestDir(dir, keys.privatePem, "k.pem")
      expect((yield* Verify.verifyDir(dir, { verifyKey: keys.publicPem, requireSignature: true })).ok).toBe(true)
      // the report lists the redaction
      const html = join(dir, "..", "report.html")
      yield* Report.reportDir(dir, html)
      const page = readFileSync(html, "utf8")
      expect(page).toContain(`<section id="redactions">`)
      expect(page).toMatch(/<td>6<\/td><td>approve<\/td><td>digest, approver, decided_at<\/td><td>privacy<\/td>/)
      expect(page).not.toContain("alice")
    }))

  it.effect("a forger cannot use the redaction record to hide an edit: changing run.json's other fields still fails", () =>
    Effect.gen(function*() {
      const files = new Map<string, string | Uint8Array>(Bundle.buildBundle(smallRun(), fixed))
      const next = apply(files, redactOk(files, { entry: 6, field: "approver", reason: "x" }))
      // change the approval's time (not redacted) in run.json and in the chain entry, re-seal everything
      const run = JSON.parse(String(next.get("run.json"))) as { approvals: Array<{ decided_at: string }> }
      run.approvals[0].decided_at = "2030-01-01T00:00:00.000Z"
      next.set("run.json", JSON.stringify(run, null, 2) + "\n")
      const m = JSON.parse(String(next.get("manifest.json"))) as Bundle.Manifest
      const { file_checksums: _c, bundle_hash: _b, ...base } = m
      const rest = new Map([...next].filter(([p]) => p !== "manifest.json" && p !== "bundle.json"))
      const sealed = Bundle.seal(rest, base)
      rest.set("manifest.json", Bundle.manifestText(sealed))
      rest.set("bundle.json", Bundle.bundleJsonText(sealed))
      const v = yield* Verify.verifyFiles(rest)
      expect(v.ok).toBe(false)
      expect(v.checks.find((c) => c.name === "record")!.problems[0]).toMatchObject({ file: "audit_log.json", entry: 6 })
    }))

  it("clear refusals", () => {
    const files = new Map<string, string | Uint8Array>(Bundle.buildBundle(smallRun(), fixed))
    const e1 = Bundle.redactFiles(files, { entry: 40, reason: "x" })
    expect(Either.isLeft(e1) && e1.left.message).toMatch(/no audit entry 40/)
    const e2 = Bundle.redactFiles(new Map(), { entry: 0, reason: "x" })
    expect(Either.isLeft(e2) && e2.left.message).toMatch(/not an evidence bundle/)
  })
})
