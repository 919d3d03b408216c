/**
 * Lexer for `.ax` source.
 *
 * - Every token carries a 1-based line and column (UTF-16 code units from the line start).
 * - `//` comments run to the end of the line. Spaces, tabs and a lone `\r` are whitespace; `\r\n`
 *   and `\n` end a line. A run of line ends (with comments and blanks between) is one `nl` token:
 *   the parser decides where a newline separates statements.
 * - String escapes `\\ \" \n \t \r` are decoded; an unknown escape or an unterminated string is a
 *   `lex_error` at its position. Strings may span lines.
 * - An Int literal must fit in signed 64 bits (else `lex_error` at the literal; the token is still
 *   produced with value 0 so parsing carries on without follow-up errors).
 *
 * `record` is a contextual keyword: an identifier token, read as a keyword only at the start of an
 * item (`record Name {`), so reference programs that use `record` as a variable name still parse.
 *
 * Never throws; an unexpected character is reported and skipped.
 */
import { diagnostic, type Diagnostic } from "./Diagnostic.js"
import { I64_MAX } from "./Value.js"

export type TokenKind = "ident" | "kw" | "int" | "float" | "str" | "punct" | "nl" | "eof"

export interface Token {
  readonly kind: TokenKind
  /** keyword / punctuation text, identifier name, or the raw text of a literal */
  readonly text: string
  /** decoded value of an `int` (number when safe, else bigint), `float` or `str` token */
  readonly value: number | bigint | string | undefined
  readonly line: number
  readonly col: number
}

export const KEYWORDS: ReadonlySet<string> = new Set([
  "fn", "let", "mut", "if", "else", "match", "return", "type", "enum", "module", "import",
  "export", "true", "false", "None", "Some", "Ok", "Err", "requires", "ensures", "spawn", "send",
  "receive", "emit", "while", "for", "in"
])

const TWO_CHAR: ReadonlySet<string> = new Set(["!=", "==", "<=", ">=", "&&", "||", "->", "=>", "..", "++", "::"])
const ONE_CHAR: ReadonlySet<string> = new Set(["+", "-", "*", "/", "%", "<", ">", "!", "=", ".", "(", ")", "{", "}", "[", "]", ",", ":", ";"])

const isDigit = (c: number): boolean => c >= 48 && c <= 57
const isIdentStart = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95
const isIdentPart = (c: number): boolean => isIdentStart(c) || isDigit(c)

export interface LexResult {
  readonly tokens: Token[]
  readonly diagnostics: Diagnostic[]
  /** true when lexing stopped early (unterminated string): the parser should not report EOF errors */
  readonly truncated: boolean
}

export const lex = (file: string, source: string): LexResult => {
  const tokens: Token[] = []
  const diagnostics: Diagnostic[] = []
  const n = source.length
  let i = 0
  let line = 1
  let lineStart = 0
  let truncated = false

  const push = (kind: TokenKind, text: string, value: number | bigint | string | undefined, l: number, c: number) => {
    tokens.push({ kind, text, value, line: l, col: c })
  }

  while (i < n) {
    const c = source.charCodeAt(i)
    // whitespace
    if (c === 32 || c === 9 || c === 13 && source.charCodeAt(i + 1) !== 10 || c === 12) {
      i++
      continue
    }
    // line ends (\n or \r\n)
    if (c === 10 || c === 13) {
      const l = line
      const col = i - lineStart + 1
      i += c === 13 ? 2 : 1
      line++
      lineStart = i
      const last = tokens.length > 0 ? tokens[tokens.length - 1] : undefined
      if (last !== undefined && last.kind !== "nl") push("nl", "\n", undefined, l, col)
      continue
    }
    // comments
    if (c === 47 && source.charCodeAt(i + 1) === 47) {
      while (i < n && source.charCodeAt(i) !== 10 && !(source.charCodeAt(i) === 13 && source.charCodeAt(i + 1) === 10)) i++
      continue
    }
    const col = i - lineStart + 1
    const startLine = line
    if (isIdentStart(c)) {
      let j = i + 1
      while (j < n && isIdentPart(source.charCodeAt(j))) j++
      const text = source.slice(i, j)
      push(KEYWORDS.has(text) ? "kw" : "ident", text, undefined, line, col)
      i = j
      continue
    }
    if (isDigit(c)) {
      let j = i + 1
      while (j < n && isDigit(source.charCodeAt(j))) j++
      if (source.charCodeAt(j) === 46 && isDigit(source.charCodeAt(j + 1))) {
        j += 2
        while (j < n && isDigit(source.charCodeAt(j))) j++
        const text = source.slice(i, j)
        push("float", text, Number(text), line, col)
        i = j
        continue
      }
      const text = source.slice(i, j)
      let value: number | bigint
      if (text.length <= 15) {
        value = Number(text)
      } else {
        const big = BigInt(text)
        if (big > I64_MAX) {
          diagnostics.push(diagnostic(file, { line, col }, "lex_error",
            `integer literal ${text} does not fit in a signed 64-bit Int`,
            "the largest Int is 9223372036854775807"))
          value = 0
        } else {
          value = big <= 9007199254740991n ? Number(big) : big
        }
      }
      push("int", text, value, line, col)
      i = j
      continue
    }
    if (c === 34) {
      // string literal
      let j = i + 1
      let out = ""
      let segStart = j
      let closed = false
      while (j < n) {
        const d = source.charCodeAt(j)
        if (d === 34) {
          out += source.slice(segStart, j)
          j++
          closed = true
          break
        }
        if (d === 92) {
          out += source.slice(segStart, j)
          const e = source.charCodeAt(j + 1)
          if (e === 92) out += "\\"
          else if (e === 34) out += "\""
          else if (e === 110) out += "\n"
          else if (e === 116) out += "\t"
          else if (e === 114) out += "\r"
          else if (j + 1 >= n) {
            j++
            segStart = j
            continue
          } else {
            const shown = e === 10 || e === 13 ? "a line break" : `\\${String.fromCharCode(e)}`
            diagnostics.push(diagnostic(file, { line, col: j - lineStart + 1 }, "lex_error",
              `unknown escape ${shown} in string literal`,
              "valid escapes are \\\\ \\\" \\n \\t \\r"))
            if (e === 10 || e === 13) {
              // leave the line break to the generic handling below
              j++
              segStart = j
              continue
            }
          }
          j += 2
          segStart = j
          continue
        }
        if (d === 10 || d === 13) {
          // strings may span lines: keep the text, track positions
          if (d === 13 && source.charCodeAt(j + 1) === 10) {
            out += source.slice(segStart, j) + "\n"
            j += 2
          } else if (d === 13) {
            j++
            continue
          } else {
            out += source.slice(segStart, j + 1)
            j++
          }
          segStart = j
          line++
          lineStart = j
          continue
        }
        j++
      }
      if (!closed) {
        diagnostics.push(diagnostic(file, { line: startLine, col }, "lex_error", "unterminated string literal",
          "close the string with \""))
        truncated = true
        i = n
        break
      }
      push("str", source.slice(i, j), out, startLine, col)
      i = j
      continue
    }
    const two = source.slice(i, i + 2)
    if (TWO_CHAR.has(two)) {
      push("punct", two, undefined, line, col)
      i += 2
      continue
    }
    const one = source[i]
    if (ONE_CHAR.has(one)) {
      push("punct", one, undefined, line, col)
      i++
      continue
    }
    // unexpected character (take a whole surrogate pair so the message shows the character)
    const cp = source.codePointAt(i) ?? c
    const ch = String.fromCodePoint(cp)
    diagnostics.push(diagnostic(file, { line, col }, "lex_error", `unexpected character ${JSON.stringify(ch)}`,
      ch === "&" ? "did you mean `&&`?" : ch === "|" ? "did you mean `||`?" : ch === "'" ? "strings use double quotes" : undefined))
    i += ch.length
  }
  push("eof", "", undefined, line, i - lineStart + 1)
  return { tokens, diagnostics, truncated }
}
