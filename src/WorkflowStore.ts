/**
 * boruna's own record of workflow runs, in tables of its own (`boruna_wf_*`) through
 * `@effect/sql`'s `SqlClient`. The engine's tables (`cluster_*`) are private resume state; this
 * store is the contract other code reads (`boruna workflow show`, evidence bundles, MCP).
 *
 * The SQL is portable: it runs unchanged on SQLite (`@effect/sql-sqlite-node`) and PostgreSQL
 * (`@effect/sql-pg`) — `CREATE TABLE IF NOT EXISTS`, TEXT / BIGINT columns, `INSERT … ON CONFLICT
 * (…) DO UPDATE`, no AUTOINCREMENT / SERIAL, no RETURNING, booleans as 0/1, times as ISO-8601 text.
 *
 * Tables (docs/workflows.md, "Interfaces"):
 *   boruna_wf_runs       one row per run: workflow hash/name/json, policy, inputs, status, trace context
 *   boruna_wf_steps      one row per step: status, attempts, output + sha256, source path
 *   boruna_wf_attempts   one row per step attempt: status, times, error, the VM event log (JSONL)
 *   boruna_wf_calls      one row per capability call: step, attempt, seq, capability, args digest,
 *                        decision, result digest, reexecuted
 *   boruna_wf_approvals  one row per pause (gate, per-call approval, external trigger)
 *   boruna_wf_history    decisions and refused attempts (wrong token, already decided, wrong digest)
 *   boruna_wf_sources    the text and SHA-256 of every `.ax` step source, stored at submit: every later
 *                        execution (resume, approve, another runner) compiles from it, not the directory
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { randomBytes } from "node:crypto"

export class StoreError extends Data.TaggedError("StoreError")<{ readonly message: string }> {}

export type RunStatus = "running" | "paused" | "completed" | "failed" | "cancelled"
export type StepStatus = "pending" | "running" | "completed" | "failed" | "skipped" | "awaiting_approval" | "awaiting_trigger" | "cancelled"

export interface RunRecord {
  readonly run_id: string
  readonly workflow_name: string
  readonly workflow_version: string
  readonly workflow_hash: string
  /** the directory (or .ax file) the run was started from */
  readonly workflow_path: string
  /** the decoded workflow.json, canonical JSON */
  readonly workflow_json: string
  /** the run policy, canonical JSON with defaults */
  readonly policy_json: string
  readonly policy_hash: string
  /** run inputs, JSON object name → string */
  readonly inputs_json: string
  readonly inputs_hash: string
  readonly counter: number
  readonly status: RunStatus
  readonly live: boolean
  readonly concurrency: number
  /** W3C trace id / span id of the run's trace (one trace across pauses, crashes, resumes) */
  readonly trace_id: string
  readonly span_id: string
  readonly created_at: string
  readonly updated_at: string
  readonly error: string | null
  readonly error_kind: string | null
}

export interface StepRecord {
  readonly run_id: string
  readonly step_id: string
  readonly kind: string
  readonly status: StepStatus
  readonly attempts: number
  /** compact Value JSON of the output (`{"Int":0}`), or null */
  readonly output_json: string | null
  /** hex SHA-256 of output_json */
  readonly output_hash: string | null
  readonly source_path: string | null
  readonly started_at: string | null
  readonly ended_at: string | null
  readonly duration_ms: number | null
  readonly error: string | null
  readonly error_kind: string | null
}

export interface AttemptRecord {
  readonly run_id: string
  readonly step_id: string
  readonly attempt: number
  readonly status: StepStatus
  readonly started_at: string | null
  readonly ended_at: string | null
  readonly duration_ms: number | null
  readonly error: string | null
  readonly error_kind: string | null
  /** the step's VM event log, one `encodeEvent` line per event, exactly as the VM produced it */
  readonly event_log: string
}

export type CallDecision = "allowed" | "denied" | "budget_exceeded"

export interface CallRecord {
  readonly run_id: string
  readonly step_id: string
  readonly attempt: number
  readonly seq: number
  readonly capability: string
  /** hex SHA-256 of the canonical JSON of the arguments */
  readonly args_digest: string
  readonly decision: CallDecision | null
  /** hex SHA-256 of the result's canonical Value JSON (or of the error), null until completed */
  readonly result_digest: string | null
  /** `started` while in flight, `completed` once journaled */
  readonly status: "started" | "completed"
  /** the call ran again after a crash (at-least-once) */
  readonly reexecuted: boolean
  readonly executions: number
  readonly started_at: string
  readonly ended_at: string | null
}

export type ApprovalKind = "gate" | "call" | "trigger"
export type ApprovalStatus = "pending" | "approved" | "rejected" | "triggered"

export interface ApprovalRecord {
  readonly run_id: string
  /** `gate:STEP`, `trigger:STEP` or `call:DIGEST` */
  readonly id: string
  readonly kind: ApprovalKind
  readonly step_id: string
  readonly attempt: number
  readonly seq: number | null
  readonly capability: string | null
  /** a readable rendering of the call's arguments (per-call approvals) */
  readonly args_rendered: string | null
  /** hex SHA-256 of (run, step, attempt, seq, capability, canonical args); gates: of (run, step) */
  readonly digest: string
  readonly required_role: string | null
  /** hex SHA-256 of the token; the token itself is printed once and never stored */
  readonly token_hash: string
  readonly status: ApprovalStatus
  readonly approver: string | null
  readonly reason: string | null
  readonly payload_json: string | null
  readonly created_at: string
  readonly decided_at: string | null
  readonly decision_nonce: string | null
}

export interface HistoryRecord {
  readonly id: string
  readonly run_id: string
  readonly approval_id: string | null
  readonly at: string
  readonly actor: string | null
  /** `pending`, `approved`, `rejected`, `triggered`, `refused`, `resumed`, `cancelled`, `reconciled` */
  readonly event: string
  readonly detail: string
}

/** The source of one `.ax` step, as it was when the run was submitted. */
export interface SourceRecord {
  readonly run_id: string
  readonly step_id: string
  /** the step's `source`, relative to the workflow directory */
  readonly path: string
  /** the file's text (a leading BOM removed) */
  readonly source: string
  /** hex SHA-256 of `source` (UTF-8) */
  readonly sha256: string
}

/** Everything the store holds about one run: what the evidence engineer reads. */
export interface RunView {
  readonly run: RunRecord
  readonly steps: ReadonlyArray<StepRecord>
  readonly attempts: ReadonlyArray<AttemptRecord>
  readonly calls: ReadonlyArray<CallRecord>
  readonly approvals: ReadonlyArray<ApprovalRecord>
  readonly history: ReadonlyArray<HistoryRecord>
  /** the `.ax` step sources stored with the run (by step id) */
  readonly sources: ReadonlyArray<SourceRecord>
}

/** A completed call as the runner journals it: its record and what it journaled (JSON). */
export interface JournaledCall extends CallKey {
  readonly capability: string
  readonly args_digest: string
  readonly decision: CallDecision
  readonly result_digest: string
  readonly journal: string
  readonly at: string
}

export interface CallKey {
  readonly run_id: string
  readonly step_id: string
  readonly attempt: number
  readonly seq: number
}

export interface WorkflowStoreService {
  readonly createRun: (r: RunRecord) => Effect.Effect<void, StoreError>
  readonly getRun: (runId: string) => Effect.Effect<RunRecord | undefined, StoreError>
  readonly listRuns: (status?: string) => Effect.Effect<ReadonlyArray<RunRecord>, StoreError>
  /** how many runs of this workflow with these inputs exist (the next run id's counter) */
  readonly countRuns: (workflowHash: string, inputsHash: string) => Effect.Effect<number, StoreError>
  readonly setRunStatus: (runId: string, status: RunStatus, error?: { readonly message: string; readonly kind: string }) => Effect.Effect<void, StoreError>
  readonly upsertStep: (s: StepRecord) => Effect.Effect<void, StoreError>
  readonly getSteps: (runId: string) => Effect.Effect<ReadonlyArray<StepRecord>, StoreError>
  readonly upsertAttempt: (a: AttemptRecord) => Effect.Effect<void, StoreError>
  readonly getAttempts: (runId: string) => Effect.Effect<ReadonlyArray<AttemptRecord>, StoreError>
  readonly getCall: (k: CallKey) => Effect.Effect<CallRecord | undefined, StoreError>
  /** record a call as started; if a started (never completed) record exists, mark it reexecuted */
  readonly startCall: (c: CallKey & { readonly capability: string; readonly args_digest: string }) => Effect.Effect<CallRecord, StoreError>
  readonly completeCall: (c: CallKey & { readonly decision: CallDecision; readonly result_digest: string; readonly journal?: string | undefined }) => Effect.Effect<void, StoreError>
  /**
   * The journal of one step attempt, read once when the attempt's execution starts: its call
   * records with what each completed call journaled (`journal`, JSON; null for a call in flight, or
   * one journaled by the engine before the journal moved here).
   */
  readonly getJournal: (runId: string, stepId: string, attempt: number) => Effect.Effect<ReadonlyArray<CallRecord & { readonly journal: string | null }>, StoreError>
  /**
   * The intent write before a call's handler runs, one statement: a new record (`started`), or,
   * when the journal already has this call started and never completed (it was in flight when the
   * process died), one more execution, marked `reexecuted`.
   */
  readonly intendCall: (c: CallKey & { readonly capability: string; readonly args_digest: string }, pending?: ReadonlyArray<JournaledCall>) => Effect.Effect<void, StoreError>
  /**
   * Calls whose handler answered at once (or that the policy refused before any handler ran),
   * each with its intent and its result in one row, written together (one commit): the runner
   * holds them until the next durability point, as the event-log file holds a `CapCall` back to
   * write it with its outcome. A record left `started` by a crash counts one more execution,
   * `reexecuted`. `intendCall(c, pending)` writes them in the same transaction as its intent.
   */
  readonly recordCalls: (rows: ReadonlyArray<JournaledCall>) => Effect.Effect<void, StoreError>
  /** a journaled call answered without running: make sure the record says completed */
  readonly ensureCall: (c: CallKey & { readonly capability: string; readonly args_digest: string; readonly decision: CallDecision; readonly result_digest: string }) => Effect.Effect<void, StoreError>
  readonly getCalls: (runId: string) => Effect.Effect<ReadonlyArray<CallRecord>, StoreError>
  /** insert a pending approval unless one with this id exists; true when inserted */
  readonly addApproval: (a: ApprovalRecord) => Effect.Effect<boolean, StoreError>
  readonly getApproval: (runId: string, id: string) => Effect.Effect<ApprovalRecord | undefined, StoreError>
  readonly getApprovals: (runId: string) => Effect.Effect<ReadonlyArray<ApprovalRecord>, StoreError>
  /** decide a pending approval; true when this call's decision won (single use, first answer wins) */
  readonly decide: (runId: string, id: string, d: { readonly status: ApprovalStatus; readonly approver: string; readonly reason: string | null; readonly payload_json: string | null; readonly at: string }) => Effect.Effect<boolean, StoreError>
  /** replace a pending approval's token hash (a token lost to a crash before it was shown); true when it was pending */
  readonly rotateToken: (runId: string, id: string, tokenHash: string) => Effect.Effect<boolean, StoreError>
  readonly addHistory: (h: Omit<HistoryRecord, "id">) => Effect.Effect<void, StoreError>
  readonly getHistory: (runId: string) => Effect.Effect<ReadonlyArray<HistoryRecord>, StoreError>
  /** store a run's step sources (at submit, before the run's row: a row left by a submit that crashed is replaced) */
  readonly putSources: (rs: ReadonlyArray<SourceRecord>) => Effect.Effect<void, StoreError>
  readonly getSources: (runId: string) => Effect.Effect<ReadonlyArray<SourceRecord>, StoreError>
  /** the whole record of a run (undefined when unknown) */
  readonly readRun: (runId: string) => Effect.Effect<RunView | undefined, StoreError>
}

export class WorkflowStore extends Context.Tag("boruna/WorkflowStore")<WorkflowStore, WorkflowStoreService>() {}

// ---------------------------------------------------------------------------------------------

const DDL: ReadonlyArray<string> = [
  `CREATE TABLE IF NOT EXISTS boruna_wf_runs (
    run_id TEXT PRIMARY KEY, workflow_name TEXT NOT NULL, workflow_version TEXT NOT NULL, workflow_hash TEXT NOT NULL,
    workflow_path TEXT NOT NULL, workflow_json TEXT NOT NULL, policy_json TEXT NOT NULL, policy_hash TEXT NOT NULL,
    inputs_json TEXT NOT NULL, inputs_hash TEXT NOT NULL, counter BIGINT NOT NULL, status TEXT NOT NULL,
    live BIGINT NOT NULL, concurrency BIGINT NOT NULL, trace_id TEXT NOT NULL, span_id TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, error TEXT, error_kind TEXT)`,
  `CREATE TABLE IF NOT EXISTS boruna_wf_steps (
    run_id TEXT NOT NULL, step_id TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, attempts BIGINT NOT NULL,
    output_json TEXT, output_hash TEXT, source_path TEXT, started_at TEXT, ended_at TEXT, duration_ms BIGINT,
    error TEXT, error_kind TEXT, PRIMARY KEY (run_id, step_id))`,
  `CREATE TABLE IF NOT EXISTS boruna_wf_attempts (
    run_id TEXT NOT NULL, step_id TEXT NOT NULL, attempt BIGINT NOT NULL, status TEXT NOT NULL, started_at TEXT,
    ended_at TEXT, duration_ms BIGINT, error TEXT, error_kind TEXT, event_log TEXT NOT NULL,
    PRIMARY KEY (run_id, step_id, attempt))`,
  `CREATE TABLE IF NOT EXISTS boruna_wf_calls (
    run_id TEXT NOT NULL, step_id TEXT NOT NULL, attempt BIGINT NOT NULL, seq BIGINT NOT NULL, capability TEXT NOT NULL,
    args_digest TEXT NOT NULL, decision TEXT, result_digest TEXT, status TEXT NOT NULL, reexecuted BIGINT NOT NULL,
    executions BIGINT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT, journal TEXT, PRIMARY KEY (run_id, step_id, attempt, seq))`,
  `CREATE TABLE IF NOT EXISTS boruna_wf_approvals (
    run_id TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, step_id TEXT NOT NULL, attempt BIGINT NOT NULL,
    seq BIGINT, capability TEXT, args_rendered TEXT, digest TEXT NOT NULL, required_role TEXT, token_hash TEXT NOT NULL,
    status TEXT NOT NULL, approver TEXT, reason TEXT, payload_json TEXT, created_at TEXT NOT NULL, decided_at TEXT,
    decision_nonce TEXT, PRIMARY KEY (run_id, id))`,
  `CREATE TABLE IF NOT EXISTS boruna_wf_history (
    id TEXT PRIMARY KEY, run_id TEXT NOT NULL, approval_id TEXT, at TEXT NOT NULL, actor TEXT, event TEXT NOT NULL,
    detail TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS boruna_wf_sources (
    run_id TEXT NOT NULL, step_id TEXT NOT NULL, path TEXT NOT NULL, source TEXT NOT NULL, sha256 TEXT NOT NULL,
    PRIMARY KEY (run_id, step_id))`
]

type Row = Record<string, unknown>
const num = (v: unknown): number => (typeof v === "number" ? v : Number(v))
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v))
const str = (v: unknown): string => String(v)
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v))

const toRun = (r: Row): RunRecord => ({
  run_id: str(r.run_id),
  workflow_name: str(r.workflow_name),
  workflow_version: str(r.workflow_version),
  workflow_hash: str(r.workflow_hash),
  workflow_path: str(r.workflow_path),
  workflow_json: str(r.workflow_json),
  policy_json: str(r.policy_json),
  policy_hash: str(r.policy_hash),
  inputs_json: str(r.inputs_json),
  inputs_hash: str(r.inputs_hash),
  counter: num(r.counter),
  status: str(r.status) as RunStatus,
  live: num(r.live) === 1,
  concurrency: num(r.concurrency),
  trace_id: str(r.trace_id),
  span_id: str(r.span_id),
  created_at: str(r.created_at),
  updated_at: str(r.updated_at),
  error: strOrNull(r.error),
  error_kind: strOrNull(r.error_kind)
})

const toStep = (r: Row): StepRecord => ({
  run_id: str(r.run_id),
  step_id: str(r.step_id),
  kind: str(r.kind),
  status: str(r.status) as StepStatus,
  attempts: num(r.attempts),
  output_json: strOrNull(r.output_json),
  output_hash: strOrNull(r.output_hash),
  source_path: strOrNull(r.source_path),
  started_at: strOrNull(r.started_at),
  ended_at: strOrNull(r.ended_at),
  duration_ms: numOrNull(r.duration_ms),
  error: strOrNull(r.error),
  error_kind: strOrNull(r.error_kind)
})

const toAttempt = (r: Row): AttemptRecord => ({
  run_id: str(r.run_id),
  step_id: str(r.step_id),
  attempt: num(r.attempt),
  status: str(r.status) as StepStatus,
  started_at: strOrNull(r.started_at),
  ended_at: strOrNull(r.ended_at),
  duration_ms: numOrNull(r.duration_ms),
  error: strOrNull(r.error),
  error_kind: strOrNull(r.error_kind),
  event_log: str(r.event_log)
})

const toCall = (r: Row): CallRecord => ({
  run_id: str(r.run_id),
  step_id: str(r.step_id),
  attempt: num(r.attempt),
  seq: num(r.seq),
  capability: str(r.capability),
  args_digest: str(r.args_digest),
  decision: strOrNull(r.decision) as CallDecision | null,
  result_digest: strOrNull(r.result_digest),
  status: str(r.status) as "started" | "completed",
  reexecuted: num(r.reexecuted) === 1,
  executions: num(r.executions),
  started_at: str(r.started_at),
  ended_at: strOrNull(r.ended_at)
})

const toApproval = (r: Row): ApprovalRecord => ({
  run_id: str(r.run_id),
  id: str(r.id),
  kind: str(r.kind) as ApprovalKind,
  step_id: str(r.step_id),
  attempt: num(r.attempt),
  seq: numOrNull(r.seq),
  capability: strOrNull(r.capability),
  args_rendered: strOrNull(r.args_rendered),
  digest: str(r.digest),
  required_role: strOrNull(r.required_role),
  token_hash: str(r.token_hash),
  status: str(r.status) as ApprovalStatus,
  approver: strOrNull(r.approver),
  reason: strOrNull(r.reason),
  payload_json: strOrNull(r.payload_json),
  created_at: str(r.created_at),
  decided_at: strOrNull(r.decided_at),
  decision_nonce: strOrNull(r.decision_nonce)
})

const toHistory = (r: Row): HistoryRecord => ({
  id: str(r.id),
  run_id: str(r.run_id),
  approval_id: strOrNull(r.approval_id),
  at: str(r.at),
  actor: strOrNull(r.actor),
  event: str(r.event),
  detail: str(r.detail)
})

const toSource = (r: Row): SourceRecord => ({
  run_id: str(r.run_id),
  step_id: str(r.step_id),
  path: str(r.path),
  source: str(r.source),
  sha256: str(r.sha256)
})

const now = (): string => new Date().toISOString()

const chunks = <A>(xs: ReadonlyArray<A>, n: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n))
  return out
}

/**
 * A history entry's id: increasing in the order this process records entries (microseconds since
 * the epoch, at least one more than the last, zero-padded so text order is number order), then a
 * random part. The history reads back `ORDER BY at, id`, so entries recorded within one millisecond
 * keep their order (a random id put a refusal and the decision after it in either order).
 */
let lastHistory = 0
const historyId = (): string => {
  lastHistory = Math.max(Date.now() * 1000, lastHistory + 1)
  return `${String(lastHistory).padStart(17, "0")}-${randomBytes(6).toString("hex")}`
}

/** The store over the `SqlClient` in context; creates its tables on first use. */
export const make: Effect.Effect<WorkflowStoreService, StoreError, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = (what: string, e: Effect.Effect<ReadonlyArray<Row>, SqlError>): Effect.Effect<ReadonlyArray<Row>, StoreError> =>
    Effect.mapError(e, (err) => new StoreError({ message: `workflow store: ${what}: ${err.message}` }))
  const wrap = (what: string) => (e: Effect.Effect<ReadonlyArray<Row>, SqlError>): Effect.Effect<void, StoreError> => Effect.asVoid(rows(what, e))
  for (const ddl of DDL) yield* wrap("create tables")(sql.unsafe(ddl))
  // a store created before calls carried their journal: add the column (fails harmlessly when present)
  yield* Effect.ignore(sql.unsafe("ALTER TABLE boruna_wf_calls ADD COLUMN journal TEXT"))

  const getRun: WorkflowStoreService["getRun"] = (runId) =>
    Effect.map(rows("read run", sql`SELECT * FROM boruna_wf_runs WHERE run_id = ${runId}`), (rs) => (rs[0] ? toRun(rs[0]) : undefined))
  const getSteps: WorkflowStoreService["getSteps"] = (runId) =>
    Effect.map(rows("read steps", sql`SELECT * FROM boruna_wf_steps WHERE run_id = ${runId} ORDER BY step_id`), (rs) => rs.map(toStep))
  const getAttempts: WorkflowStoreService["getAttempts"] = (runId) =>
    Effect.map(rows("read attempts", sql`SELECT * FROM boruna_wf_attempts WHERE run_id = ${runId} ORDER BY step_id, attempt`), (rs) => rs.map(toAttempt))
  const getCall: WorkflowStoreService["getCall"] = (k) =>
    Effect.map(
      rows("read call", sql`SELECT * FROM boruna_wf_calls WHERE run_id = ${k.run_id} AND step_id = ${k.step_id} AND attempt = ${k.attempt} AND seq = ${k.seq}`),
      (rs) => (rs[0] ? toCall(rs[0]) : undefined)
    )
  const getCalls: WorkflowStoreService["getCalls"] = (runId) =>
    // every column but the journal (what each call answered, read only by the step that re-runs it)
    Effect.map(rows("read calls", sql`SELECT run_id, step_id, attempt, seq, capability, args_digest, decision, result_digest, status, reexecuted,
      executions, started_at, ended_at FROM boruna_wf_calls WHERE run_id = ${runId} ORDER BY step_id, attempt, seq`), (rs) => rs.map(toCall))
  const getApproval: WorkflowStoreService["getApproval"] = (runId, id) =>
    Effect.map(rows("read approval", sql`SELECT * FROM boruna_wf_approvals WHERE run_id = ${runId} AND id = ${id}`), (rs) => (rs[0] ? toApproval(rs[0]) : undefined))
  const getApprovals: WorkflowStoreService["getApprovals"] = (runId) =>
    Effect.map(rows("read approvals", sql`SELECT * FROM boruna_wf_approvals WHERE run_id = ${runId} ORDER BY created_at, id`), (rs) => rs.map(toApproval))
  const getHistory: WorkflowStoreService["getHistory"] = (runId) =>
    Effect.map(rows("read history", sql`SELECT * FROM boruna_wf_history WHERE run_id = ${runId} ORDER BY at, id`), (rs) => rs.map(toHistory))

  const getSources: WorkflowStoreService["getSources"] = (runId) =>
    Effect.map(rows("read sources", sql`SELECT * FROM boruna_wf_sources WHERE run_id = ${runId} ORDER BY step_id`), (rs) => rs.map(toSource))

  // the journal's batch insert: the statement's text for n rows built once per size (in the
  // client's placeholders: `?` on SQLite, `$1…` on PostgreSQL), the values passed flat; a step's calls
  // answered at once arrive here by the hundred, and building each batch's statement through
  // `sql.insert` (row objects, placeholders, a fresh text for the prepare cache) cost about as much
  // as the database's own work
  const numbered = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
  const insertTexts = new Map<number, string>()
  const insertText = (n: number): string => {
    let t = insertTexts.get(n)
    if (t === undefined) {
      let p = 0
      const ph = (): string => (numbered ? `$${++p}` : "?")
      const rows = Array.from({ length: n }, () => `(${ph()}, ${ph()}, ${ph()}, ${ph()}, ${ph()}, ${ph()}, ${ph()}, ${ph()}, 'completed', 0, 1, ${ph()}, ${ph()}, ${ph()})`)
      t = `INSERT INTO boruna_wf_calls (run_id, step_id, attempt, seq, capability, args_digest, decision, result_digest, status, reexecuted, executions, started_at, ended_at, journal)
        VALUES ${rows.join(", ")}
        ON CONFLICT (run_id, step_id, attempt, seq) DO UPDATE SET status = 'completed', decision = excluded.decision,
        result_digest = excluded.result_digest, journal = excluded.journal, ended_at = excluded.ended_at,
        executions = boruna_wf_calls.executions + 1, reexecuted = 1`
      if (insertTexts.size < 64) insertTexts.set(n, t)
    }
    return t
  }
  const recordCalls: WorkflowStoreService["recordCalls"] = (all) =>
    Effect.forEach(chunks(all, 500), (rs) => {
      const params: Array<string | number> = []
      for (const c of rs) params.push(c.run_id, c.step_id, c.attempt, c.seq, c.capability, c.args_digest, c.decision, c.result_digest, c.at, c.at, c.journal)
      return wrap("journal calls")(sql.unsafe<Row>(insertText(rs.length), params))
    }, { discard: true })

  const service: WorkflowStoreService = {
    createRun: (r) =>
      wrap("create run")(sql`INSERT INTO boruna_wf_runs ${sql.insert({ ...r, live: r.live ? 1 : 0 })} ON CONFLICT (run_id) DO NOTHING`),
    getRun,
    listRuns: (status) =>
      Effect.map(
        rows("list runs", status === undefined
          ? sql`SELECT * FROM boruna_wf_runs ORDER BY created_at, run_id`
          : sql`SELECT * FROM boruna_wf_runs WHERE status = ${status} ORDER BY created_at, run_id`),
        (rs) => rs.map(toRun)
      ),
    countRuns: (wh, ih) =>
      Effect.map(rows("count runs", sql`SELECT COUNT(*) AS n FROM boruna_wf_runs WHERE workflow_hash = ${wh} AND inputs_hash = ${ih}`), (rs) => num(rs[0]?.n ?? 0)),
    setRunStatus: (runId, status, error) =>
      wrap("update run")(
        sql`UPDATE boruna_wf_runs SET status = ${status}, updated_at = ${now()}, error = ${error?.message ?? null}, error_kind = ${error?.kind ?? null} WHERE run_id = ${runId}`
      ),
    upsertStep: (s) =>
      wrap("write step")(sql`INSERT INTO boruna_wf_steps ${sql.insert({ ...s })}
        ON CONFLICT (run_id, step_id) DO UPDATE SET kind = excluded.kind, status = excluded.status, attempts = excluded.attempts,
        output_json = excluded.output_json, output_hash = excluded.output_hash, source_path = excluded.source_path,
        started_at = COALESCE(boruna_wf_steps.started_at, excluded.started_at), ended_at = excluded.ended_at,
        duration_ms = excluded.duration_ms, error = excluded.error, error_kind = excluded.error_kind`),
    getSteps,
    upsertAttempt: (a) =>
      wrap("write attempt")(sql`INSERT INTO boruna_wf_attempts ${sql.insert({ ...a })}
        ON CONFLICT (run_id, step_id, attempt) DO UPDATE SET status = excluded.status,
        started_at = COALESCE(boruna_wf_attempts.started_at, excluded.started_at), ended_at = excluded.ended_at,
        duration_ms = excluded.duration_ms, error = excluded.error, error_kind = excluded.error_kind, event_log = excluded.event_log`),
    getAttempts,
    getCall,
    startCall: (c) =>
      Effect.gen(function*() {
        const at = now()
        yield* wrap("start call")(sql`INSERT INTO boruna_wf_calls ${sql.insert({
          run_id: c.run_id, step_id: c.step_id, attempt: c.attempt, seq: c.seq, capability: c.capability, args_digest: c.args_digest,
          decision: null, result_digest: null, status: "started", reexecuted: 0, executions: 1, started_at: at, ended_at: null
        })} ON CONFLICT (run_id, step_id, attempt, seq) DO UPDATE SET executions = boruna_wf_calls.executions + 1,
          reexecuted = 1`)
        return (yield* getCall(c))!
      }),
    getJournal: (runId, stepId, attempt) =>
      Effect.map(
        rows("read journal", sql`SELECT * FROM boruna_wf_calls WHERE run_id = ${runId} AND step_id = ${stepId} AND attempt = ${attempt} ORDER BY seq`),
        (rs) => rs.map((r) => ({ ...toCall(r), journal: strOrNull(r.journal) }))
      ),
    intendCall: (c, pending = []) => {
      const intent = wrap("start call")(sql`INSERT INTO boruna_wf_calls ${sql.insert({
        run_id: c.run_id, step_id: c.step_id, attempt: c.attempt, seq: c.seq, capability: c.capability, args_digest: c.args_digest,
        decision: null, result_digest: null, status: "started", reexecuted: 0, executions: 1, started_at: now(), ended_at: null, journal: null
      })} ON CONFLICT (run_id, step_id, attempt, seq) DO UPDATE SET executions = boruna_wf_calls.executions + 1, reexecuted = 1`)
      return pending.length === 0
        ? intent
        : Effect.mapError(sql.withTransaction(Effect.zipRight(recordCalls(pending), intent)), (e) => e._tag === "StoreError" ? e : new StoreError({ message: `workflow store: start call: ${e.message}` }))
    },
    recordCalls,
    completeCall: (c) =>
      wrap("complete call")(sql`UPDATE boruna_wf_calls SET status = 'completed', decision = ${c.decision}, result_digest = ${c.result_digest},
        journal = ${c.journal ?? null}, ended_at = ${now()} WHERE run_id = ${c.run_id} AND step_id = ${c.step_id} AND attempt = ${c.attempt} AND seq = ${c.seq}`),
    ensureCall: (c) =>
      wrap("journal call")(sql`INSERT INTO boruna_wf_calls ${sql.insert({
        run_id: c.run_id, step_id: c.step_id, attempt: c.attempt, seq: c.seq, capability: c.capability, args_digest: c.args_digest,
        decision: c.decision, result_digest: c.result_digest, status: "completed", reexecuted: 0, executions: 1, started_at: now(), ended_at: now()
      })} ON CONFLICT (run_id, step_id, attempt, seq) DO UPDATE SET status = 'completed', decision = excluded.decision,
        result_digest = excluded.result_digest, ended_at = COALESCE(boruna_wf_calls.ended_at, excluded.ended_at)`),
    getCalls,
    addApproval: (a) =>
      Effect.gen(function*() {
        const before = yield* getApproval(a.run_id, a.id)
        if (before !== undefined) return false
        yield* wrap("add approval")(sql`INSERT INTO boruna_wf_approvals ${sql.insert({ ...a })} ON CONFLICT (run_id, id) DO NOTHING`)
        const after = yield* getApproval(a.run_id, a.id)
        return after?.token_hash === a.token_hash
      }),
    getApproval,
    getApprovals,
    decide: (runId, id, d) =>
      Effect.gen(function*() {
        const nonce = randomBytes(12).toString("hex")
        yield* wrap("decide")(sql`UPDATE boruna_wf_approvals SET status = ${d.status}, approver = ${d.approver}, reason = ${d.reason},
          payload_json = ${d.payload_json}, decided_at = ${d.at}, decision_nonce = ${nonce}
          WHERE run_id = ${runId} AND id = ${id} AND status = 'pending'`)
        const after = yield* getApproval(runId, id)
        return after?.decision_nonce === nonce
      }),
    rotateToken: (runId, id, hash) =>
      Effect.gen(function*() {
        yield* wrap("rotate token")(sql`UPDATE boruna_wf_approvals SET token_hash = ${hash} WHERE run_id = ${runId} AND id = ${id} AND status = 'pending'`)
        const after = yield* getApproval(runId, id)
        return after?.status === "pending" && after.token_hash === hash
      }),
    addHistory: (h) => wrap("add history")(sql`INSERT INTO boruna_wf_history ${sql.insert({ id: historyId(), ...h })}`),
    getHistory,
    putSources: (rs) =>
      Effect.forEach(rs, (r) => wrap("store source")(sql`INSERT INTO boruna_wf_sources ${sql.insert({ ...r })} ON CONFLICT (run_id, step_id) DO UPDATE
        SET path = excluded.path, source = excluded.source, sha256 = excluded.sha256`), { discard: true }),
    getSources,
    readRun: (runId) =>
      Effect.gen(function*() {
        const run = yield* getRun(runId)
        if (run === undefined) return undefined
        return {
          run,
          steps: yield* getSteps(runId),
          attempts: yield* getAttempts(runId),
          calls: yield* getCalls(runId),
          approvals: yield* getApprovals(runId),
          history: yield* getHistory(runId),
          sources: yield* getSources(runId)
        }
      })
  }
  return service
})

/** The store as a layer over the `SqlClient` in context. */
export const layer: Layer.Layer<WorkflowStore, StoreError, SqlClient.SqlClient> = Layer.effect(WorkflowStore, make)

/** Read one run's whole record (for evidence, MCP, `workflow show`). */
export const readRun = (runId: string): Effect.Effect<RunView | undefined, StoreError, WorkflowStore> =>
  Effect.flatMap(WorkflowStore, (s) => s.readRun(runId))
