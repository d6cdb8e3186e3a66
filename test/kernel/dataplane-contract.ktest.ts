// The dataplane contract (test/support/contract.ts) on the real kernel through
// openDataplane(), the dataplane the IPVS proxier runs on: the read-backs
// test/unit/dataplane-contract.test.ts expects of the in-memory kernel.
import t from 'tap'
import { openDataplane } from '../../dist/proxy/ipvs/dataplane.js'
import { cleanUp, scenarios } from '../support/contract.js'

const dp = await openDataplane('inet')
t.teardown(async () => {
  await cleanUp(dp)
  await dp.close()
})

for (const s of scenarios) {
  t.test(s.name, async (t) => {
    await cleanUp(dp)
    t.strictSame(await s.run(dp), s.want)
  })
}
