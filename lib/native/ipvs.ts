// The IPVS codec's wire forms (native/ipvs): what lib/ipvs.ts sends, already
// validated, and the records the decoder gives back.

export interface IpvsStats {
  conns: number
  inPackets: number
  outPackets: number
  inBytes: number
  outBytes: number
  cps: number
  inPps: number
  outPps: number
  inBps: number
  outBps: number
}

export interface WireService {
  af: number
  protocol?: number
  address?: string
  port?: number
  fwmark?: number
  scheduler?: string
  flags?: number
  timeout?: number
  netmask?: number
  peName?: string
}

export interface WireDest {
  af: number
  address: string
  port: number
  forward?: number
  weight?: number
  upperThreshold?: number
  lowerThreshold?: number
  tunType?: number
  tunPort?: number
  tunFlags?: number
}

/** A request, one per generic netlink message. */
export type IpvsWireOp =
  | { cmd: 'newService' | 'setService' | 'delService' | 'getService'; service: WireService }
  | { cmd: 'newDest' | 'setDest' | 'delDest'; service: WireService; dest: WireDest }
  | { cmd: 'listDests'; service: WireService }
  | { cmd: 'zero'; service?: WireService }
  | { cmd: 'flush' | 'listServices' | 'getInfo' | 'getConfig' }
  | { cmd: 'setConfig'; timeouts: { tcp?: number; tcpFin?: number; udp?: number } }

export interface RawService {
  kind: 'service'
  af: number
  protocol?: number
  address?: string
  port?: number
  fwmark?: number
  scheduler: string
  peName?: string
  flags: number
  timeout: number
  netmask: number
  stats: IpvsStats
}

/** A real server's weight, thresholds and connection counts: the same in the kernel's reply and in lib's record. */
export interface DestinationLoad {
  weight: number
  upperThreshold: number
  lowerThreshold: number
  activeConns: number
  inactiveConns: number
  persistConns: number
}

export interface RawDest extends DestinationLoad {
  kind: 'destination'
  af: number
  address?: string
  port: number
  forward: number
  tunType?: number
  tunPort?: number
  tunFlags?: number
  stats: IpvsStats
}

export interface RawInfo {
  kind: 'info'
  version: number
  connTableSize: number
}

export interface RawConfig {
  kind: 'config'
  tcp: number
  tcpFin: number
  udp: number
}

export type IpvsRawRecord = RawService | RawDest | RawInfo | RawConfig
