// TLS handshakes and reconnect storms from the outside (issue 21): one OpenSSL client, the same for
// meshgate and nginx, on non-blocking sockets and epoll.
//
//   tls_storm rate PORT N CONC full|resume ws|http
//       N connections, CONC at a time, each: TCP connect, TLS 1.3 handshake, one request (a WebSocket
//       upgrade, or GET / for nginx), the answer's head, close. `full` offers no session; `resume`
//       offers the session the previous connection of the same slot got (its newest ticket: each
//       ticket is used once, as browsers do).
//   tls_storm storm PORT N ws
//       Phase 1: N connections (200 at a time) as above, keeping each one's session. Prints
//       "ready", then waits for a line on stdin (the driver restarts the server). Phase 2: all N
//       connect at once with their sessions and stay connected; a connection the server drops
//       before its 101 is made again (counted as a retry). Prints when all are in, then waits for a
//       line on stdin before closing them.
//
// Prints one line of key=value: done, resumed, failed, retries, seconds (and for storm: all_in_ms).
// An attempt that has not finished after 20 s fails (and in a storm is made again). TLS_STORM_DEBUG=1
// prints progress to stderr every second.
// Source addresses rotate over 127.0.0.1-127.0.0.16 so that repeated runs do not run out of ports.
// Build: make -C bench (links -lssl -lcrypto).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { S_CONNECTING, S_HANDSHAKE, S_REQUEST, S_RESPONSE, S_DONE };

typedef struct {
  int fd;
  SSL* ssl;
  int state;
  int slot;
  double started;        // when this attempt began
  char buf[2048];
  size_t len;
} Conn;

static SSL_CTX* g_ctx;
static int g_port;
static int g_http;  // 1: GET / (nginx), 0: a WebSocket upgrade
static int g_ep;
static SSL_SESSION** g_sess;  // per slot
static long g_done, g_resumed, g_failed, g_retries;
static unsigned g_src;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void watch(Conn* c, unsigned events, int op) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  epoll_ctl(g_ep, op, c->fd, &ev);
}

static Conn** g_live;  // the attempt in flight per slot (to time out stuck ones)
static double g_attempt_timeout = 20;

static Conn* open_conn(int slot, int use_session) {
  Conn* c = calloc(1, sizeof *c);
  g_live[slot] = c;
  c->slot = slot;
  c->started = now_s();
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in src = {.sin_family = AF_INET};
  src.sin_addr.s_addr = htonl(0x7F000001u + (g_src++ % 16));
  bind(c->fd, (struct sockaddr*)&src, sizeof src);
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
  dst.sin_addr.s_addr = htonl(0x7F000001u);
  c->ssl = SSL_new(g_ctx);
  SSL_set_fd(c->ssl, c->fd);
  SSL_set_connect_state(c->ssl);
  if (use_session && g_sess[slot]) SSL_set_session(c->ssl, g_sess[slot]);
  int rc = connect(c->fd, (struct sockaddr*)&dst, sizeof dst);
  c->state = rc == 0 ? S_HANDSHAKE : S_CONNECTING;
  if (rc != 0 && errno != EINPROGRESS) {
    c->state = S_CONNECTING;  // reported as a failure at the first event
  }
  watch(c, EPOLLOUT | EPOLLIN, EPOLL_CTL_ADD);
  return c;
}

static void free_conn(Conn* c) {
  if (g_live[c->slot] == c) g_live[c->slot] = NULL;
  epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
  // Without this OpenSSL marks the session not resumable when the SSL is freed mid-connection.
  if (c->state == S_DONE) SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(c->ssl);
  close(c->fd);
  free(c);
}

// Advances `c`; returns 1 when it finished (S_DONE), -1 when it failed, 0 to wait.
static int step(Conn* c) {
  if (c->state == S_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) return -1;
    c->state = S_HANDSHAKE;
  }
  if (c->state == S_HANDSHAKE) {
    int r = SSL_do_handshake(c->ssl);
    if (r != 1) {
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_READ) { watch(c, EPOLLIN, EPOLL_CTL_MOD); return 0; }
      if (e == SSL_ERROR_WANT_WRITE) { watch(c, EPOLLOUT, EPOLL_CTL_MOD); return 0; }
      ERR_clear_error();
      return -1;
    }
    c->state = S_REQUEST;
  }
  if (c->state == S_REQUEST) {
    char req[512];
    int n = g_http ? snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                   : snprintf(req, sizeof req,
                              "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                              g_port);
    if (SSL_write(c->ssl, req, n) != n) return -1;
    c->state = S_RESPONSE;
    watch(c, EPOLLIN, EPOLL_CTL_MOD);
  }
  if (c->state == S_RESPONSE) {
    while (1) {
      int r = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof c->buf - 1 - c->len));
      if (r <= 0) {
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ) return 0;
        ERR_clear_error();
        // nginx with Connection: close ends right after its answer
        if (c->len && strstr(c->buf, "\r\n\r\n")) break;
        return -1;
      }
      c->len += (size_t)r;
      c->buf[c->len] = 0;
      if (strstr(c->buf, "\r\n\r\n") || c->len >= sizeof c->buf - 1) break;
    }
    if (strncmp(c->buf, g_http ? "HTTP/1.1 200" : "HTTP/1.1 101", 12) != 0) return -1;
    if (SSL_session_reused(c->ssl)) g_resumed++;
    SSL_SESSION* s = SSL_get1_session(c->ssl);  // its newest ticket (TLS 1.3 tickets precede the answer)
    if (s) {
      if (g_sess[c->slot]) SSL_SESSION_free(g_sess[c->slot]);
      g_sess[c->slot] = s;
    }
    c->state = S_DONE;
    return 1;
  }
  return 0;
}

// Runs `n` connections, `conc` at a time; connection i uses session slot i % slots. hold: finished
// connections stay open (returned in *held by slot). retry: a failed one is made again.
static void run(long n, int conc, long slots, int use_session, int hold, int retry, Conn*** held) {
  struct epoll_event evs[256];
  long started = 0, live = 0, finished = 0;
  int* free_slots = calloc((size_t)conc, sizeof(int));
  int free_top = 0;
  double last_scan = now_s();
  if (hold) *held = calloc((size_t)slots, sizeof(Conn*));
  while (finished < n) {
    while (live < conc && started < n) {
      // conc == slots: a slot's next connection starts when its last one ended (each ticket used
      // once, the newest one); otherwise every connection has a slot of its own.
      int slot = (int)(started++ % slots);
      if (slots == conc && free_top > 0) slot = free_slots[--free_top];
      open_conn(slot, use_session);
      live++;
    }
    int k = epoll_wait(g_ep, evs, 256, 1000);
    double t = now_s();
    if (t - last_scan >= 1) {  // attempts stuck longer than g_attempt_timeout fail (and are retried)
      last_scan = t;
      long stuck = 0;
      for (long sl = 0; sl < slots; sl++) {
        Conn* c = g_live[sl];
        if (c && c->state != S_DONE && t - c->started > g_attempt_timeout) {
          c->state = -1;
          stuck++;
          struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
          epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);  // comes back at once as a failure
        }
      }
      if (getenv("TLS_STORM_DEBUG"))
        fprintf(stderr, "%.0f: live %ld finished %ld done %ld retries %ld timed out %ld\n", t, live, finished, g_done,
                g_retries, stuck);
    }
    for (int i = 0; i < k; i++) {
      Conn* c = evs[i].data.ptr;
      int r = c->state == -1 ? -1 : step(c);
      if (r == 0) continue;
      if (r > 0) {
        g_done++;
        finished++;
        live--;
        if (slots == conc) free_slots[free_top++] = c->slot;
        if (hold) {
          epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
          (*held)[c->slot] = c;
        } else {
          free_conn(c);
        }
      } else if (retry) {
        int slot = c->slot;
        free_conn(c);
        g_retries++;
        open_conn(slot, use_session);
      } else {
        g_failed++;
        finished++;
        live--;
        if (slots == conc) free_slots[free_top++] = c->slot;
        free_conn(c);
      }
    }
  }
  free(free_slots);
}

static void wait_line(void) {
  char line[64];
  if (!fgets(line, sizeof line, stdin)) exit(1);
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: tls_storm rate PORT N CONC full|resume ws|http | tls_storm storm PORT N ws\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);  // a connection the server dropped fails (and is retried), not the process
  const char* mode = argv[1];
  g_port = atoi(argv[2]);
  long n = atol(argv[3]);
  g_ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(g_ctx, TLS1_3_VERSION);
  SSL_CTX_set_verify(g_ctx, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  g_ep = epoll_create1(0);
  g_sess = calloc((size_t)n, sizeof(SSL_SESSION*));
  g_live = calloc((size_t)n, sizeof(Conn*));
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (strcmp(mode, "rate") == 0 && argc >= 7) {
    int conc = atoi(argv[4]);
    int resume = strcmp(argv[5], "resume") == 0;
    g_http = strcmp(argv[6], "http") == 0;
    if (resume) {  // one full handshake per slot first, not counted
      run(conc, conc, conc, 0, 0, 0, NULL);
      g_done = g_resumed = g_failed = 0;
    }
    double t0 = now_s();
    run(n, conc, conc, resume, 0, 0, NULL);
    printf("done=%ld resumed=%ld failed=%ld retries=0 seconds=%.3f\n", g_done, g_resumed, g_failed, now_s() - t0);
    return 0;
  }
  if (strcmp(mode, "storm") == 0) {
    g_http = 0;
    run(n, 200, n, 0, 0, 1, NULL);
    printf("ready done=%ld failed=%ld retries=%ld\n", g_done, g_failed, g_retries);
    wait_line();
    g_done = g_resumed = g_failed = g_retries = 0;
    double t0 = now_s();
    Conn** held = NULL;
    run(n, (int)n, n, 1, 1, 1, &held);
    double dt = now_s() - t0;
    printf("done=%ld resumed=%ld failed=%ld retries=%ld seconds=%.3f all_in_ms=%.0f\n", g_done, g_resumed, g_failed,
           g_retries, dt, dt * 1000);
    wait_line();
    for (long i = 0; i < n; i++)
      if (held[i]) free_conn(held[i]);
    return 0;
  }
  fprintf(stderr, "unknown mode %s\n", mode);
  return 2;
}
