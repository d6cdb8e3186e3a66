// The one netlink codec of tsproxy: builds request messages and reads attributes.
// Every family (generic netlink IPVS, nfnetlink ipset, rtnetlink, conntrack) goes
// through here; family code only names its header and attribute numbers.
#pragma once

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace nl {

// Thrown while encoding when a message cannot be represented (an attribute over
// 64 KiB, a nest left open). Input validation belongs to the TypeScript layer;
// reaching this is a bug or a hostile caller, never a half-sent batch, because
// encoding finishes before anything is sent.
struct EncodeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Appends messages to one growing buffer. Positions are offsets, never pointers,
// so growth cannot leave a dangling header behind.
class Builder {
 public:
  // Starts a message; returns its offset. The header's length is fixed by end().
  size_t begin(uint16_t type, uint16_t flags, uint32_t seq = 0);
  // Reserves the family header (genlmsghdr, nfgenmsg, ifaddrmsg, ...) after the
  // netlink header, zeroed; returns its offset.
  size_t extra(size_t len);
  void end(size_t msg);

  void put(uint16_t type, const void* data, size_t len);
  void putU8(uint16_t type, uint8_t v) { put(type, &v, 1); }
  void putU16(uint16_t type, uint16_t v) { put(type, &v, 2); }
  void putU32(uint16_t type, uint32_t v) { put(type, &v, 4); }
  void putU64(uint16_t type, uint64_t v) { put(type, &v, 8); }
  // Network byte order values, as several families expect for ports and marks.
  void putBe16(uint16_t type, uint16_t v);
  void putBe32(uint16_t type, uint32_t v);
  void putBe64(uint16_t type, uint64_t v);
  // Network byte order values flagged NLA_F_NET_BYTEORDER in the type, as
  // nfnetlink families (ipset, conntrack) require of their big-endian attributes.
  void putNet16(uint16_t type, uint16_t v) { putBe16(static_cast<uint16_t>(type | NLA_F_NET_BYTEORDER), v); }
  void putNet32(uint16_t type, uint32_t v) { putBe32(static_cast<uint16_t>(type | NLA_F_NET_BYTEORDER), v); }
  void putNet64(uint16_t type, uint64_t v) { putBe64(static_cast<uint16_t>(type | NLA_F_NET_BYTEORDER), v); }
  // A NUL-terminated string, as the kernel's NLA_NUL_STRING / NLA_STRING want.
  void putString(uint16_t type, const std::string& s);

  // Nests: NLA_F_NESTED is added here so callers cannot forget it (ipset
  // rejects nests without it; older families ignore the bit).
  size_t nestStart(uint16_t type);
  void nestEnd(size_t nest);
  void nestCancel(size_t nest);

  uint8_t* at(size_t off) { return buf_.data() + off; }
  const std::vector<uint8_t>& bytes() const { return buf_; }
  std::vector<uint8_t>& bytes() { return buf_; }
  size_t size() const { return buf_.size(); }

 private:
  void pad();
  std::vector<uint8_t> buf_;
  int openNests_ = 0;
};

// Attribute table of one message level, indexed by type, pointing into the
// received buffer (no copies). Types above `max` are ignored, so a newer kernel
// that adds attributes never breaks the reader. Malformed lengths make the
// table `bad()` rather than throwing: check once at the end (sticky error).
class Attrs {
 public:
  Attrs(const void* data, size_t len, uint16_t max);
  static Attrs ofNest(const nlattr* nest, uint16_t max);

  bool has(uint16_t type) const { return type < tb_.size() && tb_[type] != nullptr; }
  const nlattr* get(uint16_t type) const { return has(type) ? tb_[type] : nullptr; }
  bool bad() const { return bad_; }

  uint8_t u8(uint16_t type, uint8_t dflt = 0) const;
  uint16_t u16(uint16_t type, uint16_t dflt = 0) const;
  uint32_t u32(uint16_t type, uint32_t dflt = 0) const;
  uint64_t u64(uint16_t type, uint64_t dflt = 0) const;
  uint16_t be16(uint16_t type, uint16_t dflt = 0) const;
  uint32_t be32(uint16_t type, uint32_t dflt = 0) const;
  uint64_t be64(uint16_t type, uint64_t dflt = 0) const;
  std::string str(uint16_t type) const;
  // Raw payload and its length; nullptr when absent.
  const uint8_t* raw(uint16_t type, size_t* len) const;

 private:
  Attrs() = default;
  const uint8_t* fixed(uint16_t type, size_t len) const;
  std::vector<const nlattr*> tb_;
  mutable bool bad_ = false;
};

// Visits every attribute of a nest in order (for lists: ipset members, ...).
template <typename F>
void forEachAttr(const void* data, size_t len, F&& f) {
  auto p = static_cast<const uint8_t*>(data);
  while (len >= NLA_HDRLEN) {
    auto a = reinterpret_cast<const nlattr*>(p);
    if (a->nla_len < NLA_HDRLEN || a->nla_len > len) return;
    f(a);
    size_t step = NLA_ALIGN(a->nla_len);
    if (step >= len) return;
    p += step;
    len -= step;
  }
}

// A received message seen as its family header (genlmsghdr, nfgenmsg, ifinfomsg,
// ...) and the attributes after it. `hdr` is nullptr when the message is too
// short to hold the header: decoders skip it.
template <typename Header>
struct Body {
  const Header* hdr;
  const uint8_t* attrs;
  size_t len;
  Attrs table(uint16_t max) const { return Attrs(attrs, len, max); }
};

template <typename Header>
Body<Header> body(const nlmsghdr* h) {
  const size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(Header));
  if (h->nlmsg_len < off) return {nullptr, nullptr, 0};
  auto p = reinterpret_cast<const uint8_t*>(h);
  return {reinterpret_cast<const Header*>(p + NLMSG_HDRLEN), p + off, h->nlmsg_len - off};
}

inline const void* payload(const nlattr* a) { return reinterpret_cast<const uint8_t*>(a) + NLA_HDRLEN; }
inline size_t payloadLen(const nlattr* a) { return a->nla_len - NLA_HDRLEN; }
inline uint16_t attrType(const nlattr* a) { return a->nla_type & NLA_TYPE_MASK; }

}  // namespace nl
