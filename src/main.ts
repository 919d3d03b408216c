/** Process entry of the `boruna` command (bundled by scripts/bundle.mjs into dist/cli/main.js, which bin/boruna loads). See src/cli/entry.ts. */
import { start } from "./cli/entry.js"

start()
