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
  size_t bytes() const { return topic.size() + data.size() + context.size() + 64; }
};

}  // namespace mg
