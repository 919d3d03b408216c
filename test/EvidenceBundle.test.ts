import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as AuditChain from "../src/AuditChain.js"
import * as Bundle from "../src/EvidenceBundle.js"
import { sha256Hex } from "../src/EvidenceRecord.js"
import { formatLog, parseLog } from "../src/EventLogFile.js"
import { policyHash } from "../src/Policy.js"
import { policyOf, runFixture } from "./EvidenceFixture.js"
import * as Verify from "../src/EvidenceVerify.js"
import { smallRun } from "./EvidenceFixture.js"

const fixed = { createdAt: new Date("2026-12-01T00:00:00.000Z"), env: { boruna_version: "0.1.0", os: "linux", arch: "x64" } }

const failing = (r: Verify.VerifyReport) => r.checks.filter((c) => c.status === "failed").map((c) => c.name)

describe("EvidenceBundle: layout", () => {
  it("writes the 1.0 layout with event logs and outputs, bundle.json last", () =>
    Effect.gen(function*() {
      const dir = join(mkdtempSync(join(tmpdir(), "ev-")), "bundle")
      const m = yield* Bundle.createBundle(smallRun(), dir, fixed)
      const names = (d: string): Array<string> => readdirSync(d, { recursive: true, withFileTypes: true }).filter((x) => x.isFile()).map((x) => join(x.parentPath, x.name).slice(dir.length + 1)).sort()
      expect(names(dir)).toEqual([
        "audit_log.json", "bundle.json", "env_fingerprint.json",
        "event_logs/fetch.jsonl", "event_logs/report.jsonl",
        "inputs.json", "manifest.json",
        "outputs/approve/result.json", "outputs/fetch/result.json", "outputs/report/result.json",
        "policy.json", "run.json",
        "sources/steps/fetch.ax", "sources/steps/report.ax",
        "workflow.json"
      ])
      expect(Object.keys(m.file_checksums)).not.toContain("manifest.json")
      expect(Object.keys(m.file_checksums)).not.toContain("bundle.json")
      const out = readFileSync(join(dir, "outputs/fetch/result.json"), "utf8")
      expect(sha256Hex(out)).toBe(smallRun().steps[0].outputHash)
      const bundleJson = JSON.parse(readFileSync(join(dir, "bundle.json"), "utf8"))
      expect(bundleJson).toMatchObject({ format_version: "1.0", run_id: "0123456789abcdef", bundle_hash: m.bundle_hash })
      expect(bundleJson.components).toEqual(["audit_log.json", "bundle.json", "env_fingerprint.json", "event_logs/", "inputs.json", "manifest.json", "outputs/", "policy.json", "run.json", "sources/", "workflow.json"])
      // the event log is an ordinary event-log file (boruna replay reads it)
      const log = readFileSync(join(dir, "event_logs/report.jsonl"), "utf8").split("\n")
      expect(JSON.parse(log[0])).toMatchObject({ format: "boruna-event-log" })
      expect(log[1]).toContain("step.input")
      // and the directory verifies
      const r = yield* Verify.verifyDir(dir)
      expect(failing(r)).toEqual([])
      expect(r.ok).toBe(true)
      expect(r.reexecuted).toEqual(["fetch", "report"])
      // refuses to write into a non-empty directory
      const again = yield* Effect.either(Bundle.createBundle(smallRun(), dir, fixed))
      expect(again._tag === "Left" && again.left.message).toMatch(/not empty/)
    }))

  it("the same record gives the same bytes (created_at and env fixed)", () => {
    const a = Bundle.buildBundle(smallRun(), fixed)
    const b = Bundle.buildBundle(smallRun(), fixed)
    expect([...a.entries()]).toEqual([...b.entries()])
  })

  it("bundle_hash is the SHA-256 of the manifest with bundle_hash blank", () => {
    const files = Bundle.buildBundle(smallRun(), fixed)
    const text = files.get("manifest.json")!
    const m = JSON.parse(text) as Bundle.Manifest
    expect(sha256Hex(text.replace(`"bundle_hash": "${m.bundle_hash}"`, `"bundle_hash": ""`))).toBe(m.bundle_hash)
  })
})

describe("EvidenceVerify: each check names what failed", () => {
  const files = () => new Map<string, string | Uint8Array>(Bundle.buildBundle(smallRun(), fixed))
  const verify = (f: Verify.Files, o: Verify.VerifyOptions = {}) => Effect.runPromise(Verify.verifyFiles(f, o))
  const problems = (r: Verify.VerifyReport) => r.checks.flatMap((c) => c.problems)

  it("a clean bundle verifies, and re-executes every source step", async () => {
    const r = await verify(files())
    expect(problems(r)).toEqual([])
    expect(r.ok).toBe(true)
    expect(r.reexecuted).toEqual(["fetch", "report"])
    expect(Verify.formatReport(r).at(-1)).toMatch(/^evidence: verified \(run 0123456789abcdef, bundle [0-9a-f]{64}, 2 step\(s\) re-executed\)$/)
  })

  it("--expected-bundle-hash: an anchor from elsewhere must match", async () => {
    const f = files()
    const m = JSON.parse(f.get("manifest.json") as string) as Bundle.Manifest
    expect((await verify(f, { expectedBundleHash: m.bundle_hash })).ok).toBe(true)
    expect((await verify(f, { expectedBundleHash: `sha256:${m.bundle_hash}` })).ok).toBe(true)
    const r = await verify(f, { expectedBundleHash: "0".repeat(64) })
    expect(r.ok).toBe(false)
    expect(problems(r)[0]).toMatchObject({ check: "manifest", file: "manifest.json" })
  })

  it("a changed file: checksum mismatch naming it", async () => {
    const f = files()
    f.set("outputs/fetch/result.json", `{"String":"forged"}`)
    const r = await verify(f)
    expect(r.ok).toBe(false)
    expect(problems(r)).toContainEqual(expect.objectContaining({ check: "checksums", file: "outputs/fetch/result.json" }))
  })

  it("an added file and a removed one", async () => {
    const f = files()
    f.set("extra.txt", "hello")
    f.delete("event_logs/fetch.jsonl")
    const ps = problems(await verify(f))
    expect(ps).toContainEqual(expect.objectContaining({ check: "checksums", file: "extra.txt", message: expect.stringMatching(/not covered/) }))
    expect(ps).toContainEqual(expect.objectContaining({ check: "checksums", file: "event_logs/fetch.jsonl", message: expect.stringMatching(/missing/) }))
  })

  it("a missing bundle.json: unfinished", async () => {
    const f = files()
    f.delete("bundle.json")
    expect(problems(await verify(f))).toContainEqual(expect.objectContaining({ check: "bundle", message: expect.stringMatching(/unfinished/) }))
  })

  it("a missing or garbled manifest", async () => {
    const f = files()
    f.delete("manifest.json")
    expect(problems(await verify(f))[0]).toMatchObject({ check: "manifest", message: expect.stringMatching(/not an evidence bundle/) })
    const g = files()
    g.set("manifest.json", "{")
    expect(problems(await verify(g))[0]).toMatchObject({ check: "manifest", file: "manifest.json", message: expect.stringMatching(/line 1, column 2/) })
  })
})

/**
 * Rewrite files of a bundle the way a careful forger would: then fix every checksum and the
 * bundle hash (and bundle.json), so only the deeper checks can tell.
 */
const reseal = (files: Map<string, string | Uint8Array>): Map<string, string | Uint8Array> => {
  const m = JSON.parse(files.get("manifest.json") as string) as Bundle.Manifest
  const { file_checksums: _c, bundle_hash: _b, ...base } = m
  const rest = new Map([...files].filter(([p]) => p !== "manifest.json" && p !== "bundle.json"))
  const sealed = Bundle.seal(rest, base)
  rest.set("manifest.json", Bundle.manifestText(sealed))
  rest.set("bundle.json", Bundle.bundleJsonText(sealed))
  return rest
}

describe("EvidenceVerify: runs stopped from outside", () => {
  const cut = (errorKind: string) => {
    const rec = runFixture({ steps: [{ id: "a", source: `fn main() -> Int !{time.now} { let x: Int = time.now()\n let y: Int = time.now()\n x + y }` }] })
    // the run was stopped after its first call: the log and the journal end there
    const steps = rec.steps.map((s) => ({
      ...s, status: "failed" as const, outputJson: undefined, outputHash: undefined, error: "stopped",
      attempts: s.attempts.map((a) => ({ ...a, status: "failed" as const, events: a.events.slice(0, 2), calls: a.calls.slice(0, 1), outputJson: undefined, outputHash: undefined, error: "stopped", errorKind }))
    }))
    return Bundle.buildBundle({ ...rec, status: "failed", steps }, fixed)
  }

  it("a timeout or a rejected approval: re-executed up to where it stopped", async () => {
    for (const kind of ["wall_time_exceeded", "approval_rejected"]) {
      const r = await Effect.runPromise(Verify.verifyFiles(cut(kind)))
      expect(r.checks.flatMap((c) => c.problems)).toEqual([])
      expect(r.checks.find((c) => c.name === "reexecute")!.notes[0]).toMatch(new RegExp(`stopped from outside \\(${kind}\\); re-executed up to where it stopped \\(2 events identical\\)`))
    }
  })

  it("a failure the program itself would make must re-execute the same way: a cut log is rejected", async () => {
    const r = await Effect.runPromise(Verify.verifyFiles(cut("runtime_error")))
    expect(r.ok).toBe(false)
    expect(r.checks.find((c) => c.name === "reexecute")!.problems[0].message).toMatch(/re-execution .*diverged/)
  })
})

describe("EvidenceVerify: tampering", () => {
  const verify = (f: Verify.Files) => Effect.runPromise(Verify.verifyFiles(f))

  it("flipping any one byte of any file of a small bundle is always rejected (every byte, every file)", async () => {
    const record = smallRun()
    const base = Bundle.buildBundle(record, fixed)
    const total = [...base.values()].reduce((n, c) => n + Buffer.byteLength(c), 0)
    expect(total).toBeLessThan(24_000)
    let tried = 0
    const accepted: Array<string> = []
    for (const [path, content] of base) {
      const bytes = Buffer.from(content, "utf8")
      for (let i = 0; i < bytes.length; i++) {
        const mask = [0x01, 0x20, 0x80, 0x04][i % 4]
        const flipped = Buffer.from(bytes)
        flipped[i] ^= mask
        const f = new Map<string, string | Uint8Array>(base)
        f.set(path, flipped)
        tried++
        // the verdict only: re-execution is not needed to catch a flipped byte, and later checks can
        // only add problems to a bundle an earlier one rejected (a clean bundle runs every check)
        const r = Effect.runSync(Verify.verifyFiles(f, { reexecute: false, stopEarly: true }))
        if (r.ok) accepted.push(`${path}@${i}`)
        // let the test runner's own messages through now and then
        if (tried % 500 === 0) await new Promise((resolve) => setImmediate(resolve))
      }
    }
    expect(tried).toBe(total)
    expect(accepted).toEqual([])
    // the unflipped bundle passes the same call
    expect(Effect.runSync(Verify.verifyFiles(base, { reexecute: false, stopEarly: true })).ok).toBe(true)
  }, 180_000)

  it("editing the recorded policy and recomputing every checksum and the bundle hash is rejected", async () => {
    const f = new Map<string, string | Uint8Array>(Bundle.buildBundle(smallRun(), fixed))
    // deny what the run did
    f.set("policy.json", JSON.stringify({ schema_version: 1, default_allow: false, rules: {} }, null, 2) + "\n")
    const r = await verify(reseal(f))
    expect(r.ok).toBe(false)
    expect(failing(r)).toContain("record")
    expect(r.checks.find((c) => c.name === "record")!.problems).toContainEqual(expect.objectContaining({ file: "manifest.json", message: expect.stringMatching(/policy_hash/) }))
  })

  it("editing a step's policy in its event log (log re-sealed, checksums and bundle hash recomputed) is rejected, and re-execution under it diverges", async () => {
    const f = new Map<string, string | Uint8Array>(Bundle.buildBundle(smallRun(), fixed))
    const log = parseLog(f.get("event_logs/fetch.jsonl") as string, "fetch.jsonl")
    if (log._tag !== "Right") throw new Error("bad fixture")
    // deny what the run did, and write the log again as the writer would (its hash chain sealed anew)
    const deny = policyOf({ default_allow: false })
    f.set("event_logs/fetch.jsonl", formatLog({ ...log.right.header, policy: deny, policy_hash: policyHash(deny) }, log.right.events))
    const r = await verify(reseal(f))
    expect(r.ok).toBe(false)
    expect(r.checks.find((c) => c.name === "record")!.problems[0]).toMatchObject({ step: "fetch", message: expect.stringMatching(/policy_hash/) })
    expect(r.checks.find((c) => c.name === "reexecute")!.problems[0]).toMatchObject({ step: "fetch", file: "event_logs/fetch.jsonl" })
    // and a log edited without re-sealing is reported by its own hash chain
    const g = new Map<string, string | Uint8Array>(Bundle.buildBundle(smallRun(), fixed))
    g.set("event_logs/fetch.jsonl", (g.get("event_logs/fetch.jsonl") as string).replace("example.com/a", "example.com/b"))
    const r2 = await verify(reseal(g))
    expect(r2.checks.find((c) => c.name === "record")!.problems[0]).toMatchObject({ file: "event_logs/fetch.jsonl", message: expect.stringMatching(/hash chain broken/) })
  })

  it("a step that claims a wider policy than policy.json narrowed to it is rejected, even with every hash and the chain made consistent", async () => {
    const rec = smallRun()
    const wide = policyOf({ default_allow: true })
    const steps = rec.steps.map((s) => (s.id === "fetch" ? { ...s, attempts: s.attempts.map((a) => ({ ...a, policy: wide })) } : s))
    const r = await verify(Bundle.buildBundle({ ...rec, steps }, fixed))
    expect(failing(r)).toEqual(["record"])
    expect(r.checks.find((c) => c.name === "record")!.problems[0]).toMatchObject({
      step: "fetch", file: "event_logs/fetch.jsonl", message: expect.stringMatching(/is not policy\.json narrowed to the step/)
    })
  })

  it("an edited workflow.json (every hash and the chain made consistent) no longer hashes to the run's workflow_hash", async () => {
    const rec = smallRun()
    const text = rec.workflow.text.replace(`"version": "1.0.0"`, `"version": "1.0.1"`)
    expect(text).not.toBe(rec.workflow.text)
    const r = await verify(Bundle.buildBundle({ ...rec, workflow: { ...rec.workflow, text } }, fixed))
    expect(failing(r)).toEqual(["record"])
    expect(r.checks.find((c) => c.name === "record")!.problems[0]).toMatchObject({ file: "workflow.json", message: expect.stringMatching(/run records workflow_hash/) })
  })

  it("editing the recorded program (hashes recomputed) is rejected by the chain and by re-execution", async () => {
    const f = new Map<string, string | Uint8Array>(Bundle.buildBundle(smallRun(), fixed))
    f.set("sources/steps/fetch.ax", `fn main() -> String !{net.fetch} { net.fetch("https://evil.example/") }`)
    const r = await verify(reseal(f))
    expect(r.ok).toBe(false)
    expect(r.checks.find((c) => c.name === "record")!.problems).toContainEqual(expect.objectContaining({ file: "audit_log.json", entry: 1 }))
    expect(r.checks.find((c) => c.name === "reexecute")!.problems[0]).toMatchObject({ step: "fetch", file: "sources/steps/fetch.ax" })
    // even a change that compiles to the same program (a comment) changes the source hash the chain holds
    const g = new Map<string, string | Uint8Array>(Bundle.buildBundle(smallRun(), fixed))
    g.set("sources/steps/fetch.ax", `// harmless?\n` + (g.get("sources/steps/fetch.ax") as string))
    expect((await verify(reseal(g))).ok).toBe(false)
  })

  it("a forger who rewrites the program, its recorded hash and the chain is caught by re-execution (and by an anchor)", async () => {
    const rec = smallRun()
    const forged = { ...rec, workflow: { ...rec.workflow, sources: { ...rec.workflow.sources, "steps/fetch.ax": `fn main() -> String !{net.fetch} { net.fetch("https://evil.example/") }` } } }
    // the whole bundle rebuilt from the forged record: every hash agrees, only the events disagree with the program
    const r = await verify(Bundle.buildBundle(forged, fixed))
    expect(r.ok).toBe(false)
    expect(failing(r)).toEqual(["reexecute"])
    const x = r.checks.find((c) => c.name === "reexecute")!.problems
    expect(x.map((p) => p.step)).toContain("fetch")
    const honest = JSON.parse(Bundle.buildBundle(rec, fixed).get("manifest.json")!) as Bundle.Manifest
    expect((await Effect.runPromise(Verify.verifyFiles(Bundle.buildBundle(forged, fixed), { expectedBundleHash: honest.bundle_hash }))).checks.find((c) => c.name === "manifest")!.status).toBe("failed")
  })

  it("a forged output with its hashes recomputed everywhere is caught by re-execution", async () => {
    const rec = smallRun()
    const out = `{"String":"forged"}`
    const steps = rec.steps.map((s) => s.id === "report" ? { ...s, outputJson: out, outputHash: sha256Hex(out), attempts: s.attempts.map((a) => ({ ...a, outputJson: out, outputHash: sha256Hex(out) })) } : s)
    const r = await verify(Bundle.buildBundle({ ...rec, steps }, fixed))
    expect(failing(r)).toEqual(["reexecute"])
    expect(r.checks.find((c) => c.name === "reexecute")!.problems[0].message).toMatch(/output hashes to/)
  })

  it("an edited audit entry whose chain is recomputed is caught against the record", async () => {
    const f = new Map<string, string | Uint8Array>(Bundle.buildBundle(smallRun(), fixed))
    const entries = AuditChain.decode(JSON.parse(f.get("audit_log.json") as string))
    if (entries._tag !== "Right") throw new Error("bad fixture")
    const evs = entries.right.map((e) => e.event)
    evs[6] = { ApprovalGranted: { ...(evs[6] as { ApprovalGranted: { step_id: string; digest: string; approver: string; decided_at: string | null } }).ApprovalGranted, approver: "mallory" } }
    const chained = AuditChain.chain(evs)
    f.set("audit_log.json", AuditChain.encode(chained))
    const m = JSON.parse(f.get("manifest.json") as string) as Bundle.Manifest
    f.set("manifest.json", Bundle.manifestText({ ...m, audit_log_hash: AuditChain.head(chained) }))
    const r = await verify(reseal(f))
    expect(r.checks.find((c) => c.name === "record")!.problems[0]).toMatchObject({ file: "audit_log.json", entry: 6 })
  })

  it("a bundle on disk with a changed file fails verifyDir", () =>
    Effect.gen(function*() {
      const dir = join(mkdtempSync(join(tmpdir(), "ev-")), "b")
      yield* Bundle.createBundle(smallRun(), dir, fixed)
      writeFileSync(join(dir, "policy.json"), "{}\n")
      const r = yield* Verify.verifyDir(dir)
      expect(r.ok).toBe(false)
      expect(r.checks.find((c) => c.name === "checksums")!.problems[0]).toMatchObject({ file: "policy.json" })
    }))
})
