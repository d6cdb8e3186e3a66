#pragma once
#include <napi.h>

namespace nl {
// Adds NetlinkSocket and the codec entry points (encode, decode, collect) to exports.
void initBinding(Napi::Env env, Napi::Object exports);
}  // namespace nl
