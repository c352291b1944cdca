// A worker thread: one libuv loop that owns a share of the client connections outright.
//
// Every worker accepts on every client listener (SO_REUSEPORT). Other threads never touch its
// connections: they post tasks to its mailbox (post), and it answers by posting back to the hub.
// A connection's worker is read from its client id (snowflake_worker), so a send needs no lookup
// outside the owning worker.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "client/channel_presence.h"
#include "client/conn_ops.h"
#include "client/event_backlog.h"
#include "client/listener_shared.h"
#include "client/out_message.h"
#include "core/config.h"
#include "core/mailbox.h"
#include "core/metrics.h"
#include "core/snowflake.h"
#include "net/stream.h"
#include "queue/queue_event.h"

namespace mg {

class ClientConn;
using Subscribers = std::vector<ClientConn*>;
// One subscription of a connection: the channel's entry in Worker::channels_ (node-based, so the
// pointer is stable) and the connection's index in its subscriber vector.
struct SubSlot {
  std::pair<const std::string, Subscribers>* channel;
  uint32_t index;
};

// What a worker needs of the node it runs in; the hub implements it. A worker touches nothing else
// of the hub: the counters are atomics (any thread), and everything else is a task posted to the
// hub thread, where push_event and worker_stopped run.
class WorkerHost {
 public:
  virtual uint64_t client_count() const = 0;
  virtual void client_opened() = 0;
  virtual void client_closed() = 0;
  virtual size_t backlog() const = 0;  // tasks waiting for the hub thread
  virtual void post(Mailbox::Task task) = 0;
  // Client events posted by workers and not yet taken by the hub (client/event_backlog.h): every
  // worker is told resume_backlogged() when the hub caught up with a backlog that paused clients.
  virtual EventBacklog& event_backlog() = 0;
  virtual ChannelPresence& channel_presence() = 0;  // shared by every worker (atomics)
  // Hub thread only. `ev` borrows from the worker's batch, valid during the call.
  virtual void push_event(const QueueEventRef& ev) = 0;
  virtual void events_taken(size_t n) = 0;  // after push_event of n posted events: event_backlog().taken
  // Hub thread: every worker is to resume the clients of `topic` (Worker::resume_topic), its gate
  // having opened (listener_shared.h, TopicGate::taken).
  virtual void resume_topic(const std::string& topic) = 0;
  virtual void worker_stopped(unsigned index) = 0;

 protected:
  ~WorkerHost() = default;
};

// Per listener (index as in Config::listeners): its connect-token secrets.
using TokenSecrets = std::vector<std::vector<std::string>>;
TokenSecrets token_secrets_of(const Config& c);

// The limits a worker applies: [limits] as Config holds them, and the listeners' token secrets,
// which SIGHUP reloads with them. Copied in at start and on SIGHUP:
// WorkerLimits{cfg.limits, token_secrets_of(cfg)}.
struct WorkerLimits : ClientLimits {
  TokenSecrets token_secrets;
  bool needs_token(unsigned listener) const {
    if (listener >= token_secrets.size()) return false;
    for (const std::string& s : token_secrets[listener])
      if (!s.empty()) return true;
    return false;
  }
};

class Worker {
 public:
  Worker(WorkerHost& host, const Config& cfg, const ListenersShared& shared, unsigned index, unsigned count);
  ~Worker();

  // Starts the thread; `listen_fds[i]` is the socket of cfg.listeners[i] (each worker gets its own).
  void start(std::vector<int> listen_fds);
  void join();
  void post(Mailbox::Task task) { mailbox_.post(std::move(task)); }

  // --- the rest runs on the worker thread only ---
  SendResult send(uint64_t client, const OutMessage& msg);
  FanoutCount publish(const std::string& channel, const OutMessage& msg);
  FanoutCount broadcast(const OutMessage& msg);
  uint64_t channel_count(const std::string& channel) const;
  // The `n` channels with the most subscribers on this worker (channel.top), largest first.
  std::vector<std::pair<std::string, uint64_t>> top_channels(size_t n) const;
  ApiResult conn_call(uint64_t client, const ConnCall& call);
  ApiResult conn_info(uint64_t client) const;
  void set_limits(const WorkerLimits& l) { limits_ = l; }
  // The queue topic has room again: its clients paused by its gate are read again.
  void resume_topic(const std::string& topic);
  // The hub took its backlog of client events: clients paused for it are read again.
  void resume_backlogged();
  // Stops accepting and closes every client with 1001; reports to the hub when none is left.
  void drain();
  // Closes every client at once (the drain ran out of time).
  void force_stop();

  // --- test seams (test/fuzz/fuzz_client_life.cpp); not used by the server ---
  // Takes `fd`, a connected stream socket, as a client of listener `li` accepted now, with the
  // admission checks of an accept. No thread is started: the caller runs loop() itself (no tick
  // timer runs either). False when libuv refused the socket (`fd` is then closed).
  bool adopt(int fd, unsigned li);
  // Checks that the tables agree with each other and with the live connections: every connection
  // reachable from by_id_ or a channel is live (not yet forgotten, i.e. not freed) and open, under its
  // own id; every live open connection is in by_id_; every subscription slot and its channel's
  // vector point at each other; the host's client count equals by_id_ (a host of this worker alone). Returns "" when all hold,
  // else what did not. Nothing reached is dereferenced before it is found alive.
  std::string check_tables() const;

  // Used by ClientConn.
  uv_loop_t* loop() { return &loop_; }
  const Config& config() const { return cfg_; }
  const ListenerShared& listener_shared(unsigned i) const { return shared_[i]; }
  const WorkerLimits& limits() const { return limits_; }
  WorkerHost& host() { return host_; }
  uint64_t next_client_id();
  void register_open(ClientConn* c);
  void unregister(ClientConn* c);
  // Called from the connection's uv_close callback: it is about to be deleted.
  void forget(ClientConn* c);
  // Idempotent. unsubscribe() and unregister() move the last subscriber into the freed slot.
  void subscribe(ClientConn* c, const std::string& channel);
  void unsubscribe(ClientConn* c, const std::string& channel);
  // Sends an event of a client of listener `li` to the queue: the caller has appended its "d" JSON
  // to event_data() from `data_start` on. Its topic's gate counts it in flight from the posting of
  // its batch until the hub has pushed it. Events go to the hub in batches, one task per loop turn
  // (or per kOutboxMax events or kOutboxMaxBytes): one buffer holds every event's bytes, and the hub
  // reads them in place.
  //
  // When the hub falls behind (a burst from many clients, one hub thread), the workers stop reading
  // the clients that produce events: at EventBacklog::kHighWater events not yet taken by the hub, a
  // client stops right after the message that found it so (ClientConn::hold_input) until the hub is
  // down to kLowWater (or, from the client's once-a-second tick, below kHighWater). The rest of its
  // read waits with it, what follows in its socket, and TCP slows it. The overshoot is a batch
  // (kOutboxMax) per worker plus a message per producing connection. Only past kMaxEventsWaiting are
  // new events dropped, counted (meshgate_queue_backlog_drops_total) and logged.
  void emit(unsigned li, uint64_t client, const std::string& context, size_t data_start);
  std::string& event_data() { return outbox_.bytes; }
  static constexpr size_t kOutboxMax = 256;
  static constexpr size_t kOutboxMaxBytes = 256 * 1024;
  static constexpr size_t kMaxEventsWaiting = 200000;
  uint32_t now_s() const { return static_cast<uint32_t>(uv_now(&loop_) / 1000); }
  // Messages decoded by the connection being read now: its listener's meshgate_messages_in_total is
  // added to once at the end of the read (one connection is read at a time on this thread).
  void count_message_read() { messages_read_++; }
  uint32_t take_messages_read() { return std::exchange(messages_read_, 0); }

 private:
  void run(std::vector<int> listen_fds);
  static void on_connection(uv_stream_t* server, int status);
  // An accepted connection: counted, checked against the connection limits, then started.
  void admit(ClientConn* conn, unsigned li);
  static void on_tick(uv_timer_t* t);
  static void on_outbox_check(uv_check_t* h);
  void flush_outbox();
  void maybe_finish_drain();
  // Removes subscription `k` of `c` (its index in c->subscriptions()).
  void drop_subscription(ClientConn* c, size_t k);

  WorkerHost& host_;
  const Config& cfg_;
  const ListenersShared& shared_;
  unsigned index_, count_;
  WorkerLimits limits_;
  uv_loop_t loop_{};
  LoopContext loop_ctx_;
  Mailbox mailbox_;
  uv_timer_t tick_{};
  // Client events not yet posted to the hub (at most kOutboxMax): their "d" and "x" JSON back to back
  // in `bytes`, and per event where they are, its topic (the listener's, in the node's Config, which
  // outlives every worker) and its topic's gate (or null).
  struct EventSlot {
    const std::string* topic;
    uint64_t client;
    size_t data_at, data_len, context_at, context_len;
    TopicGate* gate;
  };
  struct EventBatch {
    std::string bytes;
    std::vector<EventSlot> events;
  };
  EventBatch outbox_;
  uint32_t messages_read_ = 0;
  // Events dropped past kMaxEventsWaiting and not yet logged; logged at most once a minute (tick).
  uint64_t backlog_drops_unlogged_ = 0;
  uint32_t backlog_drop_logged_s_ = 0;
  uv_check_t outbox_check_{};  // runs after each loop turn's I/O while the outbox holds events
  std::vector<std::unique_ptr<uv_tcp_t>> servers_;
  std::thread thread_;
  SnowflakeGenerator ids_;
  bool draining_ = false;
  bool drain_reported_ = false;

  // Every live connection (also those still in their handshake), for the once-a-second tick.
  std::unordered_set<ClientConn*> all_;
  // Open connections by id, and subscribers by channel.
  std::unordered_map<uint64_t, ClientConn*> by_id_;
  // A channel's subscribers are contiguous (a publish walks them without a copy); each connection
  // keeps its slot in every channel it is in (ClientConn::subscriptions), for O(1) removal.
  std::unordered_map<std::string, Subscribers> channels_;

};

}  // namespace mg
