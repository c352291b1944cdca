#include "core/json_text.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace mg {

void json_append_string(std::string& out, const char* s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  out.reserve(out.size() + len + 2);
  out += '"';
  size_t run = 0;  // start of the pending run of bytes that need no escaping
  for (size_t i = 0; i < len; i++) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 15];
    }
  }
  out.append(s + run, len - run);
  out += '"';
}

std::string json_print(const cJSON* v) {
  char* text = cJSON_PrintUnformatted(v);
  if (!text) return "null";
  std::string out(text);
  cJSON_free(text);
  return out;
}

bool json_client_id(const cJSON* v, uint64_t& out) {
  if (cJSON_IsString(v)) {
    const char* s = v->valuestring;
    if (!*s || *s == '-' || *s == '+' || *s == ' ') return false;
    errno = 0;
    char* end = nullptr;
    unsigned long long n = std::strtoull(s, &end, 10);
    if (errno || *end != '\0' || n == 0) return false;
    out = n;
    return true;
  }
  if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    // Only integers a double holds exactly: larger ids must be sent as strings.
    if (!(d >= 1 && d <= 9007199254740992.0) || std::floor(d) != d) return false;
    out = static_cast<uint64_t>(d);
    return true;
  }
  return false;
}

}  // namespace mg
