/*
 * queue_consumer — a /ws/v1 queue consumer that keeps up with the server, for bench/queue_rate.py.
 *
 * The Python consumer queue_rate.py used before reads about 400k events/s: slower than meshgate
 * sends them, so the server's output to it grew to ~100 MB during a run and the page faults of that
 * growth were most of the "server CPU per event". This one (libc only, blocking socket, 4 MiB reads)
 * walks the frame headers and looks for `"frame"` / `"open"` in each payload, nothing more.
 *
 * Usage:  queue_consumer PORT OPENS EVENTS [BURSTS [TOPIC]]
 *   connects to 127.0.0.1:PORT/ws/v1, sends {"m":"queue.pop","p":{"t":[TOPIC]},"i":1} (TOPIC
 *   defaults to "client"), then prints on stdout, one line each:
 *     OPENS n                   once n >= OPENS "open" events arrived (the driver starts its load)
 *     DONE events=N last_ns=T   each time another EVENTS message events arrived (BURSTS times,
 *                               default 1); T is CLOCK_MONOTONIC (the clock of Python's
 *                               time.monotonic_ns) when the last of them was read
 *   and exits 0 after the last. Exits 1 with a reason on stderr when the connection fails or closes
 *   first.
 *
 * Build: make -C bench
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
  fprintf(stderr, "queue_consumer: %s\n", why);
  exit(1);
}

static void send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) die("write failed");
    p += w;
    n -= (size_t)w;
  }
}

int main(int argc, char **argv) {
  if (argc < 4) die("usage: queue_consumer PORT OPENS EVENTS [BURSTS [TOPIC]]");
  int port = atoi(argv[1]);
  long want_opens = atol(argv[2]), per_burst = atol(argv[3]);
  long bursts = argc > 4 ? atol(argv[4]) : 1, want_events = per_burst;
  const char *topic = argc > 5 ? argv[5] : "client";

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("cannot connect");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  char req[256];
  int n = snprintf(req, sizeof req,
                   "GET /ws/v1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   port);
  send_all(fd, req, (size_t)n);

  size_t cap = 4u << 20, len = 0;
  unsigned char *buf = malloc(cap);
  if (!buf) die("out of memory");
  char *head_end = NULL;
  while (!head_end) {  // the 101 answer; whatever follows it stays in buf
    ssize_t r = read(fd, buf + len, cap - len - 1);
    if (r <= 0) die("closed during the upgrade");
    len += (size_t)r;
    buf[len] = 0;
    head_end = strstr((char *)buf, "\r\n\r\n");
  }
  if (strncmp((char *)buf, "HTTP/1.1 101", 12) != 0) die("upgrade refused");
  size_t head = (size_t)(head_end + 4 - (char *)buf);
  memmove(buf, buf + head, len - head);
  len -= head;

  // The queue.pop call, as one masked text frame (mask 0: the payload is unchanged).
  char call[200], frame[210];
  int cn = snprintf(call, sizeof call, "{\"m\":\"queue.pop\",\"p\":{\"t\":[\"%s\"]},\"i\":1}", topic);
  if (cn < 0 || cn > 125) die("topic too long");
  frame[0] = (char)0x81;
  frame[1] = (char)(0x80 | cn);
  memset(frame + 2, 0, 4);
  memcpy(frame + 6, call, (size_t)cn);
  send_all(fd, frame, (size_t)cn + 6);

  long opens = 0, events = 0;
  int opens_told = 0;
  for (;;) {
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
      if ((buf[pos] & 0x0f) == 8) die("the server closed the connection");
      if (memmem(p, plen, "\"frame\"", 7)) events++;
      else if (memmem(p, plen, "\"open\"", 6)) opens++;
      pos += hdr + plen;
    }
    memmove(buf, buf + pos, len - pos);
    len -= pos;
    if (!opens_told && opens >= want_opens) {
      printf("OPENS %ld\n", opens);
      fflush(stdout);
      opens_told = 1;
    }
    if (events >= want_events) {
      printf("DONE events=%ld last_ns=%llu\n", events, (unsigned long long)now_ns());
      fflush(stdout);
      if (--bursts == 0) return 0;
      want_events += per_burst;
    }
    if (len == cap) die("a frame larger than 4 MiB");
    ssize_t r = read(fd, buf + len, cap - len);
    if (r <= 0) die("the connection closed");
    len += (size_t)r;
  }
}
