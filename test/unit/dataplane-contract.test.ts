// The dataplane contract (test/support/contract.ts) on the in-memory kernel:
// the same scenarios and read-backs as test/kernel/dataplane-contract.ktest.ts
// on the real one.
import t from 'tap'
import { FakeDataplane } from '../support/fake-dataplane.js'
import { cleanUp, scenarios } from '../support/contract.js'

for (const s of scenarios) {
  t.test(s.name, async (t) => {
    const dp = new FakeDataplane()
    t.strictSame(await s.run(dp), s.want)
    await cleanUp(dp)
    t.strictSame([dp.services.size, dp.sets.size, [...dp.links.keys()], [...(dp.chains('nat')?.keys() ?? [])]], [0, 0, ['lo'], []], 'cleanUp leaves nothing')
  })
}
