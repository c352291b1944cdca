// The TLS listeners' certificates as they change (issue 25): SIGHUP loads each listener's chain and
// key again (the same paths with new contents, as certbot leaves them, or new paths) into a new
// context, and swaps it in for new handshakes only (net/tls_slot.h). Two steps, so that a reload
// applies every certificate or none: stage_certificates loads them all, and the swap happens only
// once the whole configuration is known to be good.
#include <ctime>

#include "core/log.h"
#include "core/metrics.h"
#include "hub.h"
#include "net/tls_tickets.h"

namespace mg {

namespace {

std::string describe(SSL_CTX* ctx) {
  TlsCertInfo info;
  if (!tls_cert_info(ctx, info)) return "no certificate";
  std::string days = std::to_string((info.not_after - static_cast<int64_t>(std::time(nullptr))) / 86400);
  return info.subject + " (SHA-256 " + info.fingerprint + "), expires " + utc_date(info.not_after) + " (in " + days +
         " days)";
}

}  // namespace

void Hub::log_certificate(size_t listener, const char* when, const std::string& path) const {
  const TlsSlot* slot = listeners_shared_[listener].tls.get();
  if (!slot) return;
  LOG_INFO("%s[listener.%s] certificate %s, from %s", when, cfg_.listeners[listener].name.c_str(),
           describe(slot->current().get()).c_str(), path.empty() ? "memory (development)" : path.c_str());
}

Hub::StagedCerts Hub::stage_certificates(const Config& fresh) {
  StagedCerts staged;
  for (size_t i = 0; i < cfg_.listeners.size(); i++) {
    TlsSlot* slot = listeners_shared_[i].tls.get();
    const ListenerConfig* n = nullptr;
    for (const ListenerConfig& l : fresh.listeners) n = l.name == cfg_.listeners[i].name ? &l : n;
    // A listener gone, turned to plain TCP or to the development certificate: a restart's business
    // (keys_needing_restart names it); the running certificate stays.
    if (!slot || !n || !n->tls || n->cert.empty()) continue;
    std::string note, error;
    TlsContextRef ctx(tls_server_context(n->cert, n->key,
                                         TicketOptions{n->ticket_rotate, "", shared_ticket_keys_of(slot->current().get())},
                                         note, error));
    if (!ctx) {
      slot->count_reload_failure();
      LOG_ERROR("SIGHUP: [listener.%s] cert/key not loaded, the running certificate stays: %s", n->name.c_str(),
                error.c_str());
      if (staged.error.empty()) staged.error = "[listener." + n->name + "] cert/key: " + error;
      continue;
    }
    staged.contexts.push_back(StagedCerts::Context{i, std::move(ctx), n->cert});
  }
  return staged;
}

void Hub::swap_certificates(StagedCerts& staged) {
  for (StagedCerts::Context& c : staged.contexts) {
    listeners_shared_[c.listener].tls->replace(std::move(c.ctx));
    log_certificate(c.listener, "SIGHUP: ", c.path);
  }
  staged.contexts.clear();
}

void Hub::render_tls_metrics(PromWriter& w) const {
  w.family("meshgate_tls_cert_expiry_timestamp_seconds", "gauge",
           "When the certificate a TLS listener serves to new handshakes expires (unix seconds).");
  for (size_t i = 0; i < listeners_shared_.size(); i++)
    if (const TlsSlot* slot = listeners_shared_[i].tls.get())
      w.sample("meshgate_tls_cert_expiry_timestamp_seconds", {{"listener", cfg_.listeners[i].name}},
               static_cast<uint64_t>(slot->not_after() > 0 ? slot->not_after() : 0));
  w.family("meshgate_tls_cert_reload_failures_total", "counter",
           "Reloads (SIGHUP) that found a TLS listener's cert or key unusable and kept the running certificate.");
  for (size_t i = 0; i < listeners_shared_.size(); i++)
    if (const TlsSlot* slot = listeners_shared_[i].tls.get())
      w.sample("meshgate_tls_cert_reload_failures_total", {{"listener", cfg_.listeners[i].name}},
               slot->reload_failures());
}

}  // namespace mg
