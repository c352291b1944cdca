// HTTP/1.1 response text.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace mg {

const char* http_status_text(int status);

// A complete response with Content-Length. `extra` headers are written as given.
std::string http_response(int status, const char* content_type, const std::string& body, bool keep_alive,
                          const std::vector<std::pair<std::string, std::string>>& extra = {});

// Percent-decodes a query value ('+' is a space). Returns false on a bad escape.
bool url_decode(const std::string& in, std::string& out);
// The decoded value of `key` in a query string; false when absent.
bool query_param(const std::string& query, const std::string& key, std::string& value);
// The query string without any `key=...` parameter (e.g. a connect token kept out of events).
std::string query_without(const std::string& query, const std::string& key);

}  // namespace mg
