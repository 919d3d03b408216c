import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import { createHash } from "node:crypto"
import * as AuditChain from "../src/AuditChain.js"
import type { RunRecord } from "../src/EvidenceRecord.js"
import { runFixture, smallRun } from "./EvidenceFixture.js"

const tags = (r: RunRecord) => AuditChain.events(r).map(AuditChain.eventTag)

describe("AuditChain format 1.1", () => {
  it("hashes entries as SHA-256(u64_le(seq) ‖ prev_hash ‖ content_sha256), from 64 zeros", () => {
    const entries = AuditChain.chain([{ StepFailed: { step_id: "a", attempt: 1, error: "boom" } }])
    const e = entries[0]
    expect(e.prev_hash).toBe("0".repeat(64))
    const content = createHash("sha256").update(`{"StepFailed":{"attempt":1,"error":"boom","step_id":"a"}}`).digest("hex")
    expect(e.content_sha256).toBe(content)
    const seq = Buffer.alloc(8)
    const expected = createHash("sha256").update(Buffer.concat([seq, Buffer.from("0".repeat(64)), Buffer.from(content)])).digest("hex")
    expect(e.entry_hash).toBe(expected)
    expect(AuditChain.head(entries)).toBe(expected)
    expect(AuditChain.head([])).toBe("0".repeat(64))
  })

  it("projects a run to the issue's events, in order", () => {
    expect(tags(smallRun())).toEqual([
      "WorkflowStarted",
      "StepStarted", "CapabilityInvoked", "StepCompleted",
      "StepStarted", "ApprovalRequested", "ApprovalGranted", "StepCompleted",
      "StepStarted", "CapabilityInvoked", "CapabilityInvoked", "StepCompleted",
      "WorkflowCompleted"
    ])
    const ev = AuditChain.events(smallRun())
    const call = ev[2] as { CapabilityInvoked: { capability: string; sequence: number; decision: string; reexecuted: boolean } }
    expect(call.CapabilityInvoked).toMatchObject({ capability: "net.fetch", sequence: 0, decision: "allowed", reexecuted: false })
    const granted = ev[6] as { ApprovalGranted: { approver: string } }
    expect(granted.ApprovalGranted.approver).toBe("alice")
  })

  it("is a pure projection: the same record always gives the same chain", () => {
    const a = AuditChain.encode(AuditChain.project(smallRun()))
    const b = AuditChain.encode(AuditChain.project(smallRun()))
    expect(a).toBe(b)
    // and a record read back from JSON (as a store would give it) too
    const copy = JSON.parse(JSON.stringify(smallRun())) as RunRecord
    expect(AuditChain.encode(AuditChain.project(copy))).toBe(a)
  })

  it("projecting a record again after a crash and resume adds nothing: a resumed run whose record is the same has the same chain", () => {
    // a run that crashed after its first step, then resumed: the record holds the first step once
    // (its calls journaled) and the rest after resuming; the projection cannot count anything twice
    const full = smallRun()
    const before = { ...full, status: "running" as const, steps: full.steps.slice(0, 1), approvals: [], endedAt: undefined, durationMs: undefined }
    const partial = AuditChain.project(before)
    const resumed = AuditChain.project(full)
    expect(resumed.slice(0, partial.length)).toEqual(partial)
    expect(resumed.filter((e) => AuditChain.eventTag(e.event) === "CapabilityInvoked")).toHaveLength(3)
    expect(AuditChain.project(full)).toEqual(resumed)
  })

  it("a re-executed call is marked, a failed step ends in StepFailed, and skipped steps leave no entry", () => {
    const r = runFixture({
      steps: [
        { id: "a", source: `fn main() -> Int !{time.now} { time.now() }` },
        { id: "b", source: `fn main() -> Int { let x: Int = 1 / 0\n x }`, dependsOn: ["a"] },
        { id: "c", source: `fn main() -> Int { 1 }`, dependsOn: ["b"] }
      ]
    })
    const step = r.steps[0]
    const attempt = step.attempts[0]
    const rec: RunRecord = {
      ...r,
      steps: [{ ...step, attempts: [{ ...attempt, calls: attempt.calls.map((c) => ({ ...c, reexecuted: true })) }] }, ...r.steps.slice(1)]
    }
    const ev = AuditChain.events(rec)
    expect(ev.map(AuditChain.eventTag)).toEqual([
      "WorkflowStarted", "StepStarted", "CapabilityInvoked", "StepCompleted", "StepStarted", "StepFailed", "WorkflowCompleted"
    ])
    expect((ev[2] as { CapabilityInvoked: { reexecuted: boolean } }).CapabilityInvoked.reexecuted).toBe(true)
    expect((ev[5] as { StepFailed: { error: string } }).StepFailed.error).toMatch(/division/)
    expect((ev[6] as { WorkflowCompleted: { status: string } }).WorkflowCompleted.status).toBe("failed")
  })

  it("a paused run has no WorkflowCompleted; a pending approval is requested but not decided", () => {
    const r = smallRun()
    const paused: RunRecord = {
      ...r,
      status: "paused",
      steps: [r.steps[0], { ...r.steps[1], status: "awaiting_approval", attempts: [], outputJson: undefined, outputHash: undefined }, { ...r.steps[2], status: "pending", attempts: [] }],
      approvals: [{ ...r.approvals[0], decision: "pending", approver: undefined, decidedAt: undefined }]
    }
    expect(tags(paused)).toEqual(["WorkflowStarted", "StepStarted", "CapabilityInvoked", "StepCompleted", "StepStarted", "ApprovalRequested"])
  })

  it("verify accepts the chain and names the first entry of any change", () => {
    const entries = AuditChain.project(smallRun())
    expect(AuditChain.verify(entries)).toMatchObject({ ok: true, problems: [], entries: 13 })
    // change one event's content
    const changed = entries.map((e, i) => (i === 2 ? { ...e, event: { ...e.event, CapabilityInvoked: { ...(e.event as { CapabilityInvoked: object }).CapabilityInvoked, decision: "denied" } } as AuditChain.AuditEvent } : e))
    const r1 = AuditChain.verify(changed)
    expect(r1.ok).toBe(false)
    expect(r1.problems[0]).toMatchObject({ sequence: 2 })
    expect(r1.problems[0].reason).toMatch(/content_sha256/)
    // drop an entry
    const dropped = [...entries.slice(0, 4), ...entries.slice(5)].map((e, i) => (i >= 4 ? { ...e, sequence: i } : e))
    expect(AuditChain.verify(dropped).problems[0]).toMatchObject({ sequence: 4 })
    // reorder two entries
    const swapped = [...entries]
    ;[swapped[3], swapped[4]] = [swapped[4], swapped[3]]
    expect(AuditChain.verify(swapped).ok).toBe(false)
    // truncating the tail keeps a valid chain: the head (which the manifest records) changes
    expect(AuditChain.verify(entries.slice(0, 5)).head).not.toBe(AuditChain.head(entries))
  })

  it("encode → decode round-trips; decode names the JSON path of a bad field", () => {
    const entries = AuditChain.project(smallRun())
    const text = AuditChain.encode(entries)
    const back = AuditChain.decode(JSON.parse(text))
    expect(Either.getOrThrow(back)).toEqual(entries)
    expect(AuditChain.encode(Either.getOrThrow(back))).toBe(text)
    const bad = JSON.parse(text) as Array<{ event: { StepStarted?: { attempt: unknown } } }>
    bad[1].event.StepStarted!.attempt = "one"
    const r = AuditChain.decode(bad)
    expect(Either.isLeft(r) && r.left.path).toBe("$[1].event.StepStarted.attempt")
    const unknown = JSON.parse(text) as Array<{ event: unknown }>
    unknown[0].event = { Nope: {} }
    const u = AuditChain.decode(unknown)
    expect(Either.isLeft(u) && u.left.message).toMatch(/unknown audit event 'Nope'/)
  })
})

describe("AuditChain redaction", () => {
  it("blanks the strings of one entry, keeps its commitment, and the chain still verifies", () => {
    const entries = AuditChain.project(smallRun())
    const red = AuditChain.redact(entries, 6, { reason: "personal data" })
    const e = red[6]
    expect(e.event).toEqual({ ApprovalGranted: { step_id: "approve", digest: "[REDACTED]", approver: "[REDACTED]", decided_at: "[REDACTED]" } })
    expect(e.redacted).toEqual({ content_sha256: entries[6].content_sha256, reason: "personal data", fields: ["digest", "approver", "decided_at"] })
    expect(e.entry_hash).toBe(entries[6].entry_hash)
    const v = AuditChain.verify(red)
    expect(v).toMatchObject({ ok: true, redacted: [6] })
    expect(v.head).toBe(AuditChain.head(entries))
    // and survives the file
    expect(AuditChain.verify(Either.getOrThrow(AuditChain.decode(JSON.parse(AuditChain.encode(red))))).ok).toBe(true)
  })

  it("--field blanks one field only; a second redaction adds to the first", () => {
    const entries = AuditChain.project(smallRun())
    const once = AuditChain.redact(entries, 6, { field: "approver", reason: "GDPR" })
    expect(once[6].event).toMatchObject({ ApprovalGranted: { approver: "[REDACTED]", step_id: "approve" } })
    expect((once[6].event as { ApprovalGranted: { digest: string } }).ApprovalGranted.digest).toMatch(/^[0-9a-f]{64}$/)
    const twice = AuditChain.redact(once, 6, { field: "ApprovalGranted.decided_at", reason: "timing" })
    expect(twice[6].redacted).toMatchObject({ fields: ["approver", "decided_at"], reason: "GDPR; timing" })
    expect(AuditChain.verify(twice).ok).toBe(true)
  })

  it("refuses what it cannot do, with a clear message", () => {
    const entries = AuditChain.project(smallRun())
    expect(() => AuditChain.redact(entries, 99, { reason: "x" })).toThrow(/no audit entry 99/)
    expect(() => AuditChain.redact(entries, 6, { reason: " " })).toThrow(/needs a reason/)
    expect(() => AuditChain.redact(entries, 6, { field: "nope", reason: "x" })).toThrow(/has no field nope/)
    expect(() => AuditChain.redact(entries, 2, { field: "sequence", reason: "x" })).toThrow(/not a string/)
  })

  it("a redaction marker does not launder edits: a blanked field must really be blank, and the commitment must match", () => {
    const entries = AuditChain.project(smallRun())
    const red = AuditChain.redact(entries, 6, { field: "approver", reason: "GDPR" })
    const forged = red.map((e, i) => (i === 6 ? { ...e, event: { ApprovalGranted: { ...(e.event as { ApprovalGranted: object }).ApprovalGranted, approver: "mallory" } } as AuditChain.AuditEvent } : e))
    expect(AuditChain.verify(forged).problems[0]).toMatchObject({ sequence: 6, reason: "redacted field approver is not blanked" })
    const moved = red.map((e, i) => (i === 6 ? { ...e, redacted: { ...e.redacted!, content_sha256: "0".repeat(64) } } : e))
    expect(AuditChain.verify(moved).ok).toBe(false)
  })
})
