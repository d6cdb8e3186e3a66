// Input checks shared by every family: each names the field it refuses.
import { isIPv4, isIPv6 } from 'node:net'
import { ValidationError } from './errors.js'

export type Family = 'inet' | 'inet6'
export const AF_INET = 2
export const AF_INET6 = 10

/** Where a check happens: the operation and, in a batch, its index. */
export interface Where {
  op: string
  index?: number
}

export function fail(at: Where, field: string, value: unknown, reason: string): never {
  throw new ValidationError(at.op, field, value, reason, at.index)
}

export function object(at: Where, field: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(at, field, value, 'must be an object')
  return value as Record<string, unknown>
}

/** The first field of `o` that `allowed` lacks (a field set to undefined counts as absent), or undefined. */
export function unknownField(o: Record<string, unknown>, allowed: ReadonlySet<string> | readonly string[]): string | undefined {
  if (Array.isArray(allowed)) {
    for (const k in o) if (o[k] !== undefined && !allowed.includes(k)) return k
  } else {
    for (const k in o) if (o[k] !== undefined && !(allowed as ReadonlySet<string>).has(k)) return k
  }
  return undefined
}

/**
 * Every record the library takes refuses fields it does not know, naming the
 * first: a misspelt option is an error, never silently ignored.
 */
export function only(at: Where, field: string, o: Record<string, unknown>, allowed: ReadonlySet<string> | readonly string[]): void {
  const k = unknownField(o, allowed)
  if (k !== undefined) fail(at, `${field}.${k}`, o[k], `is not a known field (known: ${[...allowed].join(', ')})`)
}

/**
 * A table looked up by strings from the caller: own keys only, so '__proto__',
 * 'constructor', 'toString', ... find nothing rather than Object.prototype's.
 */
export function table<K extends string, V>(entries: Record<K, V>): Readonly<Record<K, V>> {
  return Object.freeze(Object.assign(Object.create(null) as Record<K, V>, entries))
}

/** An IP address string; returns its family. */
export function address(at: Where, field: string, value: unknown, family?: Family): Family {
  if (typeof value !== 'string') fail(at, field, value, 'must be an IP address string')
  const f: Family | undefined = isIPv4(value) ? 'inet' : isIPv6(value) ? 'inet6' : undefined
  if (!f) fail(at, field, value, 'is not a valid IPv4 or IPv6 address')
  // node:net accepts a zone ('fe80::1%eth0'); the kernel's addresses have none.
  if (value.includes('%')) fail(at, field, value, 'must not carry a zone (%...)')
  if (family && f !== family) fail(at, field, value, `is ${f === 'inet' ? 'IPv4' : 'IPv6'} where ${family === 'inet' ? 'IPv4' : 'IPv6'} is required`)
  return f
}

export function integer(at: Where, field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    fail(at, field, value, `must be an integer from ${min} to ${max}`)
  return value
}

export function port(at: Where, field: string, value: unknown, min = 1): number {
  return integer(at, field, value, min, 65535)
}

export function oneOf<T extends string>(at: Where, field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value))
    fail(at, field, value, `must be one of ${allowed.join(', ')}`)
  return value as T
}

/** A name the kernel stores in a fixed buffer of `size` bytes, NUL included. */
export function name(at: Where, field: string, value: unknown, size: number): string {
  if (typeof value !== 'string' || value.length === 0) fail(at, field, value, 'must be a non-empty string')
  if (Buffer.byteLength(value) > size - 1) fail(at, field, value, `is longer than ${size - 1} bytes`)
  if (value.includes('\0')) fail(at, field, value, 'must not contain NUL')
  return value
}

/** A network interface name as the kernel accepts one (dev_valid_name): 1..15 bytes, no '/', ':' or white space, not '.' or '..'. */
export function linkName(at: Where, field: string, value: unknown): string {
  const n = name(at, field, value, 16 /* IFNAMSIZ */)
  if (n === '.' || n === '..') fail(at, field, value, 'is not a valid link name')
  if (/[/:\s]/.test(n)) fail(at, field, value, "must not contain '/', ':' or white space")
  return n
}

export function boolean(at: Where, field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') fail(at, field, value, 'must be true or false')
  return value
}

export function familyOf(f: Family): number {
  return f === 'inet' ? AF_INET : AF_INET6
}

export function familyName(af: number): Family {
  return af === AF_INET6 ? 'inet6' : 'inet'
}
