/*
 * queue_latency — client send -> consumer receipt latency of queue events at a steady rate, for
 * bench/queue_latency.py (issue 20: the disk queue's added latency).
 *
 * Usage:  queue_latency WS_PORT API_PORT CLIENTS RATE SECONDS WARMUP [SIZE]
 *   1. Connects one consumer to 127.0.0.1:API_PORT/ws/v1 ({"m":"queue.pop","p":{"t":["client"]}}),
 *      then CLIENTS WebSocket clients to 127.0.0.1:WS_PORT/, and waits for their CLIENTS "open" events.
 *   2. A sender thread writes RATE messages a second in all, for WARMUP + SECONDS seconds: every
 *      millisecond (absolute clock_nanosleep) the messages due by then, one masked text frame per
 *      write(), to the clients in turn (each client RATE / CLIENTS a second). A message is SIZE
 *      bytes (default 64): "@@" + CLOCK_MONOTONIC ns read just before its write() + "@@" + padding.
 *   3. The consumer (main thread) reads the events; each event's latency is the time after the read()
 *      that brought its last byte minus the time in it. Only messages sent after WARMUP count.
 *   4. A third thread asks GET /healthz on API_PORT (one keep-alive connection) every 10 ms and times
 *      each answer: the API is served by the hub loop, so this is how long the hub loop keeps a
 *      request waiting while the load runs.
 *   Prints one line of key=value (latencies in µs):
 *     sent= received= measured= p50_us= p90_us= p99_us= p999_us= max_us= mean_us=
 *     healthz_n= healthz_p50_us= healthz_p99_us= healthz_max_us=
 *   and exits 0, or 1 with a reason on stderr. Events still missing 10 s after the last send are
 *   reported (received < sent), not waited for.
 *
 * Build: make -C bench
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *why) {
  fprintf(stderr, "queue_latency: %s (%s)\n", why, strerror(errno));
  exit(1);
}

static void send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) die("write failed");
    p += w;
    n -= (size_t)w;
  }
}

static int tcp_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("cannot connect");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Connects and upgrades; what came after the 101 is left in buf (*len bytes).
static int ws_open(int port, const char *path, unsigned char *buf, size_t cap, size_t *len) {
  int fd = tcp_connect(port);
  char req[256];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   path, port);
  send_all(fd, req, (size_t)n);
  size_t got = 0;
  char *end = NULL;
  while (!end) {
    ssize_t r = read(fd, buf + got, cap - got - 1);
    if (r <= 0) die("closed during the upgrade");
    got += (size_t)r;
    buf[got] = 0;
    end = strstr((char *)buf, "\r\n\r\n");
  }
  if (strncmp((char *)buf, "HTTP/1.1 101", 12) != 0) die("upgrade refused");
  size_t head = (size_t)(end + 4 - (char *)buf);
  memmove(buf, buf + head, got - head);
  *len = got - head;
  return fd;
}

// A masked text frame (mask 0: the payload is as written) of a payload below 126 bytes.
static size_t text_frame(char *out, const char *payload, size_t n) {
  out[0] = (char)0x81;
  out[1] = (char)(0x80 | n);
  memset(out + 2, 0, 4);
  memcpy(out + 6, payload, n);
  return n + 6;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int *clients;
static long n_clients, rate, size;
static uint64_t start_ns, measure_ns, stop_ns;
static atomic_long sent;
static atomic_int sending_done;
static int api_port;

static void *sender(void *arg) {
  (void)arg;
  char payload[128], frame[140];
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  long turn = 0;
  for (;;) {
    uint64_t now = now_ns();
    if (now >= stop_ns) break;
    long due = (long)((double)(now - start_ns) * (double)rate / 1e9);
    while (atomic_load(&sent) < due) {
      uint64_t t = now_ns();
      int n = snprintf(payload, sizeof payload, "@@%llu@@", (unsigned long long)t);
      while (n < size) payload[n++] = 'x';
      size_t f = text_frame(frame, payload, (size_t)n);
      send_all(clients[turn], frame, f);
      turn = (turn + 1) % n_clients;
      atomic_fetch_add(&sent, 1);
    }
    next.tv_nsec += 1000000;
    if (next.tv_nsec >= 1000000000) {
      next.tv_nsec -= 1000000000;
      next.tv_sec++;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
  }
  atomic_store(&sending_done, 1);
  return NULL;
}

static uint64_t *hz;
static long hz_n, hz_cap;

static void *healthz(void *arg) {
  (void)arg;
  int fd = tcp_connect(api_port);
  const char req[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  char buf[4096];
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  while (!atomic_load(&sending_done)) {
    uint64_t t = now_ns();
    send_all(fd, req, sizeof req - 1);
    size_t got = 0;
    for (;;) {  // the answer's body is "ok\n"
      ssize_t r = read(fd, buf + got, sizeof buf - got - 1);
      if (r <= 0) die("healthz connection closed");
      got += (size_t)r;
      buf[got] = 0;
      if (strstr(buf, "\r\n\r\nok\n")) break;
    }
    uint64_t d = now_ns() - t;
    if (t >= measure_ns && hz_n < hz_cap) hz[hz_n++] = d;
    next.tv_nsec += 10000000;
    if (next.tv_nsec >= 1000000000) {
      next.tv_nsec -= 1000000000;
      next.tv_sec++;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
  }
  close(fd);
  return NULL;
}

#define PCT(a, n, p) ((double)(a)[(long)((double)((n) - 1) * (p))] / 1e3)

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: queue_latency WS_PORT API_PORT CLIENTS RATE SECONDS WARMUP [SIZE]\n");
    return 2;
  }
  int ws_port = atoi(argv[1]);
  api_port = atoi(argv[2]);
  n_clients = atol(argv[3]);
  rate = atol(argv[4]);
  double seconds = atof(argv[5]), warmup = atof(argv[6]);
  size = argc > 7 ? atol(argv[7]) : 64;
  if (n_clients < 1 || rate < 1 || seconds <= 0 || size < 24 || size > 120) {
    fprintf(stderr, "queue_latency: bad CLIENTS, RATE, SECONDS or SIZE (24 to 120)\n");
    return 2;
  }

  size_t cap = 4u << 20, len = 0;
  unsigned char *buf = malloc(cap);
  if (!buf) die("out of memory");
  int cfd = ws_open(api_port, "/ws/v1", buf, cap, &len);
  char call[] = "{\"m\":\"queue.pop\",\"p\":{\"t\":[\"client\"]},\"i\":1}", frame[80];
  send_all(cfd, frame, text_frame(frame, call, sizeof call - 1));

  clients = calloc((size_t)n_clients, sizeof *clients);
  unsigned char scratch[4096];
  for (long i = 0; i < n_clients; i++) {
    size_t l = 0;
    clients[i] = ws_open(ws_port, "/", scratch, sizeof scratch, &l);
  }

  const long max_lat = (long)((double)rate * (seconds + 1)) + 1000;
  uint64_t *lat = malloc(sizeof *lat * (size_t)max_lat);
  hz_cap = (long)(seconds * 100) + 100;
  hz = malloc(sizeof *hz * (size_t)hz_cap);
  if (!lat || !hz) die("out of memory");
  long opens = 0, events = 0, measured = 0;
  pthread_t st, ht;
  int started = 0;
  uint64_t give_up = 0;
  for (;;) {
    uint64_t t = now_ns();
    size_t pos = 0;
    while (len - pos >= 2) {  // every whole frame in buf
      size_t plen = buf[pos + 1] & 0x7f, hdr = 2;
      if (plen == 126) {
        if (len - pos < 4) break;
        plen = ((size_t)buf[pos + 2] << 8) | buf[pos + 3];
        hdr = 4;
      } else if (plen == 127) {
        if (len - pos < 10) break;
        plen = 0;
        for (int i = 0; i < 8; i++) plen = (plen << 8) | buf[pos + 2 + i];
        hdr = 10;
      }
      if (len - pos < hdr + plen) break;
      const unsigned char *p = buf + pos + hdr;
      if ((buf[pos] & 0x0f) == 8) die("the server closed the consumer");
      const unsigned char *m = memmem(p, plen, "@@", 2);
      if (m) {
        uint64_t ts = strtoull((const char *)m + 2, NULL, 10);
        events++;
        if (ts >= measure_ns && measured < max_lat) lat[measured++] = t - ts;
      } else if (memmem(p, plen, "\"open\"", 6)) {
        opens++;
      }
      pos += hdr + plen;
    }
    memmove(buf, buf + pos, len - pos);
    len -= pos;
    if (!started && opens >= n_clients) {
      start_ns = now_ns();
      measure_ns = start_ns + (uint64_t)(warmup * 1e9);
      stop_ns = measure_ns + (uint64_t)(seconds * 1e9);
      if (pthread_create(&st, NULL, sender, NULL) != 0 || pthread_create(&ht, NULL, healthz, NULL) != 0)
        die("pthread_create");
      started = 1;
    }
    if (started && atomic_load(&sending_done)) {
      if (events >= atomic_load(&sent)) break;
      if (!give_up) give_up = now_ns() + 10000000000ull;
      if (now_ns() > give_up) break;
    }
    if (len == cap) die("a frame larger than 4 MiB");
    struct pollfd pf = {.fd = cfd, .events = POLLIN};
    if (poll(&pf, 1, 100) < 0 && errno != EINTR) die("poll");
    if (!(pf.revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t r = read(cfd, buf + len, cap - len);
    if (r <= 0) die("the consumer's connection closed");
    len += (size_t)r;
  }
  pthread_join(st, NULL);
  pthread_join(ht, NULL);
  if (measured == 0) die("no event measured");
  uint64_t sum = 0;
  for (long i = 0; i < measured; i++) sum += lat[i];
  qsort(lat, (size_t)measured, sizeof *lat, cmp_u64);
  qsort(hz, (size_t)hz_n, sizeof *hz, cmp_u64);
  printf("sent=%ld received=%ld measured=%ld p50_us=%.0f p90_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f "
         "mean_us=%.0f",
         atomic_load(&sent), events, measured, PCT(lat, measured, 0.5), PCT(lat, measured, 0.9),
         PCT(lat, measured, 0.99), PCT(lat, measured, 0.999), (double)lat[measured - 1] / 1e3,
         (double)sum / (double)measured / 1e3);
  if (hz_n)
    printf(" healthz_n=%ld healthz_p50_us=%.0f healthz_p99_us=%.0f healthz_max_us=%.0f", hz_n, PCT(hz, hz_n, 0.5),
           PCT(hz, hz_n, 0.99), (double)hz[hz_n - 1] / 1e3);
  printf("\n");
  return 0;
}
