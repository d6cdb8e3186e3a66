// malloc's thresholds (native/malloc): a process-wide choice, so the library
// never makes it by itself; the tsproxy daemon does (lib/proxy/daemon.ts,
// README "Memory"). glibc only: elsewhere tuneMalloc() changes nothing and
// returns false.
import { ValidationError } from './errors.js'
import { native } from './native.js'

const MIB = 1024 * 1024

/**
 * The largest mmap threshold taken: glibc's own adjustment stops at 32 MiB on
 * 64-bit (DEFAULT_MMAP_THRESHOLD_MAX), and older glibc refuse anything above it.
 */
export const MAX_MMAP_THRESHOLD = 32 * MIB
/** mallopt takes an int. */
export const MAX_TRIM_THRESHOLD = 2 ** 31 - 1

export interface MallocThresholds {
  /**
   * Bytes of free memory at the top of a malloc heap that free() keeps before
   * it hands the top back to the kernel (M_TRIM_THRESHOLD; glibc's default is
   * 128 KiB, raised by glibc itself as blocks are unmapped). An explicit
   * malloc_trim(0) (native/iptc does one after freeing a table) still returns it all.
   */
  trimThreshold: number
  /**
   * Blocks of at least this many bytes get a mapping of their own, unmapped by
   * free() (M_MMAP_THRESHOLD; glibc's default 128 KiB, raised by glibc up to
   * 32 MiB as such blocks are freed). At most MAX_MMAP_THRESHOLD.
   * Blocks below it come from the heap, where free() only keeps them for reuse.
   */
  mmapThreshold: number
}

/**
 * Sets both thresholds for the whole process (every thread's arena, every
 * addon, Node itself) and stops glibc's own adjustment of them. Returns true
 * when glibc took both, false where malloc is not glibc's. Throws
 * ValidationError (op 'malloc') naming the field for a value out of range;
 * then nothing has been set.
 */
export function tuneMalloc(thresholds: MallocThresholds): boolean {
  if (thresholds === null || typeof thresholds !== 'object') throw new ValidationError('malloc', 'thresholds', thresholds, 'must be an object')
  const { trimThreshold, mmapThreshold } = thresholds
  if (!Number.isInteger(trimThreshold) || trimThreshold < 0 || trimThreshold > MAX_TRIM_THRESHOLD)
    throw new ValidationError('malloc', 'trimThreshold', trimThreshold, `must be an integer from 0 to ${MAX_TRIM_THRESHOLD} (bytes)`)
  if (!Number.isInteger(mmapThreshold) || mmapThreshold < 0 || mmapThreshold > MAX_MMAP_THRESHOLD)
    throw new ValidationError('malloc', 'mmapThreshold', mmapThreshold, `must be an integer from 0 to ${MAX_MMAP_THRESHOLD} (bytes, glibc's maximum)`)
  return native.setMallocThresholds(trimThreshold, mmapThreshold)
}
