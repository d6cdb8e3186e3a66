// How a unit test compares what a call ended in: a value and an error are
// both plain data to t.same / t.match.

/** `{ value }` when `p` resolves, the error itself when it rejects. */
export async function outcome(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (v) => ({ value: v }),
    (e: unknown) => e,
  )
}
