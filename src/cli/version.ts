/** The boruna version (kept equal to package.json's by test/Cli.test.ts). */
export const VERSION = "0.1.0"
