// The two errors of the library: the kernel (or the socket) said no, or the
// caller's input was refused before anything was sent.
import { constants } from 'node:os'

const errnoNames = new Map<number, string>()
for (const [name, value] of Object.entries(constants.errno)) if (!errnoNames.has(value)) errnoNames.set(value, name)

/** The symbolic name of a positive errno ('EEXIST' for 17). */
export function errnoCode(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`
}

export interface NetlinkErrorInit {
  errno: number
  op: string
  extack?: string
  extackOffset?: number
  interrupted?: boolean
  index?: number
  message?: string
  code?: string
}

/** A kernel operation failed: keeps the errno, its name, the operation and the kernel's own words. */
export class NetlinkError extends Error {
  override name = 'NetlinkError'
  /** Positive errno, e.g. 17. */
  readonly errno: number
  /** Its name, e.g. 'EEXIST' (or a family's own code name, e.g. ipset's 'IPSET_ERR_EXIST'). */
  readonly code: string
  /** The operation, e.g. 'ipvs.addService'. */
  readonly op: string
  /** The kernel's extended ACK message, when it sent one. */
  readonly extack?: string
  /** Where in the request the kernel found fault (NLMSGERR_ATTR_OFFS: a byte offset from the start of its netlink message). */
  readonly extackOffset?: number
  /** A dump stayed inconsistent (NLM_F_DUMP_INTR) after every retry; errno is EINTR. */
  readonly interrupted?: boolean
  /** The operation's position in a batch. */
  readonly index?: number

  constructor(init: NetlinkErrorInit) {
    const code = init.code ?? errnoCode(init.errno)
    const where = init.index === undefined ? '' : ` (batch index ${init.index})`
    const said = init.extack ?? (init.interrupted ? 'the dump stayed inconsistent (NLM_F_DUMP_INTR) after every retry' : undefined)
    const detail = init.message ?? `${code}${said ? `: ${said}` : ''}`
    super(`${init.op}${where}: ${detail}`)
    this.errno = init.errno
    this.code = code
    this.op = init.op
    if (init.extack) this.extack = init.extack
    if (init.extackOffset) this.extackOffset = init.extackOffset
    if (init.interrupted) this.interrupted = true
    if (init.index !== undefined) this.index = init.index
  }
}

/** Input refused before anything reached the kernel; names the field. */
export class ValidationError extends TypeError {
  override name = 'ValidationError'
  readonly code = 'ERR_TSPROXY_INVALID'
  /** The operation, e.g. 'ipvs.addService'. */
  readonly op: string
  /** The offending field, e.g. 'destination.port'. */
  readonly field: string
  readonly value: unknown
  /** The operation's position in a batch. */
  readonly index?: number

  constructor(op: string, field: string, value: unknown, reason: string, index?: number) {
    const where = index === undefined ? '' : ` (batch index ${index})`
    super(`${op}${where}: ${field} ${reason} (got ${show(value)})`)
    this.op = op
    this.field = field
    this.value = value
    if (index !== undefined) this.index = index
  }
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v)
  try {
    return JSON.stringify(v) ?? String(v)
  } catch {
    return String(v)
  }
}
