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

}  // namespace mg
