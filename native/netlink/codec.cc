#include "codec.h"

#include <arpa/inet.h>

#include <cstring>

namespace nl {

namespace field {

bool has(const Napi::Object& o, const char* key) {
  if (!o.Has(key)) return false;
  Napi::Value v = o.Get(key);
  return !v.IsUndefined() && !v.IsNull();
}

static Napi::Value need(const Napi::Object& o, const char* key) {
  if (!has(o, key)) throw Napi::TypeError::New(o.Env(), std::string("missing field: ") + key);
  return o.Get(key);
}

uint32_t u32(const Napi::Object& o, const char* key) {
  Napi::Value v = need(o, key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("field is not a number: ") + key);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint32_t>(d)))
    throw Napi::RangeError::New(o.Env(), std::string("field is not a 32-bit unsigned integer: ") + key);
  return static_cast<uint32_t>(d);
}

uint32_t u32(const Napi::Object& o, const char* key, uint32_t dflt) { return has(o, key) ? u32(o, key) : dflt; }

uint32_t uint(const Napi::Object& o, const char* key, uint32_t max) {
  uint32_t v = u32(o, key);
  if (v > max) throw Napi::RangeError::New(o.Env(), std::string("field out of range: ") + key);
  return v;
}

uint32_t uint(const Napi::Object& o, const char* key, uint32_t max, uint32_t dflt) {
  return has(o, key) ? uint(o, key, max) : dflt;
}

uint64_t u64(const Napi::Object& o, const char* key) {
  Napi::Value v = need(o, key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("field is not a number: ") + key);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d)))
    throw Napi::RangeError::New(o.Env(), std::string("field is not a safe unsigned integer: ") + key);
  return static_cast<uint64_t>(d);
}

std::string str(const Napi::Object& o, const char* key) {
  Napi::Value v = need(o, key);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("field is not a string: ") + key);
  return v.As<Napi::String>().Utf8Value();
}

Napi::Object obj(const Napi::Object& o, const char* key) {
  Napi::Value v = need(o, key);
  if (!v.IsObject()) throw Napi::TypeError::New(o.Env(), std::string("field is not an object: ") + key);
  return v.As<Napi::Object>();
}

bool flag(const Napi::Object& o, const char* key) { return has(o, key) && o.Get(key).ToBoolean().Value(); }

}  // namespace field

namespace inet {

void parse(Napi::Env env, const std::string& text, int af, uint8_t out[16], const char* what) {
  std::memset(out, 0, 16);
  if (inet_pton(af, text.c_str(), out) != 1)
    throw Napi::TypeError::New(env, std::string("not an IPv") + (af == AF_INET ? "4" : "6") +
                                        " address in " + what + ": " + text);
}

std::string format(int af, const void* addr) {
  char buf[INET6_ADDRSTRLEN] = "";
  inet_ntop(af, addr, buf, sizeof buf);
  return buf;
}

}  // namespace inet

}  // namespace nl
