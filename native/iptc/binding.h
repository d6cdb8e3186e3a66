#pragma once
#include <napi.h>

namespace iptc {
// Adds `iptc` (Transaction, load, prefetch, dropSnapshot, tableInfo, layout) to exports.
void initBinding(Napi::Env env, Napi::Object exports);
}  // namespace iptc
