// IPVS over generic netlink: names the commands and attributes of
// <linux/ip_vs.h>. Operations arrive already validated and normalized by
// lib/ipvs (numbers for families, protocols and forwarding methods).
#include <linux/genetlink.h>
#include <linux/ip_vs.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "../netlink/codec.h"

namespace nl {

namespace {

struct Command {
  const char* name;
  uint8_t cmd;
  bool dump;
};

const Command kCommands[] = {
    {"newService", IPVS_CMD_NEW_SERVICE, false}, {"setService", IPVS_CMD_SET_SERVICE, false},
    {"delService", IPVS_CMD_DEL_SERVICE, false}, {"getService", IPVS_CMD_GET_SERVICE, false},
    {"listServices", IPVS_CMD_GET_SERVICE, true}, {"newDest", IPVS_CMD_NEW_DEST, false},
    {"setDest", IPVS_CMD_SET_DEST, false},       {"delDest", IPVS_CMD_DEL_DEST, false},
    {"listDests", IPVS_CMD_GET_DEST, true},      {"getInfo", IPVS_CMD_GET_INFO, false},
    {"getConfig", IPVS_CMD_GET_CONFIG, false},   {"setConfig", IPVS_CMD_SET_CONFIG, false},
    {"zero", IPVS_CMD_ZERO, false},              {"flush", IPVS_CMD_FLUSH, false},
};

// IPv4 netmasks travel as the mask itself in network order, IPv6 ones as a
// prefix length; the API speaks prefix lengths for both.
uint32_t prefixToMask(uint32_t prefix) { return prefix == 0 ? 0 : prefix >= 32 ? 0xffffffffu : 0xffffffffu << (32 - prefix); }
uint32_t maskToPrefix(uint32_t mask) { return static_cast<uint32_t>(__builtin_popcount(mask)); }

void putService(const Napi::Object& svc, Builder& b, bool full) {
  Napi::Env env = svc.Env();
  uint16_t af = static_cast<uint16_t>(field::uint(svc, "af", 0xffff));
  size_t nest = b.nestStart(IPVS_CMD_ATTR_SERVICE);
  b.putU16(IPVS_SVC_ATTR_AF, af);
  if (field::has(svc, "fwmark")) {
    b.putU32(IPVS_SVC_ATTR_FWMARK, field::u32(svc, "fwmark"));
  } else {
    uint8_t addr[16];
    inet::parse(env, field::str(svc, "address"), af, addr, "service.address");
    b.putU16(IPVS_SVC_ATTR_PROTOCOL, static_cast<uint16_t>(field::uint(svc, "protocol", 0xffff)));
    b.put(IPVS_SVC_ATTR_ADDR, addr, sizeof addr);
    b.putBe16(IPVS_SVC_ATTR_PORT, static_cast<uint16_t>(field::uint(svc, "port", 0xffff)));
  }
  if (full) {
    // The kernel wants all four on add and edit: an edit replaces them whole.
    b.putString(IPVS_SVC_ATTR_SCHED_NAME, field::str(svc, "scheduler"));
    if (field::has(svc, "peName")) b.putString(IPVS_SVC_ATTR_PE_NAME, field::str(svc, "peName"));
    ip_vs_flags flags{field::u32(svc, "flags", 0), 0xffffffffu};
    b.put(IPVS_SVC_ATTR_FLAGS, &flags, sizeof flags);
    b.putU32(IPVS_SVC_ATTR_TIMEOUT, field::u32(svc, "timeout", 0));
    uint32_t prefix = field::uint(svc, "netmask", af == AF_INET ? 32 : 128, af == AF_INET ? 32 : 128);
    if (af == AF_INET)
      b.putBe32(IPVS_SVC_ATTR_NETMASK, prefixToMask(prefix));
    else
      b.putU32(IPVS_SVC_ATTR_NETMASK, prefix);
  }
  b.nestEnd(nest);
}

void putDest(const Napi::Object& dst, Builder& b, bool full) {
  Napi::Env env = dst.Env();
  uint16_t af = static_cast<uint16_t>(field::uint(dst, "af", 0xffff));
  uint8_t addr[16];
  inet::parse(env, field::str(dst, "address"), af, addr, "destination.address");
  size_t nest = b.nestStart(IPVS_CMD_ATTR_DEST);
  b.put(IPVS_DEST_ATTR_ADDR, addr, sizeof addr);
  b.putBe16(IPVS_DEST_ATTR_PORT, static_cast<uint16_t>(field::uint(dst, "port", 0xffff)));
  b.putU16(IPVS_DEST_ATTR_ADDR_FAMILY, af);
  if (full) {
    b.putU32(IPVS_DEST_ATTR_FWD_METHOD, field::u32(dst, "forward", IP_VS_CONN_F_MASQ));
    b.putU32(IPVS_DEST_ATTR_WEIGHT, field::u32(dst, "weight", 1));
    b.putU32(IPVS_DEST_ATTR_U_THRESH, field::u32(dst, "upperThreshold", 0));
    b.putU32(IPVS_DEST_ATTR_L_THRESH, field::u32(dst, "lowerThreshold", 0));
    if (field::has(dst, "tunType")) b.putU8(IPVS_DEST_ATTR_TUN_TYPE, static_cast<uint8_t>(field::uint(dst, "tunType", 0xff)));
    if (field::has(dst, "tunPort")) b.putBe16(IPVS_DEST_ATTR_TUN_PORT, static_cast<uint16_t>(field::uint(dst, "tunPort", 0xffff)));
    if (field::has(dst, "tunFlags")) b.putU16(IPVS_DEST_ATTR_TUN_FLAGS, static_cast<uint16_t>(field::uint(dst, "tunFlags", 0xffff)));
  }
  b.nestEnd(nest);
}

Napi::Object decodeStats(Napi::Env env, const Attrs& top, uint16_t stats32, uint16_t stats64) {
  Napi::Object s = Napi::Object::New(env);
  // The 64-bit block (kernel 4.1+) is the truth; the old block wraps at 2^32.
  bool wide = top.has(stats64);
  Attrs a = Attrs::ofNest(top.get(wide ? stats64 : stats32), IPVS_STATS_ATTR_MAX);
  auto num = [&](uint16_t t) -> double {
    return wide || t == IPVS_STATS_ATTR_INBYTES || t == IPVS_STATS_ATTR_OUTBYTES ? static_cast<double>(a.u64(t))
                                                                                  : a.u32(t);
  };
  s.Set("conns", num(IPVS_STATS_ATTR_CONNS));
  s.Set("inPackets", num(IPVS_STATS_ATTR_INPKTS));
  s.Set("outPackets", num(IPVS_STATS_ATTR_OUTPKTS));
  s.Set("inBytes", num(IPVS_STATS_ATTR_INBYTES));
  s.Set("outBytes", num(IPVS_STATS_ATTR_OUTBYTES));
  s.Set("cps", num(IPVS_STATS_ATTR_CPS));
  s.Set("inPps", num(IPVS_STATS_ATTR_INPPS));
  s.Set("outPps", num(IPVS_STATS_ATTR_OUTPPS));
  s.Set("inBps", num(IPVS_STATS_ATTR_INBPS));
  s.Set("outBps", num(IPVS_STATS_ATTR_OUTBPS));
  return s;
}

Napi::Value decodeService(Napi::Env env, const nlattr* nest) {
  Attrs a = Attrs::ofNest(nest, IPVS_SVC_ATTR_MAX);
  Napi::Object o = Napi::Object::New(env);
  uint16_t af = a.u16(IPVS_SVC_ATTR_AF);
  o.Set("kind", "service");
  o.Set("af", af);
  // A service is keyed by its fwmark or its address: without either the
  // record names nothing, and the reply is refused.
  bool keyed = true;
  if (a.has(IPVS_SVC_ATTR_FWMARK)) {
    o.Set("fwmark", a.u32(IPVS_SVC_ATTR_FWMARK));
  } else {
    size_t len = 0;
    const uint8_t* addr = a.raw(IPVS_SVC_ATTR_ADDR, &len);
    keyed = addr && len >= (af == AF_INET6 ? 16u : 4u);
    if (keyed) o.Set("address", inet::format(af, addr));
    o.Set("protocol", a.u16(IPVS_SVC_ATTR_PROTOCOL));
    o.Set("port", a.be16(IPVS_SVC_ATTR_PORT));
  }
  o.Set("scheduler", a.str(IPVS_SVC_ATTR_SCHED_NAME));
  if (a.has(IPVS_SVC_ATTR_PE_NAME)) o.Set("peName", a.str(IPVS_SVC_ATTR_PE_NAME));
  size_t flen = 0;
  const uint8_t* fl = a.raw(IPVS_SVC_ATTR_FLAGS, &flen);
  ip_vs_flags flags{};
  if (fl && flen >= sizeof flags) std::memcpy(&flags, fl, sizeof flags);
  o.Set("flags", flags.flags);
  o.Set("timeout", a.u32(IPVS_SVC_ATTR_TIMEOUT));
  o.Set("netmask", af == AF_INET ? maskToPrefix(a.be32(IPVS_SVC_ATTR_NETMASK)) : a.u32(IPVS_SVC_ATTR_NETMASK));
  o.Set("stats", decodeStats(env, a, IPVS_SVC_ATTR_STATS, IPVS_SVC_ATTR_STATS64));
  if (a.bad() || !keyed) throw Malformed{"service"};
  return o;
}

Napi::Value decodeDest(Napi::Env env, const nlattr* nest) {
  Attrs a = Attrs::ofNest(nest, IPVS_DEST_ATTR_MAX);
  Napi::Object o = Napi::Object::New(env);
  // Destinations of another family than their service (tunnels) carry their own.
  uint16_t af = a.u16(IPVS_DEST_ATTR_ADDR_FAMILY, AF_UNSPEC);
  size_t len = 0;
  const uint8_t* addr = a.raw(IPVS_DEST_ATTR_ADDR, &len);
  if (af == AF_UNSPEC) af = AF_INET;  // sent since Linux 3.18; older kernels had IPv4 only here
  o.Set("kind", "destination");
  o.Set("af", af);
  const bool keyed = addr && len >= (af == AF_INET6 ? 16u : 4u);
  if (keyed) o.Set("address", inet::format(af, addr));
  o.Set("port", a.be16(IPVS_DEST_ATTR_PORT));
  o.Set("forward", a.u32(IPVS_DEST_ATTR_FWD_METHOD) & IP_VS_CONN_F_FWD_MASK);
  o.Set("weight", a.u32(IPVS_DEST_ATTR_WEIGHT));
  o.Set("upperThreshold", a.u32(IPVS_DEST_ATTR_U_THRESH));
  o.Set("lowerThreshold", a.u32(IPVS_DEST_ATTR_L_THRESH));
  o.Set("activeConns", a.u32(IPVS_DEST_ATTR_ACTIVE_CONNS));
  o.Set("inactiveConns", a.u32(IPVS_DEST_ATTR_INACT_CONNS));
  o.Set("persistConns", a.u32(IPVS_DEST_ATTR_PERSIST_CONNS));
  if (a.has(IPVS_DEST_ATTR_TUN_TYPE)) o.Set("tunType", a.u8(IPVS_DEST_ATTR_TUN_TYPE));
  if (a.has(IPVS_DEST_ATTR_TUN_PORT)) o.Set("tunPort", a.be16(IPVS_DEST_ATTR_TUN_PORT));
  if (a.has(IPVS_DEST_ATTR_TUN_FLAGS)) o.Set("tunFlags", a.u16(IPVS_DEST_ATTR_TUN_FLAGS));
  o.Set("stats", decodeStats(env, a, IPVS_DEST_ATTR_STATS, IPVS_DEST_ATTR_STATS64));
  if (a.bad() || !keyed) throw Malformed{"destination"};
  return o;
}

class IpvsCodec : public Codec {
 public:
  void encode(const Napi::Object& op, uint16_t family, Builder& b, Request& req) const override {
    std::string name = field::str(op, "cmd");
    const Command* c = nullptr;
    for (const Command& k : kCommands)
      if (name == k.name) c = &k;
    if (!c) throw Napi::TypeError::New(op.Env(), "ipvs: unknown cmd " + name);

    req.dump = c->dump;
    size_t m = b.begin(family, NLM_F_REQUEST | (c->dump ? NLM_F_DUMP : NLM_F_ACK));
    auto g = reinterpret_cast<genlmsghdr*>(b.at(b.extra(GENL_HDRLEN)));
    g->cmd = c->cmd;
    g->version = IPVS_GENL_VERSION;

    switch (c->cmd) {
      case IPVS_CMD_NEW_SERVICE:
      case IPVS_CMD_SET_SERVICE:
        putService(field::obj(op, "service"), b, true);
        break;
      case IPVS_CMD_DEL_SERVICE:
        putService(field::obj(op, "service"), b, false);
        break;
      case IPVS_CMD_GET_SERVICE:
        if (!c->dump) putService(field::obj(op, "service"), b, false);
        break;
      case IPVS_CMD_NEW_DEST:
      case IPVS_CMD_SET_DEST:
        putService(field::obj(op, "service"), b, false);
        putDest(field::obj(op, "dest"), b, true);
        break;
      case IPVS_CMD_DEL_DEST:
        putService(field::obj(op, "service"), b, false);
        putDest(field::obj(op, "dest"), b, false);
        break;
      case IPVS_CMD_GET_DEST:
        putService(field::obj(op, "service"), b, false);
        break;
      case IPVS_CMD_ZERO:
        // Without a service, every counter is zeroed.
        if (field::has(op, "service")) putService(field::obj(op, "service"), b, false);
        break;
      case IPVS_CMD_SET_CONFIG: {
        Napi::Object t = field::obj(op, "timeouts");
        // 0 leaves a timeout as it is, as ipvsadm --set does.
        b.putU32(IPVS_CMD_ATTR_TIMEOUT_TCP, field::u32(t, "tcp", 0));
        b.putU32(IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, field::u32(t, "tcpFin", 0));
        b.putU32(IPVS_CMD_ATTR_TIMEOUT_UDP, field::u32(t, "udp", 0));
        break;
      }
      default:
        break;
    }
    b.end(m);
  }

  Napi::Value decode(Napi::Env env, const nlmsghdr* h) const override {
    auto m = body<genlmsghdr>(h);
    if (!m.hdr) return env.Undefined();
    const genlmsghdr* g = m.hdr;
    switch (g->cmd) {
      case IPVS_CMD_NEW_SERVICE: {
        Attrs top = m.table(IPVS_CMD_ATTR_MAX);
        return top.has(IPVS_CMD_ATTR_SERVICE) ? decodeService(env, top.get(IPVS_CMD_ATTR_SERVICE)) : env.Undefined();
      }
      case IPVS_CMD_NEW_DEST: {
        Attrs top = m.table(IPVS_CMD_ATTR_MAX);
        return top.has(IPVS_CMD_ATTR_DEST) ? decodeDest(env, top.get(IPVS_CMD_ATTR_DEST)) : env.Undefined();
      }
      case IPVS_CMD_SET_INFO: {  // the reply to GET_INFO
        Attrs a = m.table(IPVS_INFO_ATTR_MAX);
        Napi::Object o = Napi::Object::New(env);
        o.Set("kind", "info");
        o.Set("version", a.u32(IPVS_INFO_ATTR_VERSION));
        o.Set("connTableSize", a.u32(IPVS_INFO_ATTR_CONN_TAB_SIZE));
        if (a.bad()) throw Malformed{"info"};
        return o;
      }
      case IPVS_CMD_SET_CONFIG: {  // the reply to GET_CONFIG
        Attrs a = m.table(IPVS_CMD_ATTR_MAX);
        Napi::Object o = Napi::Object::New(env);
        o.Set("kind", "config");
        o.Set("tcp", a.u32(IPVS_CMD_ATTR_TIMEOUT_TCP));
        o.Set("tcpFin", a.u32(IPVS_CMD_ATTR_TIMEOUT_TCP_FIN));
        o.Set("udp", a.u32(IPVS_CMD_ATTR_TIMEOUT_UDP));
        if (a.bad()) throw Malformed{"config"};
        return o;
      }
      default:
        return env.Undefined();
    }
  }
};

}  // namespace

const Codec* ipvsCodec() {
  static IpvsCodec c;
  return &c;
}

}  // namespace nl
