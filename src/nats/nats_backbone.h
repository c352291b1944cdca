// NATS as the cluster backbone (cluster/backbone.h; docs/cluster.md "NATS"): the same calls, fan-outs,
// member list and queue events as the mesh, carried by a NATS server cluster instead of our own links.
// The subjects and bodies are in nats_wire.h.
//
// Glossary:
//   member    another node, known from its heartbeats (P.hb, every dead_after/4): alive while one
//             was heard within dead_after, dead after (or at once when it said it leaves)
//   pending   a call or fan-out waiting for answers on this node's inbox: a call for one node, a
//             broadcast for every alive node (both until call_timeout), a channel's fan-out for
//             whoever holds it (until [nats] publish_wait_ms: NATS does not say who will answer)
//   interest  this node's subscriptions to P.ch.<channel>, one per channel a worker holds: NATS
//             routes a channel's fan-out to the nodes that hold it, and nowhere else
//
// The NATS client library (libnats) runs its own threads: every message and connection event is
// handed to the hub thread (BackboneHost::post) and handled there, as the mesh handles its frames.
// One file a job: nats_backbone.cpp the connection and its events, nats_members.cpp heartbeats and
// the member list, nats_calls.cpp calls, fan-outs and interest, nats_queue.cpp queue events.
#pragma once

#include <uv.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <nats/nats.h>

#include "cluster/backbone.h"
#include "core/config.h"
#include "core/log_limit.h"
#include "nats/nats_wire.h"

namespace mg {

class NatsBackbone final : public Backbone {
  using MsgPtr = std::shared_ptr<natsMsg>;

 public:
  NatsBackbone(BackboneHost& host, QueueHub& queue, uv_loop_t* loop, const Config& cfg);
  ~NatsBackbone() override;

  const char* kind() const override { return "nats"; }
  // Connects (or keeps trying in the background when no server answers yet: logged, and calls to
  // other nodes fail with 501 meanwhile). False only for options the library refuses.
  bool start() override;
  void stop() override;

  void call(unsigned node, const std::string& method, const std::string& params_json, int not_here_code,
            Reply reply) override;
  // With `channel`: published once to P.ch.<channel>; answers are taken for publish_wait_ms (or
  // until every alive node answered). Without: P.all, every alive node waited for until call_timeout.
  void fanout(const std::string& method, const std::string& params_json,
              std::function<void(std::vector<ApiResult>)> done, const std::string* channel = nullptr) override;
  void local_interest(const std::string& channel, bool held) override;
  // A SYNC ping to every alive node, answered when it arrived: NATS forwards a connection's
  // subscriptions and messages in order along each route, so a node that answered is reached
  // through servers that know this node's subscriptions made before the ping.
  void interest_barrier(std::function<void()> done) override;

  std::vector<NodeInfo> alive_peers() const override;
  std::vector<MemberView> members() const override;
  std::string render_metrics() const override;
  bool flushed() const override;
  void announce_topics() override;

  bool remote_ready(unsigned node) const override;
  void remote_forward(unsigned node, const QueueEvent& ev) override;
  void remote_done(unsigned producer, uint64_t fwd) override;
  void remote_released(unsigned producer, uint64_t fwd) override;

 private:
  // What a subscription's messages are (the closure of its callback).
  enum class Sub { Beat, Node, All, Channel, Inbox };
  struct SubTag {
    NatsBackbone* self;
    Sub kind;
  };
  struct Member {
    NatsBeat beat;
    uint64_t last_heard_ms = 0;
    bool alive = false;
    // The lives it had before this one: a heartbeat of one of them is a second node with its id,
    // not a restart (two nodes with one id would otherwise make it die and come back at every beat).
    std::vector<uint64_t> past_instances;
  };
  struct Pending {
    enum class Kind { Call, Fanout, ChannelFanout, Barrier, Js } kind;
    std::set<unsigned> waiting;  // nodes still to answer
    uint64_t deadline_ms = 0;
    Reply reply;                                        // Call
    std::vector<ApiResult> answers;                     // fan-outs
    std::function<void(std::vector<ApiResult>)> done;   // fan-outs
    std::function<void()> barrier_done;                 // Barrier
    std::function<void(const MsgPtr&)> js_done;         // Js: the answer, or null (none in time)
  };
  // A partition of a queue topic this node pulls from the stream (nats_queue.cpp).
  struct Partition {
    std::string topic, filter;
    uint64_t id = 0;               // its pulls' reply subject: <inbox>.p<id>
    bool creating = false, consumer_ready = false, pulling = false;
    uint64_t retry_ms = 0;         // made or pulled again from then on (after a failure)
    natsSubscription* reply_sub = nullptr;  // pull_subject(id), while the partition is this node's
    unsigned batch_left = 0;
    uint64_t pull_deadline_ms = 0;
    size_t pulled = 0;             // in the local queue, not acknowledged yet
  };
  struct PulledEvent {
    std::string ack_subject, durable;
    uint64_t pulled_ms;
  };
  struct LocalChannel {
    uint32_t workers = 0;
    natsSubscription* sub = nullptr;
  };

  // nats_backbone.cpp
  static void on_message(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* closure);
  static void on_connected(natsConnection* nc, void* closure);
  static void on_disconnected(natsConnection* nc, void* closure);
  static void on_error(natsConnection* nc, natsSubscription* sub, natsStatus err, void* closure);
  static void on_tick(uv_timer_t* t);
  void connection_changed(bool up);
  natsOptions* make_options();
  // Subscribes `subject` with this backbone's callback; null (logged) on failure.
  natsSubscription* subscribe(const std::string& subject, Sub kind);
  static void unsubscribe(natsSubscription*& sub);
  void publish(const std::string& subject, const std::string& body, const char* reply = nullptr);
  void handle(Sub kind, const MsgPtr& msg);
  uint64_t now() const { return uv_now(loop_); }
  // More waits for the servers or for answers than a node should hold ([mesh] max_link_buffer bytes
  // unsent, or kMaxPending calls): new calls fail with 501 "congested" instead of growing either.
  bool congested() const;
  static constexpr size_t kMaxPending = 100000;

  // nats_members.cpp
  void send_beat(bool left = false);
  void on_beat(const char* body, size_t len);
  void member_died(unsigned id, Member& m, const char* why);
  void check_members(uint64_t t);
  // The ids of the alive members: whom a broadcast or the subscribe barrier waits for.
  std::set<unsigned> alive_ids() const;

  // nats_calls.cpp
  uint64_t new_pending(Pending p);
  std::string inbox_subject(uint64_t seq) const;
  void on_node_message(const char* kind, const MsgPtr& msg);
  void on_call(const MsgPtr& msg);
  void on_reply(const MsgPtr& msg);
  // Answers every pending part `node` still owes as failed (it died), or every part past its deadline.
  void fail_pending(unsigned node, const std::string& why);
  void expire_pending(uint64_t t);
  void finish(uint64_t seq);

  // nats_queue.cpp: the JetStream work-queue stream
  std::string stream_name() const;
  // A JetStream API request (or a publish into the stream) answered on the inbox: `done` gets the
  // answer, or null when none came within call_timeout or the connection went.
  void js_request(const std::string& subject, const std::string& body, std::function<void(const MsgPtr&)> done);
  void ensure_stream(bool update);
  // Which partitions of the topics consumed here this node pulls (a rendezvous pick among the
  // nodes with consumers for each topic), after a change of topics or members.
  void update_partitions();
  void make_consumer(const std::string& durable);
  void pull(const std::string& durable, Partition& part);
  // A pulled event (id 0), or the end of pull `id` (a status: 404, 408, 409).
  void on_pulled(uint64_t id, const MsgPtr& msg);
  void queue_tick(uint64_t t);
  // JetStream's ack_wait for pulled events: dead_after (at least 1 s).
  uint64_t ack_wait_ms() const;
  // Where the events of partition `id`'s pulls come: <inbox>P.p<id>.
  std::string pull_subject(uint64_t id) const;
  // The queue tries its waiting events again at the end of this loop turn (once however often asked).
  void kick_queue();
  bool kick_posted_ = false;
  // A pulled event is done here: `verdict` (+ACK consumed, -NAK dropped) goes to JetStream, and its
  // partition may pull more.
  void settle_pulled(uint64_t fwd, const char* verdict);
  // Tells JetStream the pulled events still waiting here are in progress (+WPI, every ack_wait/3).
  void keep_pulled(uint64_t t);

  BackboneHost& host_;
  QueueHub& queue_;
  const Config& cfg_;
  uv_loop_t* loop_;
  const unsigned self_;
  const std::string prefix_;
  const uint64_t instance_;  // this life: start time and a random part (nats_wire.h NatsBeat)
  natsConnection* nc_ = nullptr;
  std::string inbox_;  // this node's reply subject prefix
  SubTag tags_[5];
  natsSubscription *beat_sub_ = nullptr, *node_sub_ = nullptr, *all_sub_ = nullptr, *inbox_sub_ = nullptr;
  natsSubscription* all_channels_sub_ = nullptr;  // P.ch.*, while this node holds more than max_interest
  uv_timer_t timer_{};
  bool started_ = false, stopped_ = false;
  bool connected_ = false;  // hub thread's view, from the connection's events
  uint64_t next_beat_ms_ = 0;
  std::map<unsigned, Member> members_;
  std::map<uint64_t, Pending> pending_;
  uint64_t next_seq_ = 0;
  std::unordered_map<std::string, LocalChannel> channels_;
  uint64_t held_channels_ = 0;
  // Counters (/metrics); the atomics are written by the library's threads.
  std::atomic<uint64_t> slow_consumer_{0}, async_errors_{0};
  // Bytes of messages handed to the hub thread and not handled yet, and those dropped at the bound.
  std::atomic<uint64_t> handoff_bytes_{0}, handoff_dropped_{0};
  uint64_t last_tick_ms_ = 0;
  uint64_t disconnects_ = 0, reconnects_ = 0, calls_ok_ = 0, calls_failed_ = 0, late_answers_ = 0;
  uint64_t events_forwarded_ = 0, bad_messages_ = 0, duplicate_ids_ = 0, publish_errors_ = 0, deaths_ = 0;
  uint64_t beats_sent_ = 0;
  LogLimit dup_log_;
  // The stream (nats_queue.cpp): whether it is there, the partitions this node pulls, the events
  // pulled and not yet acknowledged (by the handle the local queue knows them by).
  bool stream_ready_ = false;
  uint64_t next_stream_try_ms_ = 0, refused_until_ms_ = 0, stream_backoff_ms_ = 500;
  bool stream_asking_ = false;
  std::map<std::string, Partition> partitions_;  // by durable consumer name
  uint64_t next_partition_id_ = 0, next_pulled_ = 0;
  std::unordered_map<uint64_t, PulledEvent> pulled_;
  uint64_t events_pulled_ = 0, stream_refusals_ = 0, next_sweep_ms_ = 0;
  std::vector<uint64_t> refused_;  // events the stream refused, given back at the next tick
  LogLimit refusal_log_;
};

}  // namespace mg
