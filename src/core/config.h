// Configuration: the typed form of conf/meshgate.conf.
//
// The file is INI, read with Debian's inih (libinih). Every key has a default (the values in
// conf/meshgate.conf); an unknown section or key, or a value that does not parse, is an error that
// names the key and the line. Loading never exits: the caller decides what to do with an error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mg {

enum class ListenerType { Ws, Tcp };
enum class Framing { Line, Len32 };

// Every limit's default, in one place: Config starts from these, and so do the limit structs of
// the layers that apply them (WorkerLimits, QueueLimits, HttpLimits, TokenLimits), so a part built
// without a Config (a unit test, the CLI) applies the same numbers a node does.
namespace limit_defaults {
constexpr uint32_t kApiMaxBody = 1048576;
constexpr uint64_t kApiMaxOutput = 64ull << 20;
constexpr uint32_t kRouteMaxBatch = 10000;
constexpr uint32_t kRouteMaxBody = 65536;  // the public route API buffers each body whole: keep it small
constexpr uint32_t kMaxConnections = 100000;
constexpr uint32_t kMaxHeaderBytes = 8192;
constexpr uint32_t kMaxHeaders = 64;
constexpr uint32_t kMaxContextBytes = 4096;
constexpr uint32_t kMaxContextKeys = 64;
constexpr uint32_t kMaxChannels = 256;
constexpr uint64_t kOutputHardLimit = 4ull << 20;
constexpr uint64_t kOutputSoftLimit = 1ull << 20;
constexpr uint32_t kOutputSoftSeconds = 10;
constexpr uint32_t kMessageTimeout = 60;
constexpr uint32_t kQueueMaxEvents = 10000;
constexpr uint64_t kQueueMaxBytes = 16ull << 20;
constexpr uint32_t kAckTimeout = 30;
constexpr uint32_t kMaxUnacked = 1000;
constexpr uint32_t kMaxDeliveries = 10;  // times one event is handed out before it is dropped as poison
constexpr uint32_t kQueueMaxTopics = 10000;
constexpr uint32_t kQueueTopicIdleTimeout = 300;  // seconds
constexpr uint64_t kMeshMaxLinkBuffer = 64ull << 20;
constexpr uint32_t kMaxTokenBytes = 8192;  // a connect token (not configurable: it bounds a header anyway)
}  // namespace limit_defaults

// One client listener ([listener.NAME]).
struct ListenerConfig {
  std::string name;
  ListenerType type = ListenerType::Ws;
  std::string bind = "0.0.0.0";
  int port = 0;
  std::string path;             // ws: required request path; empty accepts any
  std::string topic = "client"; // queue topic for this listener's events
  bool events = true;           // emit open/close events
  Framing framing = Framing::Line;
  uint32_t max_message = 65536;
  uint32_t idle_timeout = 60;   // seconds, 0 = never
  uint32_t ping_interval = 25;  // seconds, 0 = never (ws only)
  // The secure edge (docs/security.md).
  bool tls = false;
  std::string cert, key;             // PEM chain and key; empty cert = self-signed development certificate
  std::vector<std::string> token_secrets;  // token_secret, token_secret_previous (rotation); empty = no tokens
  std::vector<std::string> origins;  // ws: allowed Origin header values; empty = any
  uint32_t max_conns_per_ip = 0;     // 0 = unlimited
  uint32_t accept_rate = 0;          // new connections per second on this listener, 0 = unlimited
  int overflow = -1;                 // its topic's overflow: 1 pause, 0 drop, -1 as [queue] overflow

  bool needs_token() const {
    for (const std::string& s : token_secrets)
      if (!s.empty()) return true;
    return false;
  }
};

struct Config {
  // [node]
  int node_id = 1;
  std::string node_name = "meshgate-1";
  int workers = 0;  // 0 = number of cores
  std::string advertise = "127.0.0.1";
  std::string intranet_advertise;
  double route_weight = 1.0;
  uint32_t drain_timeout = 10;
  std::string state_dir;  // where the queue spool lives; empty: $STATE_DIRECTORY (systemd), else none
  // [log]
  std::string log_level = "info";
  std::string log_file;
  std::string log_format = "text";  // text | json (one JSON object a line, for log shippers)
  // [api]
  std::string api_bind = "127.0.0.1";
  int api_port = 6789;
  std::string api_token;
  std::vector<std::string> api_hosts;    // names (or name:port) the API is reached by, besides its addresses
  std::vector<std::string> api_origins;  // web origins (scheme://host[:port]) allowed to POST and open /ws/v1
  uint32_t api_max_body = limit_defaults::kApiMaxBody;
  uint64_t api_max_output = limit_defaults::kApiMaxOutput;
  // [route]
  std::string route_bind = "0.0.0.0";
  int route_port = 5001;
  uint32_t route_max_batch = limit_defaults::kRouteMaxBatch;
  uint32_t route_max_body = limit_defaults::kRouteMaxBody;
  std::string tcp_addr, ws_addr, wss_addr;
  std::string intranet_tcp_addr, intranet_ws_addr, intranet_wss_addr;
  std::string cors_origin;
  // [limits]
  uint32_t max_connections = limit_defaults::kMaxConnections;
  uint32_t max_header_bytes = limit_defaults::kMaxHeaderBytes;
  uint32_t max_headers = limit_defaults::kMaxHeaders;
  uint32_t max_context_bytes = limit_defaults::kMaxContextBytes;
  uint32_t max_context_keys = limit_defaults::kMaxContextKeys;
  uint32_t max_channels = limit_defaults::kMaxChannels;
  uint64_t output_hard_limit = limit_defaults::kOutputHardLimit;
  uint64_t output_soft_limit = limit_defaults::kOutputSoftLimit;
  uint32_t output_soft_seconds = limit_defaults::kOutputSoftSeconds;
  uint32_t message_timeout = limit_defaults::kMessageTimeout;  // seconds a client may take to complete one message; 0 = no limit
  // [queue]
  uint32_t queue_max_events = limit_defaults::kQueueMaxEvents;
  uint64_t queue_max_bytes = limit_defaults::kQueueMaxBytes;
  uint32_t ack_timeout = limit_defaults::kAckTimeout;
  uint32_t max_unacked = limit_defaults::kMaxUnacked;
  uint32_t max_deliveries = limit_defaults::kMaxDeliveries;
  uint32_t queue_max_topics = limit_defaults::kQueueMaxTopics;
  uint32_t queue_topic_idle_timeout = limit_defaults::kQueueTopicIdleTimeout;  // seconds
  bool queue_pause_on_overflow = true;  // [queue] overflow = pause (else drop); a listener may override
  // [mesh]
  std::string mesh_bind = "0.0.0.0";
  int mesh_port = 0;  // 0 = single-node mode
  std::string mesh_advertise;
  std::string mesh_cluster = "meshgate";
  std::string mesh_secret;
  bool mesh_encrypt = true;  // AES-256-GCM on every frame after the handshake (else authenticated only)
  std::vector<std::string> mesh_seeds;
  uint32_t mesh_dead_after = 3;
  uint32_t mesh_call_timeout = 2;
  uint64_t mesh_max_link_buffer = limit_defaults::kMeshMaxLinkBuffer;
  // [listener.*]
  std::vector<ListenerConfig> listeners;

  std::string source_path;  // the file it was loaded from
};

// The state directory in effect: [node] state_dir, else the first of systemd's $STATE_DIRECTORY,
// else "" (no spool: events still held when the node stops are lost, and the log says how many).
std::string effective_state_dir(const Config& c);

// Loads `path` into `out`. On failure returns false and sets `error` to a message of the form
// "FILE:LINE: [section] key: what is wrong".
bool load_config(const std::string& path, Config& out, std::string& error);

// The keys whose value differs between `running` and `fresh` that a reload cannot apply (ports,
// addresses, the mesh, the node's identity, listeners other than their token secrets): each as
// "[section] key", for the log line that says a restart is needed. A reload applies [log], the
// API token, [limits], [queue] and connect-token secrets.
std::vector<std::string> keys_needing_restart(const Config& running, const Config& fresh);

// Parses INI text (for tests); `name` is used in error messages.
bool parse_config_text(const std::string& text, const std::string& name, Config& out,
                       std::string& error);

}  // namespace mg
