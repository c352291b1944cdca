#include "client/client_events.h"

#include "core/base64.h"
#include "core/json_text.h"
#include "core/utf8.h"

namespace mg {

std::string client_open_event(const std::string& listener, const std::string& remote_addr, bool websocket,
                              const std::string& path, const std::string& query) {
  std::string d = "{\"event\":\"open\",\"listener\":";
  json_append_string(d, listener);
  d += ",\"remote_addr\":";
  json_append_string(d, remote_addr);
  if (websocket) {
    d += ",\"path\":";
    json_append_string(d, utf8_percent_encode_invalid(path));
    d += ",\"query\":";
    json_append_string(d, utf8_percent_encode_invalid(query));
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
  json_append_string(d, utf8_replace_invalid(reason));
  d += '}';
  return d;
}

}  // namespace mg
