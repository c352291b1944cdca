#include "net/tls_cert_info.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdio>
#include <ctime>

namespace mg {

bool tls_cert_info(SSL_CTX* ctx, TlsCertInfo& out) {
  X509* x = SSL_CTX_get0_certificate(ctx);
  if (!x) return false;
  BIO* mem = BIO_new(BIO_s_mem());
  if (mem) {
    X509_NAME_print_ex(mem, X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
    char* text = nullptr;
    const long n = BIO_get_mem_data(mem, &text);
    out.subject.assign(text ? text : "", n > 0 ? static_cast<size_t>(n) : 0);
    BIO_free(mem);
  }
  struct tm tm {};
  out.not_after = ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1 ? static_cast<int64_t>(timegm(&tm)) : 0;
  out.fingerprint = tls_fingerprint(x);
  return true;
}

std::string tls_fingerprint(X509* x) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  std::string fp;
  if (X509_digest(x, EVP_sha256(), md, &len) != 1) return fp;
  char hex[4];
  for (unsigned i = 0; i < len; i++) {
    std::snprintf(hex, sizeof hex, i ? ":%02X" : "%02X", md[i]);
    fp += hex;
  }
  return fp;
}

std::string utc_date(int64_t unix_s) {
  const time_t t = static_cast<time_t>(unix_s);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace mg
