// lib/proxy/log.ts: JSON lines and klog-like text, debug only from -v=4, Errors
// with their own fields, and no throw on cycles, BigInts or hostile getters.
import t from 'tap'
import { NetlinkError, ValidationError } from '../../dist/errors.js'
import { makeLogger } from '../../dist/proxy/log.js'
import { ManifestError } from '../../dist/proxy/sources/manifests.js'

const NOW = Date.UTC(2024, 10, 21, 19, 14, 7, 123)

function capture(format: 'json' | 'text', verbosity = 2) {
  const lines: string[] = []
  const log = makeLogger({ format, verbosity, now: () => NOW, write: (l) => void lines.push(l) })
  return { log, lines }
}

t.test('JSON: one object per line, core keys first', async (t) => {
  const { log, lines } = capture('json')
  log('info', 'synced', { services: 3, mode: 'ipvs' })
  log('warn', 'slow')
  t.same(lines, ['{"ts":"2024-11-21T19:14:07.123Z","level":"info","msg":"synced","services":3,"mode":"ipvs"}\n', '{"ts":"2024-11-21T19:14:07.123Z","level":"warn","msg":"slow"}\n'])
})

t.test('a field cannot overwrite ts, level or msg', async (t) => {
  const { log, lines } = capture('json')
  log('error', 'real', { msg: 'fake', level: 'debug', ts: 0 })
  t.equal(lines[0], '{"ts":"2024-11-21T19:14:07.123Z","level":"error","msg":"real","_msg":"fake","_level":"debug","_ts":0}\n')
})

t.test('debug lines from verbosity 4', async (t) => {
  for (const [v, shown] of [
    [0, false],
    [3, false],
    [4, true],
    [9, true],
  ] as const) {
    const { log, lines } = capture('json', v)
    log('debug', 'detail')
    log('info', 'always')
    t.equal(lines.length, shown ? 2 : 1, `-v=${v}: debug ${shown ? 'shown' : 'hidden'}`)
    t.match(lines.at(-1), /"msg":"always"/)
  }
})

t.test('Errors: name, message and their own fields', async (t) => {
  const { log, lines } = capture('json')
  log('error', 'sync failed', { err: new NetlinkError({ errno: 17, op: 'ipvs.addService' }) })
  log('error', 'refused', { err: new ValidationError('ipvs.addService', 'destination.port', 70000, 'must be 0-65535') })
  const cause = new Error('bad indentation')
  log('warn', 'manifest', { err: new ManifestError({ file: 'a.yaml', document: 1, line: 4, reason: 'not YAML', cause }) })
  t.equal(lines[0], '{"ts":"2024-11-21T19:14:07.123Z","level":"error","msg":"sync failed","err":{"name":"NetlinkError","message":"ipvs.addService: EEXIST","errno":17,"code":"EEXIST","op":"ipvs.addService"}}\n')
  t.same(JSON.parse(lines[1]!).err, {
    name: 'ValidationError',
    message: 'ipvs.addService: destination.port must be 0-65535 (got 70000)',
    code: 'ERR_TSPROXY_INVALID',
    op: 'ipvs.addService',
    field: 'destination.port',
    value: 70000,
  })
  t.same(JSON.parse(lines[2]!).err, {
    name: 'ManifestError',
    message: 'a.yaml:4 (document 1): not YAML',
    file: 'a.yaml',
    document: 1,
    line: 4,
    keptPrevious: false,
    cause: { name: 'Error', message: 'bad indentation' },
  })
})

t.test('never throws: cycles, BigInt, NaN, throwing getters, deep nesting', async (t) => {
  const { log, lines } = capture('json')
  const loop: Record<string, unknown> = { name: 'loop' }
  loop.self = loop
  const shared = { n: 1 }
  const hostile = Object.defineProperty({}, 'boom', {
    enumerable: true,
    get() {
      throw new Error('no')
    },
  })
  const selfCause = new Error('me')
  ;(selfCause as Error & { again?: unknown }).again = selfCause
  let deep: unknown = 'bottom'
  for (let i = 0; i < 20; i++) deep = { d: deep }
  t.doesNotThrow(() => log('info', 'odd', { loop, pair: [shared, shared], big: 2n ** 70n, nan: NaN, inf: -Infinity, hostile, selfCause, deep, fn: function named() {} }))
  const o = JSON.parse(lines[0]!)
  t.same(o.loop, { name: 'loop', self: '[Circular]' })
  t.same(o.pair, [{ n: 1 }, { n: 1 }], 'a value seen twice is not a cycle')
  t.equal(o.big, '1180591620717411303424')
  t.equal(o.nan, 'NaN')
  t.equal(o.inf, '-Infinity')
  t.equal(o.hostile, '[Unserialisable: no]')
  t.same(o.selfCause, { name: 'Error', message: 'me', again: '[Circular]' })
  t.equal(o.fn, '[Function named]')
  t.match(JSON.stringify(o.deep), /"\[Object\]"/, 'nesting is cut')
  t.notMatch(JSON.stringify(o.deep), /bottom/)
})

t.test('text: klog-like header, key=value, quoted when needed', async (t) => {
  const { log, lines } = capture('text')
  log('info', 'Syncing ipvs rules', { services: 3, mode: 'ipvs', path: '/etc/a b', empty: '', ok: true })
  log('warn', 'slow sync', { seconds: 1.5 })
  log('error', 'sync failed', { err: new NetlinkError({ errno: 17, op: 'ipvs.addService' }), obj: { a: [1, 2n] } })
  log('info', 'two\nlines', { big: 5n })
  t.same(lines, [
    'I1121 19:14:07.123000 Syncing ipvs rules services=3 mode=ipvs path="/etc/a b" empty="" ok=true\n',
    'W1121 19:14:07.123000 slow sync seconds=1.5\n',
    'E1121 19:14:07.123000 sync failed err="ipvs.addService: EEXIST" obj={"a":[1,"2"]}\n',
    'I1121 19:14:07.123000 "two\\nlines" big=5\n',
  ])
})

t.test('text: debug lines as I, from verbosity 4', async (t) => {
  const { log, lines } = capture('text', 4)
  log('debug', 'detail', { n: 1 })
  t.same(lines, ['I1121 19:14:07.123000 detail n=1\n'])
})

t.test('writes to stderr by default', async (t) => {
  const written: string[] = []
  const original = process.stderr.write
  process.stderr.write = ((chunk: string) => {
    written.push(String(chunk))
    return true
  }) as typeof process.stderr.write
  try {
    makeLogger({ format: 'json', verbosity: 0, now: () => NOW })('info', 'to stderr')
  } finally {
    process.stderr.write = original
  }
  t.same(written, ['{"ts":"2024-11-21T19:14:07.123Z","level":"info","msg":"to stderr"}\n'])
})
