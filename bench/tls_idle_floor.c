/*
 * tls_idle_floor — the least server memory this OpenSSL needs per idle TLS connection (issue 21).
 *
 * Usage:  tls_idle_floor [N [TLS_VERSION [TICKETS]]]
 *   N            idle connections to hold (default 3000)
 *   TLS_VERSION  13 (default) or 12: the highest version the server offers
 *   TICKETS      session tickets the server sends after a TLS 1.3 handshake (default 2, OpenSSL's
 *                and meshgate's default; 0 sends none)
 *
 * The server side is held as cheaply as OpenSSL allows, the way meshgate holds it: one SSL_CTX with
 * the certificate (a self-signed EC P-256 one, made in memory), SSL_MODE_RELEASE_BUFFERS, and one
 * pair of memory BIOs for the whole process, lent to a connection's SSL only while it is being
 * driven and taken away after, so an idle connection is its SSL object and nothing else. Each
 * connection does what a wss client does before it goes idle: a full handshake and one exchange of
 * application data (a 200-byte request, a 130-byte answer: the WebSocket upgrade's size).
 *
 * The clients are a child process (forked before anything is measured, blocking OpenSSL client
 * sockets over loopback, one connection after the other) so that none of their memory counts. The
 * parent reads its own VmRSS and RssAnon (/proc/self/status) after 20 warm-up connections (opened and
 * freed, so code and library pages first touched by a connection count at rest) and again with N
 * connections idle, and prints (idle - rest) / N. Sockets are kernel memory: not in RSS.
 *
 * Prints one line:  conns=... tls=1.3 tickets=2 rest_rss_kb=... idle_rss_kb=... bytes_per_conn_rss=...
 *                   bytes_per_conn_anon=...
 * For the heap profile: heaptrack results/bin/tls_idle_floor 500, then heaptrack_print --print-peaks.
 *
 * Build: make -C bench tls_idle_floor   (needs libssl-dev)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static BIO *g_in, *g_out; /* the process's two memory BIOs */

static void die(const char *what) {
  fprintf(stderr, "tls_idle_floor: %s\n", what);
  ERR_print_errors_fp(stderr);
  exit(1);
}

static long status_kb(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  size_t k = strlen(key);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, key, k) == 0 && line[k] == ':') v = atol(line + k + 1);
  if (f) fclose(f);
  return v;
}

static SSL_CTX *server_ctx(int version, int tickets) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  X509 *x = X509_new();
  if (!ctx || !pkey || !x) die("context");
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
  X509_set_pubkey(x, pkey);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  if (X509_sign(x, pkey, EVP_sha256()) <= 0 || SSL_CTX_use_certificate(ctx, x) != 1 || SSL_CTX_use_PrivateKey(ctx, pkey) != 1)
    die("certificate");
  X509_free(x);
  EVP_PKEY_free(pkey);
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, version == 12 ? TLS1_2_VERSION : TLS1_3_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_num_tickets(ctx, (size_t)tickets);
  return ctx;
}

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) die("write");
    p += w;
    n -= (size_t)w;
  }
}

/* Lends the shared BIOs to `ssl` (SSL_set0_* take one reference each; the process keeps its own). */
static void lend(SSL *ssl) {
  BIO_up_ref(g_in);
  BIO_up_ref(g_out);
  SSL_set0_rbio(ssl, g_in);
  SSL_set0_wbio(ssl, g_out);
}

static void take_back(SSL *ssl, int fd) {
  char *p;
  long n = BIO_get_mem_data(g_out, &p);
  if (n > 0) write_all(fd, p, (size_t)n);
  (void)BIO_reset(g_out);
  SSL_set0_rbio(ssl, NULL);
  SSL_set0_wbio(ssl, NULL);
}

/* Feeds one read from the socket to the shared input BIO. */
static void feed(int fd) {
  char buf[16384];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n <= 0) die("read");
  BIO_write(g_in, buf, (int)n);
}

/* One server-side connection to the point a wss client leaves it: handshake, one request, one answer. */
static SSL *serve(SSL_CTX *ctx, int fd) {
  static const char answer[130] = "HTTP/1.1 101 Switching Protocols";
  SSL *ssl = SSL_new(ctx);
  if (!ssl) die("SSL_new");
  SSL_set_accept_state(ssl);
  for (;;) {
    lend(ssl);
    int r = SSL_do_handshake(ssl);
    int e = SSL_get_error(ssl, r);
    take_back(ssl, fd);
    if (r == 1) break;
    if (e != SSL_ERROR_WANT_READ) die("handshake");
    lend(ssl);
    feed(fd);
    take_back(ssl, fd);
  }
  char req[512];
  size_t got = 0;
  while (got < 200) {
    lend(ssl);
    int n = SSL_read(ssl, req, sizeof req);
    if (n > 0) got += (size_t)n;
    else if (SSL_get_error(ssl, n) == SSL_ERROR_WANT_READ) feed(fd);
    else die("SSL_read");
    take_back(ssl, fd);
  }
  lend(ssl);
  if (SSL_write(ssl, answer, sizeof answer) != (int)sizeof answer) die("SSL_write");
  take_back(ssl, fd);
  return ssl;
}

/* The clients: `count` connections, one after the other, each kept open until the parent says. */
static void clients(int port, int count, int go_fd, int done_fd) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  SSL **conns = calloc((size_t)count, sizeof *conns);
  char req[200], buf[512];
  memset(req, 'x', sizeof req);
  char c;
  for (int round = 0; round < 2; round++) {
    if (read(go_fd, &c, 1) != 1) exit(1);  /* round 0: warm-up, round 1: the measured ones */
    int n = round == 0 ? 20 : count;
    for (int i = 0; i < n; i++) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
      if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) die("connect");
      SSL *ssl = SSL_new(ctx);
      SSL_set_fd(ssl, fd);
      if (SSL_connect(ssl) != 1 || SSL_write(ssl, req, sizeof req) != (int)sizeof req) die("client handshake");
      int got = 0;
      while (got < 130) {
        int r = SSL_read(ssl, buf, sizeof buf);
        if (r <= 0) die("client read");
        got += r;
      }
      if (round == 0) {
        SSL_free(ssl);
        close(fd);
      } else {
        conns[i] = ssl;
      }
    }
    if (write(done_fd, "d", 1) != 1) exit(1);
  }
  if (read(go_fd, &c, 1) < 0) exit(1);  /* hold until the parent has measured (or gone) */
  exit(0);
}

int main(int argc, char **argv) {
  int count = argc > 1 ? atoi(argv[1]) : 3000;
  int version = argc > 2 ? atoi(argv[2]) : 13;
  int tickets = argc > 3 ? atoi(argv[3]) : 2;
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  signal(SIGPIPE, SIG_IGN);

  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1024) != 0) die("listen");
  getsockname(ls, (struct sockaddr *)&a, &alen);
  int go[2], done[2];
  if (pipe(go) != 0 || pipe(done) != 0) die("pipe");
  pid_t child = fork();
  if (child == 0) {
    close(ls);
    clients(ntohs(a.sin_port), count, go[0], done[1]);
  }

  SSL_CTX *ctx = server_ctx(version, tickets);
  g_in = BIO_new(BIO_s_mem());
  g_out = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(g_in, -1);
  SSL **ssl = calloc((size_t)count, sizeof *ssl);
  int *fds = calloc((size_t)count, sizeof *fds);
  if (!ssl || !fds) die("memory");
  memset(ssl, 0, (size_t)count * sizeof *ssl);  /* touched now, so not counted per connection */
  memset(fds, 0, (size_t)count * sizeof *fds);
  char c;
  long rest_rss = 0, rest_anon = 0;
  for (int round = 0; round < 2; round++) {
    int n = round == 0 ? 20 : count;
    if (write(go[1], "g", 1) != 1) die("pipe");
    for (int i = 0; i < n; i++) {
      int fd = accept(ls, NULL, NULL);
      if (fd < 0) die("accept");
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      SSL *s = serve(ctx, fd);
      if (round == 0) {
        SSL_free(s);
        close(fd);
      } else {
        ssl[i] = s;
        fds[i] = fd;
      }
    }
    if (read(done[0], &c, 1) != 1) die("child");
    if (round == 0) {
      rest_rss = status_kb("VmRSS");
      rest_anon = status_kb("RssAnon");
    }
  }
  sleep(1);
  long idle_rss = status_kb("VmRSS"), idle_anon = status_kb("RssAnon");
  printf("conns=%d tls=1.%d tickets=%d rest_rss_kb=%ld idle_rss_kb=%ld bytes_per_conn_rss=%ld bytes_per_conn_anon=%ld\n",
         count, version == 12 ? 2 : 3, tickets, rest_rss, idle_rss, (idle_rss - rest_rss) * 1024 / count,
         (idle_anon - rest_anon) * 1024 / count);
  fflush(stdout);
  if (write(go[1], "q", 1) != 1) die("pipe");
  waitpid(child, NULL, 0);
  for (int i = 0; i < count; i++) {
    SSL_free(ssl[i]);
    close(fds[i]);
  }
  SSL_CTX_free(ctx);
  BIO_free(g_in);
  BIO_free(g_out);
  return 0;
}
