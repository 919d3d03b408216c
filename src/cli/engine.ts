/**
 * The compiler, the bytecode codec and the VM, loaded on first use (so `--help`, `capability list`
 * and `policy validate` never load them).
 */
import type * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import type { AxbcError, BytecodeProgram } from "../Bytecode.js"
import type { Diagnostic } from "../Diagnostic.js"
import type { EventLog } from "../EventLog.js"
import type { Gateway } from "../Gateway.js"
import type { Value } from "../Value.js"
import type { VmError } from "../Vm.js"

export type Program = BytecodeProgram
export type VmErrorLike = VmError

export interface Engine {
  readonly compileSource: (file: string, source: string) => { ok: true; program: Program } | { ok: false; diagnostics: ReadonlyArray<Diagnostic> }
  readonly encodeAxbc: (program: Program) => string
  /** loads the Schema-based decoder on first use: only `.axbc` input needs it */
  readonly decodeAxbc: (text: string, file: string) => Promise<Either.Either<Program, AxbcError>>
  readonly run: (program: Program, options: { maxSteps?: number; maxWallMs?: number }) => Effect.Effect<Value, VmError, Gateway | EventLog>
}

export const loadEngine = async (): Promise<Engine> => {
  const [compiler, bytecode, vm] = await Promise.all([import("../Compiler.js"), import("../Bytecode.js"), import("../Vm.js")])
  return { compileSource: compiler.compileSource, encodeAxbc: bytecode.encodeAxbc, decodeAxbc: async (text, file) => (await import("../BytecodeDecode.js")).decodeAxbc(text, file), run: vm.Vm.run }
}
