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
  unsigned node = 0;    // the node the client is on ("n")
  unsigned hops = 0;    // times forwarded between nodes (bounded, so events cannot circle)
  size_t bytes() const { return topic.size() + data.size() + context.size() + 64; }
};

}  // namespace mg
