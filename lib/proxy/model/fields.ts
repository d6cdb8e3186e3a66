// Field checks for Kubernetes objects read from plain JSON: each refusal is a
// ValidationError naming the object (its op, 'Service default/web') and the
// field as the API spells it ('spec.ports[1].port').
import { addressBytes, familyOf, formatAddress } from '../../address.js'
import { fail, type Where } from '../../validate.js'

export { fail, type Where }

export type IPFamily = 'IPv4' | 'IPv6'

/** Kubernetes object metadata as the proxy uses it. */
export interface ObjectMeta {
  readonly namespace: string
  readonly name: string
  readonly uid?: string
  readonly resourceVersion?: string
  readonly generation?: number
  /** metadata.creationTimestamp in milliseconds since the epoch (which service owns a contested address:port). */
  readonly creationTimestamp?: number
  readonly labels: Readonly<Record<string, string>>
  readonly annotations: Readonly<Record<string, string>>
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function object(at: Where, field: string, value: unknown): Record<string, unknown> {
  if (!isObject(value)) fail(at, field, value, 'must be an object')
  return value
}

/** An optional object: absent or null is {}. */
export function optObject(at: Where, field: string, value: unknown): Record<string, unknown> {
  return value === undefined || value === null ? {} : object(at, field, value)
}

/** An optional list: absent or null is []. */
export function optArray(at: Where, field: string, value: unknown): unknown[] {
  if (value === undefined || value === null) return []
  if (!Array.isArray(value)) fail(at, field, value, 'must be a list')
  return value
}

export function str(at: Where, field: string, value: unknown): string {
  if (typeof value !== 'string') fail(at, field, value, 'must be a string')
  return value
}

/** An optional string: absent or null is undefined. */
export function optStr(at: Where, field: string, value: unknown): string | undefined {
  return value === undefined || value === null ? undefined : str(at, field, value)
}

export function optBool(at: Where, field: string, value: unknown): boolean | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'boolean') fail(at, field, value, 'must be true or false')
  return value
}

export function int(at: Where, field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    fail(at, field, value, `must be an integer from ${min} to ${max}`)
  return value
}

export function oneOf<T extends string>(at: Where, field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value))
    fail(at, field, value, `must be one of ${allowed.join(', ')}`)
  return value as T
}

/** A map of strings to strings (labels, annotations). */
export function stringMap(at: Where, field: string, value: unknown): Record<string, string> {
  const o = optObject(at, field, value)
  // Most objects have no annotations (and many no labels): one shared empty map, not one each.
  if (Object.keys(o).length === 0) return NO_STRINGS
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(o)) {
    if (typeof v !== 'string') fail(at, `${field}[${JSON.stringify(k)}]`, v, 'must be a string (quote values YAML reads as booleans or numbers)')
    out[k] = v
  }
  return out
}

const NO_STRINGS: Record<string, string> = Object.freeze({}) as Record<string, string>

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

export function dns1123Label(at: Where, field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length > 63 || !DNS1123_LABEL.test(value))
    fail(at, field, value, 'must be a DNS label: up to 63 lowercase letters, digits and -, starting and ending with a letter or digit')
  return value
}

export function dns1035Label(at: Where, field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length > 63 || !DNS1035_LABEL.test(value))
    fail(at, field, value, 'must be a DNS-1035 label: up to 63 lowercase letters, digits and -, starting with a letter and ending with a letter or digit')
  return value
}

export function dns1123Subdomain(at: Where, field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length > 253 || !DNS1123_SUBDOMAIN.test(value))
    fail(at, field, value, 'must be a DNS subdomain: up to 253 lowercase letters, digits, - and ., each part starting and ending with a letter or digit')
  return value
}

/** An IANA service name (a named targetPort): up to 15 of [a-z0-9-], a letter somewhere, no '--', no '-' at the ends. */
export function ianaServiceName(at: Where, field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 15 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(value) || value.includes('--') || !/[a-z]/.test(value))
    fail(at, field, value, 'must be a port number or an IANA service name (up to 15 lowercase letters, digits and -, with a letter)')
  return value
}

/** The family of an IP address text, or undefined. */
export function ipFamilyOf(text: string): IPFamily | undefined {
  const f = familyOf(text)
  return f === 'inet' ? 'IPv4' : f === 'inet6' ? 'IPv6' : undefined
}

/**
 * One spelling per address, as Go's net.IP.String() writes it (RFC 5952 for
 * IPv6: lowercase, no leading zeros, the longest run of zero groups as '::'),
 * so 'FD00:0::1' and 'fd00::1' are one endpoint.
 */
export function canonicalIP(text: string): string {
  if (familyOf(text) === 'inet') return text
  const b = addressBytes(text)
  return b && b.length === 16 ? formatAddress(b) : text
}

/**
 * `text` with dotted IPv4 octets written with leading zeros ('172.30.0.041',
 * also as an IPv6 tail) rewritten without them, read as DECIMAL (041 is 41):
 * older API servers accepted such addresses, clusters still hold them, and
 * kube-proxy reads them this way on purpose (k8s.io/utils/net ParseIPSloppy,
 * Go's parser before 1.17). Anything else comes back unchanged.
 */
export function unsloppyIP(text: string): string {
  const m = /^(.*:)?(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (!m) return text
  const octets = m.slice(2).map((d) => d.replace(/^0+(?=\d)/, ''))
  if (octets.some((d) => d.length > 3 || Number(d) > 255)) return text
  return (m[1] ?? '') + octets.join('.')
}

/** An IP address (of `family`, when given), returned in its canonical spelling; leading zeros are read as kube-proxy reads them (unsloppyIP). */
export function ip(at: Where, field: string, value: unknown, family?: IPFamily): string {
  if (typeof value !== 'string') fail(at, field, value, 'must be an IP address string')
  const f = ipFamilyOf(unsloppyIP(value))
  if (!f) fail(at, field, value, 'is not a valid IPv4 or IPv6 address')
  if (family && f !== family) fail(at, field, value, `is ${f} where ${family} is required`)
  const text = canonicalIP(unsloppyIP(value))
  if (f === 'IPv6' && text.startsWith('::ffff:') && value.includes('.')) fail(at, field, value, 'is an IPv4-mapped IPv6 address; write the IPv4 address')
  return text
}

/** A CIDR 'address/prefix', the address in canonical spelling (host bits are kept, as the API keeps them; leading zeros read as ParseCIDRSloppy does). */
export function cidr(at: Where, field: string, value: unknown, family?: IPFamily): string {
  if (typeof value !== 'string') fail(at, field, value, 'must be a CIDR string (address/prefix)')
  const text = value.trim()
  const slash = text.indexOf('/')
  const addr = slash < 0 ? '' : unsloppyIP(text.slice(0, slash))
  // Leading zeros in the prefix too, as ParseCIDRSloppy reads them ('10.0.0.0/08').
  const prefix = slash < 0 ? '' : text.slice(slash + 1).replace(/^0+(?=\d)/, '')
  const f = ipFamilyOf(addr)
  if (!f || !/^(0|[1-9][0-9]{0,2})$/.test(prefix) || Number(prefix) > (f === 'IPv4' ? 32 : 128))
    fail(at, field, value, 'is not a valid CIDR (address/prefix)')
  if (family && f !== family) fail(at, field, value, `is ${f} where ${family} is required`)
  return `${canonicalIP(addr)}/${prefix}`
}

export function cidrFamily(text: string): IPFamily {
  return text.includes(':') ? 'IPv6' : 'IPv4'
}

/** 'ip:port', with IPv6 in brackets, as Go's net.JoinHostPort writes it. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/** Reads metadata: name (checked by `checkName`), namespace (default 'default'), labels, annotations. */
export function metadata(
  kind: string,
  value: unknown,
  checkName: (at: Where, field: string, value: unknown) => string,
): { meta: ObjectMeta; at: Where } {
  let at: Where = { op: kind }
  const m = object(at, 'metadata', value)
  if (m.name === undefined || m.name === null || m.name === '') fail(at, 'metadata.name', m.name, 'is required')
  const name = checkName(at, 'metadata.name', m.name)
  const namespace = m.namespace === undefined || m.namespace === null || m.namespace === '' ? 'default' : dns1123Label(at, 'metadata.namespace', m.namespace)
  at = { op: `${kind} ${namespace}/${name}` }
  const meta: { -readonly [K in keyof ObjectMeta]: ObjectMeta[K] } = {
    namespace,
    name,
    labels: stringMap(at, 'metadata.labels', m.labels),
    annotations: stringMap(at, 'metadata.annotations', m.annotations),
  }
  const uid = optStr(at, 'metadata.uid', m.uid)
  if (uid !== undefined) meta.uid = uid
  const rv = optStr(at, 'metadata.resourceVersion', m.resourceVersion)
  if (rv !== undefined) meta.resourceVersion = rv
  if (m.generation !== undefined && m.generation !== null) meta.generation = int(at, 'metadata.generation', m.generation, 0, Number.MAX_SAFE_INTEGER)
  const created = optStr(at, 'metadata.creationTimestamp', m.creationTimestamp)
  if (created !== undefined) meta.creationTimestamp = timestamp(at, 'metadata.creationTimestamp', created)
  return { meta, at }
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/

/** An RFC 3339 time ('2024-05-01T10:00:00Z', as the API writes metav1.Time) in milliseconds since the epoch. */
export function timestamp(at: Where, field: string, value: string): number {
  const ms = RFC3339.test(value) ? Date.parse(value) : NaN
  if (Number.isNaN(ms)) fail(at, field, value, 'must be an RFC 3339 time (2024-05-01T10:00:00Z)')
  return ms
}

/** Checks apiVersion and kind of a top-level object. */
export function typeMeta(at: Where, value: Record<string, unknown>, apiVersion: string, kind: string): void {
  if (value.kind !== kind) fail(at, 'kind', value.kind, `must be ${kind}`)
  if (value.apiVersion !== apiVersion) fail(at, 'apiVersion', value.apiVersion, `must be ${apiVersion} for a ${kind}`)
}

/** Deep equality of plain data (objects, arrays, primitives), as reflect.DeepEqual on what the proxy derives. */
export function samePlain(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!samePlain(a[i], b[i])) return false
    return true
  }
  if (Array.isArray(b)) return false
  // A key whose value is undefined counts as absent.
  const ra = a as Record<string, unknown>
  const rb = b as Record<string, unknown>
  for (const k of Object.keys(ra)) if (!samePlain(ra[k], rb[k])) return false
  for (const k of Object.keys(rb)) if (!(k in ra) && rb[k] !== undefined) return false
  return true
}
