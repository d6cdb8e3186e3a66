// nf_tables over nfnetlink: tables, chains, rules (with their expressions),
// sets and maps, set elements and the ruleset generation, both ways. Writes go
// out as one NFNL_MSG_BATCH_BEGIN .. NFNL_MSG_BATCH_END transaction (the
// requests are marked `atomic`, so the socket sends them in one sendmsg), read
// back as dumps that decode to the records the encoder takes. Names the
// messages and attributes of <linux/netfilter/nf_tables.h> and nothing else:
// what a comment or a key type means is lib/nftables' business.
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "../netlink/codec.h"

namespace nl {

namespace {

// ---- attribute specs: one table per object / expression, read both ways ----

enum class Kind {
  U8,       // one byte (ct direction, reject icmp code)
  U32,      // be32
  I32,      // be32 read as signed (priorities)
  U64,      // be64
  Str,      // NUL-terminated string
  Bytes,    // raw bytes (user data)
  Value,    // nest { NFTA_DATA_VALUE: bytes }
  Verdict,  // nest { NFTA_DATA_VERDICT: { code, chain? } }
  Expr,     // nest { NFTA_EXPR_NAME, NFTA_EXPR_DATA } (dynset's one expression)
};

struct Spec {
  uint16_t attr;
  const char* field;
  Kind kind;
  bool readOnly = false;  // the kernel's count (use): decoded, never sent
};

struct ExprSpec {
  const char* name;
  const Spec* specs;
  size_t count;
  uint16_t max;
};

#define SPECS(n, ...) constexpr Spec n[] = {__VA_ARGS__}

SPECS(kPayload, {NFTA_PAYLOAD_DREG, "dreg", Kind::U32}, {NFTA_PAYLOAD_BASE, "base", Kind::U32},
      {NFTA_PAYLOAD_OFFSET, "offset", Kind::U32}, {NFTA_PAYLOAD_LEN, "len", Kind::U32},
      {NFTA_PAYLOAD_SREG, "sreg", Kind::U32}, {NFTA_PAYLOAD_CSUM_TYPE, "csumType", Kind::U32},
      {NFTA_PAYLOAD_CSUM_OFFSET, "csumOffset", Kind::U32}, {NFTA_PAYLOAD_CSUM_FLAGS, "csumFlags", Kind::U32});
SPECS(kMeta, {NFTA_META_KEY, "key", Kind::U32}, {NFTA_META_DREG, "dreg", Kind::U32}, {NFTA_META_SREG, "sreg", Kind::U32});
SPECS(kCmp, {NFTA_CMP_SREG, "sreg", Kind::U32}, {NFTA_CMP_OP, "op", Kind::U32}, {NFTA_CMP_DATA, "data", Kind::Value});
SPECS(kBitwise, {NFTA_BITWISE_SREG, "sreg", Kind::U32}, {NFTA_BITWISE_DREG, "dreg", Kind::U32},
      {NFTA_BITWISE_OP, "op", Kind::U32}, {NFTA_BITWISE_LEN, "len", Kind::U32}, {NFTA_BITWISE_MASK, "mask", Kind::Value},
      {NFTA_BITWISE_XOR, "xor", Kind::Value}, {NFTA_BITWISE_DATA, "data", Kind::Value});
SPECS(kLookup, {NFTA_LOOKUP_SREG, "sreg", Kind::U32}, {NFTA_LOOKUP_DREG, "dreg", Kind::U32},
      {NFTA_LOOKUP_SET, "set", Kind::Str}, {NFTA_LOOKUP_SET_ID, "setId", Kind::U32},
      {NFTA_LOOKUP_FLAGS, "flags", Kind::U32});
SPECS(kImmediate, {NFTA_IMMEDIATE_DREG, "dreg", Kind::U32}, {NFTA_IMMEDIATE_DATA, "data", Kind::Value},
      {NFTA_IMMEDIATE_DATA, "verdict", Kind::Verdict});
SPECS(kCt, {NFTA_CT_KEY, "key", Kind::U32}, {NFTA_CT_DREG, "dreg", Kind::U32}, {NFTA_CT_DIRECTION, "direction", Kind::U8},
      {NFTA_CT_SREG, "sreg", Kind::U32});
SPECS(kFib, {NFTA_FIB_FLAGS, "flags", Kind::U32}, {NFTA_FIB_RESULT, "result", Kind::U32}, {NFTA_FIB_DREG, "dreg", Kind::U32});
SPECS(kNumgen, {NFTA_NG_DREG, "dreg", Kind::U32}, {NFTA_NG_MODULUS, "modulus", Kind::U32}, {NFTA_NG_TYPE, "type", Kind::U32},
      {NFTA_NG_OFFSET, "offset", Kind::U32});
SPECS(kNat, {NFTA_NAT_TYPE, "type", Kind::U32}, {NFTA_NAT_FAMILY, "family", Kind::U32},
      {NFTA_NAT_REG_ADDR_MIN, "addrMin", Kind::U32}, {NFTA_NAT_REG_ADDR_MAX, "addrMax", Kind::U32},
      {NFTA_NAT_REG_PROTO_MIN, "protoMin", Kind::U32}, {NFTA_NAT_REG_PROTO_MAX, "protoMax", Kind::U32},
      {NFTA_NAT_FLAGS, "flags", Kind::U32});
SPECS(kMasq, {NFTA_MASQ_FLAGS, "flags", Kind::U32}, {NFTA_MASQ_REG_PROTO_MIN, "protoMin", Kind::U32},
      {NFTA_MASQ_REG_PROTO_MAX, "protoMax", Kind::U32});
SPECS(kReject, {NFTA_REJECT_TYPE, "type", Kind::U32}, {NFTA_REJECT_ICMP_CODE, "code", Kind::U8});
SPECS(kCounter, {NFTA_COUNTER_BYTES, "bytes", Kind::U64}, {NFTA_COUNTER_PACKETS, "packets", Kind::U64});
SPECS(kRange, {NFTA_RANGE_SREG, "sreg", Kind::U32}, {NFTA_RANGE_OP, "op", Kind::U32},
      {NFTA_RANGE_FROM_DATA, "from", Kind::Value}, {NFTA_RANGE_TO_DATA, "to", Kind::Value});
SPECS(kLimit, {NFTA_LIMIT_RATE, "rate", Kind::U64}, {NFTA_LIMIT_UNIT, "unit", Kind::U64}, {NFTA_LIMIT_BURST, "burst", Kind::U32},
      {NFTA_LIMIT_TYPE, "type", Kind::U32}, {NFTA_LIMIT_FLAGS, "flags", Kind::U32});
SPECS(kDynset, {NFTA_DYNSET_SREG_KEY, "sregKey", Kind::U32}, {NFTA_DYNSET_SREG_DATA, "sregData", Kind::U32},
      {NFTA_DYNSET_OP, "op", Kind::U32}, {NFTA_DYNSET_TIMEOUT, "timeout", Kind::U64},
      {NFTA_DYNSET_SET_NAME, "set", Kind::Str}, {NFTA_DYNSET_SET_ID, "setId", Kind::U32},
      {NFTA_DYNSET_FLAGS, "flags", Kind::U32}, {NFTA_DYNSET_EXPR, "expr", Kind::Expr});

#define EXPR(n, s, m) {n, s, sizeof(s) / sizeof(s[0]), m}
constexpr ExprSpec kExprs[] = {
    EXPR("payload", kPayload, NFTA_PAYLOAD_MAX), EXPR("meta", kMeta, NFTA_META_MAX),
    EXPR("cmp", kCmp, NFTA_CMP_MAX),             EXPR("bitwise", kBitwise, NFTA_BITWISE_MAX),
    EXPR("lookup", kLookup, NFTA_LOOKUP_MAX),    EXPR("immediate", kImmediate, NFTA_IMMEDIATE_MAX),
    EXPR("ct", kCt, NFTA_CT_MAX),                EXPR("fib", kFib, NFTA_FIB_MAX),
    EXPR("numgen", kNumgen, NFTA_NG_MAX),        EXPR("nat", kNat, NFTA_NAT_MAX),
    EXPR("masq", kMasq, NFTA_MASQ_MAX),          EXPR("reject", kReject, NFTA_REJECT_MAX),
    EXPR("counter", kCounter, NFTA_COUNTER_MAX), EXPR("range", kRange, NFTA_RANGE_MAX),
    EXPR("limit", kLimit, NFTA_LIMIT_MAX),       EXPR("dynset", kDynset, NFTA_DYNSET_MAX),
};

SPECS(kTable, {NFTA_TABLE_NAME, "name", Kind::Str}, {NFTA_TABLE_FLAGS, "flags", Kind::U32},
      {NFTA_TABLE_HANDLE, "handle", Kind::U64}, {NFTA_TABLE_USERDATA, "userdata", Kind::Bytes},
      {NFTA_TABLE_USE, "use", Kind::U32, true});
SPECS(kChain, {NFTA_CHAIN_TABLE, "table", Kind::Str}, {NFTA_CHAIN_NAME, "name", Kind::Str},
      {NFTA_CHAIN_HANDLE, "handle", Kind::U64}, {NFTA_CHAIN_TYPE, "type", Kind::Str},
      {NFTA_CHAIN_POLICY, "policy", Kind::U32}, {NFTA_CHAIN_FLAGS, "flags", Kind::U32},
      {NFTA_CHAIN_USERDATA, "userdata", Kind::Bytes}, {NFTA_CHAIN_USE, "use", Kind::U32, true});
SPECS(kHook, {NFTA_HOOK_HOOKNUM, "hook", Kind::U32}, {NFTA_HOOK_PRIORITY, "priority", Kind::I32},
      {NFTA_HOOK_DEV, "device", Kind::Str});
SPECS(kRule, {NFTA_RULE_TABLE, "table", Kind::Str}, {NFTA_RULE_CHAIN, "chain", Kind::Str},
      {NFTA_RULE_HANDLE, "handle", Kind::U64}, {NFTA_RULE_POSITION, "position", Kind::U64});
// Sent after the expressions (set: after the description), where nft puts them.
SPECS(kRuleTail, {NFTA_RULE_USERDATA, "userdata", Kind::Bytes});
SPECS(kSetTail, {NFTA_SET_USERDATA, "userdata", Kind::Bytes}, {NFTA_SET_HANDLE, "handle", Kind::U64});
SPECS(kSet, {NFTA_SET_TABLE, "table", Kind::Str}, {NFTA_SET_NAME, "name", Kind::Str},
      {NFTA_SET_FLAGS, "flags", Kind::U32}, {NFTA_SET_KEY_TYPE, "keyType", Kind::U32},
      {NFTA_SET_KEY_LEN, "keyLen", Kind::U32}, {NFTA_SET_DATA_TYPE, "dataType", Kind::U32},
      {NFTA_SET_DATA_LEN, "dataLen", Kind::U32}, {NFTA_SET_POLICY, "policy", Kind::U32},
      {NFTA_SET_ID, "id", Kind::U32}, {NFTA_SET_TIMEOUT, "timeout", Kind::U64},
      {NFTA_SET_GC_INTERVAL, "gcInterval", Kind::U32});
SPECS(kElemList, {NFTA_SET_ELEM_LIST_TABLE, "table", Kind::Str}, {NFTA_SET_ELEM_LIST_SET, "set", Kind::Str},
      {NFTA_SET_ELEM_LIST_SET_ID, "setId", Kind::U32});
SPECS(kElem, {NFTA_SET_ELEM_FLAGS, "flags", Kind::U32}, {NFTA_SET_ELEM_KEY, "key", Kind::Value}, {NFTA_SET_ELEM_KEY_END, "keyEnd", Kind::Value},
      {NFTA_SET_ELEM_DATA, "data", Kind::Value}, {NFTA_SET_ELEM_DATA, "verdict", Kind::Verdict},
      {NFTA_SET_ELEM_TIMEOUT, "timeout", Kind::U64},
      {NFTA_SET_ELEM_EXPIRATION, "expiration", Kind::U64, true}, {NFTA_SET_ELEM_USERDATA, "userdata", Kind::Bytes});

// ---- encoding ----

[[noreturn]] void refuse(const Napi::Object& op, const std::string& what) {
  throw Napi::TypeError::New(op.Env(), "nftables: " + what);
}

int32_t i32(const Napi::Object& op, const char* key) {
  Napi::Value v = op.Get(key);
  if (!v.IsNumber()) refuse(op, std::string("field is not a number: ") + key);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= -2147483648.0 && d <= 2147483647.0) || d != static_cast<double>(static_cast<int32_t>(d)))
    refuse(op, std::string("field is not a 32-bit integer: ") + key);
  return static_cast<int32_t>(d);
}

void bytesOf(const Napi::Object& op, const char* key, const uint8_t** data, size_t* len) {
  Napi::Value v = op.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    refuse(op, std::string("field is not a Uint8Array: ") + key);
  auto a = v.As<Napi::Uint8Array>();
  *data = a.Data();
  *len = a.ByteLength();
}

void putExpr(const Napi::Object& e, Builder& b);

void putSpecs(const Napi::Object& op, const Spec* specs, size_t n, Builder& b) {
  for (size_t i = 0; i < n; i++) {
    const Spec& s = specs[i];
    if (s.readOnly || !field::has(op, s.field)) continue;
    switch (s.kind) {
      case Kind::U8:
        b.putU8(s.attr, static_cast<uint8_t>(field::uint(op, s.field, 0xff)));
        break;
      case Kind::U32:
        b.putBe32(s.attr, field::u32(op, s.field));
        break;
      case Kind::I32:
        b.putBe32(s.attr, static_cast<uint32_t>(i32(op, s.field)));
        break;
      case Kind::U64:
        b.putBe64(s.attr, field::u64(op, s.field));
        break;
      case Kind::Str:
        b.putString(s.attr, field::str(op, s.field));
        break;
      case Kind::Bytes: {
        const uint8_t* d;
        size_t len;
        bytesOf(op, s.field, &d, &len);
        b.put(s.attr, d, len);
        break;
      }
      case Kind::Value: {
        const uint8_t* d;
        size_t len;
        bytesOf(op, s.field, &d, &len);
        if (len == 0 || len > 64) refuse(op, std::string("a value of 1 to 64 bytes expected: ") + s.field);
        size_t n1 = b.nestStart(s.attr);
        b.put(NFTA_DATA_VALUE, d, len);
        b.nestEnd(n1);
        break;
      }
      case Kind::Verdict: {
        Napi::Object v = field::obj(op, s.field);
        size_t n1 = b.nestStart(s.attr);
        size_t n2 = b.nestStart(NFTA_DATA_VERDICT);
        b.putBe32(NFTA_VERDICT_CODE, static_cast<uint32_t>(i32(v, "code")));
        if (field::has(v, "chain")) b.putString(NFTA_VERDICT_CHAIN, field::str(v, "chain"));
        b.nestEnd(n2);
        b.nestEnd(n1);
        break;
      }
      case Kind::Expr: {
        size_t n1 = b.nestStart(s.attr);
        putExpr(field::obj(op, s.field), b);
        b.nestEnd(n1);
        break;
      }
    }
  }
}

const ExprSpec* exprSpec(const std::string& name) {
  for (const ExprSpec& x : kExprs)
    if (name == x.name) return &x;
  return nullptr;
}

// One expression's NFTA_EXPR_NAME + NFTA_EXPR_DATA, inside a nest the caller opened.
void putExpr(const Napi::Object& e, Builder& b) {
  std::string name = field::str(e, "name");
  const ExprSpec* x = exprSpec(name);
  if (!x) refuse(e, "unknown expression " + name);
  b.putString(NFTA_EXPR_NAME, name);
  size_t d = b.nestStart(NFTA_EXPR_DATA);
  putSpecs(e, x->specs, x->count, b);
  b.nestEnd(d);
}

template <size_t N>
void putAll(const Napi::Object& op, const Spec (&specs)[N], Builder& b) {
  putSpecs(op, specs, N, b);
}

// ---- decoding ----

Napi::Value exprValue(Napi::Env env, const nlattr* nest);

bool getSpecs(Napi::Env env, Napi::Object o, const Attrs& a, const Spec* specs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const Spec& s = specs[i];
    if (!a.has(s.attr)) continue;
    switch (s.kind) {
      case Kind::U8:
        o.Set(s.field, a.u8(s.attr));
        break;
      case Kind::U32:
        o.Set(s.field, a.be32(s.attr));
        break;
      case Kind::I32:
        o.Set(s.field, static_cast<int32_t>(a.be32(s.attr)));
        break;
      case Kind::U64:
        o.Set(s.field, static_cast<double>(a.be64(s.attr)));
        break;
      case Kind::Str:
        o.Set(s.field, a.str(s.attr));
        break;
      case Kind::Bytes: {
        size_t len;
        const uint8_t* p = a.raw(s.attr, &len);
        o.Set(s.field, Napi::Buffer<uint8_t>::Copy(env, p, len));
        break;
      }
      case Kind::Value: {
        Attrs d = Attrs::ofNest(a.get(s.attr), NFTA_DATA_MAX);
        if (d.bad()) return false;
        size_t len;
        const uint8_t* p = d.raw(NFTA_DATA_VALUE, &len);
        if (p) o.Set(s.field, Napi::Buffer<uint8_t>::Copy(env, p, len));
        break;
      }
      case Kind::Verdict: {
        Attrs d = Attrs::ofNest(a.get(s.attr), NFTA_DATA_MAX);
        if (d.bad()) return false;
        if (!d.has(NFTA_DATA_VERDICT)) break;
        Attrs v = Attrs::ofNest(d.get(NFTA_DATA_VERDICT), NFTA_VERDICT_MAX);
        if (!v.has(NFTA_VERDICT_CODE)) return false;
        Napi::Object vo = Napi::Object::New(env);
        vo.Set("code", static_cast<int32_t>(v.be32(NFTA_VERDICT_CODE)));
        if (v.has(NFTA_VERDICT_CHAIN)) vo.Set("chain", v.str(NFTA_VERDICT_CHAIN));
        if (v.bad()) return false;
        o.Set(s.field, vo);
        break;
      }
      case Kind::Expr: {
        Napi::Value e = exprValue(env, a.get(s.attr));
        if (e.IsUndefined()) return false;
        o.Set(s.field, e);
        break;
      }
    }
  }
  return !a.bad();
}

// A nest holding NFTA_EXPR_NAME + NFTA_EXPR_DATA as { name, ...fields };
// undefined when it cannot be read. An expression this codec does not name
// comes back as { name } alone.
Napi::Value exprValue(Napi::Env env, const nlattr* nest) {
  Attrs a = Attrs::ofNest(nest, NFTA_EXPR_MAX);
  if (!a.has(NFTA_EXPR_NAME) || a.bad()) return env.Undefined();
  std::string name = a.str(NFTA_EXPR_NAME);
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", name);
  const ExprSpec* x = exprSpec(name);
  if (x && a.has(NFTA_EXPR_DATA)) {
    Attrs d = Attrs::ofNest(a.get(NFTA_EXPR_DATA), x->max);
    if (!getSpecs(env, o, d, x->specs, x->count)) return env.Undefined();
  }
  return o;
}

template <size_t N>
bool getAll(Napi::Env env, Napi::Object o, const Attrs& a, const Spec (&specs)[N]) {
  return getSpecs(env, o, a, specs, N);
}

// ---- messages ----

constexpr uint16_t kSubsys = NFNL_SUBSYS_NFTABLES << 8;

struct Command {
  const char* cmd;
  uint8_t msg;
  uint16_t flags;  // besides NLM_F_REQUEST
  bool dump;
};

constexpr Command kCommands[] = {
    {"getTables", NFT_MSG_GETTABLE, NLM_F_DUMP, true},
    {"getChains", NFT_MSG_GETCHAIN, NLM_F_DUMP, true},
    {"getRules", NFT_MSG_GETRULE, NLM_F_DUMP, true},
    {"getSets", NFT_MSG_GETSET, NLM_F_DUMP, true},
    {"getElements", NFT_MSG_GETSETELEM, NLM_F_DUMP, true},
    {"getGen", NFT_MSG_GETGEN, 0, false},
    {"newTable", NFT_MSG_NEWTABLE, NLM_F_CREATE, false},
    {"delTable", NFT_MSG_DELTABLE, 0, false},
    {"newChain", NFT_MSG_NEWCHAIN, NLM_F_CREATE, false},
    {"delChain", NFT_MSG_DELCHAIN, 0, false},
    {"newRule", NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, false},
    {"delRule", NFT_MSG_DELRULE, 0, false},  // without a handle: every rule of the chain (flush)
    {"newSet", NFT_MSG_NEWSET, NLM_F_CREATE, false},
    {"delSet", NFT_MSG_DELSET, 0, false},
    {"newElements", NFT_MSG_NEWSETELEM, NLM_F_CREATE, false},
    {"delElements", NFT_MSG_DELSETELEM, 0, false},  // without elements: every element (flush)
};

void putHeader(Builder& b, uint8_t family, uint16_t resId) {
  auto g = reinterpret_cast<nfgenmsg*>(b.at(b.extra(sizeof(nfgenmsg))));
  g->nfgen_family = family;
  g->version = NFNETLINK_V0;
  g->res_id = htons(resId);
}

class NftablesCodec : public Codec {
 public:
  // Operations (lib/native/nftables.ts): batchBegin / batchEnd around the
  // writes of one transaction, getGen after it, dumps on their own. `family`
  // on an operation overrides the batch's (a transaction may touch ip and ip6).
  void encode(const Napi::Object& op, uint16_t family, Builder& b, Request& req) const override {
    std::string cmd = field::str(op, "cmd");
    uint8_t af = static_cast<uint8_t>(field::uint(op, "family", 0xff, family));
    if (cmd == "batchBegin" || cmd == "batchEnd") {
      req.atomic = true;
      size_t m = b.begin(cmd == "batchBegin" ? NFNL_MSG_BATCH_BEGIN : NFNL_MSG_BATCH_END, NLM_F_REQUEST);
      putHeader(b, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
      if (field::has(op, "genid")) b.putBe32(NFNL_BATCH_GENID, field::u32(op, "genid"));
      b.end(m);
      return;
    }
    const Command* c = nullptr;
    for (const Command& k : kCommands)
      if (cmd == k.cmd) c = &k;
    if (!c) refuse(op, "unknown cmd " + cmd);
    req.dump = c->dump;
    req.atomic = !c->dump && c->msg != NFT_MSG_GETGEN;
    uint16_t flags = NLM_F_REQUEST | c->flags;
    if (field::flag(op, "exclusive")) flags |= NLM_F_EXCL;
    if (c->msg == NFT_MSG_NEWRULE && field::flag(op, "insert")) flags &= ~NLM_F_APPEND;
    size_t m = b.begin(static_cast<uint16_t>(kSubsys | c->msg), flags);
    putHeader(b, af, 0);
    switch (c->msg) {
      case NFT_MSG_GETTABLE:
      case NFT_MSG_GETGEN:
        break;
      case NFT_MSG_NEWTABLE:
      case NFT_MSG_DELTABLE:
        putAll(op, kTable, b);
        break;
      case NFT_MSG_GETCHAIN:
      case NFT_MSG_NEWCHAIN:
      case NFT_MSG_DELCHAIN:
        putAll(op, kChain, b);
        if (field::has(op, "hook")) {
          size_t h = b.nestStart(NFTA_CHAIN_HOOK);
          putAll(op, kHook, b);
          b.nestEnd(h);
        }
        break;
      case NFT_MSG_GETRULE:
      case NFT_MSG_NEWRULE:
      case NFT_MSG_DELRULE:
        putAll(op, kRule, b);
        if (field::has(op, "expressions")) {
          Napi::Value v = op.Get("expressions");
          if (!v.IsArray()) refuse(op, "field is not an array: expressions");
          auto list = v.As<Napi::Array>();
          size_t l = b.nestStart(NFTA_RULE_EXPRESSIONS);
          for (uint32_t i = 0; i < list.Length(); i++) {
            Napi::Value e = list.Get(i);
            if (!e.IsObject()) refuse(op, "expression " + std::to_string(i) + " is not an object");
            size_t n = b.nestStart(NFTA_LIST_ELEM);
            putExpr(e.As<Napi::Object>(), b);
            b.nestEnd(n);
          }
          b.nestEnd(l);
        }
        putAll(op, kRuleTail, b);
        break;
      case NFT_MSG_GETSET:
      case NFT_MSG_NEWSET:
      case NFT_MSG_DELSET:
        putAll(op, kSet, b);
        if (field::has(op, "size") || field::has(op, "concat")) {
          size_t d = b.nestStart(NFTA_SET_DESC);
          if (field::has(op, "size")) b.putBe32(NFTA_SET_DESC_SIZE, field::u32(op, "size"));
          if (field::has(op, "concat")) {
            Napi::Value v = op.Get("concat");
            if (!v.IsArray()) refuse(op, "field is not an array: concat");
            auto list = v.As<Napi::Array>();
            size_t cn = b.nestStart(NFTA_SET_DESC_CONCAT);
            for (uint32_t i = 0; i < list.Length(); i++) {
              Napi::Value f = list.Get(i);
              if (!f.IsNumber()) refuse(op, "concat field lengths must be numbers");
              size_t e = b.nestStart(NFTA_LIST_ELEM);
              b.putBe32(NFTA_SET_FIELD_LEN, f.As<Napi::Number>().Uint32Value());
              b.nestEnd(e);
            }
            b.nestEnd(cn);
          }
          b.nestEnd(d);
        }
        putAll(op, kSetTail, b);
        break;
      case NFT_MSG_GETSETELEM:
      case NFT_MSG_NEWSETELEM:
      case NFT_MSG_DELSETELEM:
        putAll(op, kElemList, b);
        if (field::has(op, "elements")) {
          Napi::Value v = op.Get("elements");
          if (!v.IsArray()) refuse(op, "field is not an array: elements");
          auto list = v.As<Napi::Array>();
          size_t l = b.nestStart(NFTA_SET_ELEM_LIST_ELEMENTS);
          for (uint32_t i = 0; i < list.Length(); i++) {
            Napi::Value e = list.Get(i);
            if (!e.IsObject()) refuse(op, "element " + std::to_string(i) + " is not an object");
            // Numbered from 1, as nft numbers them (the kernel reads any type).
            size_t n = b.nestStart(static_cast<uint16_t>(std::min<uint32_t>(i + 1, NLA_TYPE_MASK)));
            putAll(e.As<Napi::Object>(), kElem, b);
            b.nestEnd(n);
          }
          b.nestEnd(l);
        }
        break;
    }
    b.end(m);
  }

  Napi::Value decode(Napi::Env env, const nlmsghdr* h) const override {
    if ((h->nlmsg_type >> 8) != NFNL_SUBSYS_NFTABLES) return env.Undefined();
    auto m = nl::body<nfgenmsg>(h);
    if (!m.hdr) return env.Undefined();
    const nfgenmsg* g = m.hdr;
    Napi::Object o = Napi::Object::New(env);
    switch (h->nlmsg_type & 0xff) {
      case NFT_MSG_NEWTABLE: {
        Attrs a = m.table(NFTA_TABLE_MAX);
        o.Set("kind", "table");
        o.Set("family", g->nfgen_family);
        if (!a.has(NFTA_TABLE_NAME) || !getAll(env, o, a, kTable)) throw Malformed{"table"};
        if (!a.has(NFTA_TABLE_USE)) o.Set("use", 0);
        break;
      }
      case NFT_MSG_NEWCHAIN: {
        Attrs a = m.table(NFTA_CHAIN_MAX);
        o.Set("kind", "chain");
        o.Set("family", g->nfgen_family);
        if (!a.has(NFTA_CHAIN_TABLE) || !a.has(NFTA_CHAIN_NAME) || !getAll(env, o, a, kChain)) throw Malformed{"chain"};
        o.Set("base", a.has(NFTA_CHAIN_HOOK));
        if (a.has(NFTA_CHAIN_HOOK)) {
          Attrs hk = Attrs::ofNest(a.get(NFTA_CHAIN_HOOK), NFTA_HOOK_MAX);
          if (!getAll(env, o, hk, kHook)) throw Malformed{"chain"};
        }
        break;
      }
      case NFT_MSG_NEWRULE: {
        Attrs a = m.table(NFTA_RULE_MAX);
        o.Set("kind", "rule");
        o.Set("family", g->nfgen_family);
        if (!a.has(NFTA_RULE_TABLE) || !a.has(NFTA_RULE_CHAIN) || !getAll(env, o, a, kRule) || !getAll(env, o, a, kRuleTail)) throw Malformed{"rule"};
        Napi::Array list = Napi::Array::New(env);
        bool ok = true;
        if (a.has(NFTA_RULE_EXPRESSIONS)) {
          const nlattr* l = a.get(NFTA_RULE_EXPRESSIONS);
          uint32_t n = 0;
          forEachAttr(payload(l), payloadLen(l), [&](const nlattr* e) {
            if (attrType(e) != NFTA_LIST_ELEM) return;
            Napi::Value x = exprValue(env, e);
            if (x.IsUndefined()) ok = false;
            else list.Set(n++, x);
          });
        }
        if (!ok) throw Malformed{"rule"};
        o.Set("expressions", list);
        break;
      }
      case NFT_MSG_NEWSET: {
        Attrs a = m.table(NFTA_SET_MAX);
        o.Set("kind", "set");
        o.Set("family", g->nfgen_family);
        if (!a.has(NFTA_SET_TABLE) || !a.has(NFTA_SET_NAME) || !getAll(env, o, a, kSet) || !getAll(env, o, a, kSetTail)) throw Malformed{"set"};
        if (a.has(NFTA_SET_DESC)) {
          Attrs d = Attrs::ofNest(a.get(NFTA_SET_DESC), NFTA_SET_DESC_MAX);
          if (d.has(NFTA_SET_DESC_SIZE)) o.Set("size", d.be32(NFTA_SET_DESC_SIZE));
          if (d.has(NFTA_SET_DESC_CONCAT)) {
            Napi::Array c = Napi::Array::New(env);
            uint32_t n = 0;
            const nlattr* l = d.get(NFTA_SET_DESC_CONCAT);
            forEachAttr(payload(l), payloadLen(l), [&](const nlattr* e) {
              Attrs f = Attrs::ofNest(e, NFTA_SET_FIELD_MAX);
              c.Set(n++, f.be32(NFTA_SET_FIELD_LEN));
            });
            o.Set("concat", c);
          }
          if (d.bad()) throw Malformed{"set"};
        }
        break;
      }
      case NFT_MSG_NEWSETELEM: {
        Attrs a = m.table(NFTA_SET_ELEM_LIST_MAX);
        o.Set("kind", "elements");
        o.Set("family", g->nfgen_family);
        if (!a.has(NFTA_SET_ELEM_LIST_TABLE) || !a.has(NFTA_SET_ELEM_LIST_SET) || !getAll(env, o, a, kElemList)) throw Malformed{"elements"};
        Napi::Array list = Napi::Array::New(env);
        bool ok = true;
        if (a.has(NFTA_SET_ELEM_LIST_ELEMENTS)) {
          const nlattr* l = a.get(NFTA_SET_ELEM_LIST_ELEMENTS);
          uint32_t n = 0;
          forEachAttr(payload(l), payloadLen(l), [&](const nlattr* e) {
            Napi::Object eo = Napi::Object::New(env);
            Attrs ea = Attrs::ofNest(e, NFTA_SET_ELEM_MAX);
            if (!getAll(env, eo, ea, kElem)) ok = false;
            list.Set(n++, eo);
          });
        }
        if (!ok) throw Malformed{"elements"};
        o.Set("elements", list);
        break;
      }
      case NFT_MSG_NEWGEN: {
        Attrs a = m.table(NFTA_GEN_MAX);
        o.Set("kind", "gen");
        if (!a.has(NFTA_GEN_ID) || a.bad()) throw Malformed{"gen"};
        o.Set("id", a.be32(NFTA_GEN_ID));
        break;
      }
      default:
        return env.Undefined();
    }
    return o;
  }
};

}  // namespace

const Codec* nftablesCodec() {
  static NftablesCodec c;
  return &c;
}

}  // namespace nl
