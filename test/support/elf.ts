// The symbol versions a shared object asks of its libraries, read from its ELF
// sections (64-bit little-endian only, as x86-64 and arm64 Linux are): the
// version-needs table (.gnu.version_r, SHT_GNU_verneed), and which dynamic symbol
// (.dynsym) uses which of its entries (.gnu.version, SHT_GNU_versym). Sections are
// found by type, so a stripped binary (prebuildify --strip) reads the same.
import { readFileSync } from 'node:fs'

/**
 * The addon's floor: the highest version of each family it may ask for
 * (test/unit/native-glibc.test.ts holds it for every build; README "Building" states it).
 */
export const MAX_VERSIONS = {
  GLIBC_: '2.17', // glibc 2.17 (RHEL 7); Node 20's own binaries need 2.28
  GLIBCXX_: '3.4.21', // libstdc++ of GCC 5 (the C++11 std::string)
  CXXABI_: '1.3.9', // GCC 5 (sized operator delete)
  GCC_: '3.4', // libgcc_s
} as const

const SHT_DYNSYM = 11
const SHT_GNU_VERNEED = 0x6ffffffe
const SHT_GNU_VERSYM = 0x6fffffff

/** A version the object needs from one library: `file` libc.so.6, `name` GLIBC_2.17. */
export interface NeededVersion {
  file: string
  name: string
}

/** A dynamic symbol the object imports at a version (undefined in it, defined by `file`). */
export interface ImportedSymbol extends NeededVersion {
  symbol: string
}

export interface VersionNeeds {
  needs: NeededVersion[]
  imports: ImportedSymbol[]
}

interface Section {
  type: number
  offset: number
  size: number
  link: number
  info: number
  entsize: number
}

export function readVersionNeeds(path: string): VersionNeeds {
  const b = readFileSync(path)
  if (b.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${path}: not an ELF file`)
  if (b[4] !== 2 || b[5] !== 1) throw new Error(`${path}: not 64-bit little-endian ELF`)
  const shoff = Number(b.readBigUInt64LE(0x28))
  const shentsize = b.readUInt16LE(0x3a)
  const shnum = b.readUInt16LE(0x3c)
  const sections: Section[] = []
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize
    sections.push({
      type: b.readUInt32LE(o + 4),
      offset: Number(b.readBigUInt64LE(o + 0x18)),
      size: Number(b.readBigUInt64LE(o + 0x20)),
      link: b.readUInt32LE(o + 0x28),
      info: b.readUInt32LE(o + 0x2c),
      entsize: Number(b.readBigUInt64LE(o + 0x38)),
    })
  }
  const str = (s: Section, at: number): string => {
    const start = s.offset + at
    return b.toString('latin1', start, b.indexOf(0, start))
  }

  // Elf64_Verneed {u16 version, u16 cnt, u32 file, u32 aux, u32 next} and
  // Elf64_Vernaux {u32 hash, u16 flags, u16 other, u32 name, u32 next}; `other` is
  // the index .gnu.version gives the symbols that use this version.
  const needs: NeededVersion[] = []
  const byIndex = new Map<number, NeededVersion>()
  const verneed = sections.find((s) => s.type === SHT_GNU_VERNEED)
  if (verneed) {
    const strtab = sections[verneed.link]!
    let at = verneed.offset
    for (let i = 0; i < verneed.info; i++) {
      const file = str(strtab, b.readUInt32LE(at + 4))
      let aux = at + b.readUInt32LE(at + 8)
      for (let j = 0; j < b.readUInt16LE(at + 2); j++) {
        const need = { file, name: str(strtab, b.readUInt32LE(aux + 8)) }
        needs.push(need)
        byIndex.set(b.readUInt16LE(aux + 6), need)
        aux += b.readUInt32LE(aux + 12)
      }
      at += b.readUInt32LE(at + 12)
    }
  }

  // Elf64_Sym {u32 name, u8 info, u8 other, u16 shndx, u64 value, u64 size}: 24 bytes;
  // .gnu.version has one u16 per symbol (bit 15: hidden).
  const imports: ImportedSymbol[] = []
  const dynsym = sections.find((s) => s.type === SHT_DYNSYM)
  const versym = sections.find((s) => s.type === SHT_GNU_VERSYM)
  if (dynsym && versym) {
    const strtab = sections[dynsym.link]!
    for (let i = 1; i < dynsym.size / dynsym.entsize; i++) {
      const o = dynsym.offset + i * dynsym.entsize
      if (b.readUInt16LE(o + 6) !== 0) continue // defined here
      const need = byIndex.get(b.readUInt16LE(versym.offset + 2 * i) & 0x7fff)
      if (need) imports.push({ symbol: str(strtab, b.readUInt32LE(o)), ...need })
    }
  }
  return { needs, imports }
}

/** `GLIBC_2.17` with prefix `GLIBC_` -> [2, 17]; undefined for another family (GLIBCXX_...). */
export function versionOf(name: string, prefix: string): number[] | undefined {
  const m = new RegExp(`^${prefix}(\\d+(?:\\.\\d+)*)$`).exec(name)
  return m ? m[1]!.split('.').map(Number) : undefined
}

export function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

/** The highest version of a family (`GLIBC_`) the object needs, as `2.17`; undefined if none. */
export function highestVersion(needs: VersionNeeds, prefix: string): string | undefined {
  let best: number[] | undefined
  for (const n of needs.needs) {
    const v = versionOf(n.name, prefix)
    if (v && (!best || compareVersions(v, best) > 0)) best = v
  }
  return best?.join('.')
}

/** The imports above `max` in a family, as "symbol (GLIBC_2.34)". */
export function versionsOverFloor(needs: VersionNeeds, prefix: string, max: string): string[] {
  const limit = max.split('.').map(Number)
  return needs.imports
    .filter((i) => { const v = versionOf(i.name, prefix); return v !== undefined && compareVersions(v, limit) > 0 })
    .map((i) => `${i.symbol} (${i.name})`)
}
