// A fake native netlink handle through the public seam (setBinding in
// lib/native.ts): the real handle classes open over it, the real codecs stay.
import { loadNativeBinding, setBinding, useNativeBinding, type NativeAddon, type NativeOp, type NativeResult } from '../../dist/native.js'

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
