import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import {
  type BytecodeProgram,
  disassemble,
  encodeAxbc,
  Op,
  programHash,
  verify,
  VerifyError
} from "../src/Bytecode.js"
import { decodeAxbc } from "../src/BytecodeDecode.js"
import { compileSource } from "../src/Compiler.js"
import * as EventLog from "../src/EventLog.js"
import * as Gateway from "../src/Gateway.js"
import * as Handlers from "../src/Handlers.js"
import { allowAll } from "../src/Policy.js"
import { show } from "../src/Value.js"
import { run, runPure } from "../src/Vm.js"

const compile = (source: string): BytecodeProgram => {
  const r = compileSource("p.ax", source)
  if (!r.ok) throw new Error(r.diagnostics.map((d) => d.message).join("\n"))
  return r.program
}

const rich = `type User { name: String, age: Int }
enum Shape { Dot, Circle(Float) }
fn big() -> Int { 9223372036854775807 }
fn now() -> Int !{time.now} { time.now() }
fn main() -> List<String> {
  let u = User { name: "a\\n\\"b\\"", age: 3 }
  let s = [Shape::Dot, Circle(2.5)]
  let m = {"k": -0.0}
  [u.name, int_to_string(big()), __builtin_float_to_string(1000000000000000000000.0), int_to_string(list_len(s))]
}`

const decodeOk = (text: string): BytecodeProgram => Either.getOrThrow(decodeAxbc(text, "p.axbc"))
const decodeErr = (text: string) => {
  const r = decodeAxbc(text, "p.axbc")
  if (Either.isRight(r)) throw new Error("expected a decode error")
  return r.left
}

/** Replace one function's fields in the JSON of a program. */
const editFn = (p: BytecodeProgram, name: string, edit: (f: Record<string, unknown>) => void): string => {
  const j = JSON.parse(encodeAxbc(p)) as { functions: Array<Record<string, unknown>> }
  const f = j.functions.find((x) => x.name === name)!
  edit(f)
  return JSON.stringify(j)
}

describe("encodeAxbc / decodeAxbc", () => {
  it("round-trips a program exactly: same JSON, same hash, same result", () => {
    const p = compile(rich)
    const text = encodeAxbc(p)
    const q = decodeOk(text)
    expect(encodeAxbc(q)).toBe(text)
    expect(programHash(q)).toBe(programHash(p))
    expect(show(runPure(q, { entry: "main" }))).toBe(show(runPure(p)))
    expect(show(runPure(q))).toBe(`["a\\n\\"b\\"", "9223372036854775807", "1e21", "2"]`)
    expect(p.sourceHash).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(q.functions.find((f) => f.name === "now")?.capabilities).toEqual(["time.now"])
  })
  it("keeps Ints beyond 2^53 exact in the constant pool", () => {
    const text = encodeAxbc(compile(rich))
    expect(text).toContain(`{"Int":"9223372036854775807"}`)
  })
  it("programHash changes with the code", () => {
    const p = compile(rich)
    const q = decodeOk(editFn(p, "big", (f) => void ((f.code as Array<number>).splice(0, 0, Op.NOP))))
    expect(programHash(q)).not.toBe(programHash(p))
  })
  it("bad magic and bad version get clear errors", () => {
    const p = JSON.parse(encodeAxbc(compile(rich))) as Record<string, unknown>
    const magic = decodeErr(JSON.stringify({ ...p, format: "LLMB" }))
    expect(magic.path).toBe("$.format")
    expect(magic.message).toContain("not a boruna bytecode file")
    const version = decodeErr(JSON.stringify({ ...p, version: 2 }))
    expect(version.path).toBe("$.version")
    expect(version.message).toContain("unsupported bytecode version 2")
    expect(decodeErr("[1, 2]").message).toContain("expected a JSON object")
  })
  it("schema errors name the JSON path", () => {
    const p = compile(rich)
    const e = decodeErr(editFn(p, "big", (f) => void ((f.code as Array<unknown>)[1] = "x")))
    expect(e.path).toBe(`$.functions[${p.functions.findIndex((f) => f.name === "big")}].code[1]`)
    const c = JSON.parse(encodeAxbc(p)) as { constants: Array<unknown> }
    c.constants[0] = { Int: 1.5 }
    expect(decodeErr(JSON.stringify(c)).path).toBe("$.constants[0].Int")
    const syntax = decodeErr("{\n  \"format\": ")
    // Node ≥ 22 reports a position (then: line/column); Node 20 does not
    expect(syntax.path).toMatch(/^(\$|line 2, column \d+)$/)
    expect(syntax.reason).toContain("invalid JSON")
  })
})

describe("verify: hand-edited bytecode cannot escape", () => {
  const p = compile(`fn main() -> Int { let x = 1\n x + 2 }`)
  const bad = (code: Array<number>, extra: Partial<{ locals: number }> = {}) =>
    decodeErr(editFn(p, "main", (f) => {
      f.code = code
      if (extra.locals !== undefined) f.locals = extra.locals
    }))
  it("unknown opcodes, missing operands, out-of-range operands", () => {
    expect(bad([250]).reason).toContain("unknown opcode 250")
    expect(bad([Op.CONST]).reason).toContain("missing operands")
    expect(bad([Op.CONST, 999, Op.RET]).reason).toContain("no constant #999")
    expect(bad([Op.LOAD, 5, Op.RET]).reason).toContain("no local #5")
    expect(bad([Op.CALL, 7, 0, Op.RET]).reason).toContain("no function #7")
    expect(bad([Op.CAP, 99, 0, Op.RET]).reason).toContain("unknown capability id 99")
    expect(bad([Op.BUILTIN, 999, Op.RET]).reason).toContain("no builtin #999")
  })
  it("jumps must land on instructions; stack depth must agree and never underflow", () => {
    expect(bad([Op.CONST, 0, Op.JMP, 1]).reason).toContain("not an instruction")
    expect(bad([Op.ADD, Op.RET]).reason).toContain("needs 2 operands")
    expect(bad([Op.CONST, 0, Op.CONST, 0, Op.JMPT, 10, Op.CONST, 0, Op.CONST, 0, Op.RET]).reason).toContain("differs")
    expect(bad([Op.CONST, 0, Op.POP]).reason).toContain("must end with")
  })
  it("verify reports the maximum operand depth of each function", () => {
    expect(verify(p)).toEqual([1]) // `x + 2` compiles to one fused ADDLK
    expect(() => verify({ ...p, entry: 3 })).toThrow(VerifyError)
  })
})

describe("capability opcodes are re-checked at run time", () => {
  const src = `fn pure() -> Int { 1 + 1 }
fn main() -> Int !{time.now} { pure() }`
  const layer = Gateway.layer(allowAll).pipe(Layer.provideMerge(Layer.mergeAll(Handlers.demo, EventLog.memory)))

  it.effect("a CAP added by hand to a function that did not declare it is refused before the gateway", () =>
    Effect.gen(function*() {
      const p = compile(src)
      // replace the body of pure() with a call to time.now()
      const edited = decodeOk(editFn(p, "pure", (f) => void (f.code = [Op.CAP, 5, 0, Op.RET])))
      expect(disassemble(edited)).toContain("CAP       5 0  ; time.now")
      const r = yield* Effect.either(run(edited))
      expect(Either.isLeft(r) && r.left.kind).toBe("capability_error")
      expect(Either.isLeft(r) && r.left.message).toContain("`pure` calls the capability time.now")
      const log = yield* Effect.map(EventLog.EventLog, (l) => l.events())
      expect(log).toEqual([])
    }).pipe(Effect.provide(layer)))

  it.effect("the same CAP in a function that declares the capability goes through", () =>
    Effect.gen(function*() {
      const p = compile(src)
      const edited = decodeOk(editFn(p, "pure", (f) => {
        f.code = [Op.CAP, 5, 0, Op.RET]
        f.capabilities = ["time.now"]
      }))
      expect(yield* run(edited)).toBe(1700000000)
    }).pipe(Effect.provide(layer)))

  it("declaring an unknown capability name is a decode error at its path", () => {
    const p = compile(src)
    const e = decodeErr(editFn(p, "pure", (f) => void (f.capabilities = ["time.later"])))
    expect(e.path).toBe("$.functions[0].capabilities[0]")
  })
})
