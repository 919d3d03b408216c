/**
 * `boruna evidence`: evidence bundles a third party can check (docs/evidence.md).
 *
 *   create RUN -o DIR [--data-dir D]     the bundle of a workflow run
 *   verify DIR [--verify-key KEY] [--require-signature] [--expected-bundle-hash H] [--json]
 *   keygen -o KEY [--algorithm ed25519|ecdsa-p256]
 *   attest DIR --key KEY                 in-toto statement in DSSE + Sigstore v0.3 bundle
 *   redact DIR --event N [--field PATH] --reason TEXT
 *   report DIR -o report.html
 *
 * Exit codes: 0 success (verify: every check holds); 1 verify found a problem; 2 usage; 3 a
 * missing or unreadable bundle, key, run or output path. Everything heavy is imported lazily.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { CommandSpecs } from "./argvSpec.js"
import { CliError, ExitCode, input, usage } from "./CliError.js"

export const specs: CommandSpecs = {
  commands: {
    "evidence create": { values: ["--output", "-o", "--data-dir"], flags: [], args: ["RUN"] },
    "evidence verify": { values: ["--verify-key", "--expected-bundle-hash"], flags: ["--require-signature", "--json"], args: ["DIR"] },
    "evidence keygen": { values: ["--output", "-o", "--algorithm"], flags: [], args: [] },
    "evidence attest": { values: ["--key"], flags: [], args: ["DIR"] },
    "evidence redact": { values: ["--event", "--field", "--reason"], flags: [], args: ["DIR"] },
    "evidence report": { values: ["--output", "-o"], flags: [], args: ["DIR"] }
  },
  groups: { evidence: ["create", "verify", "keygen", "attest", "redact", "report"] }
}

const out = (line: string): void => void process.stdout.write(line + "\n")

const evidenceError = (e: { readonly message: string }): CliError => input("evidence_error", e.message)

const nonEmpty = (what: string, v: string): Effect.Effect<string, CliError> =>
  v.trim() === "" ? Effect.fail(usage(`${what} must not be empty`)) : Effect.succeed(v)

const readKeyFile = (file: string, what: string): Effect.Effect<string, CliError> =>
  Effect.flatMap(Effect.promise(() => import("./inputs.js")), (I) =>
    Effect.mapError(I.readText(file), (e) => input("io_error", `${what}: ${e.message}`)))

const dir = Args.text({ name: "DIR" }).pipe(Args.withDescription("an evidence bundle directory"))
const output = (what: string) => Options.text("output").pipe(Options.withAlias("o"), Options.withDescription(what))

// ---------------------------------------------------------------------------------------------

const create = Command.make(
  "create",
  {
    run: Args.text({ name: "RUN" }).pipe(Args.withDescription("a workflow run id (boruna workflow list shows them)")),
    output: output("the bundle directory to write (new or empty)"),
    dataDir: Options.text("data-dir").pipe(Options.withDescription("where runs are kept (default $BORUNA_DATA_DIR, else ./.boruna/data)"), Options.optional)
  },
  (o) =>
    Effect.gen(function*() {
      const target = yield* nonEmpty("-o", o.output)
      const m = yield* Effect.scoped(Effect.gen(function*() {
        const [S, B, Engine, Sqlite, Layer, fs, path] = yield* Effect.promise(() =>
          Promise.all([
            import("../WorkflowStore.js"),
            import("../EvidenceBundle.js"),
            import("../WorkflowEngine.js"),
            import("@effect/sql-sqlite-node/SqliteClient"),
            import("effect/Layer"),
            import("node:fs"),
            import("node:path")
          ])
        )
        const data = Engine.dataDirOf(Option.getOrUndefined(o.dataDir))
        const db = path.join(data, "engine.db")
        if (!fs.existsSync(db)) return yield* Effect.fail(input("unknown_run", `no workflow runs in ${data} (start one with boruna workflow run)`))
        // a reader only: SQLite readers do not block the process that drives runs
        const store = S.layer.pipe(Layer.provide(Sqlite.layer({ filename: db })))
        return yield* B.writeEvidence(o.run, target).pipe(
          Effect.provide(store),
          Effect.mapError((e) => (e instanceof CliError ? e : e._tag === "EvidenceError" ? evidenceError(e) : input("store_error", String((e as { message?: unknown }).message ?? e))))
        )
      }))
      out(`evidence bundle for run ${m.run_id} written to ${target}`)
      out(`  bundle_hash: ${m.bundle_hash}`)
      out(`  ${Object.keys(m.file_checksums).length + 2} files; check it with: boruna evidence verify ${target}`)
    })
).pipe(Command.withDescription("Write the evidence bundle of a workflow run (layout 1.0: manifest, audit chain, sources, policy, event logs, outputs)"))

const verify = Command.make(
  "verify",
  {
    dir,
    verifyKey: Options.text("verify-key").pipe(Options.withDescription("a PEM public key file: the attestation must be signed by it"), Options.optional),
    requireSignature: Options.boolean("require-signature").pipe(Options.withDescription("fail unless the bundle carries an attestation that verifies (needs --verify-key)")),
    expectedBundleHash: Options.text("expected-bundle-hash").pipe(Options.withDescription("the bundle hash you got from a trusted place: the bundle must have it"), Options.optional),
    json: Options.boolean("json").pipe(Options.withDescription("print the report as JSON"))
  },
  (o) =>
    Effect.gen(function*() {
      const key = Option.isSome(o.verifyKey) ? yield* readKeyFile(o.verifyKey.value, "--verify-key") : undefined
      const V = yield* Effect.promise(() => import("../EvidenceVerify.js"))
      const r = yield* Effect.mapError(
        V.verifyDir(o.dir, { verifyKey: key, requireSignature: o.requireSignature, expectedBundleHash: Option.getOrUndefined(o.expectedBundleHash) }),
        evidenceError
      )
      if (o.json) out(JSON.stringify(r, null, 2))
      else for (const l of V.formatReport(r)) out(l)
      if (!r.ok) return yield* Effect.fail(new CliError({ kind: "evidence_invalid", message: "evidence not verified", exitCode: ExitCode.runtime, reported: true }))
    })
).pipe(Command.withDescription("Check a bundle offline: checksums, the audit chain, bundle_hash, the record, signatures, then re-execute every step from its event log"))

const keygen = Command.make(
  "keygen",
  {
    output: output("the private key file to write (PKCS#8 PEM, mode 0600); the public key goes to KEY.pub"),
    algorithm: Options.choice("algorithm", ["ed25519", "ecdsa-p256"]).pipe(Options.withDescription("the key type (default ed25519)"), Options.optional)
  },
  (o) =>
    Effect.gen(function*() {
      const target = yield* nonEmpty("-o", o.output)
      const [A, fs] = yield* Effect.promise(() => Promise.all([import("../EvidenceAttest.js"), import("node:fs/promises")]))
      const k = A.generateKeys(Option.getOrElse(o.algorithm, () => "ed25519" as const))
      yield* Effect.tryPromise({
        try: async () => {
          await fs.writeFile(target, k.privatePem, { mode: 0o600, flag: "wx" })
          await fs.writeFile(`${target}.pub`, k.publicPem, { flag: "wx" })
        },
        catch: (e) => {
          const code = (e as { code?: string }).code
          return input("io_error", `cannot write ${target}: ${code === "EEXIST" ? "the file exists (keygen never overwrites a key)" : code === "ENOENT" ? "its directory does not exist" : String(e)}`)
        }
      })
      out(`${k.algorithm} key pair written: ${target} (private, keep it secret) and ${target}.pub (public, give it to whoever verifies)`)
      out(`  key id: ${k.keyId}`)
    })
).pipe(Command.withDescription("Make an Ed25519 or ECDSA P-256 key pair for signing evidence"))

const attest = Command.make(
  "attest",
  { dir, key: Options.text("key").pipe(Options.withDescription("the PEM private key to sign with (boruna evidence keygen)")) },
  (o) =>
    Effect.gen(function*() {
      const pem = yield* readKeyFile(o.key, "--key")
      const A = yield* Effect.promise(() => import("../EvidenceAttest.js"))
      const a = yield* Effect.mapError(A.attestDir(o.dir, pem, o.key), evidenceError)
      out(`attested ${o.dir}: attestation.intoto.dsse.json (in-toto statement in a DSSE envelope) and attestation.sigstore.json (Sigstore bundle v0.3)`)
      out(`  ${a.statement.subject.length} subjects; key id ${a.keyId}`)
    })
).pipe(Command.withDescription("Sign a bundle: an in-toto Statement v1 over every file, in DSSE and as a Sigstore bundle"))

const redact = Command.make(
  "redact",
  {
    dir,
    event: Options.integer("event").pipe(Options.withDescription("the audit entry's sequence number")),
    field: Options.text("field").pipe(Options.withDescription("one field of the event (e.g. approver, error); default every string but step_id"), Options.optional),
    reason: Options.text("reason").pipe(Options.withDescription("why (recorded in the entry and the manifest)"))
  },
  (o) =>
    Effect.gen(function*() {
      if (o.event < 0) return yield* Effect.fail(usage("--event must be an audit entry's sequence number (0 or more)"))
      const reason = yield* nonEmpty("--reason", o.reason)
      const B = yield* Effect.promise(() => import("../EvidenceBundle.js"))
      const r = yield* Effect.mapError(B.redactDir(o.dir, { entry: o.event, field: Option.getOrUndefined(o.field), reason }), evidenceError)
      out(`redacted audit entry ${r.entry} (${r.event}${r.stepId === undefined ? "" : `, step ${r.stepId}`}): ${r.fields.join(", ")}`)
      if (r.files.length > 0) out(`  also blanked in: ${r.files.join(", ")}`)
      out(`  the chain still verifies; the redaction is recorded in manifest.json`)
      if (r.removed.length > 0) out(`  removed ${r.removed.join(" and ")} (they signed the unredacted files): sign again with boruna evidence attest`)
    })
).pipe(Command.withDescription("Blank one audit entry's strings (its hash commitment is kept, so the chain still verifies)"))

const report = Command.make(
  "report",
  { dir, output: output("the HTML file to write") },
  (o) =>
    Effect.gen(function*() {
      const target = yield* nonEmpty("-o", o.output)
      const R = yield* Effect.promise(() => import("../EvidenceReport.js"))
      const v = yield* Effect.mapError(R.reportDir(o.dir, target), evidenceError)
      out(`report written to ${target} (${v.ok ? "verified" : "NOT verified"})`)
    })
).pipe(Command.withDescription("Write a self-contained HTML report of a bundle (summary, verification, step graph, timeline, approvals, policy, hashes)"))

export const command = Command.make("evidence").pipe(
  Command.withDescription("Evidence bundles a third party can verify"),
  Command.withSubcommands([create, verify, keygen, attest, redact, report])
)
