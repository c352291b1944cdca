#include "queue/queue_event.h"

#include <charconv>

#include "core/json_text.h"
#include "core/utf8.h"

namespace mg {

namespace {
void append_number(std::string& j, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  j.append(buf, static_cast<size_t>(r.ptr - buf));
}
}  // namespace

QueueEvent QueueEventRef::own() const {
  return QueueEvent{*topic, client, std::string(data), std::string(context), node, hops, fwd, redelivered, 0};
}

bool event_text_valid(const QueueEventRef& ev) {
  return is_valid_utf8(ev.topic->data(), ev.topic->size()) && is_valid_utf8(ev.data.data(), ev.data.size()) &&
         is_valid_utf8(ev.context.data(), ev.context.size());
}

void append_event_members(std::string& j, const QueueEventRef& ev, unsigned this_node) {
  j += "\"n\":";
  append_number(j, ev.node ? ev.node : this_node);
  j += ",\"c\":\"";
  append_number(j, ev.client);  // a string: JavaScript numbers lose ids above 2^53
  j += "\",\"t\":";
  json_append_string(j, *ev.topic);
  j += ",\"d\":";
  j += ev.data;
  if (!ev.context.empty()) {
    j += ",\"x\":";
    j += ev.context;
  }
  if (ev.redelivered) j += ",\"r\":true";
}

void append_queue_pop_message(std::string& j, const QueueEventRef& ev, unsigned this_node, uint64_t seq) {
  j.reserve(j.size() + ev.data.size() + ev.context.size() + ev.topic->size() + 96);
  j += "{\"e\":\"queue.pop\",\"p\":{";
  append_event_members(j, ev, this_node);
  if (seq) {
    j += ",\"k\":";
    append_number(j, seq);
  }
  j += "},\"id\":null}";
}

std::string queue_pop_message(const QueueEventRef& ev, unsigned this_node, uint64_t seq) {
  std::string j;
  append_queue_pop_message(j, ev, this_node, seq);
  return j;
}

}  // namespace mg
