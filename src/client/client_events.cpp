#include "client/client_events.h"

#include "core/base64.h"
#include "core/json_text.h"
#include "core/utf8.h"

namespace mg {

namespace {
void append_utf8_or_empty(std::string& d, const std::string& text) {
  if (is_valid_utf8(text.data(), text.size())) json_append_string(d, text);
  else d += "\"\"";
}
}  // namespace

std::string client_open_event(const std::string& listener, const std::string& remote_addr, bool websocket,
                              const std::string& path, const std::string& query) {
  std::string d = "{\"event\":\"open\",\"listener\":";
  json_append_string(d, listener);
  d += ",\"remote_addr\":";
  json_append_string(d, remote_addr);
  if (websocket) {
    d += ",\"path\":";
    json_append_string(d, path);
    d += ",\"query\":";
    append_utf8_or_empty(d, query);
  }
  d += '}';
  return d;
}

void append_client_message_event(std::string& d, bool binary, const char* data, size_t len) {
  d += binary ? "{\"frame\":{\"type\":\"binary\",\"data\":" : "{\"frame\":{\"type\":\"text\",\"data\":";
  if (binary) {
    d += '"';
    d += base64_encode(data, len);
    d += '"';
  } else {
    json_append_string(d, data, len);
  }
  d += ",\"finish\":true}}";
}

std::string client_close_event(int code, const std::string& reason) {
  std::string d = "{\"event\":\"close\",\"code\":" + std::to_string(code) + ",\"reason\":";
  append_utf8_or_empty(d, reason);
  d += '}';
  return d;
}

}  // namespace mg
