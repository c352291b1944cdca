// A worker thread: one libuv loop that owns a share of the client connections outright.
//
// Every worker accepts on every client listener (SO_REUSEPORT). Other threads never touch its
// connections: they post tasks to its mailbox (post), and it answers by posting back to the hub.
// A connection's worker is read from its client id (snowflake_worker), so a send needs no lookup
// outside the owning worker.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "client/channel_index.h"
#include "client/channel_presence.h"
#include "client/conn_ops.h"
#include "client/event_outbox.h"
#include "client/listener_shared.h"
#include "client/out_message.h"
#include "core/config.h"
#include "core/mailbox.h"
#include "core/metrics.h"
#include "core/snowflake.h"
#include "net/stream.h"
#include "queue/event_intake.h"

namespace mg {

class ClientConn;
// One subscription of a connection: where it sits in the worker's channel index.
using SubSlot = ChannelIndex<ClientConn>::Slot;

// What a worker needs of the node it runs in; the hub implements it. A worker touches nothing else
// of the hub: the counters are atomics (any thread), the intake's posted() and latches are lock-free,
// and everything else is a task posted to the hub thread, where EventIntake::take and worker_stopped
// run.
class WorkerHost {
 public:
  virtual uint64_t client_count() const = 0;
  virtual void client_opened() = 0;
  virtual void client_closed() = 0;
  virtual size_t backlog() const = 0;  // tasks waiting for the hub thread
  virtual void post(Mailbox::Task task) = 0;
  // Where the workers' event batches go (queue/event_intake.h): its backlog latch pauses clients
  // while the hub is behind, and it asks every worker to resume_paused() when the hub caught up.
  virtual EventIntake& event_intake() = 0;
  virtual ChannelPresence& channel_presence() = 0;  // shared by every worker (atomics)
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
  void set_limits(const WorkerLimits& l) {
    limits_ = l;
    loop_ctx_.handshake_budget = l.handshake_budget;
  }
  // A topic's gate or the hub's backlog opened: every client paused for the queue whose gate and
  // backlog are open now is read again (ClientConn::resume_reading looks; the others stay paused).
  void resume_paused();
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
  // Idempotent (ChannelIndex::add / remove); the first subscriber of a channel here and its last
  // one update the node's ChannelPresence.
  void subscribe(ClientConn* c, const std::string& channel);
  void unsubscribe(ClientConn* c, const std::string& channel);
  // Sends an event of a client of listener `li` to the queue: the caller has appended its "d" JSON
  // to event_data() from `data_start` on. It goes to the hub with the worker's next batch
  // (client/event_outbox.h); its topic's gate counts it in flight from the posting of the batch until
  // the hub has pushed it.
  //
  // When the hub falls behind, the workers stop reading the clients that produce events: at
  // EventIntake::kBacklogHigh events not yet taken by the hub, a client stops right after the message
  // that found it so (ClientConn::hold_input) until the hub is down to half of it (or, from the
  // client's once-a-second tick, below it). The rest of its read waits with it, what follows in its
  // socket, and TCP slows it.
  void emit(unsigned li, uint64_t client, const std::string& context, size_t data_start);
  std::string& event_data() { return outbox_.data(); }
  uint32_t now_s() const { return static_cast<uint32_t>(uv_now(&loop_) / 1000); }
  // Messages decoded by the connection being read now: its listener's meshgate_messages_in_total is
  // added to once at the end of the read (one connection is read at a time on this thread).
  void count_message_read() { messages_read_++; }
  uint32_t take_messages_read() { return std::exchange(messages_read_, 0); }

 private:
  void run(std::vector<int> listen_fds);
  static void on_connection(uv_stream_t* server, int status);
  // Accepts the connection waiting on `server` (libuv holds one per listener until we take it).
  void accept_one(uv_stream_t* server);
  // A turn begins: the accept budget is refilled and the listeners deferred last turn accept first.
  // True when some are still deferred.
  bool begin_accept_turn();
  // An accepted connection: counted, checked against the connection limits, then started.
  void admit(ClientConn* conn, unsigned li);
  static void on_tick(uv_timer_t* t);
  void maybe_finish_drain();

  WorkerHost& host_;
  const Config& cfg_;
  const ListenersShared& shared_;
  unsigned index_, count_;
  WorkerLimits limits_;
  uv_loop_t loop_{};
  LoopContext loop_ctx_;
  Mailbox mailbox_;
  uv_timer_t tick_{};
  EventOutbox outbox_;  // client events not yet posted to the hub
  uint32_t messages_read_ = 0;
  std::vector<std::unique_ptr<uv_tcp_t>> servers_;
  // The accept budget ([limits] accept_budget per turn): accepts left this turn, and the listeners
  // whose next connection waits for a turn (libuv stops watching a listener until its pending
  // connection is accepted, so the rest wait in the kernel's backlog).
  uint32_t accepts_left_ = 0;
  std::deque<uv_stream_t*> deferred_accepts_;
  std::thread thread_;
  SnowflakeGenerator ids_;
  bool draining_ = false;
  bool drain_reported_ = false;

  // Every live connection (also those still in their handshake), for the once-a-second tick.
  std::unordered_set<ClientConn*> all_;
  // Open connections by id, and subscribers by channel.
  std::unordered_map<uint64_t, ClientConn*> by_id_;
  ChannelIndex<ClientConn> channels_;

};

}  // namespace mg
