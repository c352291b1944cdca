// The gate of a queue topic with overflow = pause, made and owned by QueueHub (declare), shared with
// every worker through the listeners that produce into the topic (QueueHub::gate).
//
// A worker stops reading a client of the topic right after a message (ClientConn::hold_input) when
// the gate is closed: the topic is full (the queue's verdict: `full`, set by QueueHub from the bound
// to half of it), or the events the workers posted to the hub and the hub has not pushed yet reach the
// topic's bound (`in_flight`: the queue's verdict lags the hub's mailbox by up to a loop iteration's
// reads, several MB). The workers post their events in batches (EventOutbox::kMax), so the overshoot
// is up to a batch per worker.
//
// Resumes: the hub tells every worker to read its paused clients again when the topic is down to half
// its bound (QueueHub's resume handler), and when the events in flight that paused a client are down
// to half the bound (EventIntake, from in_flight.taken). QueueHub::set_limits moves the bound on a
// reload.
#pragma once

#include <atomic>
#include <cstdint>

#include "queue/backpressure.h"

namespace mg {

struct TopicGate {
  explicit TopicGate(int64_t bound) : in_flight(bound) {}
  std::atomic<bool> full{false};  // set by the queue: pending reached the bound, until half of it
  PauseLatch in_flight;           // events posted to the hub and not yet pushed; high = [queue] max_events
  // Worker: true when a client of the topic must stop being read. When in_flight is what closes the
  // gate, the caller is owed a resume.
  bool should_pause() { return in_flight.should_pause() || full.load(std::memory_order_relaxed); }
};

}  // namespace mg
