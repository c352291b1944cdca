/*
 * raw_fanout — the cheapest possible fan-out on this machine: one process writes the same frame
 * to N accepted loopback TCP sockets, which a forked drainer process reads and discards.
 * It is the floor that a WebSocket server's CPU per delivery is compared with (bench/peers.py).
 *
 * The writer listens on 127.0.0.1 (ephemeral port), forks the drainer, which opens N connections
 * to it and then reads every socket (epoll, level-triggered, 256 KiB reads) and throws the bytes
 * away; the writer accepts the N sockets (TCP_NODELAY on, blocking, as a server's sockets after
 * accept), then, for R rounds, writes to every socket in turn:
 *   -k 1  one frame per write() (a publish delivered one at a time), or
 *   -k 2  two frames in one write() (a burst: two frames pending for one socket share a write),
 *   --writev  the same bytes with writev(), one iovec per frame (as a server holding each frame
 *             in its own buffer would).
 *   --uring   (built with liburing: Debian liburing-dev) the round's N sends go through one io_uring,
 *             submitted in batches of the ring's 4,096 entries (one io_uring_enter a batch instead of
 *             one write() a socket), then their completions are reaped: what batching the
 *             submissions saves of the kernel's cost per send on loopback.
 *   --epoll-mod  every socket is in an epoll set (EPOLLIN) and each write is followed by one
 *             epoll_ctl(EPOLL_CTL_MOD) of it: what libuv 1.44's uv_write costs on top of the write
 *             (its stream watcher goes through the loop's watcher queue once the write completes).
 * With --sync (the default for -k 1) the writer waits, after each round, until the drainer has read
 * every byte of it (the drainer says so over a pipe): the next "publish" starts only when the last
 * one has been delivered, as bench/peers.py does for meshgate and nchan.
 *
 * Reports (one line, key=value): frames, writes, wall seconds, and the writer's own CPU (getrusage
 * RUSAGE_SELF: user + system; the drainer is not counted) in total and per frame / per write.
 *
 *   raw_fanout -n 10000 -r 50 -k 1 --sync
 *   raw_fanout -n 10000 -r 100 -k 2 --nosync
 *
 * Build: make -C bench. Needs nothing but libc. RLIMIT_NOFILE is raised to N + 64 when it can be.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec / 1e6; }

static void die(const char* what) {
  perror(what);
  exit(1);
}

static void raise_nofile(int need) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rlim_t want = (rlim_t)need + 64;
  if (rl.rlim_cur >= want) return;
  rl.rlim_cur = want <= rl.rlim_max ? want : rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
}

/* The drainer: connects n sockets to port, reads and discards; with sync_fd >= 0 writes one byte
 * to it each time another `per_round` bytes have been read in total. Never returns. */
static void drainer(int port, int n, long long per_round, int sync_fd, int ready_fd) {
  int* fds = malloc(sizeof(int) * (size_t)n);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < n; i++) {
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[i] < 0) die("drainer socket");
    if (connect(fds[i], (struct sockaddr*)&a, sizeof a) != 0) die("drainer connect");
  }
  int ep = epoll_create1(0);
  for (int i = 0; i < n; i++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) != 0) die("epoll_ctl");
  }
  char c = 'r';
  if (write(ready_fd, &c, 1) != 1) die("drainer ready");
  static char buf[256 * 1024];
  struct epoll_event evs[1024];
  long long total = 0, next = per_round;
  for (;;) {
    int k = epoll_wait(ep, evs, 1024, -1);
    if (k < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < k; i++) {
      ssize_t r = read(evs[i].data.fd, buf, sizeof buf);
      if (r == 0) _exit(0);
      if (r < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        _exit(0);
      }
      total += r;
    }
    while (sync_fd >= 0 && total >= next) {
      if (write(sync_fd, &c, 1) != 1) _exit(0);
      next += per_round;
    }
  }
}

static void write_all(int fd, const char* p, size_t len) {
  while (len) {
    ssize_t w = write(fd, p, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    p += w;
    len -= (size_t)w;
  }
}

#ifdef HAVE_LIBURING
enum { RING_ENTRIES = 4096 };

/* Reaps every completion there is (all of `want` when wait); each must have sent `len` bytes. */
static int reap(struct io_uring* ring, size_t len, int want, int wait) {
  int got = 0;
  while (got < want) {
    struct io_uring_cqe* cqe;
    int rc = wait ? io_uring_wait_cqe(ring, &cqe) : io_uring_peek_cqe(ring, &cqe);
    if (rc == -EAGAIN) break;
    if (rc < 0) {
      errno = -rc;
      die("io_uring_wait_cqe");
    }
    if (cqe->res != (int)len) {
      fprintf(stderr, "io_uring send: %d of %zu bytes\n", cqe->res, len);
      exit(1);
    }
    io_uring_cqe_seen(ring, cqe);
    got++;
  }
  return got;
}

/* One round: a send of buf to every socket through the ring. */
static void uring_round(struct io_uring* ring, const int* fds, int n, const char* buf, size_t len) {
  int done = 0;
  for (int i = 0; i < n; i++) {
    struct io_uring_sqe* sqe = io_uring_get_sqe(ring);
    if (!sqe) {
      io_uring_submit(ring);
      done += reap(ring, len, n - done, 0);
      sqe = io_uring_get_sqe(ring);
      if (!sqe) die("io_uring_get_sqe");
    }
    io_uring_prep_send(sqe, fds[i], buf, len, 0);
  }
  io_uring_submit(ring);
  done += reap(ring, len, n - done, 1);
}
#endif

int main(int argc, char** argv) {
  int n = 10000, rounds = 50, k = 1, frame = 70, sync = -1, use_writev = 0, epoll_mod = 0, use_uring = 0;
  static struct option longopts[] = {{"sync", no_argument, 0, 1},
                                     {"nosync", no_argument, 0, 2},
                                     {"writev", no_argument, 0, 3},
                                     {"epoll-mod", no_argument, 0, 4},
                                     {"uring", no_argument, 0, 5},
                                     {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "n:r:k:b:", longopts, NULL)) != -1) {
    switch (ch) {
      case 'n': n = atoi(optarg); break;
      case 'r': rounds = atoi(optarg); break;
      case 'k': k = atoi(optarg); break;
      case 'b': frame = atoi(optarg); break;
      case 1: sync = 1; break;
      case 2: sync = 0; break;
      case 3: use_writev = 1; break;
      case 4: epoll_mod = 1; break;
      case 5: use_uring = 1; break;
      default:
        fprintf(stderr, "usage: raw_fanout [-n SOCKETS] [-r ROUNDS] [-k FRAMES_PER_WRITE] [-b FRAME_BYTES] "
                        "[--sync|--nosync] [--writev] [--epoll-mod] [--uring]\n");
        return 2;
    }
  }
  if (n < 1 || rounds < 1 || k < 1 || k > 64 || frame < 2 || frame > 65536) return 2;
#ifdef HAVE_LIBURING
  struct io_uring ring;
  if (use_uring) {
    int rc = io_uring_queue_init(RING_ENTRIES, &ring, 0);
    if (rc < 0) {
      errno = -rc;
      die("io_uring_queue_init");
    }
  }
#else
  if (use_uring) {
    fprintf(stderr, "raw_fanout: built without liburing (apt-get install liburing-dev; make -C bench)\n");
    return 2;
  }
#endif
  if (sync < 0) sync = k == 1;
  raise_nofile(n + 16);
  signal(SIGPIPE, SIG_IGN);

  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr*)&a, sizeof a) != 0 || listen(lfd, 4096) != 0) die("listen");
  socklen_t al = sizeof a;
  getsockname(lfd, (struct sockaddr*)&a, &al);

  int sync_pipe[2], ready_pipe[2];
  if (pipe(sync_pipe) != 0 || pipe(ready_pipe) != 0) die("pipe");
  long long per_round = (long long)n * frame * k;
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    close(lfd);
    close(sync_pipe[0]);
    close(ready_pipe[0]);
    drainer(ntohs(a.sin_port), n, per_round, sync ? sync_pipe[1] : -1, ready_pipe[1]);
  }
  close(sync_pipe[1]);
  close(ready_pipe[1]);

  int* fds = malloc(sizeof(int) * (size_t)n);
  int one = 1;
  for (int i = 0; i < n; i++) {
    fds[i] = accept(lfd, NULL, NULL);
    if (fds[i] < 0) die("accept");
    setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  char c;
  if (read(ready_pipe[0], &c, 1) != 1) die("drainer did not start");

  char* buf = malloc((size_t)frame * (size_t)k);
  for (int j = 0; j < k; j++) {
    char* f = buf + (size_t)j * (size_t)frame;
    memset(f, 'x', (size_t)frame);
    f[0] = (char)0x81; /* a text frame header, as a server would send */
    f[1] = (char)(frame - 2 < 126 ? frame - 2 : 126);
  }
  struct iovec iov[64];
  for (int j = 0; j < k; j++) iov[j] = (struct iovec){buf + (size_t)j * (size_t)frame, (size_t)frame};
  size_t len = (size_t)frame * (size_t)k;

  int ep = epoll_create1(0);
  for (int i = 0; epoll_mod && i < n; i++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) != 0) die("epoll_ctl");
  }

  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  double t0 = now_s();
  for (int r = 0; r < rounds; r++) {
#ifdef HAVE_LIBURING
    if (use_uring) {
      uring_round(&ring, fds, n, buf, len);
      if (sync && read(sync_pipe[0], &c, 1) != 1) die("drainer gone");
      continue;
    }
#endif
    for (int i = 0; i < n; i++) {
      if (use_writev) {
        ssize_t w = writev(fds[i], iov, k);
        if (w != (ssize_t)len) {
          if (w < 0) die("writev");
          write_all(fds[i], buf + w, len - (size_t)w);
        }
      } else {
        write_all(fds[i], buf, len);
      }
      if (epoll_mod) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
        epoll_ctl(ep, EPOLL_CTL_MOD, fds[i], &ev);
      }
    }
    if (sync && read(sync_pipe[0], &c, 1) != 1) die("drainer gone");
  }
  double t1 = now_s();
  getrusage(RUSAGE_SELF, &r1);
  double user = tv(r1.ru_utime) - tv(r0.ru_utime), sys = tv(r1.ru_stime) - tv(r0.ru_stime);
  long long frames = (long long)n * rounds * k, writes = (long long)n * rounds;
  printf("RAW_FANOUT sockets=%d rounds=%d frames_per_write=%d frame_bytes=%d sync=%d writev=%d epoll_mod=%d uring=%d frames=%lld "
         "writes=%lld wall_s=%.4f user_s=%.4f sys_s=%.4f cpu_us_per_frame=%.4f cpu_us_per_write=%.4f "
         "frames_per_s=%.0f\n",
         n, rounds, k, frame, sync, use_writev, epoll_mod, use_uring, frames, writes, t1 - t0, user, sys,
         (user + sys) * 1e6 / (double)frames, (user + sys) * 1e6 / (double)writes, (double)frames / (t1 - t0));
  fflush(stdout);
  for (int i = 0; i < n; i++) close(fds[i]);  /* our side closes first: TIME_WAIT here, not on the drainer's ports */
  kill(child, SIGTERM);
  waitpid(child, NULL, 0);
  return 0;
}
