// rtnetlink: names the messages and attributes of <linux/rtnetlink.h>,
// <linux/if_link.h> and <linux/if_addr.h> that a service proxy needs: links
// (a dummy kube-ipvs0: create, delete, set up/down, get, list) and their
// addresses (add, delete, list). Operations arrive already validated and
// normalized by lib/route (interface indices, address families as numbers).
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "../netlink/codec.h"

namespace nl {

namespace {

uint16_t u16field(const Napi::Object& o, const char* key) { return static_cast<uint16_t>(field::uint(o, key, 0xffff)); }

// A link is named by index (> 0) or, failing that, by name: the kernel looks
// the name up itself (IFLA_IFNAME) when ifi_index is 0. The header is filled
// before any attribute: an attribute may move the buffer (and so the header).
void putLinkRef(const Napi::Object& op, size_t ifiOff, Builder& b) {
  if (field::has(op, "index"))
    reinterpret_cast<ifinfomsg*>(b.at(ifiOff))->ifi_index = static_cast<int>(field::uint(op, "index", 0x7fffffff));
  if (field::has(op, "name")) b.putString(IFLA_IFNAME, field::str(op, "name"));
}

// Reserves the ifinfomsg; returns its offset (pointers into the buffer go stale as it grows).
size_t linkHeader(Builder& b) { return b.extra(sizeof(ifinfomsg)); }
ifinfomsg* ifinfo(Builder& b, size_t off) { return reinterpret_cast<ifinfomsg*>(b.at(off)); }

// An address attribute: 4 or 16 bytes, network order.
void putAddress(Builder& b, uint16_t type, int af, const std::string& text, Napi::Env env, const char* what) {
  uint8_t addr[16];
  inet::parse(env, text, af, addr, what);
  b.put(type, addr, inet::size(af));
}

void encodeNewLink(const Napi::Object& op, Builder& b) {
  // NLM_F_EXCL always: an existing link of the same name is EEXIST, never
  // silently reconfigured (it may be someone else's, of another kind).
  size_t m = b.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg* ifi = ifinfo(b, linkHeader(b));
  ifi->ifi_family = AF_UNSPEC;
  if (field::flag(op, "up")) {
    ifi->ifi_flags = IFF_UP;
    ifi->ifi_change = IFF_UP;
  }
  b.putString(IFLA_IFNAME, field::str(op, "name"));
  if (field::has(op, "mtu")) b.putU32(IFLA_MTU, field::u32(op, "mtu"));
  size_t info = b.nestStart(IFLA_LINKINFO);
  b.putString(IFLA_INFO_KIND, field::str(op, "kind"));
  b.nestEnd(info);
  b.end(m);
}

void encodeSetLink(const Napi::Object& op, Builder& b) {
  // RTM_NEWLINK without NLM_F_CREATE changes an existing link, as `ip link set` does.
  size_t m = b.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
  size_t off = linkHeader(b);
  ifinfomsg* ifi = ifinfo(b, off);
  ifi->ifi_family = AF_UNSPEC;
  if (field::has(op, "up")) {
    ifi->ifi_change = IFF_UP;
    ifi->ifi_flags = field::flag(op, "up") ? IFF_UP : 0;
  }
  putLinkRef(op, off, b);
  if (field::has(op, "mtu")) b.putU32(IFLA_MTU, field::u32(op, "mtu"));
  b.end(m);
}

void encodeAddr(const Napi::Object& op, uint16_t type, uint16_t flags, Builder& b, bool full) {
  Napi::Env env = op.Env();
  int af = static_cast<int>(field::uint(op, "family", 0xff));
  if (af != AF_INET && af != AF_INET6) throw Napi::RangeError::New(env, "route: family must be AF_INET or AF_INET6");
  size_t m = b.begin(type, flags);
  auto ifa = reinterpret_cast<ifaddrmsg*>(b.at(b.extra(sizeof(ifaddrmsg))));
  ifa->ifa_family = static_cast<uint8_t>(af);
  ifa->ifa_prefixlen = static_cast<uint8_t>(field::uint(op, "prefix", af == AF_INET ? 32 : 128));
  ifa->ifa_index = field::uint(op, "index", 0x7fffffff);
  uint32_t addrFlags = full ? field::u32(op, "flags", 0) : 0;
  ifa->ifa_flags = static_cast<uint8_t>(addrFlags & 0xff);
  ifa->ifa_scope = full ? static_cast<uint8_t>(field::uint(op, "scope", 0xff, RT_SCOPE_UNIVERSE)) : 0;
  std::string address = field::str(op, "address");
  // As iproute2 sends it: IFA_LOCAL is the address itself, IFA_ADDRESS the
  // peer's (the address again on a broadcast or dummy link).
  putAddress(b, IFA_LOCAL, af, address, env, "address");
  putAddress(b, IFA_ADDRESS, af, field::has(op, "peer") ? field::str(op, "peer") : address, env, "peer");
  // IFA_FLAGS carries the bits the u8 ifa_flags cannot (IFA_F_NOPREFIXROUTE).
  if (full && addrFlags) b.putU32(IFA_FLAGS, addrFlags);
  b.end(m);
}

// ---- replies ------------------------------------------------------------------------------

Napi::Value decodeLink(Napi::Env env, const nlmsghdr* h) {
  auto m = nl::body<ifinfomsg>(h);
  if (!m.hdr) return env.Undefined();
  const ifinfomsg* ifi = m.hdr;
  Attrs a = m.table(IFLA_MAX);
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", "link");
  o.Set("index", ifi->ifi_index);
  o.Set("name", a.str(IFLA_IFNAME));
  o.Set("type", ifi->ifi_type);
  o.Set("flags", ifi->ifi_flags);
  if (a.has(IFLA_MTU)) o.Set("mtu", a.u32(IFLA_MTU));
  if (a.has(IFLA_OPERSTATE)) o.Set("operState", a.u8(IFLA_OPERSTATE));
  if (a.has(IFLA_MASTER)) o.Set("master", a.u32(IFLA_MASTER));
  if (a.has(IFLA_LINK)) o.Set("link", a.u32(IFLA_LINK));
  size_t len = 0;
  if (const uint8_t* mac = a.raw(IFLA_ADDRESS, &len)) o.Set("mac", Napi::Buffer<uint8_t>::Copy(env, mac, len));
  if (a.has(IFLA_LINKINFO)) {
    Attrs info = Attrs::ofNest(a.get(IFLA_LINKINFO), IFLA_INFO_MAX);
    if (info.has(IFLA_INFO_KIND)) o.Set("linkKind", info.str(IFLA_INFO_KIND));
    if (info.bad()) throw Malformed{"link"};
  }
  if (a.bad()) throw Malformed{"link"};
  return o;
}

Napi::Value decodeAddr(Napi::Env env, const nlmsghdr* h) {
  auto m = nl::body<ifaddrmsg>(h);
  if (!m.hdr) return env.Undefined();
  const ifaddrmsg* ifa = m.hdr;
  Attrs a = m.table(IFA_MAX);
  int af = ifa->ifa_family;
  if (af != AF_INET && af != AF_INET6) return env.Undefined();
  size_t need = inet::size(af);
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", "address");
  o.Set("family", af);
  o.Set("prefix", ifa->ifa_prefixlen);
  o.Set("index", ifa->ifa_index);
  o.Set("scope", ifa->ifa_scope);
  // IFA_FLAGS (Linux 3.14+) holds all the bits; the header only the low 8.
  o.Set("flags", a.u32(IFA_FLAGS, ifa->ifa_flags));
  size_t len = 0;
  const uint8_t* local = a.raw(IFA_LOCAL, &len);
  if (local && len < need) local = nullptr;
  const uint8_t* peer = a.raw(IFA_ADDRESS, &len);
  if (peer && len < need) peer = nullptr;
  // IPv4 always sends IFA_LOCAL (the address) and IFA_ADDRESS (the peer, the
  // same on most links); IPv6 sends IFA_ADDRESS alone unless there is a peer.
  if (local) {
    o.Set("address", inet::format(af, local));
    if (peer && std::memcmp(local, peer, need) != 0) o.Set("peer", inet::format(af, peer));
  } else if (peer) {
    o.Set("address", inet::format(af, peer));
  }
  if (a.has(IFA_LABEL)) o.Set("label", a.str(IFA_LABEL));
  if (const uint8_t* ci = a.raw(IFA_CACHEINFO, &len); ci && len >= sizeof(ifa_cacheinfo)) {
    ifa_cacheinfo info;
    std::memcpy(&info, ci, sizeof info);
    o.Set("validLifetime", info.ifa_valid);
    o.Set("preferredLifetime", info.ifa_prefered);
  }
  if (a.bad()) throw Malformed{"address"};
  return o;
}

class RouteCodec : public Codec {
 public:
  void encode(const Napi::Object& op, uint16_t, Builder& b, Request& req) const override {
    std::string cmd = field::str(op, "cmd");
    if (cmd == "newLink") {
      encodeNewLink(op, b);
    } else if (cmd == "setLink") {
      encodeSetLink(op, b);
    } else if (cmd == "delLink" || cmd == "getLink") {
      bool del = cmd == "delLink";
      size_t m = b.begin(del ? RTM_DELLINK : RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK);
      size_t off = linkHeader(b);
      ifinfo(b, off)->ifi_family = AF_UNSPEC;
      putLinkRef(op, off, b);
      b.end(m);
    } else if (cmd == "listLinks") {
      req.dump = true;
      size_t m = b.begin(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP);
      ifinfo(b, linkHeader(b))->ifi_family = AF_UNSPEC;
      b.end(m);
    } else if (cmd == "newAddr") {
      // NLM_F_EXCL: an address already on the link is EEXIST, as kube-proxy
      // expects to learn ("already bound").
      encodeAddr(op, RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, b, true);
    } else if (cmd == "delAddr") {
      encodeAddr(op, RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, b, false);
    } else if (cmd == "listAddrs") {
      // AF_UNSPEC: every family's addresses in one dump. The kernel filters a
      // dump by link only on strict-checking sockets; lib/route filters.
      req.dump = true;
      size_t m = b.begin(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP);
      auto ifa = reinterpret_cast<ifaddrmsg*>(b.at(b.extra(sizeof(ifaddrmsg))));
      ifa->ifa_family = static_cast<uint8_t>(u16field(op, "family") & 0xff);
      b.end(m);
    } else {
      throw Napi::TypeError::New(op.Env(), "route: unknown cmd " + cmd);
    }
  }

  Napi::Value decode(Napi::Env env, const nlmsghdr* h) const override {
    switch (h->nlmsg_type) {
      case RTM_NEWLINK:
        return decodeLink(env, h);
      case RTM_NEWADDR:
        return decodeAddr(env, h);
      default:
        return env.Undefined();
    }
  }
};

}  // namespace

const Codec* routeCodec() {
  static RouteCodec c;
  return &c;
}

}  // namespace nl
