// Connection tracking over nfnetlink (ctnetlink): names the messages and
// attributes of <linux/netfilter/nfnetlink_conntrack.h> that a service proxy
// needs: dump entries (filtered by the kernel where it can), delete one entry
// by its original tuple, count entries. Operations arrive already validated and
// normalized by lib/conntrack (families and protocols as numbers).
//
// Every message is (NFNL_SUBSYS_CTNETLINK << 8) | command and an nfgenmsg whose
// family is the entries' layer 3 protocol. Values are big-endian without
// NLA_F_NET_BYTEORDER, as the kernel writes them and the conntrack tool sends
// them, so our requests and the kernel's replies share one layout.
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

#include "../netlink/codec.h"

namespace nl {

namespace {

// CTA_FILTER_ORIG_FLAGS / _REPLY_FLAGS bits (net/netfilter/nf_internals.h,
// Linux 5.9+: kernel-side filtering of dumps). Not in the uapi headers.
constexpr uint32_t kFilterIpSrc = 1u << 0;
constexpr uint32_t kFilterIpDst = 1u << 1;
constexpr uint32_t kFilterProtoNum = 1u << 3;
constexpr uint32_t kFilterSrcPort = 1u << 4;
constexpr uint32_t kFilterDstPort = 1u << 5;

uint16_t msgType(uint8_t cmd) { return static_cast<uint16_t>((NFNL_SUBSYS_CTNETLINK << 8) | cmd); }

void header(Builder& b, uint8_t family) {
  auto g = reinterpret_cast<nfgenmsg*>(b.at(b.extra(sizeof(nfgenmsg))));
  g->nfgen_family = family;
  g->version = NFNETLINK_V0;
  g->res_id = 0;
}

int familyOf(const Napi::Object& op) {
  int af = static_cast<int>(field::uint(op, "family", 0xff));
  if (af != AF_INET && af != AF_INET6) throw Napi::RangeError::New(op.Env(), "conntrack: family must be AF_INET or AF_INET6");
  return af;
}

// One tuple (CTA_TUPLE_ORIG / _REPLY): the fields given, in the kernel's own
// order (ctnetlink_dump_tuples); returns the CTA_FILTER flags they stand for.
uint32_t putTuple(Builder& b, uint16_t type, int af, const Napi::Object& t) {
  Napi::Env env = t.Env();
  uint32_t flags = 0;
  size_t nest = b.nestStart(type);
  bool src = field::has(t, "src"), dst = field::has(t, "dst");
  if (src || dst) {
    size_t ip = b.nestStart(CTA_TUPLE_IP);
    uint8_t addr[16];
    if (src) {
      inet::parse(env, field::str(t, "src"), af, addr, "tuple.src");
      b.put(af == AF_INET ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, addr, inet::size(af));
      flags |= kFilterIpSrc;
    }
    if (dst) {
      inet::parse(env, field::str(t, "dst"), af, addr, "tuple.dst");
      b.put(af == AF_INET ? CTA_IP_V4_DST : CTA_IP_V6_DST, addr, inet::size(af));
      flags |= kFilterIpDst;
    }
    b.nestEnd(ip);
  }
  if (field::has(t, "proto")) {
    size_t proto = b.nestStart(CTA_TUPLE_PROTO);
    b.putU8(CTA_PROTO_NUM, static_cast<uint8_t>(field::uint(t, "proto", 0xff)));
    flags |= kFilterProtoNum;
    if (field::has(t, "sport")) {
      b.putBe16(CTA_PROTO_SRC_PORT, static_cast<uint16_t>(field::uint(t, "sport", 0xffff)));
      flags |= kFilterSrcPort;
    }
    if (field::has(t, "dport")) {
      b.putBe16(CTA_PROTO_DST_PORT, static_cast<uint16_t>(field::uint(t, "dport", 0xffff)));
      flags |= kFilterDstPort;
    }
    // ICMP tuples (delete only: dump filters on them are not used).
    bool v6 = af == AF_INET6;
    if (field::has(t, "icmpId"))
      b.putBe16(v6 ? CTA_PROTO_ICMPV6_ID : CTA_PROTO_ICMP_ID, static_cast<uint16_t>(field::uint(t, "icmpId", 0xffff)));
    if (field::has(t, "icmpType"))
      b.putU8(v6 ? CTA_PROTO_ICMPV6_TYPE : CTA_PROTO_ICMP_TYPE, static_cast<uint8_t>(field::uint(t, "icmpType", 0xff)));
    if (field::has(t, "icmpCode"))
      b.putU8(v6 ? CTA_PROTO_ICMPV6_CODE : CTA_PROTO_ICMP_CODE, static_cast<uint8_t>(field::uint(t, "icmpCode", 0xff)));
    b.nestEnd(proto);
  }
  b.nestEnd(nest);
  return flags;
}

// ---- replies ------------------------------------------------------------------------------

Napi::Object decodeTuple(Napi::Env env, const nlattr* nest, int af) {
  Attrs t = Attrs::ofNest(nest, CTA_TUPLE_MAX);
  Napi::Object o = Napi::Object::New(env);
  Attrs ip = Attrs::ofNest(t.get(CTA_TUPLE_IP), CTA_IP_MAX);
  size_t need = inet::size(af), len = 0;
  bool v6 = af == AF_INET6;
  if (const uint8_t* p = ip.raw(v6 ? CTA_IP_V6_SRC : CTA_IP_V4_SRC, &len); p && len >= need) o.Set("src", inet::format(af, p));
  if (const uint8_t* p = ip.raw(v6 ? CTA_IP_V6_DST : CTA_IP_V4_DST, &len); p && len >= need) o.Set("dst", inet::format(af, p));
  Attrs pr = Attrs::ofNest(t.get(CTA_TUPLE_PROTO), CTA_PROTO_MAX);
  o.Set("proto", pr.u8(CTA_PROTO_NUM));
  if (pr.has(CTA_PROTO_SRC_PORT)) o.Set("sport", pr.be16(CTA_PROTO_SRC_PORT));
  if (pr.has(CTA_PROTO_DST_PORT)) o.Set("dport", pr.be16(CTA_PROTO_DST_PORT));
  uint16_t id = v6 ? CTA_PROTO_ICMPV6_ID : CTA_PROTO_ICMP_ID;
  uint16_t type = v6 ? CTA_PROTO_ICMPV6_TYPE : CTA_PROTO_ICMP_TYPE;
  uint16_t code = v6 ? CTA_PROTO_ICMPV6_CODE : CTA_PROTO_ICMP_CODE;
  if (pr.has(id)) o.Set("icmpId", pr.be16(id));
  if (pr.has(type)) o.Set("icmpType", pr.u8(type));
  if (pr.has(code)) o.Set("icmpCode", pr.u8(code));
  if (t.has(CTA_TUPLE_ZONE)) o.Set("zone", t.be16(CTA_TUPLE_ZONE));
  // A tuple belongs to an entry: its damage is the entry's.
  if (t.bad() || ip.bad() || pr.bad()) throw Malformed{"entry"};
  return o;
}

Napi::Value decodeEntry(Napi::Env env, int af, const Attrs& a) {
  if (af != AF_INET && af != AF_INET6) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", "entry");
  o.Set("family", af);
  o.Set("orig", decodeTuple(env, a.get(CTA_TUPLE_ORIG), af));
  o.Set("reply", decodeTuple(env, a.get(CTA_TUPLE_REPLY), af));
  o.Set("status", a.be32(CTA_STATUS));
  if (a.has(CTA_TIMEOUT)) o.Set("timeout", a.be32(CTA_TIMEOUT));
  if (a.has(CTA_MARK)) o.Set("mark", a.be32(CTA_MARK));
  if (a.has(CTA_ID)) o.Set("id", a.be32(CTA_ID));
  if (a.has(CTA_USE)) o.Set("use", a.be32(CTA_USE));
  if (a.has(CTA_ZONE)) o.Set("zone", a.be16(CTA_ZONE));
  if (a.has(CTA_PROTOINFO)) {
    Attrs pi = Attrs::ofNest(a.get(CTA_PROTOINFO), CTA_PROTOINFO_MAX);
    if (pi.has(CTA_PROTOINFO_TCP)) {
      Attrs tcp = Attrs::ofNest(pi.get(CTA_PROTOINFO_TCP), CTA_PROTOINFO_TCP_MAX);
      if (tcp.has(CTA_PROTOINFO_TCP_STATE)) o.Set("tcpState", tcp.u8(CTA_PROTOINFO_TCP_STATE));
    }
    if (pi.has(CTA_PROTOINFO_SCTP)) {
      Attrs sctp = Attrs::ofNest(pi.get(CTA_PROTOINFO_SCTP), CTA_PROTOINFO_SCTP_MAX);
      if (sctp.has(CTA_PROTOINFO_SCTP_STATE)) o.Set("sctpState", sctp.u8(CTA_PROTOINFO_SCTP_STATE));
    }
  }
  // Without both tuples the entry can be neither matched nor deleted.
  if (a.bad() || !a.has(CTA_TUPLE_ORIG) || !a.has(CTA_TUPLE_REPLY)) throw Malformed{"entry"};
  return o;
}

class ConntrackCodec : public Codec {
 public:
  void encode(const Napi::Object& op, uint16_t, Builder& b, Request& req) const override {
    Napi::Env env = op.Env();
    std::string cmd = field::str(op, "cmd");
    if (cmd == "list") {
      // A dump of one family; with `orig` / `reply`, CTA_FILTER asks the kernel
      // (5.9+) to send only the entries whose tuples have those fields. Older
      // kernels ignore the attribute and send everything: lib/conntrack checks
      // every entry it gets either way.
      req.dump = true;
      int af = familyOf(op);
      size_t m = b.begin(msgType(IPCTNL_MSG_CT_GET), NLM_F_REQUEST | NLM_F_DUMP);
      header(b, static_cast<uint8_t>(af));
      uint32_t orig = 0, reply = 0;
      if (field::has(op, "orig")) orig = putTuple(b, CTA_TUPLE_ORIG, af, field::obj(op, "orig"));
      if (field::has(op, "reply")) reply = putTuple(b, CTA_TUPLE_REPLY, af, field::obj(op, "reply"));
      if (orig || reply) {
        size_t f = b.nestStart(CTA_FILTER);
        if (orig) b.putU32(CTA_FILTER_ORIG_FLAGS, orig);
        if (reply) b.putU32(CTA_FILTER_REPLY_FLAGS, reply);
        b.nestEnd(f);
      }
      b.end(m);
    } else if (cmd == "delete") {
      // One entry by its whole original tuple. A delete without a tuple is a
      // FLUSH of the table in the kernel: refused here, whatever lib/ sends.
      int af = familyOf(op);
      if (!field::has(op, "orig")) throw Napi::TypeError::New(env, "conntrack: delete needs the original tuple (without one the kernel flushes every entry)");
      Napi::Object t = field::obj(op, "orig");
      if (!field::has(t, "src") || !field::has(t, "dst") || !field::has(t, "proto"))
        throw Napi::TypeError::New(env, "conntrack: delete needs src, dst and proto in the tuple");
      size_t m = b.begin(msgType(IPCTNL_MSG_CT_DELETE), NLM_F_REQUEST | NLM_F_ACK);
      header(b, static_cast<uint8_t>(af));
      putTuple(b, CTA_TUPLE_ORIG, af, t);
      if (field::has(op, "zone")) b.putBe16(CTA_ZONE, static_cast<uint16_t>(field::uint(op, "zone", 0xffff)));
      // With the id, the kernel deletes only the entry that was listed
      // (ENOENT when it went away meanwhile).
      if (field::has(op, "id")) b.putBe32(CTA_ID, field::u32(op, "id"));
      b.end(m);
    } else if (cmd == "count") {
      size_t m = b.begin(msgType(IPCTNL_MSG_CT_GET_STATS), NLM_F_REQUEST | NLM_F_ACK);
      header(b, AF_UNSPEC);
      b.end(m);
    } else {
      throw Napi::TypeError::New(env, "conntrack: unknown cmd " + cmd);
    }
  }

  Napi::Value decode(Napi::Env env, const nlmsghdr* h) const override {
    if ((h->nlmsg_type >> 8) != NFNL_SUBSYS_CTNETLINK) return env.Undefined();
    auto m = nl::body<nfgenmsg>(h);
    if (!m.hdr) return env.Undefined();
    const nfgenmsg* g = m.hdr;
    const uint8_t* body = m.attrs;
    size_t len = m.len;
    switch (h->nlmsg_type & 0xff) {
      case IPCTNL_MSG_CT_NEW:
        return decodeEntry(env, g->nfgen_family, Attrs(body, len, CTA_MAX));
      case IPCTNL_MSG_CT_GET_STATS: {
        Attrs a(body, len, CTA_STATS_GLOBAL_MAX);
        Napi::Object o = Napi::Object::New(env);
        o.Set("kind", "stats");
        o.Set("entries", a.be32(CTA_STATS_GLOBAL_ENTRIES));
        if (a.has(CTA_STATS_GLOBAL_MAX_ENTRIES)) o.Set("maxEntries", a.be32(CTA_STATS_GLOBAL_MAX_ENTRIES));
        if (a.bad()) throw Malformed{"stats"};
        return o;
      }
      default:
        return env.Undefined();
    }
  }
};

}  // namespace

const Codec* conntrackCodec() {
  static ConntrackCodec c;
  return &c;
}

}  // namespace nl
