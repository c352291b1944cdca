#include "start_check.h"

#include <openssl/ssl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "net/tls.h"
#include "net/tls_tickets.h"

namespace mg {

namespace {

std::string short_secret(const std::string& value) {
  if (value.empty() || value.size() >= kMinSecretBytes) return "";
  return "too short: " + std::to_string(value.size()) + " bytes, at least " + std::to_string(kMinSecretBytes) +
         " (e.g. openssl rand -base64 32)";
}

// Whether the process may append to `path`, creating it if need be; without creating it here.
std::string log_file_problem(const std::string& path) {
  if (access(path.c_str(), F_OK) == 0) return access(path.c_str(), W_OK) == 0 ? "" : std::strerror(errno);
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  if (access(dir.c_str(), W_OK | X_OK) != 0) return dir + ": " + std::strerror(errno);
  return "";
}

}  // namespace

std::string check_for_start(const Config& c) {
  const std::string at = c.source_path + ": ";
  if (c.listeners.empty()) return at + "no [listener.NAME] section: no client could connect to this node";
  if (c.mesh_port != 0) {
    std::string p = short_secret(c.mesh_secret);
    if (!p.empty()) return at + "[mesh] secret: " + p;
    p = short_secret(c.mesh_secret_accepted);
    if (!p.empty()) return at + "[mesh] secret_accepted: " + p;
  }
  std::string p = short_secret(c.api_token);
  if (!p.empty()) return at + "[api] token: " + p;
  for (const ApiToken& t : c.api_tokens) {
    p = short_secret(t.secret);
    if (!p.empty()) return at + "[api] tokens: the token named \"" + t.name + "\": " + p;
  }
  for (const ListenerConfig& l : c.listeners) {
    const std::string sec = "[listener." + l.name + "] ";
    for (size_t i = 0; i < l.token_secrets.size(); i++) {
      p = short_secret(l.token_secrets[i]);
      if (!p.empty()) return at + sec + (i == 0 ? "token_secret: " : "token_secret_previous: ") + p;
    }
    if (l.tls && !l.cert.empty()) {  // load them as start-up will (an empty cert means a development one)
      std::string note, error;
      SSL_CTX* ctx = tls_server_context(l.cert, l.key, TicketOptions{l.ticket_rotate, "", nullptr}, note, error);
      if (!ctx) return at + sec + "cert/key: " + error;
      SSL_CTX_free(ctx);
    }
    if (l.tls && !l.ticket_key_file.empty()) {  // read as start-up will, but not created here
      p = ticket_key_file_problem(l.ticket_key_file);
      if (!p.empty()) return at + sec + "ticket_key_file = " + l.ticket_key_file + ": " + p;
    }
  }
  if (c.backbone == BackboneKind::Nats) {
    // The files the NATS client loads at start: readable now, or the node would start without its
    // backbone. (Whether the servers answer is start-up's business: it keeps trying.)
    const std::pair<const char*, const std::string*> files[] = {
        {"creds", &c.nats_creds}, {"tls_ca", &c.nats_tls_ca}, {"tls_cert", &c.nats_tls_cert}, {"tls_key", &c.nats_tls_key}};
    for (const auto& [key, path] : files)
      if (!path->empty() && access(path->c_str(), R_OK) != 0)
        return at + "[nats] " + key + " = " + *path + ": cannot read: " + std::strerror(errno);
  }
  std::string state = effective_state_dir(c);
  if (state.empty() && any_topic_on_disk(c))
    return at + "[queue] store = disk needs a state directory: set [node] state_dir (systemd's StateDirectory= "
                "sets one for the packaged service)";
  if (!state.empty() && access(state.c_str(), W_OK | X_OK) != 0)
    return at + "[node] state_dir = " + state + ": not a writable directory: " + std::strerror(errno);
  if (!c.log_file.empty()) {
    p = log_file_problem(c.log_file);
    if (!p.empty()) return at + "[log] file = " + c.log_file + ": cannot write: " + p;
  }
  return "";
}

}  // namespace mg
