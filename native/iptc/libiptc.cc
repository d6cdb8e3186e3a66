// Loads libip4tc / libip6tc with dlopen and resolves the functions of Api.
#include "libiptc.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

namespace iptc {

namespace {

struct Loaded {
  std::once_flag once;
  Api api;
  bool ok = false;
  std::string error;
};

Loaded loaded[2];

template <typename F>
bool resolve(void* lib, const std::string& prefix, const char* name, F& out, std::string* missing) {
  void* p = dlsym(lib, (prefix + name).c_str());
  if (!p) {
    *missing = prefix + name;
    return false;
  }
  out = reinterpret_cast<F>(p);
  return true;
}

void doLoad(int family, Loaded& l) {
  const char* env = std::getenv(family == 4 ? "TSPROXY_LIBIP4TC" : "TSPROXY_LIBIP6TC");
  const std::string base = family == 4 ? "libip4tc" : "libip6tc";
  // .so.2 since iptables 1.8.0, .so.0 before; .so only with the -dev package.
  std::string candidates[] = {base + ".so.2", base + ".so.0", base + ".so"};
  void* lib = nullptr;
  std::string tried;
  if (env && *env) {
    lib = dlopen(env, RTLD_NOW | RTLD_LOCAL);
    if (!lib) tried = dlerror();
  } else {
    for (const std::string& c : candidates) {
      lib = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (lib) {
        l.api.path = c;
        break;
      }
      if (tried.empty()) tried = dlerror();
    }
  }
  if (!lib) {
    l.error = tried;
    return;
  }
  if (env && *env) l.api.path = env;
  Api& a = l.api;
  a.family = family;
  const std::string p = family == 4 ? "iptc_" : "ip6tc_";
  std::string missing;
  bool ok = resolve(lib, p, "init", a.init, &missing) && resolve(lib, p, "free", a.free, &missing) &&
            resolve(lib, p, "first_chain", a.firstChain, &missing) &&
            resolve(lib, p, "next_chain", a.nextChain, &missing) &&
            resolve(lib, p, "first_rule", a.firstRule, &missing) &&
            resolve(lib, p, "next_rule", a.nextRule, &missing) &&
            resolve(lib, p, "get_target", a.getTarget, &missing) &&
            resolve(lib, p, "builtin", a.builtin, &missing) &&
            resolve(lib, p, "get_policy", a.getPolicy, &missing) &&
            resolve(lib, p, "insert_entry", a.insertEntry, &missing) &&
            resolve(lib, p, "replace_entry", a.replaceEntry, &missing) &&
            resolve(lib, p, "append_entry", a.appendEntry, &missing) &&
            resolve(lib, p, "delete_entry", a.deleteEntry, &missing) &&
            resolve(lib, p, "delete_num_entry", a.deleteNumEntry, &missing) &&
            resolve(lib, p, "flush_entries", a.flushEntries, &missing) &&
            resolve(lib, p, "zero_entries", a.zeroEntries, &missing) &&
            resolve(lib, p, "create_chain", a.createChain, &missing) &&
            resolve(lib, p, "delete_chain", a.deleteChain, &missing) &&
            resolve(lib, p, "rename_chain", a.renameChain, &missing) &&
            resolve(lib, p, "set_policy", a.setPolicy, &missing) &&
            resolve(lib, p, "get_references", a.getReferences, &missing) &&
            resolve(lib, p, "commit", a.commit, &missing);
  if (!ok) {
    l.error = a.path + " has no " + missing;
    dlclose(lib);
    return;
  }
  l.ok = true;
}

}  // namespace

const Api* load(int family, std::string* error) {
  Loaded& l = loaded[family == 6 ? 1 : 0];
  std::call_once(l.once, [&] { doLoad(family == 6 ? 6 : 4, l); });
  if (!l.ok) {
    if (error) *error = l.error;
    return nullptr;
  }
  return &l.api;
}

}  // namespace iptc
