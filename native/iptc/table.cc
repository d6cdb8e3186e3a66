// Transactions over libiptc, the xtables lock, and the snapshot cache.
//
// libiptc reads a whole table (IPT_SO_GET_ENTRIES, then parses every entry into
// its own lists) and writes a whole table (IPT_SO_SET_REPLACE, then
// SO_SET_ADD_COUNTERS). A handle cannot be committed twice (it keeps the
// counter layout of the table it read), so each transaction needs a fresh
// snapshot. We read the next one right after a commit (prefetch), off the
// critical path, and hand it to the next transaction if nothing changed since:
// no commit of ours, no other process opening the xtables lock file (every
// iptables, iptables-restore and ip6tables command does), and the kernel's
// summary of the table (size, entry count, hook offsets) the same.
//
// libiptc has process-wide state (a static in create_chain, the error
// context), so every call into one library runs under that library's mutex.
#include "table.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <unistd.h>

#include <linux/netfilter_ipv4/ip_tables.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <linux/netfilter/ipset/ip_set.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/xt_addrtype.h>
#include <linux/netfilter/xt_comment.h>
#include <linux/netfilter/xt_conntrack.h>
#include <linux/netfilter/xt_LOG.h>
#include <linux/netfilter/xt_mark.h>
#include <linux/netfilter/xt_multiport.h>
#include <linux/netfilter/xt_physdev.h>
#include <linux/netfilter/xt_recent.h>
// xt_sctp.h's inline helpers are C (_Bool); only its struct is used here.
#define _Bool bool
#include <linux/netfilter/xt_sctp.h>
#undef _Bool
#include <linux/netfilter/xt_set.h>
#include <linux/netfilter/xt_statistic.h>
#include <linux/netfilter/xt_tcpudp.h>
#include <linux/netfilter_ipv4/ipt_REJECT.h>
#include <linux/netfilter_ipv6/ip6t_REJECT.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

namespace iptc {

namespace {

using Clock = std::chrono::steady_clock;
double msSince(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// ---- the kernel's summary of a table --------------------------------------------

// GET_INFO minus the name: what must be unchanged for a snapshot to be reused.
std::vector<uint8_t> infoBytes(int family, const std::string& table, int* err) {
  ipt_getinfo info;  // ip6t_getinfo has the same layout
  static_assert(sizeof(ipt_getinfo) == sizeof(ip6t_getinfo), "getinfo layouts");
  memset(&info, 0, sizeof info);
  strncpy(info.name, table.c_str(), sizeof info.name - 1);
  int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  if (fd < 0) {
    *err = errno;
    return {};
  }
  socklen_t len = sizeof info;
  int rc = getsockopt(fd, family == 6 ? IPPROTO_IPV6 : IPPROTO_IP, family == 6 ? IP6T_SO_GET_INFO : IPT_SO_GET_INFO,
                      &info, &len);
  *err = rc < 0 ? errno : 0;
  close(fd);
  if (rc < 0) return {};
  auto p = reinterpret_cast<const uint8_t*>(&info) + sizeof info.name;
  return std::vector<uint8_t>(p, p + sizeof info - sizeof info.name);
}

// ---- the xtables lock (/run/xtables.lock), as iptables takes it ---------------------

// Epochs of different watches never compare equal; without a watch every call
// returns a new epoch, so nothing is ever reused.
class XtLock {
 public:
  static XtLock& get() {
    static XtLock* lock = new XtLock();  // never destroyed: pool threads may outlive exit handlers
    return *lock;
  }

  // The lock file is opened once, before it is watched, and then only locked
  // and unlocked: every IN_OPEN the watch reports is another process's. (So
  // they need no counting: inotify coalesces identical unread events.)
  Epoch epoch() {
    std::lock_guard<std::mutex> g(evMu_);
    if (ino_ < 0 && !held_) setup();
    if (ino_ < 0) return Epoch{++watches_, 0};
    drain();
    if (ino_ < 0) return Epoch{++watches_, 0};
    return Epoch{watchId_, events_};
  }

  // Takes the lock within `timeoutMs`: 0, or an errno (ETIMEDOUT). Our own
  // threads take turns on mu_ (flock would not exclude them: they share fd_).
  int acquire(int timeoutMs) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
    std::unique_lock<std::mutex> own(mu_, std::defer_lock);
    while (!own.try_lock()) {
      if (Clock::now() >= deadline) return ETIMEDOUT;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    int fd;
    {
      std::lock_guard<std::mutex> g(evMu_);
      if (ino_ >= 0) drain();  // notices a lock file replaced under us
      if (ino_ < 0 || fd_ < 0) setup();
      if (fd_ < 0) return openErr_;
      fd = fd_;
      held_ = true;
    }
    int sleepMs = 1;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if ((errno != EWOULDBLOCK && errno != EINTR) || Clock::now() >= deadline) {
        int e = errno == EWOULDBLOCK || errno == EINTR ? ETIMEDOUT : errno;
        std::lock_guard<std::mutex> g(evMu_);
        held_ = false;
        return e;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(sleepMs));
      sleepMs = std::min(sleepMs * 2, 20);
    }
    own.release();  // mu_ stays held until release()
    return 0;
  }

  void release() {
    {
      std::lock_guard<std::mutex> g(evMu_);
      flock(fd_, LOCK_UN);
      held_ = false;
    }
    mu_.unlock();
  }

  const std::string& path() {
    if (path_.empty()) {
      const char* env = getenv("XTABLES_LOCKFILE");  // as iptables
      path_ = env && *env ? env : "/run/xtables.lock";
    }
    return path_;
  }

 private:
  XtLock() = default;

  // Opens the lock file (creating it, as iptables would), then watches it.
  // Called with evMu_ held and the flock not held.
  void setup() {
    if (fd_ >= 0) close(fd_);
    if (ino_ >= 0) close(ino_);
    ino_ = -1;
    fd_ = open(path().c_str(), O_CREAT | O_RDONLY | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      openErr_ = errno;
      return;
    }
    int ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (ino < 0) return;
    if (inotify_add_watch(ino, path().c_str(), IN_OPEN | IN_DELETE_SELF | IN_MOVE_SELF) < 0) {
      close(ino);
      return;
    }
    ino_ = ino;
    watchId_ = ++watches_;
    events_ = 0;
  }

  void drain() {
    alignas(inotify_event) char buf[4096];
    for (;;) {
      ssize_t n = read(ino_, buf, sizeof buf);
      if (n <= 0) return;
      for (char* p = buf; p < buf + n;) {
        auto ev = reinterpret_cast<inotify_event*>(p);
        if (ev->mask & IN_OPEN) events_++;
        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
          close(ino_);  // the file we watch is gone: start over when the flock is not held
          ino_ = -1;
          return;
        }
        p += sizeof(inotify_event) + ev->len;
      }
    }
  }

  std::mutex mu_;    // held while we hold the flock
  std::mutex evMu_;  // everything below
  std::string path_;
  int fd_ = -1, ino_ = -1, openErr_ = ENOENT;
  bool held_ = false;
  uint64_t watchId_ = 0, watches_ = 0;
  int64_t events_ = 0;
};

// ---- per table state: the snapshot cache -------------------------------------------

struct Snapshot {
  xtc_handle* h = nullptr;
  std::string digest;  // of its chain hashes (tableDigest), once a survey computed them; "" before
  uint64_t generation = 0;
  Epoch epoch;
  std::vector<uint8_t> info;
};

struct TableState {
  uint64_t generation = 0;  // our commits to this table
  Snapshot cached;
  std::vector<xtc_handle*> garbage;  // committed handles, freed by the next prefetch
};

// One mutex per library (libiptc is not thread-safe), held by every call into it.
std::mutex& libraryMutex(int family) {
  static std::mutex m[2];
  return m[family == 6 ? 1 : 0];
}

TableState& state(int family, const std::string& table) {
  // Only called with libraryMutex(family) held.
  static std::map<std::string, std::unique_ptr<TableState>>* tables = new std::map<std::string, std::unique_ptr<TableState>>();
  auto& slot = (*tables)[std::to_string(family) + ":" + table];
  if (!slot) slot = std::make_unique<TableState>();
  return *slot;
}

// Whether the kernel still holds the table a snapshot was read from.
bool fresh(int family, const std::string& table, const TableState& st, uint64_t generation, const Epoch& epoch,
           const std::vector<uint8_t>& info) {
  if (generation != st.generation) return false;
  if (!(XtLock::get().epoch() == epoch)) return false;
  int err = 0;
  return infoBytes(family, table, &err) == info && err == 0;
}

bool fresh(int family, const std::string& table, const TableState& st, const Snapshot& s) {
  return fresh(family, table, st, s.generation, s.epoch, s.info);
}

// Reads a table: the epoch and summary first, so a change racing the read
// shows as a stale snapshot later, never as a fresh one.
xtc_handle* loadSnapshot(const Api* api, const std::string& table, const TableState& st, Snapshot* meta, int* err) {
  meta->generation = st.generation;
  meta->epoch = XtLock::get().epoch();
  int infoErr = 0;
  meta->info = infoBytes(api->family, table, &infoErr);
  errno = 0;
  xtc_handle* h = api->init(table.c_str());
  if (!h) *err = errno ? errno : EINVAL;
  return h;
}

// Gives freed heap back to the system. libiptc's copy of a large table is
// hundreds of thousands of small blocks, allocated on thread-pool threads (their
// own malloc arenas, which glibc does not shrink by itself).
void trimHeap() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

void freeGarbage(const Api* api, TableState& st) {
  if (st.garbage.empty()) return;
  for (xtc_handle* h : st.garbage) api->free(h);
  st.garbage.clear();
  trimHeap();
}

// Handles of transactions dropped without commit or abort (their finalizer
// runs on the JavaScript thread, which must not wait for the library mutex):
// freed by the next job of their family.
std::mutex orphansMu;
std::vector<std::pair<const Api*, xtc_handle*>> orphans;

void freeOrphans(int family) {
  std::vector<std::pair<const Api*, xtc_handle*>> mine;
  {
    std::lock_guard<std::mutex> g(orphansMu);
    for (auto it = orphans.begin(); it != orphans.end();) {
      if (it->first->family == family) {
        mine.push_back(*it);
        it = orphans.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [api, h] : mine) api->free(h);  // the caller holds the library mutex
}

// Every job's way into a library: its mutex, and the orphans left for it.
struct LibraryLock {
  std::lock_guard<std::mutex> guard;
  explicit LibraryLock(int family) : guard(libraryMutex(family)) { freeOrphans(family); }
};

// ---- entries -----------------------------------------------------------------------

struct EntryLayout {
  size_t elems, targetOffset, nextOffset, counters, comefrom;
};

EntryLayout entryLayout(int family) {
  if (family == 6)
    return {sizeof(ip6t_entry), offsetof(ip6t_entry, target_offset), offsetof(ip6t_entry, next_offset),
            offsetof(ip6t_entry, counters), offsetof(ip6t_entry, comefrom)};
  return {sizeof(ipt_entry), offsetof(ipt_entry, target_offset), offsetof(ipt_entry, next_offset),
          offsetof(ipt_entry, counters), offsetof(ipt_entry, comefrom)};
}

uint16_t u16at(const uint8_t* p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}

// ipset names <-> indexes, as iptables' set extension asks the kernel.
class IpsetLookup {
 public:
  ~IpsetLookup() {
    if (fd_ >= 0) close(fd_);
  }
  // 0 and the index, or an errno (ENOENT: no such set; EAFNOSUPPORT: wrong family).
  int index(const char* name, int family, uint16_t* out) {
    int e = open();
    if (e) return e;
    ip_set_req_get_set_family req;
    memset(&req, 0, sizeof req);
    req.op = IP_SET_OP_GET_FNAME;
    req.version = version_;
    memcpy(req.set.name, name, strnlen(name, IPSET_MAXNAMELEN - 1));
    socklen_t len = sizeof req;
    if (getsockopt(fd_, SOL_IP, SO_IP_SET, &req, &len) != 0) return errno;
    if (req.set.index == IPSET_INVALID_ID) return ENOENT;
    int want = family == 6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
    if (req.family != static_cast<unsigned>(want) && req.family != NFPROTO_UNSPEC) return EAFNOSUPPORT;
    *out = req.set.index;
    return 0;
  }
  std::string name(uint16_t index) {
    if (open()) return "";
    ip_set_req_get_set req;
    memset(&req, 0, sizeof req);
    req.op = IP_SET_OP_GET_BYINDEX;
    req.version = version_;
    req.set.index = index;
    socklen_t len = sizeof req;
    if (getsockopt(fd_, SOL_IP, SO_IP_SET, &req, &len) != 0) return "";
    req.set.name[IPSET_MAXNAMELEN - 1] = '\0';
    return req.set.name;
  }

 private:
  int open() {
    if (fd_ >= 0) return 0;
    fd_ = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (fd_ < 0) return errno;
    ip_set_req_version v;
    memset(&v, 0, sizeof v);
    v.op = IP_SET_OP_VERSION;
    socklen_t len = sizeof v;
    if (getsockopt(fd_, SOL_IP, SO_IP_SET, &v, &len) != 0) {
      int e = errno;
      close(fd_);
      fd_ = -1;
      return e;
    }
    version_ = v.version;
    return 0;
  }
  int fd_ = -1;
  unsigned version_ = 0;
};


// ---- chain hashes: what survey() compares -------------------------------------------

// Two 64-bit lanes over a chain's rules: each rule's entry bytes with its
// counters and comefrom (the kernel's) zeroed, a standard target's verdict
// replaced by its label (a jump's offset moves whenever anything before its
// target changes; the chain name does not). Not a cryptographic hash: it finds
// drift, it does not resist a writer crafting collisions.
struct ChainHash {
  uint64_t a = 0x9e3779b97f4a7c15ULL, b = 0xc2b2ae3d27d4eb4fULL;
  unsigned rules = 0;
  bool sets = false;
  static uint64_t mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
  }
  void word(uint64_t w) {
    a = (a ^ w) * 0x100000001b3ULL;
    a = (a << 29) | (a >> 35);
    b = (b + w) * 0x9fb21c651e98df25ULL;
    b ^= b >> 31;
  }
  void feed(const uint8_t* p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      memcpy(&w, p + i, 8);
      word(w);
    }
    uint64_t w = 0;
    memcpy(&w, p + i, n - i);
    word(w ^ (static_cast<uint64_t>(n) << 56));
  }
  std::string hex() const {
    if (sets) return "";
    char out[33];
    snprintf(out, sizeof out, "%016llx%016llx", static_cast<unsigned long long>(mix(a ^ rules)),
             static_cast<unsigned long long>(mix(b + rules)));
    return out;
  }
};

// Hashes one rule (entry `p`, `label`: the standard target's label, or null).
void hashRule(ChainHash& h, const EntryLayout& L, const uint8_t* p, const char* label, std::vector<uint8_t>& scratch) {
  uint16_t next = u16at(p + L.nextOffset), toff = u16at(p + L.targetOffset);
  scratch.assign(p, p + next);
  memset(scratch.data() + L.counters, 0, sizeof(xt_counters));
  memset(scratch.data() + L.comefrom, 0, sizeof(unsigned int));
  if (label && toff + sizeof(xt_standard_target) <= next)
    memset(scratch.data() + toff + offsetof(xt_standard_target, verdict), 0, sizeof(int));
  // The kernel writes a match's or target's name up to its NUL only: the bytes
  // after it are whatever the reader's buffer held.
  auto clearName = [&](size_t at) {
    char* name = reinterpret_cast<char*>(scratch.data() + at);
    size_t n = strnlen(name, XT_EXTENSION_MAXNAMELEN);
    memset(name + n, 0, XT_EXTENSION_MAXNAMELEN - n);
  };
  for (size_t m = L.elems; m + sizeof(xt_entry_match) <= toff;) {
    const auto* mt = reinterpret_cast<const xt_entry_match*>(p + m);
    if (mt->u.match_size < sizeof(xt_entry_match)) break;
    if (strcmp(mt->u.user.name, "set") == 0) h.sets = true;
    clearName(m + offsetof(xt_entry_match, u.user.name));
    m += mt->u.match_size;
  }
  if (toff + sizeof(xt_entry_target) <= next) clearName(toff + offsetof(xt_entry_target, u.user.name));
  h.feed(scratch.data(), next);
  if (label) h.feed(reinterpret_cast<const uint8_t*>(label), strlen(label) + 1);
  h.rules++;
}

// The table as the kernel holds it now, hashed chain by chain without libiptc:
// one IPT_SO_GET_ENTRIES into a buffer freed before returning. 0 or an errno.
int kernelHashes(int family, const std::string& table, std::map<std::string, std::string>* out) {
  EntryLayout L = entryLayout(family);
  int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  if (fd < 0) return errno;
  int level = family == 6 ? IPPROTO_IPV6 : IPPROTO_IP;
  int rc = EAGAIN;
  for (int attempt = 0; attempt < 5 && rc == EAGAIN; attempt++) {
    ipt_getinfo info;  // ip6t_getinfo has the same layout
    memset(&info, 0, sizeof info);
    strncpy(info.name, table.c_str(), sizeof info.name - 1);
    socklen_t ilen = sizeof info;
    if (getsockopt(fd, level, family == 6 ? IP6T_SO_GET_INFO : IPT_SO_GET_INFO, &info, &ilen) < 0) {
      rc = errno;
      break;
    }
    static_assert(sizeof(ipt_get_entries) == sizeof(ip6t_get_entries), "get_entries layouts");
    socklen_t len = sizeof(ipt_get_entries) + info.size;
    std::unique_ptr<uint8_t[]> buf(new (std::nothrow) uint8_t[len]);
    if (!buf) {
      rc = ENOMEM;
      break;
    }
    auto* ge = reinterpret_cast<ipt_get_entries*>(buf.get());
    memset(ge, 0, sizeof *ge);
    strncpy(ge->name, table.c_str(), sizeof ge->name - 1);
    ge->size = info.size;
    if (getsockopt(fd, level, family == 6 ? IP6T_SO_GET_ENTRIES : IPT_SO_GET_ENTRIES, ge, &len) < 0) {
      rc = errno;  // EAGAIN: the table changed size between the two reads
      continue;
    }
    const uint8_t* base = buf.get() + sizeof(ipt_get_entries);
    const uint8_t* end = base + info.size;
    // Where jumps land: the first entry after a user chain's head; built-in chains by hook.
    std::map<unsigned, std::string> starts;
    std::map<unsigned, std::string> hooks;
    static const char* hookNames[] = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"};
    for (int hk = 0; hk < 5; hk++)
      if (info.valid_hooks & (1u << hk)) hooks[info.hook_entry[hk]] = hookNames[hk];
    for (const uint8_t* p = base; p < end;) {
      uint16_t next = u16at(p + L.nextOffset), toff = u16at(p + L.targetOffset);
      if (next == 0 || p + next > end) break;
      const auto* t = reinterpret_cast<const xt_entry_target*>(p + toff);
      if (strcmp(t->u.user.name, "ERROR") == 0 && p + next < end)
        starts[static_cast<unsigned>(p + next - base)] = reinterpret_cast<const char*>(t->data);
      p += next;
    }
    std::set<unsigned> underflows;
    for (int hk = 0; hk < 5; hk++)
      if (info.valid_hooks & (1u << hk)) underflows.insert(info.underflow[hk]);
    std::vector<uint8_t> scratch;
    ChainHash* cur = nullptr;
    std::map<std::string, ChainHash> chains;
    for (const uint8_t* p = base; p < end;) {
      unsigned off = static_cast<unsigned>(p - base);
      uint16_t next = u16at(p + L.nextOffset), toff = u16at(p + L.targetOffset);
      if (next == 0 || p + next > end) break;
      const auto* t = reinterpret_cast<const xt_entry_target*>(p + toff);
      auto hk = hooks.find(off);
      if (hk != hooks.end()) cur = &chains[hk->second];
      if (strcmp(t->u.user.name, "ERROR") == 0) {  // a user chain's head, or the table's end
        auto st = starts.find(off + next);
        cur = st == starts.end() ? nullptr : &chains[st->second];
        p += next;
        continue;
      }
      bool standard = t->u.user.name[0] == '\0';
      bool foot = underflows.count(off) > 0;  // a built-in chain's policy
      if (!foot && standard && cur) {         // a user chain's foot: RETURN before the next head
        const uint8_t* q = p + next;
        if (q < end) {
          const auto* nt = reinterpret_cast<const xt_entry_target*>(q + u16at(q + L.targetOffset));
          if (strcmp(nt->u.user.name, "ERROR") == 0 && hooks.find(off) == hooks.end()) {
            int v;
            memcpy(&v, p + toff + offsetof(xt_standard_target, verdict), sizeof v);
            foot = v == XT_RETURN;
          }
        }
      }
      if (foot) {
        cur = nullptr;
      } else if (cur) {
        const char* label = nullptr;
        std::string jump;
        if (standard) {
          int v;
          memcpy(&v, p + toff + offsetof(xt_standard_target, verdict), sizeof v);
          if (v < 0) {
            label = v == -NF_ACCEPT - 1 ? "ACCEPT" : v == -NF_DROP - 1 ? "DROP" : v == -NF_QUEUE - 1 ? "QUEUE" : v == XT_RETURN ? "RETURN" : "?";
          } else if (static_cast<unsigned>(v) == off + next) {
            label = "";
          } else {
            auto st = starts.find(static_cast<unsigned>(v));
            jump = st == starts.end() ? "?" + std::to_string(v) : st->second;
            label = jump.c_str();
          }
        }
        hashRule(*cur, L, p, label, scratch);
      }
      p += next;
    }
    for (auto& [name, h] : chains) (*out)[name] = h.hex();
    rc = 0;
  }
  close(fd);
  return rc;
}

// One hash of every chain's name and hash (in name order): equal tables, equal digests.
std::string tableDigest(const std::map<std::string, std::string>& chains) {
  ChainHash h;
  for (auto& [name, hash] : chains) {
    h.feed(reinterpret_cast<const uint8_t*>(name.c_str()), name.size() + 1);
    h.feed(reinterpret_cast<const uint8_t*>(hash.c_str()), hash.size() + 1);
  }
  return h.hex() + std::to_string(chains.size());
}

// The same hashes of a libiptc snapshot.
void handleHashes(const Api* api, xtc_handle* h, std::map<std::string, std::string>* out) {
  EntryLayout L = entryLayout(api->family);
  std::vector<uint8_t> scratch;
  for (const char* c = api->firstChain(h); c; c = api->nextChain(h)) {
    ChainHash ch;
    for (const void* e = api->firstRule(c, h); e; e = api->nextRule(e, h)) {
      auto p = static_cast<const uint8_t*>(e);
      const auto* t = reinterpret_cast<const xt_entry_target*>(p + u16at(p + L.targetOffset));
      const char* label = nullptr;
      if (t->u.user.name[0] == '\0') {
        label = api->getTarget(e, h);
        if (!label) label = "?";
      }
      hashRule(ch, L, p, label, scratch);
    }
    (*out)[c] = ch.hex();
  }
}

}  // namespace

// ---- Tx ----------------------------------------------------------------------------

Tx::Tx(const Api* api, std::string table, Options opts) : api_(api), table_(std::move(table)), opts_(opts) {}

Tx::~Tx() {
  if (!h_) return;
  std::lock_guard<std::mutex> g(orphansMu);
  orphans.emplace_back(api_, h_);
  h_ = nullptr;
}

void Tx::release() {
  if (!h_) return;
  LibraryLock g(api_->family);
  TableState& st = state(api_->family, table_);
  // A snapshot nobody edited goes back to the cache: the next reader may use it.
  if (log_.empty() && !spent_ && opts_.reuseSnapshots && !st.cached.h) {
    st.cached.h = h_;
    st.cached.generation = loadedGeneration_;
    st.cached.epoch = loadedEpoch_;
    st.cached.info = loadedInfo_;
    st.cached.digest = loadedDigest_;
  } else {
    api_->free(h_);
    trimHeap();
  }
  h_ = nullptr;
  spent_ = true;
}

bool Tx::ensureLoaded(bool underLock, bool* reused, OpError* err) {
  if (h_) return true;
  TableState& st = state(api_->family, table_);
  if (st.cached.h) {
    if (opts_.reuseSnapshots && fresh(api_->family, table_, st, st.cached)) {
      h_ = st.cached.h;
      loadedGeneration_ = st.cached.generation;
      loadedEpoch_ = st.cached.epoch;
      loadedInfo_ = std::move(st.cached.info);
      loadedDigest_ = std::move(st.cached.digest);
      st.cached = Snapshot{};
      *reused = true;
      return true;
    }
    api_->free(st.cached.h);
    st.cached = Snapshot{};
  }
  Snapshot meta;
  int e = 0;
  h_ = loadSnapshot(api_, table_, st, &meta, &e);
  if (!h_) {
    err->err = e;
    err->kind = kLoad;
    return false;
  }
  loadedGeneration_ = meta.generation;
  loadedEpoch_ = meta.epoch;
  loadedInfo_ = std::move(meta.info);
  loadedDigest_.clear();
  (void)underLock;
  return true;
}

bool Tx::applyOne(const uint8_t* rec, OpError* err) {
  OpHeader hd;
  memcpy(&hd, rec, sizeof hd);
  err->index = hd.index;
  err->kind = hd.kind;
  Label chain, arg;
  memcpy(chain.s, hd.chain, sizeof chain.s - 1);
  err->chain = chain.s;
  memcpy(arg.s, hd.arg, sizeof arg.s - 1);
  const uint8_t* entry = rec + sizeof hd;
  const uint8_t* mask = entry + hd.entryLen;
  if (hd.nsets) {
    // Resolve set names into a copy of the entry: the caller's bytes stay as sent.
    scratch_.assign(entry, entry + hd.entryLen);
    auto fix = reinterpret_cast<const SetFixup*>(mask + hd.maskLen);
    IpsetLookup sets;
    for (uint16_t i = 0; i < hd.nsets; i++) {
      char name[33] = {};
      memcpy(name, fix[i].name, 32);
      uint16_t index = 0;
      int e = sets.index(name, api_->family, &index);
      if (e) {
        err->err = e;
        err->detail = std::string("set ") + name;
        return false;
      }
      if (fix[i].offset + 2 > hd.entryLen) {
        err->err = EINVAL;
        return false;
      }
      memcpy(scratch_.data() + fix[i].offset, &index, 2);
    }
    entry = scratch_.data();
  }
  errno = 0;
  int ok = 0;
  switch (hd.kind) {
    case kCreateChain: ok = api_->createChain(chain.s, h_); break;
    case kDeleteChain: ok = api_->deleteChain(chain.s, h_); break;
    case kFlushChain: ok = api_->flushEntries(chain.s, h_); break;
    case kRenameChain: ok = api_->renameChain(chain.s, arg.s, h_); break;
    case kSetPolicy: ok = api_->setPolicy(chain.s, arg.s, nullptr, h_); break;
    case kZeroChain: ok = api_->zeroEntries(chain.s, h_); break;
    case kAppend: ok = api_->appendEntry(chain.s, entry, h_); break;
    case kInsert: ok = api_->insertEntry(chain.s, entry, hd.rulenum, h_); break;
    case kReplace: ok = api_->replaceEntry(chain.s, entry, hd.rulenum, h_); break;
    case kDeleteNum: ok = api_->deleteNumEntry(chain.s, hd.rulenum, h_); break;
    case kDeleteSpec: {
      std::vector<uint8_t> m(mask, mask + hd.maskLen);  // libiptc wants it writable
      ok = api_->deleteEntry(chain.s, entry, m.data(), h_);
      break;
    }
    default: errno = EINVAL; break;
  }
  if (!ok) {
    err->err = errno ? errno : EINVAL;
    return false;
  }
  return true;
}

bool Tx::applyAll(const uint8_t* ops, size_t len, OpError* err) {
  size_t off = 0;
  while (off + sizeof(OpHeader) <= len) {
    uint32_t reclen;
    memcpy(&reclen, ops + off, 4);
    if (reclen < sizeof(OpHeader) || off + reclen > len) {
      err->err = EINVAL;
      err->detail = "malformed operation record";
      return false;
    }
    if (!applyOne(ops + off, err)) return false;
    off += reclen;
  }
  return true;
}

bool Tx::apply(const Spans& ops, OpError* err) {
  LibraryLock g(api_->family);
  if (spent_) {
    err->err = EBADF;
    err->detail = "the transaction has ended";
    return false;
  }
  bool reused = false;
  bool ok = ensureLoaded(false, &reused, err);
  for (size_t i = 0; ok && i < ops.size(); i++) ok = applyAll(ops[i].first, ops[i].second, err);
  if (!ok) {
    spent_ = true;
    if (h_) api_->free(h_);
    h_ = nullptr;
    return false;
  }
  log_.insert(log_.end(), ops.begin(), ops.end());
  return true;
}

bool Tx::dump(const char* chain, bool rules, Dump* out, OpError* err, const std::vector<std::string>* only) {
  LibraryLock g(api_->family);
  if (spent_) {
    err->err = EBADF;
    err->detail = "the transaction has ended";
    return false;
  }
  bool reused = false;
  if (!ensureLoaded(false, &reused, err)) {
    spent_ = true;
    return false;
  }
  EntryLayout L = entryLayout(api_->family);
  IpsetLookup sets;
  bool found = false;
  std::set<std::string> wanted;
  if (only) wanted.insert(only->begin(), only->end());
  for (const char* c = api_->firstChain(h_); c; c = api_->nextChain(h_)) {
    if (chain && strcmp(c, chain) != 0) continue;
    if (only && !wanted.count(c)) continue;
    found = true;
    ChainInfo ci;
    ci.name = c;
    ci.builtin = api_->builtin(c, h_) != 0;
    if (ci.builtin) {
      xt_counters cnt{};
      const char* pol = api_->getPolicy(c, &cnt, h_);
      if (pol) ci.policy = pol;
      ci.packets = cnt.pcnt;
      ci.bytes = cnt.bcnt;
    }
    unsigned refs = 0;
    if (api_->getReferences(&refs, c, h_)) ci.references = refs;
    for (const void* e = api_->firstRule(c, h_); e; e = api_->nextRule(e, h_)) {
      ci.rules++;
      if (!rules) continue;
      auto p = static_cast<const uint8_t*>(e);
      uint16_t next = u16at(p + L.nextOffset), toff = u16at(p + L.targetOffset);
      RuleHeader rh;
      memset(&rh, 0, sizeof rh);
      rh.length = static_cast<uint32_t>(sizeof rh + ((next + 7u) & ~7u));
      const auto* t = reinterpret_cast<const xt_entry_target*>(p + toff);
      if (t->u.user.name[0] == '\0') {  // XT_STANDARD_TARGET
        rh.standard = 1;
        const char* label = api_->getTarget(e, h_);
        if (label) strncpy(rh.label, label, sizeof rh.label - 1);
      }
      size_t at = out->rules.size();
      out->rules.resize(at + rh.length, 0);
      memcpy(out->rules.data() + at, &rh, sizeof rh);
      memcpy(out->rules.data() + at + sizeof rh, p, next);
      // Set matches hold an index; say which set it is.
      for (size_t m = L.elems; m + sizeof(xt_entry_match) <= toff;) {
        const auto* mt = reinterpret_cast<const xt_entry_match*>(p + m);
        if (mt->u.match_size < sizeof(xt_entry_match)) break;
        if (strcmp(mt->u.user.name, "set") == 0 && mt->u.match_size >= sizeof(xt_entry_match) + 2) {
          uint16_t index = u16at(p + m + sizeof(xt_entry_match));
          if (!out->sets.count(index)) out->sets[index] = sets.name(index);
        }
        m += mt->u.match_size;
      }
    }
    out->chains.push_back(std::move(ci));
  }
  if (chain && !found) {
    err->kind = kRead;
    err->err = ENOENT;
    err->detail = std::string("no chain ") + chain;
    return false;
  }
  return true;
}

bool Tx::survey(Dump* out, OpError* err) {
  LibraryLock g(api_->family);
  if (spent_) {
    err->err = EBADF;
    err->detail = "the transaction has ended";
    return false;
  }
  std::map<std::string, std::string> kernel, mine;
  int e = kernelHashes(api_->family, table_, &kernel);
  if (e) {
    err->kind = kLoad;
    err->err = e;
    return false;
  }
  bool reused = false;
  std::string want = tableDigest(kernel);
  const std::map<std::string, std::string>* result = &kernel;
  for (int attempt = 0;; attempt++) {
    if (!ensureLoaded(false, &reused, err)) {
      spent_ = true;
      return false;
    }
    // The snapshot's digest is kept with it while it is cached unedited: a
    // survey that finds nothing changed hashes the kernel's table only.
    if (loadedDigest_.empty() || !log_.empty()) {
      mine.clear();
      handleHashes(api_, h_, &mine);
      std::string d = tableDigest(mine);
      if (!log_.empty()) {
        result = &mine;  // the transaction's edits are in it: say what it holds
        break;
      }
      loadedDigest_ = d;
    }
    // Equal: the snapshot is the table as it was read just now. Else it is
    // older than a write (one that kept the summary and skipped the lock, or
    // made after our read of the kernel): read it again, once; a table still
    // changing is then judged as that fresh read has it.
    if (loadedDigest_ == want) break;
    if (attempt > 0) {
      result = &mine;
      break;
    }
    api_->free(h_);
    h_ = nullptr;
    out->reread = true;
    TableState& st = state(api_->family, table_);
    if (st.cached.h) {
      api_->free(st.cached.h);
      st.cached = Snapshot{};
    }
  }
  for (const char* c = api_->firstChain(h_); c; c = api_->nextChain(h_)) {
    ChainInfo ci;
    ci.name = c;
    ci.builtin = api_->builtin(c, h_) != 0;
    auto it = result->find(c);
    if (it != result->end()) ci.hash = it->second;
    out->chains.push_back(std::move(ci));
  }
  kernel.clear();
  mine.clear();
  trimHeap();  // the maps' blocks, on this pool thread's arena
  return true;
}

bool Tx::commit(const Spans& ops, CommitInfo* info, OpError* err) {
  auto t0 = Clock::now();
  LibraryLock g(api_->family);
  err->kind = kCommit;
  if (spent_) {
    err->err = EBADF;
    err->detail = "the transaction has ended";
    return false;
  }
  TableState& st = state(api_->family, table_);
  int e = XtLock::get().acquire(opts_.lockTimeoutMs);
  if (e) {
    err->err = e;
    err->detail = "the xtables lock (" + XtLock::get().path() + ")";
    spent_ = true;
    if (h_) api_->free(h_);
    h_ = nullptr;
    return false;
  }
  info->lockMs = msSince(t0);
  log_.insert(log_.end(), ops.begin(), ops.end());

  auto fail = [&](bool keepKind) {
    if (!keepKind) err->kind = kCommit;
    spent_ = true;
    if (h_) api_->free(h_);
    h_ = nullptr;
    XtLock::get().release();
    return false;
  };

  // Read under the lock, or check that what we read is still what the kernel holds.
  auto t1 = Clock::now();
  bool stale = false;
  if (h_ && !fresh(api_->family, table_, st, loadedGeneration_, loadedEpoch_, loadedInfo_)) {
    stale = true;
    api_->free(h_);
    h_ = nullptr;
  }
  for (int attempt = 0;; attempt++) {
    bool fromLog = h_ == nullptr;
    if (fromLog) {
      bool reused = false;
      if (!ensureLoaded(true, &reused, err)) return fail(true);
      info->snapshotReused = reused;
      info->loadMs += msSince(t1);
      auto t2 = Clock::now();
      for (auto& [p, n] : log_)
        if (!applyAll(p, n, err)) return fail(true);
      info->applyMs += msSince(t2);
      if (stale || attempt > 0) info->replayed = true;
    } else {
      auto t2 = Clock::now();
      for (auto& [p, n] : ops)
        if (!applyAll(p, n, err)) return fail(true);
      info->applyMs += msSince(t2);
    }
    auto t3 = Clock::now();
    errno = 0;
    int ok = api_->commit(h_);
    info->commitMs += msSince(t3);
    if (ok) break;
    int ce = errno ? errno : EINVAL;
    // EAGAIN: the entry count changed between our read and our replace (a
    // writer that does not take the lock). Read again and re-apply, once.
    if (ce == EAGAIN && attempt == 0) {
      api_->free(h_);
      h_ = nullptr;
      t1 = Clock::now();
      continue;
    }
    err->err = ce;
    err->index = 0;
    return fail(false);
  }
  st.generation++;
  TableInfo ti;
  if (tableInfo(api_->family, table_, &ti) == 0) {
    info->entries = ti.entries;
    info->bytes = ti.size;
  }
  XtLock::get().release();
  spent_ = true;
  // The handle is spent (libiptc cannot commit it twice); free it later, off
  // the caller's path, unless nothing will come by to do so.
  if (opts_.reuseSnapshots)
    st.garbage.push_back(h_);
  else {
    api_->free(h_);
    trimHeap();
  }
  h_ = nullptr;
  return true;
}

// ---- snapshots ahead of need --------------------------------------------------------

void prefetch(const Api* api, const std::string& table) {
  LibraryLock g(api->family);
  TableState& st = state(api->family, table);
  freeGarbage(api, st);
  if (st.cached.h && fresh(api->family, table, st, st.cached)) return;
  if (st.cached.h) api->free(st.cached.h);
  st.cached = Snapshot{};
  int e = 0;
  Snapshot meta;
  xtc_handle* h = loadSnapshot(api, table, st, &meta, &e);
  if (!h) return;
  meta.h = h;
  st.cached = std::move(meta);
}

void dropSnapshot(const Api* api, const std::string& table) {
  LibraryLock g(api->family);
  TableState& st = state(api->family, table);
  freeGarbage(api, st);
  if (st.cached.h) api->free(st.cached.h);
  st.cached = Snapshot{};
  trimHeap();
}

int tableInfo(int family, const std::string& table, TableInfo* out) {
  int err = 0;
  std::vector<uint8_t> b = infoBytes(family, table, &err);
  if (err) return err;
  ipt_getinfo info;
  memcpy(reinterpret_cast<uint8_t*>(&info) + sizeof info.name, b.data(), b.size());
  out->validHooks = info.valid_hooks;
  for (int i = 0; i < 5; i++) {
    out->hookEntry[i] = info.hook_entry[i];
    out->underflow[i] = info.underflow[i];
  }
  out->entries = info.num_entries;
  out->size = info.size;
  return 0;
}

std::map<std::string, size_t> layout() {
  std::map<std::string, size_t> m;
#define SIZE(T) m["sizeof " #T] = sizeof(T)
#define OFF(T, f) m["offsetof " #T "." #f] = offsetof(T, f)
  SIZE(ipt_entry);
  OFF(ipt_entry, ip.src);
  OFF(ipt_entry, ip.dst);
  OFF(ipt_entry, ip.smsk);
  OFF(ipt_entry, ip.dmsk);
  OFF(ipt_entry, ip.iniface);
  OFF(ipt_entry, ip.outiface);
  OFF(ipt_entry, ip.iniface_mask);
  OFF(ipt_entry, ip.outiface_mask);
  OFF(ipt_entry, ip.proto);
  OFF(ipt_entry, ip.flags);
  OFF(ipt_entry, ip.invflags);
  OFF(ipt_entry, nfcache);
  OFF(ipt_entry, target_offset);
  OFF(ipt_entry, next_offset);
  OFF(ipt_entry, comefrom);
  OFF(ipt_entry, counters);
  SIZE(ip6t_entry);
  OFF(ip6t_entry, ipv6.src);
  OFF(ip6t_entry, ipv6.dst);
  OFF(ip6t_entry, ipv6.smsk);
  OFF(ip6t_entry, ipv6.dmsk);
  OFF(ip6t_entry, ipv6.iniface);
  OFF(ip6t_entry, ipv6.outiface);
  OFF(ip6t_entry, ipv6.iniface_mask);
  OFF(ip6t_entry, ipv6.outiface_mask);
  OFF(ip6t_entry, ipv6.proto);
  OFF(ip6t_entry, ipv6.tos);
  OFF(ip6t_entry, ipv6.flags);
  OFF(ip6t_entry, ipv6.invflags);
  OFF(ip6t_entry, nfcache);
  OFF(ip6t_entry, target_offset);
  OFF(ip6t_entry, next_offset);
  OFF(ip6t_entry, comefrom);
  OFF(ip6t_entry, counters);
  SIZE(xt_entry_match);
  SIZE(xt_entry_target);
  SIZE(xt_standard_target);
  SIZE(xt_comment_info);
  SIZE(xt_tcp);
  SIZE(xt_udp);
  SIZE(xt_sctp_info);
  OFF(xt_sctp_info, dpts);
  OFF(xt_sctp_info, spts);
  OFF(xt_sctp_info, chunkmap);
  OFF(xt_sctp_info, chunk_match_type);
  OFF(xt_sctp_info, flag_info);
  OFF(xt_sctp_info, flag_count);
  OFF(xt_sctp_info, flags);
  OFF(xt_sctp_info, invflags);
  SIZE(xt_multiport_v1);
  OFF(xt_multiport_v1, ports);
  OFF(xt_multiport_v1, pflags);
  OFF(xt_multiport_v1, invert);
  SIZE(xt_statistic_info);
  OFF(xt_statistic_info, u.nth.count);
  OFF(xt_statistic_info, master);
  SIZE(xt_set_info_match_v4);
  OFF(xt_set_info_match_v4, packets);
  OFF(xt_set_info_match_v4, bytes);
  OFF(xt_set_info_match_v4, flags);
  SIZE(xt_mark_mtinfo1);
  SIZE(xt_addrtype_info_v1);
  SIZE(xt_conntrack_mtinfo3);
  OFF(xt_conntrack_mtinfo3, expires_min);
  OFF(xt_conntrack_mtinfo3, l4proto);
  OFF(xt_conntrack_mtinfo3, match_flags);
  OFF(xt_conntrack_mtinfo3, state_mask);
  OFF(xt_conntrack_mtinfo3, origsrc_port_high);
  SIZE(xt_recent_mtinfo_v1);
  OFF(xt_recent_mtinfo_v1, name);
  OFF(xt_recent_mtinfo_v1, side);
  OFF(xt_recent_mtinfo_v1, mask);
  SIZE(xt_physdev_info);
  OFF(xt_physdev_info, in_mask);
  OFF(xt_physdev_info, bitmask);
  SIZE(xt_mark_tginfo2);
  SIZE(nf_nat_ipv4_multi_range_compat);
  SIZE(nf_nat_range);
  SIZE(nf_nat_range2);
  OFF(nf_nat_range2, base_proto);
  SIZE(ipt_reject_info);
  SIZE(ip6t_reject_info);
  SIZE(xt_log_info);
  SIZE(OpHeader);
  SIZE(SetFixup);
  SIZE(RuleHeader);
#undef SIZE
#undef OFF
  return m;
}

}  // namespace iptc
