// The cluster backbone: what the API, the route API and the queue need of the other nodes, as one
// interface with two implementations (docs/cluster.md "Backbones"): the mesh (mesh/, node-to-node
// TCP links and SWIM, the default) and NATS (nats/, a NATS server cluster carrying the same calls,
// `[cluster] backbone = nats`). Nothing above this layer knows which one runs.
//
// Everything here runs on the hub thread, callbacks included.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <cjson/cJSON.h>

#include "core/call_result.h"
#include "core/node_info.h"
#include "queue/queue_hub.h"

namespace mg {

// What a backbone needs of the node it runs in (the hub implements it).
class BackboneHost {
 public:
  // Any thread: runs `task` on the hub thread (a backbone whose library calls back on its own
  // threads hands its work over with this).
  virtual void post(std::function<void()> task) = 0;
  virtual uint64_t client_count() const = 0;
  virtual NodeAddresses own_addresses(bool intranet) const = 0;
  virtual bool draining() const = 0;
  // Runs an API method another node called, on this node only; answers 101 for a method that
  // cannot be called remotely and for a call without params (`params` null). `params_text` is the
  // raw text of `params`, valid during the call only; `params` lives until `reply` is called.
  virtual void run_remote_call(const std::string& method, const cJSON* params, const char* params_text,
                               size_t params_len, Reply reply) = 0;

 protected:
  ~BackboneHost() = default;
};

// Another node as node.list shows it (alive or dead).
struct MemberView {
  NodeInfo info;
  std::string name;
  std::string addr;      // its mesh address (the mesh), "" where the backbone has none (NATS)
  bool alive = false;    // alive or suspect
  bool suspect = false;  // alive for routing, but a probe of it failed (SWIM suspicion)
  double rtt_ms = -1;    // the last measured round trip, -1 when none was measured
};

class Backbone : public RemoteQueue {
 public:
  virtual ~Backbone() = default;
  // "mesh" or "nats" (logs, node.stats).
  virtual const char* kind() const = 0;
  // False when it cannot start (a port that cannot be bound, a configuration the library refuses).
  virtual bool start() = 0;
  // Tells the other nodes this node leaves, and closes what it holds (node shutdown).
  virtual void stop() = 0;

  // Runs `method` on node `node` (not this one). Unknown node: `not_here_code` "client not
  // connected"; dead, unreachable or silent node (past call_timeout): 501.
  virtual void call(unsigned node, const std::string& method, const std::string& params_json, int not_here_code,
                    Reply reply) = 0;
  // Runs `method` (a fan-out: publish, broadcast, channel.count) on the other nodes and calls `done`
  // with every answer it waited for (an error for a node that failed or timed out). The backbone
  // does not read the answers: the caller knows their shape and merges them. With `channel` set,
  // only the nodes that hold a subscriber of it are reached; a node left out holds nothing for it.
  virtual void fanout(const std::string& method, const std::string& params_json,
                      std::function<void(std::vector<ApiResult>)> done, const std::string* channel = nullptr) = 0;

  // A worker of this node got the first subscriber of `channel` (held) or lost its last.
  virtual void local_interest(const std::string& channel, bool held) = 0;
  // Calls `done` once every alive node can reach this node's subscribers of every channel held so
  // far (the subscribe rule, docs/cluster.md "Interest routing"), or after call_timeout; never
  // inside this call when something waits.
  virtual void interest_barrier(std::function<void()> done) = 0;

  // Alive nodes (this node not included), ordered by id.
  virtual std::vector<NodeInfo> alive_peers() const = 0;
  // Every node ever heard of, by id (this node not included).
  virtual std::vector<MemberView> members() const = 0;
  virtual std::string render_metrics() const = 0;
  // Nothing waits to be sent to another node (a drain waits for this).
  virtual bool flushed() const = 0;
  // The set of topics this node has consumers for may have changed.
  virtual void announce_topics() = 0;
};

}  // namespace mg
