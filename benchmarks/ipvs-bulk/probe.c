// The raw baseline for benchmarks/ipvs-bulk: the same IPVS rules as the Node
// driver (inside.mjs), programmed by plain C over one generic netlink socket,
// with no library and no JavaScript. It measures what the kernel (and the
// syscalls to reach it) cost, so our library's figures can be read against it
// in the same boot.
//
//   probe <services> <dests-per-service> [--ack each|errors] [--recv recvmsg|recvmmsg] [--chunk N]
//
// --ack each     every request carries NLM_F_ACK (what tsproxy and ipvsadm do):
//                one ACK datagram, so one receive, per operation.
// --ack errors   only the last request of a chunk asks for an ACK; the kernel
//                still answers every failed one, and in order, so the last
//                ACK closes the chunk.
// --recv         recvmsg: one datagram per call; recvmmsg: up to 64 per call.
//
// Prints one JSON line: {"ops":..,"errors":..,"ns":..,"sends":..,"recvCalls":..,"datagrams":..}.
// The addresses must stay in step with svcAddr/destAddr in inside.mjs.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/genetlink.h>
#include <linux/ip_vs.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int fd;
static uint32_t seq = 1;
static uint16_t family;

static uint8_t *buf;
static size_t len, cap;

static void die(const char *what) {
  fprintf(stderr, "probe: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void *room(size_t n) {
  if (len + n > cap) {
    cap = (len + n) * 2;
    buf = realloc(buf, cap);
    if (!buf) die("realloc");
  }
  void *p = buf + len;
  memset(p, 0, NLMSG_ALIGN(n));
  len += NLMSG_ALIGN(n);
  return p;
}

static void attr(uint16_t type, const void *data, size_t n) {
  struct nlattr *a = room(NLA_HDRLEN + n);
  a->nla_type = type;
  a->nla_len = NLA_HDRLEN + n;
  memcpy((uint8_t *)a + NLA_HDRLEN, data, n);
}
static void u16(uint16_t t, uint16_t v) { attr(t, &v, 2); }
static void u32(uint16_t t, uint32_t v) { attr(t, &v, 4); }
static size_t nest(uint16_t type) {
  size_t off = len;
  struct nlattr *a = room(NLA_HDRLEN);
  a->nla_type = type | NLA_F_NESTED;
  return off;
}
static void nest_end(size_t off) { ((struct nlattr *)(buf + off))->nla_len = len - off; }

static size_t msg(uint16_t type, uint16_t flags, uint8_t cmd, uint8_t version) {
  size_t off = len;
  struct nlmsghdr *h = room(NLMSG_HDRLEN);
  h->nlmsg_type = type;
  h->nlmsg_flags = NLM_F_REQUEST | flags;
  h->nlmsg_seq = seq++;
  struct genlmsghdr *g = room(GENL_HDRLEN);
  g->cmd = cmd;
  g->version = version;
  return off;
}
static void msg_end(size_t off) { ((struct nlmsghdr *)(buf + off))->nlmsg_len = len - off; }

// 10.96.0.0/12-ish service addresses and 10.244.0.0/15 pod addresses, as inside.mjs.
static uint32_t svc_addr(uint32_t i) { return htonl((10u << 24) | ((96u + (i >> 16)) << 16) | (((i >> 8) & 255) << 8) | (i & 255)); }
static uint32_t dest_addr(uint32_t k) { return htonl((10u << 24) | ((244u + (k >> 16)) << 16) | (((k >> 8) & 255) << 8) | (k & 255)); }

static void put_service(uint32_t i, int full) {
  size_t n = nest(IPVS_CMD_ATTR_SERVICE);
  uint8_t addr[16] = {0};
  uint32_t a = svc_addr(i);
  memcpy(addr, &a, 4);
  u16(IPVS_SVC_ATTR_AF, AF_INET);
  u16(IPVS_SVC_ATTR_PROTOCOL, IPPROTO_TCP);
  attr(IPVS_SVC_ATTR_ADDR, addr, sizeof addr);
  uint16_t port = htons(80);
  attr(IPVS_SVC_ATTR_PORT, &port, 2);
  if (full) {
    attr(IPVS_SVC_ATTR_SCHED_NAME, "rr", 3);
    struct ip_vs_flags f = {0, 0xffffffffu};
    attr(IPVS_SVC_ATTR_FLAGS, &f, sizeof f);
    u32(IPVS_SVC_ATTR_TIMEOUT, 0);
    u32(IPVS_SVC_ATTR_NETMASK, 0xffffffffu);
  }
  nest_end(n);
}

static void put_dest(uint32_t k) {
  size_t n = nest(IPVS_CMD_ATTR_DEST);
  uint8_t addr[16] = {0};
  uint32_t a = dest_addr(k);
  memcpy(addr, &a, 4);
  attr(IPVS_DEST_ATTR_ADDR, addr, sizeof addr);
  uint16_t port = htons(8080);
  attr(IPVS_DEST_ATTR_PORT, &port, 2);
  u16(IPVS_DEST_ATTR_ADDR_FAMILY, AF_INET);
  u32(IPVS_DEST_ATTR_FWD_METHOD, IP_VS_CONN_F_MASQ);
  u32(IPVS_DEST_ATTR_WEIGHT, 1);
  u32(IPVS_DEST_ATTR_U_THRESH, 0);
  u32(IPVS_DEST_ATTR_L_THRESH, 0);
  nest_end(n);
}

static long sends, recv_calls, datagrams;

static void send_buf(void) {
  struct sockaddr_nl k = {.nl_family = AF_NETLINK};
  ssize_t n;
  do n = sendto(fd, buf, len, 0, (struct sockaddr *)&k, sizeof k);
  while (n < 0 && errno == EINTR);
  if (n < 0) die("sendto");
  sends++;
}

#define VLEN 64
#define DGRAM 8192
static uint8_t rx[VLEN][DGRAM];
static int use_mmsg;

// Receives one batch of datagrams; returns how many, with their lengths in lens[].
static int receive(size_t lens[VLEN]) {
  for (;;) {
    if (use_mmsg) {
      struct mmsghdr mm[VLEN];
      struct iovec iov[VLEN];
      for (int i = 0; i < VLEN; i++) {
        iov[i] = (struct iovec){rx[i], DGRAM};
        mm[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
      }
      int n = recvmmsg(fd, mm, VLEN, MSG_WAITFORONE, NULL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) die("recvmmsg");
      recv_calls++;
      for (int i = 0; i < n; i++) lens[i] = mm[i].msg_len;
      datagrams += n;
      return n;
    }
    ssize_t n = recv(fd, rx[0], DGRAM, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("recv");
    recv_calls++;
    datagrams++;
    lens[0] = (size_t)n;
    return 1;
  }
}

static uint16_t resolve_ipvs(void) {
  len = 0;
  size_t m = msg(GENL_ID_CTRL, NLM_F_ACK, CTRL_CMD_GETFAMILY, 1);
  attr(CTRL_ATTR_FAMILY_NAME, "IPVS", 5);
  msg_end(m);
  send_buf();
  uint16_t id = 0;
  for (int acked = 0; !acked;) {
    size_t lens[VLEN];
    int n = receive(lens);
    for (int d = 0; d < n; d++) {
      size_t left = lens[d];
      for (struct nlmsghdr *h = (struct nlmsghdr *)rx[d]; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
        if (h->nlmsg_type == NLMSG_ERROR) {
          int err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
          if (err) {
            errno = -err;
            die("CTRL_CMD_GETFAMILY IPVS");
          }
          acked = 1;
          continue;
        }
        struct nlattr *a = (struct nlattr *)((uint8_t *)NLMSG_DATA(h) + GENL_HDRLEN);
        int alen = (int)h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
        for (; alen >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= alen;
             alen -= NLA_ALIGN(a->nla_len), a = (struct nlattr *)((uint8_t *)a + NLA_ALIGN(a->nla_len)))
          if ((a->nla_type & NLA_TYPE_MASK) == CTRL_ATTR_FAMILY_ID) memcpy(&id, (uint8_t *)a + NLA_HDRLEN, 2);
      }
    }
  }
  if (!id) {
    errno = ENOENT;
    die("IPVS family id");
  }
  return id;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: probe <services> <dests-per-service> [--ack each|errors] [--recv recvmsg|recvmmsg] [--chunk N]\n");
    return 2;
  }
  uint32_t nsvc = (uint32_t)strtoul(argv[1], NULL, 10), ndest = (uint32_t)strtoul(argv[2], NULL, 10);
  int ack_each = 1;
  size_t chunk = 1024;  // tsproxy's own cap (UIO_MAXIOV) with its 8 MiB receive buffer
  for (int i = 3; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--ack")) ack_each = strcmp(argv[i + 1], "errors") != 0;
    else if (!strcmp(argv[i], "--recv")) use_mmsg = !strcmp(argv[i + 1], "recvmmsg");
    else if (!strcmp(argv[i], "--chunk")) chunk = strtoul(argv[i + 1], NULL, 10);
  }

  fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
  if (fd < 0) die("socket");
  int big = 8 << 20, snd = 1 << 20, one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0) die("SO_RCVBUFFORCE");
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd) < 0) die("SO_SNDBUFFORCE");
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
  family = resolve_ipvs();
  sends = recv_calls = datagrams = 0;

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  uint64_t total = (uint64_t)nsvc * (1 + ndest), done = 0;
  long errors = 0;
  uint32_t svc = 0, dst = 0;  // the next operation: dst == 0 adds service svc, else its dest dst-1
  while (done < total) {
    len = 0;
    uint32_t first = seq;
    size_t n = 0;
    while (n < chunk && done + n < total && len < 256 * 1024) {
      uint16_t flags = ack_each || n + 1 == chunk || done + n + 1 == total ? NLM_F_ACK : 0;
      if (dst == 0) {
        size_t m = msg(family, flags, IPVS_CMD_NEW_SERVICE, IPVS_GENL_VERSION);
        put_service(svc, 1);
        msg_end(m);
      } else {
        size_t m = msg(family, flags, IPVS_CMD_NEW_DEST, IPVS_GENL_VERSION);
        put_service(svc, 0);
        put_dest(svc * ndest + dst - 1);
        msg_end(m);
      }
      n++;
      if (++dst > ndest) dst = 0, svc++;
    }
    uint32_t last = seq - 1;
    send_buf();
    // each: every request answers; errors: the last one's ACK closes the chunk.
    size_t answered = 0;
    int closed = 0;
    while (ack_each ? answered < n : !closed) {
      size_t lens[VLEN];
      int got = receive(lens);
      for (int d = 0; d < got; d++) {
        size_t left = lens[d];
        for (struct nlmsghdr *h = (struct nlmsghdr *)rx[d]; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
          if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_seq < first || h->nlmsg_seq > last) continue;
          if (((struct nlmsgerr *)NLMSG_DATA(h))->error) errors++;
          answered++;
          if (h->nlmsg_seq == last) closed = 1;
        }
      }
    }
    done += n;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  long long ns = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
  printf("{\"ops\":%llu,\"errors\":%ld,\"ns\":%lld,\"sends\":%ld,\"recvCalls\":%ld,\"datagrams\":%ld}\n",
         (unsigned long long)total, errors, ns, sends, recv_calls, datagrams);
  return errors ? 1 : 0;
}
