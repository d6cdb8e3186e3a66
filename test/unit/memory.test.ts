// lib/memory: tuneMalloc's validation (nothing reaches mallopt on bad input),
// glibc's own answer through the real addon, and the daemon's choice: set at
// start with DAEMON_MALLOC_THRESHOLDS when asked (TSPROXY_MALLOC_TUNING=on), else left to glibc.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MAX_MMAP_THRESHOLD, MAX_TRIM_THRESHOLD, tuneMalloc, ValidationError } from '../../dist/index.js'
import { loadNativeBinding, setBinding, useNativeBinding } from '../../dist/native.js'
import { DAEMON_MALLOC_THRESHOLDS, Daemon, mallocThresholdsFromEnv } from '../../dist/proxy/daemon.js'
import { defaultConfig } from '../../dist/proxy/config.js'
import type { Log } from '../../dist/proxy/types.js'
import { FakeDataplane } from '../support/fake-dataplane.js'

const MIB = 1024 * 1024

/** The real addon, with setMallocThresholds recorded (and not applied to this process). */
function recording(t: Test, answer = true): [number, number][] {
  const calls: [number, number][] = []
  setBinding({ ...loadNativeBinding(), setMallocThresholds: (trim: number, mmap: number) => (calls.push([trim, mmap]), answer) })
  t.teardown(useNativeBinding)
  return calls
}

t.test('bad thresholds: a ValidationError naming the field, and nothing set', async (t) => {
  const calls = recording(t)
  const good = { trimThreshold: 32 * MIB, mmapThreshold: 4 * MIB }
  const cases: [unknown, string][] = [
    [null, 'thresholds'],
    ['32M', 'thresholds'],
    [{ ...good, trimThreshold: -1 }, 'trimThreshold'],
    [{ ...good, trimThreshold: 1.5 }, 'trimThreshold'],
    [{ ...good, trimThreshold: MAX_TRIM_THRESHOLD + 1 }, 'trimThreshold'],
    [{ ...good, trimThreshold: '1048576' }, 'trimThreshold'],
    [{ mmapThreshold: 4 * MIB }, 'trimThreshold'],
    [{ ...good, mmapThreshold: MAX_MMAP_THRESHOLD + 1 }, 'mmapThreshold'],
    [{ ...good, mmapThreshold: -4096 }, 'mmapThreshold'],
    [{ ...good, mmapThreshold: NaN }, 'mmapThreshold'],
    [{ trimThreshold: 32 * MIB }, 'mmapThreshold'],
  ]
  for (const [input, field] of cases) {
    let caught: unknown
    try {
      tuneMalloc(input as never)
    } catch (e) {
      caught = e
    }
    t.ok(caught instanceof ValidationError, `${JSON.stringify(input)}: a ValidationError`)
    t.match(caught, { op: 'malloc', field }, `naming ${field}`)
  }
  t.same(calls, [], 'mallopt was never reached')
  t.equal(tuneMalloc(good), true, 'good values go through')
  t.equal(tuneMalloc({ trimThreshold: MAX_TRIM_THRESHOLD, mmapThreshold: MAX_MMAP_THRESHOLD }), true, 'the maxima are allowed')
  t.same(calls, [[32 * MIB, 4 * MIB], [MAX_TRIM_THRESHOLD, MAX_MMAP_THRESHOLD]], 'as given, trim first, mmap second')
})

/** In a fresh process: how many MiB the brk heap ([heap] in /proc/self/maps) grows by for 256 live 1 MiB Buffers. */
function heapGrowth(tune: boolean): number {
  const script = `
    import { readFileSync } from 'node:fs'
    import { tuneMalloc } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)}
    const heap = () => { const m = /^([0-9a-f]+)-([0-9a-f]+) .*\\[heap\\]$/m.exec(readFileSync('/proc/self/maps', 'utf8')); return m ? parseInt(m[2], 16) - parseInt(m[1], 16) : 0 }
    if (${tune} && !tuneMalloc({ trimThreshold: 32 << 20, mmapThreshold: 4 << 20 })) throw new Error('not taken')
    const h0 = heap(), keep = []
    for (let i = 0; i < 256; i++) keep.push(Buffer.allocUnsafeSlow(1 << 20))
    process.stdout.write(String((heap() - h0) / 1048576))`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 })
  if (r.status !== 0) throw new Error(r.stderr)
  return Number(r.stdout)
}

t.test('the real addon: glibc takes the thresholds, and blocks below the mmap threshold then come from the heap', { skip: process.platform !== 'linux' }, async (t) => {
  t.equal(tuneMalloc({ ...DAEMON_MALLOC_THRESHOLDS }), true, 'the daemon\'s thresholds are taken (glibc)')
  t.throws(() => loadNativeBinding().setMallocThresholds('1' as never, 1), TypeError, 'the binding refuses what is not a number')
  // glibc's default: a 1 MiB block gets a mapping of its own; at 4 MiB it is carved from the heap
  // (which grows by 256 MiB less the free space it had: tens of MiB at most in a fresh process).
  const plain = heapGrowth(false)
  const tuned = heapGrowth(true)
  t.ok(plain < 16, `256 × 1 MiB without tuning: mapped, the heap hardly grows (${plain} MiB)`)
  t.ok(tuned >= 192, `with mmapThreshold 4 MiB: from the heap (less what it had free) (${tuned} MiB)`)
})

t.test('mallocThresholdsFromEnv: off by default, on when asked unless GLIBC_TUNABLES chose, else an error', async (t) => {
  t.equal(mallocThresholdsFromEnv({}), false, 'unset: left to glibc')
  for (const v of ['on', '1', 'true', 'ON']) t.same(mallocThresholdsFromEnv({ TSPROXY_MALLOC_TUNING: v }), DAEMON_MALLOC_THRESHOLDS, `"${v}": on`)
  for (const v of ['off', '0', 'false', 'Off', '']) t.equal(mallocThresholdsFromEnv({ TSPROXY_MALLOC_TUNING: v }), false, `"${v}": off`)
  t.equal(mallocThresholdsFromEnv({ TSPROXY_MALLOC_TUNING: 'on', GLIBC_TUNABLES: 'glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=1000000' }), false, 'GLIBC_TUNABLES with a threshold: left alone')
  t.same(mallocThresholdsFromEnv({ TSPROXY_MALLOC_TUNING: 'on', GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }), DAEMON_MALLOC_THRESHOLDS, 'GLIBC_TUNABLES without one: on')
  t.throws(() => mallocThresholdsFromEnv({ TSPROXY_MALLOC_TUNING: 'yes please' }), /TSPROXY_MALLOC_TUNING="yes please"/, 'anything else names the variable')
})

t.test('the daemon leaves the thresholds to glibc unless given them, then sets them at start', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsproxy-malloc-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'empty.yaml'), '')
  const sysctl = { get: async () => 0, set: async () => undefined }
  const config = { ...defaultConfig(), mode: 'ipvs' as const, healthzBindAddress: '127.0.0.1:0', metricsBindAddress: '127.0.0.1:0' }
  const run = async (malloc: ConstructorParameters<typeof Daemon>[0]['malloc'] | 'default') => {
    const calls = recording(t)
    const lines: string[] = []
    const log: Log = (_level, msg) => void lines.push(msg)
    const fake = new FakeDataplane({ nodeAddresses: [{ link: 'eth0', address: '192.168.1.10', prefix: 24 }] })
    const d = new Daemon({ config, manifests: dir, log, dataplane: fake, nodeName: 'n1', sysctl, ...(malloc === 'default' ? {} : { malloc }) })
    await d.start()
    await d.stop()
    useNativeBinding()
    return { calls, lines }
  }
  const byDefault = await run('default')
  t.same(byDefault.calls, [], 'by default: never')
  t.notOk(byDefault.lines.some((l) => l.startsWith('malloc')), 'and says nothing (a start that fails says one line only)')
  const on = await run({ ...DAEMON_MALLOC_THRESHOLDS })
  t.same(on.calls, [[DAEMON_MALLOC_THRESHOLDS.trimThreshold, DAEMON_MALLOC_THRESHOLDS.mmapThreshold]], 'the daemon\'s thresholds: once')
  t.ok(on.lines.includes('malloc thresholds set'), 'and says so')
  const off = await run(false)
  t.same(off.calls, [], 'malloc: false: never')
  const own = await run({ trimThreshold: 8 * MIB, mmapThreshold: 1 * MIB })
  t.same(own.calls, [[8 * MIB, 1 * MIB]], 'given thresholds are the ones set')
  await t.rejects(run({ trimThreshold: 8 * MIB, mmapThreshold: 64 * MIB }), { name: 'ValidationError', field: 'mmapThreshold' }, 'bad ones stop the start')
})
