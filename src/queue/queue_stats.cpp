// What QueueHub counts and reports: events held and waiting, every topic as node.stats and /metrics
// show it, and the rate-limited warnings about topics refused, events dropped at a bound and events
// discarded as poison (the first at once, then at most one line a minute, each).
#include "queue/queue_hub.h"

#include <algorithm>
#include <cstdio>
#include <unordered_map>

#include "core/log.h"
#include "core/log_text.h"

namespace mg {

void QueueHub::refuse_topic() {
  topics_refused_++;
  uint64_t left_out = 0;
  if (refused_log_.admit(now_ms_, left_out))
    LOG_WARN("queue: a new topic refused: %zu topics on this node, [queue] max_topics is %u (%llu more refused "
             "since the last such line)",
             topics_.size(), limits_.max_topics, static_cast<unsigned long long>(left_out));
}

void QueueHub::log_drops(Topic& t) {
  if (t.dropped == t.dropped_logged || (t.drop_logged_ms && now_ms_ - t.drop_logged_ms < 60000)) return;
  const uint64_t n = t.dropped - t.dropped_logged;
  LOG_WARN("queue: topic \"%s\" dropped %llu event%s, oldest first, at its bound (max_events %u, max_bytes %llu%s)",
           log_safe(t.name).c_str(), static_cast<unsigned long long>(n), n == 1 ? "" : "s", limits_.max_events,
           static_cast<unsigned long long>(limits_.max_bytes),
           t.pause_on_overflow ? "; paused producers overshot four times it" : "");
  t.dropped_logged = t.dropped;
  t.drop_logged_ms = now_ms_ ? now_ms_ : 1;
}

void QueueHub::discard(Discard why) {
  const int i = static_cast<int>(why);
  discarded_[i]++;
  uint64_t left_out = 0;
  if (discard_logs_[i].admit(now_ms_, left_out)) log_discarded(why, left_out + 1);
}

void QueueHub::log_discards() {
  for (int i = 0; i < kDiscardReasons; i++)
    if (uint64_t n = discard_logs_[i].flush(now_ms_)) log_discarded(static_cast<Discard>(i), n);
}

void QueueHub::log_discarded(Discard why, uint64_t count) {
  const auto n = static_cast<unsigned long long>(count);
  if (why == Discard::InvalidText)
    LOG_WARN("queue: dropped %llu event%s whose text is not valid UTF-8 (consumers would fail on it)", n,
             n == 1 ? "" : "s");
  else
    LOG_WARN("queue: dropped %llu event%s whose delivery failed %u times ([queue] max_deliveries)", n,
             n == 1 ? "" : "s", limits_.max_deliveries);
}

size_t QueueHub::pending_events() const {
  size_t n = 0;
  for (const auto& [name, t] : topics_) n += t->pending.size() + (t->log ? t->log->log_only() : 0);
  return n;
}

size_t QueueHub::held_events() const {
  size_t n = forwarded_.size();
  for (const auto& [name, t] : topics_) {
    for (const Pending& p : t->pending) n += p.ev.fwd == 0;
    if (t->log) n += t->log->log_only();  // in its disk log only
  }
  for (const auto& [sink, c] : consumers_)
    for (const auto& [k, f] : c->unacked) n += f.ev.fwd == 0;
  return n;
}

std::vector<QueueTopicStats> QueueHub::topic_stats() const {
  std::unordered_map<std::string, uint64_t> unacked;
  for (const auto& [sink, c] : consumers_)
    for (const auto& [seq, f] : c->unacked) unacked[f.ev.topic]++;
  std::vector<QueueTopicStats> out;
  out.reserve(topics_.size());
  for (const auto& [name, t] : topics_) {
    auto u = unacked.find(name);
    const size_t in_log_only = t->log ? t->log->log_only() : 0;
    out.push_back(QueueTopicStats{name, t->consumers.size(), t->remote_nodes.size(), t->pending.size() + in_log_only,
                                  t->bytes, u == unacked.end() ? 0 : u->second, t->delivered, t->redelivered,
                                  t->dropped, t->forwarded, t->pauses, t->paused});
    if (t->log) {
      out.back().disk = true;
      out.back().disk_events = t->log->unconsumed();
      out.back().disk_bytes = t->log->disk_bytes();
      out.back().disk_failed = t->log->failed();
    }
  }
  std::sort(out.begin(), out.end(), [](const QueueTopicStats& a, const QueueTopicStats& b) { return a.topic < b.topic; });
  return out;
}

void QueueHub::render_metrics(PromWriter& w) const {
  struct Family {
    const char* name;
    const char* type;
    const char* help;
    uint64_t (*value)(const QueueTopicStats&);
  };
  static const Family fams[] = {
      {"meshgate_queue_depth", "gauge", "Events waiting for a consumer, per topic.", [](const QueueTopicStats& t) -> uint64_t { return t.pending; }},
      {"meshgate_queue_bytes", "gauge", "Bytes of events waiting for a consumer, per topic.", [](const QueueTopicStats& t) { return t.bytes; }},
      {"meshgate_queue_consumers", "gauge", "Consumers popping the topic.", [](const QueueTopicStats& t) -> uint64_t { return t.consumers; }},
      {"meshgate_queue_delivered_total", "counter", "Events handed to consumers.", [](const QueueTopicStats& t) { return t.delivered; }},
      {"meshgate_queue_redelivered_total", "counter", "Unacknowledged events given to another consumer.", [](const QueueTopicStats& t) { return t.redelivered; }},
      {"meshgate_queue_dropped_total", "counter", "Events dropped at the topic buffer bound (oldest first).", [](const QueueTopicStats& t) { return t.dropped; }},
      {"meshgate_queue_forwarded_total", "counter", "Events sent to another node's consumers.", [](const QueueTopicStats& t) { return t.forwarded; }},
      {"meshgate_queue_paused", "gauge", "1 while the topic is full and its producing clients are not read.", [](const QueueTopicStats& t) -> uint64_t { return t.paused; }},
      {"meshgate_queue_pauses_total", "counter", "Times the topic reached its bound and paused its producers.", [](const QueueTopicStats& t) { return t.pauses; }},
      {"meshgate_queue_disk_events", "gauge", "Events in a disk topic's log not consumed yet (0 for a memory topic).", [](const QueueTopicStats& t) { return t.disk_events; }},
      {"meshgate_queue_disk_bytes", "gauge", "Bytes of a disk topic's log segments (0 for a memory topic).", [](const QueueTopicStats& t) { return t.disk_bytes; }},
      {"meshgate_queue_disk_failed", "gauge", "1 while the topic's disk log cannot be written (retried every 5 s; /readyz fails meanwhile).", [](const QueueTopicStats& t) -> uint64_t { return t.disk_failed; }},
  };
  w.family("meshgate_queue_topics", "gauge", "Topics on this node (bounded by [queue] max_topics).");
  w.sample("meshgate_queue_topics", topics_.size());
  w.family("meshgate_queue_topics_refused_total", "counter", "New topics refused at [queue] max_topics.");
  w.sample("meshgate_queue_topics_refused_total", topics_refused_);
  w.family("meshgate_queue_topics_forgotten_total", "counter",
           "Idle topics forgotten (no events, no consumer, no listener) after [queue] topic_idle_timeout.");
  w.sample("meshgate_queue_topics_forgotten_total", topics_forgotten_);
  std::vector<QueueTopicStats> topics = topic_stats();
  for (const Family& f : fams) {
    w.family(f.name, f.type, f.help);
    for (const QueueTopicStats& t : topics) w.sample(f.name, {{"topic", t.topic}}, f.value(t));
  }
  w.family("meshgate_queue_discarded_total", "counter",
           "Poison events dropped instead of delivered: text not valid UTF-8, or delivery failed max_deliveries times.");
  w.sample("meshgate_queue_discarded_total", {{"reason", "invalid_text"}}, discarded_[0]);
  w.sample("meshgate_queue_discarded_total", {{"reason", "max_deliveries"}}, discarded_[1]);
  if (store_) render_store_metrics(w, store_->stats());
}

void QueueHub::render_store_metrics(PromWriter& w, const LogStoreStats& s) {
  w.family("meshgate_queue_fsync_seconds", "histogram", "Time of each fdatasync of a disk topic's log segment.");
  uint64_t below = 0;
  for (size_t b = 0; b < LogStoreStats::kSyncBuckets; b++) {
    below += s.sync_buckets[b];
    char le[32];
    snprintf(le, sizeof le, "%g", LogStoreStats::kSyncBounds[b]);
    w.sample("meshgate_queue_fsync_seconds_bucket", {{"le", le}}, below);
  }
  w.sample("meshgate_queue_fsync_seconds_bucket", {{"le", "+Inf"}}, s.syncs);
  w.sample_double("meshgate_queue_fsync_seconds_sum", {}, s.sync_seconds);
  w.sample("meshgate_queue_fsync_seconds_count", s.syncs);
  w.family("meshgate_queue_disk_errors_total", "counter",
           "Failed writes, fdatasyncs, cursor writes and reads of the disk logs (each logged).");
  w.sample("meshgate_queue_disk_errors_total", s.errors);
  w.family("meshgate_queue_recovery_corrupt_records_total", "counter",
           "Records found at start whose checksum failed: skipped and lost (logged).");
  w.sample("meshgate_queue_recovery_corrupt_records_total", s.corrupt_records);
  w.family("meshgate_queue_recovery_torn_bytes_total", "counter",
           "Bytes cut off a log's last segment at start: a record torn by a crash or power cut.");
  w.sample("meshgate_queue_recovery_torn_bytes_total", s.torn_bytes);
  w.family("meshgate_queue_recovery_refused_topics", "gauge",
           "Topic directories found at start that could not be used (unreadable, unknown format version): left untouched.");
  w.sample("meshgate_queue_recovery_refused_topics", s.refused_dirs);
}

}  // namespace mg
