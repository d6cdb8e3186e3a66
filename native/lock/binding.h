#pragma once
#include <napi.h>

namespace lockfile {
// Adds `lockFile(path)` and `unlockFile(fd)` to exports.
void initBinding(Napi::Env env, Napi::Object exports);
}  // namespace lockfile
