/**
 * Compile-time diagnostics: every error carries file, line, column, kind, a stable code and a
 * message, plus a suggestion where one exists. `boruna check --json` prints them as an array.
 */
export type CompileErrorKind =
  | "lex_error"
  | "parse_error"
  | "type_error"
  | "capability_error"
  | "non_exhaustive_match"
  | "unknown_identifier"
  | "unknown_field"
  | "missing_field"
  | "duplicate_field"
  /** a bug in boruna itself (the compiler produced code its own verifier rejects): never a user's mistake */
  | "internal_error"

/** Stable codes, one per kind. */
export const DIAGNOSTIC_CODES: Readonly<Record<CompileErrorKind, string>> = {
  lex_error: "E001",
  parse_error: "E002",
  type_error: "E003",
  capability_error: "E004",
  non_exhaustive_match: "E005",
  unknown_identifier: "E006",
  unknown_field: "E007",
  missing_field: "E008",
  duplicate_field: "E009",
  internal_error: "E900"
}

export interface Diagnostic {
  readonly file: string
  readonly line: number
  readonly col: number
  readonly kind: CompileErrorKind
  readonly code: string
  readonly message: string
  readonly suggestion?: string
}

export const diagnostic = (
  file: string,
  pos: { readonly line: number; readonly col: number },
  kind: CompileErrorKind,
  message: string,
  suggestion?: string
): Diagnostic =>
  suggestion === undefined
    ? { file, line: pos.line, col: pos.col, kind, code: DIAGNOSTIC_CODES[kind], message }
    : { file, line: pos.line, col: pos.col, kind, code: DIAGNOSTIC_CODES[kind], message, suggestion }

/** `file:line:col: error[kind]: CODE message` (+ `  help: suggestion`): the layout of every CLI error. */
export const formatDiagnostic = (d: Diagnostic): string =>
  `${d.file}:${d.line}:${d.col}: error[${d.kind}]: ${d.code} ${d.message}` +
  (d.suggestion ? `\n  help: ${d.suggestion}` : "")
