// Client events a worker posts to the hub in one task (client/event_outbox.h fills it, EventIntake
// takes it on the hub thread): one buffer holds every event's "d" and "x" JSON back to back, and one
// slot per event says where its parts are, so the hub reads them in place (QueueEventRef) and copies
// only those the queue keeps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "queue/queue_event.h"
#include "queue/topic_gate.h"

namespace mg {

struct EventBatch {
  struct Slot {
    const std::string* topic;  // the listener's, in the node's Config (which outlives every worker)
    uint64_t client;
    size_t data_at, data_len, context_at, context_len;
    TopicGate* gate;  // its topic's gate, or null (overflow = drop); counts the event in flight
  };
  std::string bytes;
  std::vector<Slot> events;

  // The event of `s`, borrowed from `bytes`.
  QueueEventRef ref(const Slot& s) const {
    QueueEventRef ev;
    ev.topic = s.topic;
    ev.client = s.client;
    ev.data = std::string_view(bytes.data() + s.data_at, s.data_len);
    ev.context = std::string_view(bytes.data() + s.context_at, s.context_len);
    return ev;
  }
};

}  // namespace mg
