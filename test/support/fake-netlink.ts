// A fake native netlink handle through the public seam (setBinding in
// lib/native.ts): the real handle classes open over it, the real codecs stay.
import { loadNativeBinding, native, setBinding, useNativeBinding, type NativeAddon, type NativeOp, type NativeResult } from '../../dist/native.js'

/** What a fake answers in place of the native socket: one result per op. */
export interface FakeHandle {
  portId?: number
  execute(codec: string, family: number, ops: NativeOp[]): Promise<NativeResult[]>
  close(): Promise<void>
}

/**
 * Runs `open` (Ipvs.open(), Rtnl.open(), ...) with every new netlink socket
 * being `handle`; the real addon is back once it has opened.
 */
export async function openOver<H>(handle: FakeHandle, open: () => Promise<H>): Promise<H> {
  const socket = { portId: 1, ...handle }
  // A constructor that returns an object yields that object.
  const NetlinkSocket = function () {
    return socket
  } as unknown as NativeAddon['NetlinkSocket']
  setBinding({ ...loadNativeBinding(), NetlinkSocket })
  try {
    return await open()
  } finally {
    useNativeBinding()
  }
}

/**
 * What the kernel answers while a handle opens: the IPVS generic netlink
 * family (id 0x24), the ipset protocol (7), conntrack's count.
 */
export function handshake(codec: string, op: NativeOp): NativeResult | undefined {
  switch (`${codec}:${String(op.cmd)}`) {
    case 'genl:getFamily':
      return { error: 0, records: [{ kind: 'family', id: 0x24, name: 'IPVS', version: 1, maxAttr: 9 }] }
    case 'ipset:protocol':
      return { error: 0, records: [{ kind: 'protocol', protocol: 7, protocolMin: 6 }] }
    case 'conntrack:count':
      return { error: 0, records: [{ kind: 'stats', entries: 0 }] }
    default:
      return undefined
  }
}

/**
 * openOver with the handshake answered here, so `handle` sees (and records)
 * only what the opened handle sends afterwards.
 */
export async function openAfterHandshake<H>(handle: FakeHandle, open: () => Promise<H>): Promise<H> {
  let opening = true
  const wrapped: FakeHandle = {
    ...(handle.portId === undefined ? {} : { portId: handle.portId }),
    execute: (codec, family, ops) => (opening ? Promise.resolve(ops.map((op) => handshake(codec, op) ?? { error: 0, records: [] })) : handle.execute(codec, family, ops)),
    close: () => handle.close(),
  }
  try {
    return await openOver(wrapped, open)
  } finally {
    opening = false
  }
}

/**
 * Opens a handle over a fake of one codec that checks each batch is of that
 * codec (with `t`) and encodable by native/, records it, and answers with
 * `kernel` while the handle opens and with `answer` after; `sent` starts empty
 * once open.
 */
export async function openRecording<H>(
  t: { equal(found: unknown, wanted: unknown): unknown },
  codec: string,
  open: () => Promise<H>,
  kernel: (op: NativeOp) => NativeResult,
  answer: (op: NativeOp) => NativeResult = kernel,
): Promise<{ handle: H; sent: NativeOp[][] }> {
  const sent: NativeOp[][] = []
  let opened = false
  const fake: FakeHandle = {
    portId: 0xabcd,
    async execute(c, family, ops) {
      t.equal(c, codec)
      sent.push(structuredClone(ops))
      native.encode(c, family, ops, 1) // throws if the native codec would refuse it
      return ops.map((o) => (opened ? answer : kernel)(o))
    },
    async close() {},
  }
  const handle = await openOver(fake, open)
  opened = true
  sent.length = 0
  return { handle, sent }
}
