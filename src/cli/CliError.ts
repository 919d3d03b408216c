/**
 * How a command fails: one `CliError` carrying the error kind, a one-line message, an optional
 * source location, optional `help:` hints and the process exit code. `main.ts` prints it on stderr
 * in the layout compilers use (no stack trace) and exits with `exitCode`:
 *
 *   file:line:col: error[KIND]: message        (or `error[KIND]: message` when there is no location)
 *     help: hint
 *
 * `boruna check` prints compile diagnostics in the same layout (`Diagnostic.formatDiagnostic`).
 *
 * Exit codes (documented in docs/cli.md and README.md):
 *   0   success
 *   1   the program failed at run time (integer_overflow, division_by_zero, index_out_of_bounds,
 *       contract_violation, runtime_error, capability_error, …)
 *   2   usage error (bad command line, unknown option, bad option value, unknown file extension)
 *   3   invalid input: compile errors, an invalid .axbc, an invalid policy file, an unreadable or
 *       unwritable file, an invalid telemetry setting in the environment
 *   4   refused by policy: denied, budget_exceeded, approval_required
 *   5   a resource limit was hit: step_limit, stack_overflow, timeout
 *   75  paused: a workflow run waits for an approval or a trigger (boruna workflow; docs/workflows.md)
 *   70  internal error (a defect in boruna itself)
 *   130 / 143  interrupted by SIGINT / SIGTERM
 */
import * as Data from "effect/Data"

export const ExitCode = {
  ok: 0,
  runtime: 1,
  usage: 2,
  input: 3,
  policy: 4,
  limit: 5,
  internal: 70,
  paused: 75,
  sigint: 130,
  sigterm: 143
} as const

export interface Location {
  readonly file: string
  readonly line: number
  readonly col: number
}

export class CliError extends Data.TaggedError("CliError")<{
  readonly kind: string
  readonly message: string
  readonly exitCode: number
  readonly location?: Location
  /** `help:` lines printed under the error line */
  readonly help?: ReadonlyArray<string>
  /** further lines (e.g. every compile diagnostic after the first) printed the same way */
  readonly more?: ReadonlyArray<CliError>
  /** already reported on stderr (e.g. by @effect/cli's usage printer): only the exit code remains */
  readonly reported?: boolean
}> {}

const POLICY_KINDS: ReadonlySet<string> = new Set(["denied", "budget_exceeded", "approval_required"])
const LIMIT_KINDS: ReadonlySet<string> = new Set(["step_limit", "stack_overflow", "timeout"])

/** The exit code of a run-time error kind. */
export const exitCodeOfKind = (kind: string): number =>
  POLICY_KINDS.has(kind) ? ExitCode.policy : LIMIT_KINDS.has(kind) ? ExitCode.limit : ExitCode.runtime

export const usage = (message: string): CliError => new CliError({ kind: "usage", message, exitCode: ExitCode.usage })
export const input = (kind: string, message: string, location?: Location): CliError =>
  new CliError(location === undefined ? { kind, message, exitCode: ExitCode.input } : { kind, message, exitCode: ExitCode.input, location })

/** `file:line:col: error[KIND]: message` (or `error[KIND]: message`) — exactly one line per error. */
export const formatLine = (e: { readonly kind: string; readonly message: string; readonly location?: Location | undefined }): string => {
  const msg = e.message.replace(/\s*\n\s*/g, "; ")
  return e.location === undefined
    ? `error[${e.kind}]: ${msg}`
    : `${e.location.file}:${e.location.line}:${e.location.col}: error[${e.kind}]: ${msg}`
}

const withHelp = (e: CliError): ReadonlyArray<string> => [formatLine(e), ...(e.help ?? []).map((h) => `  help: ${h.replace(/\s*\n\s*/g, "; ")}`)]

/** Every line of an error: itself and its `help:` lines, then the same for each of `more`. */
export const formatLines = (e: CliError): ReadonlyArray<string> => [...withHelp(e), ...(e.more ?? []).flatMap(withHelp)]
