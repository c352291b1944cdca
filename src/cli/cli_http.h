// A minimal blocking HTTP/1.1 client for the command line tools: one request per connection
// (Connection: close), the whole answer read until the server closes. Not for the server's loops.
#pragma once

#include <string>

namespace mg {

struct CliHttpResponse {
  int status = 0;
  std::string body;
};

// Sends `method path` with `body` (JSON) to host:port, with `Authorization: Bearer token` when
// `token` is not empty. False with `error` set when the node cannot be reached, does not answer
// within `timeout_s`, or answers something that is not HTTP.
bool cli_http(const std::string& host, int port, const std::string& method, const std::string& path,
              const std::string& body, const std::string& token, int timeout_s, CliHttpResponse& out,
              std::string& error);

}  // namespace mg
