/** `boruna capability list [--json]`: the capability namespace and its `capability_set_hash`. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import { capabilitySetHash, sortedCapabilities } from "../Capability.js"

export const PROTOCOL_VERSION = 1

/** Annotation aliases that grant several capabilities at once (`!{fs}` ⇒ fs.read and fs.write). */
export const SHARED_ALIASES: ReadonlyArray<{ readonly alias: string; readonly grants: ReadonlyArray<string> }> = [
  { alias: "fs", grants: ["fs.read", "fs.write"] }
]

export const report = (version: string) => ({
  boruna_version: version,
  protocol_version: PROTOCOL_VERSION,
  capability_set_hash: capabilitySetHash(),
  capabilities: sortedCapabilities().map((c) => ({
    name: c.name,
    id: c.id,
    version: c.version,
    aliases: [...c.aliases],
    shared_aliases: SHARED_ALIASES.filter((s) => s.grants.includes(c.name)).map((s) => s.alias)
  })),
  shared_aliases: SHARED_ALIASES.map((s) => ({ alias: s.alias, grants: [...s.grants] }))
})

export const formatText = (r: ReturnType<typeof report>): string =>
  [
    `boruna ${r.boruna_version}`,
    `capability_set_hash: ${r.capability_set_hash}`,
    `protocol_version: ${r.protocol_version}`,
    "",
    `capabilities (${r.capabilities.length}):`,
    ...r.capabilities.map((c) => {
      const shared = r.shared_aliases.filter((s) => c.shared_aliases.includes(s.alias))
        .map((s) => `${s.alias}, with ${s.grants.filter((g) => g !== c.name).join(", ")}`)
      const all = [...c.aliases, ...shared]
      return `  ${c.name.padEnd(14)} id ${String(c.id).padStart(2)}  v${c.version}${all.length > 0 ? `  (aliases: ${all.join("; ")})` : ""}`
    }),
    "",
    ...r.shared_aliases.map((s) => `annotation alias ${s.alias}: grants ${s.grants.join(" and ")} (not a policy rule key: write a rule for each)`)
  ].join("\n")

export const makeCommand = (version: string) =>
  Command.make("capability").pipe(
    Command.withDescription("The capability namespace"),
    Command.withSubcommands([
      Command.make(
        "list",
        { json: Options.boolean("json").pipe(Options.withDescription("print JSON")) },
        ({ json }) => {
          const r = report(version)
          return Console.log(json ? JSON.stringify(r, null, 2) : formatText(r))
        }
      ).pipe(Command.withDescription("List capabilities: names, ids, versions, aliases and the capability_set_hash"))
    ])
  )
