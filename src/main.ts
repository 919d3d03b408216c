/** Process entry of the `boruna` command (bin/boruna loads dist/src/main.js). See src/cli/entry.ts. */
import { start } from "./cli/entry.js"

start()
