// The short-key JSON envelope of the control API (PROTOCOL.md §5.1).
//
//   request   {"m": method, "p": params, "i": id}      ("id" is accepted for "i", as in the seed)
//   response  {"E": null, "r": result, "i": id}  or  {"E": {"c": code, "m": message}, "i": id}
//
// "i" is echoed as given: any JSON value, written back exactly; null when the request had none.
// Over HTTP there is no "i" and the params object is the request body.
#pragma once

#include <cstddef>
#include <string>

#include "core/json_text.h"

namespace mg {

struct Envelope {
  JsonPtr doc;
  std::string method;
  const cJSON* params = nullptr;  // an object (an empty one when "p" was absent)
  std::string id_json = "null";  // the JSON text of "i"
  const char* params_text = nullptr;  // the raw text of "p" inside the message (null when absent)
  size_t params_len = 0;
};

// Parses one /ws/v1 text message. On failure returns false with a message for error 101; id_json is
// filled in whenever the message was an object with an id, so the error can still be matched.
bool parse_envelope(const char* data, size_t len, Envelope& out, std::string& error);

// Parses an HTTP body as the params object (an empty body is {}).
bool parse_params_body(const std::string& body, JsonPtr& out, std::string& error);

// Response texts. id_json == nullptr leaves "i" out (HTTP). A message that quotes request text which
// is not UTF-8 (a path) has U+FFFD in its place: the answer is always valid JSON.
std::string envelope_ok(const std::string& result_json, const std::string* id_json);
std::string envelope_error(int code, const std::string& message, const std::string* id_json);

}  // namespace mg
