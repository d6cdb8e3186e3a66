// One x_tables table (nat, filter, mangle, raw of IPv4 or IPv6) as a
// transaction over libiptc: a snapshot of the whole table, edits applied to it,
// one atomic replace on commit. Plain C++ that runs on libuv's thread pool;
// binding.cc is the JavaScript face. Rules arrive as entries already laid out
// by lib/iptables (struct ipt_entry / ip6t_entry with their matches and target).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "libiptc.h"

namespace iptc {

// ---- what lib/iptables sends: a buffer of operation records, 8-byte aligned ----

enum OpKind : uint16_t {
  kCreateChain = 1,
  kDeleteChain = 2,
  kFlushChain = 3,
  kRenameChain = 4,  // chain -> arg
  kSetPolicy = 5,    // arg: ACCEPT or DROP
  kZeroChain = 6,    // zero the counters of chain's rules
  kAppend = 7,
  kInsert = 8,       // at rulenum (0-based)
  kReplace = 9,      // at rulenum
  kDeleteNum = 10,   // at rulenum
  kDeleteSpec = 11,  // the first rule equal to the entry under the mask
};

struct OpHeader {
  uint32_t length;    // of the whole record, a multiple of 8
  uint16_t kind;      // OpKind
  uint16_t nsets;     // SetFixup records after the entry (and mask)
  uint32_t index;     // the operation's position in its transaction, for errors
  uint32_t rulenum;
  char chain[32];
  char arg[32];
  uint32_t entryLen;  // entry bytes after this header
  uint32_t maskLen;   // mask bytes after the entry (kDeleteSpec), same length
};
static_assert(sizeof(OpHeader) == 88, "OpHeader is shared with lib/iptables/wire.ts");

// The kernel refers to ipsets by index; rules name them. Before an entry is
// applied, the index of set `name` is written as a u16 at `offset` in the entry.
struct SetFixup {
  uint32_t offset;
  char name[32];
  uint32_t pad;
};
static_assert(sizeof(SetFixup) == 40, "SetFixup is shared with lib/iptables/wire.ts");

// ---- what a dump returns -------------------------------------------------------

// Each rule: this header, then the entry as libiptc holds it. For a standard
// target (verdict, jump, goto, none) `label` is libiptc's reading of it:
// ACCEPT, DROP, RETURN, QUEUE, a chain name, or "" (no target).
struct RuleHeader {
  uint32_t length;  // header + entry, a multiple of 8
  uint16_t standard;
  uint16_t reserved;
  char label[32];
};
static_assert(sizeof(RuleHeader) == 40, "RuleHeader is shared with lib/iptables/wire.ts");

struct ChainInfo {
  std::string name;
  bool builtin = false;
  std::string policy;  // builtin chains
  uint64_t packets = 0, bytes = 0;  // the policy's counters
  unsigned references = 0;
  unsigned rules = 0;
  // survey(): 32 hex digits hashing the chain's rules as the kernel holds them,
  // counters aside, jumps by name; "" for a chain with a set match (its rules
  // read back with set names, which the hash does not see).
  std::string hash;
};

struct Dump {
  std::vector<ChainInfo> chains;
  std::vector<uint8_t> rules;  // RuleHeader + entry, chain after chain
  std::map<uint16_t, std::string> sets;  // set index -> name, for the set matches seen
  bool surveyed = false;                   // chains carry their hash
  bool reread = false;                     // survey(): the snapshot differed from the kernel's table and was read again
};

// A failed operation: errno, and which operation (index and kind; or kLoad,
// kRead, kCommit).
struct OpError {
  int err = 0;
  uint32_t index = 0;
  uint16_t kind = 0;
  std::string chain;
  std::string detail;
};

// Buffers of operation records, applied in order.
using Span = std::pair<const uint8_t*, size_t>;
using Spans = std::vector<Span>;
constexpr uint16_t kLoad = 0;
constexpr uint16_t kRead = 0xfffe;  // a dump of a chain that does not exist (the transaction goes on)
constexpr uint16_t kCommit = 0xffff;

// Which other processes touched the xtables lock: changes whenever a process
// other than this one opens the lock file (iptables opens it for every command).
struct Epoch {
  uint64_t watch = 0;
  int64_t count = 0;
  bool operator==(const Epoch& o) const { return watch == o.watch && count == o.count; }
};

struct Options {
  bool reuseSnapshots = true;
  int lockTimeoutMs = 5000;
};

// What a commit did, for the caller's diagnostics and the benchmark.
struct CommitInfo {
  bool snapshotReused = false;  // the handle came from the cache, not from a fresh read
  bool replayed = false;        // the table had changed: edits re-applied to a fresh read
  double lockMs = 0, loadMs = 0, applyMs = 0, commitMs = 0;
  uint64_t entries = 0, bytes = 0;  // the table as committed (GET_INFO after)
};

// ---- the transaction -----------------------------------------------------------

class Tx {
 public:
  Tx(const Api* api, std::string table, Options opts);
  ~Tx();
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;

  // Loads the table if not yet loaded and applies `ops` (which must stay valid
  // and unchanged until the transaction ends: they are replayed if the table
  // changes under us). False with `err` on failure: the transaction is then
  // spent (nothing was committed).
  bool apply(const Spans& ops, OpError* err);
  // Chains (and, with `rules`, every rule) of the table as it is now in the
  // transaction, or of one chain. False with `err` (ENOENT: no such chain).
  // `only` (not null): the chains named there, in table order.
  bool dump(const char* chain, bool rules, Dump* out, OpError* err, const std::vector<std::string>* only = nullptr);
  // Every chain with its hash (ChainInfo::hash), no rules, read from the
  // kernel now: the table is read (IPT_SO_GET_ENTRIES) and hashed, and the
  // transaction's snapshot is used only if it hashes the same, chain by chain
  // (else it is read again). A cached snapshot cannot hide a write that kept
  // the table's size and entry count and did not open the xtables lock.
  bool survey(Dump* out, OpError* err);
  // Applies `ops`, then replaces the table in the kernel atomically, under the
  // xtables lock. If the table changed since this transaction read it, reads it
  // again and re-applies every operation first.
  bool commit(const Spans& ops, CommitInfo* info, OpError* err);
  // Ends the transaction: an unedited snapshot goes back to the cache, an
  // edited one is freed (commit does that too).
  void release();

  int family() const { return api_->family; }

 private:
  bool ensureLoaded(bool underLock, bool* reused, OpError* err);
  bool applyOne(const uint8_t* rec, OpError* err);
  bool applyAll(const uint8_t* ops, size_t len, OpError* err);

  const Api* api_;
  std::string table_;
  Options opts_;
  xtc_handle* h_ = nullptr;
  uint64_t loadedGeneration_ = 0;
  Epoch loadedEpoch_;
  std::vector<uint8_t> loadedInfo_;
  std::string loadedDigest_;  // tableDigest of the snapshot as loaded (unedited), once computed
  bool spent_ = false;
  Spans log_;  // every applied buffer, in order
  std::vector<uint8_t> scratch_;
};

// Reads the next snapshot of a table ahead of need (after a commit), off the
// critical path of the next transaction; frees handles left by commits.
void prefetch(const Api* api, const std::string& table);
// Frees the cached snapshot of a table (memory: a parsed copy of the table).
void dropSnapshot(const Api* api, const std::string& table);

// The kernel's summary of a table (IPT_SO_GET_INFO): 0 or an errno.
struct TableInfo {
  unsigned validHooks = 0, hookEntry[5] = {}, underflow[5] = {}, entries = 0, size = 0;
};
int tableInfo(int family, const std::string& table, TableInfo* out);

// Layout facts from the kernel headers, for lib/iptables to check its own against.
std::map<std::string, size_t> layout();

}  // namespace iptc
