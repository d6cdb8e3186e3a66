#include "socket.h"

#include <errno.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "message.h"

namespace nl {

namespace {

constexpr int kMaxInterruptedRetries = 8;
constexpr size_t kRxBufferBytes = 256 * 1024;
// Kernel-side cost of one queued ACK (skb truesize), used to size chunks so the
// ACKs of one chunk always fit the receive buffer: a dropped ACK would leave an
// operation's outcome unknown.
constexpr size_t kAckTruesize = 1024;
constexpr int kRecvTimeoutSeconds = 15;

// Extended ACK TLVs follow an NLMSG_ERROR / NLMSG_DONE payload when the kernel
// sets NLM_F_ACK_TLVS.
void readExtack(const uint8_t* tlv, size_t len, Result& r) {
  Attrs a(tlv, len, NLMSGERR_ATTR_MAX);
  r.extack = a.str(NLMSGERR_ATTR_MSG);
  r.extackOffset = a.u32(NLMSGERR_ATTR_OFFS);
}

// The kernel's error field: 0 or -errno (ipset's own codes go past 4095). A
// positive one cannot have come from it: a damaged message, not an errno to
// report (and -INT_MIN would overflow).
int errnoOf(int field) { return field <= 0 && field != INT_MIN ? -field : EBADMSG; }

}  // namespace

Collector::Collector(uint32_t portId, uint32_t firstSeq, std::vector<size_t> slots,
                     const std::vector<Request>& reqs, std::vector<Result>& results, size_t ackSlot)
    : port_(portId),
      first_(firstSeq),
      slots_(std::move(slots)),
      done_(slots_.size(), 0),
      intr_(slots_.size(), 0),
      pending_(slots_.size()),
      reqs_(reqs),
      results_(results),
      ackSlot_(ackSlot) {}

void Collector::finish(size_t slot) {
  done_[slot] = 1;
  pending_--;
}

void Collector::failFrom(size_t firstSlot, int err) {
  for (size_t s = firstSlot; s < slots_.size(); s++) {
    if (done_[s]) continue;
    results_[slots_[s]].error = err;
    finish(s);
  }
}

void Collector::failPending(int err) {
  for (size_t s = 0; s < slots_.size(); s++) {
    if (done_[s]) continue;
    results_[slots_[s]].error = err;
    finish(s);
  }
}

void Collector::feed(const uint8_t* data, size_t len) {
  while (len >= NLMSG_HDRLEN) {
    auto h = reinterpret_cast<const nlmsghdr*>(data);
    if (h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > len) return;  // truncated: ignore the rest
    size_t step = std::min<size_t>(NLMSG_ALIGN(h->nlmsg_len), len);
    data += step;
    len -= step;

    // Not ours (another port, a stale sequence from an abandoned chunk) or already answered.
    if (port_ != 0 && h->nlmsg_pid != port_) continue;
    uint32_t slot = h->nlmsg_seq - first_;
    if (slot >= slots_.size() || done_[slot]) continue;
    size_t index = slots_[slot];
    const Request& req = reqs_[index];
    Result& r = results_[index];
    auto body = reinterpret_cast<const uint8_t*>(h) + NLMSG_HDRLEN;
    size_t bodyLen = h->nlmsg_len - NLMSG_HDRLEN;

    if (h->nlmsg_flags & NLM_F_DUMP_INTR) intr_[slot] = 1;

    if (h->nlmsg_type == NLMSG_ERROR) {
      if (bodyLen < sizeof(nlmsgerr)) {
        r.error = EBADMSG;
        finish(slot);
        continue;
      }
      auto e = reinterpret_cast<const nlmsgerr*>(body);
      int err = errnoOf(e->error);
      if (req.dump && err == EBUSY) {
        // Another dump of ours was still running when this one arrived in the
        // same burst; it is sent again on its own.
        retries_.emplace_back(index, Retry::Busy);
        r.replies.clear();
        finish(slot);
        continue;
      }
      r.error = err;
      if (err != 0 && !(h->nlmsg_flags & NLM_F_CAPPED) && e->msg.nlmsg_len > NLMSG_HDRLEN &&
          sizeof(int) + e->msg.nlmsg_len <= bodyLen) {
        auto echoed = reinterpret_cast<const uint8_t*>(&e->msg);
        r.echo.assign(echoed, echoed + e->msg.nlmsg_len);
      }
      if (h->nlmsg_flags & NLM_F_ACK_TLVS) {
        // With NLM_F_CAPPED only the original header is echoed, else the whole request.
        size_t echoed = (h->nlmsg_flags & NLM_F_CAPPED) ? NLMSG_HDRLEN : NLMSG_ALIGN(e->msg.nlmsg_len);
        size_t tlvOff = sizeof(int) + echoed;
        if (tlvOff < bodyLen) readExtack(body + tlvOff, bodyLen - tlvOff, r);
      }
      finish(slot);
      if (slot == ackSlot_) {
        // The kernel handles a burst's requests in order, inside sendmsg, and
        // answers every failure: a request before the ACKed one that has no
        // error by now has succeeded.
        for (size_t s = 0; s < slot; s++)
          if (!done_[s] && !reqs_[slots_[s]].dump) finish(s);
      }
      continue;
    }

    if (h->nlmsg_type == NLMSG_DONE) {
      if (!req.dump) continue;  // only dumps end this way
      int raw = 0;
      if (bodyLen >= sizeof(int)) std::memcpy(&raw, body, sizeof(int));
      if (intr_[slot]) {
        retries_.emplace_back(index, Retry::Interrupted);
        r.replies.clear();
        finish(slot);
        continue;
      }
      r.error = errnoOf(raw);
      if ((h->nlmsg_flags & NLM_F_ACK_TLVS) && bodyLen > sizeof(int))
        readExtack(body + sizeof(int), bodyLen - sizeof(int), r);
      finish(slot);
      continue;
    }

    if (h->nlmsg_type == NLMSG_NOOP || h->nlmsg_type == NLMSG_OVERRUN) continue;

    // A data message: keep it whole (header included) for the family's decoder.
    // (step, not the aligned length: an unpadded last message must not be read past.)
    r.replies.insert(r.replies.end(), reinterpret_cast<const uint8_t*>(h), reinterpret_cast<const uint8_t*>(h) + step);
    r.replies.resize(NLMSG_ALIGN(r.replies.size()), 0);
  }
}

Socket::Socket(int protocol) {
  fd_ = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  if (fd_ < 0) throw SysError{errno, "socket"};

  // Large buffers so one burst of requests and all of their ACKs fit; FORCE
  // works as root (the daemon), plain SO_*BUF is the fallback for the rest.
  int big = 8 * 1024 * 1024;
  if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  int snd = 1024 * 1024;
  if (setsockopt(fd_, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd) < 0)
    setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
  int one = 1;
  // ACKs carry only the request's header (not the whole request), plus the
  // kernel's error text.
  setsockopt(fd_, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  timeval tv{kRecvTimeoutSeconds, 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw SysError{err, "bind"};
  }
  socklen_t salen = sizeof sa;
  getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &salen);
  port_ = sa.nl_pid;

  int rcv = 0, sndActual = 0;
  socklen_t ol = sizeof rcv;
  getsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcv, &ol);
  ol = sizeof sndActual;
  getsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &sndActual, &ol);
  // The kernel refuses a sendmsg longer than sk_sndbuf - 32.
  maxChunkBytes_ = std::max<size_t>(4096, std::min<size_t>(512 * 1024, sndActual / 2));
  sndBuf_ = static_cast<size_t>(sndActual);
  // Only failures are answered one by one now, but a burst may fail whole
  // (all EEXIST, say): their answers must still fit the receive buffer.
  maxChunkMsgs_ = std::max<size_t>(16, static_cast<size_t>(rcv) / 2 / kAckTruesize);

  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  seq_ = static_cast<uint32_t>(ts.tv_nsec ^ ts.tv_sec);
  rx_.resize(kRxBufferBytes);
}

Socket::~Socket() { close(); }

void Socket::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void Socket::transact(std::vector<uint8_t>& buf, const std::vector<Request>& reqs,
                      std::vector<Result>& results) {
  results.assign(reqs.size(), Result{});
  std::vector<size_t> queue(reqs.size());
  for (size_t i = 0; i < reqs.size(); i++) queue[i] = i;

  std::vector<std::pair<size_t, Collector::Retry>> retries;
  std::vector<size_t> chunk;
  size_t next = 0;
  while (next < queue.size()) {
    // Fill a chunk up to the socket's limits. A dump goes alone: the kernel runs
    // one dump per socket at a time, and a second one in the same burst would
    // only come back EBUSY. A retried request goes alone too.
    chunk.clear();
    size_t bytes = 0;
    const bool batch = reqs[queue[next]].atomic;
    if (batch) {
      // A batch goes whole, with the request after it (its end marker), and
      // nothing else.
      while (next < queue.size() && reqs[queue[next]].atomic) chunk.push_back(queue[next++]);
      if (next < queue.size() && !reqs[queue[next]].dump) chunk.push_back(queue[next++]);
    }
    while (!batch && next < queue.size() && chunk.size() < maxChunkMsgs_) {
      size_t i = queue[next];
      if (reqs[i].atomic) break;
      bool alone = reqs[i].dump || results[i].attempts > 0;
      if (!chunk.empty() && (alone || bytes + reqs[i].length > maxChunkBytes_)) break;
      chunk.push_back(i);
      bytes += reqs[i].length;
      next++;
      if (alone) break;
    }
    retries.clear();
    if (int err = runChunk(buf, chunk, reqs, results, retries)) {
      // The rest is not sent: its outcome would be as unknown as the failed chunk's.
      for (; next < queue.size(); next++) results[queue[next]].error = err;
      for (auto& rt : retries) results[rt.first].error = err;
      return;
    }
    for (auto& [i, why] : retries) {
      Result& r = results[i];
      if (why == Collector::Retry::Interrupted && r.attempts >= kMaxInterruptedRetries) {
        r.error = EINTR;
        r.interrupted = true;
        continue;
      }
      queue.push_back(i);
    }
  }
}

int Socket::runChunk(std::vector<uint8_t>& buf, const std::vector<size_t>& chunk,
                      const std::vector<Request>& reqs, std::vector<Result>& results,
                      std::vector<std::pair<size_t, Collector::Retry>>& retries) {
  uint32_t first = seq_;
  seq_ += static_cast<uint32_t>(chunk.size());
  // Only the last non-dump request asks for an ACK: the kernel still answers
  // every failure, and one ACK instead of one per request saves a receive per
  // operation (the largest cost of a big batch).
  size_t ackSlot = SIZE_MAX;
  for (size_t s = 0; s < chunk.size(); s++)
    if (!reqs[chunk[s]].dump) ackSlot = s;
  // Pieces sent in one sendmsg each: [begin, end) of the chunk. A batch's run
  // of atomic requests is one, what follows it another.
  std::vector<std::pair<size_t, size_t>> sends;
  size_t batchBytes = 0;
  for (size_t s = 0; s < chunk.size(); s++) {
    bool atomic = reqs[chunk[s]].atomic;
    if (atomic) batchBytes += reqs[chunk[s]].length;
    if (sends.empty() || atomic != reqs[chunk[sends.back().first]].atomic)
      sends.emplace_back(s, s + 1);
    else
      sends.back().second = s + 1;
  }
  // The kernel refuses a sendmsg longer than its send buffer: grow it for a
  // large batch (as root; else the send fails with EMSGSIZE, per request).
  if (batchBytes + 64 > sndBuf_) {
    int want = static_cast<int>(std::min<size_t>(batchBytes + 4096, INT_MAX / 2));
    if (setsockopt(fd_, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) == 0) {
      int got = 0;
      socklen_t ol = sizeof got;
      getsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &got, &ol);
      sndBuf_ = static_cast<size_t>(got);
    }
  }
  std::vector<std::vector<iovec>> iovs(sends.size());
  size_t piece = 0;
  for (size_t s = 0; s < chunk.size(); s++) {
    if (s >= sends[piece].second) piece++;
    std::vector<iovec>& iov = iovs[piece];
    const Request& q = reqs[chunk[s]];
    uint8_t* p = buf.data() + q.offset;
    auto h = reinterpret_cast<nlmsghdr*>(p);
    h->nlmsg_seq = first + static_cast<uint32_t>(s);
    h->nlmsg_pid = 0;
    if (!q.dump) {
      if (s == ackSlot)
        h->nlmsg_flags |= NLM_F_ACK;
      else
        h->nlmsg_flags &= ~NLM_F_ACK;
    }
    // Requests side by side in the buffer travel as one piece.
    if (!iov.empty() && static_cast<uint8_t*>(iov.back().iov_base) + iov.back().iov_len == p)
      iov.back().iov_len += q.length;
    else
      iov.push_back(iovec{p, q.length});
    results[chunk[s]].attempts++;
  }

  Collector c(port_, first, chunk, reqs, results, ackSlot);
  if (fd_ < 0) {
    c.failPending(EBADF);
    return EBADF;
  }
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  for (auto& iov : iovs) {
    msghdr m{};
    m.msg_name = &kernel;
    m.msg_namelen = sizeof kernel;
    m.msg_iov = iov.data();
    m.msg_iovlen = iov.size();
    ssize_t sent;
    do sent = ::sendmsg(fd_, &m, 0);
    while (sent < 0 && errno == EINTR);
    if (sent < 0) {
      // Nothing of this piece reached the kernel (netlink sends are all or
      // nothing), and nothing after it is sent: a batch's end marker must not
      // go without its batch. What went before is answered as usual.
      int err = errno;
      c.failFrom(sends[&iov - iovs.data()].first, err);
      if (c.complete()) return 0;
      break;
    }
  }

  while (!c.complete()) {
    iovec riov{rx_.data(), rx_.size()};
    msghdr rm{};
    sockaddr_nl from{};
    rm.msg_name = &from;
    rm.msg_namelen = sizeof from;
    rm.msg_iov = &riov;
    rm.msg_iovlen = 1;
    ssize_t n = ::recvmsg(fd_, &rm, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // ENOBUFS: the kernel dropped replies; EAGAIN: nothing came in time. The
      // outcome of what is still pending is unknown: say so per request.
      int err = errno == EAGAIN ? ETIMEDOUT : errno;
      c.failPending(err);
      return err;
    }
    if (from.nl_pid != 0) continue;  // only the kernel speaks to us
    if (rm.msg_flags & MSG_TRUNC) {
      c.failPending(EMSGSIZE);
      return EMSGSIZE;
    }
    c.feed(rx_.data(), static_cast<size_t>(n));
  }
  retries = c.retries();
  return 0;
}

}  // namespace nl
