import { describe, expect, it } from "@effect/vitest"
import { lex, type Token } from "../src/Lexer.js"

const kinds = (src: string) => lex("t.ax", src).tokens.map((t) => (t.kind === "punct" || t.kind === "kw" ? t.text : t.kind))
const tok = (src: string, i = 0): Token => lex("t.ax", src).tokens[i]

describe("Lexer", () => {
  it("gives every token a 1-based line and column", () => {
    const { tokens, diagnostics } = lex("t.ax", "fn main() {\n  let x = 42\n}")
    expect(diagnostics).toEqual([])
    const at = (text: string) => tokens.find((t) => t.text === text)
    expect(at("fn")).toMatchObject({ line: 1, col: 1, kind: "kw" })
    expect(at("main")).toMatchObject({ line: 1, col: 4, kind: "ident" })
    expect(at("{")).toMatchObject({ line: 1, col: 11 })
    expect(at("let")).toMatchObject({ line: 2, col: 3 })
    expect(at("42")).toMatchObject({ line: 2, col: 11, kind: "int", value: 42 })
    expect(at("}")).toMatchObject({ line: 3, col: 1 })
    expect(tokens[tokens.length - 1].kind).toBe("eof")
  })

  it("skips comments and collapses runs of line breaks into one nl token", () => {
    expect(kinds("a // comment\n\n\n// more\nb")).toEqual(["ident", "nl", "ident", "eof"])
    expect(kinds("// only a comment")).toEqual(["eof"])
  })

  it("accepts CRLF line endings and treats a lone CR as whitespace", () => {
    const { tokens, diagnostics } = lex("t.ax", "a\r\nb\r\n  c\rd")
    expect(diagnostics).toEqual([])
    expect(tokens.map((t) => [t.kind, t.line, t.col])).toEqual([
      ["ident", 1, 1], ["nl", 1, 2], ["ident", 2, 1], ["nl", 2, 2], ["ident", 3, 3], ["ident", 3, 5], ["eof", 3, 6]
    ])
  })

  it("decodes string escapes", () => {
    expect(tok(String.raw`"a\nb\t\"q\"\\\r"`).value).toBe("a\nb\t\"q\"\\\r")
    expect(tok(`"multi\nline" x`, 1)).toMatchObject({ kind: "ident", line: 2, col: 7 })
  })

  it("reports an unknown escape at the backslash", () => {
    const { diagnostics } = lex("t.ax", `let s = "ab\\q"`)
    expect(diagnostics).toHaveLength(1)
    expect(diagnostics[0]).toMatchObject({ kind: "lex_error", code: "E001", line: 1, col: 12, file: "t.ax" })
    expect(diagnostics[0].message).toContain("\\q")
  })

  it("reports an unterminated string at its opening quote", () => {
    const r = lex("t.ax", `fn main() {\n  "abc\n}`)
    expect(r.diagnostics).toHaveLength(1)
    expect(r.diagnostics[0]).toMatchObject({ kind: "lex_error", line: 2, col: 3, message: "unterminated string literal" })
    expect(r.truncated).toBe(true)
  })

  it("keeps Int literals exact and rejects those beyond i64", () => {
    expect(tok("9007199254740993").value).toBe(9007199254740993n)
    expect(tok("9223372036854775807").value).toBe(9223372036854775807n)
    expect(tok("123").value).toBe(123)
    const r = lex("t.ax", "x = 9223372036854775808")
    expect(r.diagnostics).toHaveLength(1)
    expect(r.diagnostics[0]).toMatchObject({ kind: "lex_error", line: 1, col: 5 })
  })

  it("lexes floats only with digits on both sides of the dot", () => {
    expect(tok("3.25")).toMatchObject({ kind: "float", value: 3.25 })
    expect(kinds("1.x")).toEqual(["int", ".", "ident", "eof"])
    expect(kinds(".5")).toEqual([".", "int", "eof"])
  })

  it("lexes multi-character operators longest first", () => {
    expect(kinds("a != b == c <= d >= e && f || g -> => .. ++ :: !{")).toEqual([
      "ident", "!=", "ident", "==", "ident", "<=", "ident", ">=", "ident", "&&", "ident", "||", "ident",
      "->", "=>", "..", "++", "::", "!", "{", "eof"
    ])
  })

  it("distinguishes keywords from identifiers (`record` is contextual: an identifier token)", () => {
    expect(lex("t.ax", "fn fnx record result Some type").tokens.map((t) => t.kind)).toEqual(["kw", "ident", "ident", "ident", "kw", "kw", "eof"])
  })

  it("reports and skips unexpected characters without stopping", () => {
    const r = lex("t.ax", "a @ b & c")
    expect(r.diagnostics.map((d) => [d.col, d.kind])).toEqual([[3, "lex_error"], [7, "lex_error"]])
    expect(r.diagnostics[1].suggestion).toContain("&&")
    expect(r.tokens.filter((t) => t.kind === "ident")).toHaveLength(3)
  })
})
