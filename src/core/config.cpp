// Reads conf/meshgate.conf-style INI text with inih into mg::Config.
//
// inih calls us once per key; we know the line because we feed it lines ourselves (ini_parse_stream
// with a reader that counts them). The first error wins and parsing stops being useful after it, but
// we let inih finish so that the message names the first bad line.
#include "core/config.h"

#include "core/addr.h"
#include "core/node_info.h"

#include <ini.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <algorithm>
#include <map>
#include <sstream>
#include <vector>

#include "core/log.h"

namespace mg {
namespace {

struct ParseState {
  Config* cfg;
  std::string name;   // file name for messages
  const std::string* text;
  size_t pos = 0;
  int line = 0;
  std::string error;  // first error
  int error_line = 0;
  // inih has no callback for section headers; the reader counts them so that a section that
  // appears twice ([listener.a] ... [listener.a]) can be told from one section's second key.
  int section_seq = 0, seen_seq = -1, section_line = 0;
  std::vector<int> listener_line, port_line;  // per listener: its header line, its port line
  std::map<std::string, int> key_line;        // "section.key" → the line that set it last
};

// Debian's inih reads lines into a fixed 200-byte buffer (INI_MAX_LINE): longer lines would be
// split and misread, so the reader replaces a long comment by an empty one and stops at a long
// key line with an error of its own.
constexpr int kMaxLine = 200;

bool is_comment_or_blank(const char* p, size_t n) {
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
  return i == n || p[i] == ';' || p[i] == '#' || p[i] == '\r' || p[i] == '\n';
}

// inih reader: like fgets over the text, counting lines and section headers.
char* read_line(char* buf, int size, void* stream) {
  auto* st = static_cast<ParseState*>(stream);
  const std::string& t = *st->text;
  if (st->pos >= t.size() || !st->error.empty()) return nullptr;
  size_t end = t.find('\n', st->pos);
  size_t len = (end == std::string::npos ? t.size() : end + 1) - st->pos;
  const char* line = t.data() + st->pos;
  st->pos += len;
  st->line++;
  size_t i = 0;
  while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
  if (i < len && line[i] == '[') {
    st->section_seq++;
    st->section_line = st->line;
  }
  if (len > static_cast<size_t>(size - 1)) {
    if (!is_comment_or_blank(line, len)) {
      st->error = st->name + ":" + std::to_string(st->line) + ": line is longer than " +
                  std::to_string(kMaxLine - 2) + " bytes";
      st->error_line = st->line;
      return nullptr;
    }
    len = 0;  // a long comment: hand inih an empty line
    buf[len++] = '\n';
  } else {
    std::memcpy(buf, line, len);
  }
  buf[len] = '\0';
  return buf;
}

bool parse_u64(const std::string& v, uint64_t max, uint64_t& out) {
  if (v.empty() || v[0] == '-' || v[0] == '+') return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (errno || *end != '\0' || n > max) return false;
  out = n;
  return true;
}

// "a, b ,c" → {"a","b","c"}: comma-separated, white space around items dropped, empty items skipped.
std::vector<std::string> split_list(const std::string& v) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= v.size()) {
    size_t comma = v.find(',', pos);
    if (comma == std::string::npos) comma = v.size();
    std::string item = v.substr(pos, comma - pos);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(std::move(item));
    pos = comma + 1;
  }
  return out;
}

bool parse_bool(const std::string& v, bool& out) {
  if (v == "on" || v == "true" || v == "yes" || v == "1") { out = true; return true; }
  if (v == "off" || v == "false" || v == "no" || v == "0") { out = false; return true; }
  return false;
}

// A setter returns an empty string on success, else what is wrong with the value.
using Setter = std::function<std::string(Config&, const std::string&)>;

template <typename T>
std::string set_uint(T& field, const std::string& v, uint64_t min, uint64_t max) {
  uint64_t n;
  if (!parse_u64(v, max, n) || n < min)
    return "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max);
  field = static_cast<T>(n);
  return "";
}

template <typename T>
Setter uint_key(T Config::*field, uint64_t min, uint64_t max) {
  return [=](Config& c, const std::string& v) { return set_uint(c.*field, v, min, max); };
}

// A field of one of Config's limit structs: `section` is Config::limits or Config::queue.
template <typename S, typename T>
Setter uint_key(S Config::*section, T S::*field, uint64_t min, uint64_t max) {
  return [=](Config& c, const std::string& v) { return set_uint(c.*section.*field, v, min, max); };
}

Setter string_key(std::string Config::*field) {
  return [=](Config& c, const std::string& v) -> std::string { c.*field = v; return ""; };
}

const std::map<std::string, Setter>& global_keys() {
  static const std::map<std::string, Setter> keys = {
      {"node.id", uint_key(&Config::node_id, 1, kMaxNodeId)},
      {"node.name", string_key(&Config::node_name)},
      {"node.workers", uint_key(&Config::workers, 0, 256)},
      {"node.advertise", string_key(&Config::advertise)},
      {"node.intranet_advertise", string_key(&Config::intranet_advertise)},
      {"node.route_weight", [](Config& c, const std::string& v) -> std::string {
         char* end = nullptr;
         double w = std::strtod(v.c_str(), &end);
         if (v.empty() || *end != '\0' || !(w > 0) || w > 1e6) return "expected a number > 0";
         c.route_weight = w;
         return "";
       }},
      {"node.drain_timeout", uint_key(&Config::drain_timeout, 0, 3600)},
      {"node.state_dir", string_key(&Config::state_dir)},
      {"log.level", [](Config& c, const std::string& v) -> std::string {
         LogLevel l;
         if (!parse_log_level(v, l)) return "expected error, warn, info or debug";
         c.log_level = v;
         return "";
       }},
      {"log.file", string_key(&Config::log_file)},
      {"log.format", [](Config& c, const std::string& v) -> std::string {
         LogFormat f;
         if (!parse_log_format(v, f)) return "expected text or json";
         c.log_format = v;
         return "";
       }},
      {"api.bind", string_key(&Config::api_bind)},
      {"api.port", uint_key(&Config::api_port, 1, 65535)},
      {"api.token", string_key(&Config::api_token)},
      {"api.tokens", [](Config& c, const std::string& v) -> std::string {
         c.api_tokens.clear();
         for (const std::string& item : split_list(v)) {
           const size_t colon = item.find(':');
           ApiToken t{item.substr(0, colon), colon == std::string::npos ? "" : item.substr(colon + 1)};
           if (t.name.empty() || t.secret.empty() || t.name.size() > 64 ||
               t.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
                   std::string::npos)
             return "expected name:secret, ... (names of letters, digits, _ . -; at most 64)";
           for (const ApiToken& o : c.api_tokens)
             if (o.name == t.name || o.secret == t.secret) return "the name \"" + t.name + "\" or its secret is given twice";
           c.api_tokens.push_back(std::move(t));
         }
         return "";
       }},
      {"api.hosts", [](Config& c, const std::string& v) -> std::string {
         c.api_hosts = split_list(v);
         for (const std::string& h : c.api_hosts)
           if (h.find_first_of("/ \t") != std::string::npos) return "expected names (or name:port), comma-separated";
         return "";
       }},
      {"api.origins", [](Config& c, const std::string& v) -> std::string {
         c.api_origins = split_list(v);
         for (const std::string& o : c.api_origins)
           if ((o.rfind("http://", 0) != 0 && o.rfind("https://", 0) != 0) || o.find('/', o.find("//") + 2) != std::string::npos)
             return "expected origins such as https://ops.example.com (scheme://host[:port], no path), comma-separated";
         return "";
       }},
      {"api.max_body", uint_key(&Config::api_max_body, 64, 1u << 30)},
      {"api.max_output", uint_key(&Config::api_max_output, 65536, 1ull << 40)},
      {"route.bind", string_key(&Config::route_bind)},
      {"route.port", uint_key(&Config::route_port, 0, 65535)},
      {"route.max_batch", uint_key(&Config::route_max_batch, 1, 10000000)},
      {"route.max_body", uint_key(&Config::route_max_body, 64, 16u << 20)},
      {"route.tcp_addr", string_key(&Config::tcp_addr)},
      {"route.ws_addr", string_key(&Config::ws_addr)},
      {"route.wss_addr", string_key(&Config::wss_addr)},
      {"route.intranet_tcp_addr", string_key(&Config::intranet_tcp_addr)},
      {"route.intranet_ws_addr", string_key(&Config::intranet_ws_addr)},
      {"route.intranet_wss_addr", string_key(&Config::intranet_wss_addr)},
      {"route.cors_origin", string_key(&Config::cors_origin)},
      {"limits.max_connections", uint_key(&Config::limits, &ClientLimits::max_connections, 1, 100000000)},
      {"limits.max_header_bytes", uint_key(&Config::limits, &ClientLimits::max_header_bytes, 256, 1u << 20)},
      {"limits.max_headers", uint_key(&Config::limits, &ClientLimits::max_headers, 4, 1000)},
      {"limits.max_context_bytes", uint_key(&Config::limits, &ClientLimits::max_context_bytes, 2, 1u << 24)},
      {"limits.max_context_keys", uint_key(&Config::limits, &ClientLimits::max_context_keys, 1, 100000)},
      {"limits.max_channels", uint_key(&Config::limits, &ClientLimits::max_channels, 1, 1000000)},
      {"limits.output_hard_limit", uint_key(&Config::limits, &ClientLimits::output_hard_limit, 1024, 1ull << 40)},
      {"limits.output_soft_limit", uint_key(&Config::limits, &ClientLimits::output_soft_limit, 1024, 1ull << 40)},
      {"limits.output_soft_seconds", uint_key(&Config::limits, &ClientLimits::output_soft_seconds, 0, 86400)},
      {"limits.message_timeout", uint_key(&Config::limits, &ClientLimits::message_timeout, 0, 86400)},
      {"limits.handshake_budget", uint_key(&Config::limits, &ClientLimits::handshake_budget, 0, 1000000)},
      {"limits.accept_budget", uint_key(&Config::limits, &ClientLimits::accept_budget, 0, 1000000)},
      {"cluster.backbone", [](Config& c, const std::string& v) -> std::string {
         if (v == "mesh") c.backbone = BackboneKind::Mesh;
         else if (v == "nats") c.backbone = BackboneKind::Nats;
         else return "expected mesh or nats";
         return "";
       }},
      {"nats.servers", [](Config& c, const std::string& v) -> std::string {
         c.nats_servers = split_list(v);
         for (const std::string& s : c.nats_servers)
           if (s.rfind("nats://", 0) != 0 && s.rfind("tls://", 0) != 0)
             return "expected nats://host:port or tls://host:port, ... (\"" + s + "\")";
         return "";
       }},
      {"nats.user", string_key(&Config::nats_user)},
      {"nats.password", string_key(&Config::nats_password)},
      {"nats.token", string_key(&Config::nats_token)},
      {"nats.creds", string_key(&Config::nats_creds)},
      {"nats.tls_ca", string_key(&Config::nats_tls_ca)},
      {"nats.tls_cert", string_key(&Config::nats_tls_cert)},
      {"nats.tls_key", string_key(&Config::nats_tls_key)},
      {"nats.publish_wait_ms", uint_key(&Config::nats_publish_wait_ms, 1, 60000)},
      {"nats.max_pending_bytes", uint_key(&Config::nats_max_pending_bytes, 65536, 1ull << 40)},
      {"nats.stream_max_bytes", uint_key(&Config::nats_stream_max_bytes, 1ull << 20, 1ull << 50)},
      {"nats.stream_replicas", uint_key(&Config::nats_stream_replicas, 1, 5)},
      {"mesh.bind", string_key(&Config::mesh_bind)},
      {"mesh.port", uint_key(&Config::mesh_port, 0, 65535)},
      {"mesh.advertise", string_key(&Config::mesh_advertise)},
      {"mesh.cluster", [](Config& c, const std::string& v) -> std::string {
         if (v.empty() || v.size() > 64) return "expected a name of 1..64 bytes";
         c.mesh_cluster = v;
         return "";
       }},
      {"mesh.secret", string_key(&Config::mesh_secret)},
      {"mesh.secret_accepted", string_key(&Config::mesh_secret_accepted)},
      {"mesh.encrypt", [](Config& c, const std::string& v) -> std::string {
         return parse_bool(v, c.mesh_encrypt) ? "" : "expected on or off";
       }},
      {"mesh.seeds", [](Config& c, const std::string& v) -> std::string {
         c.mesh_seeds = split_list(v);
         for (const std::string& seed : c.mesh_seeds) {
           std::string host, port;
           if (!split_host_port(seed, host, port))
             return "expected host:port, ... (\"" + seed + "\" has no port)";
         }
         return "";
       }},
      {"mesh.dead_after", uint_key(&Config::mesh_dead_after, 1, 3600)},
      {"mesh.call_timeout", uint_key(&Config::mesh_call_timeout, 1, 3600)},
      {"mesh.max_link_buffer", uint_key(&Config::mesh_max_link_buffer, 65536, 1ull << 40)},
      {"mesh.max_interest", uint_key(&Config::mesh_max_interest, 1, 10000000)},
      {"queue.max_events", uint_key(&Config::queue, &QueueLimits::max_events, 1, 100000000)},
      {"queue.max_bytes", uint_key(&Config::queue, &QueueLimits::max_bytes, 1024, 1ull << 40)},
      {"queue.ack_timeout", uint_key(&Config::queue, &QueueLimits::ack_timeout_s, 1, 86400)},
      {"queue.max_unacked", uint_key(&Config::queue, &QueueLimits::max_unacked, 1, 1000000)},
      {"queue.max_deliveries", uint_key(&Config::queue, &QueueLimits::max_deliveries, 1, 1000000)},
      {"queue.max_topics", uint_key(&Config::queue, &QueueLimits::max_topics, 1, 1000000)},
      {"queue.topic_idle_timeout", uint_key(&Config::queue, &QueueLimits::topic_idle_s, 1, 86400)},
      {"queue.max_disk", uint_key(&Config::queue, &QueueLimits::max_disk, 1ull << 20, 1ull << 50)},
      {"queue.max_disk_total", uint_key(&Config::queue, &QueueLimits::max_disk_total, 0, 1ull << 50)},
      {"queue.overflow", [](Config& c, const std::string& v) -> std::string {
         if (v != "pause" && v != "drop") return "expected pause or drop";
         c.queue_pause_on_overflow = v == "pause";
         return "";
       }},
      {"queue.store", [](Config& c, const std::string& v) -> std::string {
         if (v != "memory" && v != "disk") return "expected memory or disk";
         c.queue_storage.disk = v == "disk";
         return "";
       }},
      {"queue.fsync", [](Config& c, const std::string& v) -> std::string {
         if (v == "batch") c.queue_storage.fsync = FsyncMode::Batch;
         else if (v == "always") c.queue_storage.fsync = FsyncMode::Always;
         else if (v == "off") c.queue_storage.fsync = FsyncMode::Off;
         else return "expected batch, always or off";
         return "";
       }},
      {"queue.fsync_interval", uint_key(&Config::queue_storage, &QueueStorage::fsync_interval_ms, 1, 10000)},
  };
  return keys;
}

std::string set_listener_key(ListenerConfig& l, const std::string& key, const std::string& v) {
  uint64_t n;
  if (key == "type") {
    if (v == "ws") l.type = ListenerType::Ws;
    else if (v == "tcp") l.type = ListenerType::Tcp;
    else return "expected ws or tcp";
  } else if (key == "bind") {
    l.bind = v;
  } else if (key == "port") {
    if (!parse_u64(v, 65535, n) || n == 0) return "expected a port from 1 to 65535";
    l.port = static_cast<int>(n);
  } else if (key == "path") {
    if (!v.empty() && v[0] != '/') return "expected a path starting with /";
    l.path = v;
  } else if (key == "topic") {
    if (v.empty() || v.size() > 128) return "expected a topic name of 1..128 bytes";
    l.topic = v;
  } else if (key == "events") {
    if (!parse_bool(v, l.events)) return "expected on or off";
  } else if (key == "framing") {
    if (v == "line") l.framing = Framing::Line;
    else if (v == "len32") l.framing = Framing::Len32;
    else return "expected line or len32";
  } else if (key == "max_message") {
    if (!parse_u64(v, 64u << 20, n) || n < 16) return "expected a size from 16 to 67108864";
    l.max_message = static_cast<uint32_t>(n);
  } else if (key == "idle_timeout") {
    if (!parse_u64(v, 86400, n)) return "expected seconds from 0 to 86400";
    l.idle_timeout = static_cast<uint32_t>(n);
  } else if (key == "ping_interval") {
    if (!parse_u64(v, 86400, n)) return "expected seconds from 0 to 86400";
    l.ping_interval = static_cast<uint32_t>(n);
  } else if (key == "tls") {
    if (!parse_bool(v, l.tls)) return "expected on or off";
  } else if (key == "cert") {
    l.cert = v;
  } else if (key == "key") {
    l.key = v;
  } else if (key == "ticket_rotate") {
    if (!parse_u64(v, limit_defaults::kTicketRotateMax, n) || n < limit_defaults::kTicketRotateMin)
      return "expected seconds from 60 to 604800";
    l.ticket_rotate = static_cast<uint32_t>(n);
  } else if (key == "ticket_key_file") {
    l.ticket_key_file = v;
  } else if (key == "token_secret" || key == "token_secret_previous") {
    size_t slot = key == "token_secret" ? 0 : 1;
    if (l.token_secrets.size() < 2) l.token_secrets.resize(2);
    l.token_secrets[slot] = v;
  } else if (key == "origins") {
    l.origins = split_list(v);
  } else if (key == "max_conns_per_ip") {
    if (!parse_u64(v, 1000000, n)) return "expected a number from 0 to 1000000";
    l.max_conns_per_ip = static_cast<uint32_t>(n);
  } else if (key == "overflow") {
    if (v != "pause" && v != "drop") return "expected pause or drop";
    l.overflow = v == "pause";
  } else if (key == "store") {
    if (v != "memory" && v != "disk") return "expected memory or disk";
    l.store = v == "disk";
  } else if (key == "accept_rate") {
    if (!parse_u64(v, 10000000, n)) return "expected connections per second from 0 to 10000000";
    l.accept_rate = static_cast<uint32_t>(n);
  } else {
    return "unknown key";
  }
  return "";
}

int on_key(void* user, const char* section, const char* name, const char* value) {
  auto* st = static_cast<ParseState*>(user);
  if (!st->error.empty()) return 1;
  std::string sec = section, key = name, val = value;
  std::string problem;
  bool new_section = st->section_seq != st->seen_seq;
  st->seen_seq = st->section_seq;
  // A key given twice (also in a repeated section): which one counts would be a guess.
  auto seen = st->key_line.find(sec + "." + key);
  std::string twice = seen == st->key_line.end() ? "" : "given twice (first at line " + std::to_string(seen->second) + ")";
  if (sec.rfind("listener.", 0) == 0) {
    std::string lname = sec.substr(9);
    auto& ls = st->cfg->listeners;
    if (lname.empty()) {
      problem = "a listener section needs a name: [listener.NAME]";
    } else if (new_section) {
      for (const auto& l : ls)
        if (l.name == lname) problem = "listener defined twice";
      if (problem.empty()) {
        ls.emplace_back();
        ls.back().name = lname;
        st->listener_line.push_back(st->section_line);
        st->port_line.push_back(0);
      }
    }
    if (problem.empty()) problem = twice;
    if (problem.empty()) problem = set_listener_key(ls.back(), key, val);
    if (problem.empty() && key == "port") st->port_line.back() = st->line;
  } else {
    auto it = global_keys().find(sec + "." + key);
    problem = it == global_keys().end() ? "unknown key" : !twice.empty() ? twice : it->second(*st->cfg, val);
  }
  if (!problem.empty()) {
    // A secret's value is not repeated: the error reaches terminals, the journal and CI logs.
    const bool secret = key == "token" || key == "tokens" || key.find("secret") != std::string::npos;
    st->error = st->name + ":" + std::to_string(st->line) + ": [" + sec + "] " + key + (secret ? "" : " = " + val) +
                ": " + problem;
    st->error_line = st->line;
    return 0;
  }
  st->key_line[sec + "." + key] = st->line;
  return 1;
}

bool topic_pauses(const Config& c, const ListenerConfig& l) {
  return l.overflow < 0 ? c.queue_pause_on_overflow : l.overflow == 1;
}

// Checks that hold across keys. Returns "LINE: message" (the line of the key that completed the
// conflict), or "" when all is well.
std::string validate(const Config& c, const ParseState& st) {
  auto at = [](int line, const std::string& msg) { return std::to_string(line) + ": " + msg; };
  auto line_of = [&](const char* key) {
    auto it = st.key_line.find(key);
    return it == st.key_line.end() ? 0 : it->second;
  };
  if (c.backbone == BackboneKind::Nats) {
#ifndef MESHGATE_NATS
    return at(line_of("cluster.backbone"), "[cluster] backbone = nats: this build has no NATS support (built with -Dnats=disabled)");
#endif
    if (c.nats_servers.empty()) return at(line_of("cluster.backbone"), "[cluster] backbone = nats needs [nats] servers");
    if (!c.nats_user.empty() != !c.nats_password.empty())
      return at(std::max(line_of("nats.user"), line_of("nats.password")), "[nats] user and password go together");
    if (!c.nats_tls_cert.empty() != !c.nats_tls_key.empty())
      return at(std::max(line_of("nats.tls_cert"), line_of("nats.tls_key")), "[nats] tls_cert and tls_key go together");
    if (c.mesh_port != 0) return at(line_of("mesh.port"), "[mesh] port: the mesh does not run with [cluster] backbone = nats (set it to 0)");
  }
  if (c.mesh_port != 0 && c.mesh_secret.empty())
    return at(line_of("mesh.port"), "[mesh] secret is required when the mesh is on (port != 0)");
  for (const ApiToken& t : c.api_tokens)
    if (!c.api_token.empty() && (t.name == "default" || t.secret == c.api_token))
      return at(std::max(line_of("api.token"), line_of("api.tokens")),
                "[api] tokens: \"default\" is [api] token's name, and each token's secret must differ from it");
  if (c.limits.output_soft_limit > c.limits.output_hard_limit)
    return at(std::max(line_of("limits.output_soft_limit"), line_of("limits.output_hard_limit")),
              "[limits] output_soft_limit is above output_hard_limit");
  for (size_t i = 0; i < c.listeners.size(); i++) {
    const ListenerConfig& l = c.listeners[i];
    if (l.port == 0) return at(st.listener_line[i], "[listener." + l.name + "] port is missing");
    // A queue event of the largest message (base64 and JSON around it) must fit a consumer's
    // output window (a quarter of max_output), or it would close every consumer it is given to.
    if (uint64_t{l.max_message} * 8 > c.api_max_output)
      return at(std::max(line_of("api.max_output"), st.listener_line[i]),
                "[api] max_output must be at least 8 x [listener." + l.name + "] max_message (" +
                    std::to_string(uint64_t{l.max_message} * 8) + ")");
    if (!l.tls && !l.ticket_key_file.empty())
      return at(line_of(("listener." + l.name + ".ticket_key_file").c_str()),
                "[listener." + l.name + "] ticket_key_file needs tls = on");
    if (l.token_secrets.size() == 2 && l.token_secrets[0].empty() && !l.token_secrets[1].empty())
      return at(st.listener_line[i], "[listener." + l.name + "] token_secret_previous needs token_secret");
    for (size_t j = 0; j < i; j++) {
      const ListenerConfig& o = c.listeners[j];
      if (o.topic == l.topic && topic_pauses(c, o) != topic_pauses(c, l))
        return at(st.listener_line[i], "[listener." + l.name + "] overflow: its topic \"" + l.topic +
                                           "\" is also [listener." + o.name + "]'s, with the other overflow");
      if (o.topic == l.topic && topic_on_disk(c, o) != topic_on_disk(c, l))
        return at(st.listener_line[i], "[listener." + l.name + "] store: its topic \"" + l.topic +
                                           "\" is also [listener." + o.name + "]'s, with the other store");
      if (o.port == l.port && o.bind == l.bind)
        return at(st.port_line[i], "[listener." + l.name + "] port = " + std::to_string(l.port) +
                                       ": [listener." + o.name + "] uses the same port");
    }
  }
  return "";
}

}  // namespace

bool parse_config_text(const std::string& text, const std::string& name, Config& out, std::string& error) {
  Config cfg;
  ParseState st{&cfg, name, &text};
  int rc = ini_parse_stream(read_line, &st, on_key, &st);
  // inih returns the first bad line, ours or its own: a syntax error before our first error wins.
  if (rc > 0 && (st.error.empty() || rc < st.error_line)) {
    error = name + ":" + std::to_string(rc) + ": syntax error (expected [section] or key = value)";
    return false;
  }
  if (!st.error.empty()) { error = st.error; return false; }
  if (rc < 0) { error = name + ": cannot read"; return false; }
  std::string problem = validate(cfg, st);
  if (!problem.empty()) { error = name + ":" + problem; return false; }
  cfg.source_path = name;
  out = std::move(cfg);
  return true;
}

std::vector<ApiToken> all_api_tokens(const Config& c) {
  std::vector<ApiToken> all;
  if (!c.api_token.empty()) all.push_back(ApiToken{"default", c.api_token});
  all.insert(all.end(), c.api_tokens.begin(), c.api_tokens.end());
  return all;
}

bool topic_on_disk(const Config& c, const ListenerConfig& l) { return l.store < 0 ? c.queue_storage.disk : l.store == 1; }

bool any_topic_on_disk(const Config& c) {
  bool any = c.queue_storage.disk;
  for (const ListenerConfig& l : c.listeners) any = any || topic_on_disk(c, l);
  return any;
}

std::string effective_state_dir(const Config& c) {
  if (!c.state_dir.empty()) return c.state_dir;
  const char* env = std::getenv("STATE_DIRECTORY");  // systemd's StateDirectory=, colon-separated
  std::string dirs = env ? env : "";
  return dirs.substr(0, dirs.find(':'));
}

std::vector<std::string> keys_needing_restart(const Config& a, const Config& b) {
  std::vector<std::string> out;
  auto check = [&out](const char* key, bool same) {
    if (!same) out.emplace_back(key);
  };
  check("[node] id", a.node_id == b.node_id);
  check("[node] name", a.node_name == b.node_name);
  check("[node] workers", a.workers == b.workers);
  check("[node] advertise", a.advertise == b.advertise);
  check("[node] intranet_advertise", a.intranet_advertise == b.intranet_advertise);
  check("[node] route_weight", a.route_weight == b.route_weight);
  check("[node] drain_timeout", a.drain_timeout == b.drain_timeout);
  check("[node] state_dir", a.state_dir == b.state_dir);
  check("[api] bind", a.api_bind == b.api_bind);
  check("[api] port", a.api_port == b.api_port);
  check("[api] max_body", a.api_max_body == b.api_max_body);
  check("[api] max_output", a.api_max_output == b.api_max_output);
  check("[route] bind", a.route_bind == b.route_bind);
  check("[route] port", a.route_port == b.route_port);
  check("[route] max_batch", a.route_max_batch == b.route_max_batch);
  check("[route] max_body", a.route_max_body == b.route_max_body);
  check("[route] addresses (tcp, ws, wss and their intranet_ forms)",
        a.tcp_addr == b.tcp_addr && a.ws_addr == b.ws_addr && a.wss_addr == b.wss_addr &&
            a.intranet_tcp_addr == b.intranet_tcp_addr && a.intranet_ws_addr == b.intranet_ws_addr &&
            a.intranet_wss_addr == b.intranet_wss_addr);
  check("[route] cors_origin", a.cors_origin == b.cors_origin);
  check("[queue] overflow", a.queue_pause_on_overflow == b.queue_pause_on_overflow);
  check("[queue] store", a.queue_storage.disk == b.queue_storage.disk);
  check("[queue] fsync, fsync_interval", a.queue_storage.fsync == b.queue_storage.fsync &&
                                             a.queue_storage.fsync_interval_ms == b.queue_storage.fsync_interval_ms);
  check("[cluster] backbone", a.backbone == b.backbone);
  check("[nats] (every key)", a.nats_servers == b.nats_servers && a.nats_user == b.nats_user &&
                                  a.nats_password == b.nats_password && a.nats_token == b.nats_token &&
                                  a.nats_creds == b.nats_creds && a.nats_tls_ca == b.nats_tls_ca &&
                                  a.nats_tls_cert == b.nats_tls_cert && a.nats_tls_key == b.nats_tls_key &&
                                  a.nats_publish_wait_ms == b.nats_publish_wait_ms &&
                                  a.nats_max_pending_bytes == b.nats_max_pending_bytes &&
                                  a.nats_stream_max_bytes == b.nats_stream_max_bytes &&
                                  a.nats_stream_replicas == b.nats_stream_replicas);
  check("[mesh] bind", a.mesh_bind == b.mesh_bind);
  check("[mesh] port", a.mesh_port == b.mesh_port);
  check("[mesh] advertise", a.mesh_advertise == b.mesh_advertise);
  check("[mesh] cluster", a.mesh_cluster == b.mesh_cluster);
  check("[mesh] encrypt", a.mesh_encrypt == b.mesh_encrypt);
  check("[mesh] seeds", a.mesh_seeds == b.mesh_seeds);
  check("[mesh] dead_after", a.mesh_dead_after == b.mesh_dead_after);
  check("[mesh] call_timeout", a.mesh_call_timeout == b.mesh_call_timeout);
  check("[mesh] max_link_buffer", a.mesh_max_link_buffer == b.mesh_max_link_buffer);
  check("[mesh] max_interest", a.mesh_max_interest == b.mesh_max_interest);
  for (const ListenerConfig& n : b.listeners) {
    const ListenerConfig* o = nullptr;
    for (const ListenerConfig& l : a.listeners) o = l.name == n.name ? &l : o;
    const std::string sec = "[listener." + n.name + "]";
    if (!o) {
      out.push_back(sec + " (a new listener)");
      continue;
    }
    auto lcheck = [&](const char* key, bool same) {
      if (!same) out.push_back(sec + " " + key);
    };
    lcheck("type", o->type == n.type);
    lcheck("bind", o->bind == n.bind);
    lcheck("port", o->port == n.port);
    lcheck("path", o->path == n.path);
    lcheck("topic", o->topic == n.topic);
    lcheck("events", o->events == n.events);
    lcheck("framing", o->framing == n.framing);
    lcheck("max_message", o->max_message == n.max_message);
    lcheck("idle_timeout", o->idle_timeout == n.idle_timeout);
    lcheck("ping_interval", o->ping_interval == n.ping_interval);
    lcheck("tls", o->tls == n.tls);
    // cert and key reload (hub_tls.cpp), but not from a file to the development certificate
    lcheck("cert (to none: the development certificate)", n.cert.empty() ? o->cert.empty() : true);
    lcheck("ticket_rotate", o->ticket_rotate == n.ticket_rotate);
    lcheck("ticket_key_file", o->ticket_key_file == n.ticket_key_file);
    lcheck("origins", o->origins == n.origins);
    lcheck("max_conns_per_ip", o->max_conns_per_ip == n.max_conns_per_ip);
    lcheck("accept_rate", o->accept_rate == n.accept_rate);
    lcheck("overflow", o->overflow == n.overflow);
    lcheck("store", o->store == n.store);
  }
  for (const ListenerConfig& o : a.listeners) {
    bool kept = false;
    for (const ListenerConfig& n : b.listeners) kept = kept || n.name == o.name;
    if (!kept) out.push_back("[listener." + o.name + "] (removed)");
  }
  return out;
}

bool load_config(const std::string& path, Config& out, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) { error = path + ": " + std::strerror(errno); return false; }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config_text(ss.str(), path, out, error);
}

}  // namespace mg
