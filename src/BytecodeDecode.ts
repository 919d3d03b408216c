/**
 * Reading `.axbc` files: JSON syntax, format and version gates, a Schema decode whose errors name the
 * JSON path, exact constants, then the verifier. Kept apart from `Bytecode.ts` so that compiling and
 * running source never loads `effect/Schema`.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { AXBC_FORMAT, AXBC_VERSION, AxbcError, type BytecodeProgram, verify, VerifyError } from "./Bytecode.js"
import { CAPABILITIES } from "./Capability.js"
import { jsonPath, parseJson } from "./Json.js"
import type { Value } from "./Value.js"
import { fromJson, ValueJsonError } from "./ValueJson.js"

const NonNegInt = Schema.Int.pipe(Schema.nonNegative())
const capNames = CAPABILITIES.map((c) => c.name)

const FunctionJson = Schema.Struct({
  name: Schema.String,
  arity: NonNegInt,
  locals: NonNegInt,
  capabilities: Schema.Array(Schema.Literal(...capNames)),
  code: Schema.Array(NonNegInt),
  positions: Schema.Array(NonNegInt)
})

const TypeJson = Schema.Union(
  Schema.Struct({ name: Schema.String, kind: Schema.Literal("record"), fields: Schema.Array(Schema.String) }),
  Schema.Struct({
    name: Schema.String,
    kind: Schema.Literal("enum"),
    variants: Schema.Array(Schema.Struct({ name: Schema.String, payload: Schema.Boolean }))
  })
)

const ProgramJson = Schema.Struct({
  format: Schema.Literal(AXBC_FORMAT),
  version: Schema.Literal(AXBC_VERSION),
  name: Schema.String,
  sourceFile: Schema.String,
  sourceHash: Schema.String,
  constants: Schema.Array(Schema.Unknown),
  types: Schema.Array(TypeJson),
  functions: Schema.Array(FunctionJson),
  entry: NonNegInt
})

const decodeProgramJson = Schema.decodeUnknownEither(ProgramJson, { errors: "first", onExcessProperty: "error" })


/** Read and verify an `.axbc` text. `file` names the source in error messages. */
export const decodeAxbc = (text: string, file: string): Either.Either<BytecodeProgram, AxbcError> => {
  const fail = (path: string, reason: string) => Either.left(new AxbcError({ file, path, reason }))
  const parsed = parseJson(text)
  if (!parsed.ok) return fail(parsed.where, parsed.message)
  const json = parsed.value
  if (typeof json !== "object" || json === null || Array.isArray(json)) return fail("$", "not a bytecode file (expected a JSON object)")
  const o = json as Record<string, unknown>
  if (o.format !== AXBC_FORMAT) {
    return fail("$.format", `not a boruna bytecode file: format is ${JSON.stringify(o.format) ?? "missing"}, expected "${AXBC_FORMAT}"`)
  }
  if (o.version !== AXBC_VERSION) {
    return fail("$.version", `unsupported bytecode version ${JSON.stringify(o.version) ?? "(missing)"}: this build reads version ${AXBC_VERSION}`)
  }
  const decoded = decodeProgramJson(json)
  if (Either.isLeft(decoded)) {
    const [issue] = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)
    return fail(jsonPath(issue.path), issue.message)
  }
  const d = decoded.right
  let constants: Array<Value>
  try {
    constants = d.constants.map((c, i) => fromJson(c, `$.constants[${i}]`))
  } catch (e) {
    if (e instanceof ValueJsonError) return fail(e.path, e.reason)
    throw e
  }
  const program: BytecodeProgram = {
    format: AXBC_FORMAT,
    version: AXBC_VERSION,
    name: d.name,
    sourceFile: d.sourceFile,
    sourceHash: d.sourceHash,
    constants,
    types: d.types,
    functions: d.functions,
    entry: d.entry
  }
  try {
    verify(program)
  } catch (e) {
    if (e instanceof VerifyError) return fail(e.path, e.reason)
    throw e
  }
  return Either.right(program)
}

