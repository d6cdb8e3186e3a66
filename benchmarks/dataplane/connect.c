// benchmarks/dataplane: TCP connect latency, one new connection at a time.
//
//   connect IP PORT COUNT [WARMUP]
//
// For each connection: socket(), then the clock read just before and just
// after a blocking connect() (which returns once the SYN-ACK is in: the
// connection is established), then close() with SO_LINGER 0 (an RST, so no
// TIME_WAIT piles up and every connection gets a fresh 4-tuple from the
// ephemeral range). Only connect() is inside the timed interval. WARMUP
// connections first, untimed. Prints one line per timed connection: the
// latency in nanoseconds, or "E errno" for a failed one. Exit 0 unless the
// arguments are wrong.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int one(const struct sockaddr_in *sa, long long *ns) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  struct timeval tv = { .tv_sec = 3, .tv_usec = 0 };
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); // bounds a lost SYN
  struct linger lg = { .l_onoff = 1, .l_linger = 0 };
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  long long t0 = now_ns();
  int r = connect(fd, (const struct sockaddr *)sa, sizeof *sa);
  long long t1 = now_ns();
  int err = r == 0 ? 0 : errno;
  close(fd);
  *ns = t1 - t0;
  return err;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s IP PORT COUNT [WARMUP]\n", argv[0]);
    return 2;
  }
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
    fprintf(stderr, "bad address %s\n", argv[1]);
    return 2;
  }
  long count = atol(argv[3]);
  long warm = argc > 4 ? atol(argv[4]) : 0;
  long long ns;
  for (long i = 0; i < warm; i++) one(&sa, &ns);
  for (long i = 0; i < count; i++) {
    int err = one(&sa, &ns);
    if (err) printf("E %d\n", err);
    else printf("%lld\n", ns);
  }
  return 0;
}
