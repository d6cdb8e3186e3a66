// The assertions the kernel tests share: how a kernel refusal is checked.
import type { Test } from 'tap'
import { NetlinkError } from '../../../dist/index.js'

/** What `p` rejected with (undefined when it resolved). */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  )
}

/** `p` rejects with a NetlinkError matching `fields`; the error. */
export async function rejects(t: Test, p: Promise<unknown>, fields: Record<string, unknown>): Promise<NetlinkError | undefined> {
  const err = await rejection(p)
  t.ok(err instanceof NetlinkError, `a NetlinkError (${(err as Error)?.message})`)
  t.match(err, fields)
  return err as NetlinkError
}
