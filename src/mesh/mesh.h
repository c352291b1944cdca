// The mesh: this node's view of the cluster and its links to the other nodes (PROTOCOL.md §7).
//
// Glossary:
//   member   a node this node has heard of by id: alive while an authenticated link to it is up and
//            heard from within dead_after, dead otherwise (it stays listed, and is dialled again)
//   link     one TCP connection to a peer (MeshLink); one per pair of alive nodes. When both sides
//            dial at once, the link dialled by the lower node id wins
//   dial     an address to connect to: the configured seeds, and every member's mesh address
//   call     an API method run on another node (CALL/REPLY frames), answered within call_timeout
//
// Everything here runs on the hub thread.
#pragma once

#include <cjson/cJSON.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/config.h"
#include "route/route_api.h"
#include "mesh/mesh_link.h"
#include "queue/queue_hub.h"
#include "client/conn_ops.h"
#include "client/worker.h"

namespace mg {

class Hub;

class Mesh final : public RemoteQueue {
 public:
  using Reply = std::function<void(const ApiResult&)>;

  Mesh(Hub& hub, const Config& cfg);
  ~Mesh();
  // Listens and starts dialling the seeds. False when the mesh port cannot be bound.
  bool start();
  // Closes every link (node shutdown): peers see this node leave at once.
  void stop();

  // Runs `method` on node `node` (not this one). Unknown node: `not_here_code` "client not
  // connected"; dead, congested or silent node: 501.
  void call(unsigned node, const std::string& method, const std::string& params_json, int not_here_code, Reply reply);
  // Runs `method` (a fan-out: publish, broadcast, channel.count) on every alive peer and calls
  // `done` with the sum of their {"s","f"} once all have answered or failed.
  void fanout(const std::string& method, const std::string& params_json, std::function<void(const FanoutCount&)> done);

  // Alive peers as route members (this node not included).
  std::vector<NodeInfo> alive_peers() const;
  // node.list entries for the peers (JSON objects, comma-separated).
  std::string members_json() const;
  std::string render_metrics() const;
  // Nothing waits to be sent on any link.
  bool flushed() const;

  // RemoteQueue
  bool remote_ready(unsigned node) const override;
  void remote_forward(unsigned node, const QueueEvent& ev) override;
  void remote_done(unsigned producer, uint64_t fwd) override;
  // Tell every peer which topics this node has consumers for.
  void announce_topics();

  // From MeshLink.
  void on_frame(MeshLink& link, MeshType type, const char* body, size_t len);
  // A frame failed its check (authentication, size, type): counted, logged, the link closed.
  void on_bad_frame(MeshLink& link, const std::string& why);
  void on_link_drained(MeshLink& link);
  void on_link_closed(MeshLink& link);

 private:
  struct Member {
    unsigned id = 0;
    std::string name, mesh_addr;
    bool alive = false;
    double weight = 1;
    uint64_t connections = 0;
    NodeAddresses external, intranet;
    double rtt_ms = -1;
    MeshLink* link = nullptr;
    // Its link closed while another link to it was in its handshake (both nodes dialled at once
    // and the peer kept the other one): it stays alive without a link until this deadline, and
    // what is sent to it meanwhile is held (at most max_link_buffer bytes) for the new link.
    uint64_t relink_deadline_ms = 0;
    std::vector<std::pair<MeshType, std::string>> held;
    uint64_t held_bytes = 0;
  };
  struct PendingCall {
    unsigned node;
    uint64_t deadline_ms;
    Reply reply;
  };
  struct Dial {
    uint64_t next_ms = 0;
    bool busy = false;      // resolving or connecting
    unsigned node = 0;      // the node this address turned out to be (0: not known yet)
  };

  static void on_connection(uv_stream_t* server, int status);
  static void on_tick(uv_timer_t* t);
  void tick();
  void dial(const std::string& addr);
  void connected(MeshLink* link);
  std::string hello_body() const;
  void send_auth(MeshLink& link, MeshRole role);
  void refuse(MeshLink& link, const std::string& reason);
  void on_hello(MeshLink& link, const cJSON* o, const char* body, size_t len);
  void on_auth(MeshLink& link, const cJSON* o);
  void link_up(MeshLink& link);
  void member_dead(Member& m, const std::string& why);
  // A link to `peer` that is past HELLO but not up yet.
  bool handshake_in_progress(unsigned peer) const;
  // Sends on the member's link, or holds the frame while it relinks. False when it can take no
  // more (over `limit` bytes waiting) or is not alive.
  bool send_to(Member& m, MeshType type, const std::string& body, uint64_t limit);
  void send_members(MeshLink& link);
  // These return false for a malformed body (a number out of range): the link is refused.
  bool on_members(const cJSON* o);
  bool on_call(MeshLink& link, const cJSON* o, const char* body, size_t len);
  bool on_reply(const cJSON* o, const char* body, size_t len);
  void on_topics(MeshLink& link, const cJSON* o);
  bool on_event(MeshLink& link, const cJSON* o, const char* body, size_t len);
  void fail_calls(unsigned node, const std::string& why);
  // TOPICS body: the topics this node has consumers for.
  std::string topics_body() const;
  MeshLink* find_link(uint64_t serial) const;
  uint64_t now() const { return uv_now(loop_); }

  Hub& hub_;
  const Config& cfg_;
  uv_loop_t* loop_;
  unsigned self_;
  std::string self_addr_;  // our mesh address as others should dial it
  uv_tcp_t server_{};
  uv_timer_t timer_{};
  bool started_ = false, stopped_ = false;
  uint64_t heartbeat_ms_;
  std::map<unsigned, Member> members_;                 // peers by id (never this node)
  std::map<std::string, Dial> dials_;                  // by address
  std::unordered_map<uint64_t, MeshLink*> links_;      // every open link, by serial
  std::unordered_map<uint64_t, PendingCall> calls_;    // outgoing calls by sequence
  uint64_t next_link_serial_ = 0, next_call_ = 0;
  uint64_t bad_frames_ = 0, refused_ = 0, calls_ok_ = 0, calls_failed_ = 0, events_forwarded_ = 0;
};

}  // namespace mg
