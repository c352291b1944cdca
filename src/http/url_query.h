// Query strings of request targets: percent-decoding and reading or dropping one parameter.
#pragma once

#include <string>

namespace mg {

// Percent-decodes a query value ('+' is a space). Returns false on a bad escape.
bool url_decode(const std::string& in, std::string& out);
// The decoded value of `key` in a query string; false when absent.
bool query_param(const std::string& query, const std::string& key, std::string& value);
// The query string without any `key=...` parameter (e.g. a connect token kept out of events).
std::string query_without(const std::string& query, const std::string& key);

}  // namespace mg
