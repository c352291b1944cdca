/*
 * ws_bench — a WebSocket load generator for meshgate, on libuv only.
 *
 * Opens N client connections to one ws:// listener at a bounded number of handshakes in flight,
 * keeps them open, parses every server frame (text/binary/continuation counted as messages,
 * ping answered with pong, close answered with close) and counts received messages and payload
 * bytes with CLOCK_MONOTONIC timestamps (uv_hrtime, the same clock as Python's time.monotonic_ns),
 * so that a driver script can compute end-to-end delivery rates.
 *
 * The handshake is written by hand (RFC 6455 §4.1): a random 16-byte Sec-WebSocket-Key from
 * getrandom(), and the server's Sec-WebSocket-Accept is checked (SHA-1 + base64 below, no
 * dependency). Every frame the client sends is masked with a fresh mask key.
 *
 * Build:  make -C bench            (or: gcc -O2 -Wall -o ws_bench bench/ws_bench.c -luv)
 *
 * Usage:  ws_bench -p PORT -n N [options]
 *   -H HOST        server address (IPv4 literal, default 127.0.0.1)
 *   -p PORT        ws listener port (required)
 *   -n N           connections to open (default 1000)
 *   -c C           handshakes in flight at most (default 500)
 *   -P PATH        request path, may carry a query string (default /)
 *   -t SECONDS     handshake timeout per connection (default 10)
 *   -s K           spread source addresses over 127.0.0.1 .. 127.0.0.K (beats the ~28k
 *                  ephemeral ports of one source address; default 1 = let the kernel choose)
 *   --hold S       without --control: stay connected S seconds printing STATS every second
 *   --expect M     without --control: exit as soon as M messages have arrived
 *   --control      read commands from stdin, one per line (see below)
 *   --fixed-key    send RFC 6455's sample Sec-WebSocket-Key (dGhlIHNhbXBsZSBub25jZQ==) on every
 *                  connection, for floors that answer with its fixed accept (min_ws_fanout)
 *
 * Output (stdout, one line each, key=value):
 *   CONNECT ok=.. failed=.. elapsed_ms=.. rate=.. (+ failure reasons)   once all N were tried
 *   STATS / WAIT / CLOSED lines (see commands)
 *
 * Control commands (stdin):
 *   reset                 zero the message counters            → "OK reset"
 *   stats                 → "STATS open=.. msgs=.. bytes=.. first_ns=.. last_ns=.. now_ns=.."
 *   wait COUNT TIMEOUT_MS print WAIT (same fields + timed_out=0|1) once msgs >= COUNT or on timeout
 *   close                 send a close frame (1000) on every connection, wait up to 5 s for the
 *                         server to close, print CLOSED and exit
 *   quit                  exit at once (the kernel resets the connections)
 *   EOF on stdin behaves as quit.
 *
 * RLIMIT_NOFILE is raised to N + 1024 by the tool itself (raising the hard limit needs root).
 */
#define _GNU_SOURCE
#include <uv.h>

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>

/* ---------------------------------------------------------------- SHA-1, base64 */

static uint32_t rol32(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1(const uint8_t* data, size_t len, uint8_t out[20]) {
  uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
  size_t total = ((len + 8) / 64 + 1) * 64;
  uint8_t* m = calloc(1, total);
  memcpy(m, data, len);
  m[len] = 0x80;
  uint64_t bits = (uint64_t)len * 8;
  for (int i = 0; i < 8; i++) m[total - 1 - i] = (uint8_t)(bits >> (8 * i));
  for (size_t off = 0; off < total; off += 64) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
      w[i] = (uint32_t)m[off + 4 * i] << 24 | (uint32_t)m[off + 4 * i + 1] << 16 |
             (uint32_t)m[off + 4 * i + 2] << 8 | m[off + 4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
      uint32_t f, k;
      if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999u; }
      else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1u; }
      else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDCu; }
      else { f = b ^ c ^ d; k = 0xCA62C1D6u; }
      uint32_t t = rol32(a, 5) + f + e + k + w[i];
      e = d; d = c; c = rol32(b, 30); b = a; a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
  }
  free(m);
  for (int i = 0; i < 5; i++) {
    out[4 * i] = (uint8_t)(h[i] >> 24); out[4 * i + 1] = (uint8_t)(h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(h[i] >> 8); out[4 * i + 3] = (uint8_t)h[i];
  }
}

static void base64(const uint8_t* in, size_t len, char* out) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
    out[o++] = tbl[(v >> 18) & 63];
    out[o++] = tbl[(v >> 12) & 63];
    out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < len ? tbl[v & 63] : '=';
  }
  out[o] = 0;
}

static void random_bytes(void* buf, size_t len) {
  uint8_t* p = buf;
  while (len > 0) {
    ssize_t n = getrandom(p, len, 0);
    if (n < 0) { if (errno == EINTR) continue; perror("getrandom"); exit(1); }
    p += n; len -= (size_t)n;
  }
}

/* ---------------------------------------------------------------- state */

enum { ST_IDLE, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING, ST_DONE };

typedef struct conn {
  uv_tcp_t tcp;
  uv_connect_t creq;
  int idx;
  uint8_t state;
  uint8_t in_msg;        /* inside a fragmented data message */
  uint8_t close_sent;
  char key[25];
  char accept[29];       /* expected Sec-WebSocket-Accept */
  uint64_t start_ns;
  char* hbuf; size_t hlen;                 /* handshake response so far */
  uint8_t* pend; size_t plen, pcap;        /* partial frame */
} conn;

static struct {
  const char* host;
  int port;
  int n, conc;
  const char* path;
  int timeout_s;
  int src_ips;
  int hold_s;
  uint64_t expect;
  int control;
  int fixed_key; /* --fixed-key: RFC 6455's sample key, for floors that answer it with a fixed accept */
} opt = {"127.0.0.1", 0, 1000, 500, "/", 10, 1, 0, 0, 0, 0};

static uv_loop_t* loop;
static conn* conns;
static struct sockaddr_in server_addr;
static int next_idx, inflight, tried, ok_count, fail_count, open_now;
static int fail_connect, fail_status, fail_accept, fail_timeout, fail_reset;
static uint64_t connect_t0, connect_t1;
static int connect_reported;
static uint64_t msgs, bytes, first_ns, last_ns, pings, closes_rx, proto_errors, closed_by_server;
static uint64_t wait_count; static uint64_t wait_deadline; static int waiting;
static uv_timer_t ticker;
static uv_pipe_t stdin_pipe; static uv_tty_t stdin_tty; static uv_stream_t* stdin_stream;
static char cmdbuf[4096]; static size_t cmdlen;
static int closing_all; static uint64_t close_deadline;
static uint64_t rng_state;
static char read_buf[256 * 1024];

static uint32_t rand32(void) { /* xorshift64*, seeded from getrandom: mask keys */
  rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

static void out(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fflush(stdout);
}

static void launch_more(void);
static void conn_close(conn* c);

/* ---------------------------------------------------------------- writing */

typedef struct { uv_write_t req; size_t len; uint8_t data[]; } wreq;

static void on_write(uv_write_t* req, int status) { (void)status; free(req); }

static void send_bytes(conn* c, const uint8_t* data, size_t len) {
  if (c->state == ST_DONE || uv_is_closing((uv_handle_t*)&c->tcp)) return;
  uv_buf_t b = uv_buf_init((char*)data, (unsigned)len);
  int n = uv_try_write((uv_stream_t*)&c->tcp, &b, 1);
  if (n == (int)len) return;
  if (n < 0 && n != UV_EAGAIN) return; /* the read side will see the error */
  size_t done = n > 0 ? (size_t)n : 0;
  wreq* w = malloc(sizeof(wreq) + len - done);
  w->len = len - done;
  memcpy(w->data, data + done, len - done);
  b = uv_buf_init((char*)w->data, (unsigned)w->len);
  if (uv_write(&w->req, (uv_stream_t*)&c->tcp, &b, 1, on_write) != 0) free(w);
}

/* A masked client frame (payloads here are control frames: <= 125 bytes). */
static void send_frame(conn* c, uint8_t opcode, const uint8_t* payload, size_t len) {
  uint8_t f[2 + 4 + 125];
  if (len > 125) len = 125;
  f[0] = 0x80 | opcode;
  f[1] = 0x80 | (uint8_t)len;
  uint32_t mk = rand32();
  memcpy(f + 2, &mk, 4);
  for (size_t i = 0; i < len; i++) f[6 + i] = payload[i] ^ f[2 + (i & 3)];
  send_bytes(c, f, 6 + len);
}

static void send_close(conn* c, uint16_t code) {
  if (c->close_sent) return;
  c->close_sent = 1;
  uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
  send_frame(c, 0x8, p, 2);
}

/* ---------------------------------------------------------------- frames from the server */

static void print_stats(const char* tag, int timed_out);

static void count_message(uint64_t now) {
  msgs++;
  if (!first_ns) first_ns = now;
  last_ns = now;
  /* answer a pending `wait` at once, not at the next 10 ms tick: a driver that publishes one
   * message after the previous one was delivered everywhere would otherwise idle up to 10 ms */
  if (waiting && msgs >= wait_count) {
    waiting = 0;
    print_stats("WAIT", 0);
  }
}

/* Parses complete frames from data; returns the bytes consumed, or -1 on a protocol error. */
static long parse_frames(conn* c, const uint8_t* data, size_t len, uint64_t now) {
  size_t off = 0;
  while (len - off >= 2) {
    const uint8_t* f = data + off;
    int fin = f[0] & 0x80, opcode = f[0] & 0x0f, masked = f[1] & 0x80;
    uint64_t plen = f[1] & 0x7f;
    size_t hdr = 2;
    if (plen == 126) {
      if (len - off < 4) break;
      plen = (uint64_t)f[2] << 8 | f[3];
      hdr = 4;
    } else if (plen == 127) {
      if (len - off < 10) break;
      plen = 0;
      for (int i = 0; i < 8; i++) plen = plen << 8 | f[2 + i];
      hdr = 10;
    }
    if (masked || (f[0] & 0x70) || plen > (64u << 20)) return -1; /* servers never mask (§5.1) */
    if (len - off < hdr + plen) break;
    const uint8_t* p = f + hdr;
    switch (opcode) {
      case 0x0:
        if (!c->in_msg) return -1;
        bytes += plen;
        if (fin) { c->in_msg = 0; count_message(now); }
        break;
      case 0x1: case 0x2:
        if (c->in_msg) return -1;
        bytes += plen;
        if (fin) count_message(now); else c->in_msg = 1;
        break;
      case 0x8:
        closes_rx++;
        if (!c->close_sent) {  /* echo the code (RFC 6455 §5.5.1) */
          c->close_sent = 1;
          send_frame(c, 0x8, p, plen >= 2 ? 2 : 0);
        }
        c->state = ST_CLOSING;
        return -2;
      case 0x9: pings++; send_frame(c, 0xA, p, (size_t)plen); break;
      case 0xA: break;
      default: return -1;
    }
    off += hdr + (size_t)plen;
  }
  return (long)off;
}

static void on_frames(conn* c, const uint8_t* data, size_t len) {
  uint64_t now = uv_hrtime();
  long used;
  if (c->plen == 0) {
    used = parse_frames(c, data, len, now);
    if (used >= 0 && (size_t)used < len) {
      size_t rest = len - (size_t)used;
      if (rest > c->pcap) { c->pcap = rest < 4096 ? 4096 : rest; c->pend = realloc(c->pend, c->pcap); }
      memcpy(c->pend, data + used, rest);
      c->plen = rest;
    }
  } else {
    if (c->plen + len > c->pcap) {
      c->pcap = (c->plen + len) * 2;
      c->pend = realloc(c->pend, c->pcap);
    }
    memcpy(c->pend + c->plen, data, len);
    c->plen += len;
    used = parse_frames(c, c->pend, c->plen, now);
    if (used >= 0) {
      memmove(c->pend, c->pend + used, c->plen - (size_t)used);
      c->plen -= (size_t)used;
      if (c->plen == 0 && c->pcap > 65536) { free(c->pend); c->pend = NULL; c->pcap = 0; }
    }
  }
  if (used == -1) {
    proto_errors++;
    send_close(c, 1002);
    conn_close(c);
  } else if (used == -2) {
    /* server closed: it closes the TCP connection next; we stop reading meanwhile */
  }
}

/* ---------------------------------------------------------------- connection lifecycle */

static void handshake_done(conn* c, int ok) {
  inflight--;
  if (ok) { ok_count++; open_now++; c->state = ST_OPEN; }
  else fail_count++;
  free(c->hbuf); c->hbuf = NULL; c->hlen = 0;
  launch_more();
}

static void on_closed(uv_handle_t* h) {
  conn* c = h->data;
  free(c->pend); c->pend = NULL; c->plen = c->pcap = 0;
  free(c->hbuf); c->hbuf = NULL;
}

static void conn_close(conn* c) {
  if (c->state == ST_DONE) return;
  int was = c->state;
  c->state = ST_DONE;
  if (was == ST_OPEN || was == ST_CLOSING) open_now--;
  if (!uv_is_closing((uv_handle_t*)&c->tcp)) uv_close((uv_handle_t*)&c->tcp, on_closed);
}

static void fail(conn* c, int* reason) {
  (*reason)++;
  c->state = ST_DONE;
  if (!uv_is_closing((uv_handle_t*)&c->tcp)) uv_close((uv_handle_t*)&c->tcp, on_closed);
  handshake_done(c, 0);
}

static const char* find_header(const char* head, const char* name) {
  size_t nl = strlen(name);
  for (const char* p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
    if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
      const char* v = p + 3 + nl;
      while (*v == ' ' || *v == '\t') v++;
      return v;
    }
  }
  return NULL;
}

static void read_handshake(conn* c, const char* data, size_t len) {
  c->hbuf = realloc(c->hbuf, c->hlen + len + 1);
  memcpy(c->hbuf + c->hlen, data, len);
  c->hlen += len;
  c->hbuf[c->hlen] = 0;
  char* end = strstr(c->hbuf, "\r\n\r\n");
  if (!end) {
    if (c->hlen > 16384) fail(c, &fail_status);
    return;
  }
  *end = 0;
  if (strncmp(c->hbuf, "HTTP/1.1 101", 12) != 0) { fail(c, &fail_status); return; }
  const char* acc = find_header(c->hbuf, "Sec-WebSocket-Accept");
  if (!acc || strncmp(acc, c->accept, 28) != 0) { fail(c, &fail_accept); return; }
  size_t head_len = (size_t)(end - c->hbuf) + 4;
  size_t rest = c->hlen - head_len;
  char* restbuf = NULL;
  if (rest) { restbuf = malloc(rest); memcpy(restbuf, c->hbuf + head_len, rest); }
  handshake_done(c, 1);
  if (rest) { on_frames(c, (uint8_t*)restbuf, rest); free(restbuf); }
}

static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
  (void)h; (void)suggested;
  *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  conn* c = s->data;
  if (nread == 0) return;
  if (nread < 0) {
    if (c->state == ST_HANDSHAKE) { fail(c, &fail_reset); return; }
    if (c->state == ST_OPEN) closed_by_server++;
    conn_close(c);
    return;
  }
  if (c->state == ST_HANDSHAKE) read_handshake(c, buf->base, (size_t)nread);
  else if (c->state == ST_OPEN) on_frames(c, (uint8_t*)buf->base, (size_t)nread);
  /* ST_CLOSING: ignore data after the server's close frame until EOF */
}

static void on_connect(uv_connect_t* req, int status) {
  conn* c = req->data;
  if (c->state != ST_CONNECTING) return; /* timed out meanwhile */
  if (status < 0) { fail(c, &fail_connect); return; }
  char reqbuf[1024];
  int n = snprintf(reqbuf, sizeof reqbuf,
                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nUser-Agent: ws_bench\r\n\r\n",
                   opt.path, opt.host, opt.port, c->key);
  c->state = ST_HANDSHAKE;
  uv_read_start((uv_stream_t*)&c->tcp, on_alloc, on_read);
  send_bytes(c, (uint8_t*)reqbuf, (size_t)n);
}

static void start_conn(conn* c) {
  uint8_t k[16];
  random_bytes(k, sizeof k);
  base64(k, 16, c->key);
  if (opt.fixed_key) strcpy(c->key, "dGhlIHNhbXBsZSBub25jZQ==");
  char cat[64];
  snprintf(cat, sizeof cat, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", c->key);
  uint8_t dig[20];
  sha1((uint8_t*)cat, strlen(cat), dig);
  base64(dig, 20, c->accept);
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  c->creq.data = c;
  c->state = ST_CONNECTING;
  c->start_ns = uv_hrtime();
  if (opt.src_ips > 1) {
    struct sockaddr_in src;
    char ip[32];
    snprintf(ip, sizeof ip, "127.0.0.%d", 1 + c->idx % opt.src_ips);
    uv_ip4_addr(ip, 0, &src);
    uv_tcp_bind(&c->tcp, (struct sockaddr*)&src, 0);
  }
  uv_tcp_nodelay(&c->tcp, 1);
  int rc = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr*)&server_addr, on_connect);
  if (rc < 0) fail(c, &fail_connect);
}

static void report_connect(void) {
  connect_t1 = uv_hrtime();
  connect_reported = 1;
  double ms = (double)(connect_t1 - connect_t0) / 1e6;
  out("CONNECT ok=%d failed=%d elapsed_ms=%.1f rate=%.0f fail_connect=%d fail_status=%d fail_accept=%d "
      "fail_timeout=%d fail_reset=%d open=%d\n",
      ok_count, fail_count, ms, ms > 0 ? (ok_count + fail_count) / (ms / 1000.0) : 0.0, fail_connect,
      fail_status, fail_accept, fail_timeout, fail_reset, open_now);
}

static void launch_more(void) {
  while (inflight < opt.conc && next_idx < opt.n) {
    conn* c = &conns[next_idx++];
    inflight++;
    tried++;
    start_conn(c);
  }
  if (!connect_reported && next_idx >= opt.n && inflight == 0) report_connect();
}

/* ---------------------------------------------------------------- stats, control */

static void print_stats(const char* tag, int timed_out) {
  out("%s open=%d msgs=%llu bytes=%llu first_ns=%llu last_ns=%llu now_ns=%llu pings=%llu closes_rx=%llu "
      "closed_by_server=%llu proto_errors=%llu timed_out=%d\n",
      tag, open_now, (unsigned long long)msgs, (unsigned long long)bytes, (unsigned long long)first_ns,
      (unsigned long long)last_ns, (unsigned long long)uv_hrtime(), (unsigned long long)pings,
      (unsigned long long)closes_rx, (unsigned long long)closed_by_server, (unsigned long long)proto_errors,
      timed_out);
}

static void finish(int code) {
  /* Exit without tearing down 10k handles one by one: the kernel closes the sockets. */
  fflush(stdout);
  exit(code);
}

static void on_tick(uv_timer_t* t) {
  (void)t;
  uint64_t now = uv_hrtime();
  static uint64_t last_stats;
  if (!connect_reported) {
    uint64_t limit = (uint64_t)opt.timeout_s * 1000000000ull;
    for (int i = 0; i < next_idx; i++) {
      conn* c = &conns[i];
      if ((c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) && now - c->start_ns > limit) fail(c, &fail_timeout);
    }
  }
  if (waiting && (msgs >= wait_count || now >= wait_deadline)) {
    waiting = 0;
    print_stats("WAIT", msgs < wait_count);
  }
  if (closing_all && (open_now == 0 || now >= close_deadline)) {
    print_stats("CLOSED", open_now > 0);
    finish(0);
  }
  if (!opt.control && connect_reported) {
    if (opt.expect && msgs >= opt.expect) { print_stats("DONE", 0); finish(0); }
    if (now - last_stats >= 1000000000ull) { last_stats = now; print_stats("STATS", 0); }
    if (now - connect_t1 >= (uint64_t)opt.hold_s * 1000000000ull) {
      print_stats("DONE", opt.expect && msgs < opt.expect);
      finish(0);
    }
  }
}

static void run_command(char* line) {
  char cmd[32] = {0};
  unsigned long long a = 0, b = 0;
  int n = sscanf(line, "%31s %llu %llu", cmd, &a, &b);
  if (n < 1) return;
  if (!strcmp(cmd, "reset")) {
    msgs = bytes = first_ns = last_ns = 0;
    out("OK reset\n");
  } else if (!strcmp(cmd, "stats")) {
    print_stats("STATS", 0);
  } else if (!strcmp(cmd, "wait") && n == 3) {
    wait_count = a;
    wait_deadline = uv_hrtime() + b * 1000000ull;
    waiting = 1;
    if (msgs >= wait_count) { waiting = 0; print_stats("WAIT", 0); }
  } else if (!strcmp(cmd, "close")) {
    for (int i = 0; i < next_idx; i++)
      if (conns[i].state == ST_OPEN) { send_close(&conns[i], 1000); conns[i].state = ST_CLOSING; }
    closing_all = 1;
    close_deadline = uv_hrtime() + 5000000000ull;
  } else if (!strcmp(cmd, "quit")) {
    print_stats("QUIT", 0);
    finish(0);
  } else {
    out("ERR unknown command: %s\n", cmd);
  }
}

static void stdin_alloc(uv_handle_t* h, size_t s, uv_buf_t* buf) {
  (void)h; (void)s;
  *buf = uv_buf_init(cmdbuf + cmdlen, (unsigned)(sizeof cmdbuf - 1 - cmdlen));
}

static void stdin_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  (void)s; (void)buf;
  if (nread < 0) { print_stats("QUIT", 0); finish(0); }
  cmdlen += (size_t)nread;
  cmdbuf[cmdlen] = 0;
  char* nl;
  while ((nl = memchr(cmdbuf, '\n', cmdlen))) {
    *nl = 0;
    run_command(cmdbuf);
    size_t used = (size_t)(nl - cmdbuf) + 1;
    memmove(cmdbuf, cmdbuf + used, cmdlen - used);
    cmdlen -= used;
  }
  if (cmdlen >= sizeof cmdbuf - 1) cmdlen = 0;
}

static void raise_nofile(int need) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rlim_t want = (rlim_t)need + 1024;
  if (rl.rlim_cur >= want) return;
  struct rlimit nr = {want, rl.rlim_max > want ? rl.rlim_max : want};
  if (setrlimit(RLIMIT_NOFILE, &nr) != 0) {
    nr.rlim_cur = nr.rlim_max = rl.rlim_max;  /* not root: take what the hard limit allows */
    setrlimit(RLIMIT_NOFILE, &nr);
    fprintf(stderr, "ws_bench: RLIMIT_NOFILE could only be raised to %llu (wanted %llu)\n",
            (unsigned long long)rl.rlim_max, (unsigned long long)want);
  }
}

static void usage(void) {
  fprintf(stderr,
          "usage: ws_bench -p PORT [-H HOST] [-n N] [-c CONCURRENCY] [-P PATH] [-t TIMEOUT_S] [-s SRC_IPS]\n"
          "                [--hold SECONDS] [--expect MESSAGES] [--control] [--fixed-key]\n");
  exit(2);
}

int main(int argc, char** argv) {
  static struct option longopts[] = {{"hold", required_argument, 0, 1},
                                     {"expect", required_argument, 0, 2},
                                     {"control", no_argument, 0, 3},
                                     {"fixed-key", no_argument, 0, 4},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "H:p:n:c:P:t:s:h", longopts, NULL)) != -1) {
    switch (ch) {
      case 'H': opt.host = optarg; break;
      case 'p': opt.port = atoi(optarg); break;
      case 'n': opt.n = atoi(optarg); break;
      case 'c': opt.conc = atoi(optarg); break;
      case 'P': opt.path = optarg; break;
      case 't': opt.timeout_s = atoi(optarg); break;
      case 's': opt.src_ips = atoi(optarg); break;
      case 1: opt.hold_s = atoi(optarg); break;
      case 2: opt.expect = strtoull(optarg, NULL, 10); break;
      case 3: opt.control = 1; break;
      case 4: opt.fixed_key = 1; break;
      default: usage();
    }
  }
  if (opt.port <= 0 || opt.n <= 0 || opt.conc <= 0 || opt.src_ips < 1 || opt.src_ips > 254) usage();
  if (uv_ip4_addr(opt.host, opt.port, &server_addr) != 0) { fprintf(stderr, "bad host %s\n", opt.host); return 2; }
  raise_nofile(opt.n);
  random_bytes(&rng_state, sizeof rng_state);
  rng_state |= 1;
  loop = uv_default_loop();
  conns = calloc((size_t)opt.n, sizeof(conn));
  for (int i = 0; i < opt.n; i++) conns[i].idx = i;

  uv_timer_init(loop, &ticker);
  uv_timer_start(&ticker, on_tick, 10, 10);
  if (opt.control) {
    uv_handle_type t = uv_guess_handle(0);
    if (t == UV_TTY) { uv_tty_init(loop, &stdin_tty, 0, 1); stdin_stream = (uv_stream_t*)&stdin_tty; }
    else { uv_pipe_init(loop, &stdin_pipe, 0); uv_pipe_open(&stdin_pipe, 0); stdin_stream = (uv_stream_t*)&stdin_pipe; }
    uv_read_start(stdin_stream, stdin_alloc, stdin_read);
  }
  connect_t0 = uv_hrtime();
  launch_more();
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
