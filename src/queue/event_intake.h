// The hub's intake of client events: the workers post batches of events (client/event_outbox.h), the
// hub thread takes each into the queue here. It keeps the accounting that bounds what is on its way:
// the backlog latch (every event posted and not yet taken) and each pausing topic's gate (its events
// in flight), and asks for the paused producers to be resumed when either is down to its low mark
// (queue/backpressure.h).
//
// Threads: posted() and backlog() from any worker; take() on the hub thread only.
#pragma once

#include <cstdint>
#include <functional>

#include "queue/backpressure.h"
#include "queue/event_batch.h"

namespace mg {

class QueueHub;

class EventIntake {
 public:
  // A client is not read further (from its next message on) at kBacklogHigh events posted and not yet
  // taken, until the hub is down to half of it.
  static constexpr int64_t kBacklogHigh = 16384;

  // `resume_producers` runs on the hub thread when clients paused by the backlog or by a topic's
  // events in flight may be read again (the hub posts Worker::resume_paused to every worker).
  EventIntake(QueueHub& queue, std::function<void()> resume_producers)
      : queue_(queue), resume_producers_(std::move(resume_producers)) {}

  // --- any thread ---
  PauseLatch& backlog() { return backlog_; }
  // A worker is about to post `batch`: its events count in the backlog and in their topics' gates
  // until take().
  void posted(const EventBatch& batch);

  // --- hub thread ---
  // Pushes every event of `batch` into the queue (borrowed: valid during the call), then counts them
  // out of the backlog and their gates; resumes the producers once when either opened.
  void take(const EventBatch& batch);

 private:
  QueueHub& queue_;
  std::function<void()> resume_producers_;
  PauseLatch backlog_{kBacklogHigh};
};

}  // namespace mg
