// Configuration: the typed form of conf/meshgate.conf.
//
// The file is INI, read with Debian's inih (libinih). Every key has a default (the values in
// conf/meshgate.conf); an unknown section or key, or a value that does not parse, is an error that
// names the key and the line. Loading never exits: the caller decides what to do with an error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/limits.h"

namespace mg {

enum class ListenerType { Ws, Tcp };
enum class Framing { Line, Len32 };
enum class BackboneKind { Mesh, Nats };


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
  uint32_t ticket_rotate = limit_defaults::kTicketRotate;  // seconds between ticket key rotations
  std::string ticket_key_file;       // where the ticket keys outlive a restart; empty = in memory only
  std::vector<std::string> token_secrets;  // token_secret, token_secret_previous (rotation); empty = no tokens
  std::vector<std::string> origins;  // ws: allowed Origin header values; empty = any
  uint32_t max_conns_per_ip = 0;     // 0 = unlimited
  uint32_t accept_rate = 0;          // new connections per second on this listener, 0 = unlimited
  int overflow = -1;                 // its topic's overflow: 1 pause, 0 drop, -1 as [queue] overflow
  int store = -1;                    // its topic's store: 1 disk, 0 memory, -1 as [queue] store

  bool needs_token() const {
    for (const std::string& s : token_secrets)
      if (!s.empty()) return true;
    return false;
  }
};

// A named control API token ([api] tokens, or [api] token as "default"): the name is what logs and
// metrics show, never the secret.
struct ApiToken {
  std::string name;
  std::string secret;
  bool operator==(const ApiToken& o) const { return name == o.name && secret == o.secret; }
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
  std::string state_dir;  // where the topics' disk logs live; empty: $STATE_DIRECTORY (systemd), else none
  // [log]
  std::string log_level = "info";
  std::string log_file;
  std::string log_format = "text";  // text | json (one JSON object a line, for log shippers)
  // [api]
  std::string api_bind = "127.0.0.1";
  int api_port = 6789;
  std::string api_token;              // [api] token: the token named "default"
  std::vector<ApiToken> api_tokens;   // [api] tokens = name:secret, ... (more than one valid at once)
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
  // [limits]: the workers apply them as they are (client/worker.h WorkerLimits adds the token secrets)
  ClientLimits limits;
  // [queue]: the queue applies its bounds as they are (QueueHub::set_limits); overflow is a policy
  // each topic takes when it is declared, not a bound, so it stays beside them.
  QueueLimits queue;
  bool queue_pause_on_overflow = true;  // [queue] overflow = pause (else drop); a listener may override
  QueueStorage queue_storage;           // [queue] store (a listener may override), fsync, fsync_interval
  // [cluster]: which backbone carries the calls between nodes (cluster/backbone.h). The mesh's
  // cluster, dead_after, call_timeout and max_interest ([mesh]) apply to either.
  BackboneKind backbone = BackboneKind::Mesh;
  // [nats]: the NATS servers when backbone = nats (docs/cluster.md "NATS").
  std::vector<std::string> nats_servers;  // nats://host:port or tls://host:port
  std::string nats_user, nats_password, nats_token;
  std::string nats_creds;  // a .creds file (JWT and nkey seed)
  std::string nats_tls_ca, nats_tls_cert, nats_tls_key;
  // How long a channel's publish (and channel.count) waits for the nodes that hold it to answer
  // with their counts: NATS does not say how many will (docs/cluster.md "s and f over NATS").
  uint32_t nats_publish_wait_ms = 20;
  // What the client library may hold for a subscription before it drops (a slow consumer, counted).
  uint64_t nats_max_pending_bytes = 64ull << 20;
  // The JetStream work-queue stream that carries queue events across nodes: its bound in bytes
  // (past it the stream refuses, and events wait in their topic under its bound and overflow
  // policy) and its replicas (1..5, at most the number of NATS servers).
  uint64_t nats_stream_max_bytes = 256ull << 20;
  uint32_t nats_stream_replicas = 1;
  // A backbone runs: the mesh (its port set) or NATS.
  bool clustered() const { return mesh_port != 0 || backbone == BackboneKind::Nats; }

  // [mesh]
  std::string mesh_bind = "0.0.0.0";
  int mesh_port = 0;  // 0 = single-node mode
  std::string mesh_advertise;
  std::string mesh_cluster = "meshgate";
  std::string mesh_secret;
  std::string mesh_secret_accepted;  // a second secret taken from peers during a rolling change
  bool mesh_encrypt = true;  // AES-256-GCM on every frame after the handshake (else authenticated only)
  std::vector<std::string> mesh_seeds;
  uint32_t mesh_dead_after = 3;
  uint32_t mesh_call_timeout = 2;
  uint64_t mesh_max_link_buffer = limit_defaults::kMeshMaxLinkBuffer;
  uint32_t mesh_max_interest = 100000;  // channels a node lists to its peers (and keeps per peer)
  // [listener.*]
  std::vector<ListenerConfig> listeners;

  std::string source_path;  // the file it was loaded from
};

// Every token the control API accepts: [api] token as "default", then [api] tokens. Empty: the API
// asks for none.
std::vector<ApiToken> all_api_tokens(const Config& c);

// The state directory in effect: [node] state_dir, else the first of systemd's $STATE_DIRECTORY,
// else "" (no disk logs: events still held when the node stops are lost, and the log says how many).
std::string effective_state_dir(const Config& c);

// Whether listener `l`'s topic keeps its events on disk ([listener] store, else [queue] store), and
// whether any topic does (then the node needs a state directory).
bool topic_on_disk(const Config& c, const ListenerConfig& l);
bool any_topic_on_disk(const Config& c);

// Loads `path` into `out`. On failure returns false and sets `error` to a message of the form
// "FILE:LINE: [section] key: what is wrong".
bool load_config(const std::string& path, Config& out, std::string& error);

// The keys whose value differs between `running` and `fresh` that a reload cannot apply (ports,
// addresses, the mesh, the node's identity, listeners other than their token secrets and
// certificates): each as "[section] key", for the log line that says a restart is needed. A reload
// applies [log], the API token, [limits], [queue], connect-token secrets and TLS cert and key.
std::vector<std::string> keys_needing_restart(const Config& running, const Config& fresh);

// Parses INI text (for tests); `name` is used in error messages.
bool parse_config_text(const std::string& text, const std::string& name, Config& out,
                       std::string& error);

}  // namespace mg
