#include "mesh/mesh_crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/sha.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "core/base64.h"
#include "core/log.h"

namespace mg {

namespace {

void append_be32(std::string& s, size_t n) {
  s += static_cast<char>((n >> 24) & 0xff);
  s += static_cast<char>((n >> 16) & 0xff);
  s += static_cast<char>((n >> 8) & 0xff);
  s += static_cast<char>(n & 0xff);
}

// A failure of OpenSSL with valid arguments (out of memory): nothing sensible can go on.
[[noreturn]] void crypto_failed(const char* what) {
  LOG_ERROR("mesh: OpenSSL failed in %s", what);
  std::abort();
}

constexpr size_t kMaxKeepBuffer = 64 * 1024;  // an opened body buffer larger than this is released

}  // namespace

std::string mesh_transcript(const std::string& dialler_hello, const std::string& listener_hello) {
  std::string msg = "meshgate mesh v2 transcript";
  msg += '\0';
  append_be32(msg, dialler_hello.size());
  msg += dialler_hello;
  append_be32(msg, listener_hello.size());
  msg += listener_hello;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  if (!EVP_Digest(msg.data(), msg.size(), digest, nullptr, EVP_sha256(), nullptr)) crypto_failed("SHA-256");
  return std::string(reinterpret_cast<char*>(digest), sizeof digest);
}

std::string mesh_proof(const std::string& secret, MeshRole role, const std::string& transcript) {
  std::string msg = role == MeshRole::Dialler ? "meshgate mesh v2 dialler proof" : "meshgate mesh v2 listener proof";
  msg += '\0';
  msg += transcript;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &mac_len))
    crypto_failed("HMAC");
  return base64_encode(mac, mac_len);
}

bool mesh_proof_matches(const std::string& received, const std::string& expected) {
  return received.size() == expected.size() && CRYPTO_memcmp(received.data(), expected.data(), expected.size()) == 0;
}

const std::string* mesh_proof_secret(const MeshSecrets& secrets, const std::string& received, MeshRole role,
                                     const std::string& transcript) {
  const bool current = mesh_proof_matches(received, mesh_proof(secrets.current, role, transcript));
  const bool accepted =
      !secrets.accepted.empty() && mesh_proof_matches(received, mesh_proof(secrets.accepted, role, transcript));
  return current ? &secrets.current : accepted ? &secrets.accepted : nullptr;
}

namespace {

std::mutex reloaded_mu;
std::unique_ptr<MeshSecrets> reloaded;  // nullptr until the first reload

}  // namespace

MeshSecrets mesh_secrets_in_force(const MeshSecrets& configured) {
  std::lock_guard<std::mutex> lock(reloaded_mu);
  return reloaded ? *reloaded : configured;
}

void mesh_reload_secrets(MeshSecrets secrets) {
  std::lock_guard<std::mutex> lock(reloaded_mu);
  reloaded = std::make_unique<MeshSecrets>(std::move(secrets));
}

MeshSessionKeys mesh_session_keys(const std::string& secret, const std::string& transcript) {
  static const char kInfo[] = "meshgate mesh v2 session keys";
  unsigned char out[2 * (32 + 12)];
  size_t out_len = sizeof out;
  EVP_PKEY_CTX* pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr);
  bool ok = pctx && EVP_PKEY_derive_init(pctx) > 0 && EVP_PKEY_CTX_set_hkdf_md(pctx, EVP_sha256()) > 0 &&
            EVP_PKEY_CTX_set1_hkdf_salt(pctx, reinterpret_cast<const unsigned char*>(transcript.data()),
                                        static_cast<int>(transcript.size())) > 0 &&
            EVP_PKEY_CTX_set1_hkdf_key(pctx, reinterpret_cast<const unsigned char*>(secret.data()),
                                       static_cast<int>(secret.size())) > 0 &&
            EVP_PKEY_CTX_add1_hkdf_info(pctx, reinterpret_cast<const unsigned char*>(kInfo), sizeof kInfo - 1) > 0 &&
            EVP_PKEY_derive(pctx, out, &out_len) > 0 && out_len == sizeof out;
  EVP_PKEY_CTX_free(pctx);
  if (!ok) crypto_failed("HKDF");
  MeshSessionKeys keys;
  std::memcpy(keys.dialler_to_listener.key, out, 32);
  std::memcpy(keys.dialler_to_listener.iv, out + 32, 12);
  std::memcpy(keys.listener_to_dialler.key, out + 44, 32);
  std::memcpy(keys.listener_to_dialler.iv, out + 76, 12);
  OPENSSL_cleanse(out, sizeof out);
  return keys;
}

MeshRecordCipher::~MeshRecordCipher() {
  if (ctx_) EVP_CIPHER_CTX_free(ctx_);
}

void MeshRecordCipher::start(const MeshDirectionKey& key, Use use, bool encrypt) {
  if (!ctx_) ctx_ = EVP_CIPHER_CTX_new();
  if (!ctx_) crypto_failed("EVP_CIPHER_CTX_new");
  int ok = use == Use::Seal ? EVP_EncryptInit_ex(ctx_, EVP_aes_256_gcm(), nullptr, key.key, nullptr)
                            : EVP_DecryptInit_ex(ctx_, EVP_aes_256_gcm(), nullptr, key.key, nullptr);
  if (!ok) crypto_failed("AES-256-GCM init");
  std::memcpy(iv_, key.iv, sizeof iv_);
  encrypt_ = encrypt;
  seq_ = 0;
  failed_ = false;
}

void MeshRecordCipher::nonce(unsigned char out[12]) const {
  std::memcpy(out, iv_, 12);
  for (int i = 0; i < 8; i++) out[11 - i] ^= static_cast<unsigned char>(seq_ >> (8 * i));
}

std::string MeshRecordCipher::seal(MeshType type, const char* body, size_t len) {
  size_t flen = 1 + len + kMeshTagBytes;
  std::string f;
  f.resize(5 + len + kMeshTagBytes);
  auto* out = reinterpret_cast<unsigned char*>(&f[0]);
  out[0] = static_cast<unsigned char>(flen >> 24);
  out[1] = static_cast<unsigned char>(flen >> 16);
  out[2] = static_cast<unsigned char>(flen >> 8);
  out[3] = static_cast<unsigned char>(flen);
  out[4] = static_cast<unsigned char>(type);
  unsigned char iv[12];
  nonce(iv);
  const auto* in = reinterpret_cast<const unsigned char*>(body);
  int n = 0;
  bool ok = EVP_EncryptInit_ex(ctx_, nullptr, nullptr, nullptr, iv) && EVP_EncryptUpdate(ctx_, nullptr, &n, out, 5);
  if (encrypt_) {
    ok = ok && EVP_EncryptUpdate(ctx_, out + 5, &n, in, static_cast<int>(len)) && static_cast<size_t>(n) == len;
  } else {
    if (len) std::memcpy(out + 5, in, len);
    ok = ok && EVP_EncryptUpdate(ctx_, nullptr, &n, in, static_cast<int>(len));
  }
  ok = ok && EVP_EncryptFinal_ex(ctx_, out + 5 + len, &n) &&
       EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_GET_TAG, kMeshTagBytes, out + 5 + len);
  if (!ok) crypto_failed("AES-256-GCM seal");
  seq_++;
  return f;
}

bool MeshRecordCipher::open(MeshType type, const char* payload, size_t len, const char*& body, size_t& body_len) {
  if (failed_ || len < kMeshTagBytes) return failed_ = true, false;
  size_t n_body = len - kMeshTagBytes;
  size_t flen = 1 + len;
  unsigned char header[5] = {static_cast<unsigned char>(flen >> 24), static_cast<unsigned char>(flen >> 16),
                             static_cast<unsigned char>(flen >> 8), static_cast<unsigned char>(flen),
                             static_cast<unsigned char>(type)};
  unsigned char iv[12];
  nonce(iv);
  const auto* in = reinterpret_cast<const unsigned char*>(payload);
  unsigned char tag[kMeshTagBytes];
  std::memcpy(tag, in + n_body, kMeshTagBytes);
  int n = 0;
  bool ok = EVP_DecryptInit_ex(ctx_, nullptr, nullptr, nullptr, iv) && EVP_DecryptUpdate(ctx_, nullptr, &n, header, 5);
  if (encrypt_) {
    if (plain_.capacity() > kMaxKeepBuffer && n_body <= kMaxKeepBuffer) std::string().swap(plain_);
    plain_.resize(n_body);
    ok = ok && EVP_DecryptUpdate(ctx_, reinterpret_cast<unsigned char*>(&plain_[0]), &n, in, static_cast<int>(n_body));
  } else {
    ok = ok && EVP_DecryptUpdate(ctx_, nullptr, &n, in, static_cast<int>(n_body));
  }
  unsigned char scratch[16];
  ok = ok && EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_TAG, kMeshTagBytes, tag) &&
       EVP_DecryptFinal_ex(ctx_, scratch, &n) > 0;
  if (!ok) return failed_ = true, false;
  seq_++;
  body = encrypt_ ? plain_.data() : payload;
  body_len = n_body;
  return true;
}

}  // namespace mg
