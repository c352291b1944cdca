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
                         if (Topic* t = topic(log.topic(), false)) maybe_read(*t);
                       },
                       [this](TopicLog& log, const std::string& error) { on_log_error(log, error); });
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
  TopicLog& log = *t.log;
  // Memory takes it while the topic is not spilled and under its window; once spilled, every later
  // event goes to the log only, so none passes an older one of its client waiting there.
  const bool to_memory = !log.spilled() && t.pending.size() < limits_.max_events && t.bytes < limits_.max_bytes;
  ev.log_seq = log.append(ev.client, ev.data, ev.context);
  if (to_memory) log.set_memory_end(log.next_seq());
  return to_memory;
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
    if (e.seq < log.recovered_end()) {  // from the last run: delivered again, as the spool's were
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
  for (const QueueEvent& ev : events) {
    TopicLog* log = store_->open(ev.topic);
    log->append(ev.client, ev.data, ev.context);
  }
  LOG_WARN("queue: %zu events no consumer took kept in %s; they are delivered after the next start", events.size(),
           store_->options().queue_dir.c_str());
  return events.size();
}

void QueueHub::on_log_error(TopicLog&, const std::string&) {
  // Logged by the store. What a failed log means for the topic's events: issue 20's error handling.
}

}  // namespace mg
