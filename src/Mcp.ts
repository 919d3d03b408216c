/**
 * boruna as an MCP server (`boruna mcp`): an agent client runs `.ax` programs under a policy it
 * cannot widen. See docs/mcp.md.
 *
 * Built from @effect/ai's `McpServer` parts — `McpServer.make` (the tool registry), `McpServer.run`
 * (the protocol: initialize, tools/list, tools/call, cancellation) over `RpcServer`'s stdio protocol
 * with newline-delimited JSON-RPC — composed exactly as `McpServer.layerStdio` composes them, with
 * two additions `layerStdio` leaves no room for: `tools/call` reaches our dispatcher with the
 * request's `_meta` (its progress token), and the protocol passes `_meta.traceparent` /
 * `tracestate` on as request headers (the payload schema would strip them), so a tool call can join
 * the caller's trace.
 *
 * The ceiling (`--policy`, default deny-all) is the most any call can get: a call's own policy is
 * narrowed to it (`PolicyCeiling.narrow`) and refused when it asks for more. Budgets are per call
 * (the policy's) and per session (`--session-budget`: capability calls over all calls).
 *
 * Nothing but protocol messages goes to stdout: Effect's loggers are removed, and programs print
 * nothing (their value is the tool result).
 */
import * as McpSchema from "@effect/ai/McpSchema"
import * as McpServer from "@effect/ai/McpServer"
import * as NodeSink from "@effect/platform-node/NodeSink"
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as JSONSchema from "effect/JSONSchema"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import type * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import type * as Tracer from "effect/Tracer"
import { randomUUID } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { programHash, type BytecodeProgram } from "./Bytecode.js"
import { compileSource } from "./Compiler.js"
import { type Diagnostic, formatDiagnostic } from "./Diagnostic.js"
import { BudgetExceeded, HandlerFailure } from "./Errors.js"
import type { Event } from "./Event.js"
import * as EventLog from "./EventLog.js"
import * as EventLogFile from "./EventLogFile.js"
import * as Gateway from "./Gateway.js"
import * as Handlers from "./Handlers.js"
import { parseJson, schemaIssues } from "./Json.js"
import { allowAll, decodePolicy, denyAll, type Policy, policyToJson } from "./Policy.js"
import { isAllowed } from "./PolicyCore.js"
import { grants, narrow } from "./PolicyCeiling.js"
import * as Replay from "./Replay.js"
import * as Telemetry from "./Telemetry.js"
import { show, type Value } from "./Value.js"
import { toJson } from "./ValueJson.js"
import { Vm, VmError } from "./Vm.js"
import { report as capabilityReport } from "./cli/capability.js"
import { formatTraceTable } from "./cli/traceTable.js"

// ---------------------------------------------------------------------------------------------
// limits

/** the largest source a call may send (or name by path) */
export const MAX_SOURCE_BYTES = 1024 * 1024
/** the largest event log boruna_replay accepts */
export const MAX_LOG_BYTES = 16 * 1024 * 1024

export interface Limits {
  readonly maxSteps: number
  readonly timeoutMs: number
  readonly maxOutputBytes: number
}

/** The server's limits: a call may ask for less, never more. */
export const DEFAULT_LIMITS: Limits = { maxSteps: 10_000_000, timeoutMs: 30_000, maxOutputBytes: 1024 * 1024 }

export interface ServerOptions {
  /** the most any call may be granted */
  readonly ceiling: Policy
  /** what `--policy` said, for messages */
  readonly ceilingName: string
  /** paths given to tools resolve here and must stay inside it (default: the working directory) */
  readonly root: string
  /** where recorded runs are kept (`runs/<run_id>.json`), when given */
  readonly dataDir: string | undefined
  /** capability calls allowed over the whole session (all tool calls together) */
  readonly sessionBudget: number | undefined
  /** use the live handlers (real network, files, …) instead of the deterministic demo ones */
  readonly live: boolean
  readonly limits: Limits
  readonly version: string
  /** environment for telemetry (`OTEL_*`) and `BORUNA_DEMO_LATENCY_MS` */
  readonly env: Record<string, string | undefined>
}

// ---------------------------------------------------------------------------------------------
// tool arguments (Schema ⇒ JSON Schema for tools/list, and the decoder of every call)

// inline `integer` (Schema.Int would be a $ref to $defs in the JSON Schema)
const PositiveInt = Schema.Number.pipe(Schema.int(), Schema.positive())

const PolicyArg = Schema.Union(
  Schema.String.annotations({ description: "\"deny-all\", \"allow-all\" or policy JSON text" }),
  Schema.Record({ key: Schema.String, value: Schema.Unknown }).annotations({ description: "a policy object (docs/policy.md)" })
).annotations({ description: "a policy that narrows the server's ceiling; asking for more than the ceiling is refused" })

const ProgramFields = {
  source: Schema.optional(Schema.String.annotations({ description: ".ax source text (at most 1 MiB)" })),
  path: Schema.optional(Schema.String.annotations({ description: "a .ax file under the server's directory (instead of source)" }))
}

const LimitFields = {
  max_steps: Schema.optional(PositiveInt.annotations({ description: "stop after this many VM steps (at most the server's limit)" })),
  timeout_ms: Schema.optional(PositiveInt.annotations({ description: "stop after this many milliseconds (at most the server's limit)" })),
  max_output_bytes: Schema.optional(PositiveInt.annotations({ description: "refuse a result whose text is longer than this many bytes" }))
}

export const RunArgs = Schema.Struct({
  ...ProgramFields,
  policy: Schema.optional(PolicyArg),
  ...LimitFields,
  record: Schema.optional(Schema.Boolean.annotations({ description: "return the run's event log (for boruna_replay)" }))
})

export const CheckArgs = Schema.Struct(ProgramFields)

export const PolicyValidateArgs = Schema.Struct({ policy: PolicyArg })

export const ReplayArgs = Schema.Struct({
  ...ProgramFields,
  event_log: Schema.optional(Schema.String.annotations({ description: "the event log text boruna_run returned with record: true" })),
  run_id: Schema.optional(Schema.String.annotations({ description: "a recorded run kept in the server's data directory" })),
  ...LimitFields
})

export const EmptyArgs = Schema.Struct({})

// ---------------------------------------------------------------------------------------------
// outcomes

/** What a tool returns: shown as text, and as JSON (`structuredContent`). */
interface Outcome {
  readonly text: string
  readonly json: Record<string, unknown>
  readonly isError: boolean
}

const invalid = (message: string): McpSchema.InvalidParams => new McpSchema.InvalidParams({ message })

const ok = (text: string, json: Record<string, unknown>): Outcome => ({ text, json, isError: false })
const failed = (text: string, json: Record<string, unknown>): Outcome => ({ text, json, isError: true })

// ---------------------------------------------------------------------------------------------
// the session

interface Session {
  readonly id: string
  readonly options: ServerOptions
  /** capability calls made so far, over all tool calls */
  used: number
  inFlight: number
  readonly recorder: Telemetry.SpanRecorderService
  /** the workflow runner on the data directory's store, built on first use and kept for the session */
  workflows: Effect.Effect<Context.Context<WorkflowServices>, McpSchema.InvalidParams>
}

type WorkflowServices = import("./WorkflowRunner.js").Services

/** A session-wide budget that ran out: a `BudgetExceeded` that says it is the session's. */
class SessionBudgetExceeded extends BudgetExceeded {
  override get message(): string {
    return `session budget exceeded: ${this.capability} refused, the server's --session-budget of ${this.budget} capability call(s) is spent`
  }
}

/**
 * The gateway of one call with the session budget in front: a call the policy lets through counts
 * against the session; once `--session-budget` calls have been made, every later one is refused
 * (`budget_exceeded`) before it reaches the policy's own budget or the handler.
 */
const sessionGateway = (session: Session, policy: Policy, counter: { calls: number }) =>
  Layer.effect(
    Gateway.Gateway,
    Effect.map(Gateway.Gateway, (inner): Gateway.GatewayService => ({
      call: (cap, args, site) =>
        Effect.suspend(() => {
          if (!isAllowed(policy, cap)) return inner.call(cap, args, site)
          const limit = session.options.sessionBudget
          if (limit !== undefined && session.used >= limit) {
            return Effect.fail(new SessionBudgetExceeded({ capability: cap, budget: limit }))
          }
          session.used++
          counter.calls++
          return Effect.tapError(inner.call(cap, args, site), (e) =>
            Effect.sync(() => {
              // refused by the call's own budget: nothing was spent
              if (e._tag === "BudgetExceeded") {
                session.used--
                counter.calls--
              }
            }))
        })
    }))
  ).pipe(Layer.provide(Gateway.layer(policy)))

const handlersFor = (session: Session, policy: Policy): Layer.Layer<Handlers.Handlers, McpSchema.InvalidParams> =>
  session.options.live
    ? Layer.unwrapEffect(Effect.map(Effect.promise(() => import("./Live.js")), (Live) =>
      Layer.mapError(Live.layer(policy), (e) => invalid(`policy: ${e.message}`))))
    : Handlers.demoFromEnv(session.options.env)

// ---------------------------------------------------------------------------------------------
// inputs

interface ProgramInput {
  readonly file: string
  readonly source: string
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false })

/** The program of a call: its `source` text or the file at `path` (under the server's root). */
const programInput = (session: Session, args: { readonly source?: string | undefined; readonly path?: string | undefined }): Effect.Effect<ProgramInput, McpSchema.InvalidParams> =>
  Effect.suspend(() => {
    if (args.source !== undefined && args.path !== undefined) return Effect.fail(invalid("give either source or path, not both"))
    if (args.source !== undefined) {
      const bytes = Buffer.byteLength(args.source, "utf8")
      if (bytes > MAX_SOURCE_BYTES) return Effect.fail(invalid(`source: ${bytes} bytes is more than the limit of ${MAX_SOURCE_BYTES} bytes (1 MiB)`))
      return Effect.succeed({ file: "<source>", source: args.source })
    }
    if (args.path === undefined) return Effect.fail(invalid("give the program as source (text) or path (a .ax file)"))
    const p = args.path
    if (p === "") return Effect.fail(invalid("path: empty"))
    if (!p.endsWith(".ax")) return Effect.fail(invalid(`path: '${p}' is not a .ax source file`))
    const where = underRoot(session, p)
    if (Either.isLeft(where)) return Effect.fail(where.left)
    const real = where.right
    let stat: Fs.Stats
    try {
      stat = Fs.statSync(real)
    } catch (e) {
      return Effect.fail(invalid(`path: cannot read '${p}': ${e instanceof Error ? e.message : String(e)}`))
    }
    if (!stat.isFile()) return Effect.fail(invalid(`path: '${p}' is not a file`))
    if (stat.size > MAX_SOURCE_BYTES) return Effect.fail(invalid(`path: '${p}' is ${stat.size} bytes, more than the limit of ${MAX_SOURCE_BYTES} bytes (1 MiB)`))
    let text: string
    try {
      text = utf8.decode(Fs.readFileSync(real))
    } catch {
      return Effect.fail(invalid(`path: '${p}' is not valid UTF-8 text`))
    }
    return Effect.succeed({ file: p, source: text.startsWith("\uFEFF") ? text.slice(1) : text })
  })

/** `p` (relative to the server's directory) as a real path inside that directory (links followed). */
const underRoot = (session: Session, p: string, label = "path"): Either.Either<string, McpSchema.InvalidParams> => {
  const root = session.options.root
  let real: string
  let realRoot: string
  try {
    realRoot = Fs.realpathSync(root)
    real = Fs.realpathSync(Path.resolve(root, p))
  } catch {
    return Either.left(invalid(`${label}: cannot read '${p}': no such file under ${root}`))
  }
  const rel = Path.relative(realRoot, real)
  if (rel.startsWith("..") || Path.isAbsolute(rel)) return Either.left(invalid(`${label}: '${p}' is outside the server's directory ${root}`))
  return Either.right(real)
}

/** A policy argument as written (shorthand, JSON text or object): the decoded policy and its raw JSON. */
const requestedPolicy = (arg: string | Readonly<Record<string, unknown>>): Effect.Effect<{ readonly policy: Policy; readonly raw: unknown }, McpSchema.InvalidParams> =>
  Effect.suspend(() => {
    if (typeof arg === "string") {
      const t = arg.trim()
      if (t === "deny-all") return Effect.succeed({ policy: denyAll, raw: { default_allow: false } })
      if (t === "allow-all") return Effect.succeed({ policy: allowAll, raw: { default_allow: true } })
      const json = parseJson(arg)
      if (!json.ok) return Effect.fail(invalid(`policy: ${json.where}: ${json.message} (expected "deny-all", "allow-all" or a policy JSON object)`))
      return decodeRaw(json.value)
    }
    return decodeRaw(arg)
  })

const decodeRaw = (raw: unknown) =>
  Either.match(decodePolicy(raw, "policy"), {
    onLeft: (e) => Effect.fail(invalid(e.issues.map((i) => `policy: ${i.path}: ${i.message}`).join("; "))),
    onRight: (policy) => Effect.succeed({ policy, raw })
  })

/** The call's limits: the server's, or smaller ones the call asks for. */
const limitsOf = (
  server: Limits,
  args: { readonly max_steps?: number | undefined; readonly timeout_ms?: number | undefined; readonly max_output_bytes?: number | undefined }
): Effect.Effect<Limits, McpSchema.InvalidParams> => {
  const over: Array<string> = []
  const pick = (name: string, asked: number | undefined, max: number): number => {
    if (asked === undefined) return max
    if (asked > max) over.push(`${name}: ${asked} is more than the server's limit of ${max}`)
    return Math.min(asked, max)
  }
  const l = {
    maxSteps: pick("max_steps", args.max_steps, server.maxSteps),
    timeoutMs: pick("timeout_ms", args.timeout_ms, server.timeoutMs),
    maxOutputBytes: pick("max_output_bytes", args.max_output_bytes, server.maxOutputBytes)
  }
  return over.length > 0 ? Effect.fail(invalid(over.join("; "))) : Effect.succeed(l)
}

// ---------------------------------------------------------------------------------------------
// the per-call summary: the call's boruna.cap spans

interface CallContext {
  /** the `mcp.tool` span of this call (undefined when tracing is off) */
  readonly span: Tracer.Span | undefined
  readonly progress: ((progress: number, message: string) => Effect.Effect<void>) | undefined
}

const spansOfCall = (session: Session, ctx: CallContext): ReadonlyArray<Telemetry.RecordedSpan> => {
  if (ctx.span === undefined) return []
  const all = session.recorder.spans()
  const parent = new Map<string, string | undefined>()
  for (const s of all) parent.set(s.spanId, s.parentSpanId)
  const root = ctx.span.spanId
  const under = (id: string | undefined): boolean => {
    for (let i = 0; id !== undefined && i < 64; i++) {
      if (id === root) return true
      id = parent.get(id)
    }
    return false
  }
  return all.filter((s) => s.traceId === ctx.span!.traceId && under(s.parentSpanId))
}

const summaryOf = (spans: ReadonlyArray<Telemetry.RecordedSpan>) =>
  spans
    .filter((s) => s.name === "boruna.cap")
    .sort((a, b) => (a.startTime < b.startTime ? -1 : a.startTime > b.startTime ? 1 : 0))
    .map((s) => ({
      capability: String(s.attributes["cap.name"]),
      outcome: s.attributes["error.kind"] !== undefined ? String(s.attributes["error.kind"]) : s.status === "error" ? "interrupted" : "ok",
      bytes_in: s.attributes["bytes_in"] ?? null,
      bytes_out: s.attributes["bytes_out"] ?? null,
      budget_remaining: s.attributes["cap.budget_remaining"] ?? null,
      duration_ms: Math.round(Number(s.endTime - s.startTime) / 1e4) / 100
    }))

// ---------------------------------------------------------------------------------------------
// running a program

const diagnosticJson = (d: Diagnostic) => ({
  file: d.file,
  line: d.line,
  col: d.col,
  kind: d.kind,
  code: d.code,
  message: d.message,
  ...(d.suggestion === undefined ? {} : { help: d.suggestion })
})

const compiled = (input: ProgramInput): Either.Either<BytecodeProgram, ReadonlyArray<Diagnostic>> => {
  const r = compileSource(input.file, input.source)
  return r.ok ? Either.right(r.program) : Either.left(r.diagnostics)
}

const compileFailure = (ds: ReadonlyArray<Diagnostic>): Outcome =>
  failed(ds.map(formatDiagnostic).join("\n"), {
    ok: false,
    error: { kind: "compile_error", message: `${ds.length} compile error(s)`, ...(ds[0] === undefined ? {} : { line: ds[0].line, col: ds[0].col }) },
    diagnostics: ds.map(diagnosticJson)
  })

const valueJson = (v: Value): unknown => {
  try {
    return toJson(v)
  } catch {
    return null
  }
}

interface RunResult {
  readonly exit: Exit.Exit<Value, VmError>
  readonly steps: number
  readonly calls: number
  readonly events: ReadonlyArray<Event>
}

/**
 * Run `program` under `services`, bounded by `limits`, sending progress while it runs. The run is
 * `Vm.run` inside `boruna.run` (a child of this call's `mcp.tool` span).
 */
const execute = (
  program: BytecodeProgram,
  file: string,
  limits: Limits,
  services: Layer.Layer<Gateway.Gateway | EventLog.EventLog, McpSchema.InvalidParams>,
  ctx: CallContext,
  counter: { calls: number },
  log: EventLog.EventLogService
): Effect.Effect<RunResult, McpSchema.InvalidParams, Telemetry.TelemetryEnabled> =>
  Effect.gen(function*() {
    let machine: InstanceType<typeof Vm.Machine> | undefined
    const steps = () => machine?.stepCount ?? 0
    const progress = ctx.progress
    let last = -1
    const tick = Effect.suspend(() => {
      const s = steps() + counter.calls
      if (progress === undefined || s <= last) return Effect.void
      last = s
      return progress(s, `steps ${steps()}, capability calls ${counter.calls}`)
    })
    const reporter = progress === undefined
      ? undefined
      : yield* Effect.fork(Effect.repeat(Effect.zipRight(Effect.sleep(Duration.millis(PROGRESS_EVERY_MS)), tick), Schedule.forever))
    const run = Telemetry.withRunSpan(
      Effect.suspend(() => Vm.run(program, { maxSteps: limits.maxSteps, maxWallMs: limits.timeoutMs, onMachine: (m) => void (machine = m) })),
      { "boruna.file": file }
    ).pipe(
      // the VM checks its wall clock in pure code; this bounds a slow capability call too
      Effect.timeoutFail({
        duration: Duration.millis(limits.timeoutMs),
        onTimeout: () => new VmError({ kind: "timeout", message: `wall-clock limit exceeded: ${limits.timeoutMs} ms`, file, line: 0, col: 0 })
      }),
      Effect.provide(services),
      // the run's span is this call's child, not the process's TRACEPARENT
      Effect.provideService(Telemetry.RunParent, undefined)
    )
    const exit = yield* Effect.exit(run)
    if (reporter !== undefined) yield* Fiber.interrupt(reporter)
    if (Exit.isFailure(exit)) {
      const e = Cause.failureOption(exit.cause)
      if (Option.isSome(e) && e.value instanceof McpSchema.InvalidParams) return yield* Effect.fail(e.value)
    }
    return {
      exit: exit as Exit.Exit<Value, VmError>,
      steps: steps(),
      calls: counter.calls,
      events: log.events()
    }
  })

const PROGRESS_EVERY_MS = 50

/** The JSON of a finished run, and its text: the value, or the error with its place. */
const runOutcome = (
  r: RunResult,
  limits: Limits,
  summary: ReturnType<typeof summaryOf>,
  table: string,
  extra: Record<string, unknown>
): Outcome => {
  const common = { steps: r.steps, capability_calls: r.calls, summary, ...extra }
  const trailer = `\nsteps: ${r.steps}, capability calls: ${r.calls}${r.calls > 0 && table !== "" ? `\n${table}` : ""}`
  if (Exit.isSuccess(r.exit)) {
    const text = show(r.exit.value)
    const bytes = Buffer.byteLength(text, "utf8")
    if (bytes > limits.maxOutputBytes) {
      const message = `the result is ${bytes} bytes, more than max_output_bytes (${limits.maxOutputBytes})`
      return failed(`error[output_limit]: ${message}${trailer}`, { ok: false, error: { kind: "output_limit", message }, ...common })
    }
    return ok(text + trailer, { ok: true, value: valueJson(r.exit.value), value_text: text, ...common })
  }
  const e = Cause.failureOption(r.exit.cause)
  const v = Option.getOrUndefined(e)
  const error = v === undefined
    ? { kind: "internal", message: Cause.pretty(r.exit.cause).split("\n")[0] }
    : { kind: v.kind, message: v.message, file: v.file, line: v.line, col: v.col, ...(v.fn === undefined ? {} : { fn: v.fn }) }
  // the CLI's one layout: `file:line:col: error[KIND]: message`
  const where = v !== undefined && v.line > 0 ? `${v.file}:${v.line}:${v.col}: ` : ""
  return failed(`${where}error[${error.kind}]: ${error.message}${trailer}`, { ok: false, error, ...common })
}

// ---------------------------------------------------------------------------------------------
// the tools

type Decoded<S extends Schema.Schema.Any> = Schema.Schema.Type<S>

interface ToolDef<S extends Schema.Schema.AnyNoContext> {
  readonly name: string
  readonly title: string
  readonly description: string
  readonly params: S
  readonly readOnly: boolean
  readonly run: (session: Session, args: Decoded<S>, ctx: CallContext) => Effect.Effect<Outcome, McpSchema.InvalidParams, Telemetry.TelemetryEnabled>
}

const tool = <S extends Schema.Schema.AnyNoContext>(t: ToolDef<S>): ToolDef<Schema.Schema.AnyNoContext> => t as unknown as ToolDef<Schema.Schema.AnyNoContext>

const effectivePolicy = (session: Session, arg: Decoded<typeof RunArgs>["policy"]) =>
  Effect.gen(function*() {
    if (arg === undefined) return Either.right(session.options.ceiling)
    const { policy, raw } = yield* requestedPolicy(arg)
    return narrow(session.options.ceiling, policy, raw, session.options.root)
  })

const recordHeader = (program: BytecodeProgram, policy: Policy, file: string) =>
  EventLogFile.makeHeader({ programHash: programHash(program), policy, sourceFile: file })

const runTool = tool({
  name: "boruna_run",
  title: "Run a .ax program",
  description:
    "Compile and run a .ax program's main under the server's policy ceiling (optionally narrowed by `policy`). " +
    "Returns the value (text and JSON) or the error kind, message and line:col, the steps used and a summary of every capability call. " +
    "With record: true, also the event log (replay it with boruna_replay).",
  params: RunArgs,
  readOnly: false,
  run: (session, args, ctx) =>
    Effect.gen(function*() {
      const input = yield* programInput(session, args)
      const limits = yield* limitsOf(session.options.limits, args)
      const narrowed = yield* effectivePolicy(session, args.policy)
      if (Either.isLeft(narrowed)) {
        const e = narrowed.left
        return failed(`error[ceiling_exceeded]: ${e.message}`, {
          ok: false,
          error: { kind: "ceiling_exceeded", message: e.message },
          beyond: e.beyond,
          ceiling: session.options.ceilingName
        })
      }
      const policy = narrowed.right
      const program = compiled(input)
      if (Either.isLeft(program)) return compileFailure(program.left)
      const header = args.record === true ? recordHeader(program.right, policy, input.file) : undefined
      const runId = args.record === true && session.options.dataDir !== undefined ? `run-${Date.now()}-${randomUUID().slice(0, 8)}` : undefined
      const log = runId === undefined ? EventLog.makeMemory() : yield* openRunLog(session, runId, header!)
      const counter = { calls: 0 }
      const services = sessionGateway(session, policy, counter).pipe(
        Layer.provideMerge(Layer.mergeAll(handlersFor(session, policy), Layer.succeed(EventLog.EventLog, log)))
      )
      const r = yield* execute(program.right, input.file, limits, services, ctx, counter, log).pipe(
        Effect.ensuring(Effect.sync(() => (log as Partial<EventLogFile.LogWriter>).close?.()))
      )
      const spans = spansOfCall(session, ctx)
      const extra: Record<string, unknown> = {
        policy: policyToJson(policy),
        session: { id: session.id, capability_calls: session.used, ...(session.options.sessionBudget === undefined ? {} : { budget: session.options.sessionBudget }) }
      }
      if (header !== undefined) extra.event_log = EventLogFile.formatLog(header, r.events)
      if (runId !== undefined) extra.run_id = runId
      return runOutcome(r, limits, summaryOf(spans), formatTraceTable(spans), extra)
    })
})

const runsDir = (session: Session): string => Path.join(session.options.dataDir!, "runs")

const openRunLog = (session: Session, runId: string, header: EventLogFile.LogHeader) =>
  Effect.suspend(() => {
    try {
      Fs.mkdirSync(runsDir(session), { recursive: true })
    } catch (e) {
      return Effect.fail(invalid(`record: cannot create ${runsDir(session)}: ${e instanceof Error ? e.message : String(e)}`))
    }
    return Either.match(EventLogFile.openWriter(Path.join(runsDir(session), `${runId}.json`), header), {
      onLeft: (e) => Effect.fail(invalid(`record: ${e.message}`)),
      onRight: (w) => Effect.succeed(w)
    })
  })

const checkTool = tool({
  name: "boruna_check",
  title: "Check a .ax program",
  description: "Type-check a .ax program. Returns every diagnostic as JSON: file, line, col, kind, code, message and help (a suggested fix) where there is one.",
  params: CheckArgs,
  readOnly: true,
  run: (session, args) =>
    Effect.map(programInput(session, args), (input) => {
      const r = compileSource(input.file, input.source)
      const ds = r.ok ? [] : r.diagnostics
      return ok(ds.length === 0 ? `${input.file}: no errors` : ds.map(formatDiagnostic).join("\n"), {
        ok: ds.length === 0,
        diagnostics: ds.map(diagnosticJson)
      })
    })
})

const capabilityListTool = tool({
  name: "boruna_capability_list",
  title: "List capabilities",
  description: "The capability namespace (names, ids, versions, aliases, capability_set_hash) and what the server's ceiling grants of it.",
  params: EmptyArgs,
  readOnly: true,
  run: (session) =>
    Effect.sync(() => {
      const r = capabilityReport(session.options.version)
      const granted = grants(session.options.ceiling)
      const json = {
        ...r,
        ceiling: session.options.ceilingName,
        granted: granted.map((g) => ({ capability: g.capability, budget: g.budget ?? null })),
        session_budget: session.options.sessionBudget ?? null
      }
      const text = [
        `capabilities (${r.capabilities.length}): ${r.capabilities.map((c) => c.name).join(", ")}`,
        `capability_set_hash: ${r.capability_set_hash}`,
        `the ceiling (${session.options.ceilingName}) grants: ${granted.length === 0 ? "nothing" : granted.map((g) => g.budget === undefined ? g.capability : `${g.capability} (budget ${g.budget})`).join(", ")}`
      ].join("\n")
      return ok(text, json)
    })
})

const policyValidateTool = tool({
  name: "boruna_policy_validate",
  title: "Validate a policy",
  description: "Check a policy (shorthand, JSON text or object): whether it is valid, the policy with defaults filled in, and whether it stays within the server's ceiling (and if not, what goes beyond it).",
  params: PolicyValidateArgs,
  readOnly: true,
  run: (session, args) =>
    Effect.suspend(() => {
      const issuesOf = (e: McpSchema.InvalidParams) => e.message.split("; ")
      return Effect.match(requestedPolicy(args.policy), {
        onFailure: (e) => ok(`invalid policy:\n${issuesOf(e).join("\n")}`, { valid: false, issues: issuesOf(e) }),
        onSuccess: ({ policy, raw }) => {
          const n = narrow(session.options.ceiling, policy, raw, session.options.root)
          const json = {
            valid: true,
            policy: policyToJson(policy),
            within_ceiling: Either.isRight(n),
            ...(Either.isLeft(n) ? { beyond: n.left.beyond } : { effective: policyToJson(n.right) })
          }
          return ok(Either.isRight(n) ? "valid; within the server's ceiling" : `valid, but ${n.left.message}`, json)
        }
      })
    })
})

const replayTool = tool({
  name: "boruna_replay",
  title: "Replay a recorded run",
  description:
    "Re-run a program against an event log recorded by boruna_run (record: true): no capability reaches the world, every call is answered from the log. " +
    "Returns the verdict (identical, or the first divergence with the expected and actual call and where), drift (program or policy changed) and the program's value or error.",
  params: ReplayArgs,
  readOnly: true,
  run: (session, args, ctx) =>
    Effect.gen(function*() {
      const input = yield* programInput(session, args)
      const limits = yield* limitsOf(session.options.limits, args)
      const text = yield* logText(session, args)
      const recorded = yield* Either.match(EventLogFile.parseLog(text, "event_log"), {
        onLeft: (e) => Effect.fail(invalid(e.message)),
        onRight: (l) => Effect.succeed(l)
      })
      const program = compiled(input)
      if (Either.isLeft(program)) return compileFailure(program.left)
      const drift = Replay.drift(recorded.header, { programHash: programHash(program.right), policy: recorded.header.policy })
      const counter = { calls: 0 }
      const runtime = Replay.runtime(recorded)
      const replayed = yield* Effect.gen(function*() {
        const log = yield* EventLog.EventLog
        const r = yield* execute(program.right, input.file, limits, Layer.succeedContext(yield* Effect.context<Gateway.Gateway | EventLog.EventLog>()), ctx, counter, log)
        const verdict = yield* Replay.verdict
        return { r, verdict }
      }).pipe(Effect.provide(runtime))
      const { r, verdict } = replayed
      const v = verdict._tag === "Identical"
        ? { verdict: "identical", events: verdict.events }
        : {
          verdict: "diverged",
          divergence: {
            index: verdict.divergence.index,
            kind: verdict.divergence.kind,
            expected: verdict.divergence.expected === undefined ? null : Replay.showEvent(verdict.divergence.expected),
            actual: verdict.divergence.actual === undefined ? null : Replay.showEvent(verdict.divergence.actual),
            ...(verdict.divergence.actual?.type === "CapCall" && verdict.divergence.actual.site !== undefined
              ? { at: Replay.formatSite(verdict.divergence.actual.site) }
              : {})
          }
        }
      const spans = spansOfCall(session, ctx)
      const base = runOutcome(r, limits, summaryOf(spans), "", {})
      const lines = [...Replay.formatVerdict(verdict), ...drift.map(Replay.formatDrift)]
      const json = { ...base.json, ...v, drift: drift.map((d) => ({ what: d.what, recorded: d.recorded, current: d.current })) }
      return { text: `${lines.join("\n")}\n${base.text}`, json, isError: verdict._tag === "Diverged" }
    })
})

const logText = (session: Session, args: Decoded<typeof ReplayArgs>): Effect.Effect<string, McpSchema.InvalidParams> =>
  Effect.suspend(() => {
    if (args.event_log !== undefined && args.run_id !== undefined) return Effect.fail(invalid("give either event_log or run_id, not both"))
    if (args.event_log !== undefined) {
      const bytes = Buffer.byteLength(args.event_log, "utf8")
      if (bytes > MAX_LOG_BYTES) return Effect.fail(invalid(`event_log: ${bytes} bytes is more than the limit of ${MAX_LOG_BYTES} bytes`))
      return Effect.succeed(args.event_log)
    }
    if (args.run_id === undefined) return Effect.fail(invalid("give the recorded run as event_log (text) or run_id"))
    if (session.options.dataDir === undefined) return Effect.fail(invalid("run_id: this server keeps no runs (start it with --data-dir)"))
    if (!/^run-[0-9]+-[0-9a-f]{8}$/.test(args.run_id)) return Effect.fail(invalid(`run_id: '${args.run_id}' is not a run id (run-…)`))
    try {
      return Effect.succeed(Fs.readFileSync(Path.join(runsDir(session), `${args.run_id}.json`), "utf8"))
    } catch {
      return Effect.fail(invalid(`run_id: no recorded run '${args.run_id}'`))
    }
  })

// ---------------------------------------------------------------------------------------------
// workflows (src/Workflow*.ts): validate, run, status — never approve (docs/mcp.md)

export const WorkflowValidateArgs = Schema.Struct({
  path: Schema.String.annotations({ description: "a workflow directory (holding workflow.json) or its workflow.json, under the server's directory" })
})

export const WorkflowRunArgs = Schema.Struct({
  path: Schema.String.annotations({ description: "a workflow directory (holding workflow.json) or its workflow.json, under the server's directory" }),
  policy: Schema.optional(PolicyArg),
  inputs: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String }).annotations({ description: "run inputs, name → string" }))
})

export const WorkflowStatusArgs = Schema.Struct({
  run_id: Schema.String.annotations({ description: "the run id boruna_workflow_run returned" })
})

const problemJson = (p: import("./WorkflowFile.js").Problem) => ({
  kind: p.kind,
  path: p.path,
  message: p.message,
  ...(p.step === undefined ? {} : { step: p.step }),
  ...(p.location === undefined ? {} : { file: p.location.file, line: p.location.line, col: p.location.col })
})

const workflowError = (e: { readonly kind: string; readonly message: string; readonly problems?: ReadonlyArray<import("./WorkflowFile.js").Problem> | undefined }): Outcome =>
  failed(`error[${e.kind}]: ${e.message}${e.problems === undefined ? "" : "\n" + e.problems.map((p) => `${p.path}: ${p.message}`).join("\n")}`, {
    ok: false,
    error: { kind: e.kind, message: e.message },
    ...(e.problems === undefined ? {} : { problems: e.problems.map(problemJson) })
  })

const workflowValidateTool = tool({
  name: "boruna_workflow_validate",
  title: "Validate a workflow",
  description: "Check a workflow (workflow.json and every step's source): every problem with its JSON path (and line:col for compile errors), or the steps in the order and waves they run.",
  params: WorkflowValidateArgs,
  readOnly: true,
  run: (session, args) =>
    Effect.gen(function*() {
      const dir = yield* underRoot(session, args.path)
      const [V, WF] = yield* Effect.promise(() => Promise.all([import("./WorkflowValidate.js"), import("./WorkflowFile.js")]))
      return Either.match(V.validateDir(dir), {
        onLeft: (problems) =>
          ok(`${args.path}: ${problems.length} problem(s)\n${problems.map((p) => V.formatProblem(args.path, p)).join("\n")}`, { valid: false, problems: problems.map(problemJson) }),
        onRight: (v) => {
          const waves = WF.waves(v.workflow)
          return ok(`${args.path}: valid workflow ${v.workflow.name} ${v.workflow.version}: ${waves.map((w) => w.join(", ")).join(" → ")}`, {
            valid: true,
            name: v.workflow.name,
            version: v.workflow.version,
            steps: Object.entries(v.workflow.steps).map(([id, st]) => ({ id, kind: st.kind, depends_on: st.depends_on })),
            waves
          })
        }
      })
    })
})

/** A run as a client sees it: status, outputs and what waits for a person — never a token. */
const runResultJson = (r: import("./WorkflowRunner.js").RunResult) => ({
  ok: r.status === "completed" || r.status === "paused",
  run_id: r.runId,
  status: r.status,
  error: r.errorKind === null ? null : { kind: r.errorKind, message: r.error ?? "" },
  pending_approvals: r.pending.map((p) => ({ id: p.id, kind: p.kind, step: p.step, attempt: p.attempt, digest: p.digest, capability: p.capability, call: p.call, required_role: p.required_role })),
  outputs: r.outputs
})

const workflowRunTool = tool({
  name: "boruna_workflow_run",
  title: "Run a workflow",
  description:
    "Validate and run a workflow under the server's ceiling (optionally narrowed by `policy`); waits until it completes, fails or pauses. " +
    "Returns the run id, the status, step outputs and the approvals it waits for. Approvals are given by a person with `boruna workflow approve`, never through this server.",
  params: WorkflowRunArgs,
  readOnly: false,
  run: (session, args) =>
    Effect.gen(function*() {
      const dir = yield* underRoot(session, args.path)
      const narrowed = yield* effectivePolicy(session, args.policy)
      if (Either.isLeft(narrowed)) {
        return failed(`error[ceiling_exceeded]: ${narrowed.left.message}`, { ok: false, error: { kind: "ceiling_exceeded", message: narrowed.left.message }, beyond: narrowed.left.beyond })
      }
      const services = yield* session.workflows
      const Runner = yield* Effect.promise(() => import("./WorkflowRunner.js"))
      const r = yield* Runner.startRun({ path: dir, policy: narrowed.right, inputs: args.inputs ?? {}, live: session.options.live }).pipe(
        Effect.provide(services),
        Effect.either
      )
      if (Either.isLeft(r)) return workflowError(r.left)
      const result = r.right
      // the tokens go to the person who runs the server (its stderr), never to the client
      for (const p of result.pending) {
        const token = result.tokens[p.id]
        if (token === undefined) continue
        const how = p.kind === "call" ? `--call ${p.digest}` : `--step ${p.step}`
        process.stderr.write(`boruna mcp: run ${result.runId} waits for ${p.id}${p.required_role === null ? "" : ` (role ${p.required_role})`}: boruna workflow approve ${result.runId} ${how} --token ${token}\n`)
      }
      const json = runResultJson(result)
      const text = [
        `run ${result.runId}: ${result.status}${result.error === null ? "" : ` (${result.errorKind}: ${result.error})`}`,
        ...result.pending.map((p) => `  waits for ${p.id} (${p.kind}${p.required_role === null ? "" : `, role ${p.required_role}`}): a person approves it with boruna workflow approve`)
      ].join("\n")
      return result.status === "failed" ? failed(text, json) : ok(text, json)
    })
})

const workflowStatusTool = tool({
  name: "boruna_workflow_status",
  title: "Show a workflow run",
  description: "The state of a workflow run: its status, each step's status, attempts, outputs and errors, and the approvals it waits for (without tokens).",
  params: WorkflowStatusArgs,
  readOnly: true,
  run: (session, args) =>
    Effect.gen(function*() {
      const services = yield* session.workflows
      const Runner = yield* Effect.promise(() => import("./WorkflowRunner.js"))
      const v = yield* Effect.either(Effect.provide(Runner.runStatus(args.run_id), services))
      if (Either.isLeft(v)) return workflowError(v.left)
      const { approvals, run, steps } = v.right
      const json = {
        ok: true,
        run_id: run.run_id,
        workflow: { name: run.workflow_name, version: run.workflow_version, hash: run.workflow_hash },
        status: run.status,
        error: run.error_kind === null ? null : { kind: run.error_kind, message: run.error ?? "" },
        created_at: run.created_at,
        updated_at: run.updated_at,
        steps: steps.map((s) => ({
          id: s.step_id,
          kind: s.kind,
          status: s.status,
          attempts: s.attempts,
          output: s.output_json,
          duration_ms: s.duration_ms,
          error: s.error_kind === null ? null : { kind: s.error_kind, message: s.error ?? "" }
        })),
        approvals: approvals.map((a) => ({
          id: a.id,
          kind: a.kind,
          step: a.step_id,
          status: a.status,
          digest: a.digest,
          capability: a.capability,
          call: a.args_rendered,
          required_role: a.required_role,
          approver: a.approver,
          decided_at: a.decided_at
        }))
      }
      const text = [`run ${run.run_id}: ${run.status}`, ...steps.map((s) => `  ${s.step_id}: ${s.status}${s.error === null ? "" : ` (${s.error_kind}: ${s.error})`}`)].join("\n")
      return ok(text, json)
    })
})

export const TOOLS: ReadonlyArray<ToolDef<Schema.Schema.AnyNoContext>> = [
  runTool,
  checkTool,
  capabilityListTool,
  policyValidateTool,
  replayTool,
  workflowValidateTool,
  workflowRunTool,
  workflowStatusTool
]

/**
 * Handlers that count each call against the session budget (`--session-budget`); once it is spent a
 * call is refused (as denied) before its handler runs. For workflow steps, whose gateway is the
 * runner's own.
 */
const sessionHandlers = (session: Session, inner: Handlers.HandlersService): Handlers.HandlersService => {
  const limit = session.options.sessionBudget
  if (limit === undefined) return inner
  const cache = new Map<string, Handlers.Handler>()
  return {
    get: (cap) => {
      const h = inner.get(cap)
      if (h === undefined) return undefined
      let w = cache.get(cap)
      if (w === undefined) {
        w = (args, ctx) =>
          Effect.suspend(() => {
            if (session.used >= limit) {
              return Effect.fail(new HandlerFailure({ message: `session budget exceeded: the server's --session-budget of ${limit} capability call(s) is spent`, denied: true }))
            }
            session.used++
            return h(args, ctx)
          })
        cache.set(cap, w)
      }
      return w
    }
  }
}

/** The workflow runner of a session: the store and engine in the data directory (`dataDirOf`). */
const workflowServices = (session: Session, telemetry: Context.Context<Telemetry.TelemetryEnabled>) =>
  Effect.gen(function*() {
    const options = session.options
    const [Runner, Engine] = yield* Effect.promise(() => Promise.all([import("./WorkflowRunner.js"), import("./WorkflowEngine.js")]))
    const dir = Engine.dataDirOf(options.dataDir, options.env)
    try {
      Fs.mkdirSync(dir, { recursive: true })
    } catch (e) {
      return yield* Effect.fail(invalid(`workflows: cannot create the data directory ${dir}: ${e instanceof Error ? e.message : String(e)}`))
    }
    // the session budget counts the capability calls of workflow steps too
    const base = Runner.makeEnv().handlers
    const env = Runner.makeEnv({ handlers: (policy, live) => Effect.map(base(policy, live), (h) => sessionHandlers(session, h)) })
    return Runner.layer(Engine.sqliteEngine(dir), env).pipe(
      Layer.provide(Layer.succeedContext(telemetry)),
      Layer.mapError((e) => invalid(`workflows: cannot open the run store in ${dir}: ${e instanceof Error ? e.message : String(e)}`))
    )
  })

/** A tool's input schema as JSON Schema (an object schema, as MCP requires). */
export const inputSchema = (s: Schema.Schema.AnyNoContext): Record<string, unknown> => {
  if (SchemaAST.getPropertySignatures(s.ast).length === 0) return { type: "object", properties: {}, additionalProperties: false }
  const j = JSONSchema.make(s) as unknown as Record<string, unknown>
  delete j.$schema
  return j
}

// ---------------------------------------------------------------------------------------------
// dispatch: decode, span, run, answer

const decodeArgs = <S extends Schema.Schema.AnyNoContext>(t: ToolDef<S>, args: unknown): Effect.Effect<Decoded<S>, McpSchema.InvalidParams> =>
  Either.match(Schema.decodeUnknownEither(t.params, { errors: "all", onExcessProperty: "error" })(args ?? {}), {
    onLeft: (e) => Effect.fail(invalid(`${t.name}: invalid arguments: ${schemaIssues(e).map((i) => `${i.path.replace(/^\$\.?/, "") || "arguments"}: ${i.message}`).join("; ")}`)),
    onRight: (a) => Effect.succeed(a as Decoded<S>)
  })

const toResult = (o: Outcome): McpSchema.CallToolResult =>
  new McpSchema.CallToolResult({
    isError: o.isError,
    structuredContent: o.json,
    content: [{ type: "text", text: o.text }, { type: "text", text: JSON.stringify(o.json) }]
  })

/** The headers the protocol shim puts on a tools/call request (from its `_meta`, and its id). */
const HEADER_TRACEPARENT = "traceparent"
const HEADER_TRACESTATE = "tracestate"
const HEADER_REQUEST_ID = "x-boruna-mcp-request-id"
const HEADER_PROTOCOL_VERSION = "x-boruna-mcp-protocol-version"
/** the protocol versions @effect/ai's McpServer supports, newest first (its list is not exported) */
const PROTOCOL_VERSIONS: ReadonlyArray<string> = ["2025-06-18", "2025-03-26", "2024-11-05", "2024-10-07"]

/** A tool result with isError, carried out of the `mcp.tool` span as a failure so the span's status is error. */
class ToolFailed {
  constructor(readonly result: McpSchema.CallToolResult, readonly kind: string) {}
  /** what the span's status message and exception event show: the kind only, never the result (it may hold program data) */
  toString(): string {
    return `tool_error (${this.kind})`
  }
}

interface Telemetered {
  readonly context: Context.Context<Telemetry.TelemetryEnabled | Telemetry.SpanRecorder>
  readonly tracer: Tracer.Tracer
}

const makeCallTool = (
  session: Session,
  server: McpServer.McpServer["Type"],
  telemetry: Telemetered
) =>
(request: typeof McpSchema.CallTool.payloadSchema.Type, options?: { readonly headers?: Readonly<Record<string, string>> }): Effect.Effect<McpSchema.CallToolResult, McpSchema.InvalidParams | McpSchema.InternalError, McpSchema.McpServerClient> => {
  const t = TOOLS.find((x) => x.name === request.name)
  if (t === undefined) {
    return Effect.fail(invalid(`unknown tool '${request.name}' (tools: ${TOOLS.map((x) => x.name).join(", ")})`))
  }
  const headers = options?.headers ?? {}
  const parent = Telemetry.parseTraceparent(headers[HEADER_TRACEPARENT], headers[HEADER_TRACESTATE])
  const token = request._meta?.progressToken
  const progress = token === undefined
    ? undefined
    : (p: number, message: string) =>
      Effect.catchAllCause(server.notifications["notifications/progress"]({ progressToken: token, progress: p, message }), () => Effect.void)
  const requestId = headers[HEADER_REQUEST_ID]
  const attributes: Record<string, unknown> = {
    "mcp.method.name": "tools/call",
    "gen_ai.tool.name": t.name,
    "gen_ai.operation.name": "execute_tool",
    "mcp.session.id": session.id,
    "network.transport": "pipe",
    ...(headers[HEADER_PROTOCOL_VERSION] === undefined ? {} : { "mcp.protocol.version": headers[HEADER_PROTOCOL_VERSION] }),
    ...(requestId === undefined ? {} : { "jsonrpc.request.id": requestId })
  }
  const body = Effect.gen(function*() {
    const span = yield* Effect.orElseSucceed(Effect.currentSpan, () => undefined)
    const args = yield* decodeArgs(t, request.arguments)
    const outcome = yield* t.run(session, args, { span, progress })
    if (!outcome.isError) return toResult(outcome)
    // a failed tool call (isError): error.type `tool_error` as the MCP conventions say, our kind
    // beside it, and the span's status set to error (the call fails inside the span only)
    const kind = (outcome.json.error as { kind?: unknown } | undefined)?.kind
    span?.attribute("error.type", "tool_error")
    if (typeof kind === "string") span?.attribute("boruna.error.kind", kind)
    return yield* Effect.fail(new ToolFailed(toResult(outcome), typeof kind === "string" ? kind : "tool_error"))
  }).pipe(
    Effect.tapError((e) =>
      e instanceof ToolFailed
        ? Effect.void
        : Effect.flatMap(Effect.orElseSucceed(Effect.currentSpan, () => undefined), (s) =>
          Effect.sync(() => {
            // a JSON-RPC error: its code, as the MCP conventions say
            s?.attribute("error.type", String(e.code))
            s?.attribute("rpc.response.status_code", String(e.code))
          }))),
    Effect.withSpan("mcp.tool", parent === undefined ? { kind: "server", attributes, root: true } : { kind: "server", attributes, parent }),
    Effect.catchIf((e): e is ToolFailed => e instanceof ToolFailed, (e) => Effect.succeed(e.result))
  )
  return Effect.acquireUseRelease(
    Effect.sync(() => void session.inFlight++),
    () => body,
    () =>
      Effect.sync(() => {
        // the recorder keeps every finished span; between calls nobody needs them
        if (--session.inFlight === 0) session.recorder.clear()
      })
  ).pipe(
    Effect.catchAllDefect((d) => Effect.fail(new McpSchema.InternalError({ message: `internal error: ${d instanceof Error ? d.message : String(d)} (please report this bug)` }))),
    Effect.provide(telemetry.context),
    Effect.withTracer(telemetry.tracer),
    Effect.withTracerEnabled(true)
  )
}

/**
 * The protocol with each `tools/call` request's `_meta.traceparent` / `tracestate` and JSON-RPC id
 * copied into its headers, which reach the `tools/call` handler (the payload schema keeps only
 * `_meta.progressToken`); and no response to a request the client cancelled (MCP: the receiver
 * of a cancellation does not answer the request; the RPC server would send its interruption).
 */
const withMetaHeaders = Layer.effect(
  RpcServer.Protocol,
  Effect.map(RpcServer.Protocol, (protocol) => {
    const cancelled = new Set<string>()
    let protocolVersion: string | undefined
    return RpcServer.Protocol.of({
      ...protocol,
      send: (clientId, response, transferables) => {
        if (response._tag === "Exit" && cancelled.delete(String(response.requestId))) return Effect.void
        return protocol.send(clientId, response, transferables)
      },
      run: (f) =>
        protocol.run((clientId, message) => {
          if (message._tag !== "Request") return f(clientId, message)
          if (message.tag === "notifications/cancelled") {
            const id = (message.payload as { readonly requestId?: unknown } | undefined)?.requestId
            if (typeof id === "string" || typeof id === "number") cancelled.add(String(id))
            return f(clientId, message)
          }
          if (message.tag === "initialize") {
            // the version McpServer answers with: the client's when it supports it, else its latest
            const asked = (message.payload as { readonly protocolVersion?: unknown } | undefined)?.protocolVersion
            protocolVersion = typeof asked === "string" && PROTOCOL_VERSIONS.includes(asked) ? asked : PROTOCOL_VERSIONS[0]
          }
          if (message.tag !== "tools/call") return f(clientId, message)
          const meta = (message.payload as { readonly _meta?: unknown } | undefined)?._meta
          const headers: Array<[string, string]> = [...(Array.isArray(message.headers) ? message.headers as ReadonlyArray<[string, string]> : [])]
          if (typeof meta === "object" && meta !== null) {
            const m = meta as Record<string, unknown>
            if (typeof m.traceparent === "string") headers.push([HEADER_TRACEPARENT, m.traceparent])
            if (typeof m.tracestate === "string") headers.push([HEADER_TRACESTATE, m.tracestate])
          }
          headers.push([HEADER_REQUEST_ID, String(message.id)])
          if (protocolVersion !== undefined) headers.push([HEADER_PROTOCOL_VERSION, protocolVersion])
          return f(clientId, { ...message, headers })
        })
    })
  })
)

/** The tool registry: `McpServer.make` with our tools and our `tools/call`. */
const registry = (session: Session, telemetry: Telemetered) =>
  Layer.scoped(
    McpServer.McpServer,
    Effect.gen(function*() {
      const base = yield* McpServer.McpServer.make
      const server = McpServer.McpServer.of({ ...base, callTool: (r) => callTool(r) })
      const callTool = makeCallTool(session, server, telemetry)
      // `{ ...base }` took the registry's arrays, so tools added through `base` are listed by `server`
      for (const t of TOOLS) {
        yield* base.addTool({
          tool: new McpSchema.Tool({
            name: t.name,
            title: t.title,
            description: t.description,
            inputSchema: inputSchema(t.params),
            annotations: new McpSchema.ToolAnnotations({ title: t.title, readOnlyHint: t.readOnly, destructiveHint: false, openWorldHint: !t.readOnly && session.options.live })
          }),
          handle: () => Effect.die("boruna tools are dispatched by callTool")
        })
      }
      return McpServer.McpServer.of({
        ...server,
        // the RPC server calls this with (payload, { clientId, headers })
        callTool: callTool as McpServer.McpServer["Type"]["callTool"]
      })
    })
  )

/**
 * The server over any byte stream pair (what `layerStdio` is, plus `_meta` for tools): stdio in
 * `serve`, an in-memory pair in tests.
 */
export const layer = <EIn, RIn, EOut, ROut>(
  options: ServerOptions,
  telemetry: Telemetered,
  io: {
    readonly stdin: Stream.Stream<Uint8Array, EIn, RIn>
    readonly stdout: Sink.Sink<unknown, Uint8Array | string, unknown, EOut, ROut>
  },
  sessionId: string = randomUUID()
): Layer.Layer<McpServer.McpServer | McpSchema.McpServerClient, never, RIn | ROut> => {
  const recorder = Context.get(telemetry.context, Telemetry.SpanRecorder)
  const sessionLayer = Layer.unwrapScoped(Effect.gen(function*() {
    const scope = yield* Effect.scope
    const session: Session = { id: sessionId, options, used: 0, inFlight: 0, recorder, workflows: Effect.dieMessage("workflows: not set up") }
    session.workflows = yield* Effect.cached(
      Effect.flatMap(workflowServices(session, telemetry.context), (l) => Layer.buildWithScope(l, scope)).pipe(
        Effect.provide(telemetry.context),
        Effect.withTracer(telemetry.tracer),
        Effect.withTracerEnabled(true)
      )
    )
    return registry(session, telemetry)
  }))
  return Layer.scopedDiscard(Effect.forkScoped(McpServer.run({ name: "boruna", version: options.version }))).pipe(
    Layer.provideMerge(sessionLayer),
    Layer.provide(withMetaHeaders),
    Layer.provide(RpcServer.layerProtocolStdio({ stdin: io.stdin, stdout: io.stdout as Sink.Sink<void, Uint8Array | string, unknown, EOut, ROut> })),
    Layer.provide(RpcSerialization.layerNdJsonRpc()),
    Layer.provideMerge(Logger.remove(Logger.defaultLogger)),
    Layer.provideMerge(Logger.remove(Logger.prettyLoggerDefault))
  ) as Layer.Layer<McpServer.McpServer | McpSchema.McpServerClient, never, RIn | ROut>
}

/**
 * The client's bytes as whole JSON-RPC lines, each checked before the RPC layer sees it (which
 * would fail on a bad line, losing the other messages read with it, or answer with a defect): a
 * line that is not JSON gets `-32700`, one that is not a JSON-RPC message `-32600`, an unknown
 * method `-32601`, params its method's schema refuses `-32602` — each answered here, as JSON-RPC
 * says, and dropped. A `tools/call` without `arguments` (the SDK omits them for a tool without
 * parameters) gets `{}`.
 */
export const jsonRpcLines = <E, R>(input: Stream.Stream<Uint8Array, E, R>, reply: (line: string) => void): Stream.Stream<Uint8Array, E, R> => {
  const encoder = new TextEncoder()
  const error = (id: unknown, code: number, message: string) => reply(JSON.stringify({ jsonrpc: "2.0", id: id ?? null, error: { code, message } }))
  const check = (m: unknown): unknown => {
    if (typeof m !== "object" || m === null || Array.isArray(m) || (m as { jsonrpc?: unknown }).jsonrpc !== "2.0") {
      error((m as { id?: unknown } | null)?.id, -32600, "Invalid Request: expected a JSON-RPC 2.0 message (an object with jsonrpc \"2.0\")")
      return undefined
    }
    const msg = m as { id?: unknown; method?: unknown; params?: unknown }
    if (msg.method === undefined) return Object.hasOwn(msg, "result") || Object.hasOwn(msg, "error") ? m : (error(msg.id, -32600, "Invalid Request: no method"), undefined)
    const isRequest = msg.id !== undefined && msg.id !== null
    const rpc = typeof msg.method === "string" ? McpSchema.ClientRpcs.requests.get(msg.method) : undefined
    if (rpc === undefined) {
      if (isRequest) error(msg.id, -32601, `Method not found: ${String(msg.method)}`)
      return undefined
    }
    const params = msg.method === "tools/call" && typeof msg.params === "object" && msg.params !== null && (msg.params as { arguments?: unknown }).arguments === undefined
      ? { ...msg.params, arguments: {} }
      : msg.params
    const decoded = Schema.decodeUnknownEither(rpc.payloadSchema as Schema.Schema<unknown, unknown, never>)(params)
    if (Either.isLeft(decoded)) {
      if (isRequest) error(msg.id, -32602, `Invalid params for ${msg.method}: ${schemaIssues(decoded.left).map((i) => `${i.path}: ${i.message}`).join("; ")}`)
      return undefined
    }
    return params === msg.params ? m : { ...msg, params }
  }
  return input.pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.filterMap((line) => {
      if (line.trim() === "") return Option.none()
      let parsed: unknown
      try {
        parsed = JSON.parse(line)
      } catch (e) {
        error(null, -32700, `Parse error: ${e instanceof Error ? e.message : String(e)}`)
        return Option.none()
      }
      if (Array.isArray(parsed)) {
        if (parsed.length === 0) {
          error(null, -32600, "Invalid Request: an empty batch")
          return Option.none()
        }
        const kept = parsed.map(check).filter((x) => x !== undefined)
        return kept.length === 0 ? Option.none() : Option.some(JSON.stringify(kept))
      }
      const kept = check(parsed)
      return kept === undefined ? Option.none() : Option.some(kept === parsed ? line : JSON.stringify(kept))
    }),
    Stream.map((line) => encoder.encode(line + "\n"))
  )
}

/**
 * Serve on stdin/stdout until the client closes stdin. Telemetry (`OTEL_*`, as the CLI) is built
 * here, with the in-memory recorder on for the per-call summaries; the protocol's own machinery is
 * not traced, only tool calls (`mcp.tool` and the run's spans under it).
 */
export const serve = (options: ServerOptions): Effect.Effect<void, Telemetry.TelemetryConfigError> =>
  Effect.scoped(Effect.gen(function*() {
    // the process (src/cli/entry.ts) already built telemetry from the same environment and printed
    // its warnings; this layer adds the local recorder, so its build-time warnings would be repeats
    let building = true
    const stderr = (line: string): void => void (building || process.stderr.write(line + "\n"))
    const context = yield* Layer.build(Telemetry.fromEnv(options.env, { recordLocally: true, stderr }))
    building = false
    const tracer = yield* Effect.tracer
    // stdout is never ended: the process writes its last bytes (and exits) after the server stops
    const stdout = NodeSink.fromWritable(() => process.stdout, (cause) => cause, { endOnDone: false })
    const stdin = jsonRpcLines(NodeStream.stdin, (line) => void process.stdout.write(line + "\n"))
    const server = layer(options, { context, tracer }, { stdin, stdout })
    // the stdio protocol interrupts the fiber that built it when stdin ends: that is this child
    const fiber = yield* Effect.fork(Layer.launch(server).pipe(Effect.withTracerEnabled(false)))
    yield* Fiber.await(fiber)
  }))
