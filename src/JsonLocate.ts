/**
 * Where a JSON text stops being JSON. V8's `JSON.parse` messages give a position for some syntax
 * errors ("… at position 23") and none for others ("Unexpected token 'x', "…" is not valid JSON",
 * "Unexpected end of JSON input"); this small scanner finds the offset itself so that every
 * syntax error in JSON we read (policies, bytecode, logs, tapes) is reported at a line and column.
 */

class Stop {
  constructor(readonly at: number) {}
}

/** The offset of the first character that makes `text` invalid JSON, or undefined if it parses. */
export const jsonErrorOffset = (text: string): number | undefined => {
  let i = 0
  const ws = (): void => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++
  }
  const expect = (word: string): void => {
    for (const ch of word) {
      if (text[i] !== ch) throw new Stop(i)
      i++
    }
  }
  const string = (): void => {
    i++ // the opening quote
    for (;;) {
      if (i >= text.length) throw new Stop(i)
      const c = text.charCodeAt(i)
      if (c === 0x22) return void i++
      if (c < 0x20) throw new Stop(i)
      if (c === 0x5c) {
        const e = text[i + 1]
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) throw new Stop(i)
          i += 6
        } else if (e !== undefined && "\"\\/bfnrt".includes(e)) i += 2
        else throw new Stop(i)
      } else i++
    }
  }
  const number = (): void => {
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400))
    if (m === null) throw new Stop(i)
    i += m[0].length
  }
  const value = (depth: number): void => {
    if (depth > 2000) throw new Stop(i)
    ws()
    const c = text[i]
    if (c === "{") {
      i++
      ws()
      if (text[i] === "}") return void i++
      for (;;) {
        ws()
        if (text[i] !== "\"") throw new Stop(i)
        string()
        ws()
        expect(":")
        value(depth + 1)
        ws()
        if (text[i] === ",") i++
        else if (text[i] === "}") return void i++
        else throw new Stop(i)
      }
    }
    if (c === "[") {
      i++
      ws()
      if (text[i] === "]") return void i++
      for (;;) {
        value(depth + 1)
        ws()
        if (text[i] === ",") i++
        else if (text[i] === "]") return void i++
        else throw new Stop(i)
      }
    }
    if (c === "\"") return string()
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return number()
    if (c === "t") return expect("true")
    if (c === "f") return expect("false")
    if (c === "n") return expect("null")
    throw new Stop(i)
  }
  try {
    value(0)
    ws()
    return i < text.length ? i : undefined
  } catch (e) {
    if (e instanceof Stop) return e.at
    throw e
  }
}

/** `line L, column C` (1-based; columns count UTF-16 units, as the compiler's do) of an offset. */
export const lineCol = (text: string, offset: number): { readonly line: number; readonly col: number } => {
  const upto = text.slice(0, offset)
  return { line: upto.split("\n").length, col: offset - upto.lastIndexOf("\n") }
}
