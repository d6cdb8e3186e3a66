// Kernel parameters through /proc/sys, with plain file reads and writes (no
// sysctl process). The network ones are per network namespace: a process sees
// and changes those of its own.
//
// Keys are written as sysctl(8) writes them: 'net.ipv4.ip_forward', dots
// between the parts; or, when a part holds a dot itself (a VLAN interface
// 'eth0.100'), as a path: 'net/ipv4/conf/eth0.100/arp_ignore'.
import { constants } from 'node:fs'
import { open, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { NetlinkError, errnoCode } from './errors.js'
import * as v from './validate.js'
import type { Where } from './validate.js'

export interface SysctlOptions {
  /** Where the tree is; default '/proc/sys' (tests point it elsewhere). */
  root?: string
}

export interface SysctlErrorInit {
  errno: number
  op: string
  key: string
  path: string
  message?: string
}

/**
 * Reading or writing a sysctl failed. A kernel error like any other: a
 * NetlinkError (errno, code, op) that also names the key and its file.
 */
export class SysctlError extends NetlinkError {
  override name = 'SysctlError'
  /** The key as given, e.g. 'net.ipv4.vs.conntrack'. */
  readonly key: string
  /** The file, e.g. '/proc/sys/net/ipv4/vs/conntrack'. */
  readonly path: string

  constructor(init: SysctlErrorInit) {
    super({ errno: init.errno, op: init.op, message: `${init.key}: ${init.message ?? errnoCode(init.errno)}` })
    this.key = init.key
    this.path = init.path
  }
}

/** The keys a service proxy in IPVS mode sets (kube-proxy's), by what they do. */
export const SYSCTL = {
  /** IPVS keeps conntrack entries for its connections (needed for masquerading by iptables). */
  ipvsConntrack: 'net.ipv4.vs.conntrack',
  /** IPVS drops the connections of a deleted destination at their next packet. */
  expireNodestConn: 'net.ipv4.vs.expire_nodest_conn',
  /** IPVS expires persistence templates of a quiesced (weight 0) destination. */
  expireQuiescentTemplate: 'net.ipv4.vs.expire_quiescent_template',
  ipForward: 'net.ipv4.ip_forward',
  /** Packets to or from 127.0.0.0/8 may be routed off lo (iptables mode's node ports on localhost). */
  routeLocalnet: 'net.ipv4.conf.all.route_localnet',
  /** Conntrack marks only out-of-window RSTs INVALID (iptables mode then writes no ctstate INVALID drop). */
  conntrackTCPBeLiberal: 'net.netfilter.nf_conntrack_tcp_be_liberal',
  /** ARP replies only for addresses on the asking interface (strictARP: 1), of `iface` or 'all'. */
  arpIgnore: (iface = 'all'): string => confKey('sysctl.arpIgnore', iface, 'arp_ignore'),
  /** ARP requests with the best local source address (strictARP: 2), of `iface` or 'all'. */
  arpAnnounce: (iface = 'all'): string => confKey('sysctl.arpAnnounce', iface, 'arp_announce'),
} as const

function confKey(op: string, iface: string, leaf: string): string {
  if (iface !== 'all' && iface !== 'default') v.linkName({ op }, 'iface', iface)
  return `net/ipv4/conf/${iface}/${leaf}`
}

/** Values the kernel accepts for the keys above; others take any integer. */
const RANGES: [RegExp, number, number][] = [
  [/^net\/ipv4\/vs\/(conntrack|expire_nodest_conn|expire_quiescent_template)$/, 0, 1],
  [/^net\/ipv4\/ip_forward$/, 0, 1],
  [/^net\/ipv4\/conf\/[^/]+\/route_localnet$/, 0, 1],
  [/^net\/ipv4\/conf\/[^/]+\/arp_ignore$/, 0, 8],
  [/^net\/ipv4\/conf\/[^/]+\/arp_announce$/, 0, 2],
]

/** The key's path under the root, checked: no empty, '.' or '..' parts, nothing that leaves the tree. */
function pathOf(at: Where, key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) v.fail(at, 'key', key, 'must be a non-empty string')
  if (/[\0\s]/.test(key)) v.fail(at, 'key', key, 'must not contain white space or NUL')
  const parts = key.includes('/') ? key.split('/') : key.split('.')
  if (parts.some((p) => p === '' || p === '.' || p === '..')) v.fail(at, 'key', key, 'has an empty, "." or ".." part')
  return parts.join('/')
}

function fail(e: unknown, op: string, key: string, path: string): never {
  const errno = Math.abs((e as { errno?: number }).errno ?? 0)
  if (!errno) throw e
  let why: string | undefined
  const code = errnoCode(errno)
  if (code === 'ENOENT')
    why = `ENOENT: no such sysctl (${path})${/^net\/ipv4\/vs\//.test(relative(key)) ? '; the ip_vs module is not loaded' : ''}`
  else if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') why = `${code}: not allowed to ${op === 'sysctl.get' ? 'read' : 'write'} ${path} (root, and /proc/sys writable, are needed)`
  else if (code === 'EINVAL' && op !== 'sysctl.get') why = 'EINVAL: the kernel refused the value'
  else if (code === 'EISDIR') why = `EISDIR: ${path} is a directory of keys, not a key`
  throw new SysctlError({ errno, op, key, path, ...(why ? { message: why } : {}) })
}

function relative(key: string): string {
  return key.includes('/') ? key : key.split('.').join('/')
}

function root(at: Where, options: SysctlOptions | undefined): string {
  if (options === undefined) return '/proc/sys'
  const o = v.object(at, 'options', options)
  if (o.root === undefined) return '/proc/sys'
  if (typeof o.root !== 'string' || !o.root) v.fail(at, 'options.root', o.root, 'must be a directory path')
  return o.root
}

/** A sysctl's text, without the trailing newline ('1', '32768\t60999'). */
export async function readSysctl(key: string, options?: SysctlOptions): Promise<string> {
  const at = { op: 'sysctl.get' }
  const path = join(root(at, options), pathOf(at, key))
  try {
    return (await readFile(path, 'utf8')).replace(/\n$/, '')
  } catch (e) {
    fail(e, at.op, key, path)
  }
}

/** Writes a sysctl's text as it is (a newline is added). */
export async function writeSysctl(key: string, value: string | number, options?: SysctlOptions): Promise<void> {
  const at = { op: 'sysctl.set' }
  const rel = pathOf(at, key)
  const path = join(root(at, options), rel)
  let text: string
  if (typeof value === 'number') text = String(integerValue(at, rel, key, value))
  else if (typeof value === 'string' && !/[\0\n]/.test(value)) text = value
  else v.fail(at, 'value', value, `for ${key} must be a number or a one-line string`)
  await write(at.op, key, path, text)
}

async function write(op: string, key: string, path: string, text: string): Promise<void> {
  // Without O_CREAT: a missing key is ENOENT, never a new file (O_TRUNC as sysctl(8)).
  let fh
  try {
    fh = await open(path, constants.O_WRONLY | constants.O_TRUNC)
    await fh.write(`${text}\n`)
  } catch (e) {
    fail(e, op, key, path)
  } finally {
    await fh?.close()
  }
}

function integerValue(at: Where, rel: string, key: string, value: unknown): number {
  const range = RANGES.find(([re]) => re.test(rel))
  const [min, max] = range ? [range[1], range[2]] : [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    v.fail(at, 'value', value, `for ${key} must be an integer${range ? ` from ${min} to ${max}` : ''}`)
  return value
}

/** An integer sysctl's value. */
export async function getSysctl(key: string, options?: SysctlOptions): Promise<number> {
  const text = await readSysctl(key, options)
  const n = Number(text.trim())
  if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(n))
    throw new SysctlError({ errno: 22, op: 'sysctl.get', key, path: join(root({ op: 'sysctl.get' }, options), pathOf({ op: 'sysctl.get' }, key)), message: `EINVAL: not an integer sysctl (${JSON.stringify(text)})` })
  return n
}

/** Sets an integer sysctl; values the kernel would refuse for the keys in SYSCTL are a ValidationError first. */
export async function setSysctl(key: string, value: number, options?: SysctlOptions): Promise<void> {
  const at = { op: 'sysctl.set' }
  const rel = pathOf(at, key)
  await write(at.op, key, join(root(at, options), rel), String(integerValue(at, rel, key, value)))
}

/** Sets an integer sysctl only when it differs; resolves true when it wrote. */
export async function ensureSysctl(key: string, value: number, options?: SysctlOptions): Promise<boolean> {
  const at = { op: 'sysctl.set' }
  integerValue(at, pathOf(at, key), key, value)
  if ((await getSysctl(key, options)) === value) return false
  await setSysctl(key, value, options)
  return true
}
