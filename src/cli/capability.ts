/** `boruna capability list [--json]`: the capability namespace and its `capability_set_hash`. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import { capabilitySetHash, sortedCapabilities } from "../Capability.js"

export const PROTOCOL_VERSION = 1

export const report = (version: string) => ({
  boruna_version: version,
  protocol_version: PROTOCOL_VERSION,
  capability_set_hash: capabilitySetHash(),
  capabilities: sortedCapabilities().map((c) => ({ name: c.name, id: c.id, version: c.version, aliases: [...c.aliases] }))
})

export const formatText = (r: ReturnType<typeof report>): string =>
  [
    `boruna ${r.boruna_version}`,
    `capability_set_hash: ${r.capability_set_hash}`,
    `protocol_version: ${r.protocol_version}`,
    "",
    `capabilities (${r.capabilities.length}):`,
    ...r.capabilities.map((c) =>
      `  ${c.name.padEnd(14)} id ${String(c.id).padStart(2)}  v${c.version}${c.aliases.length > 0 ? `  (aliases: ${c.aliases.join(", ")})` : ""}`
    )
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
