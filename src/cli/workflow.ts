/**
 * `boruna workflow …`: durable DAG runs (docs/workflows.md).
 *
 *   validate DIR [--json]
 *   run DIR|FILE.ax [--policy P] [--live] [--input k=v]… [--concurrency N] [--evidence DIR] [--data-dir D] [--cluster URL [--detach]] [--json]
 *   show RUN [--json]            list [--status S] [--json]
 *   approve|reject RUN [STEP] [--call DIGEST] --token T --as NAME [--reason TEXT]
 *   trigger RUN STEP --token T (--payload JSON | --payload-file F)
 *   resume RUN                   cancel RUN
 *
 * Exit codes: 0 completed, 1 failed, 3 invalid workflow, 4 refused by policy (or an answer refused),
 * 75 paused (the pending items and their tokens are printed). The engine and everything heavy is
 * loaded inside the handlers, so `--help` stays cheap.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Layer from "effect/Layer"
import type { CommandSpecs } from "./argvSpec.js"
import { CliError, ExitCode, input, usage } from "./CliError.js"
import type { Problem } from "../WorkflowFile.js"
import type { PendingItem, RunResult, RunnerEnvService, Services, WorkflowError } from "../WorkflowRunner.js"
import type { RunView } from "../WorkflowStore.js"

const ENGINE_VALUES = ["--data-dir", "--cluster"]

export const specs: CommandSpecs = {
  commands: {
    "workflow validate": { values: [], flags: ["--json"], args: ["DIR"] },
    "workflow run": { values: ["--policy", "-p", "--input", "--concurrency", "--evidence", ...ENGINE_VALUES], flags: ["--live", "--detach", "--json"], args: ["DIR"] },
    "workflow show": { values: ENGINE_VALUES, flags: ["--json"], args: ["RUN"] },
    "workflow list": { values: ["--status", ...ENGINE_VALUES], flags: ["--json"], args: [] },
    "workflow approve": { values: ["--call", "--token", "--as", "--reason", ...ENGINE_VALUES], flags: ["--json"], args: ["RUN", "[STEP]"] },
    "workflow reject": { values: ["--call", "--token", "--as", "--reason", ...ENGINE_VALUES], flags: ["--json"], args: ["RUN", "[STEP]"] },
    "workflow trigger": { values: ["--token", "--payload", "--payload-file", ...ENGINE_VALUES], flags: ["--json"], args: ["RUN", "STEP"] },
    "workflow resume": { values: ENGINE_VALUES, flags: ["--json"], args: ["RUN"] },
    "workflow cancel": { values: ENGINE_VALUES, flags: ["--json"], args: ["RUN"] }
  },
  groups: { workflow: ["validate", "run", "show", "list", "approve", "reject", "trigger", "resume", "cancel"] }
}

const out = (line: string): void => void process.stdout.write(line + "\n")

const jsonFlag = Options.boolean("json").pipe(Options.withDescription("print the result as JSON"))
const dataDir = Options.text("data-dir").pipe(
  Options.withDescription("where runs are kept (default $BORUNA_DATA_DIR, else ./.boruna/data)"),
  Options.optional
)
const cluster = Options.text("cluster").pipe(
  Options.withDescription("a PostgreSQL URL: drive runs on a boruna cluster instead of the local data dir (also BORUNA_CLUSTER_URL; docs/cluster.md)"),
  Options.optional
)

interface EngineOpts {
  readonly dataDir: Option.Option<string>
  readonly cluster: Option.Option<string>
}

const problemError = (file: string, problems: ReadonlyArray<Problem>, format: (file: string, p: Problem) => string): CliError => {
  const lines = problems.map((p) =>
    new CliError({
      kind: p.kind,
      message: p.location === undefined ? format(file, p) : `${file}: ${p.path}: ${p.message}`,
      exitCode: ExitCode.input,
      ...(p.location === undefined ? {} : { location: p.location })
    })
  )
  const [first, ...more] = lines
  return new CliError({ kind: first.kind, message: first.message, exitCode: ExitCode.input, ...(first.location ? { location: first.location } : {}), more })
}

const POLICY_KINDS = new Set(["denied", "budget_exceeded", "approval_refused", "approval_rejected"])

const workflowError = (e: WorkflowError): CliError => {
  if (e.problems !== undefined && e.problems.length > 0) {
    return problemError(e.message.replace(/: invalid workflow$/, ""), e.problems, (f, p) => `${f}: ${p.path}: ${p.message}`)
  }
  const exitCode = e.kind === "unknown_run" || e.kind === "io_error" || e.kind === "engine_error" || e.kind === "data_dir_busy"
    ? ExitCode.input
    : POLICY_KINDS.has(e.kind)
    ? ExitCode.policy
    : e.kind === "already_finished"
    ? ExitCode.usage
    : ExitCode.runtime
  return new CliError({ kind: e.kind, message: e.message, exitCode })
}

/** Run `work` on the engine the options name: the local data dir (locked for this process) or a cluster. */
const onEngine = <A>(
  o: EngineOpts,
  command: string,
  env: RunnerEnvService | undefined,
  work: Effect.Effect<A, WorkflowError, Services>,
  options: { readonly reconcile?: boolean } = {}
): Effect.Effect<A, CliError> =>
  Effect.scoped(Effect.gen(function*() {
    const [Runner, Engine] = yield* Effect.promise(() => Promise.all([import("../WorkflowRunner.js"), import("../WorkflowEngine.js")]))
    const url = Option.getOrUndefined(o.cluster) ?? (process.env.BORUNA_CLUSTER_URL || undefined)
    let layer: Layer.Layer<Services, unknown>
    if (url !== undefined) {
      const C = yield* Effect.tryPromise({
        try: () => import("../Cluster.js"),
        catch: (e) => new CliError({ kind: "cluster_unavailable", message: `--cluster: cannot load the cluster engine: ${String(e)}`, exitCode: ExitCode.input })
      })
      layer = Runner.clientLayer(C.clusterEngine({ url, clientOnly: true }), C.clientEnv(env ?? Runner.makeEnv()))
    } else {
      const dir = Engine.dataDirOf(Option.getOrUndefined(o.dataDir))
      yield* Effect.mapError(
        Engine.lockDataDir(dir, { command, waitMs: Number(process.env.BORUNA_LOCK_WAIT_MS ?? 10_000) }),
        (e) => new CliError({ kind: "data_dir_busy", message: e.message, exitCode: ExitCode.input })
      )
      layer = Runner.layer(Engine.sqliteEngine(dir), env)
    }
    const full = options.reconcile === false ? work : Effect.zipRight(Runner.reconcileAll, work)
    const Logger = yield* Effect.promise(() => import("effect/Logger"))
    const LogLevel = yield* Effect.promise(() => import("effect/LogLevel"))
    // the engine's own log lines (shard assignment, runner health) are not the user's business
    const level = process.env.BORUNA_ENGINE_LOG === "1" ? LogLevel.Info : LogLevel.None
    return yield* full.pipe(
      Effect.mapError(workflowError),
      Effect.provide(layer),
      Logger.withMinimumLogLevel(level),
      Effect.catchAllDefect((d) => Effect.fail(new CliError({ kind: "internal", message: `workflow engine: ${d instanceof Error ? d.message : String(d)}`, exitCode: ExitCode.internal }))),
      Effect.catchAll((e) =>
        e instanceof CliError
          ? Effect.fail(e)
          : Effect.fail(new CliError({ kind: "engine_error", message: String((e as { message?: unknown }).message ?? e), exitCode: ExitCode.input })))
    )
  }))

const answerCommand = (item: PendingItem, runId: string): string =>
  item.kind === "call"
    ? `boruna workflow approve ${runId} --call ${item.digest} --token TOKEN --as NAME`
    : item.kind === "gate"
    ? `boruna workflow approve ${runId} ${item.step} --token TOKEN --as NAME`
    : `boruna workflow trigger ${runId} ${item.step} --token TOKEN --payload JSON`

/** Print a run's outcome and fail with its exit code (0 completed, 1 failed, 4 policy, 75 paused). */
const finish = (r: RunResult, json: boolean): Effect.Effect<void, CliError> => {
  if (json) {
    out(JSON.stringify({ run_id: r.runId, status: r.status, error_kind: r.errorKind, error: r.error, outputs: r.outputs, pending: r.pending.map((p) => ({ ...p, token: r.tokens[p.id] ?? null })), awaiting: r.awaiting }, null, 2))
  } else if (r.status === "completed") {
    out(`completed`)
    for (const [id, o] of Object.entries(r.outputs)) out(`  ${id}: ${o}`)
  } else if (r.status === "paused" && r.pending.length === 0 && r.awaiting.length > 0) {
    // the answer is recorded; the TypeScript steps after it run where their module is loaded
    out(`paused: waiting for the process that defines the workflow's TypeScript step(s)`)
    for (const a of r.awaiting) out(`  step ${a.step}: ${a.message}`)
  } else if (r.status === "paused") {
    out(`paused: waiting for ${r.pending.length} answer(s)`)
    for (const p of r.pending) {
      out(`  ${p.kind === "call" ? `call ${p.call}` : p.kind === "gate" ? `approval gate '${p.step}'${p.required_role ? ` (role: ${p.required_role})` : ""}` : `trigger '${p.step}'`}`)
      out(`    step ${p.step}, attempt ${p.attempt}, digest ${p.digest}`)
      const t = r.tokens[p.id]
      out(t === undefined ? `    token: printed when the pause was first reached` : `    token: ${t}   (shown once)`)
      out(`    ${answerCommand(p, r.runId).replace("TOKEN", t ?? "TOKEN")}`)
    }
  } else if (r.status === "cancelled") {
    out(`cancelled`)
  }
  if (r.status === "completed") return Effect.void
  if (r.status === "paused") return Effect.fail(new CliError({ kind: "paused", message: `run ${r.runId} is paused`, exitCode: ExitCode.paused, reported: true }))
  if (r.status === "cancelled") return Effect.fail(new CliError({ kind: "cancelled", message: `run ${r.runId} was cancelled`, exitCode: ExitCode.runtime }))
  const kind = r.errorKind ?? "runtime_error"
  return Effect.fail(new CliError({ kind, message: r.error ?? `run ${r.runId} failed`, exitCode: POLICY_KINDS.has(kind) ? ExitCode.policy : ExitCode.runtime, ...(json ? { reported: true } : {}) }))
}

/** The progress printer: the run id first, then one line per step state change. */
const progressEnv = (json: boolean): Effect.Effect<RunnerEnvService> =>
  Effect.map(Effect.promise(() => import("../WorkflowRunner.js")), (Runner) => {
    const seen = new Set<string>()
    const last = new Map<string, string>()
    return Runner.makeEnv({
      onStep: (runId, stepId, status, attempt, detail) => {
        if (json) return
        if (!seen.has(runId)) {
          seen.add(runId)
          out(`run ${runId}`)
        }
        const line = `step ${stepId} ${status}${attempt > 1 ? ` (attempt ${attempt})` : ""}${detail && (status === "failed" || status === "skipped") ? `: ${detail}` : ""}`
        if (last.get(`${runId}/${stepId}`) === line) return
        last.set(`${runId}/${stepId}`, line)
        out(line)
      }
    })
  })

const validate = Command.make(
  "validate",
  {
    dir: Args.text({ name: "DIR" }).pipe(Args.withDescription("a workflow directory (holding workflow.json) or the json file")),
    json: jsonFlag
  },
  ({ dir, json }) =>
    Effect.gen(function*() {
      const V = yield* Effect.promise(() => import("../WorkflowValidate.js"))
      const WF = yield* Effect.promise(() => import("../WorkflowFile.js"))
      const r = V.validateDir(dir)
      if (r._tag === "Left") {
        if (json) {
          out(JSON.stringify({ valid: false, problems: r.left }, null, 2))
          return yield* Effect.fail(new CliError({ kind: "invalid_workflow", message: "invalid", exitCode: ExitCode.input, reported: true }))
        }
        const file = dir.endsWith(".json") ? dir : `${dir.replace(/\/$/, "")}/workflow.json`
        return yield* Effect.fail(problemError(file, r.left, V.formatProblem))
      }
      const w = r.right.workflow
      const order = WF.topoOrder(w).order
      const waves = WF.waves(w)
      if (json) {
        out(JSON.stringify({ valid: true, name: w.name, version: w.version, workflow_hash: WF.workflowHash(w), order, waves }, null, 2))
      } else {
        out(`workflow ${w.name} ${w.version} is valid`)
        out(`  workflow_hash: ${WF.workflowHash(w)}`)
        out(`  order: ${order.join(", ")}`)
        waves.forEach((wave, i) => out(`  wave ${i + 1}: ${wave.join(", ")}`))
      }
    })
).pipe(Command.withDescription("Check a workflow: every problem with its JSON path (compile errors at file:line:col), all at once; exit 3 when invalid"))

const parseInputs = (items: ReadonlyArray<string>): Effect.Effect<Record<string, string>, CliError> => {
  const out: Record<string, string> = {}
  for (const i of items) {
    const eq = i.indexOf("=")
    if (eq <= 0) return Effect.fail(usage(`--input takes name=value, got '${i}'`))
    out[i.slice(0, eq)] = i.slice(eq + 1)
  }
  return Effect.succeed(out)
}

const run = Command.make(
  "run",
  {
    dir: Args.text({ name: "DIR" }).pipe(Args.withDescription("a workflow directory, or one .ax file run as a one-step workflow")),
    policy: Options.text("policy").pipe(Options.withAlias("p"), Options.withDescription("allow-all, deny-all or a policy JSON file"), Options.withDefault("deny-all")),
    live: Options.boolean("live").pipe(Options.withDescription("use the live handlers (real network, files, database, model)")),
    inputs: Options.text("input").pipe(Options.withDescription("a run input name=value (repeatable); a step reads it with step.input(\"name\")"), Options.repeated),
    concurrency: Options.integer("concurrency").pipe(Options.withDescription("most steps of one wave running at once (default 4)"), Options.withDefault(4)),
    evidence: Options.text("evidence").pipe(
      Options.withDescription("when the run ends (completed or failed), write its evidence bundle into this new or empty directory (docs/evidence.md)"),
      Options.optional
    ),
    detach: Options.boolean("detach").pipe(
      Options.withDescription("with --cluster: return once the run is submitted (its id on stdout); the runners execute it")
    ),
    dataDir,
    cluster,
    json: jsonFlag
  },
  (o) =>
    Effect.gen(function*() {
      if (o.concurrency < 1) return yield* Effect.fail(usage(`--concurrency must be at least 1, got ${o.concurrency}`))
      const clustered = Option.isSome(o.cluster) || (process.env.BORUNA_CLUSTER_URL ?? "") !== ""
      if (o.detach && !clustered) {
        return yield* Effect.fail(usage("--detach needs --cluster (or BORUNA_CLUSTER_URL): on one machine this process is the runner, so a detached run would not go on"))
      }
      if (o.detach && Option.isSome(o.evidence)) return yield* Effect.fail(usage("--detach and --evidence do not go together: make the bundle later with boruna evidence create RUN -o DIR"))
      const inputs = yield* parseInputs(o.inputs)
      const { loadPolicy } = yield* Effect.promise(() => import("./inputs.js"))
      const policy = yield* loadPolicy(o.policy)
      const Runner = yield* Effect.promise(() => import("../WorkflowRunner.js"))
      if (o.detach) {
        const runId = yield* onEngine(o, `boruna workflow run ${o.dir}`, undefined,
          Runner.submitRun({ path: o.dir, policy, inputs, live: o.live, concurrency: o.concurrency }), { reconcile: false })
        out(o.json ? JSON.stringify({ run_id: runId, status: "submitted" }, null, 2) : `run ${runId}\nsubmitted: the cluster's runners execute it (boruna workflow show ${runId})`)
        return
      }
      const env = yield* progressEnv(o.json)
      const started = Runner.startRun({ path: o.dir, policy, inputs, live: o.live, concurrency: o.concurrency })
      // --evidence: the bundle is a projection of the run's durable record, made once the run has ended
      const evidenceDir = Option.getOrUndefined(o.evidence)
      if (evidenceDir !== undefined && evidenceDir.trim() === "") return yield* Effect.fail(usage("--evidence must not be empty"))
      const work = evidenceDir === undefined ? started : Effect.tap(started, (r) =>
        r.status === "paused"
          ? Effect.sync(() => process.stderr.write(`note: run ${r.runId} is paused: no evidence yet (boruna evidence create ${r.runId} -o ${evidenceDir} once it ends)\n`))
          : Effect.flatMap(Effect.promise(() => import("../EvidenceBundle.js")), (B) =>
            Effect.mapError(B.writeEvidence(r.runId, evidenceDir), (e) => new Runner.WorkflowError({ kind: "io_error", message: `--evidence: ${e.message}` }))))
      const r = yield* onEngine(o, `boruna workflow run ${o.dir}`, env, work)
      yield* finish(r, o.json)
    })
).pipe(Command.withDescription("Run a workflow durably; exit 0 completed, 1 failed, 4 refused by policy, 75 paused (waiting for an approval or a trigger)"))

const renderShow = (v: RunView): string => {
  const lines = [`run ${v.run.run_id}  ${v.run.workflow_name} ${v.run.workflow_version}  ${v.run.status}`, `  workflow_hash: ${v.run.workflow_hash}`, `  policy_hash: ${v.run.policy_hash}`, `  trace_id: ${v.run.trace_id}`]
  if (v.run.error !== null) lines.push(`  error[${v.run.error_kind}]: ${v.run.error}`)
  let deps: ReadonlyMap<string, ReadonlyArray<string>> = new Map()
  try {
    const w = JSON.parse(v.run.workflow_json) as { steps: Record<string, { depends_on?: Array<string> }>; edges: Array<[string, string]> }
    const m = new Map<string, Array<string>>()
    for (const [id, s] of Object.entries(w.steps)) m.set(id, [...(s.depends_on ?? [])])
    for (const [f, t] of w.edges) m.get(t)?.push(f)
    deps = m
  } catch {
    // show what the store has
  }
  for (const s of v.steps) {
    const after = deps.get(s.step_id) ?? []
    lines.push(`  ${s.step_id}${after.length > 0 ? ` <- ${[...new Set(after)].sort().join(", ")}` : ""}  ${s.status}  attempts ${s.attempts}${s.duration_ms !== null ? `  ${s.duration_ms} ms` : ""}`)
    if (s.output_hash !== null) lines.push(`      output sha256:${s.output_hash}`)
    if (s.error !== null && s.status !== "completed") lines.push(`      ${s.error_kind ?? "error"}: ${s.error}`)
    for (const c of v.calls.filter((c) => c.step_id === s.step_id)) {
      lines.push(`      call #${c.seq} (attempt ${c.attempt}) ${c.capability} ${c.decision ?? c.status}${c.reexecuted ? `  reexecuted (ran ${c.executions} times)` : ""}`)
    }
    for (const a of v.approvals.filter((a) => a.step_id === s.step_id)) {
      lines.push(`      ${a.kind} ${a.status}${a.approver ? ` by ${a.approver}` : ""}: ${a.args_rendered ?? ""}  digest ${a.digest}`)
    }
  }
  if (v.history.length > 0) {
    lines.push("  history:")
    for (const h of v.history) lines.push(`    ${h.at} ${h.event}${h.actor ? ` by ${h.actor}` : ""}${h.approval_id ? ` ${h.approval_id}` : ""}${h.detail ? `: ${h.detail}` : ""}`)
  }
  return lines.join("\n")
}

/** Read the store without starting the engine (no lock: SQLite readers do not block the runner). */
const readStore = <A>(
  o: EngineOpts,
  f: (s: import("../WorkflowStore.js").WorkflowStoreService) => Effect.Effect<A, import("../WorkflowStore.js").StoreError>,
  /** the answer when the data dir has no runs at all (else: an unknown_run error) */
  orElse?: () => A
): Effect.Effect<A, CliError> =>
  Effect.scoped(Effect.gen(function*() {
    const url = Option.getOrUndefined(o.cluster) ?? (process.env.BORUNA_CLUSTER_URL || undefined)
    const S = yield* Effect.promise(() => import("../WorkflowStore.js"))
    const { Layer } = { Layer: yield* Effect.promise(() => import("effect/Layer")) }
    let sql: Layer.Layer<import("@effect/sql/SqlClient").SqlClient, unknown>
    if (url !== undefined) {
      const C = yield* Effect.promise(() => import("../Cluster.js"))
      sql = C.pgLayer({ url, clientOnly: true })
    } else {
      const [Engine, Sqlite, fs] = yield* Effect.promise(() => Promise.all([import("../WorkflowEngine.js"), import("@effect/sql-sqlite-node/SqliteClient"), import("node:fs")]))
      const dir = Engine.dataDirOf(Option.getOrUndefined(o.dataDir))
      if (!fs.existsSync(`${dir}/engine.db`)) return yield* (orElse === undefined ? Effect.fail(input("unknown_run", `no workflow runs in ${dir} (start one with boruna workflow run)`)) : Effect.succeed(orElse()))
      sql = Sqlite.layer({ filename: `${dir}/engine.db` })
    }
    return yield* Effect.flatMap(S.WorkflowStore, f).pipe(
      Effect.provide(S.layer.pipe(Layer.provide(sql))),
      Effect.mapError((e) => (e instanceof CliError ? e : input("store_error", String((e as { message?: unknown }).message ?? e))))
    )
  }))

const show = Command.make(
  "show",
  { run: Args.text({ name: "RUN" }).pipe(Args.withDescription("a run id")), dataDir, cluster, json: jsonFlag },
  (o) =>
    Effect.gen(function*() {
      const v = yield* readStore(o, (s) => s.readRun(o.run))
      if (v === undefined) return yield* Effect.fail(input("unknown_run", `no run ${o.run} in this data dir (boruna workflow list shows the runs)`))
      out(o.json ? JSON.stringify({ ...v, approvals: v.approvals.map(({ token_hash: _t, decision_nonce: _n, ...a }) => a) }, null, 2) : renderShow(v))
    })
).pipe(Command.withDescription("Show a run: the step graph with each step's status, attempts, duration, capability calls and pending items"))

const list = Command.make(
  "list",
  {
    status: Options.text("status").pipe(Options.withDescription("only runs with this status: running, paused, completed, failed, cancelled"), Options.optional),
    dataDir,
    cluster,
    json: jsonFlag
  },
  (o) =>
    Effect.gen(function*() {
      const st = Option.getOrUndefined(o.status)
      if (st !== undefined && !["running", "paused", "completed", "failed", "cancelled"].includes(st)) {
        return yield* Effect.fail(usage(`--status takes running, paused, completed, failed or cancelled, not '${st}'`))
      }
      const runs = yield* readStore(o, (s) => s.listRuns(st), () => [])
      if (o.json) out(JSON.stringify(runs.map((r) => ({ run_id: r.run_id, workflow: r.workflow_name, version: r.workflow_version, status: r.status, created_at: r.created_at, error_kind: r.error_kind })), null, 2))
      else if (runs.length === 0) out("no runs")
      else for (const r of runs) out(`${r.run_id}  ${r.status.padEnd(9)}  ${r.workflow_name} ${r.workflow_version}  ${r.created_at}`)
    })
).pipe(Command.withDescription("List the runs in the data dir"))

const answerOptions = {
  run: Args.text({ name: "RUN" }).pipe(Args.withDescription("a run id")),
  step: Args.text({ name: "STEP" }).pipe(Args.withDescription("the approval_gate step (or use --call for a per-call approval)"), Args.optional),
  call: Options.text("call").pipe(Options.withDescription("the digest of the call to answer (a per-call approval)"), Options.optional),
  token: Options.text("token").pipe(Options.withDescription("the token printed when the run paused")),
  as: Options.text("as").pipe(Options.withDescription("who answers (recorded in the run's history)")),
  reason: Options.text("reason").pipe(Options.withDescription("why (recorded)"), Options.optional),
  dataDir,
  cluster,
  json: jsonFlag
}

const answerCmd = (name: "approve" | "reject") =>
  Command.make(name, answerOptions, (o) =>
    Effect.gen(function*() {
      const step = Option.getOrUndefined(o.step)
      const call = Option.getOrUndefined(o.call)
      if ((step === undefined) === (call === undefined)) return yield* Effect.fail(usage(`boruna workflow ${name} takes a STEP or --call DIGEST (one of them)`))
      if (o.as.trim() === "") return yield* Effect.fail(usage("--as needs a name"))
      const Runner = yield* Effect.promise(() => import("../WorkflowRunner.js"))
      const env = yield* progressEnv(o.json)
      const r = yield* onEngine(o, `boruna workflow ${name} ${o.run}`, env, Runner.answer({
        runId: o.run, step, call, token: o.token, as: o.as, reason: Option.getOrUndefined(o.reason), decision: name === "approve" ? "approved" : "rejected"
      }))
      yield* finish(r, o.json)
    })).pipe(Command.withDescription(
      name === "approve"
        ? "Approve a paused gate (STEP) or one exact call (--call DIGEST) with its token; the run continues in this process"
        : "Reject a paused gate or call: it fails with approval_rejected"
    ))

const trigger = Command.make(
  "trigger",
  {
    run: Args.text({ name: "RUN" }).pipe(Args.withDescription("a run id")),
    step: Args.text({ name: "STEP" }).pipe(Args.withDescription("the external_trigger step")),
    token: Options.text("token").pipe(Options.withDescription("the token printed when the run paused")),
    payload: Options.text("payload").pipe(Options.withDescription("the JSON payload: it becomes the step's output"), Options.optional),
    payloadFile: Options.text("payload-file").pipe(Options.withDescription("read the JSON payload from this file"), Options.optional),
    dataDir,
    cluster,
    json: jsonFlag
  },
  (o) =>
    Effect.gen(function*() {
      if (Option.isSome(o.payload) === Option.isSome(o.payloadFile)) return yield* Effect.fail(usage("boruna workflow trigger takes --payload JSON or --payload-file F (one of them)"))
      const { readText } = yield* Effect.promise(() => import("./inputs.js"))
      const source = Option.isSome(o.payload) ? "--payload" : o.payloadFile.pipe(Option.getOrElse(() => ""))
      const text = Option.isSome(o.payload) ? o.payload.value : yield* readText(Option.getOrElse(o.payloadFile, () => ""))
      const { parseJson } = yield* Effect.promise(() => import("../Json.js"))
      const j = parseJson(text)
      if (!j.ok) return yield* Effect.fail(input("invalid_payload", `${source}: ${j.where}: ${j.message}`))
      const { canonicalJson } = yield* Effect.promise(() => import("../ValueJson.js"))
      const Runner = yield* Effect.promise(() => import("../WorkflowRunner.js"))
      const env = yield* progressEnv(o.json)
      const r = yield* onEngine(o, `boruna workflow trigger ${o.run}`, env, Runner.answer({ runId: o.run, step: o.step, token: o.token, as: "trigger", decision: "triggered", payload: canonicalJson(j.value) }))
      yield* finish(r, o.json)
    })
).pipe(Command.withDescription("Deliver an external_trigger step's payload (it becomes the step's output); the run continues in this process"))

const simple = (name: "resume" | "cancel", describe: string) =>
  Command.make(name, { run: Args.text({ name: "RUN" }).pipe(Args.withDescription("a run id")), dataDir, cluster, json: jsonFlag }, (o) =>
    Effect.gen(function*() {
      const Runner = yield* Effect.promise(() => import("../WorkflowRunner.js"))
      const env = yield* progressEnv(o.json)
      const r = yield* onEngine(o, `boruna workflow ${name} ${o.run}`, env, name === "resume" ? Runner.resumeRun(o.run) : Runner.cancelRun(o.run), { reconcile: name === "resume" })
      if (name === "cancel") {
        out(o.json ? JSON.stringify({ run_id: r.runId, status: r.status }) : `run ${r.runId} cancelled`)
        return
      }
      yield* finish(r, o.json)
    })).pipe(Command.withDescription(describe))

export const command = Command.make("workflow").pipe(
  Command.withDescription("Durable workflows: DAGs of .ax (and TypeScript) steps with approvals (docs/workflows.md)"),
  Command.withSubcommands([
    validate,
    run,
    show,
    list,
    answerCmd("approve"),
    answerCmd("reject"),
    trigger,
    simple("resume", "Continue a run after a crash (or a lost wake); ends like run"),
    simple("cancel", "Cancel a run: its engine workflow is interrupted and it is marked cancelled")
  ])
)
