// libiptc (libip4tc for IPv4, libip6tc for IPv6), resolved at run time with
// dlopen: the addon must load, and IPVS and ipset keep working, on a machine
// without these libraries; only the iptables API needs them. No libiptc header
// is needed to build either: the few prototypes are declared here.
#pragma once

#include <string>

struct xtc_handle;
struct xt_counters;

namespace iptc {

// A chain name as libiptc reads it: always 32 bytes (xt_chainlabel).
struct Label {
  char s[32] = {};
};

// The libiptc functions we call. The IPv4 and IPv6 libraries have the same
// signatures (iptc_* and ip6tc_*); entries are struct ipt_entry / ip6t_entry.
struct Api {
  int family = 0;  // 4 or 6
  std::string path;
  xtc_handle* (*init)(const char* table);
  void (*free)(xtc_handle*);
  const char* (*firstChain)(xtc_handle*);
  const char* (*nextChain)(xtc_handle*);
  const void* (*firstRule)(const char* chain, xtc_handle*);
  const void* (*nextRule)(const void* prev, xtc_handle*);
  const char* (*getTarget)(const void* entry, xtc_handle*);
  int (*builtin)(const char* chain, xtc_handle*);
  const char* (*getPolicy)(const char* chain, xt_counters* counters, xtc_handle*);
  int (*insertEntry)(const char* chain, const void* entry, unsigned rulenum, xtc_handle*);
  int (*replaceEntry)(const char* chain, const void* entry, unsigned rulenum, xtc_handle*);
  int (*appendEntry)(const char* chain, const void* entry, xtc_handle*);
  int (*deleteEntry)(const char* chain, const void* entry, unsigned char* matchmask, xtc_handle*);
  int (*deleteNumEntry)(const char* chain, unsigned rulenum, xtc_handle*);
  int (*flushEntries)(const char* chain, xtc_handle*);
  int (*zeroEntries)(const char* chain, xtc_handle*);
  int (*createChain)(const char* chain, xtc_handle*);
  int (*deleteChain)(const char* chain, xtc_handle*);
  int (*renameChain)(const char* oldname, const char* newname, xtc_handle*);
  int (*setPolicy)(const char* chain, const char* policy, xt_counters* counters, xtc_handle*);
  int (*getReferences)(unsigned* refs, const char* chain, xtc_handle*);
  int (*commit)(xtc_handle*);
};

// The library of `family` (4 or 6), loaded once per process; nullptr with
// `error` saying what is missing when it cannot be loaded. TSPROXY_LIBIP4TC /
// TSPROXY_LIBIP6TC name a file to load instead of the usual sonames.
const Api* load(int family, std::string* error);

}  // namespace iptc
