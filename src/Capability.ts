/**
 * The capability namespace of Boruna 1.0 (plus `step.input`): canonical names, numeric ids,
 * contract versions and the aliases accepted in `!{…}` annotations.
 */
import { createHash } from "node:crypto"

export const CAPABILITIES = [
  { id: 0, name: "net.fetch", version: "1", aliases: ["net"] },
  { id: 1, name: "fs.read", version: "1", aliases: [] },
  { id: 2, name: "fs.write", version: "1", aliases: [] },
  { id: 3, name: "db.query", version: "1", aliases: ["db"] },
  { id: 4, name: "ui.render", version: "1", aliases: ["ui"] },
  { id: 5, name: "time.now", version: "1", aliases: ["time"] },
  { id: 6, name: "random", version: "1", aliases: [] },
  { id: 7, name: "llm.call", version: "1", aliases: ["llm"] },
  { id: 8, name: "actor.spawn", version: "1", aliases: ["actor_spawn"] },
  { id: 9, name: "actor.send", version: "1", aliases: ["actor_send"] },
  { id: 10, name: "step.input", version: "1", aliases: ["step_input"] }
] as const

export type CapabilityName = (typeof CAPABILITIES)[number]["name"]
export interface CapabilityInfo {
  readonly id: number
  readonly name: CapabilityName
  readonly version: string
  readonly aliases: ReadonlyArray<string>
}

const byName = new Map<string, CapabilityInfo>(CAPABILITIES.map((c) => [c.name, c]))
const byId = new Map<number, CapabilityInfo>(CAPABILITIES.map((c) => [c.id, c]))

export const isCapabilityName = (s: string): s is CapabilityName => byName.has(s)
export const capabilityById = (id: number): CapabilityInfo | undefined => byId.get(id)
export const capabilityByName = (name: string): CapabilityInfo | undefined => byName.get(name)

/**
 * Resolve a name written in a `!{…}` annotation to the canonical capabilities it grants:
 * a canonical name or alias gives one; `fs` gives both `fs.read` and `fs.write`; unknown → [].
 */
export const resolveAnnotation = (written: string): ReadonlyArray<CapabilityName> => {
  if (written === "fs") return ["fs.read", "fs.write"]
  const c = byName.get(written) ?? CAPABILITIES.find((c) => (c.aliases as ReadonlyArray<string>).includes(written))
  return c ? [c.name] : []
}

/** Canonical names sorted ascending: the order used for hashing and listing. */
export const sortedCapabilities = (): ReadonlyArray<CapabilityInfo> =>
  [...CAPABILITIES].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))

/**
 * `capability_set_hash`: `"sha256:" + hex(SHA-256(Σ name + "\t" + version + "\n"))` over the
 * sorted canonical list — the same bytes the reference hashes, so the values agree.
 */
export const capabilitySetHash = (): string => {
  const h = createHash("sha256")
  for (const c of sortedCapabilities()) h.update(`${c.name}\t${c.version}\n`)
  return "sha256:" + h.digest("hex")
}
