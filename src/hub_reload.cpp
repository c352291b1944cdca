// SIGHUP: the hub reads the configuration file again and hands each part its new values; what
// cannot change without a restart is named in a warning. Nothing established is cut: connections
// keep the certificate and the mesh links the secret they were made with (issue 25).
#include "hub.h"

#include "core/log.h"
#include "mesh/mesh_crypto.h"
#include "start_check.h"

namespace mg {

void Hub::reload() {
  Config fresh;
  std::string error;
  if (!load_config(cfg_.source_path, fresh, error)) {
    LOG_ERROR("SIGHUP: configuration not reloaded: %s", error.c_str());
    return;
  }
  // Certificates first, each listener's counted on its own: a file that does not load keeps the
  // running certificate, and the rest of the file is not applied either (as with any error).
  StagedCerts certs = stage_certificates(fresh);
  if (!(error = certs.error).empty() || !(error = check_for_start(fresh)).empty()) {
    LOG_ERROR("SIGHUP: configuration not reloaded: %s", error.c_str());
    return;
  }
  if (!log_configure(fresh.log_level, fresh.log_format, fresh.log_file, error)) LOG_ERROR("SIGHUP: cannot open log file %s", error.c_str());
  api_.set_tokens(all_api_tokens(fresh));
  api_.set_guard(fresh);
  queue_.set_limits(fresh.queue);
  WorkerLimits limits{fresh.limits, token_secrets_of(fresh)};
  bool same_listeners = fresh.listeners.size() == cfg_.listeners.size();
  for (size_t i = 0; same_listeners && i < cfg_.listeners.size(); i++)
    same_listeners = fresh.listeners[i].name == cfg_.listeners[i].name;
  if (!same_listeners) {
    LOG_WARN("SIGHUP: the listeners changed: connect-token secrets kept as they were (listeners need a restart)");
    limits.token_secrets = token_secrets_of(cfg_);
  }
  workers_.post_all([limits](Worker& w) { w.set_limits(limits); });
  swap_certificates(certs);
  if (cfg_.mesh_port != 0) mesh_reload_secrets({fresh.mesh_secret, fresh.mesh_secret_accepted});  // new links only
  std::vector<std::string> pending = keys_needing_restart(cfg_, fresh);
  if (!pending.empty()) {
    std::string list;
    for (const std::string& k : pending) list += (list.empty() ? "" : ", ") + k;
    LOG_WARN("SIGHUP: changed but not applied until a restart: %s", list.c_str());
  }
  LOG_INFO("SIGHUP: reloaded log level, format and file, API tokens, connect-token secrets, limits, queue bounds, TLS "
           "certificates and mesh secrets (for new links) from %s",
           cfg_.source_path.c_str());
}

}  // namespace mg
