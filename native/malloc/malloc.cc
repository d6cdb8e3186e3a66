// malloc's thresholds, process-wide (lib/memory.ts): how much freed memory at the
// top of the heap glibc keeps before it trims (M_TRIM_THRESHOLD), and from what
// size a block gets a mapping of its own that free() unmaps (M_MMAP_THRESHOLD).
// Setting either also stops glibc's own adjustment of both. Only glibc has
// mallopt with these meanings: elsewhere the call changes nothing and says so.
#include "binding.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace memtune {
namespace {

// setMallocThresholds(trimThreshold, mmapThreshold) -> boolean: true when glibc
// took both. Validation is lib/memory.ts's; this only refuses what is not an int.
Napi::Value SetThresholdsFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "setMallocThresholds(trimThreshold, mmapThreshold): numbers").ThrowAsJavaScriptException();
    return env.Undefined();
  }
#ifdef __GLIBC__
  int trim = info[0].As<Napi::Number>().Int32Value();
  int mmap = info[1].As<Napi::Number>().Int32Value();
  // mmap first: an older glibc refuses a value above 32 MiB (64-bit), and then
  // nothing has changed yet.
  if (mallopt(M_MMAP_THRESHOLD, mmap) != 1) return Napi::Boolean::New(env, false);
  return Napi::Boolean::New(env, mallopt(M_TRIM_THRESHOLD, trim) == 1);
#else
  return Napi::Boolean::New(env, false);
#endif
}

}  // namespace

void initBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("setMallocThresholds", Napi::Function::New(env, SetThresholdsFn, "setMallocThresholds"));
}

}  // namespace memtune
