// node --import ./test/kernel/ts-register.mjs file.ts: see ts-hooks.mjs.
// TSPROXY_TS_CACHE names the dir of precompiled modules (optional).
import { register } from 'node:module'

register('./ts-hooks.mjs', import.meta.url, {
  data: { cacheDir: process.env.TSPROXY_TS_CACHE || null },
})
