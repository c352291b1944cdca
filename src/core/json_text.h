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

// Parses exactly one JSON value from data[0..len), after checking that the text is valid UTF-8 and
// strict RFC 8259 JSON (json_check.h: no trailing text, no leading zeros, no \u0000, bounded
// nesting), with no object holding the same key twice (RFC 8259 leaves duplicates to the parser:
// `{"alg":"HS256","alg":"none"}` must not mean one thing here and another to the sender). Returns an
// empty JsonPtr on failure and, when `why` is given, what was wrong.
JsonPtr json_parse_strict(const char* data, size_t len, std::string* why = nullptr);

// The largest integer every double holds exactly (2^53 - 1): the bound of any integer read from JSON.
constexpr int64_t kJsonMaxExactInt = (int64_t{1} << 53) - 1;

// Reads an integer from a JSON number that is integral and within [lo, hi] (both within
// ±kJsonMaxExactInt). False for anything else (a fraction, 1e300, a string, a missing value), so an
// out-of-range double is never cast to an integer, which would be undefined behaviour.
bool json_integer(const cJSON* v, int64_t lo, int64_t hi, int64_t& out);

// The raw text of member `key` of the JSON object text [data, data+len) (top level only), or false.
// Used to read a client id given as a JSON number exactly: cJSON keeps numbers as doubles, which
// cannot hold every 64-bit id.
bool json_member_text(const char* data, size_t len, const char* key, const char*& value, size_t& value_len);

// cJSON_PrintUnformatted into a std::string.
std::string json_print(const cJSON* v);

// Reads a client id from a JSON value: a decimal string, or a number. For a number, `literal` must
// be its text as sent (json_member_text): it is accepted when it is a plain integer that fits in
// 64 bits, so no id is ever rounded to another one.
bool json_client_id(const cJSON* v, const char* literal, size_t literal_len, uint64_t& out);

}  // namespace mg
