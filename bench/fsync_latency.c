/*
 * fsync_latency — how long one fdatasync takes on a directory's filesystem (issue 20: the disk queue's
 * window of loss on a power cut is its fsync interval plus one sync).
 *
 * Usage:  fsync_latency DIR [COUNT [BYTES [MODE]]]
 *   In a fresh file DIR/fsync_latency.<pid> (removed at the end), COUNT times (default 1000): write
 *   BYTES (default 4096) and fdatasync. MODE:
 *     append     (default) each write goes at the end: the file grows, as the queue's log segments do,
 *                so each sync also commits the new size (an ext4 journal commit)
 *     overwrite  the file is first written to its full size and synced; then each write goes over
 *                a block already allocated, so each sync flushes data only
 *   Prints one line:  mode=... bytes=... count=... p50_us=... p90_us=... p99_us=... max_us=... mean_us=...
 *   where each figure is the time of the write + fdatasync pair (the write to the page cache is a
 *   few µs of it), CLOCK_MONOTONIC.
 *
 * Build: make -C bench
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void die(const char *what) {
  fprintf(stderr, "fsync_latency: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void write_at(int fd, const char *buf, size_t n, off_t off) {
  if (pwrite(fd, buf, n, off) != (ssize_t)n) die("pwrite");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: fsync_latency DIR [COUNT [BYTES [append|overwrite]]]\n");
    return 2;
  }
  const long count = argc > 2 ? atol(argv[2]) : 1000;
  const size_t bytes = argc > 3 ? (size_t)atol(argv[3]) : 4096;
  const char *mode = argc > 4 ? argv[4] : "append";
  const int overwrite = strcmp(mode, "overwrite") == 0;
  if (count < 1 || bytes < 1 || (!overwrite && strcmp(mode, "append") != 0)) {
    fprintf(stderr, "fsync_latency: bad COUNT, BYTES or MODE\n");
    return 2;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/fsync_latency.%d", argv[1], (int)getpid());
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) die(path);
  char *buf = malloc(bytes);
  uint64_t *t = malloc(sizeof *t * (size_t)count);
  if (!buf || !t) die("malloc");
  memset(buf, 'x', bytes);
  if (overwrite) {
    for (long i = 0; i < count; i++) write_at(fd, buf, bytes, (off_t)i * (off_t)bytes);
    if (fsync(fd) != 0) die("fsync");
  }
  for (long i = 0; i < count; i++) {
    buf[0] = (char)i;
    uint64_t a = now_ns();
    write_at(fd, buf, bytes, (off_t)i * (off_t)bytes);
    if (fdatasync(fd) != 0) die("fdatasync");
    t[i] = now_ns() - a;
  }
  close(fd);
  unlink(path);
  uint64_t sum = 0;
  for (long i = 0; i < count; i++) sum += t[i];
  qsort(t, (size_t)count, sizeof *t, cmp_u64);
#define PCT(p) ((double)t[(long)((double)(count - 1) * (p))] / 1e3)
  printf("mode=%s bytes=%zu count=%ld p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f mean_us=%.0f\n", mode, bytes,
         count, PCT(0.50), PCT(0.90), PCT(0.99), (double)t[count - 1] / 1e3, (double)sum / (double)count / 1e3);
  return 0;
}
