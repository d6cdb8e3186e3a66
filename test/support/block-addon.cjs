// Preloaded with --require: loading the native addon fails, as on a machine
// without the binary, so a test can show what works without it.
const Module = require('node:module')
const load = Module._load
Module._load = function (request, ...rest) {
  if (request === 'node-gyp-build') throw new Error('the native addon is absent (test/support/block-addon.cjs)')
  return load.call(this, request, ...rest)
}
