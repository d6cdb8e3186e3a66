export function nlmsg(type: number, flags: number, seq: number, pid: number, body: Buffer): Buffer
