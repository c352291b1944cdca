// Stateless TLS tickets (net/tls_tickets.h): the key rotation alone, then real TLS 1.3 handshakes
// in memory between an OpenSSL client and a listener context, resuming across rotations, and the
// key file.
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>

#include "net/tls.h"
#include "net/tls_tickets.h"

namespace mg {
namespace {

constexpr uint32_t kRotate = 3600;

TEST(TicketKeys, RotatesAndKeepsThePreviousKey) {
  const int64_t t0 = 1000000;
  TicketKeys keys(kRotate, t0);
  TicketKey first = keys.current(t0), k;
  EXPECT_EQ(keys.find(first.name, t0, k), 1);
  EXPECT_FALSE(keys.rotate_if_due(t0 + kRotate - 1));
  EXPECT_EQ(keys.find(first.name, t0 + kRotate - 1, k), 1);

  EXPECT_TRUE(keys.rotate_if_due(t0 + kRotate));
  TicketKey second = keys.current(t0 + kRotate);
  EXPECT_NE(std::string(reinterpret_cast<char*>(first.name), 16), std::string(reinterpret_cast<char*>(second.name), 16));
  EXPECT_EQ(keys.find(first.name, t0 + kRotate, k), 2);  // previous: still resumes
  EXPECT_EQ(std::string(reinterpret_cast<char*>(k.aes), 32), std::string(reinterpret_cast<char*>(first.aes), 32));
  EXPECT_EQ(keys.find(second.name, t0 + kRotate, k), 1);

  EXPECT_TRUE(keys.rotate_if_due(t0 + 2 * kRotate));
  EXPECT_EQ(keys.find(first.name, t0 + 2 * kRotate, k), 0);  // older than previous: refused
  EXPECT_EQ(keys.find(second.name, t0 + 2 * kRotate, k), 2);
}

TEST(TicketKeys, TwoPeriodsIdleDropBothKeys) {
  const int64_t t0 = 1000000;
  TicketKeys keys(kRotate, t0);
  TicketKey first = keys.current(t0), k;
  // Nobody connected for two periods: current would have been previous for a whole period already.
  EXPECT_EQ(keys.find(first.name, t0 + 2 * kRotate, k), 0);
  EXPECT_EQ(keys.find(keys.current(t0 + 2 * kRotate).name, t0 + 2 * kRotate, k), 1);
}

TEST(TicketKeys, UnknownNameIsRefused) {
  TicketKeys keys(kRotate, 5000);
  unsigned char name[16] = {1, 2, 3};
  TicketKey k;
  EXPECT_EQ(keys.find(name, 5000, k), 0);
}

// --- handshakes in memory ---

struct Ctxs {
  SSL_CTX* server = nullptr;
  SSL_CTX* client = nullptr;
  Ctxs() {
    std::string note, error;
    server = tls_server_context("", "", TicketOptions{kRotate, "", nullptr}, note, error);
    client = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(client, TLS1_3_VERSION);
    SSL_CTX_set_verify(client, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_session_cache_mode(client, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  }
  ~Ctxs() {
    SSL_CTX_free(server);
    SSL_CTX_free(client);
  }
};

// One connection: handshake, one byte each way (so the client reads the tickets), shutdown. Returns
// the client's newest session (the last ticket it got; nullptr if none) and whether it resumed.
SSL_SESSION* connect(Ctxs& c, SSL_SESSION* resume, bool& reused, int& tickets) {
  SSL* cl = SSL_new(c.client);
  SSL* sv = SSL_new(c.server);
  BIO *a, *b;
  BIO_new_bio_pair(&a, 0, &b, 0);
  SSL_set_bio(cl, a, a);
  SSL_set_bio(sv, b, b);
  SSL_set_connect_state(cl);
  SSL_set_accept_state(sv);
  if (resume) SSL_set_session(cl, resume);
  tickets = 0;
  SSL_SESSION* got = nullptr;
  SSL_set_ex_data(cl, 0, &tickets);
  SSL_CTX_sess_set_new_cb(c.client, [](SSL* s, SSL_SESSION*) {
    ++*static_cast<int*>(SSL_get_ex_data(s, 0));
    return 0;  // not kept by the callback: SSL_get1_session below takes the newest
  });
  bool cdone = false, sdone = false;
  for (int i = 0; i < 100 && !(cdone && sdone); i++) {
    if (!cdone) cdone = SSL_do_handshake(cl) == 1;
    if (!sdone) sdone = SSL_do_handshake(sv) == 1;
  }
  EXPECT_TRUE(cdone && sdone);
  char byte = 'x', in;
  EXPECT_EQ(SSL_write(sv, &byte, 1), 1);  // the server's tickets are sent before this record
  EXPECT_EQ(SSL_read(cl, &in, 1), 1);
  reused = SSL_session_reused(sv) == 1;
  got = SSL_get1_session(cl);
  // Freed without a shutdown, OpenSSL marks the client's session not resumable (as if the
  // connection had failed): a clean close.
  SSL_set_shutdown(cl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(cl);
  SSL_free(sv);
  return got;
}

TicketKeys* keys_of(SSL_CTX* ctx) { return ticket_keys_of(ctx); }

TEST(TlsTickets, ResumesWithOneTicketEachTime) {
  Ctxs c;
  ASSERT_TRUE(c.server && c.client);
  bool reused;
  int tickets;
  SSL_SESSION* s1 = connect(c, nullptr, reused, tickets);
  EXPECT_FALSE(reused);
  EXPECT_EQ(tickets, 1);  // SSL_CTX_set_num_tickets(1)
  SSL_SESSION* s2 = connect(c, s1, reused, tickets);
  EXPECT_TRUE(reused);
  EXPECT_EQ(tickets, 1);  // a fresh ticket on resumption
  SSL_SESSION* s3 = connect(c, s2, reused, tickets);
  EXPECT_TRUE(reused);
  SSL_SESSION_free(s1);
  SSL_SESSION_free(s2);
  SSL_SESSION_free(s3);
}

TEST(TlsTickets, ResumesAcrossOneRotationNotTwo) {
  Ctxs c;
  ASSERT_TRUE(c.server && c.client);
  bool reused;
  int tickets;
  SSL_SESSION* s1 = connect(c, nullptr, reused, tickets);
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  // The keys' clock runs ahead of the session's: rotations without waiting, the ticket still young.
  ASSERT_TRUE(keys_of(c.server)->rotate_if_due(now + kRotate));
  SSL_SESSION* s2 = connect(c, s1, reused, tickets);
  EXPECT_TRUE(reused) << "a ticket under the previous key resumes";
  ASSERT_TRUE(keys_of(c.server)->rotate_if_due(now + 2 * kRotate));
  ASSERT_TRUE(keys_of(c.server)->rotate_if_due(now + 3 * kRotate));
  SSL_SESSION* s3 = connect(c, s1, reused, tickets);
  EXPECT_FALSE(reused) << "a key older than previous: full handshake";
  EXPECT_EQ(tickets, 1);
  SSL_SESSION_free(s1);
  SSL_SESSION_free(s2);
  SSL_SESSION_free(s3);
}

// --- the key file ---

std::string temp_path() {
  char tmpl[] = "/tmp/mg_tickets_XXXXXX";
  int fd = mkstemp(tmpl);
  close(fd);
  unlink(tmpl);
  return tmpl;
}

TEST(TicketKeyFile, CreatedPrivateAndReadBack) {
  const std::string path = temp_path();
  const int64_t t0 = 2000000;
  std::string error;
  TicketKeys a(kRotate, t0);
  ASSERT_TRUE(a.use_file(path, t0, error)) << error;
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ticket_key_file_problem(path), "");

  TicketKeys b(kRotate, t0 + 10);  // a restart: the file's keys replace the fresh ones
  ASSERT_TRUE(b.use_file(path, t0 + 10, error)) << error;
  TicketKey k;
  EXPECT_EQ(b.find(a.current(t0).name, t0 + 10, k), 1);

  // A restart after one period: the file's key is previous now, and the file says so.
  TicketKeys c(kRotate, t0 + kRotate);
  ASSERT_TRUE(c.use_file(path, t0 + kRotate, error)) << error;
  EXPECT_EQ(c.find(a.current(t0).name, t0 + kRotate, k), 2);
  TicketKeys d(kRotate, t0 + kRotate);
  ASSERT_TRUE(d.use_file(path, t0 + kRotate, error)) << error;
  EXPECT_EQ(d.find(a.current(t0).name, t0 + kRotate, k), 2);
  EXPECT_EQ(d.find(c.current(t0 + kRotate).name, t0 + kRotate, k), 1);
  unlink(path.c_str());
}

TEST(TicketKeyFile, ReadableByOthersIsRefused) {
  const std::string path = temp_path();
  std::string error;
  TicketKeys a(kRotate, 100);
  ASSERT_TRUE(a.use_file(path, 100, error)) << error;
  chmod(path.c_str(), 0644);
  TicketKeys b(kRotate, 100);
  EXPECT_FALSE(b.use_file(path, 100, error));
  EXPECT_NE(error.find("chmod 600"), std::string::npos) << error;
  EXPECT_NE(ticket_key_file_problem(path), "");
  unlink(path.c_str());
}

TEST(TicketKeyFile, GarbageIsRefused) {
  const std::string path = temp_path();
  {
    std::ofstream out(path);
    out << "not keys\n";
  }
  chmod(path.c_str(), 0600);
  TicketKeys a(kRotate, 100);
  std::string error;
  EXPECT_FALSE(a.use_file(path, 100, error));
  EXPECT_NE(error.find("not a meshgate ticket key file"), std::string::npos) << error;
  unlink(path.c_str());
}

}  // namespace
}  // namespace mg
