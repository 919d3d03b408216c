/**
 * The driver the parser, the checker and the compiler share for constructs nested deeper than the
 * JavaScript stack allows them to recurse. A pass recurses until it is a slice deeper than where it
 * started, then throws its deep-point marker (carrying its state there). `runSliced` catches it on a
 * shallow stack, lets the pass handle that point on its own (`deep`, which keeps the result by
 * construct), sets the pass back to `start` and runs `root` again, which now finds the kept result
 * where it stopped before. `done` drops the kept results, whatever the outcome.
 */
export const runSliced = <T, S, D>(o: {
  readonly root: () => T
  readonly start: S
  readonly restore: (state: S) => void
  readonly isDeep: (e: unknown) => e is D
  readonly deep: (point: D) => void
  readonly done: () => void
}): T => {
  try {
    for (;;) {
      try {
        return o.root()
      } catch (e) {
        if (!o.isDeep(e)) throw e
        o.deep(e)
        o.restore(o.start)
      }
    }
  } finally {
    o.done()
  }
}
