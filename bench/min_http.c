/*
 * min_http — the cheapest possible keep-alive HTTP/1.1 server on this machine: every request gets
 * the same fixed 200 answer. It is the floor that an HTTP API's CPU per request is compared with
 * (bench/peers.py loads it with the same h2load command as meshgate and nchan).
 *
 * W worker processes (fork, default 2), each with its own SO_REUSEPORT listening socket on
 * 127.0.0.1:PORT and one level-triggered epoll loop. Per readable connection: one read() of up to
 * 64 KiB, every complete request in the buffer answered (request head up to "\r\n\r\n", then
 * Content-Length bytes of body, pipelined requests one after the other), all answers of that read
 * in one write(). A partial request waits for more bytes. Nothing is parsed beyond Content-Length;
 * a request with "Connection: close" is not looked for (h2load keeps connections open).
 *
 *   min_http -p 8099 [-w 2]      # runs until SIGTERM/SIGINT
 *
 * It prints "MIN_HTTP listening port=.. workers=.." once every worker listens. CPU is measured from
 * outside (bench/peers.py reads /proc/<pid>/stat of the parent and its workers).
 * Build: make -C bench. Needs nothing but libc.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUF (64 * 1024)

static const char ANSWER[] =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 28\r\n\r\n"
    "{\"E\":null,\"r\":{\"s\":0,\"f\":0}}";

typedef struct {
  int fd;
  size_t len;       /* bytes in in[] */
  size_t out_len;   /* answers not yet written (only when a write was short) */
  char in[BUF];
  char* out;
} conn;

static void die(const char* what) {
  perror(what);
  exit(1);
}

/* Length of the first complete request in p[0..len), or 0 if it is not complete yet; -1 if bad. */
static long request_len(const char* p, size_t len) {
  const char* end = memmem(p, len, "\r\n\r\n", 4);
  if (!end) return len >= BUF ? -1 : 0;
  size_t head = (size_t)(end - p) + 4;
  long body = 0;
  const char* hend = p + head;
  for (const char* l = p; l < hend;) {
    const char* nl = memchr(l, '\n', (size_t)(hend - l));
    if (!nl) break;
    l = nl + 1;
    if (hend - l > 15 && strncasecmp(l, "content-length:", 15) == 0) {
      body = strtol(l + 15, NULL, 10);
      break;
    }
  }
  if (body < 0 || head + (size_t)body > BUF) return -1;
  return head + (size_t)body <= len ? (long)(head + (size_t)body) : 0;
}

static void close_conn(int ep, conn* c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c->out);
  free(c);
}

static int flush_out(int ep, conn* c) {
  while (c->out_len) {
    ssize_t w = write(c->fd, c->out, c->out_len);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        return 0;
      }
      return -1;
    }
    memmove(c->out, c->out + w, c->out_len - (size_t)w);
    c->out_len -= (size_t)w;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  return 0;
}

static int on_readable(int ep, conn* c) {
  static char out[BUF / 16 * sizeof ANSWER];
  ssize_t r = read(c->fd, c->in + c->len, BUF - c->len);
  if (r == 0) return -1;
  if (r < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
  c->len += (size_t)r;
  size_t off = 0, olen = 0;
  for (;;) {
    long n = request_len(c->in + off, c->len - off);
    if (n < 0) return -1;
    if (n == 0) break;
    if (olen + sizeof ANSWER - 1 > sizeof out) break;
    memcpy(out + olen, ANSWER, sizeof ANSWER - 1);
    olen += sizeof ANSWER - 1;
    off += (size_t)n;
  }
  memmove(c->in, c->in + off, c->len - off);
  c->len -= off;
  if (!olen) return 0;
  if (c->out_len) { /* still writing earlier answers: append */
    c->out = realloc(c->out, c->out_len + olen);
    memcpy(c->out + c->out_len, out, olen);
    c->out_len += olen;
    return 0;
  }
  ssize_t w = write(c->fd, out, olen);
  if (w == (ssize_t)olen) return 0;
  if (w < 0 && errno != EAGAIN && errno != EINTR) return -1;
  size_t done = w > 0 ? (size_t)w : 0;
  c->out = realloc(c->out, olen - done);
  memcpy(c->out, out + done, olen - done);
  c->out_len = olen - done;
  return flush_out(ep, c);
}

static void worker(int port) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr*)&a, sizeof a) != 0 || listen(lfd, 4096) != 0) die("listen");
  int ep = epoll_create1(0);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
  struct epoll_event evs[256];
  for (;;) {
    int k = epoll_wait(ep, evs, 256, -1);
    if (k < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < k; i++) {
      conn* c = evs[i].data.ptr;
      if (!c) {
        int fd;
        while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          conn* nc = calloc(1, sizeof(conn));
          nc->fd = fd;
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = nc};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        continue;
      }
      int rc = 0;
      if (evs[i].events & EPOLLOUT) rc = flush_out(ep, c);
      if (rc == 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) rc = on_readable(ep, c);
      if (rc < 0) close_conn(ep, c);
    }
  }
}

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

int main(int argc, char** argv) {
  int port = 0, workers = 2, ch;
  while ((ch = getopt(argc, argv, "p:w:")) != -1) {
    if (ch == 'p') port = atoi(optarg);
    else if (ch == 'w') workers = atoi(optarg);
    else {
      fprintf(stderr, "usage: min_http -p PORT [-w WORKERS]\n");
      return 2;
    }
  }
  if (port <= 0 || workers < 1 || workers > 64) {
    fprintf(stderr, "usage: min_http -p PORT [-w WORKERS]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  pid_t kids[64];
  for (int i = 0; i < workers; i++) {
    kids[i] = fork();
    if (kids[i] < 0) die("fork");
    if (kids[i] == 0) {
      signal(SIGTERM, SIG_DFL);
      worker(port);
    }
  }
  /* Every worker binds before it loops; a short pause lets them all listen before we say so. */
  usleep(100000);
  printf("MIN_HTTP listening port=%d workers=%d\n", port, workers);
  fflush(stdout);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  while (!stop) pause();
  for (int i = 0; i < workers; i++) kill(kids[i], SIGTERM);
  for (int i = 0; i < workers; i++) waitpid(kids[i], NULL, 0);
  return 0;
}
