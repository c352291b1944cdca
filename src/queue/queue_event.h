// A client event on its way to a queue consumer (PROTOCOL.md §4).
#pragma once

#include <cstdint>
#include <string>

namespace mg {

struct QueueEvent {
  std::string topic;
  uint64_t client = 0;
  std::string data;     // JSON text of "d"
  std::string context;  // JSON text of "x"; empty when the context is empty
  unsigned node = 0;    // the node the client is on ("n"), which also holds the event until it is consumed
  unsigned hops = 0;    // times forwarded between nodes (at most once: only the producing node forwards)
  uint64_t fwd = 0;     // on a consuming node: the producing node's id for this forwarded event, else 0
  bool redelivered = false;  // delivered before (ack timeout, consumer gone) or kept over a restart: "r"
  size_t bytes() const { return topic.size() + data.size() + context.size() + 64; }
};

}  // namespace mg
