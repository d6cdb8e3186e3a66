// lib/proxy/ipvs/weights.ts: the applied real servers of one virtual server.
// It must behave as the Map it replaced (get, has, set, delete, size, insertion
// order), below and above the size where it turns into one; checked against a
// Map under the same seeded random operations.
import t, { type Test } from 'tap'
import { Weights } from '../../dist/proxy/ipvs/weights.js'

/** A small deterministic generator (no Math.random: a failure must replay). */
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

function same(t: Test, w: Weights, m: Map<string, number>, what: string): void {
  t.equal(w.size, m.size, `${what}: size`)
  t.strictSame([...w], [...m], `${what}: entries in insertion order`)
}

t.test('one entry at a time: the weight programmed (1), 0 while draining, -1 not masq', async (t) => {
  const w = new Weights()
  t.equal(w.size, 0)
  t.equal(w.get('10.0.0.1:80'), undefined)
  t.equal(w.has('10.0.0.1:80'), false)
  w.set('10.0.0.1:80', 1).set('10.0.0.2:80', 1)
  t.strictSame([...w], [['10.0.0.1:80', 1], ['10.0.0.2:80', 1]])
  w.set('10.0.0.2:80', 0)
  t.equal(w.get('10.0.0.2:80'), 0, 'a weight other than 1 is kept')
  t.equal(w.get('10.0.0.1:80'), 1)
  w.set('10.0.0.3:80', -1)
  t.strictSame([...w], [['10.0.0.1:80', 1], ['10.0.0.2:80', 0], ['10.0.0.3:80', -1]])
  t.equal(w.delete('10.0.0.9:80'), false, 'deleting what is not there')
  t.equal(w.delete('10.0.0.2:80'), true)
  t.strictSame([...w], [['10.0.0.1:80', 1], ['10.0.0.3:80', -1]], 'order kept across a delete')
  w.set('10.0.0.3:80', 1)
  t.strictSame([...w], [['10.0.0.1:80', 1], ['10.0.0.3:80', 1]], 'back to 1')
  w.delete('10.0.0.1:80')
  w.delete('10.0.0.3:80')
  t.equal(w.size, 0)
  t.strictSame([...w], [])
})

t.test('iterating while changing sees the entries as they were (no entry skipped or repeated)', async (t) => {
  const w = new Weights()
  for (let i = 0; i < 5; i++) w.set(`k${i}`, 1)
  const seen: string[] = []
  for (const [k] of w) {
    seen.push(k)
    w.delete(k)
  }
  t.strictSame(seen, ['k0', 'k1', 'k2', 'k3', 'k4'])
  t.equal(w.size, 0)
})

t.test('the same as a Map under random operations, small and past the switch to a Map', async (t) => {
  for (const [seed, keys] of [[1, 6], [2, 14], [3, 40], [4, 200]] as const) {
    const r = rng(seed)
    const w = new Weights()
    const m = new Map<string, number>()
    for (let step = 0; step < 2000; step++) {
      const k = `10.0.${Math.floor(r() * keys)}.1:8080`
      const x = r()
      if (x < 0.55) {
        const weight = r() < 0.8 ? 1 : r() < 0.5 ? 0 : -1
        w.set(k, weight)
        m.set(k, weight)
      } else if (x < 0.85) t.equal(w.delete(k), m.delete(k), `seed ${seed} step ${step}: delete`)
      else {
        t.equal(w.get(k), m.get(k), `seed ${seed} step ${step}: get`)
        t.equal(w.has(k), m.has(k), `seed ${seed} step ${step}: has`)
      }
      if (step % 100 === 99) same(t, w, m, `seed ${seed} step ${step}`)
    }
    same(t, w, m, `seed ${seed} at the end`)
  }
})
