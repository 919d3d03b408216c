/**
 * Signed attestations of evidence bundles.
 *
 * - Keys: `keygen` makes an Ed25519 (default) or ECDSA P-256 key pair with `node:crypto`: the
 *   private key as PKCS#8 PEM (file mode 0600), the public key as SPKI PEM next to it (`KEY.pub`).
 *   A key's id is the hex SHA-256 of its SPKI DER.
 * - `attest` writes an in-toto Statement v1 whose subjects are every file of the bundle (each
 *   `file_checksums` entry, manifest.json and bundle.json) by SHA-256, plus the bundle itself
 *   (`boruna-bundle:<run_id>`, digest = `bundle_hash`), and whose predicate records the run. The
 *   statement is the payload of a DSSE envelope; the signature is over the DSSE pre-authentication
 *   encoding `"DSSEv1" SP len(type) SP type SP len(body) SP body` — never over the text of a hash.
 *   It goes to `attestation.intoto.dsse.json`.
 * - The same envelope, signed again through `@sigstore/sign`'s DSSEBundleBuilder with the local key
 *   and no witness (no transparency log, no timestamp), goes to `attestation.sigstore.json` as a
 *   Sigstore bundle v0.3, for tools of the Sigstore ecosystem.
 * - `verifyAttestation` checks both: envelope and statement shape, that the subjects are exactly the
 *   bundle's files with their current digests, that the predicate is the manifest's run, and — with a
 *   public key — the DSSE signature and the Sigstore bundle (`@sigstore/verify`).
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign as cryptoSign, verify as cryptoVerify } from "node:crypto"
import { BUNDLE, DSSE_FILE, EvidenceError, type Manifest, MANIFEST, type RunJson, SIGSTORE_FILE, UNLISTED } from "./EvidenceBundle.js"
import { sha256Hex } from "./EvidenceRecord.js"
import { parseJson, schemaIssues } from "./Json.js"

export const PAYLOAD_TYPE = "application/vnd.in-toto+json"
export const STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
export const PREDICATE_TYPE = "https://boruna.dev/evidence/run/v1"

export type Files = ReadonlyMap<string, string | Uint8Array>

const bytes = (x: string | Uint8Array): Buffer => (typeof x === "string" ? Buffer.from(x, "utf8") : Buffer.from(x))

// ---------------------------------------------------------------------------------------------
// keys

export type Algorithm = "ed25519" | "ecdsa-p256"

export interface KeyPair {
  readonly privatePem: string
  readonly publicPem: string
  readonly keyId: string
  readonly algorithm: Algorithm
}

export const keyIdOf = (publicKey: KeyObject): string => sha256Hex(publicKey.export({ type: "spki", format: "der" }))

export const generateKeys = (algorithm: Algorithm = "ed25519"): KeyPair => {
  const { privateKey, publicKey } = algorithm === "ed25519"
    ? generateKeyPairSync("ed25519")
    : generateKeyPairSync("ec", { namedCurve: "P-256" })
  return {
    privatePem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    keyId: keyIdOf(publicKey),
    algorithm
  }
}

const algorithmOf = (k: KeyObject): Algorithm | undefined =>
  k.asymmetricKeyType === "ed25519"
    ? "ed25519"
    : k.asymmetricKeyType === "ec" && k.asymmetricKeyDetails?.namedCurve === "prime256v1"
    ? "ecdsa-p256"
    : undefined

/** A private key from PEM text; only Ed25519 and ECDSA P-256 are accepted. */
export const privateKeyFrom = (pem: string, file: string): Either.Either<KeyObject, EvidenceError> => {
  let k: KeyObject
  try {
    k = createPrivateKey(pem)
  } catch (e) {
    return Either.left(new EvidenceError({ message: `${file}: not a PEM private key (${e instanceof Error ? e.message : String(e)})` }))
  }
  if (algorithmOf(k) === undefined) return Either.left(new EvidenceError({ message: `${file}: an ${k.asymmetricKeyType} key; evidence keys are Ed25519 or ECDSA P-256` }))
  return Either.right(k)
}

/** A public key from PEM text (a public key, or a private key whose public half is taken). */
export const publicKeyFrom = (pem: string, file: string): Either.Either<KeyObject, EvidenceError> => {
  let k: KeyObject
  try {
    k = createPublicKey(pem)
  } catch (e) {
    return Either.left(new EvidenceError({ message: `${file}: not a PEM public key (${e instanceof Error ? e.message : String(e)})` }))
  }
  if (algorithmOf(k) === undefined) return Either.left(new EvidenceError({ message: `${file}: an ${k.asymmetricKeyType} key; evidence keys are Ed25519 or ECDSA P-256` }))
  return Either.right(k)
}

const signBytes = (key: KeyObject, data: Buffer): Buffer => cryptoSign(algorithmOf(key) === "ed25519" ? null : "sha256", data, key)
const verifyBytes = (key: KeyObject, data: Buffer, sig: Buffer): boolean => {
  try {
    return cryptoVerify(algorithmOf(key) === "ed25519" ? null : "sha256", data, key, sig)
  } catch {
    return false
  }
}

// ---------------------------------------------------------------------------------------------
// DSSE

/** The DSSE v1 pre-authentication encoding of a payload. */
export const pae = (payloadType: string, payload: Buffer): Buffer =>
  Buffer.concat([
    Buffer.from(`DSSEv1 ${Buffer.byteLength(payloadType)} ${payloadType} ${payload.length} `, "utf8"),
    payload
  ])

const EnvelopeSchema = Schema.Struct({
  payloadType: Schema.String,
  payload: Schema.String,
  signatures: Schema.Array(Schema.Struct({ keyid: Schema.optional(Schema.String), sig: Schema.String }))
})
export type Envelope = typeof EnvelopeSchema.Type

const SubjectSchema = Schema.Struct({ name: Schema.String, digest: Schema.Record({ key: Schema.String, value: Schema.String }) })
const StatementSchema = Schema.Struct({
  _type: Schema.Literal(STATEMENT_TYPE),
  subject: Schema.Array(SubjectSchema),
  predicateType: Schema.String,
  predicate: Schema.Struct({ run_id: Schema.String, bundle_hash: Schema.String, audit_log_hash: Schema.String }, { key: Schema.String, value: Schema.Unknown })
})
export type Statement = typeof StatementSchema.Type

/** The subjects a statement about these bundle files must have, sorted by name. */
export const subjectsOf = (files: Files, m: Manifest): ReadonlyArray<{ name: string; digest: { sha256: string } }> => {
  const names = [...Object.keys(m.file_checksums), MANIFEST, BUNDLE].filter((p) => files.has(p)).sort()
  return [
    ...names.map((name) => ({ name, digest: { sha256: sha256Hex(bytes(files.get(name)!)) } })),
    { name: `boruna-bundle:${m.run_id}`, digest: { sha256: m.bundle_hash } }
  ]
}

/** The predicate: the run as the manifest and run.json record it. */
export const predicateOf = (m: Manifest, run: RunJson | undefined): Statement["predicate"] => ({
  run_id: m.run_id,
  bundle_hash: m.bundle_hash,
  audit_log_hash: m.audit_log_hash,
  workflow: { name: m.workflow_name, version: m.workflow_version, hash: m.workflow_hash, file_sha256: m.workflow_file_sha256 },
  policy_hash: m.policy_hash,
  inputs_hash: m.inputs_hash,
  status: m.status,
  started_at: m.started_at,
  completed_at: m.completed_at,
  boruna_version: m.boruna_version,
  steps: (run?.steps ?? []).map((s) => ({
    id: s.id,
    kind: s.kind,
    status: s.status,
    output_hash: s.output_hash,
    attempts: s.attempts.length,
    calls: s.attempts.flatMap((a) =>
      a.calls.map((c) => ({
        attempt: a.attempt,
        seq: c.seq,
        capability: c.capability,
        decision: c.decision,
        args_digest: c.args_digest,
        result_digest: c.result_digest,
        reexecuted: c.reexecuted
      }))
    ),
    approvals: (run?.approvals ?? []).filter((a) => a.step_id === s.id).map((a) => ({
      kind: a.kind,
      digest: a.digest,
      decision: a.decision,
      approver: a.approver,
      decided_at: a.decided_at
    }))
  }))
})

export interface Attestation {
  readonly statement: Statement
  readonly envelope: Envelope
  /** attestation.intoto.dsse.json */
  readonly dsseText: string
  /** attestation.sigstore.json */
  readonly sigstoreText: string
  readonly keyId: string
}

/** Make the statement, the DSSE envelope and the Sigstore bundle for a bundle's files. */
export const attest = (files: Files, m: Manifest, run: RunJson | undefined, privateKey: KeyObject): Effect.Effect<Attestation, EvidenceError> =>
  Effect.gen(function*() {
    const publicKey = createPublicKey(privateKey)
    const keyId = keyIdOf(publicKey)
    const statement: Statement = { _type: STATEMENT_TYPE, subject: subjectsOf(files, m), predicateType: PREDICATE_TYPE, predicate: predicateOf(m, run) }
    const payload = Buffer.from(JSON.stringify(statement), "utf8")
    const sig = signBytes(privateKey, pae(PAYLOAD_TYPE, payload))
    const envelope: Envelope = { payloadType: PAYLOAD_TYPE, payload: payload.toString("base64"), signatures: [{ keyid: keyId, sig: sig.toString("base64") }] }
    const [{ DSSEBundleBuilder }, { bundleToJSON }] = yield* Effect.promise(() => Promise.all([import("@sigstore/sign"), import("@sigstore/bundle")]))
    const publicPem = publicKey.export({ type: "spki", format: "pem" }).toString()
    const builder = new DSSEBundleBuilder({
      signer: {
        sign: async (data: Buffer) => ({ signature: signBytes(privateKey, data), key: { $case: "publicKey", publicKey: publicPem, hint: keyId } })
      },
      witnesses: []
    })
    const sb = yield* Effect.tryPromise({
      try: () => builder.create({ data: payload, type: PAYLOAD_TYPE }),
      catch: (e) => new EvidenceError({ message: `cannot make the Sigstore bundle: ${e instanceof Error ? e.message : String(e)}` })
    })
    return {
      statement,
      envelope,
      dsseText: JSON.stringify(envelope, null, 2) + "\n",
      sigstoreText: JSON.stringify(bundleToJSON(sb), null, 2) + "\n",
      keyId
    }
  })

// ---------------------------------------------------------------------------------------------
// verification

export interface AttestationCheck {
  readonly problems: ReadonlyArray<{ readonly file: string; readonly message: string }>
  readonly notes: ReadonlyArray<string>
}

const decodeEnvelope = Schema.decodeUnknownEither(EnvelopeSchema, { errors: "all" })
const decodeStatement = Schema.decodeUnknownEither(StatementSchema, { errors: "all" })

const textOf = (x: string | Uint8Array): string | undefined => {
  try {
    return typeof x === "string" ? x : new TextDecoder("utf-8", { fatal: true }).decode(x)
  } catch {
    return undefined
  }
}

/** The statement in an envelope, checked against the bundle's files. */
const checkStatement = (files: Files, m: Manifest, payload: Buffer, file: string, fail: (file: string, message: string) => void): void => {
  const j = parseJson(payload.toString("utf8"))
  if (!j.ok) return fail(file, `the payload is not JSON: ${j.message}`)
  const st = decodeStatement(j.value)
  if (Either.isLeft(st)) {
    const i = schemaIssues(st.left)[0]
    return fail(file, `the payload is not an in-toto Statement v1: ${i.path}: ${i.message}`)
  }
  const want = new Map(subjectsOf(files, m).map((s) => [s.name, s.digest.sha256]))
  const got = new Map(st.right.subject.map((s) => [s.name, s.digest.sha256]))
  for (const [name, digest] of want) {
    const g = got.get(name)
    if (g === undefined) fail(file, `the statement does not cover ${name}`)
    else if (g !== digest) fail(file, `${name}: the statement's digest ${g} is not the file's (${digest}): the file changed after it was signed`)
  }
  for (const name of got.keys()) if (!want.has(name)) fail(file, `the statement names ${name}, which the bundle does not have`)
  for (const p of files.keys()) if (!UNLISTED.includes(p) && !want.has(p)) fail(file, `${p} is not covered by the statement`)
  const pr = st.right.predicate
  if (pr.run_id !== m.run_id || pr.bundle_hash !== m.bundle_hash || pr.audit_log_hash !== m.audit_log_hash) {
    fail(file, "the predicate is about another run or bundle (run_id, bundle_hash, audit_log_hash)")
  }
}

export const verifyAttestation = (files: Files, m: Manifest, options: { readonly verifyKey?: string | undefined }): Effect.Effect<AttestationCheck> =>
  Effect.gen(function*() {
    const problems: Array<{ file: string; message: string }> = []
    const notes: Array<string> = []
    const fail = (file: string, message: string) => void problems.push({ file, message })
    let key: KeyObject | undefined
    if (options.verifyKey !== undefined) {
      const k = publicKeyFrom(options.verifyKey, "--verify-key")
      if (Either.isLeft(k)) fail("--verify-key", k.left.message)
      else key = k.right
    }
    const keyId = key === undefined ? undefined : keyIdOf(key)

    // the DSSE envelope
    const dsseRaw = files.get(DSSE_FILE)
    let dssePayload: string | undefined
    if (dsseRaw === undefined) fail(DSSE_FILE, "missing (the Sigstore bundle is there without it)")
    else {
      const t = textOf(dsseRaw)
      const j = t === undefined ? undefined : parseJson(t)
      if (j === undefined || !j.ok) fail(DSSE_FILE, j === undefined ? "not UTF-8 text" : `${j.where}: ${j.message}`)
      else {
        const env = decodeEnvelope(j.value)
        if (Either.isLeft(env)) {
          const i = schemaIssues(env.left)[0]
          fail(DSSE_FILE, `not a DSSE envelope: ${i.path}: ${i.message}`)
        } else {
          const e = env.right
          dssePayload = e.payload
          if (e.payloadType !== PAYLOAD_TYPE) fail(DSSE_FILE, `payloadType is ${e.payloadType}, expected ${PAYLOAD_TYPE}`)
          const payload = Buffer.from(e.payload, "base64")
          if (payload.toString("base64") !== e.payload) fail(DSSE_FILE, "the payload is not canonical base64")
          checkStatement(files, m, payload, DSSE_FILE, fail)
          if (e.signatures.length === 0) fail(DSSE_FILE, "the envelope has no signature")
          if (key !== undefined) {
            const msg = pae(e.payloadType, payload)
            const good = e.signatures.some((s) => verifyBytes(key!, msg, Buffer.from(s.sig, "base64")))
            if (!good) fail(DSSE_FILE, `no signature verifies under the given key (key id ${keyId})`)
            else notes.push(`DSSE signature verified (key id ${keyId})`)
          } else {
            notes.push(`DSSE envelope present, signed by key id ${e.signatures.map((s) => s.keyid ?? "?").join(", ")}; not checked against a key (pass --verify-key)`)
          }
        }
      }
    }

    // the Sigstore bundle
    const sRaw = files.get(SIGSTORE_FILE)
    if (sRaw === undefined) fail(SIGSTORE_FILE, "missing (the DSSE envelope is there without it)")
    else {
      const t = textOf(sRaw)
      const j = t === undefined ? undefined : parseJson(t)
      if (j === undefined || !j.ok) fail(SIGSTORE_FILE, j === undefined ? "not UTF-8 text" : `${j.where}: ${j.message}`)
      else {
        const [{ bundleFromJSON }, V] = yield* Effect.promise(() => Promise.all([import("@sigstore/bundle"), import("@sigstore/verify")]))
        let sb: ReturnType<typeof bundleFromJSON> | undefined
        try {
          sb = bundleFromJSON(j.value)
        } catch (e) {
          fail(SIGSTORE_FILE, `not a Sigstore bundle: ${e instanceof Error ? e.message : String(e)}`)
        }
        if (sb !== undefined) {
          if (sb.content.$case !== "dsseEnvelope") fail(SIGSTORE_FILE, "the Sigstore bundle does not hold a DSSE envelope")
          else {
            const env = sb.content.dsseEnvelope
            const payload = Buffer.from(env.payload)
            if (dssePayload !== undefined && payload.toString("base64") !== dssePayload) fail(SIGSTORE_FILE, "its statement is not the DSSE envelope's")
            if (env.payloadType !== PAYLOAD_TYPE) fail(SIGSTORE_FILE, `payloadType is ${env.payloadType}, expected ${PAYLOAD_TYPE}`)
            checkStatement(files, m, payload, SIGSTORE_FILE, fail)
          }
          if (key !== undefined) {
            try {
              const emptyRoot = { mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1", tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [] }
              const finder = (hint: string) => {
                if (hint !== keyId) throw new Error(`the bundle names key ${hint}, the given key is ${keyId}`)
                return { publicKey: key!, validFor: () => true }
              }
              const trust = V.toTrustMaterial(emptyRoot as unknown as Parameters<typeof V.toTrustMaterial>[0], finder)
              new V.Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(V.toSignedEntity(sb))
              notes.push("Sigstore bundle verified with @sigstore/verify (local key, no transparency log)")
            } catch (e) {
              fail(SIGSTORE_FILE, `@sigstore/verify rejects it: ${e instanceof Error ? e.message : String(e)}`)
            }
          }
        }
      }
    }
    return { problems, notes }
  })

/** Digest used as the SHA-256 of a whole file (exported for tests). */
export const fileDigest = (x: string | Uint8Array): string => createHash("sha256").update(bytes(x)).digest("hex")

/** `boruna evidence attest DIR --key KEY`: sign the bundle in `dir`, writing both attestation files. */
export const attestDir = (dir: string, keyPem: string, keyFile: string): Effect.Effect<Attestation, EvidenceError> =>
  Effect.gen(function*() {
    const B = yield* Effect.promise(() => import("./EvidenceBundle.js"))
    const key = privateKeyFrom(keyPem, keyFile)
    if (Either.isLeft(key)) return yield* Effect.fail(key.left)
    const files = yield* B.readFiles(dir)
    const mText = files.get(MANIFEST)
    if (mText === undefined) return yield* Effect.fail(new EvidenceError({ message: `${dir}: no manifest.json (not an evidence bundle)` }))
    const m = yield* manifestOf(mText, `${dir}/${MANIFEST}`)
    const runText = files.get("run.json")
    const runJ = runText === undefined ? undefined : parseJson(textOf(runText) ?? "")
    const run = runJ !== undefined && runJ.ok ? Schema.decodeUnknownEither(B.RunJson)(runJ.value) : undefined
    const only = new Map([...files].filter(([p]) => p !== DSSE_FILE && p !== SIGSTORE_FILE))
    const a = yield* attest(only, m, run !== undefined && Either.isRight(run) ? run.right : undefined, key.right)
    yield* B.updateFiles(dir, new Map([[DSSE_FILE, a.dsseText], [SIGSTORE_FILE, a.sigstoreText]]))
    return a
  })

/** Decode a manifest's text (for commands that change a bundle). */
export const manifestOf = (text: string | Uint8Array, file: string): Effect.Effect<Manifest, EvidenceError> =>
  Effect.flatMap(Effect.promise(() => import("./EvidenceBundle.js")), (B) => {
    const t = textOf(text)
    const j = t === undefined ? undefined : parseJson(t)
    if (j === undefined || !j.ok) return Effect.fail(new EvidenceError({ message: `${file}: ${j === undefined ? "not UTF-8 text" : `${j.where}: ${j.message}`}` }))
    const d = Schema.decodeUnknownEither(B.ManifestSchema)(j.value)
    if (Either.isLeft(d)) {
      const i = schemaIssues(d.left)[0]
      return Effect.fail(new EvidenceError({ message: `${file}: ${i.path}: ${i.message}` }))
    }
    return Effect.succeed(d.right)
  })
