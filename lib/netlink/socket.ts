// A netlink socket as the families in lib/ use it: batches in, one result per
// operation out, kernel errors as NetlinkError.
import { NetlinkError, type NetlinkErrorInit } from '../errors.js'
import { native, type Codec, type Codecs, type NativeResult, type NativeSocket } from '../native.js'
import type { GenlRawFamily } from '../native/genl.js'

export type Outcome = { ok: true } | { ok: false; error: NetlinkError }

/** Operations encoded per turn of the event loop in a large batch. */
export const SLICE = 2048

/** Lets timers and I/O run before going on with CPU work. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

export class NetlinkSocket {
  readonly #socket: NativeSocket
  /** Calls begun and not yet ended (close() waits for them). */
  #calls = 0
  #drained: (() => void) | undefined
  /** Set by close(): no new call may begin. */
  #closing: Promise<void> | undefined
  /** The native socket is closed. */
  #closed = false

  private constructor(socket: NativeSocket) {
    this.#socket = socket
  }

  static open(protocol: number, op: string): NetlinkSocket {
    try {
      return new NetlinkSocket(new native.NetlinkSocket(protocol))
    } catch (e) {
      const errno = (e as { errno?: number }).errno ?? 0
      throw new NetlinkError({ errno, op, message: (e as Error).message })
    }
  }

  /** close() has been called. */
  get closed(): boolean {
    return this.#closing !== undefined
  }

  /**
   * Runs one call of a handle, from its first request to its last: it begins
   * now (or rejects with EBADF if close() was called), and close() waits for it
   * to end, so the requests it makes after an await (a header read first, a
   * batch in slices, a dump per service) still go out. Every public method of
   * a handle runs as one, and composes private methods, not public ones.
   */
  call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closing) return Promise.reject(closedError(op))
    return this.#track(fn)
  }

  #track<T>(fn: () => Promise<T>): Promise<T> {
    this.#calls++
    let p: Promise<T>
    try {
      p = fn()
    } catch (e) {
      p = Promise.reject(e)
    }
    return p.finally(() => this.#end())
  }

  #end(): void {
    if (--this.#calls === 0) this.#drained?.()
  }

  /**
   * Runs a batch; results line up with `ops`. A large batch is encoded and
   * handed to the kernel in slices, with the event loop let through between
   * them: the kernel works on one slice while the next is encoded, and timers
   * and sockets keep running during a cold sync of 100k operations. A reply
   * the native decoder could not read whole comes back as its operation's
   * EBADMSG result, like any kernel error. `whole`: never sliced (an
   * nf_tables transaction must reach the kernel as one batch).
   */
  async execute<C extends Codec>(codec: C, family: number, ops: Codecs[C]['op'][], op: string, whole = false): Promise<NativeResult<Codecs[C]['record']>[]> {
    // After close(), only calls begun before it still send (a handle sends only inside a call).
    if (this.#closed || (this.#closing && this.#calls === 0)) throw closedError(op)
    if (whole || ops.length <= SLICE) return this.#track(() => this.#socket.execute(codec, family, ops))
    return this.#track(async () => {
      const pending: Promise<NativeResult<Codecs[C]['record']>[]>[] = []
      for (let i = 0; i < ops.length; i += SLICE) {
        if (i > 0) await yieldToLoop()
        pending.push(this.#socket.execute(codec, family, ops.slice(i, i + SLICE)))
      }
      return (await Promise.all(pending)).flat()
    })
  }

  /** Runs one operation and returns its records; a kernel error throws. */
  async request<C extends Codec>(codec: C, family: number, wire: Codecs[C]['op'], op: string): Promise<Codecs[C]['record'][]> {
    const [result] = await this.execute(codec, family, [wire], op)
    throwIfFailed(result!, op)
    return result!.records
  }

  /** Every call begun before it ends first (requests already queued included); later calls fail with EBADF. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#calls > 0) await new Promise<void>((resolve) => (this.#drained = resolve))
      this.#closed = true
      await this.#socket.close()
    })()
    return this.#closing
  }
}

function closedError(op: string): NetlinkError {
  return new NetlinkError({ errno: 9, op, message: 'EBADF: the socket is closed' })
}

export function throwIfFailed(result: NativeResult<unknown>, op: string, index?: number): void {
  if (result.error !== 0) throw toError(result, op, index)
}

export function toError(result: NativeResult<unknown>, op: string, index?: number): NetlinkError {
  return new NetlinkError({
    errno: result.error,
    op,
    ...kernelDetail(result),
    ...(index === undefined ? {} : { index }),
  })
}

/** What the kernel said besides the errno: its extended ACK text and offset, and a dump that stayed interrupted. */
export function kernelDetail(result: NativeResult<unknown>): Pick<NetlinkErrorInit, 'extack' | 'extackOffset' | 'interrupted'> {
  const d: Pick<NetlinkErrorInit, 'extack' | 'extackOffset' | 'interrupted'> = {}
  if (result.extack) d.extack = result.extack
  if (result.extackOffset) d.extackOffset = result.extackOffset
  if (result.interrupted) d.interrupted = true
  return d
}

/** The one success outcome, shared: a large batch allocates nothing for the operations that worked. */
export const OK: Outcome = Object.freeze({ ok: true as const })

export function toOutcome(result: NativeResult<unknown>, op: string, index: number): Outcome {
  return result.error === 0 ? OK : { ok: false, error: toError(result, op, index) }
}

/** Generic netlink: the id the kernel gave a family, or undefined when it has none. */
export async function resolveGenlFamily(socket: NetlinkSocket, name: string, op: string): Promise<GenlRawFamily | undefined> {
  const [result] = await socket.execute('genl', 0x10, [{ cmd: 'getFamily', name }], op)
  if (result!.error === 2 /* ENOENT */) return undefined
  throwIfFailed(result!, op)
  return result!.records[0]
}
