// What the log, /metrics and --check-config say of a certificate: pure reads of OpenSSL's objects.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <string>

namespace mg {

// What the log and /metrics say of the certificate a context serves (its chain's first, the leaf).
struct TlsCertInfo {
  std::string subject;      // one line, e.g. "CN=gw.example.com"
  int64_t not_after = 0;    // unix seconds: when it expires
  std::string fingerprint;  // SHA-256, "AB:CD:..."
};
// False when `ctx` has no certificate.
bool tls_cert_info(SSL_CTX* ctx, TlsCertInfo& out);
// SHA-256 of the certificate's DER, "AB:CD:..." (as openssl x509 -fingerprint -sha256 prints it).
std::string tls_fingerprint(X509* x);
// "2027-03-01T12:00:00Z".
std::string utc_date(int64_t unix_s);

}  // namespace mg
