#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>
#include <memory>

#include "net/tls_cert_info.h"
#include "net/tls_tickets.h"

namespace mg {

namespace {

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (!e) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// A self-signed certificate for development: never for production, and the log says so.
bool use_dev_certificate(SSL_CTX* ctx, std::string& note, std::string& error) {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  X509* x = X509_new();
  bool ok = pkey && x;
  if (ok) {
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7F;
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("meshgate development"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
    X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1");
    if (san) {
      X509_add_ext(x, san, -1);
      X509_EXTENSION_free(san);
    }
    ok = X509_sign(x, pkey, EVP_sha256()) > 0 && SSL_CTX_use_certificate(ctx, x) == 1 &&
         SSL_CTX_use_PrivateKey(ctx, pkey) == 1;
  }
  if (ok) {
    note = "no certificate configured: using a self-signed development certificate for localhost (SHA-256 " + tls_fingerprint(x) +
           "); configure cert and key for production";
  } else {
    error = "cannot make a development certificate: " + openssl_error();
  }
  X509_free(x);
  EVP_PKEY_free(pkey);
  return ok;
}

}  // namespace

SSL_CTX* tls_server_context(const std::string& cert, const std::string& key, const TicketOptions& tickets,
                            std::string& note, std::string& error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    error = openssl_error();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL");
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);  // idle connections give their record buffers back
  // The configured chain is the whole chain: no search of the trust store at each handshake.
  SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
  static const unsigned char sid_ctx[] = "meshgate";
  SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
  std::shared_ptr<TicketKeys> keys = tickets.keys;
  if (!keys) {
    keys = std::make_shared<TicketKeys>(tickets.ticket_rotate, static_cast<int64_t>(std::time(nullptr)));
    if (!tickets.ticket_key_file.empty() &&
        !keys->use_file(tickets.ticket_key_file, static_cast<int64_t>(std::time(nullptr)), error)) {
      SSL_CTX_free(ctx);
      return nullptr;
    }
  }
  use_ticket_keys(ctx, std::move(keys));
  bool ok;
  if (cert.empty()) {
    ok = use_dev_certificate(ctx, note, error);
  } else {
    ok = SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) == 1 &&
         SSL_CTX_use_PrivateKey_file(ctx, (key.empty() ? cert : key).c_str(), SSL_FILETYPE_PEM) == 1 &&
         SSL_CTX_check_private_key(ctx) == 1;
    if (!ok) error = cert + ": " + openssl_error();
  }
  if (!ok) {
    SSL_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

namespace {

// The thread's two memory BIOs, lent to one session at a time (tls.h). They keep their buffers
// between calls: one pair per worker thread instead of one per connection. Empty between calls.
struct ThreadBios {
  BIO* in = BIO_new(BIO_s_mem());   // ciphertext from the socket
  BIO* out = BIO_new(BIO_s_mem());  // ciphertext for the socket
  ThreadBios() {
    if (in) BIO_set_mem_eof_return(in, -1);  // empty means "more later", not end of stream
  }
  ~ThreadBios() {
    BIO_free(in);
    BIO_free(out);
  }
  ThreadBios(const ThreadBios&) = delete;
  ThreadBios& operator=(const ThreadBios&) = delete;
};

ThreadBios& thread_bios() {
  static thread_local ThreadBios bios;
  return bios;
}

// Moves every byte a memory BIO holds to the end of `dst`: one copy, and the BIO keeps its buffer.
void move_pending(BIO* bio, std::string& dst) {
  const size_t n = BIO_ctrl_pending(bio);
  if (n == 0) return;
  const size_t old = dst.size();
  dst.resize(old + n);
  const int got = BIO_read(bio, &dst[old], static_cast<int>(n));
  dst.resize(old + static_cast<size_t>(got > 0 ? got : 0));
}

// One record's worth of plaintext per SSL_write, so the thread's write BIO never holds more than one
// record before it is moved out.
constexpr size_t kRecordPlain = 16 * 1024;

}  // namespace

// Lends the thread's BIOs to a session for one call; takes them back, empty, when it goes.
class TlsSession::Lend {
 public:
  explicit Lend(SSL* ssl) : ssl_(ssl), bios_(thread_bios()) {
    if (!ok()) return;
    BIO_up_ref(bios_.in);  // SSL_set0_* take a reference; the thread keeps its own
    BIO_up_ref(bios_.out);
    SSL_set0_rbio(ssl_, bios_.in);
    SSL_set0_wbio(ssl_, bios_.out);
  }
  ~Lend() {
    if (!ok()) return;
    SSL_set0_rbio(ssl_, nullptr);  // drops the session's reference: it holds no BIO while idle
    SSL_set0_wbio(ssl_, nullptr);
    // Whatever the call left behind (only after an error) must not reach the next session.
    if (BIO_ctrl_pending(bios_.in)) (void)BIO_reset(bios_.in);
    if (BIO_ctrl_pending(bios_.out)) (void)BIO_reset(bios_.out);
  }
  Lend(const Lend&) = delete;
  Lend& operator=(const Lend&) = delete;
  bool ok() const { return bios_.in && bios_.out; }
  BIO* in() const { return bios_.in; }
  BIO* out() const { return bios_.out; }

 private:
  SSL* ssl_;
  ThreadBios& bios_;
};

TlsSession::TlsSession(SSL_CTX* ctx) : ssl_(SSL_new(ctx)) { SSL_set_accept_state(ssl_); }

TlsSession::~TlsSession() { SSL_free(ssl_); }

const std::string& TlsSession::error() const {
  static const std::string none;
  return error_ ? *error_ : none;
}

void TlsSession::fail(std::string why) { error_ = std::make_unique<std::string>(std::move(why)); }

TlsSession::Result TlsSession::feed(const char* data, size_t len, std::string& plain, std::string& out) {
  Lend lend(ssl_);
  if (!lend.ok()) {
    fail("TLS: no memory BIO");
    return Result::Error;
  }
  if (unread_) {
    const bool ok = BIO_write(lend.in(), unread_->data(), static_cast<int>(unread_->size())) == static_cast<int>(unread_->size());
    unread_.reset();
    if (!ok) {
      fail("TLS input buffer");
      return Result::Error;
    }
  }
  if (len && BIO_write(lend.in(), data, static_cast<int>(len)) != static_cast<int>(len)) {
    fail("TLS input buffer");
    return Result::Error;
  }
  const Result r = feed_attached(plain, out);
  move_pending(lend.out(), out);
  if (r == Result::Ok && BIO_ctrl_pending(lend.in()) > 0) {  // kept for the next feed (see tls.h)
    unread_ = std::make_unique<std::string>();
    move_pending(lend.in(), *unread_);
  }
  return r;
}

TlsSession::Result TlsSession::feed_attached(std::string& plain, std::string& out) {
  BIO* wbio = SSL_get_wbio(ssl_);
  if (!established_) {
    int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      int e = SSL_get_error(ssl_, r);
      move_pending(wbio, out);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return Result::Ok;
      fail("handshake failed: " + openssl_error());
      return Result::Error;
    }
    established_ = true;
    move_pending(wbio, out);
    if (early_plain_) {
      std::unique_ptr<std::string> early = std::move(early_plain_);
      encrypt_attached(early->data(), early->size(), out);
    }
  }
  char buf[16384];
  while (true) {
    int n = SSL_read(ssl_, buf, sizeof buf);
    if (n > 0) {
      plain.append(buf, static_cast<size_t>(n));
      continue;
    }
    int e = SSL_get_error(ssl_, n);
    move_pending(wbio, out);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return Result::Ok;
    if (e == SSL_ERROR_ZERO_RETURN) return Result::Closed;
    fail("TLS error: " + openssl_error());
    return Result::Error;
  }
}

void TlsSession::encrypt(const char* data, size_t len, std::string& out) {
  if (!established_) {
    if (!early_plain_) early_plain_ = std::make_unique<std::string>();
    early_plain_->append(data, len);
    return;
  }
  Lend lend(ssl_);
  if (lend.ok()) encrypt_attached(data, len, out);
}

void TlsSession::encrypt_attached(const char* data, size_t len, std::string& out) {
  BIO* wbio = SSL_get_wbio(ssl_);
  size_t off = 0;
  while (off < len) {
    int n = SSL_write(ssl_, data + off, static_cast<int>(std::min(len - off, kRecordPlain)));
    if (n <= 0) break;  // memory BIOs do not block; a failure here means the session is broken
    off += static_cast<size_t>(n);
    move_pending(wbio, out);
  }
  move_pending(wbio, out);
}

}  // namespace mg
