#include "client/event_outbox.h"

#include <memory>

#include "client/worker.h"
#include "core/log.h"
#include "core/metrics.h"
#include "queue/event_intake.h"

namespace mg {

void EventOutbox::open(uv_loop_t* loop) {
  uv_check_init(loop, &check_);
  check_.data = this;
}

void EventOutbox::close() {
  flush();
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
}

void EventOutbox::add(const std::string* topic, TopicGate* gate, uint64_t client, const std::string& context,
                      size_t data_start) {
  std::string& bytes = batch_.bytes;
  if (host_.event_intake().backlog().count() + static_cast<int64_t>(batch_.events.size()) >=
      static_cast<int64_t>(kMaxEventsWaiting)) {
    bytes.resize(data_start);
    inc(metrics().queue_backlog_drops);
    drops_unlogged_++;
    return;
  }
  const size_t data_len = bytes.size() - data_start, context_at = bytes.size();
  bytes += context;
  if (batch_.events.empty()) {
    uv_check_start(&check_, &EventOutbox::on_check);
    batch_.events.reserve(kMax);
  }
  batch_.events.push_back(EventBatch::Slot{topic, client, data_start, data_len, context_at, context.size(), gate});
  if (batch_.events.size() >= kMax || bytes.size() >= kMaxBytes) flush();
}

void EventOutbox::on_check(uv_check_t* h) { static_cast<EventOutbox*>(h->data)->flush(); }

void EventOutbox::flush() {
  uv_check_stop(&check_);
  if (batch_.events.empty()) return;
  auto batch = std::make_shared<EventBatch>(std::move(batch_));
  batch_.bytes.clear();
  batch_.events.clear();
  EventIntake& intake = host_.event_intake();
  intake.posted(*batch);
  host_.post([&intake, batch] { intake.take(*batch); });
}

void EventOutbox::log_drops(unsigned worker, uint32_t now_s) {
  if (!drops_unlogged_ || (drop_logged_s_ && now_s - drop_logged_s_ < 60)) return;
  LOG_WARN("queue: worker %u dropped %llu client event%s: %zu were waiting for the hub thread", worker,
           static_cast<unsigned long long>(drops_unlogged_), drops_unlogged_ == 1 ? "" : "s", kMaxEventsWaiting);
  drops_unlogged_ = 0;
  drop_logged_s_ = now_s ? now_s : 1;
}

}  // namespace mg
