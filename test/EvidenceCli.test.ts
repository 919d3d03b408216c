/** `boruna evidence …` in process: output lines, exit codes, and a whole flow from a real run to a checked, signed, redacted bundle. */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Bundle from "../src/EvidenceBundle.js"
import { allowAll } from "../src/PolicyCore.js"
import * as Telemetry from "../src/Telemetry.js"
import { sqliteEngine } from "../src/WorkflowEngine.js"
import * as Runner from "../src/WorkflowRunner.js"
import { smallRun } from "./EvidenceFixture.js"
import { borunaInProcess as boruna } from "./support/InProcessCli.js"
import { wfDir } from "./support/WorkflowDir.js"

const fixed = { createdAt: new Date("2026-12-01T00:00:00.000Z"), env: { boruna_version: "0.1.0" } }
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p))

const bundleDir = () =>
  Effect.gen(function*() {
    const dir = join(tmp("ev-cli-"), "bundle")
    yield* Bundle.createBundle(smallRun(), dir, fixed)
    return dir
  })

describe("boruna evidence", () => {
  it.effect("verify: the checks, one per line, and the verdict; exit 0; --json", () =>
    Effect.gen(function*() {
      const dir = yield* bundleDir()
      const r = yield* boruna(["evidence", "verify", dir])
      expect(r.code, r.stderr).toBe(0)
      const lines = r.stdout.trimEnd().split("\n")
      expect(lines.slice(0, 5)).toEqual(["ok      bundle", "ok      manifest", "ok      checksums", "ok      chain", "ok      record"])
      expect(lines.at(-1)).toMatch(/^evidence: verified \(run 0123456789abcdef, bundle [0-9a-f]{64}, 2 step\(s\) re-executed\)$/)
      const j = yield* boruna(["evidence", "verify", dir, "--json"])
      expect(j.code).toBe(0)
      expect(JSON.parse(j.stdout)).toMatchObject({ ok: true, runId: "0123456789abcdef", reexecuted: ["fetch", "report"] })
    }))

  it.effect("verify a tampered bundle: each problem names its file; exit 1", () =>
    Effect.gen(function*() {
      const dir = yield* bundleDir()
      writeFileSync(join(dir, "outputs/fetch/result.json"), `{"String":"forged"}`)
      const r = yield* boruna(["evidence", "verify", dir])
      expect(r.code).toBe(1)
      expect(r.stdout).toContain("FAILED  checksums")
      expect(r.stdout).toMatch(/error: outputs\/fetch\/result\.json: checksum mismatch/)
      expect(r.stdout.trimEnd().split("\n").at(-1)).toMatch(/^evidence: NOT verified \(\d+ problem\(s\)\)$/)
      const anchor = yield* boruna(["evidence", "verify", yield* bundleDir(), "--expected-bundle-hash", "0".repeat(64)])
      expect(anchor.code).toBe(1)
      expect(anchor.stdout).toMatch(/error: manifest\.json: the bundle hash is [0-9a-f]{64}, expected 0{64}/)
    }))

  it.effect("bad input: one error line, exit 3 or 2, no stack trace", () =>
    Effect.gen(function*() {
      const missing = yield* boruna(["evidence", "verify", join(tmp("ev-"), "nope")])
      expect(missing.code).toBe(3)
      expect(missing.stderr.trim()).toMatch(/^error\[evidence_error\]: .*nope: no such file or directory$/)
      const notKey = join(tmp("ev-"), "k.pem")
      writeFileSync(notKey, "hello")
      const badKey = yield* boruna(["evidence", "attest", yield* bundleDir(), "--key", notKey])
      expect(badKey.code).toBe(3)
      expect(badKey.stderr.trim()).toMatch(/^error\[evidence_error\]: .*k\.pem: not a PEM private key/)
      const noReason = yield* boruna(["evidence", "redact", yield* bundleDir(), "--event", "6", "--reason", " "])
      expect(noReason.code).toBe(2)
      expect(noReason.stderr.trim()).toBe("error[usage]: --reason must not be empty")
      const badEntry = yield* boruna(["evidence", "redact", yield* bundleDir(), "--event", "99", "--reason", "x"])
      expect(badEntry.code).toBe(3)
      expect(badEntry.stderr.trim()).toMatch(/no audit entry 99 \(the chain has 13, numbered 0–12\)$/)
      const noRun = yield* boruna(["evidence", "create", "abc", "-o", join(tmp("ev-"), "b"), "--data-dir", tmp("ev-data-")])
      expect(noRun.code).toBe(3)
      expect(noRun.stderr.trim()).toMatch(/^error\[unknown_run\]: no workflow runs in /)
      for (const r of [missing, badKey, noReason, badEntry, noRun]) expect(r.stderr).not.toMatch(/\n\s+at /)
    }))

  it.effect("keygen → attest → verify --verify-key --require-signature; redact → re-attest; report", () =>
    Effect.gen(function*() {
      const keys = tmp("ev-keys-")
      const key = join(keys, "evidence.key")
      const kg = yield* boruna(["evidence", "keygen", "-o", key, "--algorithm", "ecdsa-p256"])
      expect(kg.code, kg.stderr).toBe(0)
      expect(kg.stdout).toMatch(/^ecdsa-p256 key pair written: .*evidence\.key \(private, keep it secret\) and .*evidence\.key\.pub/)
      expect(statSync(key).mode & 0o777).toBe(0o600)
      const again = yield* boruna(["evidence", "keygen", "-o", key])
      expect(again.code).toBe(3)
      expect(again.stderr).toMatch(/never overwrites a key/)

      const dir = yield* bundleDir()
      const at = yield* boruna(["evidence", "attest", dir, "--key", key])
      expect(at.code, at.stderr).toBe(0)
      expect(at.stdout).toMatch(/attestation\.intoto\.dsse\.json .* attestation\.sigstore\.json/)
      const ok = yield* boruna(["evidence", "verify", dir, "--verify-key", `${key}.pub`, "--require-signature"])
      expect(ok.code, ok.stdout).toBe(0)
      expect(ok.stdout).toContain("ok      signature")
      expect(ok.stdout).toMatch(/note: Sigstore bundle verified/)

      const red = yield* boruna(["evidence", "redact", dir, "--event", "6", "--field", "approver", "--reason", "GDPR"])
      expect(red.code, red.stderr).toBe(0)
      expect(red.stdout.split("\n")[0]).toBe("redacted audit entry 6 (ApprovalGranted, step approve): approver")
      expect(red.stdout).toMatch(/removed attestation\.intoto\.dsse\.json and attestation\.sigstore\.json .* sign again/)
      const unsigned = yield* boruna(["evidence", "verify", dir, "--verify-key", `${key}.pub`, "--require-signature"])
      expect(unsigned.code).toBe(1)
      expect((yield* boruna(["evidence", "attest", dir, "--key", key])).code).toBe(0)
      const after = yield* boruna(["evidence", "verify", dir, "--verify-key", `${key}.pub`, "--require-signature"])
      expect(after.code, after.stdout).toBe(0)
      expect(after.stdout).toMatch(/note: entry 6 \(ApprovalGranted\) is redacted \(GDPR\)/)

      const html = join(tmp("ev-html-"), "report.html")
      const rep = yield* boruna(["evidence", "report", dir, "-o", html])
      expect(rep.code, rep.stderr).toBe(0)
      expect(rep.stdout.trim()).toBe(`report written to ${html} (verified)`)
      expect(readFileSync(html, "utf8")).toContain("VERIFIED")
    }))

  it.live("create RUN from a data dir the runner wrote, then verify it", () =>
    Effect.gen(function*() {
      const data = tmp("ev-cli-data-")
      const wf = {
        schema_version: 1, name: "two", version: "1",
        steps: { a: { kind: "source", source: "a.ax" }, b: { kind: "source", source: "b.ax", inputs: { x: "a.result" }, depends_on: ["a"] } },
        edges: []
      }
      const files = {
        "a.ax": 'fn main() -> String !{net.fetch} { net.fetch("https://example.com/a") }\n',
        "b.ax": 'fn main() -> String !{step.input} { step.input("x") }\n'
      }
      const run = yield* Effect.scoped(Runner.startRun({ path: wfDir(wf, files), policy: allowAll }).pipe(
        Effect.provide(Runner.layer(sqliteEngine(data)).pipe(Layer.provide(Telemetry.off), Layer.orDie))
      ))
      expect(run.status).toBe("completed")
      const out = join(tmp("ev-cli-"), "bundle")
      const c = yield* boruna(["evidence", "create", run.runId, "-o", out, "--data-dir", data])
      expect(c.code, c.stderr).toBe(0)
      expect(c.stdout.split("\n")[0]).toBe(`evidence bundle for run ${run.runId} written to ${out}`)
      expect(existsSync(join(out, "event_logs", "b.jsonl"))).toBe(true)
      const v = yield* boruna(["evidence", "verify", out])
      expect(v.code, v.stdout).toBe(0)
      expect(v.stdout).toMatch(/2 step\(s\) re-executed/)
      // boruna workflow run … --evidence DIR: the bundle is written when the run ends
      const direct = join(tmp("ev-cli-"), "direct")
      const w = yield* boruna(["workflow", "run", wfDir(wf, files), "--policy", "allow-all", "--data-dir", tmp("ev-cli-data-"), "--evidence", direct])
      expect(w.code, w.stderr).toBe(0)
      expect(existsSync(join(direct, "bundle.json"))).toBe(true)
      const v2 = yield* boruna(["evidence", "verify", direct])
      expect(v2.code, v2.stdout).toBe(0)
      const unknown = yield* boruna(["evidence", "create", "ffffffffffffffff", "-o", join(tmp("ev-"), "x"), "--data-dir", data])
      expect(unknown.code).toBe(3)
      expect(unknown.stderr.trim()).toBe("error[evidence_error]: unknown run ffffffffffffffff")
    }), 90_000)
})
