// The mesh: this node's view of the cluster and its links to the other nodes (PROTOCOL.md §7).
//
// Glossary:
//   member   a node this node has heard of by id, in the SWIM state the cluster agreed on (swim.h):
//            alive or suspect (both serve: routed to, called) or dead (it stays listed, and is
//            dialled again). Only SWIM declares a death: a link's loss does not (docs/cluster.md §4)
//   link     one TCP connection to a peer (MeshLink); one per pair of alive nodes, carrying data,
//            calls, events, interest and the probes. When both sides dial at once, the link dialled
//            by the lower node id wins; a member without a link is redialled and what is sent to it
//            meanwhile is held (up to max_link_buffer)
//   dial     an address to connect to: the configured seeds, and every member's mesh address
//   call     an API method run on another node (CALL/REPLY frames), answered within call_timeout
//   interest the channels a node holds at least one subscriber of (on any of its workers); every
//            node tells its peers its own (INTEREST: a full set on a new link, then deltas) and
//            keeps theirs, so a channel's publish or count goes only to the nodes that hold it
//
// One class, one job a file: mesh.cpp links (listening, dialling, members' links, views),
// mesh_swim.cpp membership and failure detection (probes, updates, MEMBERS; the state machine is
// swim.h),
// mesh_handshake.cpp HELLO/AUTH up to a link that serves its member, mesh_calls.cpp CALL/REPLY and
// the fan-out to every peer, mesh_queue.cpp the queue across the mesh (TOPICS/EVENT/DONE), mesh_interest.cpp which
// node holds which channel (INTEREST/INTEREST_ACK) and the subscribe barrier. Every frame
// body is written and read in mesh_wire. What the mesh needs of the node it runs in comes through
// BackboneHost (the hub implements it), so nothing here includes the API or the hub.
//
// Everything here runs on the hub thread.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <cjson/cJSON.h>

#include "core/call_result.h"
#include "core/config.h"
#include "core/log_limit.h"
#include "core/node_info.h"
#include "cluster/backbone.h"
#include "mesh/mesh_link.h"
#include "mesh/swim.h"
#include "queue/queue_hub.h"

namespace mg {

// The mesh as the cluster backbone (cluster/backbone.h has each method's contract; what is
// particular to the mesh is said here).
class Mesh final : public Backbone {
 public:
  Mesh(BackboneHost& host, QueueHub& queue, uv_loop_t* loop, const Config& cfg);
  ~Mesh();
  const char* kind() const override { return "mesh"; }
  // Listens and starts dialling the seeds. False when the mesh port cannot be bound.
  bool start() override;
  // Tells every peer this node leaves (SWIM dead with "left") and closes every link (node
  // shutdown): peers see it leave at once.
  void stop() override;

  // Runs `method` on node `node` (not this one). Unknown node: `not_here_code` "client not
  // connected"; dead, congested or silent node: 501.
  void call(unsigned node, const std::string& method, const std::string& params_json, int not_here_code,
            Reply reply) override;
  // Runs `method` (a fan-out: publish, broadcast, channel.count) on every alive peer and calls
  // `done` with every peer's answer (an error for a peer that failed or timed out) once all have
  // answered. The mesh does not read the answers: the caller knows their shape and merges them.
  // With `channel` set, only the peers that may hold a subscriber of it are called (their interest
  // says so, or is not known yet): a peer left out holds nothing for it and answers nothing.
  void fanout(const std::string& method, const std::string& params_json,
              std::function<void(std::vector<ApiResult>)> done, const std::string* channel = nullptr) override;

  // mesh_interest.cpp. A worker of this node got the first subscriber of `channel` (held) or lost
  // its last (not held): counted per worker, and the node's set changes when the first worker
  // takes a channel or the last one drops it. Peers are told at the end of this loop turn.
  void local_interest(const std::string& channel, bool held) override;
  // Calls `done` once every alive peer has applied every change of this node's interest made so far
  // (INTEREST_ACK), or after call_timeout, or at once when nothing waits (the subscribe rule,
  // docs/cluster.md "Interest routing"). `done` runs on the hub thread, never inside this call's caller
  // when something waits.
  void interest_barrier(std::function<void()> done) override;

  // Alive peers (this node not included).
  std::vector<NodeInfo> alive_peers() const override;
  // Every peer ever heard of, by id.
  std::vector<MemberView> members() const override;
  std::string render_metrics() const override;
  // Nothing waits to be sent on any link.
  bool flushed() const override;

  // RemoteQueue
  bool remote_ready(unsigned node) const override;
  void remote_forward(unsigned node, const QueueEvent& ev) override;
  void remote_done(unsigned producer, uint64_t fwd) override;
  // Tell every peer which topics this node has consumers for.
  void announce_topics() override;

  // From MeshLink.
  void on_frame(MeshLink& link, MeshType type, const char* body, size_t len);
  // A frame failed its check (authentication, size, type): counted, logged, the link closed.
  void on_bad_frame(MeshLink& link, const std::string& why);
  void on_link_drained(MeshLink& link);
  void on_link_closed(MeshLink& link);
  void count_sent(MeshType type, size_t bytes) {
    frames_sent_[static_cast<uint8_t>(type)]++;
    link_bytes_sent_ += bytes;
  }

 private:
  // What the mesh keeps of a member besides its SWIM state (swim_): its link and what waits for
  // one. name..intranet and alive/suspect mirror swim_ (member_changed keeps them in step).
  static constexpr size_t kMaxDials = 4096;  // addresses to dial, whatever peers claim

  struct Member {
    unsigned id = 0;
    std::string name, mesh_addr;
    bool alive = false, suspect = false;
    double weight = 1;
    uint64_t connections = 0;
    NodeAddresses external, intranet;
    double rtt_ms = -1;
    MeshLink* link = nullptr;
    // It has no link (lost, or not dialled yet): what is sent to it meanwhile is held (at most
    // max_link_buffer bytes) for the next link; dropped when it is declared dead.
    std::vector<std::pair<MeshType, std::string>> held;
    uint64_t held_bytes = 0;
    // When it last had a link up (0: never). An alive member without a link for longer than
    // dead_after is probed (indirectly), so that one nobody can reach does not stay alive forever.
    uint64_t last_linked_ms = 0;
    // Its interest: the channels it holds subscribers of, as its INTEREST frames said. Not known
    // from its link's start until its full set arrived: meanwhile it is sent every channel's calls.
    // all: it holds more than it lists (its bound or ours): sent every channel's calls.
    std::unordered_set<std::string> interest;
    bool interest_known = false, interest_all = false;
    bool interest_filling = false;  // a full set in several frames is arriving
    // Our INTEREST frames: the last one sent to it and the last one it acknowledged.
    uint64_t interest_sent = 0, interest_acked = 0;
  };
  struct PendingCall {
    unsigned node;
    uint64_t deadline_ms;
    Reply reply;
  };
  struct Barrier {
    uint64_t seq;          // wait for INTEREST_ACK of this frame from every peer it was sent to
    uint64_t deadline_ms;
    std::function<void()> done;
  };
  // This node's own interest: per channel, how many workers hold it and whether peers were told
  // it is held (an entry goes when neither).
  struct LocalChannel {
    uint32_t workers = 0;
    bool announced = false;
  };
  struct Dial {
    uint64_t next_ms = 0;
    bool busy = false;      // resolving or connecting
    unsigned node = 0;      // the node this address turned out to be (0: not known yet)
  };

  // mesh.cpp: links and membership
  static void on_connection(uv_stream_t* server, int status);
  static void on_tick(uv_timer_t* t);
  void tick();
  void dial(const std::string& addr);
  // Dials the members that have no link when due (jittered; the higher id of a pair waits a grace
  // period for the lower one to dial), and the seeds.
  void dial_due(uint64_t t);
  // When to dial `addr` of member `id` (0: a seed) next: jittered, so that a cluster started at
  // once does not do every handshake in the same tick (docs/decisions.md).
  uint64_t dial_jitter_ms(unsigned id, bool redial);
  // Sends on the member's link, or holds the frame while it relinks. False when it can take no
  // more (over `limit` bytes waiting) or is not alive.
  bool send_to(Member& m, MeshType type, const std::string& body, uint64_t limit);
  // The on_* handlers of frame bodies return false for a malformed body (mesh_decode failed): the
  // link is refused.

  // mesh_swim.cpp: membership and failure detection
  SwimInfo self_info() const;
  // Brings members_[id] in step with swim_ after a change, and acts on the transition: logs
  // alive/dead, fails the calls of a dead member, drops its link and what was held for it. `why`
  // is the reason of a death.
  void member_changed(unsigned id, const std::string& why);
  // Merges updates heard from `from` (0: first-hand) and acts on what changed.
  void apply_updates(const std::vector<SwimUpdate>& updates, unsigned from);
  // Sends `u` at once (a PING with k 0) to every member with a link: suspicions, refutations, a leave.
  void push_update(const SwimUpdate& u);
  // This node's probe of `target`; `no_link`: the direct probe cannot go (indirect at once).
  void start_probe(unsigned target, bool no_link);
  // A probe of ours failed: this node suspects the target (pushed to every member).
  void probe_failed(unsigned target);
  // Every tick: a probe each probe interval, indirect probes and failures, suspicions that ran out.
  void swim_tick(uint64_t t);
  // Updates to piggyback on a frame now (a byte budget, newest first).
  std::vector<SwimUpdate> gossip();
  void send_full_members(MeshLink& link);
  // A PING or ACK from `peer`: its client count (first-hand), and the updates it carried.
  void heard_from(unsigned peer, uint64_t conns, const std::vector<SwimUpdate>& updates);
  bool on_members(MeshLink& link, const char* body, size_t len);
  bool on_ping(MeshLink& link, const char* body, size_t len);
  bool on_ack(MeshLink& link, const char* body, size_t len);
  bool on_ping_req(MeshLink& link, const char* body, size_t len);
  // Refuses the link for a body mesh_decode did not take: "malformed T frame", and why when the body
  // is a JSON object.
  void refuse_malformed(MeshLink& link, MeshType type, const char* body, size_t len);
  // A link to `peer` that is past HELLO but not up yet.
  bool handshake_in_progress(unsigned peer) const;
  MeshLink* find_link(uint64_t serial) const;
  uint64_t now() const { return uv_now(loop_); }

  // mesh_handshake.cpp
  void connected(MeshLink* link);
  void send_auth(MeshLink& link, MeshRole role);
  void refuse(MeshLink& link, const std::string& reason);
  void on_hello(MeshLink& link, const char* body, size_t len);
  void on_auth(MeshLink& link, const char* body, size_t len);
  void link_up(MeshLink& link);

  // mesh_calls.cpp
  bool on_call(MeshLink& link, const char* body, size_t len);
  bool on_reply(const char* body, size_t len);
  // Answers 501 `why` to a pending call, or to every call pending on `node`.
  void fail_call(uint64_t seq, const std::string& why);
  void fail_calls(unsigned node, const std::string& why);
  // Answers 501 to the calls past their deadline.
  void expire_calls(uint64_t t);

  // mesh_queue.cpp
  bool on_topics(MeshLink& link, const char* body, size_t len);
  bool on_event(MeshLink& link, const char* body, size_t len);
  bool on_done(const char* body, size_t len);
  // TOPICS body: the topics this node has consumers for.
  std::string topics_body() const;

  // mesh_interest.cpp
  bool on_interest(MeshLink& link, const char* body, size_t len);
  bool on_interest_ack(MeshLink& link, const char* body, size_t len);
  static void on_interest_check(uv_check_t* h);
  // Tells every alive peer what changed in this node's interest since the last time (end of a loop turn).
  void flush_interest();
  // Sends `m` this node's whole interest (a new link), as one or more frames.
  void send_interest_full(Member& m);
  // Sends the frames of one change to `m`, numbering them from interest_seq_.
  void send_interest(Member& m, std::vector<MeshInterest> frames);
  // A peer's interest is forgotten (its link is new, or it died).
  static void forget_interest(Member& m);
  // Runs the barriers every peer has acknowledged, or whose deadline passed (t), or all (stopping).
  void settle_barriers(uint64_t t, bool all = false);
  bool may_hold(const Member& m, const std::string& channel) const;

  BackboneHost& host_;
  QueueHub& queue_;
  const Config& cfg_;
  uv_loop_t* loop_;
  unsigned self_;
  std::string self_addr_;  // our mesh address as others should dial it
  uv_tcp_t server_{};
  uv_timer_t timer_{};
  bool started_ = false, stopped_ = false;
  uint64_t tick_ms_;  // the timer's period: a fraction of the probe timeout
  // SWIM (mesh_swim.cpp): the member table, this node's probes and those it runs for others.
  Swim swim_;
  std::mt19937_64 rng_;  // jitter, seeded from the start time and node id
  std::map<uint64_t, SwimProbe> probes_;  // this node's probes, by sequence number
  SwimRelays relays_;  // the probes this node runs for others (PING_REQ)
  uint64_t next_probe_seq_ = 0, next_probe_ms_ = 0, last_tick_ms_ = 0;
  std::map<uint64_t, uint64_t> last_sync_ms_;  // link serial -> when a MEMBERS answered its digest
  uint64_t probes_ack_ = 0, probes_indirect_ack_ = 0, probes_failed_ = 0;
  uint64_t suspicions_ = 0, refutations_ = 0, deaths_ = 0, member_syncs_ = 0, link_bytes_sent_ = 0;
  std::map<unsigned, Member> members_;                 // peers by id (never this node)
  std::map<std::string, Dial> dials_;                  // by address
  std::unordered_map<uint64_t, MeshLink*> links_;      // every open link, by serial
  std::unordered_map<uint64_t, PendingCall> calls_;    // outgoing calls by sequence
  uint64_t next_link_serial_ = 0, next_call_ = 0;
  uint64_t bad_frames_ = 0, refused_ = 0, calls_ok_ = 0, calls_failed_ = 0, events_forwarded_ = 0;
  uint64_t refused_version_ = 0;  // of refused_: the peer speaks another protocol version
  // Frames written on links, by type (index: the type's number).
  uint64_t frames_sent_[kMeshMaxType + 1] = {};
  // Interest routing: this node's channels, the changes not yet told, the frames' numbering, the
  // subscribes waiting for every peer's INTEREST_ACK, and the calls it spared.
  std::unordered_map<std::string, LocalChannel> local_channels_;
  std::unordered_set<std::string> interest_dirty_;
  uint64_t held_channels_ = 0;  // entries of local_channels_ with workers > 0
  bool announce_all_ = false;   // peers were told "all": this node holds more than max_interest channels
  uint64_t interest_seq_ = 0;
  uv_check_t interest_check_{};
  bool interest_check_on_ = false;
  std::vector<Barrier> barriers_;
  std::vector<std::function<void()>> barriers_unsent_;  // made while changes wait for this turn's end
  uint64_t fanout_skipped_ = 0, interest_overflows_ = 0;
  uint64_t barrier_timeouts_ = 0;  // subscribes answered at call_timeout, a peer not having acknowledged

  // Connections closed at accept: every handshake slot taken, or the source's share of them.
  uint64_t accept_refused_full_ = 0, accept_refused_per_source_ = 0;
  // Warnings about inbound links that never completed the handshake (strangers, floods), per kind
  // (the reason): the first at once, then one a minute with the count left out (issue 18: 83 MB of
  // log in 62 s). Per kind, so a misconfigured node's refusal still shows among a flood's lines.
  LogLimitByKey stranger_log_;
  // True when a warning of kind `why` about `link` may be written now (always for a peer that proved
  // itself or one we dialled); logs first how many of that kind were left out, if any.
  bool may_log_about(const MeshLink& link, const std::string& why);
  bool may_log_stranger(const std::string& why);
};

}  // namespace mg
