#include "queue/event_intake.h"

#include "queue/queue_hub.h"

namespace mg {

namespace {
// Calls `count(gate, n)` once per run of events of one gate (a batch is mostly one listener's): the
// gates are shared by every worker and the hub, an atomic add per event would bounce their cache
// lines between the threads. Events without a gate are skipped.
template <typename Count>
void for_each_gate_run(const EventBatch& batch, const Count& count) {
  TopicGate* gate = nullptr;
  int64_t n = 0;
  for (const EventBatch::Slot& e : batch.events) {
    if (e.gate != gate) {
      if (gate) count(*gate, n);
      gate = e.gate;
      n = 0;
    }
    n++;
  }
  if (gate) count(*gate, n);
}
}  // namespace

void EventIntake::posted(const EventBatch& batch) {
  backlog_.added(static_cast<int64_t>(batch.events.size()));
  for_each_gate_run(batch, [](TopicGate& gate, int64_t n) { gate.in_flight.added(n); });
}

void EventIntake::take(const EventBatch& batch) {
  for (const EventBatch::Slot& e : batch.events) queue_.push(batch.ref(e));
  // In their topics now, under the topics' own bounds.
  bool resume = false;
  for_each_gate_run(batch, [&](TopicGate& gate, int64_t n) { resume |= gate.in_flight.taken(n); });
  resume |= backlog_.taken(static_cast<int64_t>(batch.events.size()));
  if (resume && resume_producers_) resume_producers_();
}

}  // namespace mg
