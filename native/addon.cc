// tsproxy's native addon: one netlink core (native/netlink) and the families
// that speak through it. libiptc (iptables) is loaded separately, on demand.
#include <napi.h>

#include "iptc/binding.h"
#include "lock/binding.h"
#include "malloc/binding.h"
#include "netlink/binding.h"
#include "netlink/codec.h"

namespace nl {

const Codec* genlCodec();
const Codec* ipvsCodec();
const Codec* ipsetCodec();
const Codec* nftablesCodec();
const Codec* routeCodec();
const Codec* conntrackCodec();

const Codec* findCodec(const std::string& name) {
  if (name == "genl") return genlCodec();
  if (name == "ipvs") return ipvsCodec();
  if (name == "ipset") return ipsetCodec();
  if (name == "nftables") return nftablesCodec();
  if (name == "route") return routeCodec();
  if (name == "conntrack") return conntrackCodec();
  return nullptr;
}

}  // namespace nl

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  nl::initBinding(env, exports);
  iptc::initBinding(env, exports);  // libiptc itself is dlopen()ed on first use
  lockfile::initBinding(env, exports);
  memtune::initBinding(env, exports);
  return exports;
}

NODE_API_MODULE(tsproxy, Init)
