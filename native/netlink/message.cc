#include "message.h"

#include <arpa/inet.h>
#include <endian.h>

#include <cstring>

namespace nl {

void Builder::pad() { buf_.resize(NLMSG_ALIGN(buf_.size()), 0); }

size_t Builder::begin(uint16_t type, uint16_t flags, uint32_t seq) {
  if (openNests_ != 0) throw EncodeError("netlink: message begun with a nest still open");
  pad();
  size_t off = buf_.size();
  buf_.resize(off + NLMSG_HDRLEN, 0);
  auto h = reinterpret_cast<nlmsghdr*>(at(off));
  h->nlmsg_type = type;
  h->nlmsg_flags = flags;
  h->nlmsg_seq = seq;
  return off;
}

size_t Builder::extra(size_t len) {
  size_t off = buf_.size();
  buf_.resize(off + NLMSG_ALIGN(len), 0);
  return off;
}

void Builder::end(size_t msg) {
  if (openNests_ != 0) throw EncodeError("netlink: message ended with a nest still open");
  pad();
  reinterpret_cast<nlmsghdr*>(at(msg))->nlmsg_len = static_cast<uint32_t>(buf_.size() - msg);
}

void Builder::put(uint16_t type, const void* data, size_t len) {
  if (NLA_HDRLEN + len > 0xffff) throw EncodeError("netlink: attribute longer than 65535 bytes");
  size_t off = buf_.size();
  buf_.resize(off + NLA_ALIGN(NLA_HDRLEN + len), 0);
  auto a = reinterpret_cast<nlattr*>(at(off));
  a->nla_type = type;
  a->nla_len = static_cast<uint16_t>(NLA_HDRLEN + len);
  if (len) std::memcpy(at(off + NLA_HDRLEN), data, len);
}

void Builder::putBe16(uint16_t type, uint16_t v) { putU16(type, htons(v)); }
void Builder::putBe32(uint16_t type, uint32_t v) { putU32(type, htonl(v)); }
void Builder::putBe64(uint16_t type, uint64_t v) { putU64(type, htobe64(v)); }

void Builder::putString(uint16_t type, const std::string& s) { put(type, s.c_str(), s.size() + 1); }

size_t Builder::nestStart(uint16_t type) {
  size_t off = buf_.size();
  put(static_cast<uint16_t>(type | NLA_F_NESTED), nullptr, 0);
  openNests_++;
  return off;
}

void Builder::nestEnd(size_t nest) {
  size_t len = buf_.size() - nest;
  if (len > 0xffff) throw EncodeError("netlink: nested attribute longer than 65535 bytes");
  reinterpret_cast<nlattr*>(at(nest))->nla_len = static_cast<uint16_t>(len);
  openNests_--;
}

void Builder::nestCancel(size_t nest) {
  buf_.resize(nest);
  openNests_--;
}

Attrs::Attrs(const void* data, size_t len, uint16_t max) : tb_(max + 1u, nullptr) {
  auto p = static_cast<const uint8_t*>(data);
  while (len >= NLA_HDRLEN) {
    auto a = reinterpret_cast<const nlattr*>(p);
    if (a->nla_len < NLA_HDRLEN || a->nla_len > len) {
      bad_ = true;
      return;
    }
    uint16_t type = attrType(a);
    if (type <= max) tb_[type] = a;
    size_t step = NLA_ALIGN(a->nla_len);
    if (step >= len) return;
    p += step;
    len -= step;
  }
}

Attrs Attrs::ofNest(const nlattr* nest, uint16_t max) {
  if (!nest) {
    Attrs empty;
    empty.tb_.assign(max + 1u, nullptr);
    return empty;
  }
  return Attrs(payload(nest), payloadLen(nest), max);
}

const uint8_t* Attrs::fixed(uint16_t type, size_t len) const {
  const nlattr* a = get(type);
  if (!a) return nullptr;
  if (payloadLen(a) < len) {
    bad_ = true;
    return nullptr;
  }
  return static_cast<const uint8_t*>(payload(a));
}

#define NL_FIXED_GETTER(name, T, conv)                   \
  T Attrs::name(uint16_t type, T dflt) const {           \
    const uint8_t* p = fixed(type, sizeof(T));           \
    if (!p) return dflt;                                 \
    T v;                                                 \
    std::memcpy(&v, p, sizeof(T));                       \
    return conv(v);                                      \
  }
#define NL_AS_IS(v) (v)
NL_FIXED_GETTER(u8, uint8_t, NL_AS_IS)
NL_FIXED_GETTER(u16, uint16_t, NL_AS_IS)
NL_FIXED_GETTER(u32, uint32_t, NL_AS_IS)
NL_FIXED_GETTER(u64, uint64_t, NL_AS_IS)
NL_FIXED_GETTER(be16, uint16_t, ntohs)
NL_FIXED_GETTER(be32, uint32_t, ntohl)
NL_FIXED_GETTER(be64, uint64_t, be64toh)
#undef NL_FIXED_GETTER
#undef NL_AS_IS

std::string Attrs::str(uint16_t type) const {
  const nlattr* a = get(type);
  if (!a) return std::string();
  auto p = static_cast<const char*>(payload(a));
  return std::string(p, strnlen(p, payloadLen(a)));
}

const uint8_t* Attrs::raw(uint16_t type, size_t* len) const {
  const nlattr* a = get(type);
  if (!a) return nullptr;
  *len = payloadLen(a);
  return static_cast<const uint8_t*>(payload(a));
}

}  // namespace nl
