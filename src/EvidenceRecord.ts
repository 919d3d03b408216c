/**
 * The run record evidence is made from: a plain, in-memory description of one finished (or
 * paused) workflow run — the workflow as it ran (its file text and every step source), the run
 * policy, the inputs, and per step its attempts, each with the VM event log of that attempt, the
 * capability calls with their decisions, the approvals and triggers. The workflow runner's store
 * fills it (`EvidenceStore.ts` style adapters); tests build it by running programs directly.
 *
 * Everything evidence derives — the audit chain, the bundle, the attestation — is a pure function
 * of this record, so the same record always yields the same bytes.
 */
import { createHash } from "node:crypto"
import type { Event } from "./Event.js"
import type { Policy } from "./Policy.js"
import type { Value } from "./Value.js"
import { canonicalJson, type Json, toJson } from "./ValueJson.js"

export type RunStatus = "running" | "paused" | "completed" | "failed" | "cancelled"
export type StepStatus = "pending" | "running" | "completed" | "failed" | "skipped" | "awaiting_approval" | "awaiting_trigger" | "cancelled"
export type StepKind = "source" | "approval_gate" | "external_trigger" | "typescript"

/** The policy's decision on one capability call. */
export type Decision = "allowed" | "denied" | "budget_exceeded" | "approval_required"

/** One capability call of one attempt, as the runner journaled it. */
export interface CallRecord {
  /** ordinal of the call in the attempt's VM run (0-based) */
  readonly seq: number
  readonly capability: string
  /** `sha256:` digest of the canonical JSON of the arguments */
  readonly argsDigest: string
  readonly decision: Decision
  /** `sha256:` digest of the canonical JSON of the result (or of the error), when there is one */
  readonly resultDigest?: string | undefined
  /** the call was in flight when the process died and ran again (at-least-once) */
  readonly reexecuted: boolean
  /** ISO-8601 times, when the runner recorded them (the report's waterfall) */
  readonly startedAt?: string | undefined
  readonly endedAt?: string | undefined
  readonly error?: string | undefined
}

export interface AttemptRecord {
  readonly attempt: number
  readonly status: "completed" | "failed" | "running" | "paused"
  readonly startedAt?: string | undefined
  readonly endedAt?: string | undefined
  /** the VM event log of this attempt: exactly what replay needs */
  readonly events: ReadonlyArray<Event>
  readonly calls: ReadonlyArray<CallRecord>
  /** the policy this attempt ran under (the run policy narrowed to the step) */
  readonly policy: Policy
  /** `programHash` of the compiled step (source steps) */
  readonly programHash?: string | undefined
  /** the attempt's output as Value JSON (completed) */
  readonly output?: Json | undefined
  readonly outputHash?: string | undefined
  /** `kind: message` of the failure (failed) */
  readonly error?: string | undefined
  readonly errorKind?: string | undefined
}

export interface ApprovalRecord {
  /** `gate`: an approval_gate step; `call`: one capability call of a step */
  readonly kind: "gate" | "call"
  readonly stepId: string
  readonly attempt?: number | undefined
  readonly seq?: number | undefined
  readonly capability?: string | undefined
  /** digest of what is approved: the call (run, step, attempt, seq, capability, args) or the gate */
  readonly digest: string
  readonly role?: string | undefined
  /** a readable rendering of the call's arguments, when the runner kept one */
  readonly rendering?: string | undefined
  readonly requestedAt?: string | undefined
  readonly decision: "granted" | "denied" | "pending"
  readonly approver?: string | undefined
  readonly reason?: string | undefined
  readonly decidedAt?: string | undefined
}

export interface TriggerRecord {
  readonly stepId: string
  /** `sha256:` digest of the payload's canonical JSON */
  readonly payloadHash: string
  readonly receivedAt?: string | undefined
}

export interface StepRecord {
  readonly id: string
  readonly kind: StepKind
  /** the source path as written in workflow.json (source steps) */
  readonly source?: string | undefined
  /** the file name the source was compiled under (it is part of the program hash) */
  readonly sourceFile?: string | undefined
  readonly dependsOn: ReadonlyArray<string>
  readonly status: StepStatus
  readonly attempts: ReadonlyArray<AttemptRecord>
  /** the resolved inputs (local name → Value JSON) */
  readonly inputs: Readonly<Record<string, Json>>
  /** the step's final output (Value JSON) and its hash, when completed */
  readonly output?: Json | undefined
  readonly outputHash?: string | undefined
  readonly error?: string | undefined
  readonly startedAt?: string | undefined
  readonly endedAt?: string | undefined
  readonly durationMs?: number | undefined
}

export interface RunRecord {
  readonly runId: string
  readonly workflow: {
    readonly name: string
    readonly version: string
    /** the runner's workflow hash */
    readonly hash: string
    /** workflow.json, verbatim */
    readonly text: string
    /** every step source, by the path written in workflow.json */
    readonly sources: Readonly<Record<string, string>>
  }
  readonly policy: Policy
  /** run inputs: name → Value JSON */
  readonly inputs: Readonly<Record<string, Json>>
  readonly status: RunStatus
  readonly startedAt: string
  readonly endedAt?: string | undefined
  readonly durationMs?: number | undefined
  readonly borunaVersion: string
  /** steps in execution (topological) order */
  readonly steps: ReadonlyArray<StepRecord>
  readonly approvals: ReadonlyArray<ApprovalRecord>
  readonly triggers: ReadonlyArray<TriggerRecord>
}

// ---------------------------------------------------------------------------------------------
// hashing helpers (one definition, used by the chain, the bundle and the verifier)

/** Lower-case hex SHA-256 of text (UTF-8) or bytes. */
export const sha256Hex = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex")

/** `sha256:<hex>` of text or bytes. */
export const sha256Tagged = (data: string | Uint8Array): string => "sha256:" + sha256Hex(data)

/** `sha256:` digest of any JSON by its canonical form (keys sorted, no whitespace). */
export const jsonDigest = (j: unknown): string => sha256Tagged(canonicalJson(j))

/** The hash of an output Value: SHA-256 over its compact JSON, as the runner stores it. */
export const valueJsonHash = (j: Json): string => sha256Tagged(canonicalJson(j))

export const valueHash = (v: Value): string => valueJsonHash(toJson(v))

/** Hash of the run inputs. */
export const inputsHash = (inputs: Readonly<Record<string, Json>>): string => jsonDigest(inputs)
