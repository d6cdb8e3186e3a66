// What a netlink family plugs into the core: how one JavaScript operation becomes
// one request message, and how one reply message becomes a JavaScript record.
// Families name their header and attributes here and nothing else: building,
// sending, matching replies and errors are the core's.
#pragma once

#include <linux/netlink.h>
#include <napi.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "message.h"
#include "socket.h"

namespace nl {

// A reply message the decoder cannot read whole: an attribute's length past its
// nest, a value shorter than its type, a record without its key. A family's
// decode() throws it with the record's kind ("service", "entry", ...); the core
// fails the request with EBADMSG (and the byte-fixture decode() with an
// EBADMSG error), so no half record reaches JavaScript.
struct Malformed {
  const char* kind;
};

class Codec {
 public:
  virtual ~Codec() = default;
  // Appends the request for `op` to `b`, and says whether it is a dump.
  // Throws Napi::Error on an operation the TypeScript layer should never have
  // let through; nothing of the batch is sent then.
  virtual void encode(const Napi::Object& op, uint16_t family, Builder& b, Request& req) const = 0;
  // Decodes one data message of a reply (undefined to leave it out); throws
  // Malformed when the message cannot be read whole.
  virtual Napi::Value decode(Napi::Env env, const nlmsghdr* h) const = 0;
  // Reads the request the kernel echoed whole with an error (Result::echo):
  // what the family learns from it, or undefined (the default).
  virtual Napi::Value decodeEcho(Napi::Env env, const nlmsghdr* echoed) const { return env.Undefined(); }
};

// The codecs the addon knows, by name ("genl", "ipvs", ...).
const Codec* findCodec(const std::string& name);

// Reading operation fields: a wrong type names the field.
namespace field {
bool has(const Napi::Object& o, const char* key);
uint32_t u32(const Napi::Object& o, const char* key);
uint32_t u32(const Napi::Object& o, const char* key, uint32_t dflt);
// Narrower fields refuse values that would not fit rather than truncate them.
uint32_t uint(const Napi::Object& o, const char* key, uint32_t max);
uint32_t uint(const Napi::Object& o, const char* key, uint32_t max, uint32_t dflt);
// An integer up to 2^53 - 1 (a JavaScript number), for 64-bit counters.
uint64_t u64(const Napi::Object& o, const char* key);
std::string str(const Napi::Object& o, const char* key);
Napi::Object obj(const Napi::Object& o, const char* key);
bool flag(const Napi::Object& o, const char* key);
}  // namespace field

// Addresses as the kernel holds them: 4 or 16 bytes (union nf_inet_addr).
namespace inet {
// Parses `text` of family `af` (AF_INET / AF_INET6) into `out` (16 bytes, zero
// padded); throws Napi::Error naming `what` when it is not one.
void parse(Napi::Env env, const std::string& text, int af, uint8_t out[16], const char* what);
std::string format(int af, const void* addr);
// The bytes an address of `af` takes on the wire: 4 or 16.
inline size_t size(int af) { return af == AF_INET6 ? 16 : 4; }
}  // namespace inet

}  // namespace nl
