// lib/proxy/preflight: which of the capabilities tsproxy needs a CapEff line
// lacks, and where the instance lock is. (The whole refusal, as nobody and
// without CAP_NET_RAW, is test/kernel/proxy-startup.host.ktest.ts.)
import t from 'tap'
import { capabilityMessage, lockFilePath, missingCapabilities } from '../../dist/proxy/preflight.js'

const status = (capEff: string): string => `Name:\tnode\nUmask:\t0022\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t${capEff}\nCapBnd:\t000001ffffffffff\n`

t.test('CapEff bits 12 (CAP_NET_ADMIN) and 13 (CAP_NET_RAW)', async (t) => {
  t.same(missingCapabilities(status('000001ffffffffff')), [], 'root: nothing missing')
  t.same(missingCapabilities(status('0000000000003000')), [], 'exactly the two')
  t.same(missingCapabilities(status('0000000000000000')), ['CAP_NET_ADMIN', 'CAP_NET_RAW'], 'nobody')
  t.same(missingCapabilities(status('000001ffffffdfff')), ['CAP_NET_RAW'], 'root without CAP_NET_RAW (capsh --drop=cap_net_raw)')
  t.same(missingCapabilities(status('0000000000002000')), ['CAP_NET_ADMIN'])
  t.same(missingCapabilities('Name:\tnode\n'), [], 'no CapEff line: nothing to tell')
})

t.test('the message names what is missing and what to do', async (t) => {
  t.equal(capabilityMessage(['CAP_NET_RAW']), 'tsproxy needs CAP_NET_ADMIN and CAP_NET_RAW (missing: CAP_NET_RAW): run it as root or grant them')
})

t.test('the lock file: TSPROXY_LOCK_FILE, else /run/tsproxy.lock', async (t) => {
  t.equal(lockFilePath({}), '/run/tsproxy.lock')
  t.equal(lockFilePath({ TSPROXY_LOCK_FILE: '' }), '/run/tsproxy.lock')
  t.equal(lockFilePath({ TSPROXY_LOCK_FILE: '/tmp/x.lock' }), '/tmp/x.lock')
})
