// Topics and their consumers (PROTOCOL.md §4), on the hub thread.
//
// Glossary:
//   topic      a named stream of client events; each listener pushes to one
//   consumer   an API WebSocket connection that called queue.pop for some topics
//   pending    events of a topic waiting for a consumer, bounded by count and bytes
//   overflow   what a topic does at its bound: `pause` (the default) asks the workers to stop reading
//              from the clients that produce into it until it is down to half its bound, and drops
//              the oldest only at four times the bound (events already on their way when the pause
//              takes effect); `drop` drops the oldest at the bound. Drops are counted either way.
//   gate       what the workers see of a pausing topic that listeners produce into (queue/topic_gate.h):
//              made by declare, closed and opened here (and logged, once a minute), its bound moved
//              by set_limits.
//   ready      a consumer that can take an event now: its output is below its window and, in
//              acknowledged mode, it holds fewer than max_unacked events
//
// Delivery: each event goes to exactly one consumer of its topic, chosen by rendezvous hashing of
// the client id over the topic's consumers, so one client's events keep their order and go to the
// same consumer while the consumer set is unchanged. When that consumer is not ready the event
// waits, and so do later events of the same client (order before throughput).
//
// Across the mesh: a topic with no local consumer sends its events to a node that advertises
// consumers for it (rendezvous hashing of the client id over those nodes, so order holds); local
// consumers are always preferred. The producing node keeps each forwarded event until the consuming
// node reports it consumed; it sends it again (to whoever has consumers then) when that node dies,
// withdraws the topic, or does not report within twice ack_timeout. A consuming node delivers
// forwarded events to its own consumers only and drops them when it has none (the producer has them).
//
// Topics are bounded (max_topics: queue.pop answers 201 at the bound, nothing created). A topic with
// no events waiting, no consumer here or on another node, no event on its way to another node and no
// listener producing into it is forgotten after topic_idle_timeout, with its /metrics series: junk
// names cannot fill the table or the metrics page for good (issue 18). A later pop makes it again.
//
// Disk topics ([queue] store = disk, issue 20): every event of this node's clients is numbered and
// appended to the topic's log (queue/log_store.h) as it is pushed; its acknowledgement (or delivery,
// without acknowledgements), or its drop, lets the log's cursor move past it. The topic keeps at most
// its memory window (max_events, max_bytes) in memory: beyond it, events are in the log only
// ("spilled") and are read back in order as the window drains, so a backlog of millions costs disk,
// not memory. Events forwarded here by another node are never logged (their producer holds them).
//
// Acknowledged mode: events carry "k"; an event not acknowledged within ack_timeout, or held by a
// consumer that leaves, goes back to the front of its topic for another consumer.
//
// Poison events: an event whose text is not valid UTF-8 is dropped when it is pushed; an event whose
// delivery failed max_deliveries times is dropped instead of being given out again. A failure is an
// acknowledgement that timed out, or a consumer that left while this was the oldest event it held
// (requeue). Both are counted
// (meshgate_queue_discarded_total{reason}) and logged (the first at once, then at most one line a
// minute per reason), so one bad event can neither kill every consumer in turn nor hold its
// client's later events forever.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/limits.h"
#include "core/log_limit.h"
#include "core/metrics.h"
#include "queue/log_store.h"
#include "queue/queue_event.h"
#include "queue/topic_gate.h"

namespace mg {

// A consumer's connection, as the queue sees it (the control API's /ws/v1 connection implements
// it). The queue writes no JSON: the sink turns the event into its message (queue_pop_message).
class QueueSink {
 public:
  virtual bool sink_ready() const = 0;
  // One event for this consumer (its parts valid only during the call); `seq` is its acknowledgement
  // number, 0 when it needs none. `this_node` is the node to name when ev.node is 0.
  virtual void sink_deliver(const QueueEventRef& ev, unsigned this_node, uint64_t seq) = 0;

 protected:
  ~QueueSink() = default;
};

// Other nodes' consumers, as the mesh offers them (implemented by Mesh).
class RemoteQueue {
 public:
  virtual bool remote_ready(unsigned node) const = 0;
  // Sends `ev` (ev.fwd set: the producer's handle for it) to `node`'s consumers.
  virtual void remote_forward(unsigned node, const QueueEvent& ev) = 0;
  // Tells the producing node that its forwarded event `fwd` was consumed (delivered to a consumer
  // without acknowledgements, or acknowledged).
  virtual void remote_done(unsigned producer, uint64_t fwd) = 0;
  // Tells the producing node that its forwarded event `fwd` was not consumed here and will not be
  // (dropped at a bound, no topic for it): it may give it to another consumer now. The mesh's
  // producer finds out at its deadline and does nothing now; NATS gives it back to JetStream (NAK).
  virtual void remote_released(unsigned producer, uint64_t fwd) { (void)producer, (void)fwd; }

 protected:
  ~RemoteQueue() = default;
};

// One topic as node.stats and /metrics show it.
struct QueueTopicStats {
  std::string topic;
  size_t consumers, remote_consumer_nodes, pending;
  uint64_t bytes, unacked, delivered, redelivered, dropped, forwarded, pauses;
  bool paused;
  bool disk = false;        // a disk topic (its log); pending counts the events in the log only too
  uint64_t disk_events = 0; // events in its log not consumed yet
  uint64_t disk_bytes = 0;  // bytes of its log's segments
  bool disk_failed = false; // its log failed and is retried (QueueHub::failed_log)
};

class QueueHub {
 public:
  static constexpr size_t kMaxTopicsPerConsumer = 64;
  static constexpr unsigned kMaxHops = 1;

  QueueHub(unsigned node_id, const QueueLimits& limits);
  ~QueueHub();

  // Also moves every gate's bound (a reload): the workers pause at the new max_events from their
  // next message on.
  void set_limits(const QueueLimits& l);
  // A topic that exists from the start (a listener's), so it buffers before anyone pops; never
  // forgotten.
  // `pause_on_overflow`: its overflow policy (see the glossary); topics made on the fly pause. A
  // pausing one gets its gate, for the listeners that produce into it (gate()).
  // `disk`: its events go to its disk log first (set_store must have been called): see "Disk topics".
  void declare(const std::string& topic, bool pause_on_overflow = true, bool disk = false);
  // --- disk topics (queue_log.cpp) ---
  // The store that keeps disk topics' logs (null: every topic is in memory). Before declare.
  void set_store(LogStore* store);
  // A log recovered at start (LogStore::recover): its topic is made when missing (and kept while the
  // log holds events) and its events are read back in order, marked redelivered.
  void adopt_log(TopicLog* log);
  // The gate of a declared pausing topic, or nullptr. The workers hold it; the queue closes it when
  // the topic reaches its bound and opens it at half of it.
  std::shared_ptr<TopicGate> gate(const std::string& topic) const;
  // Called when a gate opens (its topic is back at half its bound): the hub tells the workers to read
  // their paused clients again.
  void set_resume_handler(std::function<void()> on_resume) { on_resume_ = std::move(on_resume); }
  // Every push checks the event's text first (event_text_valid); an invalid one is discarded.
  void push(QueueEvent ev);
  // The same for an event whose parts are borrowed: copied only when the event must wait (or be
  // held for an acknowledgement, or forwarded); delivered straight from them otherwise.
  void push(const QueueEventRef& ev);
  // Returns 0, 202 (already popping) or 201 (its new topics would pass max_topics: none is made)
  // with `error` set.
  int pop(QueueSink* sink, const std::vector<std::string>& topics, bool ack, std::string& error);
  // Returns 0 or 203 (not popping). Unacknowledged events go back to their topics.
  int unpop(QueueSink* sink);
  bool is_consumer(const QueueSink* sink) const { return consumers_.count(sink) != 0; }
  // Acknowledges events of this consumer; unknown sequence numbers are ignored.
  void ack(QueueSink* sink, const std::vector<uint64_t>& seqs);
  // The sink can take more now (its output drained).
  void sink_ready(QueueSink* sink);
  // Redelivers events whose ack timed out and forgets idle topics. Call about once a second.
  void tick(uint64_t now_ms);
  void set_now(uint64_t now_ms) { now_ms_ = now_ms; }
  size_t pending_events() const;
  // Events this node holds for its own clients and answers for: pending, delivered and not yet
  // acknowledged, forwarded to another node and not yet reported consumed. (Events forwarded here
  // by another node are not counted: their producer holds them.)
  size_t held_events() const;
  // Removes and returns every event held_events() counts that is not in a disk log already, oldest
  // first within each topic: what a stopping node keeps in its topics' logs (log_held). Consumers
  // keep their connections but lose these events.
  std::vector<QueueEvent> take_held();
  // At shutdown: appends take_held()'s events to their topics' logs (made for memory topics too), so
  // the next start delivers them. Returns how many; without a store they are lost (0, logged).
  size_t log_held();
  // --- across the mesh ---
  // `on_local_topics_changed` runs whenever the set of topics with local consumers may have changed.
  void set_remote(RemoteQueue* remote, std::function<void()> on_local_topics_changed);
  // Replaces the topics `node` has consumers for (empty: none, e.g. the node died).
  void set_remote_topics(unsigned node, const std::vector<std::string>& topics);
  std::vector<std::string> local_topics() const;
  // A node's link can take more: try the waiting events again.
  void remote_ready_changed();
  // The consuming node consumed our forwarded event `fwd`.
  void remote_done(uint64_t fwd);
  // The backbone could not take our forwarded event `fwd` (NATS: its stream is full or did not
  // answer): it goes back to the front of its topic, not charged as a failed delivery, and waits
  // there under the topic's bound and overflow policy until the backbone is ready again.
  void remote_refused(uint64_t fwd);
  // Why an event was discarded rather than delivered (the `reason` label).
  enum class Discard { InvalidText, MaxDeliveries };
  // Counts and logs (rate-limited) an event dropped as poison; also used by the mesh for an EVENT
  // frame it could not read at all.
  void discard(Discard why);
  // Events discarded for `why` so far (meshgate_queue_discarded_total).
  uint64_t discarded(Discard why) const { return discarded_[static_cast<int>(why)]; }
  // Forwarded events not yet reported consumed by `node` (bounded by max_events per node).
  size_t remote_in_flight(unsigned node) const;
  void render_metrics(PromWriter& w) const;
  // The disk logs' families (queue_stats.cpp): fsync latency, errors, what recovery found.
  static void render_store_metrics(PromWriter& w, const LogStoreStats& s);
  std::string render_metrics() const {
    PromWriter w;
    render_metrics(w);
    return w.take();
  }
  // Consumers popping on this node (for the systemd STATUS line).
  size_t consumer_count() const { return consumers_.size(); }
  // Every topic, by name.
  std::vector<QueueTopicStats> topic_stats() const;
  // A topic whose disk log failed (and is retried every few seconds), or "": /readyz says the node
  // cannot keep what it accepts while there is one.
  std::string failed_log() const;

 private:
  struct Consumer;
  struct Pending {
    QueueEvent ev;
    const Consumer* exclude = nullptr;  // redelivery: prefer another consumer
  };
  struct Topic {
    std::string name;
    std::deque<Pending> pending;
    uint64_t bytes = 0;
    std::unordered_map<uint64_t, uint32_t> pending_by_client;
    std::vector<Consumer*> consumers;
    std::vector<unsigned> remote_nodes;  // nodes with consumers for this topic
    bool pause_on_overflow = true;
    bool paused = false;                 // its producers were asked to stop reading
    bool behind_disk = false;            // paused only because its log's writes lag (log_push)
    std::shared_ptr<TopicGate> gate;     // a declared pausing topic's (declare)
    TopicLog* log = nullptr;             // its log (owned by the store): a disk topic's, or one recovered at start
    bool disk = false;                   // [queue] store = disk: every event goes to the log; a memory
                                         // topic logs only while its recovered log holds events
    uint64_t dropped_below = 0;          // drop_oldest_segment: events below this were dropped
    uint64_t log_retry_ms = 0;           // a failed log is tried again then
    bool declared = false;               // a listener's: never forgotten
    bool idle = false;                   // nothing holds it since idle_since_ms (forget_idle_topics)
    uint64_t idle_since_ms = 0;
    uint64_t dropped = 0, delivered = 0, redelivered = 0, forwarded = 0, pauses = 0;
    uint64_t dropped_logged = 0, drop_logged_ms = 0;  // what the last drop warning reported, and when
  };
  struct InFlight {
    QueueEvent ev;
    uint64_t deadline_ms;
  };
  struct Forwarded {
    unsigned node;
    QueueEvent ev;
    uint64_t deadline_ms;
  };
  struct Consumer {
    QueueSink* sink;
    uint64_t hash;
    bool ack;
    std::vector<Topic*> topics;
    std::map<uint64_t, InFlight> unacked;  // by sequence number: oldest first
  };

  // Where an event goes: a local consumer, or else another node (node != 0), or nowhere yet.
  struct Target {
    Consumer* local = nullptr;
    unsigned node = 0;
  };
  // The topic `name`; with `create`, made when missing unless max_topics are there (then nullptr,
  // counted as refused).
  Topic* topic(const std::string& name, bool create);
  // Makes topic `name` (not there yet), whatever the bound.
  Topic* make_topic(const std::string& name);
  // Forgets topics that nothing has held for topic_idle_s (see the glossary). From tick.
  void forget_idle_topics();
  void refuse_topic();
  Consumer* choose(const Topic& t, uint64_t client, const Consumer* exclude) const;
  Target target(const Topic& t, uint64_t client, unsigned hops, const Consumer* exclude) const;
  bool ready(const Target& to) const;
  void send(Topic& t, const Target& to, QueueEvent ev);
  // Sends `ev` to `node`'s consumers and keeps it until that node reports it consumed
  // (queue_forward.cpp).
  void forward(Topic& t, unsigned node, QueueEvent ev);
  bool ready(const Consumer& c) const;
  void deliver(Topic& t, Consumer& c, QueueEvent ev);
  void enqueue(Topic& t, Pending p, bool front);
  void take_pending(Topic& t, size_t index);
  // A pausing topic reached its bound: its gate closes.
  void pause(Topic& t);
  // Resumes the producers of a paused topic once it is down to half its bound.
  void relieve(Topic& t);
  bool any_ready(const Topic& t) const;
  void dispatch(Topic& t);
  void requeue(Consumer& c, bool timed_out_only);
  // Producer side: forwarded events go back to the front of their topics.
  // `each_failed`: every one of them counts as a failed delivery (deadline passed), else only the oldest.
  void requeue_forwarded(const std::function<bool(const Forwarded&)>& which, bool each_failed);
  // `ev` left this node's hands for good: consumed, or lost (dropped at a bound, no topic for it).
  void consumed(const QueueEvent& ev);
  // `ev` is dropped (a bound, no topic): gone from here, and another node's event is given back.
  void lost(const QueueEvent& ev) {
    if (ev.log_seq) log_done(ev);
    if (ev.fwd && remote_) remote_->remote_released(ev.node, ev.fwd);
  }
  // --- disk topics (queue_log.cpp) ---
  // Its log's cursor may move past `ev`.
  void log_done(const QueueEvent& ev);
  // Whether `ev` (this node's client's, about to be pushed into disk topic `t`) goes to memory too;
  // numbers it in the log either way. False: it is in the log only, read back in its turn.
  bool log_push(Topic& t, QueueEvent& ev);
  // Whether an event pushed into disk topic `t` now goes to memory too (else to the log only).
  bool log_to_memory(const Topic& t) const;
  // Appends one record to t's log, its events in memory up to it when `to_memory`; pauses t's
  // producers while its unwritten records pass max_bytes. Returns the record's sequence number.
  uint64_t log_record(Topic& t, uint64_t client, std::string_view data, std::string_view context, bool to_memory);
  // Whether `ev`, pushed into `t`, goes to t's log: this node's client's event, not logged yet, into a
  // disk topic or a memory topic whose recovered log still holds events (so none passes an older one).
  bool logs(const Topic& t, const QueueEvent& ev) const { return logging(t) && ev.fwd == 0 && !ev.log_seq; }
  // Whether t's new events go to its log now (and its bounds are its log's, not its memory's).
  static bool logging(const Topic& t) { return t.log && !t.log->failed() && (t.disk || t.log->unconsumed() > 0); }
  // Whether t's log is under its bound and the node's, divided by `div` (1: the bound; 2: half of it,
  // where a paused topic resumes).
  bool disk_room(const Topic& t, uint64_t div) const;
  // A logging topic at its disk bound: pause (pausing topics) or drop its oldest segment's events.
  void check_disk(Topic& t);
  void drop_oldest_segment(Topic& t);
  void on_log_failed(TopicLog& log);
  static constexpr unsigned kLogRetrySeconds = 5;
  // From tick: asks the store to try each failed log again, every kLogRetrySeconds.
  void retry_failed_logs();
  // Asks for the next events of a spilled topic once its memory is down to half the window.
  void maybe_read(Topic& t);
  void on_log_read(TopicLog& log, std::vector<LoggedEvent>& events);
  LogStore* store_ = nullptr;
  // Logs a topic's drops not yet logged: the first at once, then at most one line a minute (tick).
  void log_drops(Topic& t);
  // push() after the text check.
  void push_valid(QueueEvent ev);
  // Drops `ev` as poison: counted, logged, and reported consumed to a producing node (which would
  // otherwise send it again).
  void discard(Discard why, const QueueEvent& ev);
  // Whether the delivery of `ev` failed max_deliveries times; if so it is discarded.
  bool worn_out(const QueueEvent& ev);
  // From tick: what the discard warnings left out, at most one line a minute per reason.
  void log_discards();
  void log_discarded(Discard why, uint64_t count);
  static constexpr int kDiscardReasons = 2;  // Discard's values
  uint64_t discarded_[kDiscardReasons] = {};
  LogLimit discard_logs_[kDiscardReasons];  // the first at once, then one line a minute per reason

  unsigned node_id_;
  QueueLimits limits_;
  std::unordered_map<std::string, std::unique_ptr<Topic>> topics_;
  std::unordered_map<const QueueSink*, std::unique_ptr<Consumer>> consumers_;
  uint64_t topics_refused_ = 0, topics_forgotten_ = 0;
  LogLimit refused_log_;
  uint64_t next_seq_ = 0;
  uint64_t next_consumer_ = 0;
  uint64_t now_ms_ = 0;
  RemoteQueue* remote_ = nullptr;
  // Producer side: events forwarded to other nodes and not reported consumed yet, by handle.
  std::map<uint64_t, Forwarded> forwarded_;
  std::unordered_map<unsigned, size_t> forwarded_per_node_;  // counts of forwarded_, by node
  // Handles start at a random number below 2^52 (they travel as JSON numbers, exact below 2^53): a
  // consuming node may report events of this node's previous life (acknowledged after a restart),
  // and a handle of that life must not name an event of this one (queue_forward.cpp).
  uint64_t next_fwd_ = 0;
  void forget_forwarded(std::map<uint64_t, Forwarded>::iterator it);
  std::function<void()> on_local_topics_changed_;
  std::function<void()> on_resume_;
  LogLimit pause_log_;  // "topic is full": one line a minute
};

}  // namespace mg
