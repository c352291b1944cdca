#include "queue/queue_event.h"

#include "core/json_text.h"

namespace mg {

void append_event_members(std::string& j, const QueueEvent& ev, unsigned this_node) {
  j += "\"n\":";
  j += std::to_string(ev.node ? ev.node : this_node);
  j += ",\"c\":\"";
  j += std::to_string(ev.client);  // a string: JavaScript numbers lose ids above 2^53
  j += "\",\"t\":";
  json_append_string(j, ev.topic);
  j += ",\"d\":";
  j += ev.data;
  if (!ev.context.empty()) {
    j += ",\"x\":";
    j += ev.context;
  }
  if (ev.redelivered) j += ",\"r\":true";
}

std::string queue_pop_message(const QueueEvent& ev, unsigned this_node, uint64_t seq) {
  std::string j;
  j.reserve(ev.data.size() + ev.context.size() + ev.topic.size() + 96);
  j += "{\"e\":\"queue.pop\",\"p\":{";
  append_event_members(j, ev, this_node);
  if (seq) {
    j += ",\"k\":";
    j += std::to_string(seq);
  }
  j += "},\"id\":null}";
  return j;
}

}  // namespace mg
