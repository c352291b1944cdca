// A TLS listener's context as certificates change (issue 25). The hub makes a context at start and
// a new one when SIGHUP finds the certificate files loadable, and swaps it in here; every accepted
// connection takes the context current at its accept. Its SSL holds a reference to that context
// for the connection's whole life, so connections made before a swap carry on untouched with the
// old certificate, and the old context is freed with the last of them.
//
// The contexts of one listener share their ticket keys (tls.h TicketOptions::keys): a ticket issued
// before a swap resumes after it.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "net/tls_cert_info.h"

namespace mg {

struct TlsContextFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
// A counted reference to a context: dropping it frees the context if it was the last one.
using TlsContextRef = std::unique_ptr<SSL_CTX, TlsContextFree>;

class TlsSlot {
 public:
  // Takes `ctx` (the listener's first context).
  explicit TlsSlot(TlsContextRef ctx) { replace(std::move(ctx)); }

  // Any thread: the context new connections use now.
  TlsContextRef current() const;
  // Hub thread: new connections use `ctx` from now on; the one it replaces lives on while a
  // connection holds it.
  void replace(TlsContextRef ctx);

  // Hub thread, for /metrics: the current certificate's expiry (0: none known), and how many
  // reloads found this listener's files unusable and kept the old certificate.
  int64_t not_after() const { return not_after_; }
  uint64_t reload_failures() const { return reload_failures_; }
  void count_reload_failure() { reload_failures_++; }

 private:
  mutable std::mutex mu_;
  TlsContextRef ctx_;
  int64_t not_after_ = 0;
  uint64_t reload_failures_ = 0;
};

}  // namespace mg
