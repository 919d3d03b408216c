/** The shape of the pre-parse table in `argv.ts`: one entry per command line (`run`, `policy simulate`). */
export interface Spec {
  /** options taking a value (`--policy P` or `--policy=P`) */
  readonly values: ReadonlyArray<string>
  /** boolean flags (an optional `true`/`false`/… word after them is their value, as in @effect/cli) */
  readonly flags: ReadonlyArray<string>
  /** names of the positional arguments */
  readonly args: ReadonlyArray<string>
}

/** What a command module adds to the table: its commands, and its groups with their subcommands. */
export interface CommandSpecs {
  readonly commands: Readonly<Record<string, Spec>>
  readonly groups: Readonly<Record<string, ReadonlyArray<string>>>
}
