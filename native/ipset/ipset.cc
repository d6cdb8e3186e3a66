// ipset over nfnetlink: names the commands and attributes of
// <linux/netfilter/ipset/ip_set.h>. Operations arrive already validated and
// normalized by lib/ipset (numbers for families and protocols, one address
// family per entry). Every message is (NFNL_SUBSYS_IPSET << 8) | command, an
// nfgenmsg, and IPSET_ATTR_PROTOCOL first.
#include <linux/netfilter/ipset/ip_set.h>
#include <linux/netfilter/nfnetlink.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "../netlink/codec.h"

namespace nl {

namespace {

struct Command {
  const char* name;
  uint8_t cmd;
  uint16_t flags;  // beyond NLM_F_REQUEST
};

// What the ipset tool sends, flag for flag: NLM_F_EXCL unless "exist" is asked
// for (the kernel reads the exist semantics from its absence), NLM_F_CREATE on
// create; dumps without NLM_F_ACK (their end is NLMSG_DONE).
const Command kCommands[] = {
    {"protocol", IPSET_CMD_PROTOCOL, NLM_F_ACK},
    {"create", IPSET_CMD_CREATE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL},
    {"destroy", IPSET_CMD_DESTROY, NLM_F_ACK | NLM_F_EXCL},
    {"flush", IPSET_CMD_FLUSH, NLM_F_ACK},
    {"rename", IPSET_CMD_RENAME, NLM_F_ACK},
    {"swap", IPSET_CMD_SWAP, NLM_F_ACK},
    {"list", IPSET_CMD_LIST, NLM_F_DUMP},
    {"add", IPSET_CMD_ADD, NLM_F_ACK | NLM_F_EXCL},
    {"del", IPSET_CMD_DEL, NLM_F_ACK | NLM_F_EXCL},
    {"test", IPSET_CMD_TEST, NLM_F_ACK},
    {"header", IPSET_CMD_HEADER, NLM_F_ACK},
    {"type", IPSET_CMD_TYPE, NLM_F_ACK},
};

uint16_t msgType(uint8_t cmd) { return static_cast<uint16_t>((NFNL_SUBSYS_IPSET << 8) | cmd); }

uint8_t u8field(const Napi::Object& o, const char* key) { return static_cast<uint8_t>(field::uint(o, key, 0xff)); }
uint16_t u16field(const Napi::Object& o, const char* key) { return static_cast<uint16_t>(field::uint(o, key, 0xffff)); }

// An address is a nest of one IPSET_ATTR_IPADDR_IPV4 / _IPV6, in network order
// and flagged so (the kernel refuses it otherwise).
void putAddr(Builder& b, uint16_t type, int af, const std::string& text, const Napi::Env& env, const char* what) {
  uint8_t addr[16];
  inet::parse(env, text, af, addr, what);
  size_t nest = b.nestStart(type);
  if (af == AF_INET)
    b.put(IPSET_ATTR_IPADDR_IPV4 | NLA_F_NET_BYTEORDER, addr, 4);
  else
    b.put(IPSET_ATTR_IPADDR_IPV6 | NLA_F_NET_BYTEORDER, addr, 16);
  b.nestEnd(nest);
}

// The fields of an entry, as lib/ipset names them on the wire.
enum Field {
  F_IP, F_CIDR, F_PORT, F_PROTO, F_IP2, F_CIDR2, F_NAME, F_NAMEREF, F_TIMEOUT, F_PACKETS, F_BYTES,
  F_COMMENT, F_SKBMARK, F_SKBMARKMASK, F_SKBPRIO, F_SKBQUEUE, F_FLAGS, F_COUNT
};
const char* const kFieldNames[F_COUNT] = {
    "ip",      "cidr",  "port",    "proto",   "ip2",         "cidr2",   "name",     "nameref", "timeout",
    "packets", "bytes", "comment", "skbmark", "skbmarkmask", "skbprio", "skbqueue", "flags",
};

// One entry given as an object: { af, ip, port, proto, ... } (single commands).
class ObjectEntry {
 public:
  explicit ObjectEntry(const Napi::Object& o) : o_(o) {}
  bool has(Field f) const { return field::has(o_, kFieldNames[f]); }
  std::string str(Field f) const { return field::str(o_, kFieldNames[f]); }
  uint32_t uint(Field f, uint32_t max) const { return field::uint(o_, kFieldNames[f], max); }
  uint64_t u64(Field f) const { return field::u64(o_, kFieldNames[f]); }

 private:
  const Napi::Object& o_;
};

// Many entries given as columns, one array per field, read by index: a batch
// of 100k entries then costs a few N-API calls per entry instead of one
// property lookup per possible field. A column is an Array (undefined where an
// entry lacks the field); for numbers a typed array, for text one string joined
// with '\n' (both: every entry has it).
class ColumnEntries {
 public:
  ColumnEntries(const Napi::Object& cols) : env_(cols.Env()) {
    count_ = field::u32(cols, "count");
    for (int f = 0; f < F_COUNT; f++) {
      if (!field::has(cols, kFieldNames[f])) continue;
      Napi::Value v = cols.Get(kFieldNames[f]);
      if (v.IsString()) {
        // A text column joined with '\n' (addresses: one N-API call per
        // message instead of several per entry); every entry has it.
        joined_[f] = v.As<Napi::String>().Utf8Value();
        std::vector<std::pair<size_t, size_t>>& at = spans_[f];
        size_t start = 0;
        const std::string& text = joined_[f];
        for (size_t i = 0; i <= text.size(); i++) {
          if (i == text.size() || text[i] == '\n') {
            at.emplace_back(start, i - start);
            start = i + 1;
          }
        }
        if (at.size() < count_) throw Napi::RangeError::New(env_, std::string("ipset: column too short: ") + kFieldNames[f]);
      } else if (v.IsTypedArray()) {
        Napi::TypedArray ta = v.As<Napi::TypedArray>();
        if (ta.ElementLength() < count_) throw Napi::RangeError::New(env_, std::string("ipset: column too short: ") + kFieldNames[f]);
        typed_[f].type = ta.TypedArrayType();
        if (typed_[f].type != napi_uint8_array && typed_[f].type != napi_uint16_array &&
            typed_[f].type != napi_uint32_array && typed_[f].type != napi_float64_array)
          throw Napi::TypeError::New(env_, std::string("ipset: unsupported typed array for ") + kFieldNames[f]);
        typed_[f].data = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
      } else if (v.IsArray()) {
        if (v.As<Napi::Array>().Length() < count_) throw Napi::RangeError::New(env_, std::string("ipset: column too short: ") + kFieldNames[f]);
        array_[f] = v.As<Napi::Array>();
      } else {
        throw Napi::TypeError::New(env_, std::string("ipset: column is not an array: ") + kFieldNames[f]);
      }
    }
  }
  uint32_t count() const { return count_; }
  // Moves to entry i: one element read and one type check per Array column.
  void at(uint32_t i) {
    i_ = i;
    for (int f = 0; f < F_COUNT; f++) {
      if (array_[f].IsEmpty()) continue;
      napi_get_element(env_, array_[f], i, &cur_[f]);
      napi_typeof(env_, cur_[f], &curType_[f]);
    }
  }
  bool has(Field f) const {
    if (typed_[f].data || !spans_[f].empty()) return true;
    return !array_[f].IsEmpty() && curType_[f] != napi_undefined && curType_[f] != napi_null;
  }
  std::string str(Field f) const {
    if (!spans_[f].empty()) return joined_[f].substr(spans_[f][i_].first, spans_[f][i_].second);
    if (curType_[f] != napi_string) throw Napi::TypeError::New(env_, where(f) + " is not a string");
    // Addresses, names and comments are short: no heap string for them.
    char buf[512];
    size_t len = 0;
    napi_get_value_string_utf8(env_, cur_[f], buf, sizeof buf, &len);
    if (len >= sizeof buf - 1) return Napi::Value(env_, cur_[f]).As<Napi::String>().Utf8Value();
    return std::string(buf, len);
  }
  uint32_t uint(Field f, uint32_t max) const {
    double d = number(f);
    if (!(d >= 0 && d <= max) || d != static_cast<double>(static_cast<uint32_t>(d)))
      throw Napi::RangeError::New(env_, where(f) + " out of range");
    return static_cast<uint32_t>(d);
  }
  uint64_t u64(Field f) const {
    double d = number(f);
    if (!(d >= 0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d)))
      throw Napi::RangeError::New(env_, where(f) + " is not a safe unsigned integer");
    return static_cast<uint64_t>(d);
  }

 private:
  struct Typed {
    const uint8_t* data = nullptr;
    napi_typedarray_type type = napi_uint8_array;
  };
  double number(Field f) const {
    if (!spans_[f].empty()) throw Napi::TypeError::New(env_, where(f) + " is not a number");
    if (const uint8_t* base = typed_[f].data) {
      switch (typed_[f].type) {
        case napi_uint8_array: return base[i_];
        case napi_uint16_array: return reinterpret_cast<const uint16_t*>(base)[i_];
        case napi_uint32_array: return reinterpret_cast<const uint32_t*>(base)[i_];
        default: return reinterpret_cast<const double*>(base)[i_];
      }
    }
    if (curType_[f] != napi_number) throw Napi::TypeError::New(env_, where(f) + " is not a number");
    double d = 0;
    napi_get_value_double(env_, cur_[f], &d);
    return d;
  }
  std::string where(Field f) const { return std::string("ipset: entries.") + kFieldNames[f] + "[" + std::to_string(i_) + "]"; }

  napi_env env_;
  uint32_t count_ = 0;
  uint32_t i_ = 0;
  Typed typed_[F_COUNT];
  std::string joined_[F_COUNT];
  std::vector<std::pair<size_t, size_t>> spans_[F_COUNT];
  Napi::Array array_[F_COUNT];
  napi_value cur_[F_COUNT] = {};
  napi_valuetype curType_[F_COUNT] = {};
};

// One entry's attributes (the inside of an IPSET_ATTR_DATA nest), in the
// order the ipset tool writes them. lib/ipset/wire.ts wireSize() counts these
// bytes to fill messages (test/unit/ipset-wire.test.ts holds the two equal).
template <typename Entry>
void putEntry(const Entry& e, int af, Builder& b, uint32_t lineno, const Napi::Env& env) {
  if (e.has(F_IP)) putAddr(b, IPSET_ATTR_IP, af, e.str(F_IP), env, "entry.ip");
  if (e.has(F_CIDR)) b.putU8(IPSET_ATTR_CIDR, static_cast<uint8_t>(e.uint(F_CIDR, 0xff)));
  if (e.has(F_PORT)) b.putNet16(IPSET_ATTR_PORT, static_cast<uint16_t>(e.uint(F_PORT, 0xffff)));
  if (e.has(F_PROTO)) b.putU8(IPSET_ATTR_PROTO, static_cast<uint8_t>(e.uint(F_PROTO, 0xff)));
  if (e.has(F_IP2)) putAddr(b, IPSET_ATTR_IP2, af, e.str(F_IP2), env, "entry.ip2");
  if (e.has(F_CIDR2)) b.putU8(IPSET_ATTR_CIDR2, static_cast<uint8_t>(e.uint(F_CIDR2, 0xff)));
  if (e.has(F_NAME)) b.putString(IPSET_ATTR_NAME, e.str(F_NAME));
  if (e.has(F_NAMEREF)) b.putString(IPSET_ATTR_NAMEREF, e.str(F_NAMEREF));
  if (e.has(F_TIMEOUT)) b.putNet32(IPSET_ATTR_TIMEOUT, e.uint(F_TIMEOUT, 0xffffffffu));
  if (e.has(F_PACKETS)) b.putNet64(IPSET_ATTR_PACKETS, e.u64(F_PACKETS));
  if (e.has(F_BYTES)) b.putNet64(IPSET_ATTR_BYTES, e.u64(F_BYTES));
  if (e.has(F_COMMENT)) b.putString(IPSET_ATTR_COMMENT, e.str(F_COMMENT));
  if (e.has(F_SKBMARK)) {
    // One 64-bit attribute: the mark above its mask.
    uint64_t mask = e.has(F_SKBMARKMASK) ? e.uint(F_SKBMARKMASK, 0xffffffffu) : 0xffffffffu;
    b.putNet64(IPSET_ATTR_SKBMARK, (static_cast<uint64_t>(e.uint(F_SKBMARK, 0xffffffffu)) << 32) | mask);
  }
  if (e.has(F_SKBPRIO)) b.putNet32(IPSET_ATTR_SKBPRIO, e.uint(F_SKBPRIO, 0xffffffffu));
  if (e.has(F_SKBQUEUE)) b.putNet16(IPSET_ATTR_SKBQUEUE, static_cast<uint16_t>(e.uint(F_SKBQUEUE, 0xffff)));
  if (e.has(F_FLAGS)) b.putNet32(IPSET_ATTR_CADT_FLAGS, e.uint(F_FLAGS, 0xffffffffu));
  if (lineno) b.putNet32(IPSET_ATTR_LINENO, lineno);
}

int entryFamily(const Napi::Object& o) {
  int af = static_cast<int>(field::uint(o, "af", 0xff, AF_INET));
  if (af != AF_INET && af != AF_INET6) throw Napi::RangeError::New(o.Env(), "ipset: af must be AF_INET or AF_INET6");
  return af;
}

// The type-specific part of create: only what the caller gave (the kernel
// fills in its defaults), in the order the ipset tool writes it.
void putCreateData(const Napi::Object& d, Builder& b) {
  size_t nest = b.nestStart(IPSET_ATTR_DATA);
  if (field::has(d, "portFrom")) b.putNet16(IPSET_ATTR_PORT, u16field(d, "portFrom"));
  if (field::has(d, "portTo")) b.putNet16(IPSET_ATTR_PORT_TO, u16field(d, "portTo"));
  if (field::has(d, "timeout")) b.putNet32(IPSET_ATTR_TIMEOUT, field::u32(d, "timeout"));
  if (field::has(d, "flags")) b.putNet32(IPSET_ATTR_CADT_FLAGS, field::u32(d, "flags"));
  if (field::has(d, "hashsize")) b.putNet32(IPSET_ATTR_HASHSIZE, field::u32(d, "hashsize"));
  if (field::has(d, "maxelem")) b.putNet32(IPSET_ATTR_MAXELEM, field::u32(d, "maxelem"));
  if (field::has(d, "netmask")) b.putU8(IPSET_ATTR_NETMASK, u8field(d, "netmask"));
  if (field::has(d, "bucketsize")) b.putU8(IPSET_ATTR_BUCKETSIZE, u8field(d, "bucketsize"));
  if (field::has(d, "initval")) b.putNet32(IPSET_ATTR_INITVAL, field::u32(d, "initval"));
  if (field::has(d, "size")) b.putNet32(IPSET_ATTR_SIZE, field::u32(d, "size"));
  b.nestEnd(nest);
}

// ---- replies ------------------------------------------------------------------------------

// The members of one dump message, column by column: one Float64Array per
// numeric field (NaN where a member lacks it) and one Array per text field
// (holes where a member lacks it). Building a JavaScript object per member
// from native code costs about 2 us each (a dump of 100k members spent 90% of
// its time there); columns cost a few N-API calls per member and lib/ipset
// builds the typed records in JavaScript.
class MemberColumns {
 public:
  MemberColumns(Napi::Env env, uint32_t count) : env_(env), count_(count) {}

  void number(Field f, uint32_t i, double v) {
    if (nums_[f].empty()) nums_[f].assign(count_, std::nan(""));
    nums_[f][i] = v;
  }
  void text(Field f, uint32_t i, const char* v, size_t len) {
    if (strs_[f].IsEmpty()) strs_[f] = Napi::Array::New(env_, count_);
    strs_[f].Set(i, Napi::String::New(env_, v, len));
  }
  // Addresses are ASCII: a one-byte string, no UTF-8 decoding.
  void address(Field f, uint32_t i, const Attrs& a, uint16_t type) {
    Attrs in = Attrs::ofNest(a.get(type), IPSET_ATTR_IPADDR_MAX);
    char buf[INET6_ADDRSTRLEN] = "";
    size_t len = 0;
    if (const uint8_t* p = in.raw(IPSET_ATTR_IPADDR_IPV4, &len); p && len >= 4)
      inet_ntop(AF_INET, p, buf, sizeof buf);
    else if (const uint8_t* p = in.raw(IPSET_ATTR_IPADDR_IPV6, &len); p && len >= 16)
      inet_ntop(AF_INET6, p, buf, sizeof buf);
    else
      return;
    if (strs_[f].IsEmpty()) strs_[f] = Napi::Array::New(env_, count_);
    napi_value str;
    napi_create_string_latin1(env_, buf, strlen(buf), &str);
    napi_set_element(env_, strs_[f], i, str);
  }

  Napi::Object finish() {
    Napi::Object o = Napi::Object::New(env_);
    o.Set("count", count_);
    for (int f = 0; f < F_COUNT; f++) {
      if (!strs_[f].IsEmpty()) {
        o.Set(kFieldNames[f], strs_[f]);
      } else if (!nums_[f].empty()) {
        Napi::Float64Array a = Napi::Float64Array::New(env_, count_);
        std::memcpy(a.Data(), nums_[f].data(), count_ * sizeof(double));
        o.Set(kFieldNames[f], a);
      }
    }
    return o;
  }

 private:
  Napi::Env env_;
  uint32_t count_;
  std::vector<double> nums_[F_COUNT];
  Napi::Array strs_[F_COUNT];
};

void decodeMember(MemberColumns& m, uint32_t i, const nlattr* data) {
  Attrs a = Attrs::ofNest(data, IPSET_ATTR_ADT_MAX);
  if (a.has(IPSET_ATTR_IP)) m.address(F_IP, i, a, IPSET_ATTR_IP);
  if (a.has(IPSET_ATTR_CIDR)) m.number(F_CIDR, i, a.u8(IPSET_ATTR_CIDR));
  if (a.has(IPSET_ATTR_PORT)) m.number(F_PORT, i, a.be16(IPSET_ATTR_PORT));
  if (a.has(IPSET_ATTR_PROTO)) m.number(F_PROTO, i, a.u8(IPSET_ATTR_PROTO));
  if (a.has(IPSET_ATTR_IP2)) m.address(F_IP2, i, a, IPSET_ATTR_IP2);
  if (a.has(IPSET_ATTR_CIDR2)) m.number(F_CIDR2, i, a.u8(IPSET_ATTR_CIDR2));
  size_t len = 0;
  if (const uint8_t* p = a.raw(IPSET_ATTR_NAME, &len)) m.text(F_NAME, i, reinterpret_cast<const char*>(p), strnlen(reinterpret_cast<const char*>(p), len));
  if (a.has(IPSET_ATTR_TIMEOUT)) m.number(F_TIMEOUT, i, a.be32(IPSET_ATTR_TIMEOUT));
  if (a.has(IPSET_ATTR_PACKETS)) m.number(F_PACKETS, i, static_cast<double>(a.be64(IPSET_ATTR_PACKETS)));
  if (a.has(IPSET_ATTR_BYTES)) m.number(F_BYTES, i, static_cast<double>(a.be64(IPSET_ATTR_BYTES)));
  if (const uint8_t* p = a.raw(IPSET_ATTR_COMMENT, &len)) m.text(F_COMMENT, i, reinterpret_cast<const char*>(p), strnlen(reinterpret_cast<const char*>(p), len));
  if (a.has(IPSET_ATTR_SKBMARK)) {
    uint64_t mark = a.be64(IPSET_ATTR_SKBMARK);
    m.number(F_SKBMARK, i, static_cast<uint32_t>(mark >> 32));
    m.number(F_SKBMARKMASK, i, static_cast<uint32_t>(mark & 0xffffffffu));
  }
  if (a.has(IPSET_ATTR_SKBPRIO)) m.number(F_SKBPRIO, i, a.be32(IPSET_ATTR_SKBPRIO));
  if (a.has(IPSET_ATTR_SKBQUEUE)) m.number(F_SKBQUEUE, i, a.be16(IPSET_ATTR_SKBQUEUE));
  if (a.has(IPSET_ATTR_CADT_FLAGS)) m.number(F_FLAGS, i, a.be32(IPSET_ATTR_CADT_FLAGS));
  // A member belongs to a set's dump message: its damage is the message's.
  if (a.bad()) throw Malformed{"set"};
}

Napi::Object decodeHeader(Napi::Env env, const nlattr* data) {
  Attrs a = Attrs::ofNest(data, IPSET_ATTR_CREATE_MAX);
  Napi::Object o = Napi::Object::New(env);
  auto be32 = [&](uint16_t t, const char* key) {
    if (a.has(t)) o.Set(key, a.be32(t));
  };
  be32(IPSET_ATTR_HASHSIZE, "hashsize");
  be32(IPSET_ATTR_MAXELEM, "maxelem");
  if (a.has(IPSET_ATTR_NETMASK)) o.Set("netmask", a.u8(IPSET_ATTR_NETMASK));
  if (a.has(IPSET_ATTR_BUCKETSIZE)) o.Set("bucketsize", a.u8(IPSET_ATTR_BUCKETSIZE));
  be32(IPSET_ATTR_INITVAL, "initval");
  if (a.has(IPSET_ATTR_PORT)) o.Set("portFrom", a.be16(IPSET_ATTR_PORT));
  if (a.has(IPSET_ATTR_PORT_TO)) o.Set("portTo", a.be16(IPSET_ATTR_PORT_TO));
  be32(IPSET_ATTR_SIZE, "size");
  be32(IPSET_ATTR_TIMEOUT, "timeout");
  be32(IPSET_ATTR_CADT_FLAGS, "flags");
  be32(IPSET_ATTR_ELEMENTS, "elements");
  be32(IPSET_ATTR_REFERENCES, "references");
  be32(IPSET_ATTR_MEMSIZE, "memsize");
  if (a.bad()) throw Malformed{"set"};
  return o;
}

class IpsetCodec : public Codec {
 public:
  void encode(const Napi::Object& op, uint16_t family, Builder& b, Request& req) const override {
    Napi::Env env = op.Env();
    std::string name = field::str(op, "cmd");
    const Command* c = nullptr;
    for (const Command& k : kCommands)
      if (name == k.name) c = &k;
    if (!c) throw Napi::TypeError::New(env, "ipset: unknown cmd " + name);

    uint16_t flags = NLM_F_REQUEST | c->flags;
    if (field::flag(op, "exist")) flags &= ~NLM_F_EXCL;
    req.dump = (c->flags & NLM_F_DUMP) != 0;
    size_t m = b.begin(msgType(c->cmd), flags);
    auto g = reinterpret_cast<nfgenmsg*>(b.at(b.extra(sizeof(nfgenmsg))));
    g->nfgen_family = static_cast<uint8_t>(family);
    g->version = NFNETLINK_V0;
    g->res_id = 0;
    b.putU8(IPSET_ATTR_PROTOCOL, static_cast<uint8_t>(field::uint(op, "protocol", 0xff, IPSET_PROTOCOL)));

    switch (c->cmd) {
      case IPSET_CMD_PROTOCOL:
        break;
      case IPSET_CMD_TYPE:
        b.putString(IPSET_ATTR_TYPENAME, field::str(op, "typename"));
        b.putU8(IPSET_ATTR_FAMILY, u8field(op, "family"));
        break;
      case IPSET_CMD_CREATE:
        b.putString(IPSET_ATTR_SETNAME, field::str(op, "name"));
        b.putString(IPSET_ATTR_TYPENAME, field::str(op, "typename"));
        b.putU8(IPSET_ATTR_REVISION, u8field(op, "revision"));
        b.putU8(IPSET_ATTR_FAMILY, u8field(op, "family"));
        putCreateData(field::has(op, "data") ? field::obj(op, "data") : Napi::Object::New(env), b);
        break;
      case IPSET_CMD_DESTROY:
      case IPSET_CMD_FLUSH:
        // Without a name: every set.
        if (field::has(op, "name")) b.putString(IPSET_ATTR_SETNAME, field::str(op, "name"));
        break;
      case IPSET_CMD_RENAME:
      case IPSET_CMD_SWAP:
        b.putString(IPSET_ATTR_SETNAME, field::str(op, "name"));
        b.putString(IPSET_ATTR_SETNAME2, field::str(op, "name2"));
        break;
      case IPSET_CMD_LIST:
        if (field::has(op, "name")) b.putString(IPSET_ATTR_SETNAME, field::str(op, "name"));
        // IPSET_FLAG_LIST_SETNAME / _LIST_HEADER: names only, headers only.
        if (field::has(op, "flags")) b.putNet32(IPSET_ATTR_FLAGS, field::u32(op, "flags"));
        break;
      case IPSET_CMD_HEADER:
        b.putString(IPSET_ATTR_SETNAME, field::str(op, "name"));
        break;
      case IPSET_CMD_ADD:
      case IPSET_CMD_DEL:
      case IPSET_CMD_TEST: {
        b.putString(IPSET_ATTR_SETNAME, field::str(op, "name"));
        if (field::has(op, "entries")) {
          // Many entries in one message: IPSET_ATTR_ADT holds one DATA nest per
          // entry, each numbered (IPSET_ATTR_LINENO, from 1); the kernel stops
          // at the first failure and echoes the request with the top-level
          // LINENO rewritten to that entry's number (see decodeEcho).
          if (c->cmd == IPSET_CMD_TEST) throw Napi::TypeError::New(env, "ipset: test takes one entry");
          Napi::Object cols = field::obj(op, "entries");
          int af = entryFamily(cols);
          ColumnEntries entries(cols);
          b.putNet32(IPSET_ATTR_LINENO, 0);
          size_t adt = b.nestStart(IPSET_ATTR_ADT);
          for (uint32_t i = 0; i < entries.count(); i++) {
            entries.at(i);
            size_t data = b.nestStart(IPSET_ATTR_DATA);
            putEntry(entries, af, b, i + 1, env);
            b.nestEnd(data);
          }
          b.nestEnd(adt);
        } else {
          Napi::Object e = field::obj(op, "entry");
          size_t data = b.nestStart(IPSET_ATTR_DATA);
          putEntry(ObjectEntry(e), entryFamily(e), b, 0, env);
          b.nestEnd(data);
        }
        break;
      }
      default:
        break;
    }
    b.end(m);
  }

  Napi::Value decode(Napi::Env env, const nlmsghdr* h) const override {
    if ((h->nlmsg_type >> 8) != NFNL_SUBSYS_IPSET) return env.Undefined();
    auto m = nl::body<nfgenmsg>(h);
    if (!m.hdr) return env.Undefined();
    Attrs a = m.table(IPSET_ATTR_CMD_MAX);
    Napi::Object o = Napi::Object::New(env);
    const char* kind;
    switch (h->nlmsg_type & 0xff) {
      case IPSET_CMD_PROTOCOL:
        kind = "protocol";
        o.Set("kind", kind);
        o.Set("protocol", a.u8(IPSET_ATTR_PROTOCOL));
        // Kernels before 3.11 (protocol 6) send no minimum.
        if (a.has(IPSET_ATTR_PROTOCOL_MIN)) o.Set("protocolMin", a.u8(IPSET_ATTR_PROTOCOL_MIN));
        break;
      case IPSET_CMD_TYPE:
        kind = "type";
        o.Set("kind", kind);
        o.Set("typename", a.str(IPSET_ATTR_TYPENAME));
        o.Set("family", a.u8(IPSET_ATTR_FAMILY));
        o.Set("revision", a.u8(IPSET_ATTR_REVISION));
        o.Set("revisionMin", a.u8(IPSET_ATTR_REVISION_MIN, a.u8(IPSET_ATTR_REVISION)));
        break;
      case IPSET_CMD_HEADER:
        kind = "header";
        o.Set("kind", kind);
        o.Set("name", a.str(IPSET_ATTR_SETNAME));
        o.Set("typename", a.str(IPSET_ATTR_TYPENAME));
        o.Set("family", a.u8(IPSET_ATTR_FAMILY));
        o.Set("revision", a.u8(IPSET_ATTR_REVISION));
        break;
      case IPSET_CMD_LIST:
      case IPSET_CMD_SAVE: {
        // One message of a dump: a set's name, its header in the first message
        // of the set, then members in IPSET_ATTR_ADT (a large set spans many
        // messages, each naming the set again).
        kind = "set";
        o.Set("kind", kind);
        o.Set("name", a.str(IPSET_ATTR_SETNAME));
        if (a.has(IPSET_ATTR_TYPENAME)) {
          o.Set("typename", a.str(IPSET_ATTR_TYPENAME));
          o.Set("family", a.u8(IPSET_ATTR_FAMILY));
          o.Set("revision", a.u8(IPSET_ATTR_REVISION));
          if (a.has(IPSET_ATTR_INDEX)) o.Set("index", a.be16(IPSET_ATTR_INDEX));
        }
        if (a.has(IPSET_ATTR_DATA)) o.Set("header", decodeHeader(env, a.get(IPSET_ATTR_DATA)));
        if (const nlattr* adt = a.get(IPSET_ATTR_ADT)) {
          uint32_t count = 0;
          forEachAttr(payload(adt), payloadLen(adt), [&](const nlattr* d) { count += attrType(d) == IPSET_ATTR_DATA; });
          MemberColumns members(env, count);
          uint32_t i = 0;
          forEachAttr(payload(adt), payloadLen(adt), [&](const nlattr* d) {
            if (attrType(d) == IPSET_ATTR_DATA) decodeMember(members, i++, d);
          });
          o.Set("members", members.finish());
        }
        break;
      }
      default:
        return env.Undefined();
    }
    if (a.bad()) throw Malformed{kind};
    return o;
  }

  // An ADT batch that failed comes back whole, its top-level IPSET_ATTR_LINENO
  // set to the number of the entry that failed (the ones before it were applied,
  // the ones after it were not tried).
  Napi::Value decodeEcho(Napi::Env env, const nlmsghdr* h) const override {
    if ((h->nlmsg_type >> 8) != NFNL_SUBSYS_IPSET) return env.Undefined();
    auto m = nl::body<nfgenmsg>(h);
    if (!m.hdr) return env.Undefined();
    Attrs a = m.table(IPSET_ATTR_CMD_MAX);
    if (!a.has(IPSET_ATTR_LINENO) || !a.has(IPSET_ATTR_ADT)) return env.Undefined();
    Napi::Object o = Napi::Object::New(env);
    o.Set("line", a.be32(IPSET_ATTR_LINENO));
    return o;
  }
};

}  // namespace

const Codec* ipsetCodec() {
  static IpsetCodec c;
  return &c;
}

}  // namespace nl
