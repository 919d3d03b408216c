import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { verify as cryptoVerify, createPublicKey } from "node:crypto"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Attest from "../src/EvidenceAttest.js"
import * as Bundle from "../src/EvidenceBundle.js"
import * as Verify from "../src/EvidenceVerify.js"
import { smallRun } from "./EvidenceFixture.js"

const fixed = { createdAt: new Date("2026-12-01T00:00:00.000Z"), env: { boruna_version: "0.1.0" } }

const signed = (algorithm: Attest.Algorithm) =>
  Effect.gen(function*() {
    const keys = Attest.generateKeys(algorithm)
    const dir = join(mkdtempSync(join(tmpdir(), "ev-att-")), "b")
    yield* Bundle.createBundle(smallRun(), dir, fixed)
    const a = yield* Attest.attestDir(dir, keys.privatePem, "key.pem")
    return { keys, dir, a }
  })

const check = (r: Verify.VerifyReport) => r.checks.find((c) => c.name === "signature")!

describe("EvidenceAttest", () => {
  it("PAE is DSSE v1's pre-authentication encoding", () => {
    expect(Attest.pae("application/vnd.in-toto+json", Buffer.from("hello")).toString()).toBe("DSSEv1 28 application/vnd.in-toto+json 5 hello")
  })

  for (const algorithm of ["ed25519", "ecdsa-p256"] as const) {
    it.effect(`${algorithm}: attest writes a DSSE in-toto statement and a Sigstore v0.3 bundle that verify with the public key only`, () =>
      Effect.gen(function*() {
        const { keys, dir, a } = yield* signed(algorithm)
        // the statement: every file and the bundle, by digest
        const names = a.statement.subject.map((s) => s.name)
        expect(names).toContain("manifest.json")
        expect(names).toContain("bundle.json")
        expect(names).toContain("event_logs/fetch.jsonl")
        expect(names.at(-1)).toBe("boruna-bundle:0123456789abcdef")
        expect(a.statement.predicateType).toBe(Attest.PREDICATE_TYPE)
        expect((a.statement.predicate as unknown as { steps: Array<{ id: string; calls: Array<unknown> }> }).steps.map((s) => [s.id, s.calls.length])).toEqual([["fetch", 1], ["approve", 0], ["report", 2]])
        // the DSSE signature is over the PAE of the statement (checked here with node:crypto alone)
        const env = JSON.parse(readFileSync(join(dir, Bundle.DSSE_FILE), "utf8")) as Attest.Envelope
        const msg = Attest.pae(env.payloadType, Buffer.from(env.payload, "base64"))
        const pub = createPublicKey(keys.publicPem)
        expect(cryptoVerify(algorithm === "ed25519" ? null : "sha256", msg, pub, Buffer.from(env.signatures[0].sig, "base64"))).toBe(true)
        // the Sigstore bundle
        const sb = JSON.parse(readFileSync(join(dir, Bundle.SIGSTORE_FILE), "utf8")) as { mediaType: string; verificationMaterial: { publicKey: { hint: string }; tlogEntries?: Array<unknown>; timestampVerificationData?: unknown }; dsseEnvelope: { payload: string } }
        expect(sb.mediaType).toBe("application/vnd.dev.sigstore.bundle.v0.3+json")
        expect(sb.verificationMaterial.publicKey.hint).toBe(keys.keyId)
        // no transparency log, no timestamp: nothing but the key hint
        expect(sb.verificationMaterial.tlogEntries ?? []).toEqual([])
        expect(sb.dsseEnvelope.payload).toBe(env.payload)
        // verify with the public key: both check out
        const r = yield* Verify.verifyDir(dir, { verifyKey: keys.publicPem, requireSignature: true })
        expect(check(r).problems).toEqual([])
        expect(check(r).notes.join("\n")).toMatch(/DSSE signature verified[\s\S]*Sigstore bundle verified/)
        expect(r.ok).toBe(true)
      }))
  }

  it.effect("another key, a changed file, a swapped statement: all rejected", () =>
    Effect.gen(function*() {
      const { dir, keys } = yield* signed("ed25519")
      const other = Attest.generateKeys("ed25519")
      const wrong = yield* Verify.verifyDir(dir, { verifyKey: other.publicPem })
      expect(wrong.ok).toBe(false)
      expect(check(wrong).problems.map((p) => p.file)).toEqual([Bundle.DSSE_FILE, Bundle.SIGSTORE_FILE])

      // a statement re-signed by someone else's key does not pass under the signer's key
      const files = yield* Bundle.readFiles(dir)
      const m = JSON.parse(Buffer.from(files.get("manifest.json")!).toString()) as Bundle.Manifest
      const forged = yield* Attest.attest(new Map([...files].filter(([p]) => !p.startsWith("attestation."))), m, undefined, (Either.getOrThrow(Attest.privateKeyFrom(other.privatePem, "k"))))
      const f2 = new Map<string, string | Uint8Array>(files)
      f2.set(Bundle.DSSE_FILE, forged.dsseText)
      f2.set(Bundle.SIGSTORE_FILE, forged.sigstoreText)
      const r2 = yield* Verify.verifyFiles(f2, { verifyKey: keys.publicPem })
      expect(check(r2).status).toBe("failed")

      // a payload edited inside the envelope (signature kept)
      const env = JSON.parse(Buffer.from(files.get(Bundle.DSSE_FILE)!).toString()) as Attest.Envelope
      const st = JSON.parse(Buffer.from(env.payload, "base64").toString()) as { predicate: { status: string } }
      st.predicate.status = "completed-ish"
      const f3 = new Map<string, string | Uint8Array>(files)
      f3.set(Bundle.DSSE_FILE, JSON.stringify({ ...env, payload: Buffer.from(JSON.stringify(st)).toString("base64") }))
      const r3 = yield* Verify.verifyFiles(f3, { verifyKey: keys.publicPem })
      expect(check(r3).problems.map((p) => p.message).join("\n")).toMatch(/no signature verifies|statement is not/)

      // the Sigstore bundle's payload swapped for another statement (its signature kept): @sigstore/verify says no
      const sbj = JSON.parse(Buffer.from(files.get(Bundle.SIGSTORE_FILE)!).toString()) as { dsseEnvelope: { payload: string } }
      const other2 = JSON.parse(Buffer.from(sbj.dsseEnvelope.payload, "base64").toString()) as { predicate: { status: string } }
      other2.predicate.status = "completed-ish"
      sbj.dsseEnvelope.payload = Buffer.from(JSON.stringify(other2)).toString("base64")
      const f5 = new Map<string, string | Uint8Array>(files)
      f5.set(Bundle.SIGSTORE_FILE, JSON.stringify(sbj))
      const r5 = yield* Verify.verifyFiles(f5, { verifyKey: keys.publicPem })
      expect(check(r5).problems).toContainEqual(expect.objectContaining({ file: Bundle.SIGSTORE_FILE, message: expect.stringMatching(/@sigstore\/verify rejects it/) }))

      // a file changed after signing: named by the statement check (and the checksum check)
      writeFileSync(join(dir, "run.json"), readFileSync(join(dir, "run.json"), "utf8").replace("alice", "bobby"))
      const r4 = yield* Verify.verifyDir(dir, { verifyKey: keys.publicPem })
      expect(check(r4).problems[0].message).toMatch(/run\.json: the statement's digest .* the file changed after it was signed/)
    }))

  it.effect("--require-signature: an unsigned bundle fails; a signed one needs --verify-key", () =>
    Effect.gen(function*() {
      const files = Bundle.buildBundle(smallRun(), fixed)
      const r = yield* Verify.verifyFiles(files, { requireSignature: true })
      expect(check(r).problems[0].message).toMatch(/no attestation/)
      expect((yield* Verify.verifyFiles(files, {})).ok).toBe(true)
      const { dir } = yield* signed("ecdsa-p256")
      const r2 = yield* Verify.verifyDir(dir, { requireSignature: true })
      expect(check(r2).problems[0].message).toMatch(/needs --verify-key/)
      // present but not required: checked structurally, signature noted as unchecked
      const r3 = yield* Verify.verifyDir(dir, {})
      expect(r3.ok).toBe(true)
      expect(check(r3).notes[0]).toMatch(/not checked against a key/)
    }))

  it("keys: PEM in, clear errors for other keys", () => {
    const k = Attest.generateKeys("ed25519")
    expect(k.privatePem).toMatch(/BEGIN PRIVATE KEY/)
    expect(k.publicPem).toMatch(/BEGIN PUBLIC KEY/)
    expect(k.keyId).toMatch(/^[0-9a-f]{64}$/)
    expect(Either.isRight(Attest.publicKeyFrom(k.privatePem, "k"))).toBe(true)
    const bad = Attest.privateKeyFrom("nope", "key.pem")
    expect(Either.isLeft(bad) && bad.left.message).toMatch(/^key\.pem: not a PEM private key/)
  })
})
