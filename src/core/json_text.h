// Small helpers for writing JSON text by hand on hot paths (queue events, API answers), where
// building a cJSON tree for a few fixed keys would cost more than the message itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <cjson/cJSON.h>

namespace mg {

// Appends `s` as a JSON string literal (quotes included). `s` must be valid UTF-8.
void json_append_string(std::string& out, const char* s, size_t len);
inline void json_append_string(std::string& out, const std::string& s) { json_append_string(out, s.data(), s.size()); }
inline std::string json_string(const std::string& s) {
  std::string out;
  json_append_string(out, s);
  return out;
}

// Owns a cJSON tree.
struct JsonPtr {
  cJSON* p = nullptr;
  JsonPtr() = default;
  explicit JsonPtr(cJSON* v) : p(v) {}
  JsonPtr(JsonPtr&& o) noexcept : p(o.p) { o.p = nullptr; }
  JsonPtr& operator=(JsonPtr&& o) noexcept { std::swap(p, o.p); return *this; }
  JsonPtr(const JsonPtr&) = delete;
  JsonPtr& operator=(const JsonPtr&) = delete;
  ~JsonPtr() { if (p) cJSON_Delete(p); }
  cJSON* get() const { return p; }
  cJSON* release() { cJSON* v = p; p = nullptr; return v; }
  explicit operator bool() const { return p != nullptr; }
};

// cJSON_PrintUnformatted into a std::string.
std::string json_print(const cJSON* v);

// Reads a client id from a JSON value: a decimal string, or a number that is an exact integer.
bool json_client_id(const cJSON* v, uint64_t& out);

}  // namespace mg
