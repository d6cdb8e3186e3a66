// How the validation tests check a refusal: a ValidationError naming the op,
// the field, the offending value and the batch index, in its message too.
import type { Test } from 'tap'
import { ValidationError } from '../../dist/errors.js'

export interface Want {
  op: string
  field: string
  value?: unknown
  index?: number
}

/** What `fn` threw (undefined when it returned). */
export function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (e) {
    return e
  }
  return undefined
}

/** Whether `e` is a ValidationError; if not, one failure saying what came instead. */
export function isRefusal(t: Test, e: unknown, field: string): e is ValidationError {
  if (e instanceof ValidationError) return true
  t.fail(`expected a ValidationError on ${field}, got ${e === undefined ? 'success' : String(e)}`)
  return false
}

export function checkRefusal(t: Test, e: unknown, want: Want): void {
  if (!isRefusal(t, e, want.field)) return
  t.equal(e.code, 'ERR_TSPROXY_INVALID')
  t.equal(e.op, want.op, `op ${want.op}`)
  t.equal(e.field, want.field, `field ${want.field}`)
  if ('value' in want) t.strictSame(e.value, want.value, 'value is the offending input')
  t.equal(e.index, want.index, want.index === undefined ? 'no batch index' : `batch index ${want.index}`)
  t.ok(e.message.startsWith(want.op) && e.message.includes(want.field), 'the message names op and field')
}
