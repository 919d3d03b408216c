/**
 * The compiler, the bytecode codec and the VM, as the CLI uses them. (Until the backend's modules
 * land this loads them by a computed specifier; see git log.)
 */
import type * as Effect from "effect/Effect"
import type { Diagnostic } from "../Diagnostic.js"
import type { EventLog } from "../EventLog.js"
import type { Gateway } from "../Gateway.js"
import type { Value } from "../Value.js"

export type Program = object

export interface VmErrorLike {
  readonly _tag: "VmError"
  readonly kind: string
  readonly message: string
  readonly file: string
  readonly line: number
  readonly col: number
}

export interface Engine {
  readonly compileSource: (file: string, source: string) => { ok: true; program: Program } | { ok: false; diagnostics: Array<Diagnostic> }
  readonly encodeAxbc: (program: Program) => string
  readonly decodeAxbc: (text: string, file: string) => Program
  readonly run: (program: Program, options: { maxSteps?: number; maxWallMs?: number }) => Effect.Effect<Value, VmErrorLike, Gateway | EventLog>
}

const load = (spec: string): Promise<Record<string, unknown>> => import(spec) as Promise<Record<string, unknown>>

export const loadEngine = async (): Promise<Engine> => {
  const [compiler, bytecode, vm] = await Promise.all([load("../Compiler.js"), load("../Bytecode.js"), load("../Vm.js")])
  const Vm = vm.Vm as { run: Engine["run"] } | undefined
  return {
    compileSource: compiler.compileSource as Engine["compileSource"],
    encodeAxbc: bytecode.encodeAxbc as Engine["encodeAxbc"],
    decodeAxbc: bytecode.decodeAxbc as Engine["decodeAxbc"],
    run: Vm !== undefined ? Vm.run : (vm.run as Engine["run"])
  }
}
