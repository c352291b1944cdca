// The least a dynamically linked program with Debian's OpenSSL holds in memory (docs/benchmarks.md,
// "Packages and static binaries"): it links libssl, libcrypto, libstdc++ and glibc as meshgate does, then
// does only what a fresh meshgate with the shipped configuration does with OpenSSL, and waits.
//   g++ -O2 bench/dyn_floor.cpp -o /tmp/dyn_floor -lssl -lcrypto
//   /tmp/dyn_floor 0   libraries loaded, OpenSSL not used
//   /tmp/dyn_floor 3   + one TLS server context and a P-256 key with a self-signed certificate
//   /tmp/dyn_floor 7   the same, OpenSSL's error strings not loaded
// then read VmRSS, RssAnon and RssFile from /proc/PID/status.
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  int mode = argc > 1 ? std::atoi(argv[1]) : 0;
  std::string keep = "libstdc++";  // linked and used, as in meshgate
  if (mode & 4) OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_SSL_STRINGS | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS, nullptr);
  if (mode & 1) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL");
  }
  if (mode & 2) {
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    X509* x = X509_new();
    X509_set_pubkey(x, key);
    X509_sign(x, key, EVP_sha256());
  }
  pause();
  return keep.empty();
}
