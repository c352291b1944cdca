#include "core/json_text.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/json_check.h"
#include "core/utf8.h"

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

namespace {

// Skips a JSON string starting at s[i] == '"'; returns the index after its closing quote or n.
size_t skip_string(const char* s, size_t n, size_t i) {
  for (i++; i < n; i++) {
    if (s[i] == '\\') i++;
    else if (s[i] == '"') return i + 1;
  }
  return n;
}

// Skips one JSON value starting at s[i]; returns the index after it.
size_t skip_value(const char* s, size_t n, size_t i) {
  if (i < n && s[i] == '"') return skip_string(s, n, i);
  int depth = 0;
  for (; i < n; i++) {
    char c = s[i];
    if (c == '"') { i = skip_string(s, n, i) - 1; continue; }
    if (c == '{' || c == '[') depth++;
    else if (c == '}' || c == ']') { if (depth == 0) return i; if (--depth == 0) return i + 1; }
    else if (depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n')) return i;
  }
  return n;
}

size_t skip_ws(const char* s, size_t n, size_t i) {
  while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) i++;
  return i;
}

}  // namespace

namespace {

// The first key that some object in the tree holds twice, or nullptr. Objects are small in
// practice (a pairwise scan); a large one is sorted instead, so the check stays O(n log n).
const char* duplicate_key(const cJSON* v) {
  if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) return nullptr;
  if (cJSON_IsObject(v)) {
    std::vector<const char*> keys;
    for (const cJSON* c = v->child; c; c = c->next) keys.push_back(c->string);
    if (keys.size() <= 16) {
      for (size_t i = 0; i < keys.size(); i++)
        for (size_t j = i + 1; j < keys.size(); j++)
          if (std::strcmp(keys[i], keys[j]) == 0) return keys[i];
    } else {
      std::sort(keys.begin(), keys.end(), [](const char* a, const char* b) { return std::strcmp(a, b) < 0; });
      for (size_t i = 1; i < keys.size(); i++)
        if (std::strcmp(keys[i - 1], keys[i]) == 0) return keys[i];
    }
  }
  for (const cJSON* c = v->child; c; c = c->next)
    if (const char* dup = duplicate_key(c)) return dup;
  return nullptr;
}

}  // namespace

JsonPtr json_parse_strict(const char* data, size_t len, std::string* why) {
  std::string problem;
  if (!is_valid_utf8(data, len)) {
    problem = "the JSON text is not valid UTF-8";
  } else if (json_check(data, len, problem)) {
    JsonPtr v(cJSON_ParseWithLength(data, len));
    if (!v) {
      problem = "malformed JSON";
    } else if (const char* dup = duplicate_key(v.get())) {
      problem = "malformed JSON: the key ";
      json_append_string(problem, dup, std::strlen(dup));
      problem += " appears twice in one object";
    } else {
      return v;
    }
  }
  if (why) *why = problem;
  return JsonPtr();
}

bool json_integer(const cJSON* v, int64_t lo, int64_t hi, int64_t& out) {
  if (!cJSON_IsNumber(v)) return false;
  double d = v->valuedouble;
  // Compared as doubles first (NaN fails every comparison), so the cast below is always defined.
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != std::floor(d)) return false;
  out = static_cast<int64_t>(d);
  return true;
}

bool json_member_text(const char* s, size_t n, const char* key, const char*& value, size_t& value_len) {
  size_t klen = std::strlen(key);
  size_t i = skip_ws(s, n, 0);
  if (i >= n || s[i] != '{') return false;
  i++;
  while (true) {
    i = skip_ws(s, n, i);
    if (i >= n || s[i] != '"') return false;
    size_t kend = skip_string(s, n, i);
    bool match = kend - i - 2 == klen && std::memcmp(s + i + 1, key, klen) == 0;
    i = skip_ws(s, n, kend);
    if (i >= n || s[i] != ':') return false;
    i = skip_ws(s, n, i + 1);
    size_t vend = skip_value(s, n, i);
    if (match) {  // the first of duplicate keys, as cJSON_GetObjectItem
      value = s + i;
      value_len = vend - i;
      return true;
    }
    i = skip_ws(s, n, vend);
    if (i >= n || s[i] != ',') return false;
    i++;
  }
}

std::string json_print(const cJSON* v) {
  char* text = cJSON_PrintUnformatted(v);
  if (!text) return "null";
  std::string out(text);
  cJSON_free(text);
  return out;
}

bool json_client_id(const cJSON* v, const char* literal, size_t literal_len, uint64_t& out) {
  const char* digits;
  std::string text;
  if (cJSON_IsString(v)) {
    digits = v->valuestring;
  } else if (cJSON_IsNumber(v) && literal) {
    text.assign(literal, literal_len);
    digits = text.c_str();
  } else {
    return false;
  }
  if (*digits < '1' || *digits > '9') return false;  // no sign, no leading zero, not empty
  for (const char* p = digits; *p; p++)
    if (*p < '0' || *p > '9') return false;  // no fraction, no exponent, no spaces
  errno = 0;
  unsigned long long n = std::strtoull(digits, nullptr, 10);
  if (errno) return false;  // over 2^64 - 1
  out = n;
  return true;
}

}  // namespace mg
