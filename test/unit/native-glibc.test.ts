// The oldest glibc and libstdc++ the addon loads on: the highest symbol version it
// asks of each (GLIBC_x.y of libc.so.6, GLIBCXX_3.4.z of libstdc++.so.6, ...), read
// from the binary's ELF version-needs table, must not pass the floor the README
// documents. A new libc or libstdc++ call at a newer version (or a newer toolchain
// emitting one) fails here, naming the symbols, instead of shipping a prebuild that
// no longer loads on RHEL 8 / Ubuntu 20.04 / Debian 11 (native/compat/glibc.h says
// how the floor is held). Checks build/Release/tsproxy.node (`npm test` compiles it
// first) and every glibc prebuild in prebuilds/linux-x64/ (`npm run prebuilds`).
// readelf -V and objdump -T (binutils, with g++) are the oracles for the parser.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { MAX_VERSIONS, compareVersions, highestVersion, readVersionNeeds, versionOf, versionsOverFloor, type VersionNeeds } from '../support/elf.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))


const binaries = [join(ROOT, 'build/Release/tsproxy.node')]
const prebuilds = join(ROOT, 'prebuilds/linux-x64')
if (existsSync(prebuilds)) {
  for (const f of readdirSync(prebuilds)) if (f.endsWith('.node') && !f.includes('.musl.')) binaries.push(join(prebuilds, f))
}

function tool(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status} ${r.error ?? ''}\n${r.stderr}`)
  return r.stdout
}

/** readelf -V: "  0x0000: Version: 1  File: libc.so.6  Cnt: 10" then "  0x0010:   Name: GLIBC_2.4  Flags: none  Version: 12". */
function readelfNeeds(path: string): string[] {
  const text = tool('readelf', ['-V', '--wide', path])
  const section = text.slice(text.indexOf("Version needs section '.gnu.version_r'"))
  const out: string[] = []
  let file = ''
  for (const line of section.split('\n')) {
    const f = /^\s*(?:0x)?[0-9a-f]+:\s+Version:\s+\d+\s+File:\s+(\S+)/.exec(line)
    if (f) file = f[1]!
    const n = /^\s*(?:0x)?[0-9a-f]+:\s+Name:\s+(\S+)/.exec(line)
    if (n) out.push(`${file} ${n[1]}`)
  }
  return out.sort()
}

/** objdump -T: "0000000000000000      DF *UND*	0000000000000000 (GLIBC_2.2.5) dlopen". */
function objdumpImports(path: string): string[] {
  const out: string[] = []
  for (const line of tool('objdump', ['-T', path]).split('\n')) {
    const m = /\*UND\*\s+[0-9a-f]+\s+\(?([A-Z][A-Z_]*_[0-9][0-9.]*)\)?\s+(\S+)\s*$/.exec(line)
    if (m) out.push(`${m[2]} ${m[1]}`)
  }
  return out.sort()
}

t.test('the ELF reader agrees with readelf and objdump', async (t) => {
  for (const bin of binaries) {
    if (!existsSync(bin)) continue
    const got = readVersionNeeds(bin)
    t.ok(got.needs.length > 0, `${bin}: needs some versions`)
    t.same(got.needs.map((n) => `${n.file} ${n.name}`).sort(), readelfNeeds(bin), `${bin}: version needs as readelf -V reads them`)
    t.same(got.imports.map((i) => `${i.symbol} ${i.name}`).sort(), objdumpImports(bin), `${bin}: imported symbols and versions as objdump -T reads them`)
  }
})

t.test('versions compare numerically', async (t) => {
  t.same(versionOf('GLIBC_2.17', 'GLIBC_'), [2, 17])
  t.equal(versionOf('GLIBCXX_3.4.21', 'GLIBC_'), undefined, 'GLIBCXX_ is not GLIBC_')
  t.ok(compareVersions([2, 9], [2, 17]) < 0, '2.9 < 2.17')
  t.ok(compareVersions([2, 34], [2, 17]) > 0, '2.34 > 2.17')
  t.equal(compareVersions([3, 4], [3, 4, 0]), 0)
  const needs: VersionNeeds = {
    needs: [{ file: 'libc.so.6', name: 'GLIBC_2.2.5' }, { file: 'libc.so.6', name: 'GLIBC_2.14' }, { file: 'libc.so.6', name: 'GLIBC_2.3' }],
    imports: [],
  }
  t.equal(highestVersion(needs, 'GLIBC_'), '2.14')
  t.equal(highestVersion(needs, 'GLIBCXX_'), undefined)
})

/** The imports above the floor of a family, as "symbol (GLIBC_2.34)". */
function overFloor(needs: VersionNeeds, prefix: string, max: string): string[] {
  const limit = max.split('.').map(Number)
  return needs.imports
    .filter((i) => { const v = versionOf(i.name, prefix); return v !== undefined && compareVersions(v, limit) > 0 })
    .map((i) => `${i.symbol} (${i.name})`)
}

for (const bin of binaries) {
  t.test(`${bin.slice(ROOT.length)} loads on glibc ${MAX_VERSIONS.GLIBC_} and libstdc++ ${MAX_VERSIONS.GLIBCXX_}`, async (t) => {
    t.ok(existsSync(bin), `${bin} exists (npm run compile builds it)`)
    if (!existsSync(bin)) return
    const needs = readVersionNeeds(bin)
    t.ok(highestVersion(needs, 'GLIBC_'), 'it needs some GLIBC_ version (the reader found the table)')
    for (const [prefix, max] of Object.entries(MAX_VERSIONS)) {
      const highest = highestVersion(needs, prefix)
      const over = versionsOverFloor(needs, prefix, max)
      t.ok(highest === undefined || compareVersions(highest.split('.').map(Number), max.split('.').map(Number)) <= 0,
        `highest ${prefix}* needed: ${highest ?? 'none'} (at most ${prefix}${max})`, { over })
      t.same(over, [], `no symbol needs ${prefix}* above ${max} (see native/compat/glibc.h)`)
    }
  })
}

t.test('the README states the floor this test holds', async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  t.match(readme, `glibc ${MAX_VERSIONS.GLIBC_}`, `README names glibc ${MAX_VERSIONS.GLIBC_}`)
  t.match(readme, `GLIBCXX_${MAX_VERSIONS.GLIBCXX_}`, `README names GLIBCXX_${MAX_VERSIONS.GLIBCXX_}`)
})
