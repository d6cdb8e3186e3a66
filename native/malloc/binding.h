#pragma once
#include <napi.h>

namespace memtune {
// Adds `setMallocThresholds(trimThreshold, mmapThreshold)` to exports.
void initBinding(Napi::Env env, Napi::Object exports);
}  // namespace memtune
