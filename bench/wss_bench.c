/*
 * wss_bench — ws_bench's subscriber side over TLS: N wss:// client connections held by one process
 * (epoll, non-blocking OpenSSL sockets), each upgraded to WebSocket and counting the messages the
 * server sends. It speaks ws_bench's --control protocol on stdin/stdout, so bench/benchlib.py's
 * WsBench drives either (bench/tls_fanout.py).
 *
 * TLS: OpenSSL's client defaults (TLS 1.3 when the server has it), no certificate verification (the
 * servers of a benchmark use a throwaway certificate), SSL_MODE_RELEASE_BUFFERS so that 10,000 idle
 * clients fit. The upgrade request is fixed (the server's Sec-WebSocket-Accept is not checked: a
 * benchmark client, not a conformance test); the answer must be 101. Server frames are parsed as a
 * stream (header, then the payload skipped): a text/binary/continuation frame with FIN counts one
 * message; a ping is answered with a pong, a close ends the connection.
 *
 * Build: make -C bench (needs libssl-dev).
 * Usage: wss_bench -p PORT -n N [-H 127.0.0.1] [-c 200] [-P /path?query] [-s K] [-t 10] --control
 *   -s K  spread source addresses over 127.0.0.1 .. 127.0.0.K (more than ~28k clients per port)
 * Output and commands: as ws_bench (CONNECT once all N were tried; reset, stats, wait COUNT MS,
 * close, quit).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { ST_CONNECT, ST_TLS, ST_HEAD, ST_OPEN, ST_DONE };

typedef struct {
  int fd, state, idx;
  SSL* ssl;
  char* head;      /* the upgrade answer while it comes in */
  size_t head_len; /* bytes in head, or of the frame header below */
  unsigned char hdr[14];
  uint64_t skip; /* payload bytes of the current frame still to come */
  int opcode, fin, want_out;
  double t0; /* when its connect started */
} Conn;

static Conn* conns;
static int n = 1000, conc = 200, src_ips = 1, port, ep;
static const char* host = "127.0.0.1";
static const char* path = "/";
static double hs_timeout = 10;
static SSL_CTX* ctx;
static long long msgs, bytes_in;
static int opened, failed, in_flight, next_conn, open_now;
static double t_start, t_connected;
static char fail_reason[128];

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void set_events(Conn* c, int out) {
  struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.u32 = (uint32_t)c->idx};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  c->want_out = out;
}

static void start_next(void);

static void finish(Conn* c, int ok, const char* why) {
  if (c->state == ST_DONE) return;
  int was_open = c->state == ST_OPEN;
  if (c->ssl) SSL_free(c->ssl);
  c->ssl = NULL;
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  free(c->head);
  c->head = NULL;
  c->state = ST_DONE;
  if (was_open) {
    open_now--;
    return;
  }
  in_flight--;
  if (ok) {
  } else {
    failed++;
    if (!fail_reason[0] && why) snprintf(fail_reason, sizeof fail_reason, "%s", why);
  }
  start_next();
}

static void start_conn(Conn* c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c->fd < 0) {
    c->state = ST_DONE;
    failed++;
    snprintf(fail_reason, sizeof fail_reason, "socket: %s", strerror(errno));
    return;
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (src_ips > 1) {
    struct sockaddr_in s = {.sin_family = AF_INET};
    s.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(c->idx % src_ips));
    bind(c->fd, (struct sockaddr*)&s, sizeof s);
  }
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, host, &a.sin_addr);
  in_flight++;
  c->t0 = now_s();
  c->state = ST_CONNECT;
  struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)c->idx};
  epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
  if (connect(c->fd, (struct sockaddr*)&a, sizeof a) != 0 && errno != EINPROGRESS) finish(c, 0, strerror(errno));
}

static void start_next(void) {
  while (in_flight < conc && next_conn < n) start_conn(&conns[next_conn++]);
  if (next_conn == n && in_flight == 0 && t_connected == 0) {
    t_connected = now_s();
    double ms = (t_connected - t_start) * 1000;
    printf("CONNECT ok=%d failed=%d elapsed_ms=%.0f rate=%.0f%s%s\n", opened, failed, ms,
           ms > 0 ? opened * 1000.0 / ms : 0.0, fail_reason[0] ? " reason=" : "", fail_reason);
    fflush(stdout);
  }
}

static void send_upgrade(Conn* c) {
  char req[1024];
  int len = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     path, host, port);
  if (SSL_write(c->ssl, req, len) != len) finish(c, 0, "upgrade write");  /* SSL_MODE_ENABLE_PARTIAL_WRITE off */
  c->state = ST_HEAD;
  c->head = malloc(4096);
  c->head_len = 0;
}

static void pong_or_close(Conn* c, int opcode) {
  /* A masked (zero key) empty pong, or the end of this connection on a close frame. */
  if (opcode == 0x9) {
    unsigned char pong[6] = {0x8A, 0x80, 0, 0, 0, 0};
    SSL_write(c->ssl, pong, sizeof pong);
  } else if (opcode == 0x8) {
    finish(c, 1, NULL);
  }
}

/* Parses the WebSocket stream in p[0..len). Returns 0, or -1 once the connection is finished. */
static int frames(Conn* c, const unsigned char* p, size_t len) {
  while (len > 0) {
    if (c->skip > 0) {
      size_t k = len < c->skip ? len : (size_t)c->skip;
      c->skip -= k;
      p += k;
      len -= k;
      if (c->skip == 0 && c->opcode >= 0x8) {
        pong_or_close(c, c->opcode);
        if (c->state == ST_DONE) return -1;
      }
      continue;
    }
    c->hdr[c->head_len++] = *p++;
    len--;
    if (c->head_len < 2) continue;
    unsigned l7 = c->hdr[1] & 0x7F;
    size_t need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0);
    if (c->head_len < need) continue;
    uint64_t plen = l7;
    if (l7 == 126) plen = ((uint64_t)c->hdr[2] << 8) | c->hdr[3];
    if (l7 == 127) {
      plen = 0;
      for (int i = 0; i < 8; i++) plen = (plen << 8) | c->hdr[2 + i];
    }
    c->fin = c->hdr[0] & 0x80;
    c->opcode = c->hdr[0] & 0x0F;
    c->head_len = 0;
    c->skip = plen;
    if (c->opcode < 0x8 && c->fin) msgs++;
    if (plen == 0 && c->opcode >= 0x8) {
      pong_or_close(c, c->opcode);
      if (c->state == ST_DONE) return -1;
    }
  }
  return 0;
}

static void on_readable(Conn* c) {
  unsigned char buf[16384];
  for (;;) {
    int r = SSL_read(c->ssl, buf, sizeof buf);
    if (r <= 0) {
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_READ) return;
      if (e == SSL_ERROR_WANT_WRITE) {
        set_events(c, 1);
        return;
      }
      finish(c, 0, e == SSL_ERROR_ZERO_RETURN ? "closed" : "TLS read error");
      return;
    }
    bytes_in += r;
    if (c->state == ST_HEAD) {
      size_t room = 4095 - c->head_len, k = (size_t)r < room ? (size_t)r : room;
      memcpy(c->head + c->head_len, buf, k);
      c->head_len += k;
      c->head[c->head_len] = 0;
      char* end = strstr(c->head, "\r\n\r\n");
      if (!end) {
        if (c->head_len == 4095) finish(c, 0, "answer head too long");
        if (c->state == ST_DONE) return;
        continue;
      }
      if (strncmp(c->head, "HTTP/1.1 101", 12) != 0) {
        char why[64];
        snprintf(why, sizeof why, "answer %.12s", c->head + 9);
        finish(c, 0, why);
        return;
      }
      size_t used = (size_t)(end + 4 - c->head);
      /* Bytes after the head are WebSocket frames already (they came from the same read). */
      size_t rest_from = k - (c->head_len - used);
      free(c->head);
      c->head = NULL;
      c->head_len = 0;
      c->state = ST_OPEN;
      opened++;
      open_now++;
      in_flight--;
      start_next();
      if (frames(c, buf + rest_from, (size_t)r - rest_from) < 0) return;
      continue;
    }
    if (frames(c, buf, (size_t)r) < 0) return;
  }
}

static void on_event(Conn* c, uint32_t events) {
  if (c->state == ST_CONNECT) {
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err) {
      finish(c, 0, strerror(err));
      return;
    }
    c->ssl = SSL_new(ctx);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_connect_state(c->ssl);
    c->state = ST_TLS;
    set_events(c, 0);
  }
  if (c->state == ST_TLS) {
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
      send_upgrade(c);
      if (c->state == ST_DONE) return;
    } else {
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if ((e == SSL_ERROR_WANT_WRITE) != c->want_out) set_events(c, e == SSL_ERROR_WANT_WRITE);
        return;
      }
      char why[96];
      snprintf(why, sizeof why, "TLS handshake: %s", ERR_reason_error_string(ERR_get_error()));
      finish(c, 0, why);
      return;
    }
  }
  if (c->want_out && (events & EPOLLOUT)) set_events(c, 0);
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
}

static void close_all(void) {
  for (int i = 0; i < n; i++) {
    Conn* c = &conns[i];
    if (c->state == ST_OPEN) {
      unsigned char cl[8] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8}; /* close 1000, zero mask */
      SSL_write(c->ssl, cl, sizeof cl);
    }
    if (c->state != ST_DONE) finish(c, 1, NULL);
  }
}

static void stats_line(const char* what, int timed_out) {
  printf("%s open=%d msgs=%lld bytes=%lld now_ns=%lld", what, open_now, msgs, bytes_in, now_ns());
  if (timed_out >= 0) printf(" timed_out=%d", timed_out);
  printf("\n");
  fflush(stdout);
}

int main(int argc, char** argv) {
  static struct option lo[] = {{"control", no_argument, 0, 1}, {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "H:p:n:c:P:s:t:", lo, NULL)) != -1) {
    switch (o) {
      case 'H': host = optarg; break;
      case 'p': port = atoi(optarg); break;
      case 'n': n = atoi(optarg); break;
      case 'c': conc = atoi(optarg); break;
      case 'P': path = optarg; break;
      case 's': src_ips = atoi(optarg); break;
      case 't': hs_timeout = atof(optarg); break;
      case 1: break;
      default: fprintf(stderr, "usage: wss_bench -p PORT -n N [-H host] [-c C] [-P path] [-s K] --control\n"); return 2;
    }
  }
  if (!port || n <= 0) return 2;
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max < (rlim_t)n + 1024 ? rl.rlim_max : (rlim_t)n + 1024;
  setrlimit(RLIMIT_NOFILE, &rl);
  ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  conns = calloc((size_t)n, sizeof *conns);
  for (int i = 0; i < n; i++) conns[i].idx = i, conns[i].fd = -1, conns[i].state = ST_DONE;
  ep = epoll_create1(0);
  struct epoll_event sev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev);
  t_start = now_s();
  start_next();
  long long wait_count = -1;
  double wait_deadline = 0, last_scan = 0;
  char line[256];
  size_t line_len = 0;
  struct epoll_event evs[512];
  for (;;) {
    int timeout = 100;
    int k = epoll_wait(ep, evs, 512, timeout);
    for (int i = 0; i < k; i++) {
      if (evs[i].data.u32 == UINT32_MAX) {
        ssize_t r = read(0, line + line_len, sizeof line - 1 - line_len);
        if (r <= 0) return 0; /* EOF: quit */
        line_len += (size_t)r;
        char* nl;
        while ((nl = memchr(line, '\n', line_len))) {
          *nl = 0;
          if (!strcmp(line, "reset")) {
            msgs = bytes_in = 0;
            printf("OK reset\n");
            fflush(stdout);
          } else if (!strcmp(line, "stats")) {
            stats_line("STATS", -1);
          } else if (!strncmp(line, "wait ", 5)) {
            long long cnt, ms;
            if (sscanf(line + 5, "%lld %lld", &cnt, &ms) == 2) wait_count = cnt, wait_deadline = now_s() + ms / 1000.0;
          } else if (!strcmp(line, "close")) {
            close_all();
            stats_line("CLOSED", -1);
            return 0;
          } else if (!strcmp(line, "quit")) {
            return 0;
          }
          size_t used = (size_t)(nl + 1 - line);
          memmove(line, nl + 1, line_len - used);
          line_len -= used;
        }
        continue;
      }
      Conn* c = &conns[evs[i].data.u32];
      if (c->state != ST_DONE) on_event(c, evs[i].events);
    }
    double t = now_s();
    if (t_connected == 0 && t - last_scan >= 1) { /* handshakes past their time, once a second */
      last_scan = t;
      for (int i = 0; i < next_conn; i++)
        if (conns[i].state != ST_DONE && conns[i].state != ST_OPEN && t - conns[i].t0 > hs_timeout)
          finish(&conns[i], 0, "handshake timeout");
    }
    if (wait_count >= 0 && (msgs >= wait_count || t >= wait_deadline)) {
      stats_line("WAIT", msgs >= wait_count ? 0 : 1);
      wait_count = -1;
    }
  }
}
