// The one netlink socket and receive loop of tsproxy. A batch of requests goes
// out in as few sendmsg calls as the socket buffers allow; every ACK, error and
// multipart reply is matched back to its request by sequence number.
#pragma once

#include <cstddef>
#include <cstdint>
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

namespace nl {

// A system call failed: keeps errno and the call's name.
struct SysError {
  int err;
  const char* call;
};

// One request inside a batch buffer.
struct Request {
  size_t offset = 0;
  size_t length = 0;
  bool dump = false;  // NLM_F_DUMP: ends with NLMSG_DONE, not with an ACK
  // Part of an nfnetlink batch (NFNL_MSG_BATCH_BEGIN .. END): a run of atomic
  // requests reaches the kernel in one sendmsg, never split, and only its
  // failures are answered. The request after the run (the family sends one
  // that is answered, as nf_tables' GETGEN) goes in a sendmsg of its own: its
  // answer says the kernel is done with the batch.
  bool atomic = false;
};

// The outcome of one request.
struct Result {
  int error = 0;            // 0, or a positive errno from the kernel / the socket
  std::string extack;       // the kernel's extended ACK message, if any
  uint32_t extackOffset = 0;  // NLMSGERR_ATTR_OFFS: byte offset of the bad attribute
  std::vector<uint8_t> replies;  // the data messages answering it, back to back
  // The request as the kernel echoed it in an error, when it echoed more than
  // the header (not NLM_F_CAPPED): families that rewrite their request in the
  // error (ipset: the failing line of a batch) are read from here.
  std::vector<uint8_t> echo;
  int attempts = 0;
  bool interrupted = false;  // a dump saw NLM_F_DUMP_INTR (retried; set if it stayed so)
};

// Matches the replies of one in-flight chunk to its requests. Pure logic over
// bytes, so the tests drive it with recorded datagrams and no kernel.
class Collector {
 public:
  enum class Retry { None, Busy, Interrupted };

  // `ackSlot`: the one request of the chunk that asked for an ACK, when the
  // others did not (see Socket::runChunk); its ACK then also completes every
  // earlier non-dump request that got no error. SIZE_MAX: each asked for its own.
  Collector(uint32_t portId, uint32_t firstSeq, std::vector<size_t> slots,
            const std::vector<Request>& reqs, std::vector<Result>& results, size_t ackSlot = SIZE_MAX);
  // Consumes one received datagram.
  void feed(const uint8_t* data, size_t len);
  // Every request of the chunk has its final answer (or a retry verdict).
  bool complete() const { return pending_ == 0; }
  // Fails every request still waiting (socket error, timeout).
  void failPending(int err);
  // Fails the requests from `firstSlot` on that have no answer (a send failed).
  void failFrom(size_t firstSlot, int err);
  // Requests that must be sent again, and why.
  const std::vector<std::pair<size_t, Retry>>& retries() const { return retries_; }

 private:
  void finish(size_t slot);
  uint32_t port_;
  uint32_t first_;
  std::vector<size_t> slots_;  // slot (seq - first) -> request index
  std::vector<char> done_;
  std::vector<char> intr_;
  size_t pending_;
  const std::vector<Request>& reqs_;
  std::vector<Result>& results_;
  std::vector<std::pair<size_t, Retry>> retries_;
  size_t ackSlot_;
};

class Socket {
 public:
  // Opens and binds a netlink socket of `protocol` (NETLINK_GENERIC, ...).
  explicit Socket(int protocol);
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  void close();
  bool closed() const { return fd_ < 0; }
  uint32_t portId() const { return port_; }

  // Sends every request of `buf` and collects one result per request. Runs on a
  // worker thread: blocks on the kernel, never touches JavaScript. Sequence
  // numbers in `buf` are rewritten here.
  void transact(std::vector<uint8_t>& buf, const std::vector<Request>& reqs,
                std::vector<Result>& results);

 private:
  // Returns 0, or the errno of a receive failure after which the socket's
  // replies can no longer be trusted to arrive.
  int runChunk(std::vector<uint8_t>& buf, const std::vector<size_t>& chunk,
               const std::vector<Request>& reqs, std::vector<Result>& results,
               std::vector<std::pair<size_t, Collector::Retry>>& retries);

  int fd_ = -1;
  uint32_t port_ = 0;
  uint32_t seq_ = 0;
  size_t maxChunkBytes_ = 0;
  size_t maxChunkMsgs_ = 0;
  size_t sndBuf_ = 0;
  std::vector<uint8_t> rx_;
};

}  // namespace nl
