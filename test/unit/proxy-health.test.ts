// lib/proxy/health.ts: kube-proxy's proxier health on a hand-driven clock. An
// update waiting longer than the timeout makes the proxy unhealthy; only the
// oldest waiting update counts; a sync clears it; before the first sync the
// proxy is healthy however long an update waits (kube-proxy's rule).
import t from 'tap'
import { ProxyHealth } from '../../dist/proxy/health.js'

const T0 = Date.UTC(2024, 10, 21, 19, 14, 7)
const TIMEOUT = 60_000

function clocked() {
  let now = T0
  const health = new ProxyHealth({ healthTimeout: TIMEOUT, now: () => now })
  return { health, step: (ms: number) => void (now += ms), at: () => now }
}

t.test('healthy at start, with nothing synced or queued', async (t) => {
  const { health } = clocked()
  t.same(health.status(), { healthy: true, syncing: true, lastUpdated: undefined, currentTime: new Date(T0) })
  t.equal(health.nodeEligible, true, 'the node starts eligible')
})

t.test('before the first sync, a waiting update never makes it unhealthy', async (t) => {
  const { health, step } = clocked()
  health.queued()
  step(10 * TIMEOUT)
  const s = health.status()
  t.equal(s.healthy, true)
  t.equal(s.lastUpdated, undefined)
  t.same(s.oldestPendingQueued, new Date(T0), 'the waiting time is still reported')
})

t.test('after a sync: late by the timeout is unhealthy, a sync makes it healthy again', async (t) => {
  const { health, step, at } = clocked()
  health.updated()
  const synced = at()
  step(25_000)
  t.equal(health.status().healthy, true, 'nothing queued: healthy however long since the sync')
  health.queued()
  const queuedAt = at()
  step(TIMEOUT - 1)
  t.equal(health.status().healthy, true, 'one millisecond short of the timeout')
  step(1)
  const late = health.status()
  t.same(late, { healthy: false, syncing: false, lastUpdated: new Date(synced), currentTime: new Date(queuedAt + TIMEOUT), oldestPendingQueued: new Date(queuedAt) })
  health.updated()
  t.same(health.status(), { healthy: true, syncing: true, lastUpdated: new Date(at()), currentTime: new Date(at()) }, 'the sync clears the waiting time')
})

t.test('only the oldest waiting update counts', async (t) => {
  const { health, step } = clocked()
  health.updated()
  health.queued()
  step(TIMEOUT / 2)
  health.queued()
  step(TIMEOUT / 2)
  const s = health.status()
  t.equal(s.healthy, false, 'the second update does not restart the wait')
  t.same(s.oldestPendingQueued, new Date(T0))
})

t.test('status(now) judges at the time given', async (t) => {
  const { health } = clocked()
  health.updated()
  health.queued()
  t.equal(health.status(T0 + TIMEOUT - 1).healthy, true)
  t.equal(health.status(new Date(T0 + TIMEOUT)).healthy, false)
  t.same(health.status(T0 + 5).currentTime, new Date(T0 + 5))
})

t.test('node eligibility does not enter the proxier status', async (t) => {
  const { health } = clocked()
  health.nodeEligible = false
  t.equal(health.status().healthy, true, 'it is for /healthz to combine the two')
})

t.test('a source that cannot be read: healthy within the timeout, unhealthy after, healthy once it reads', async (t) => {
  const { health, step } = clocked()
  health.updated()
  health.sourceFailed('manifests', 'ENOENT: no such file or directory')
  step(TIMEOUT / 2)
  health.sourceFailed('manifests', 'ENOTDIR: not a directory')
  let s = health.status()
  t.equal(s.healthy, true, 'within the timeout: a short outage (a directory swapped) is not a failure')
  t.same(s.sourceError, { source: 'manifests', message: 'ENOTDIR: not a directory', since: new Date(T0) }, 'reported, with the latest error and the first failure\'s time')
  step(TIMEOUT / 2)
  s = health.status()
  t.equal(s.healthy, false, 'a failure that lasts the timeout makes it unhealthy, however many retries failed meanwhile')
  t.equal(s.syncing, true, 'but syncs keep up: /livez stays good (a restart would not mend the source)')
  health.updated()
  t.equal(health.status().healthy, false, 'syncs do not clear it: they sync stale state')
  health.sourceFailed('kubernetes services', 'list: connection refused')
  health.sourceRecovered('manifests')
  s = health.status()
  t.equal(s.healthy, true, 'the other source has failed only now')
  t.equal(s.sourceError?.source, 'kubernetes services')
  health.sourceRecovered('kubernetes services')
  t.same(health.status(), { healthy: true, syncing: true, lastUpdated: new Date(T0 + TIMEOUT), currentTime: new Date(T0 + TIMEOUT) }, 'readable again: healthy, nothing reported')
})

t.test('a source unreadable from the start fails health after the timeout, before any sync', async (t) => {
  const { health, step } = clocked()
  health.sourceFailed('manifests', 'ENOENT')
  step(TIMEOUT - 1)
  health.sourceFailed('manifests', 'ENOENT')
  t.equal(health.status().healthy, true)
  step(1)
  t.equal(health.status().healthy, false, 'waiting for a source that never reads is not a slow start')
})

t.test('a source failure not repeated within the timeout (at least a minute) is stale', async (t) => {
  const { health, step } = clocked()
  health.updated()
  health.sourceFailed('kubernetes endpointslices', 'watch: connection reset')
  step(TIMEOUT)
  const s = health.status()
  t.equal(s.healthy, true, 'one failure, then silence: the watch reconnected to a quiet stream')
  t.equal(s.sourceError, undefined)
  health.sourceFailed('kubernetes endpointslices', 'watch: connection reset')
  step(TIMEOUT - 1)
  health.sourceFailed('kubernetes endpointslices', 'watch: connection refused')
  t.equal(health.status().healthy, true, 'a new outage starts its own timeout')
  step(1)
  t.equal(health.status().healthy, false, 'failing all along since')
})
