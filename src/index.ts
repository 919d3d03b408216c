/**
 * boruna's library API for TypeScript users: the capability gateway and its policy, the typed
 * capability services, telemetry, the `.ax` toolchain and VM, record and replay, and durable
 * workflows (docs/workflows.md): `WorkflowTs` (workflows written in TypeScript), `WorkflowRunner`
 * (run, answer, resume, cancel, the engine layer), `WorkflowEngine` (the SQLite and in-memory
 * engines; their packages load when the layer is built), `WorkflowStore` (the run records) and
 * `Approval` (digests and tokens).
 *
 *   import { Capabilities, Policy, Telemetry } from "boruna"
 *
 * Each module is also importable on its own (`boruna/Gateway`, `boruna/Vm`, …), which keeps the
 * start-up cost to what a program uses.
 */
export * as Approval from "./Approval.js"
export * as Capabilities from "./Capabilities.js"
export * as Capability from "./Capability.js"
export * as Compiler from "./Compiler.js"
export * as Errors from "./Errors.js"
export * as EventLog from "./EventLog.js"
export * as EventLogFile from "./EventLogFile.js"
export * as Gateway from "./Gateway.js"
export * as Handlers from "./Handlers.js"
export * as NetTape from "./NetTape.js"
export * as Policy from "./Policy.js"
export * as Replay from "./Replay.js"
export * as Simulate from "./Simulate.js"
export * as Telemetry from "./Telemetry.js"
export * as Value from "./Value.js"
export * as Vm from "./Vm.js"
export * as WorkflowEngine from "./WorkflowEngine.js"
export * as WorkflowFile from "./WorkflowFile.js"
export * as WorkflowRunner from "./WorkflowRunner.js"
export * as WorkflowStore from "./WorkflowStore.js"
export * as WorkflowTs from "./WorkflowTs.js"
