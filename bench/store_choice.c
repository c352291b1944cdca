/*
 * store_choice — what it costs to keep the disk-backed queue (issue 20) in a home-made append-only
 * log, in SQLite (WAL) or in LMDB: the measurement behind the choice of store.
 *
 * Every backend stores N events (an 8-byte sequence number, an 8-byte client id and a 100-byte
 * payload of pseudo-random bytes, built in memory before any timing starts) arriving in batches of
 * B events (one group-commit window: 2,000 events are ~2 ms at 1 M events/s), makes each batch
 * durable before the next one, then "consumes" them in batches of the same size, as a consumer's
 * acknowledgements would, making each consumed batch durable too. Backends:
 *   log            segment files of at most 64 MiB (a batch never spans two); a record is
 *                  u32 length + u32 CRC32C of the body (software, slicing-by-8) + body (seq,
 *                  client, payload: 116 bytes); a batch is one write() of all its records and one
 *                  fdatasync() (plus an fsync() of the directory when the batch opened a segment).
 *                  Consuming a batch is one 24-byte pwrite() of a cursor file (consumed seq,
 *                  segment, offset) and one fdatasync(); a segment whose last event is consumed is
 *                  unlinked.
 *   sqlite-full    SQLite, journal_mode=WAL, synchronous=FULL (durable at each commit); table
 *                  events(seq INTEGER PRIMARY KEY, client INTEGER, payload BLOB), one transaction
 *                  per batch with a prepared INSERT; consuming = one transaction per batch with a
 *                  prepared DELETE FROM events WHERE seq <= ?. Default page size, cache and
 *                  autocheckpoint (1,000 pages), so a commit may also run a checkpoint.
 *   sqlite-normal  the same with synchronous=NORMAL: the WAL is not synced at commit (only at
 *                  checkpoints): a power loss can lose the last commits. For comparison only.
 *   lmdb           LMDB, default environment flags (sync at commit), key = big-endian seq, value =
 *                  client + payload (108 bytes); one write transaction per batch, mdb_put with
 *                  MDB_APPEND (keys only grow); consuming = one write transaction per batch with
 *                  one mdb_del per event.
 *
 * Measured per run (store phase and consume phase separately):
 *   wall events/s        events / wall time of the phase (clock_gettime, CLOCK_MONOTONIC)
 *   CPU µs per event     getrusage(RUSAGE_SELF) user + system over the phase / events. Only this
 *                        process: the kernel's own writeback and journal threads (jbd2, kworker)
 *                        are not counted.
 *   commit p50/p99/max   latency of making one batch durable: log = write() + fdatasync() (the
 *                        cursor's pwrite() + fdatasync() when consuming); sqlite = the COMMIT step;
 *                        lmdb = mdb_txn_commit(). Building the batch (records and CRCs, the
 *                        INSERTs, the mdb_put calls) is before it and not in this figure.
 *   peak on disk         the largest sum of st_blocks * 512 of the run's files, sampled after every
 *                        commit of both phases; the sampling's own time and CPU are subtracted from
 *                        the phase.
 *   left after consume   the same sum once every event is consumed, before the store is closed.
 * Each backend runs R times, each in a fresh directory D/<backend>-<run>-<pid> (sync() before the
 * run), removed after it; the medians of every figure over the runs are printed last, as a
 * Markdown table. The load average is printed with each run.
 *
 *   store_choice [--events N] [--batch B] [--backend log|sqlite|lmdb|all] [--runs R] [--dir D]
 *   defaults: N = 1000000, B = 2000, all, R = 3, D = /var/tmp/store_choice
 *
 * Build: make -C bench store_choice (needs apt-get install libsqlite3-dev liblmdb-dev).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <lmdb.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD_LEN 100
#define BODY_LEN (8 + 8 + PAYLOAD_LEN) /* seq, client, payload */
#define REC_HDR 8                       /* u32 length + u32 CRC32C */
#define REC_LEN (REC_HDR + BODY_LEN)
#define SEGMENT_MAX (64u << 20)
#define NCLIENTS 100

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "store_choice: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static void put_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* ---- CRC32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-8 ---- */

static uint32_t crc_table[8][256];

static void crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

static uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        lo ^= crc;
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
              crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
              crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- small file helpers ---- */

static void write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("write: %s", strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
}

/* Bytes allocated on disk by the regular files of a flat directory. */
static uint64_t dir_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        die("opendir %s: %s", dir, strerror(errno));
    uint64_t sum = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            sum += (uint64_t)st.st_blocks * 512;
    }
    closedir(d);
    return sum;
}

/* Removes a flat directory made by this program (its files, then itself). */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) != 0)
            fprintf(stderr, "store_choice: unlink %s/%s: %s\n", dir, e->d_name, strerror(errno));
    }
    closedir(d);
    if (rmdir(dir) != 0)
        fprintf(stderr, "store_choice: rmdir %s: %s\n", dir, strerror(errno));
}

/* ---- the backends ---- */

struct backend {
    const char *name;
    void *(*open)(const char *dir, uint64_t nevents, uint32_t batch);
    /* Stores events [ev, ev + n) (bodies of BODY_LEN bytes); returns the commit latency (s). */
    double (*store)(void *st, const uint8_t *ev, uint32_t n);
    /* Consumes the n events up to and including seq `upto`; returns the commit latency (s). */
    double (*consume)(void *st, uint64_t upto, uint32_t n);
    void (*close)(void *st);
};

/* log */

struct segment {
    uint64_t first_seq, last_seq;
};

struct log_state {
    int dirfd, cur_fd, cursor_fd;
    uint64_t cur_size;
    struct segment *segs;
    size_t nsegs, cap_segs, first_live;
    uint8_t *buf;
};

static void seg_name(char *out, size_t cap, uint64_t first_seq)
{
    snprintf(out, cap, "%020" PRIu64 ".seg", first_seq);
}

static void *log_open(const char *dir, uint64_t nevents, uint32_t batch)
{
    (void)nevents;
    struct log_state *s = calloc(1, sizeof *s);
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0)
        die("open %s: %s", dir, strerror(errno));
    s->cur_fd = -1;
    s->buf = malloc((size_t)batch * REC_LEN);
    s->cursor_fd = openat(s->dirfd, "cursor", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (s->cursor_fd < 0)
        die("create cursor: %s", strerror(errno));
    uint8_t zero[24] = {0};
    if (pwrite(s->cursor_fd, zero, sizeof zero, 0) != (ssize_t)sizeof zero)
        die("pwrite cursor: %s", strerror(errno));
    if (fdatasync(s->cursor_fd) != 0 || fsync(s->dirfd) != 0)
        die("sync: %s", strerror(errno));
    return s;
}

static double log_store(void *st, const uint8_t *ev, uint32_t n)
{
    struct log_state *s = st;
    uint8_t *p = s->buf;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *body = ev + (size_t)i * BODY_LEN;
        put_u32le(p, BODY_LEN);
        put_u32le(p + 4, crc32c(0, body, BODY_LEN));
        memcpy(p + REC_HDR, body, BODY_LEN);
        p += REC_LEN;
    }
    size_t len = (size_t)(p - s->buf);
    uint64_t first = get_u64le(ev), last = get_u64le(ev + (size_t)(n - 1) * BODY_LEN);

    double t0 = now_s();
    int new_segment = 0;
    if (s->cur_fd < 0 || s->cur_size + len > SEGMENT_MAX) {
        if (s->cur_fd >= 0)
            close(s->cur_fd); /* everything in it is already synced */
        char name[64];
        seg_name(name, sizeof name, first);
        s->cur_fd = openat(s->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
        if (s->cur_fd < 0)
            die("create %s: %s", name, strerror(errno));
        s->cur_size = 0;
        if (s->nsegs == s->cap_segs) {
            s->cap_segs = s->cap_segs ? 2 * s->cap_segs : 16;
            s->segs = realloc(s->segs, s->cap_segs * sizeof *s->segs);
        }
        s->segs[s->nsegs++] = (struct segment){first, last};
        new_segment = 1;
    }
    write_all(s->cur_fd, s->buf, len);
    if (fdatasync(s->cur_fd) != 0)
        die("fdatasync: %s", strerror(errno));
    if (new_segment && fsync(s->dirfd) != 0) /* the new segment's directory entry */
        die("fsync dir: %s", strerror(errno));
    double dt = now_s() - t0;
    s->cur_size += len;
    s->segs[s->nsegs - 1].last_seq = last;
    return dt;
}

static double log_consume(void *st, uint64_t upto, uint32_t n)
{
    (void)n;
    struct log_state *s = st;
    /* The segment holding `upto` and the offset just past its record. A consumer knows the offset
     * from the records it read; here every record has the same length. */
    size_t i = s->first_live;
    while (i < s->nsegs && s->segs[i].last_seq < upto)
        i++;
    if (i == s->nsegs)
        die("consume past the end (seq %" PRIu64 ")", upto);
    uint8_t cur[24];
    put_u64le(cur, upto);
    put_u64le(cur + 8, s->segs[i].first_seq);
    put_u64le(cur + 16, (upto - s->segs[i].first_seq + 1) * REC_LEN);

    double t0 = now_s();
    if (pwrite(s->cursor_fd, cur, sizeof cur, 0) != (ssize_t)sizeof cur)
        die("pwrite cursor: %s", strerror(errno));
    if (fdatasync(s->cursor_fd) != 0)
        die("fdatasync cursor: %s", strerror(errno));
    double dt = now_s() - t0;

    /* Whole segments now consumed go; the cursor is durable first, so a segment that survives a
     * crash (its unlink not yet on disk) is skipped at restart. The store phase is over, so the
     * last segment goes too once consumed. */
    while (s->first_live < s->nsegs && s->segs[s->first_live].last_seq <= upto) {
        if (s->first_live == s->nsegs - 1 && s->cur_fd >= 0) {
            close(s->cur_fd);
            s->cur_fd = -1;
        }
        char name[64];
        seg_name(name, sizeof name, s->segs[s->first_live].first_seq);
        if (unlinkat(s->dirfd, name, 0) != 0)
            die("unlink %s: %s", name, strerror(errno));
        s->first_live++;
    }
    return dt;
}

static void log_close(void *st)
{
    struct log_state *s = st;
    if (s->cur_fd >= 0)
        close(s->cur_fd);
    close(s->cursor_fd);
    close(s->dirfd);
    free(s->segs);
    free(s->buf);
    free(s);
}

/* sqlite */

struct sqlite_state {
    sqlite3 *db;
    sqlite3_stmt *begin, *commit, *ins, *del;
};

static void sq_check(sqlite3 *db, int rc, int want, const char *what)
{
    if (rc != want)
        die("sqlite %s: %s (%d)", what, sqlite3_errmsg(db), rc);
}

static void sq_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        die("sqlite %s: %s", sql, err ? err : "?");
}

static void *sqlite_open_sync(const char *dir, const char *sync)
{
    struct sqlite_state *s = calloc(1, sizeof *s);
    char path[4096];
    snprintf(path, sizeof path, "%s/queue.db", dir);
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    sq_check(s->db, rc, SQLITE_OK, "open");
    sq_exec(s->db, "PRAGMA journal_mode=WAL");
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA synchronous=%s", sync);
    sq_exec(s->db, pragma);
    sq_exec(s->db, "CREATE TABLE events (seq INTEGER PRIMARY KEY, client INTEGER NOT NULL, payload BLOB NOT NULL)");
    sq_check(s->db, sqlite3_prepare_v2(s->db, "BEGIN", -1, &s->begin, NULL), SQLITE_OK, "prepare");
    sq_check(s->db, sqlite3_prepare_v2(s->db, "COMMIT", -1, &s->commit, NULL), SQLITE_OK, "prepare");
    sq_check(s->db, sqlite3_prepare_v2(s->db, "INSERT INTO events (seq, client, payload) VALUES (?, ?, ?)", -1, &s->ins, NULL),
             SQLITE_OK, "prepare");
    sq_check(s->db, sqlite3_prepare_v2(s->db, "DELETE FROM events WHERE seq <= ?", -1, &s->del, NULL), SQLITE_OK,
             "prepare");
    return s;
}

static void *sqlite_open_full(const char *dir, uint64_t nevents, uint32_t batch)
{
    (void)nevents;
    (void)batch;
    return sqlite_open_sync(dir, "FULL");
}

static void *sqlite_open_normal(const char *dir, uint64_t nevents, uint32_t batch)
{
    (void)nevents;
    (void)batch;
    return sqlite_open_sync(dir, "NORMAL");
}

static void sq_step(struct sqlite_state *s, sqlite3_stmt *st, const char *what)
{
    sq_check(s->db, sqlite3_step(st), SQLITE_DONE, what);
    sqlite3_reset(st);
}

static double sqlite_commit(struct sqlite_state *s)
{
    double t0 = now_s();
    sq_step(s, s->commit, "COMMIT");
    return now_s() - t0;
}

static double sqlite_store(void *st, const uint8_t *ev, uint32_t n)
{
    struct sqlite_state *s = st;
    sq_step(s, s->begin, "BEGIN");
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *body = ev + (size_t)i * BODY_LEN;
        sqlite3_bind_int64(s->ins, 1, (sqlite3_int64)get_u64le(body));
        sqlite3_bind_int64(s->ins, 2, (sqlite3_int64)get_u64le(body + 8));
        sqlite3_bind_blob(s->ins, 3, body + 16, PAYLOAD_LEN, SQLITE_STATIC);
        sq_step(s, s->ins, "INSERT");
    }
    return sqlite_commit(s);
}

static double sqlite_consume(void *st, uint64_t upto, uint32_t n)
{
    struct sqlite_state *s = st;
    sq_step(s, s->begin, "BEGIN");
    sqlite3_bind_int64(s->del, 1, (sqlite3_int64)upto);
    sq_step(s, s->del, "DELETE");
    if ((uint32_t)sqlite3_changes(s->db) != n)
        die("DELETE removed %d rows, expected %u", sqlite3_changes(s->db), n);
    return sqlite_commit(s);
}

static void sqlite_close(void *st)
{
    struct sqlite_state *s = st;
    sqlite3_finalize(s->begin);
    sqlite3_finalize(s->commit);
    sqlite3_finalize(s->ins);
    sqlite3_finalize(s->del);
    sq_check(s->db, sqlite3_close(s->db), SQLITE_OK, "close");
    free(s);
}

/* lmdb */

struct lmdb_state {
    MDB_env *env;
    MDB_dbi dbi;
};

static void mdb_check(int rc, const char *what)
{
    if (rc != MDB_SUCCESS)
        die("lmdb %s: %s", what, mdb_strerror(rc));
}

static void put_u64be(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static void *lmdb_open(const char *dir, uint64_t nevents, uint32_t batch)
{
    (void)batch;
    struct lmdb_state *s = calloc(1, sizeof *s);
    mdb_check(mdb_env_create(&s->env), "env_create");
    /* The map is address space, not disk: ~4x the data, plus room for copy-on-write. */
    mdb_check(mdb_env_set_mapsize(s->env, (size_t)nevents * 512 + ((size_t)1 << 30)), "set_mapsize");
    mdb_check(mdb_env_open(s->env, dir, 0, 0644), "env_open");
    MDB_txn *txn;
    mdb_check(mdb_txn_begin(s->env, NULL, 0, &txn), "txn_begin");
    mdb_check(mdb_dbi_open(txn, NULL, 0, &s->dbi), "dbi_open");
    mdb_check(mdb_txn_commit(txn), "txn_commit");
    return s;
}

static double lmdb_store(void *st, const uint8_t *ev, uint32_t n)
{
    struct lmdb_state *s = st;
    MDB_txn *txn;
    mdb_check(mdb_txn_begin(s->env, NULL, 0, &txn), "txn_begin");
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *body = ev + (size_t)i * BODY_LEN;
        uint8_t kb[8];
        put_u64be(kb, get_u64le(body));
        MDB_val k = {sizeof kb, kb};
        MDB_val v = {BODY_LEN - 8, (void *)(body + 8)}; /* client + payload */
        mdb_check(mdb_put(txn, s->dbi, &k, &v, MDB_APPEND), "put");
    }
    double t0 = now_s();
    mdb_check(mdb_txn_commit(txn), "txn_commit");
    return now_s() - t0;
}

static double lmdb_consume(void *st, uint64_t upto, uint32_t n)
{
    struct lmdb_state *s = st;
    MDB_txn *txn;
    mdb_check(mdb_txn_begin(s->env, NULL, 0, &txn), "txn_begin");
    for (uint64_t seq = upto - n + 1; seq <= upto; seq++) {
        uint8_t kb[8];
        put_u64be(kb, seq);
        MDB_val k = {sizeof kb, kb};
        mdb_check(mdb_del(txn, s->dbi, &k, NULL), "del");
    }
    double t0 = now_s();
    mdb_check(mdb_txn_commit(txn), "txn_commit");
    return now_s() - t0;
}

static void lmdb_close(void *st)
{
    struct lmdb_state *s = st;
    mdb_env_close(s->env);
    free(s);
}

static const struct backend backends[] = {
    {"log", log_open, log_store, log_consume, log_close},
    {"sqlite-full", sqlite_open_full, sqlite_store, sqlite_consume, sqlite_close},
    {"sqlite-normal", sqlite_open_normal, sqlite_store, sqlite_consume, sqlite_close},
    {"lmdb", lmdb_open, lmdb_store, lmdb_consume, lmdb_close},
};
#define NBACKENDS (sizeof backends / sizeof backends[0])

/* ---- running and reporting ---- */

enum {
    M_STORE_EPS,
    M_STORE_CPU,
    M_STORE_P50,
    M_STORE_P99,
    M_STORE_MAX,
    M_CONS_EPS,
    M_CONS_CPU,
    M_CONS_P50,
    M_CONS_P99,
    M_CONS_MAX,
    M_PEAK,
    M_LEFT,
    M_COUNT
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double percentile(const double *v, size_t n, double p)
{
    double r = p * (double)n;
    size_t rank = (size_t)r;
    if ((double)rank < r)
        rank++;
    if (rank < 1)
        rank = 1;
    return v[rank - 1];
}

static double loadavg1(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

struct sampler {
    uint64_t peak;
    double wall, cpu; /* spent sampling, subtracted from the phase */
};

static void sample_disk(struct sampler *sm, const char *dir)
{
    double w0 = now_s(), c0 = cpu_s();
    uint64_t b = dir_bytes(dir);
    if (b > sm->peak)
        sm->peak = b;
    sm->cpu += cpu_s() - c0;
    sm->wall += now_s() - w0;
}

static void run_one(const struct backend *be, const char *dir, const uint8_t *events, uint64_t nevents,
                    uint32_t batch, double *m)
{
    if (mkdir(dir, 0755) != 0)
        die("mkdir %s: %s", dir, strerror(errno));
    sync();
    size_t nbatches = (size_t)((nevents + batch - 1) / batch);
    double *lat = malloc(nbatches * sizeof *lat);
    struct sampler sm = {0, 0, 0};
    void *st = be->open(dir, nevents, batch);

    double w0 = now_s(), c0 = cpu_s();
    for (size_t b = 0; b < nbatches; b++) {
        uint64_t first = (uint64_t)b * batch;
        uint32_t n = (uint32_t)(nevents - first < batch ? nevents - first : batch);
        lat[b] = be->store(st, events + first * BODY_LEN, n);
        sample_disk(&sm, dir);
    }
    double wall = now_s() - w0 - sm.wall, cpu = cpu_s() - c0 - sm.cpu;
    m[M_STORE_EPS] = (double)nevents / wall;
    m[M_STORE_CPU] = cpu * 1e6 / (double)nevents;
    qsort(lat, nbatches, sizeof *lat, cmp_double);
    m[M_STORE_P50] = percentile(lat, nbatches, 0.50) * 1e3;
    m[M_STORE_P99] = percentile(lat, nbatches, 0.99) * 1e3;
    m[M_STORE_MAX] = lat[nbatches - 1] * 1e3;

    sm.wall = sm.cpu = 0;
    w0 = now_s();
    c0 = cpu_s();
    for (size_t b = 0; b < nbatches; b++) {
        uint64_t first = (uint64_t)b * batch;
        uint32_t n = (uint32_t)(nevents - first < batch ? nevents - first : batch);
        lat[b] = be->consume(st, first + n, n); /* seqs start at 1 */
        sample_disk(&sm, dir);
    }
    wall = now_s() - w0 - sm.wall;
    cpu = cpu_s() - c0 - sm.cpu;
    m[M_CONS_EPS] = (double)nevents / wall;
    m[M_CONS_CPU] = cpu * 1e6 / (double)nevents;
    qsort(lat, nbatches, sizeof *lat, cmp_double);
    m[M_CONS_P50] = percentile(lat, nbatches, 0.50) * 1e3;
    m[M_CONS_P99] = percentile(lat, nbatches, 0.99) * 1e3;
    m[M_CONS_MAX] = lat[nbatches - 1] * 1e3;
    m[M_PEAK] = (double)sm.peak / (1024.0 * 1024.0);
    m[M_LEFT] = (double)dir_bytes(dir) / (1024.0 * 1024.0);

    be->close(st);
    free(lat);
    remove_dir(dir);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void usage(void)
{
    fprintf(stderr, "usage: store_choice [--events N] [--batch B] [--backend log|sqlite|lmdb|all] [--runs R] [--dir D]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    uint64_t nevents = 1000000;
    uint32_t batch = 2000;
    const char *which = "all", *base = "/var/tmp/store_choice";
    int runs = 3;
    static const struct option opts[] = {
        {"events", required_argument, NULL, 'n'}, {"batch", required_argument, NULL, 'b'},
        {"backend", required_argument, NULL, 'k'}, {"runs", required_argument, NULL, 'r'},
        {"dir", required_argument, NULL, 'd'},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': nevents = strtoull(optarg, NULL, 10); break;
        case 'b': batch = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'k': which = optarg; break;
        case 'r': runs = atoi(optarg); break;
        case 'd': base = optarg; break;
        default: usage();
        }
    }
    if (optind != argc || nevents == 0 || batch == 0 || runs < 1 || runs > 64)
        usage();
    int selected[NBACKENDS] = {0};
    for (size_t i = 0; i < NBACKENDS; i++)
        selected[i] = strcmp(which, "all") == 0 || strcmp(which, backends[i].name) == 0 ||
                      (strcmp(which, "sqlite") == 0 && strncmp(backends[i].name, "sqlite-", 7) == 0);
    int any = 0;
    for (size_t i = 0; i < NBACKENDS; i++)
        any |= selected[i];
    if (!any)
        usage();

    crc32c_init();
    if (crc32c(0, "123456789", 9) != 0xE3069283u)
        die("CRC32C self-test failed");

    /* The events, built before any timing: seq from 1, client = seq % 100, payload pseudo-random. */
    uint8_t *events = malloc((size_t)nevents * BODY_LEN);
    if (!events)
        die("out of memory for %" PRIu64 " events", nevents);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (uint64_t i = 0; i < nevents; i++) {
        uint8_t *b = events + i * BODY_LEN;
        put_u64le(b, i + 1);
        put_u64le(b + 8, (i + 1) % NCLIENTS);
        for (int j = 0; j < PAYLOAD_LEN; j += 4) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            put_u32le(b + 16 + j, (uint32_t)x);
        }
    }

    if (mkdir(base, 0755) != 0 && errno != EEXIST)
        die("mkdir %s: %s", base, strerror(errno));
    printf("store_choice: %" PRIu64 " events of %d bytes (seq, client, %d-byte payload), batch %u, %d runs, in %s\n",
           nevents, BODY_LEN, PAYLOAD_LEN, batch, runs, base);
    printf("sqlite %s, lmdb %s\n", sqlite3_libversion(), mdb_version(NULL, NULL, NULL));

    double med[NBACKENDS][M_COUNT];
    for (size_t i = 0; i < NBACKENDS; i++) {
        if (!selected[i])
            continue;
        double all[M_COUNT][64];
        int r;
        for (r = 0; r < runs; r++) {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s/%s-%d-%d", base, backends[i].name, r + 1, (int)getpid());
            double l = loadavg1();
            double m[M_COUNT];
            run_one(&backends[i], dir, events, nevents, batch, m);
            for (int k = 0; k < M_COUNT; k++)
                all[k][r] = m[k];
            printf("%-13s run %d (load %.2f): store %.0f ev/s, %.3f us/ev CPU, commit p50 %.3f p99 %.3f max %.3f ms; "
                   "consume %.0f ev/s, %.3f us/ev CPU, commit p50 %.3f p99 %.3f max %.3f ms; peak %.1f MiB, left %.1f MiB\n",
                   backends[i].name, r + 1, l, m[M_STORE_EPS], m[M_STORE_CPU], m[M_STORE_P50], m[M_STORE_P99],
                   m[M_STORE_MAX], m[M_CONS_EPS], m[M_CONS_CPU], m[M_CONS_P50], m[M_CONS_P99], m[M_CONS_MAX],
                   m[M_PEAK], m[M_LEFT]);
            fflush(stdout);
        }
        for (int k = 0; k < M_COUNT; k++)
            med[i][k] = median(all[k], r);
    }
    rmdir(base); /* only if empty: another run may share it */

    printf("\nmedians of %d runs, %" PRIu64 " events, batch %u:\n\n", runs, nevents, batch);
    printf("| backend | store events/s | store CPU µs/event | commit p50 / p99 / max ms | consume events/s | "
           "consume CPU µs/event | consume commit p50 / p99 / max ms | peak on disk MiB | left after consume MiB |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < NBACKENDS; i++) {
        if (!selected[i])
            continue;
        const double *m = med[i];
        printf("| %s | %.0f | %.2f | %.2f / %.2f / %.1f | %.0f | %.2f | %.2f / %.2f / %.1f | %.1f | %.1f |\n", backends[i].name,
               m[M_STORE_EPS], m[M_STORE_CPU], m[M_STORE_P50], m[M_STORE_P99], m[M_STORE_MAX], m[M_CONS_EPS],
               m[M_CONS_CPU], m[M_CONS_P50], m[M_CONS_P99], m[M_CONS_MAX], m[M_PEAK], m[M_LEFT]);
    }
    free(events);
    return 0;
}
