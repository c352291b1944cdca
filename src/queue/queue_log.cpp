// QueueHub's disk topics (queue/queue_hub.h, "Disk topics"): numbering events into their topic's log,
// moving its cursor as they are consumed, and reading a spilled backlog back in order.
#include "core/log.h"
#include "core/log_text.h"
#include "queue/queue_hub.h"

namespace mg {

void QueueHub::set_store(LogStore* store) {
  store_ = store;
  if (!store_) return;
  store_->set_handlers([this](TopicLog& log, std::vector<LoggedEvent>& events) { on_log_read(log, events); },
                       [this](TopicLog& log) {
                         Topic* t = topic(log.topic(), false);
                         if (!t) return;
                         check_disk(*t);
                         relieve(*t);  // reads on, and resumes a topic paused at its disk bound
                       },
                       [this](TopicLog& log) { on_log_failed(log); });
}

void QueueHub::adopt_log(TopicLog* log) {
  Topic* t = topic(log->topic(), false);
  if (!t) t = make_topic(log->topic());
  t->log = log;
  maybe_read(*t);
}

void QueueHub::log_done(const QueueEvent& ev) {
  auto it = topics_.find(ev.topic);
  if (it != topics_.end() && it->second->log) it->second->log->done(ev.log_seq);
}

bool QueueHub::log_push(Topic& t, QueueEvent& ev) {
  const bool to_memory = log_to_memory(t);
  ev.log_seq = log_record(t, ev.client, ev.data, ev.context, to_memory);
  return to_memory;
}

bool QueueHub::log_to_memory(const Topic& t) const {
  // Memory takes it while the topic is not spilled and under its window; once spilled, every later
  // event goes to the log only, so none passes an older one of its client waiting there.
  return !t.log->spilled() && t.pending.size() < limits_.max_events && t.bytes < limits_.max_bytes;
}

uint64_t QueueHub::log_record(Topic& t, uint64_t client, std::string_view data, std::string_view context,
                              bool to_memory) {
  TopicLog& log = *t.log;
  const uint64_t seq = log.append(client, data, context);
  if (to_memory) log.set_memory_end(log.next_seq());
  // Clients faster than the disk: what waits to be written is memory, bounded like the window
  // (max_bytes); the producers are paused until the store's thread is down to half of it (relieve).
  if (t.pause_on_overflow && !t.paused && log.unwritten_bytes() > limits_.max_bytes) {
    pause(t);
    t.behind_disk = true;
  }
  return seq;
}

void QueueHub::maybe_read(Topic& t) {
  if (!t.log || !store_ || !t.log->spilled() || t.log->reading()) return;
  if (t.log->memory_end() >= t.log->written_end()) return;  // not written yet: on_written asks again
  if (t.pending.size() > limits_.max_events / 2 || t.bytes > limits_.max_bytes / 2) return;
  store_->read(*t.log, limits_.max_events - t.pending.size());
}

void QueueHub::on_log_read(TopicLog& log, std::vector<LoggedEvent>& events) {
  Topic* t = topic(log.topic(), false);
  if (!t) t = make_topic(log.topic());
  for (LoggedEvent& e : events) {
    if (e.seq < log.memory_end()) continue;  // already here (a read that overlapped)
    // Sequence numbers skipped: records recovery found corrupt (counted and logged there).
    for (uint64_t s = log.memory_end(); s < e.seq; s++) log.done(s);
    QueueEvent ev;
    ev.topic = t->name;
    ev.client = e.client;
    ev.data = std::move(e.data);
    ev.context = std::move(e.context);
    ev.node = node_id_;
    ev.log_seq = e.seq;
    if (e.seq < log.recovered_end()) {  // from the last run: delivered again, as the old spool's (before issue 20) were
      ev.redelivered = true;
      t->redelivered++;
    }
    log.set_memory_end(e.seq + 1);
    enqueue(*t, Pending{std::move(ev), nullptr}, false);
  }
  dispatch(*t);
  maybe_read(*t);
}

size_t QueueHub::log_held() {
  std::vector<QueueEvent> events = take_held();
  if (events.empty()) return 0;
  if (!store_) {
    LOG_ERROR("queue: %zu events lost at shutdown: no consumer took them and no [node] state_dir is set to keep "
              "them", events.size());
    return 0;
  }
  size_t kept = 0;
  for (const QueueEvent& ev : events) {
    TopicLog* log = store_->open(ev.topic);
    if (log && !log->failed()) {  // a failed log takes no more records: they would be dropped unsaid
      log->append(ev.client, ev.data, ev.context);
      kept++;
    }
  }
  if (kept < events.size())
    LOG_ERROR("queue: %zu events lost at shutdown: their topics' disk logs could not be used", events.size() - kept);
  if (kept)
    LOG_WARN("queue: %zu events no consumer took kept in %s; they are delivered after the next start", kept,
             store_->options().queue_dir.c_str());
  return kept;
}

bool QueueHub::disk_room(const Topic& t, uint64_t div) const {
  if (!t.log || t.log->failed()) return false;
  if (t.log->disk_bytes() > limits_.max_disk / div) return false;
  return limits_.max_disk_total == 0 || !store_ || store_->total_bytes() <= limits_.max_disk_total / div;
}

void QueueHub::check_disk(Topic& t) {
  if (!logging(t) || t.paused || disk_room(t, 1)) return;
  if (t.pause_on_overflow) pause(t);
  else drop_oldest_segment(t);
}

void QueueHub::drop_oldest_segment(Topic& t) {
  TopicLog& log = *t.log;
  const uint64_t below = log.oldest_end();
  if (below <= t.dropped_below) return;  // dropped already; the segment goes once its events in flight are done
  t.dropped_below = below;
  uint64_t n = 0;
  while (!t.pending.empty() && t.pending.front().ev.log_seq && t.pending.front().ev.log_seq < below) {
    lost(t.pending.front().ev);
    take_pending(t, 0);
    n++;
  }
  for (uint64_t s = log.memory_end(); s < below; s++, n++) log.done(s);
  if (log.memory_end() < below) log.set_memory_end(below);
  t.dropped += n;
  log_drops(t);
}

void QueueHub::on_log_failed(TopicLog& log) {
  Topic* t = topic(log.topic(), false);
  if (!t) return;
  if (!log.failed()) {
    LOG_INFO("queue: topic \"%s\": its disk log is written again", log_safe(t->name).c_str());
    relieve(*t);
    return;
  }
  // Events numbered after the last record written are not on disk: those the topic holds in memory
  // are delivered as usual; those only the log was to hold are lost, counted and logged.
  log.drop_batch();
  const uint64_t from = std::max(log.written_end(), log.memory_end()), to = log.next_seq();
  for (uint64_t s = from; s < to; s++) log.done(s);
  log.skip(from, to);
  // Those it holds in memory (or has given out) from the last record written on are not on disk
  // either: memory events from now on, so that a stop keeps them in the log, or counts them lost.
  const uint64_t unwritten = log.written_end();
  auto unlog = [&](QueueEvent& ev) {
    if (ev.log_seq < unwritten || ev.topic != t->name) return;  // on disk (or no record: 0)
    log.done(ev.log_seq);
    ev.log_seq = 0;
  };
  for (Pending& p : t->pending) unlog(p.ev);
  for (auto& [sink, c] : consumers_)
    for (auto& [k, f] : c->unacked) unlog(f.ev);
  for (auto& [fwd, f] : forwarded_) unlog(f.ev);
  if (to > from) {
    t->dropped += to - from;
    LOG_ERROR("queue: topic \"%s\": %llu events lost: its disk log failed before they were written",
              log_safe(t->name).c_str(), static_cast<unsigned long long>(to - from));
  }
  LOG_ERROR("queue: topic \"%s\": its disk log failed; %s until it can be written again (tried every %u s)",
            log_safe(t->name).c_str(), t->pause_on_overflow ? "its producing clients are paused" :
            "its events are kept in memory (and dropped at its memory bound)", kLogRetrySeconds);
  t->log_retry_ms = now_ms_ + kLogRetrySeconds * 1000;
  if (t->pause_on_overflow && !t->paused) pause(*t);
}

void QueueHub::retry_failed_logs() {
  for (auto& [name, t] : topics_)
    if (t->log && t->log->failed() && now_ms_ >= t->log_retry_ms) {
      store_->retry(*t->log);
      t->log_retry_ms = now_ms_ + kLogRetrySeconds * 1000;
    }
}

std::string QueueHub::failed_log() const {
  for (const auto& [name, t] : topics_)
    if (t->log && t->log->failed()) return name;
  return "";
}

}  // namespace mg
