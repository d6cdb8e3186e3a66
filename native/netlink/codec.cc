#include "codec.h"

#include <arpa/inet.h>

#include <cstring>

namespace nl {

namespace field {

// Each read is one property lookup and one type check: encoding a large batch
// makes tens of these per operation, and N-API calls are the cost.
namespace {

napi_valuetype lookup(const Napi::Object& o, const char* key, napi_value* out) {
  napi_env env = o.Env();
  napi_valuetype t = napi_undefined;
  if (napi_get_named_property(env, o, key, out) != napi_ok || napi_typeof(env, *out, &t) != napi_ok)
    throw Napi::Error::New(env, std::string("cannot read field: ") + key);
  return t;
}

bool absent(napi_valuetype t) { return t == napi_undefined || t == napi_null; }

[[noreturn]] void missing(const Napi::Object& o, const char* key) {
  throw Napi::TypeError::New(o.Env(), std::string("missing field: ") + key);
}

double number(const Napi::Object& o, const char* key, napi_valuetype t, napi_value v) {
  if (t != napi_number) throw Napi::TypeError::New(o.Env(), std::string("field is not a number: ") + key);
  double d = 0;
  napi_get_value_double(o.Env(), v, &d);
  return d;
}

uint32_t toU32(const Napi::Object& o, const char* key, double d) {
  if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint32_t>(d)))
    throw Napi::RangeError::New(o.Env(), std::string("field is not a 32-bit unsigned integer: ") + key);
  return static_cast<uint32_t>(d);
}

uint32_t checkMax(const Napi::Object& o, const char* key, uint32_t v, uint32_t max) {
  if (v > max) throw Napi::RangeError::New(o.Env(), std::string("field out of range: ") + key);
  return v;
}

}  // namespace

bool has(const Napi::Object& o, const char* key) {
  napi_value v;
  return !absent(lookup(o, key, &v));
}

uint32_t u32(const Napi::Object& o, const char* key) {
  napi_value v;
  napi_valuetype t = lookup(o, key, &v);
  if (absent(t)) missing(o, key);
  return toU32(o, key, number(o, key, t, v));
}

uint32_t u32(const Napi::Object& o, const char* key, uint32_t dflt) {
  napi_value v;
  napi_valuetype t = lookup(o, key, &v);
  return absent(t) ? dflt : toU32(o, key, number(o, key, t, v));
}

uint32_t uint(const Napi::Object& o, const char* key, uint32_t max) { return checkMax(o, key, u32(o, key), max); }

uint32_t uint(const Napi::Object& o, const char* key, uint32_t max, uint32_t dflt) {
  napi_value v;
  napi_valuetype t = lookup(o, key, &v);
  return absent(t) ? dflt : checkMax(o, key, toU32(o, key, number(o, key, t, v)), max);
}

uint64_t u64(const Napi::Object& o, const char* key) {
  napi_value v;
  napi_valuetype t = lookup(o, key, &v);
  if (absent(t)) missing(o, key);
  double d = number(o, key, t, v);
  if (!(d >= 0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d)))
    throw Napi::RangeError::New(o.Env(), std::string("field is not a safe unsigned integer: ") + key);
  return static_cast<uint64_t>(d);
}

std::string str(const Napi::Object& o, const char* key) {
  napi_value v;
  napi_valuetype t = lookup(o, key, &v);
  if (absent(t)) missing(o, key);
  if (t != napi_string) throw Napi::TypeError::New(o.Env(), std::string("field is not a string: ") + key);
  // Names and addresses are short: read into the stack, not a heap string first.
  char buf[256];
  size_t len = 0;
  napi_get_value_string_utf8(o.Env(), v, buf, sizeof buf, &len);
  if (len < sizeof buf - 1) return std::string(buf, len);
  return Napi::Value(o.Env(), v).As<Napi::String>().Utf8Value();
}

Napi::Object obj(const Napi::Object& o, const char* key) {
  napi_value v;
  napi_valuetype t = lookup(o, key, &v);
  if (absent(t)) missing(o, key);
  if (t != napi_object) throw Napi::TypeError::New(o.Env(), std::string("field is not an object: ") + key);
  return Napi::Object(o.Env(), v);
}

bool flag(const Napi::Object& o, const char* key) {
  napi_value v;
  napi_valuetype t = lookup(o, key, &v);
  if (absent(t)) return false;
  bool b = false;
  napi_value coerced;
  napi_coerce_to_bool(o.Env(), v, &coerced);
  napi_get_value_bool(o.Env(), coerced, &b);
  return b;
}

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
