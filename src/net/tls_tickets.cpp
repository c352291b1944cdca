#include "net/tls_tickets.h"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <sstream>

#include "core/log.h"

namespace mg {

namespace {

constexpr const char* kFileHeader = "meshgate-ticket-keys 1";
constexpr size_t kKeyBytes = sizeof(TicketKey::name) + sizeof(TicketKey::aes) + sizeof(TicketKey::hmac);

TicketKey fresh_key(int64_t now) {
  TicketKey k;
  if (RAND_bytes(k.name, sizeof k.name) != 1 || RAND_bytes(k.aes, sizeof k.aes) != 1 ||
      RAND_bytes(k.hmac, sizeof k.hmac) != 1) {
    // Without randomness no key is safe to use: tickets would be forgeable.
    LOG_ERROR("TLS ticket keys: no random bytes from OpenSSL");
    std::abort();
  }
  k.created = now;
  return k;
}

std::string key_line(const TicketKey& k) {
  unsigned char raw[kKeyBytes];
  std::memcpy(raw, k.name, sizeof k.name);
  std::memcpy(raw + sizeof k.name, k.aes, sizeof k.aes);
  std::memcpy(raw + sizeof k.name + sizeof k.aes, k.hmac, sizeof k.hmac);
  std::string line = std::to_string(k.created) + " ";
  char hex[3];
  for (unsigned char b : raw) {
    std::snprintf(hex, sizeof hex, "%02x", b);
    line += hex;
  }
  OPENSSL_cleanse(raw, sizeof raw);
  return line;
}

bool parse_key_line(const std::string& line, TicketKey& k) {
  std::istringstream in(line);
  long long created;
  std::string hex;
  if (!(in >> created >> hex) || hex.size() != 2 * kKeyBytes) return false;
  unsigned char raw[kKeyBytes];
  for (size_t i = 0; i < kKeyBytes; i++) {
    unsigned v;
    if (std::sscanf(hex.c_str() + 2 * i, "%2x", &v) != 1) return false;
    raw[i] = static_cast<unsigned char>(v);
  }
  std::memcpy(k.name, raw, sizeof k.name);
  std::memcpy(k.aes, raw + sizeof k.name, sizeof k.aes);
  std::memcpy(k.hmac, raw + sizeof k.name + sizeof k.aes, sizeof k.hmac);
  OPENSSL_cleanse(raw, sizeof raw);
  k.created = created;
  return true;
}

// Group or other permissions on a file of secrets: refused, as ssh does with its keys.
std::string mode_problem(const struct stat& st) {
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
    return std::string("mode ") + mode + ": readable or writable by others than its owner (chmod 600 it)";
  }
  return "";
}

// Reads the keys of `path` into `cur` / `prev`; "" or what is wrong.
std::string read_key_file(const std::string& path, TicketKey& cur, TicketKey& prev, bool& has_prev) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::strerror(errno);
  struct stat st;
  std::string problem = fstat(fd, &st) != 0 ? std::strerror(errno) : mode_problem(st);
  std::string text;
  if (problem.empty()) {
    char buf[1024];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < 4096) text.append(buf, static_cast<size_t>(n));
    if (n < 0) problem = std::strerror(errno);
  }
  ::close(fd);
  if (!problem.empty()) return problem;
  std::istringstream in(text);
  std::string header, l1, l2;
  std::getline(in, header);
  std::getline(in, l1);
  std::getline(in, l2);
  if (header != kFileHeader || !parse_key_line(l1, cur)) return "not a meshgate ticket key file";
  has_prev = !l2.empty();
  if (has_prev && !parse_key_line(l2, prev)) return "not a meshgate ticket key file (its second key)";
  OPENSSL_cleanse(text.data(), text.size());
  return "";
}

}  // namespace

TicketKeys::TicketKeys(uint32_t rotate_s, int64_t now) : rotate_(rotate_s), cur_(fresh_key(now)) {}

bool TicketKeys::use_file(const std::string& path, int64_t now, std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  file_ = path;
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    TicketKey cur, prev;
    bool has_prev = false;
    std::string problem = read_key_file(path, cur, prev, has_prev);
    if (!problem.empty()) {
      error = path + ": " + problem;
      return false;
    }
    if (cur.created > now) cur.created = now;  // a clock set back: the key is new, not from the future
    cur_ = cur;
    prev_ = prev;
    has_prev_ = has_prev;
    rotate_locked(now);  // keys that aged while the node was down (it rewrites the file)
    return true;
  }
  if (errno != ENOENT) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  return write_file_locked(error);
}

bool TicketKeys::write_file_locked(std::string& error) const {
  if (file_.empty()) return true;
  std::string text = std::string(kFileHeader) + "\n" + key_line(cur_) + "\n" + (has_prev_ ? key_line(prev_) + "\n" : "");
  const std::string tmp = file_ + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  bool ok = fd >= 0;
  if (ok) {
    ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    ok = (::close(fd) == 0) && ok;
  }
  if (ok) ok = ::rename(tmp.c_str(), file_.c_str()) == 0;
  if (!ok) {
    error = file_ + ": cannot write: " + std::strerror(errno);
    ::unlink(tmp.c_str());
  }
  OPENSSL_cleanse(text.data(), text.size());
  return ok;
}

bool TicketKeys::rotate_locked(int64_t now) {
  if (now - cur_.created < static_cast<int64_t>(rotate_)) return false;
  if (now - cur_.created < 2 * static_cast<int64_t>(rotate_)) {
    prev_ = cur_;
    has_prev_ = true;
  } else {
    // Current stopped being current more than a period ago: as previous it would have expired too.
    OPENSSL_cleanse(&prev_, sizeof prev_);
    has_prev_ = false;
  }
  cur_ = fresh_key(now);
  std::string error;
  if (!write_file_locked(error)) LOG_WARN("TLS ticket keys rotated in memory only: %s", error.c_str());
  return true;
}

bool TicketKeys::rotate_if_due(int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  return rotate_locked(now);
}

TicketKey TicketKeys::current(int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  rotate_locked(now);
  return cur_;
}

int TicketKeys::find(const unsigned char name[16], int64_t now, TicketKey& out) {
  std::lock_guard<std::mutex> lock(mu_);
  rotate_locked(now);
  if (CRYPTO_memcmp(name, cur_.name, sizeof cur_.name) == 0) {
    out = cur_;
    return 1;
  }
  if (has_prev_ && CRYPTO_memcmp(name, prev_.name, sizeof prev_.name) == 0) {
    out = prev_;
    return 2;
  }
  return 0;
}

namespace {

// The context holds one reference to its keys: a context made by a certificate reload shares them with
// the one it replaces (tls.h TicketOptions::keys).
using KeysRef = std::shared_ptr<TicketKeys>;
void free_keys(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<KeysRef*>(ptr); }

// AES-256-CBC fetched once: OpenSSL 3.0 otherwise fetches it from its provider at every
// EVP_EncryptInit_ex with EVP_aes_256_cbc(), a lookup under a global lock at every ticket.
const EVP_CIPHER* ticket_cipher() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  return cipher ? cipher : EVP_aes_256_cbc();
}

int keys_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_keys);
  return index;
}

// OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb): seals (enc = 1) or finds
// the key of (enc = 0) a ticket. Returns 1: sealed; 2 (enc = 0): found, and renew the ticket
// under the current key; 0 (enc = 0): unknown key, full handshake; -1: failure.
int ticket_key_cb(SSL* ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH], EVP_CIPHER_CTX* cctx,
                  EVP_MAC_CTX* hctx, int enc) {
  TicketKeys* keys = ticket_keys_of(SSL_get_SSL_CTX(ssl));
  if (!keys) return enc ? -1 : 0;
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  TicketKey k;
  if (enc) {
    k = keys->current(now);
    if (RAND_bytes(iv, 16) != 1) return -1;
    std::memcpy(key_name, k.name, sizeof k.name);
  } else {
    if (keys->find(key_name, now, k) == 0) return 0;
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  int ok = EVP_MAC_init(hctx, k.hmac, sizeof k.hmac, params) == 1 &&
           (enc ? EVP_EncryptInit_ex(cctx, ticket_cipher(), nullptr, k.aes, iv)
                : EVP_DecryptInit_ex(cctx, ticket_cipher(), nullptr, k.aes, iv)) == 1;
  OPENSSL_cleanse(&k, sizeof k);
  if (!ok) return -1;
  // 2 also for the current key: a fresh ticket after every resumption (OpenSSL sends none after a
  // TLS 1.3 resumption otherwise), so a client that uses each ticket once keeps resuming.
  return enc ? 1 : 2;
}

}  // namespace

void use_ticket_keys(SSL_CTX* ctx, std::shared_ptr<TicketKeys> keys) {
  const uint32_t lifetime = keys->rotate_seconds();
  SSL_CTX_set_ex_data(ctx, keys_index(), new KeysRef(std::move(keys)));
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &ticket_key_cb);
  // No cache: a resumption is a ticket or nothing, and no memory grows with the clients seen.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  // One ticket after a full handshake (OpenSSL's default is two); a resumption gets a fresh one
  // (the callback asks for renewal), so a client that uses each ticket once, as browsers do, keeps
  // resuming (docs/decisions.md).
  SSL_CTX_set_num_tickets(ctx, 1);
  // The lifetime hint and the age past which a ticket is refused: a ticket's key stays current or
  // previous for at least this long after it was sealed.
  SSL_CTX_set_timeout(ctx, static_cast<long>(lifetime));
}

std::shared_ptr<TicketKeys> shared_ticket_keys_of(SSL_CTX* ctx) {
  const auto* ref = static_cast<const KeysRef*>(SSL_CTX_get_ex_data(ctx, keys_index()));
  return ref ? *ref : nullptr;
}

TicketKeys* ticket_keys_of(SSL_CTX* ctx) {
  const auto* ref = static_cast<const KeysRef*>(SSL_CTX_get_ex_data(ctx, keys_index()));
  return ref ? ref->get() : nullptr;
}

std::string ticket_key_file_problem(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    TicketKey cur, prev;
    bool has_prev = false;
    std::string problem = read_key_file(path, cur, prev, has_prev);
    OPENSSL_cleanse(&cur, sizeof cur);
    OPENSSL_cleanse(&prev, sizeof prev);
    return problem;
  }
  if (errno != ENOENT) return std::strerror(errno);
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  if (::access(dir.c_str(), W_OK | X_OK) != 0) return "cannot be created in " + dir + ": " + std::strerror(errno);
  return "";
}

}  // namespace mg
