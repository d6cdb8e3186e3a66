// A netlink message by hand (header + body, padded to 4), for tests that build
// replies the kernel would send: the fuzz corpus and its regressions.
export function nlmsg(type, flags, seq, pid, body) {
  const len = 16 + body.length
  const b = Buffer.alloc((len + 3) & ~3)
  b.writeUInt32LE(len, 0)
  b.writeUInt16LE(type, 4)
  b.writeUInt16LE(flags, 6)
  b.writeUInt32LE(seq, 8)
  b.writeUInt32LE(pid, 12)
  body.copy(b, 16)
  return b
}
