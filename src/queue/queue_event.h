// A client event on its way to a queue consumer (PROTOCOL.md §4).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mg {

struct QueueEvent;

// An event's parts, borrowed: how a worker's batch hands its events to the queue (the bytes stay in
// the batch; the queue copies them into a QueueEvent only when it keeps the event), and how the
// queue hands an event to its consumer. Valid while what it points into is.
struct QueueEventRef {
  const std::string* topic = nullptr;
  uint64_t client = 0;
  std::string_view data;     // JSON text of "d"
  std::string_view context;  // JSON text of "x"; empty when the context is empty
  unsigned node = 0;
  unsigned hops = 0;
  uint64_t fwd = 0;
  bool redelivered = false;
  QueueEvent own() const;
};

struct QueueEvent {
  std::string topic;
  uint64_t client = 0;
  std::string data;     // JSON text of "d"
  std::string context;  // JSON text of "x"; empty when the context is empty
  unsigned node = 0;    // the node the client is on ("n"), which also holds the event until it is consumed
  unsigned hops = 0;    // times forwarded between nodes (at most once: only the producing node forwards)
  uint64_t fwd = 0;     // on a consuming node: the producing node's id for this forwarded event, else 0
  bool redelivered = false;  // delivered before (ack timeout, consumer gone) or kept over a restart: "r"
  uint32_t failures = 0;     // deliveries here that failed: QueueHub::requeue ([queue] max_deliveries)
  uint64_t log_seq = 0;      // its sequence number in its topic's disk log (queue/log_store.h), 0: not logged
  size_t bytes() const { return topic.size() + data.size() + context.size() + 64; }
  QueueEventRef ref() const { return QueueEventRef{&topic, client, data, context, node, hops, fwd, redelivered}; }
};

// The one place an event's JSON is written: its members "n","c","t","d", then "x" and "r" when set,
// comma-separated and without braces. A consumer gets them inside a queue.pop event (with "k" in
// acknowledged mode); another node gets them inside an EVENT frame (with "f" and "h"). `this_node`
// stands in for ev.node when that is 0 (an event of this node's own clients).
// Whether every text of the event (topic, "d", "x") is valid UTF-8: one that is not would make the
// consumer's text frame invalid (standard clients close with 1007) and another node refuse the
// EVENT frame, so the queue drops it at the door (QueueHub::push). Events are built valid
// (client_events.h); this is the check that keeps one bug there from poisoning every consumer.
bool event_text_valid(const QueueEventRef& ev);

void append_event_members(std::string& out, const QueueEventRef& ev, unsigned this_node);
// The message a consumer gets (PROTOCOL.md §4): {"e":"queue.pop","p":{members, "k":seq},"id":null};
// `seq` is 0 for a consumer that does not acknowledge (no "k").
void append_queue_pop_message(std::string& out, const QueueEventRef& ev, unsigned this_node, uint64_t seq);
std::string queue_pop_message(const QueueEventRef& ev, unsigned this_node, uint64_t seq);

}  // namespace mg
