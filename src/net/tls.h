// TLS for listeners, with OpenSSL fed through memory BIOs (as h2o does): the socket code moves
// ciphertext, TlsSession turns it into plaintext and back, and the HTTP, WebSocket and framing code
// above never knows whether TLS is on.
//
// Memory while idle (issue 21): a session holds its `SSL` and nothing else. The two memory BIOs are
// the thread's (ThreadBios in tls.cpp), lent to a session only for the length of one feed() or
// encrypt() and taken back before it returns, so no connection keeps a BIO or a BIO's buffer.
// Ciphertext that OpenSSL left unread in the input BIO is kept in `unread_` until the next feed() (in
// practice OpenSSL reads every byte it is given: a partial record waits in its own record buffer,
// which SSL_MODE_RELEASE_BUFFERS frees once the record is whole). Output is encrypted one record
// (16 KiB of plaintext) at a time and moved out of the shared BIO after each, so the thread's write
// BIO never grows past one record. The handshake's buffers are OpenSSL's to free when it ends (it
// does); certificates and keys live in the shared SSL_CTX.
//
// Policy: TLS 1.2 minimum, forward-secret AEAD suites for 1.2 (OpenSSL's defaults for 1.3), no
// renegotiation, resumption by stateless TLS 1.3 tickets (no server-side session cache). A context is made per TLS
// listener at start and shared by every worker (SSL_CTX is safe to share for creating sessions).
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/limits.h"

namespace mg {

class TicketKeys;

// Resumption of a listener's context: stateless tickets (net/tls_tickets.h) whose keys rotate
// every `ticket_rotate` seconds, kept in `ticket_key_file` when it is not empty. With `keys` set,
// the context uses those keys and the other two fields are not read: a certificate reload hands the
// new context the keys of the one it replaces, so tickets issued before the reload still resume.
struct TicketOptions {
  uint32_t ticket_rotate = limit_defaults::kTicketRotate;
  std::string ticket_key_file;
  std::shared_ptr<TicketKeys> keys;
};

// A server context from a PEM certificate chain and key. With an empty `cert`, a self-signed
// development certificate (EC P-256, CN=localhost, valid one year) is generated in memory and
// `note` says so with its SHA-256 fingerprint. Returns nullptr and sets `error` on failure (also
// when the ticket key file cannot be read or made).
SSL_CTX* tls_server_context(const std::string& cert, const std::string& key, const TicketOptions& tickets,
                            std::string& note, std::string& error);

class TlsSession {
 public:
  enum class Result { Ok, Closed, Error };

  explicit TlsSession(SSL_CTX* ctx);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Takes ciphertext from the socket. Appends decrypted bytes to `plain` and bytes to send back
  // (handshake records, alerts) to `out`. Closed: the peer sent close_notify. Error: the session is
  // broken (failed handshake, bad record); `out` may hold an alert worth sending before closing.
  Result feed(const char* data, size_t len, std::string& plain, std::string& out);
  // Encrypts `len` bytes into `out`. Before the handshake is done the bytes are kept and sent
  // once it is.
  void encrypt(const char* data, size_t len, std::string& out);
  bool established() const { return established_; }
  // Why the session failed (OpenSSL's reason), for logs.
  const std::string& error() const;

 private:
  class Lend;  // attaches the thread's BIOs for one call (tls.cpp)
  Result feed_attached(std::string& plain, std::string& out);
  void encrypt_attached(const char* data, size_t len, std::string& out);
  void fail(std::string why);

  SSL* ssl_;
  std::unique_ptr<std::string> unread_;       // ciphertext OpenSSL did not take yet: only while any
  std::unique_ptr<std::string> early_plain_;  // written before the handshake finished: only until then
  bool established_ = false;
  std::unique_ptr<std::string> error_;        // why it failed: only once it has
};

}  // namespace mg
