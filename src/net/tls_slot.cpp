#include "net/tls_slot.h"

namespace mg {

TlsContextRef TlsSlot::current() const {
  std::lock_guard<std::mutex> lock(mu_);
  SSL_CTX_up_ref(ctx_.get());
  return TlsContextRef(ctx_.get());
}

void TlsSlot::replace(TlsContextRef ctx) {
  TlsCertInfo info;
  not_after_ = tls_cert_info(ctx.get(), info) ? info.not_after : 0;
  TlsContextRef old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    old = std::move(ctx_);
    ctx_ = std::move(ctx);
  }
  // `old` is dropped here, outside the lock: freed now if no connection holds it.
}

}  // namespace mg
