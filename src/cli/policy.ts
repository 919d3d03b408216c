/** `boruna policy validate FILE.json [--json]`: decode a policy and print its hash and rules. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { CAPABILITIES } from "../Capability.js"
import { budgetOf, isAllowed, type Policy, policyHash, policyToJson } from "../Policy.js"
import { parsePolicyFile, readText } from "./inputs.js"
import * as Simulate from "./simulate.js"

export const describePolicy = (file: string, p: Policy): string =>
  [
    `policy ${file} is valid`,
    `  policy_hash: ${policyHash(p)}`,
    `  default: ${p.default_allow ? "allow" : "deny"}`,
    ...CAPABILITIES.map((c) => {
      const allowed = isAllowed(p, c.name)
      const b = budgetOf(p, c.name)
      return `  ${c.name.padEnd(12)} ${allowed ? "allow" : "deny"}${allowed && b !== undefined ? ` (budget ${b})` : ""}`
    })
  ].join("\n")

const validate = Command.make(
  "validate",
  {
    file: Args.text({ name: "FILE" }).pipe(Args.withDescription("a policy JSON file")),
    json: Options.boolean("json").pipe(Options.withDescription("print the policy with every default filled in, and its hash, as JSON"))
  },
  ({ file, json }) =>
    Effect.gen(function*() {
      const text = yield* readText(file)
      const p = yield* parsePolicyFile(file, text)
      yield* Console.log(
        json ? JSON.stringify({ valid: true, file, policy_hash: policyHash(p), policy: policyToJson(p) }, null, 2) : describePolicy(file, p)
      )
    })
).pipe(Command.withDescription("Check a policy file (unknown fields, aliases and bad values are errors naming their JSON path)"))

export const command = Command.make("policy").pipe(
  Command.withDescription("Policy files"),
  Command.withSubcommands([validate, Simulate.command])
)
