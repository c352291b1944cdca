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

}  // namespace mg
