#include "queue/queue_hub.h"

#include <algorithm>
#include <random>
#include <unordered_set>

#include "core/hrw.h"
#include "core/log.h"
#include "core/log_text.h"
#include "core/metrics.h"

namespace mg {

QueueHub::QueueHub(unsigned node_id, const QueueLimits& limits) : node_id_(node_id), limits_(limits) {
  std::random_device rd;
  next_fwd_ = ((uint64_t{rd()} << 32) | rd()) & ((uint64_t{1} << 52) - 1);
}
QueueHub::~QueueHub() = default;

QueueHub::Topic* QueueHub::topic(const std::string& name, bool create) {
  auto it = topics_.find(name);
  if (it != topics_.end()) return it->second.get();
  if (!create) return nullptr;
  if (topics_.size() >= limits_.max_topics) {
    refuse_topic();
    return nullptr;
  }
  return make_topic(name);
}

QueueHub::Topic* QueueHub::make_topic(const std::string& name) {
  auto t = std::make_unique<Topic>();
  t->name = name;
  Topic* raw = t.get();
  topics_.emplace(name, std::move(t));
  return raw;
}

void QueueHub::declare(const std::string& name, bool pause_on_overflow, bool disk) {
  // A listener's topic is made whatever max_topics says: the bound is for topics callers make, and a
  // configuration whose listeners alone pass it must not lose their events.
  Topic* t = topic(name, false);
  if (!t) t = make_topic(name);
  t->pause_on_overflow = pause_on_overflow;
  t->declared = true;
  t->disk = disk && store_;
  if (t->disk && !t->log) t->log = store_->open(name);
  if (t->disk && !t->log)
    LOG_ERROR("queue: topic \"%s\" keeps its events in memory: its disk log could not be used at start (see above)",
              log_safe(name).c_str());
  t->disk = t->disk && t->log;
  if (pause_on_overflow && !t->gate) {
    t->gate = std::make_shared<TopicGate>(limits_.max_events);
    t->gate->full.store(t->paused, std::memory_order_relaxed);
  }
}

std::shared_ptr<TopicGate> QueueHub::gate(const std::string& name) const {
  auto it = topics_.find(name);
  return it == topics_.end() ? nullptr : it->second->gate;
}

void QueueHub::set_limits(const QueueLimits& l) {
  limits_ = l;
  for (auto& [name, t] : topics_)
    if (t->gate) t->gate->in_flight.set_high(l.max_events);
}

void QueueHub::forget_idle_topics() {
  std::unordered_set<std::string> on_their_way;  // topics of events forwarded, not yet reported consumed
  for (const auto& [fwd, f] : forwarded_) on_their_way.insert(f.ev.topic);
  const uint64_t after_ms = uint64_t{limits_.topic_idle_s} * 1000;
  for (auto it = topics_.begin(); it != topics_.end();) {
    Topic& t = *it->second;
    const bool idle = !t.declared && t.pending.empty() && t.consumers.empty() && t.remote_nodes.empty() &&
                      !t.paused && on_their_way.count(t.name) == 0 && !(t.log && t.log->unconsumed());
    if (idle && !t.idle) t.idle_since_ms = now_ms_;
    t.idle = idle;
    if (idle && now_ms_ - t.idle_since_ms >= after_ms) {
      topics_forgotten_++;
      it = topics_.erase(it);
    } else {
      ++it;
    }
  }
  if (uint64_t n = refused_log_.flush(now_ms_))
    LOG_WARN("queue: %llu more new topics refused at [queue] max_topics (%u)", static_cast<unsigned long long>(n),
             limits_.max_topics);
}

QueueHub::Consumer* QueueHub::choose(const Topic& t, uint64_t client, const Consumer* exclude) const {
  const Consumer* skip = t.consumers.size() > 1 ? exclude : nullptr;  // the only one is taken even so
  auto it = hrw_pick(stable_hash(&client, sizeof client), t.consumers, [](const Consumer* c) { return c->hash; },
                     [skip](const Consumer* c) { return c == skip; });
  return it == t.consumers.end() ? nullptr : *it;
}

QueueHub::Target QueueHub::target(const Topic& t, uint64_t client, unsigned hops, const Consumer* exclude) const {
  if (!t.consumers.empty()) return Target{choose(t, client, exclude), 0};
  if (!remote_ || t.remote_nodes.empty() || hops >= kMaxHops) return Target{};
  auto it = hrw_pick(stable_hash(&client, sizeof client), t.remote_nodes,
                     [](const unsigned& node) { return stable_hash(&node, sizeof node); });
  return Target{nullptr, *it};  // remote_nodes is not empty
}

bool QueueHub::ready(const Target& to) const {
  if (to.local) return ready(*to.local);
  return to.node != 0 && remote_in_flight(to.node) < limits_.max_events && remote_->remote_ready(to.node);
}

void QueueHub::consumed(const QueueEvent& ev) {
  if (ev.log_seq) log_done(ev);  // gone from here either way
  if (ev.fwd && remote_) remote_->remote_done(ev.node, ev.fwd);
}

void QueueHub::send(Topic& t, const Target& to, QueueEvent ev) {
  if (to.local) deliver(t, *to.local, std::move(ev));
  else forward(t, to.node, std::move(ev));
}

bool QueueHub::ready(const Consumer& c) const {
  return c.sink->sink_ready() && (!c.ack || c.unacked.size() < limits_.max_unacked);
}

void QueueHub::deliver(Topic& t, Consumer& c, QueueEvent ev) {
  t.delivered++;
  if (!c.ack) {
    consumed(ev);
    c.sink->sink_deliver(ev.ref(), node_id_, 0);
    return;
  }
  uint64_t k = ++next_seq_;
  auto held = c.unacked.emplace(k, InFlight{std::move(ev), now_ms_ + uint64_t{limits_.ack_timeout_s} * 1000}).first;
  c.sink->sink_deliver(held->second.ev.ref(), node_id_, k);
}

void QueueHub::enqueue(Topic& t, Pending p, bool front) {
  if (p.ev.fwd && t.consumers.empty()) return lost(p.ev);  // another node's, nobody here: given back (lost())
  t.bytes += p.ev.bytes();
  t.pending_by_client[p.ev.client]++;
  if (front) t.pending.push_front(std::move(p));
  else t.pending.push_back(std::move(p));
  if (logging(t)) return;  // a disk topic's memory is its window: what passes it stays in the log (log_push)
  // A pausing topic stops its producers at the bound and drops only at four times it: events already
  // decoded when the pause takes effect (up to a batch per worker, a message per producing connection,
  // and what waits in the hub's mailbox) still arrive. A dropping topic drops the oldest at the bound. Counted either way.
  const uint64_t factor = t.pause_on_overflow ? 4 : 1;
  while (t.pending.size() > factor * limits_.max_events || (t.bytes > factor * limits_.max_bytes && t.pending.size() > 1)) {
    lost(t.pending.front().ev);
    take_pending(t, 0);
    t.dropped++;
  }
  log_drops(t);
  if (t.pause_on_overflow && !t.paused && (t.pending.size() >= limits_.max_events || t.bytes >= limits_.max_bytes))
    pause(t);
}

void QueueHub::pause(Topic& t) {
  t.paused = true;
  t.pauses++;
  if (t.gate) t.gate->full.store(true, std::memory_order_relaxed);  // the workers look after each client message
  // A topic at its bound flips often while its consumer works through it: one warning a minute
  // (meshgate_queue_pauses_total counts every pause).
  uint64_t left_out = 0;
  if (pause_log_.admit(now_ms_, left_out))
    LOG_WARN("queue: topic \"%s\" is full: its clients are not read until it is down to half its bound",
             log_safe(t.name).c_str());
  LOG_DEBUG("queue: topic \"%s\" paused its producers", log_safe(t.name).c_str());
}

void QueueHub::relieve(Topic& t) {
  maybe_read(t);
  if (!t.paused) return;
  if (logging(t) || (t.log && t.log->failed())) {  // paused at its disk bound, or its log failed, or behind the disk
    // Paused only behind the disk (log_push): on again once the disk caught up, below the disk bound.
    if (t.log->unwritten_bytes() > limits_.max_bytes / 2 || !disk_room(t, t.behind_disk ? 1 : 2)) return;
  } else if (t.pending.size() > limits_.max_events / 2 || t.bytes > limits_.max_bytes / 2) {
    return;
  }
  t.paused = false;
  t.behind_disk = false;
  LOG_DEBUG("queue: topic \"%s\" resumed its producers", log_safe(t.name).c_str());
  if (!t.gate) return;  // no listener produces into it
  t.gate->full.store(false, std::memory_order_relaxed);
  if (on_resume_) on_resume_();
}

void QueueHub::take_pending(Topic& t, size_t index) {
  const Pending& p = t.pending[index];
  t.bytes -= p.ev.bytes();
  auto it = t.pending_by_client.find(p.ev.client);
  if (it != t.pending_by_client.end() && --it->second == 0) t.pending_by_client.erase(it);
  t.pending.erase(t.pending.begin() + static_cast<std::ptrdiff_t>(index));
  relieve(t);
}

bool QueueHub::worn_out(const QueueEvent& ev) {
  if (ev.failures < limits_.max_deliveries) return false;
  discard(Discard::MaxDeliveries, ev);
  return true;
}

void QueueHub::discard(Discard why, const QueueEvent& ev) {
  consumed(ev);  // a forwarded event: its producer forgets it instead of sending it again
  discard(why);
}

void QueueHub::push(QueueEvent ev) {
  if (!event_text_valid(ev.ref())) return discard(Discard::InvalidText, ev);
  push_valid(std::move(ev));
}

void QueueHub::push_valid(QueueEvent ev) {
  Topic* t = topic(ev.topic, true);
  if (!t) {  // cannot happen for listener topics, which are declared at start
    lost(ev);
    return;
  }
  if (!ev.node) ev.node = node_id_;
  if (logs(*t, ev) && !log_push(*t, ev)) return;
  if (t->log && t->log->failed() && t->log->spilled() && ev.fwd == 0 && !ev.log_seq) {
    // Its log failed while older events wait there: taking this one in memory would deliver it
    // before them. Dropped, counted and logged (a pausing topic has paused its producers).
    t->dropped++;
    log_drops(*t);
    return;
  }
  if (t->pending_by_client.count(ev.client) == 0) {
    Target to = target(*t, ev.client, ev.hops, nullptr);
    if (ready(to)) {
      send(*t, to, std::move(ev));
      return;
    }
  }
  enqueue(*t, Pending{std::move(ev), nullptr}, false);
}

void QueueHub::push(const QueueEventRef& ev) {
  if (!event_text_valid(ev)) return discard(Discard::InvalidText, ev.own());
  // The common case, a local consumer without acknowledgements that can take it now, needs no copy;
  // on a disk topic too, when it would go to memory: its record is made from the views, and its
  // delivery moves the cursor past it at once, as deliver() does for an owned event.
  Topic* t = ev.fwd == 0 ? topic(*ev.topic, false) : nullptr;
  if (t && t->pending_by_client.count(ev.client) == 0 && (!t->log || (logging(*t) && log_to_memory(*t)))) {
    Target to = target(*t, ev.client, ev.hops, nullptr);
    if (to.local && !to.local->ack && ready(*to.local)) {
      if (t->log) t->log->done(log_record(*t, ev.client, ev.data, ev.context, true));
      t->delivered++;
      to.local->sink->sink_deliver(ev, node_id_, 0);
      return;
    }
  }
  push_valid(ev.own());
}

bool QueueHub::any_ready(const Topic& t) const {
  for (const Consumer* c : t.consumers)
    if (ready(*c)) return true;
  if (t.consumers.empty() && remote_)
    for (unsigned node : t.remote_nodes)
      if (ready(Target{nullptr, node})) return true;
  return false;
}

void QueueHub::dispatch(Topic& t) {
  if (t.pending.empty() || !any_ready(t)) return;
  // Sends from the front while some consumer can take more, and stops as soon as none can (a topic
  // may hold max_events: a walk to its end on every drain would cost that much each time). Only our
  // own sends make a consumer unready here, so readiness is looked at again only after one.
  std::deque<Pending> kept;
  std::unordered_set<uint64_t> blocked;  // clients with an event that must wait: later ones wait too
  bool sent_since_check = false;
  while (!t.pending.empty()) {
    Pending& p = t.pending.front();
    uint64_t client = p.ev.client;
    Target to = blocked.count(client) ? Target{} : target(t, client, p.ev.hops, p.exclude);
    if (ready(to)) {
      t.bytes -= p.ev.bytes();
      auto it = t.pending_by_client.find(client);
      if (it != t.pending_by_client.end() && --it->second == 0) t.pending_by_client.erase(it);
      QueueEvent ev = std::move(p.ev);
      t.pending.pop_front();
      send(t, to, std::move(ev));
      sent_since_check = true;
    } else {
      if (sent_since_check && !any_ready(t)) break;
      sent_since_check = false;
      blocked.insert(client);
      kept.push_back(std::move(p));
      t.pending.pop_front();
    }
  }
  // What was kept goes back in front of what was not looked at, in the order it came.
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) t.pending.push_front(std::move(*it));
  relieve(t);
}

int QueueHub::pop(QueueSink* sink, const std::vector<std::string>& topics, bool ack, std::string& error) {
  if (consumers_.count(sink)) {
    error = "this connection is already popping: call queue.unpop first";
    return 202;
  }
  // All or nothing: a pop that would pass max_topics makes none of its new topics.
  std::unordered_set<std::string> fresh;
  for (const std::string& name : topics)
    if (!topics_.count(name)) fresh.insert(name);
  if (!fresh.empty() && topics_.size() + fresh.size() > limits_.max_topics) {
    refuse_topic();
    error = "too many topics on this node ([queue] max_topics " + std::to_string(limits_.max_topics) +
            "); topics nobody pops and no listener produces into are forgotten after " +
            std::to_string(limits_.topic_idle_s) + " s";
    return 201;
  }
  std::vector<Topic*> ts;
  for (const std::string& name : topics) {
    Topic* t = topic(name, true);
    bool dup = false;
    for (Topic* o : ts) dup = dup || o == t;
    if (!dup) ts.push_back(t);
  }
  auto c = std::make_unique<Consumer>();
  c->sink = sink;
  uint64_t n = ++next_consumer_;
  c->hash = stable_hash(&n, sizeof n);
  c->ack = ack;
  c->topics = ts;
  for (Topic* t : ts) t->consumers.push_back(c.get());
  consumers_.emplace(sink, std::move(c));
  for (Topic* t : ts) dispatch(*t);
  if (on_local_topics_changed_) on_local_topics_changed_();
  return 0;
}

void QueueHub::requeue(Consumer& c, bool timed_out_only) {
  std::vector<uint64_t> seqs;
  // Deadlines usually grow with k, but not after ack_timeout is changed by a reload: look at all
  // (at most max_unacked per consumer).
  for (const auto& [k, f] : c.unacked)
    if (!timed_out_only || f.deadline_ms <= now_ms_) seqs.push_back(k);
  // Newest first, each to the front: the topic gets them back oldest first.
  for (auto it = seqs.rbegin(); it != seqs.rend(); ++it) {
    auto node = c.unacked.extract(*it);
    // A failed delivery is charged to each event whose acknowledgement timed out, and, when the
    // consumer left, only to the oldest it held: the one it was most likely working on when it
    // died (a standard client closes at the first frame it cannot take). The events behind it are
    // given again uncharged, so a poison event does not take its neighbours down with it.
    if (timed_out_only || std::next(it) == seqs.rend()) node.mapped().ev.failures++;
    if (worn_out(node.mapped().ev)) continue;
    Topic* t = topic(node.mapped().ev.topic, true);
    if (!t) {
      lost(node.mapped().ev);
      continue;
    }
    t->redelivered++;
    node.mapped().ev.redelivered = true;
    enqueue(*t, Pending{std::move(node.mapped().ev), timed_out_only ? &c : nullptr}, true);
  }
}

int QueueHub::unpop(QueueSink* sink) {
  auto it = consumers_.find(sink);
  if (it == consumers_.end()) return 203;
  std::unique_ptr<Consumer> c = std::move(it->second);
  consumers_.erase(it);
  for (Topic* t : c->topics) {
    auto& v = t->consumers;
    for (size_t i = 0; i < v.size(); i++)
      if (v[i] == c.get()) v.erase(v.begin() + static_cast<std::ptrdiff_t>(i--));
  }
  requeue(*c, false);
  for (auto& [name, t] : topics_) {
    for (Pending& p : t->pending)
      if (p.exclude == c.get()) p.exclude = nullptr;  // it is gone: no dangling pointer
    if (t->consumers.empty()) {
      // Other nodes' events do not wait here: they are given back, oldest first (lost(): the mesh's
      // producer sends them again itself; a NATS stream gives them to the partition's next puller).
      for (const Pending& p : t->pending)
        if (p.ev.fwd) lost(p.ev);
      for (size_t i = t->pending.size(); i-- > 0;)
        if (t->pending[i].ev.fwd) take_pending(*t, i);
    }
    dispatch(*t);
  }
  if (on_local_topics_changed_) on_local_topics_changed_();
  return 0;
}

std::vector<QueueEvent> QueueHub::take_held() {
  // Unacknowledged and forwarded events left the fronts of their topics: they go first. Taken as
  // they are, not requeued, so no bound drops any of them on the way out.
  std::vector<QueueEvent> out;
  for (auto& [sink, c] : consumers_) {
    for (auto& [k, f] : c->unacked)
      if (f.ev.fwd == 0 && !f.ev.log_seq) out.push_back(std::move(f.ev));
    c->unacked.clear();
  }
  for (auto& [fwd, f] : forwarded_) {
    f.ev.hops = 0;
    if (!f.ev.log_seq) out.push_back(std::move(f.ev));
  }
  forwarded_.clear();
  forwarded_per_node_.clear();
  for (auto& [name, t] : topics_) {
    for (Pending& p : t->pending)
      if (p.ev.fwd == 0 && !p.ev.log_seq) out.push_back(std::move(p.ev));
    t->pending.clear();
    t->pending_by_client.clear();
    t->bytes = 0;
    relieve(*t);
  }
  return out;
}

void QueueHub::ack(QueueSink* sink, const std::vector<uint64_t>& seqs) {
  auto it = consumers_.find(sink);
  if (it == consumers_.end()) return;
  Consumer& c = *it->second;
  for (uint64_t k : seqs) {
    auto u = c.unacked.find(k);
    if (u == c.unacked.end()) continue;
    consumed(u->second.ev);
    c.unacked.erase(u);
  }
  for (Topic* t : c.topics) dispatch(*t);
}

void QueueHub::sink_ready(QueueSink* sink) {
  auto it = consumers_.find(sink);
  if (it == consumers_.end()) return;
  for (Topic* t : it->second->topics) dispatch(*t);
}

void QueueHub::tick(uint64_t now_ms) {
  now_ms_ = now_ms;
  for (auto& [name, t] : topics_) log_drops(*t);
  log_discards();
  forget_idle_topics();
  if (store_) retry_failed_logs();
  bool requeued = false;
  for (auto& [sink, c] : consumers_) {
    if (!c->ack) continue;
    bool expired = false;
    for (const auto& [k, f] : c->unacked) expired = expired || f.deadline_ms <= now_ms;
    if (!expired) continue;
    requeue(*c, true);
    requeued = true;
  }
  size_t before = forwarded_.size();
  requeue_forwarded([&](const Forwarded& f) { return f.deadline_ms <= now_ms; }, true);
  requeued = requeued || forwarded_.size() != before;
  if (requeued)
    for (auto& [name, t] : topics_) dispatch(*t);
}

}  // namespace mg
