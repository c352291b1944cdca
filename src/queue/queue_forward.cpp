// QueueHub, across the mesh (queue/queue_hub.h, "Across the mesh"): the producer's book-keeping of
// the events it forwarded to other nodes' consumers (kept until reported consumed, sent again when
// that node dies, withdraws the topic or does not report in time), and the topics other nodes
// consume. Which node an event goes to is dispatch's choice (queue_hub.cpp, target).
#include "queue/queue_hub.h"

#include <algorithm>
#include <iterator>

namespace mg {

void QueueHub::forward(Topic& t, unsigned node, QueueEvent ev) {
  ev.hops++;
  t.forwarded++;
  uint64_t fwd = ++next_fwd_;
  QueueEvent wire = ev;
  wire.fwd = fwd;
  remote_->remote_forward(node, wire);
  forwarded_.emplace(fwd, Forwarded{node, std::move(ev), now_ms_ + 2 * uint64_t{limits_.ack_timeout_s} * 1000});
  forwarded_per_node_[node]++;
}

size_t QueueHub::remote_in_flight(unsigned node) const {
  auto it = forwarded_per_node_.find(node);
  return it == forwarded_per_node_.end() ? 0 : it->second;
}

void QueueHub::forget_forwarded(std::map<uint64_t, Forwarded>::iterator it) {
  auto n = forwarded_per_node_.find(it->second.node);
  if (n != forwarded_per_node_.end() && --n->second == 0) forwarded_per_node_.erase(n);
  forwarded_.erase(it);
}

void QueueHub::remote_done(uint64_t fwd) {
  // A handle this life never gave out (the consuming node acknowledged an event of this node's
  // previous life, delivered before a restart) names nothing here: next_fwd_ starts at random.
  auto it = forwarded_.find(fwd);
  if (it == forwarded_.end()) return;
  consumed(it->second.ev);  // consumed there (an event this node had from the stream: acknowledged to it)
  forget_forwarded(it);
}

void QueueHub::remote_refused(uint64_t fwd) {
  auto it = forwarded_.find(fwd);
  if (it == forwarded_.end()) return;
  QueueEvent ev = std::move(it->second.ev);
  forget_forwarded(it);
  ev.hops = 0;
  Topic* t = topic(ev.topic, true);
  if (!t) return lost(ev);
  enqueue(*t, Pending{std::move(ev), nullptr}, true);
  dispatch(*t);  // to a consumer that came meanwhile; the backbone says when it takes events again
}

void QueueHub::requeue_forwarded(const std::function<bool(const Forwarded&)>& which, bool each_failed) {
  std::vector<uint64_t> ids;
  for (const auto& [fwd, f] : forwarded_)  // by handle: oldest first
    if (which(f)) ids.push_back(fwd);
  // Newest first, each to the front: the topic gets them back oldest first.
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
    auto f = forwarded_.find(*it);
    QueueEvent ev = std::move(f->second.ev);
    forget_forwarded(f);
    // The other node's failures are not sent back, so they are charged here as requeue() charges a
    // local consumer's: each event whose deadline passed, or the oldest when the node stopped
    // consuming or died. Without this an event whose remote consumers keep dying would come back
    // from every node forever ([queue] max_deliveries).
    if (each_failed || std::next(it) == ids.rend()) ev.failures++;
    if (worn_out(ev)) continue;
    ev.hops = 0;
    ev.redelivered = true;
    Topic* t = topic(ev.topic, true);
    if (!t) {
      lost(ev);
      continue;
    }
    t->redelivered++;
    enqueue(*t, Pending{std::move(ev), nullptr}, true);
  }
}

void QueueHub::set_remote(RemoteQueue* remote, std::function<void()> on_local_topics_changed) {
  remote_ = remote;
  on_local_topics_changed_ = std::move(on_local_topics_changed);
}

void QueueHub::set_remote_topics(unsigned node, const std::vector<std::string>& topics) {
  for (auto& [name, t] : topics_) {
    auto& v = t->remote_nodes;
    v.erase(std::remove(v.begin(), v.end(), node), v.end());
  }
  for (const std::string& name : topics) {
    Topic* t = topic(name, true);
    if (t) t->remote_nodes.push_back(node);
  }
  // Events we forwarded to `node` for a topic it no longer consumes (or it died) go elsewhere.
  requeue_forwarded([&](const Forwarded& f) {
    return f.node == node && std::find(topics.begin(), topics.end(), f.ev.topic) == topics.end();
  }, false);
  for (auto& [name, t] : topics_) dispatch(*t);
}

std::vector<std::string> QueueHub::local_topics() const {
  std::vector<std::string> out;
  for (const auto& [name, t] : topics_)
    if (!t->consumers.empty()) out.push_back(name);
  return out;
}

void QueueHub::remote_ready_changed() {
  for (auto& [name, t] : topics_)
    if (t->consumers.empty() && !t->remote_nodes.empty()) dispatch(*t);
}

}  // namespace mg
