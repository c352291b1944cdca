// Checks a WebSocket opening handshake (RFC 6455 §4.2.1) and builds the 101 answer.
#pragma once

#include <string>

#include "http/http_parser.h"

namespace mg {

// Returns 0 when `req` is a valid upgrade and sets `response` to the 101 Switching Protocols text;
// otherwise the HTTP status to refuse with (400, 405, or 426 for a version other than 13) and sets `error`.
int check_ws_upgrade(const HttpRequest& req, std::string& response, std::string& error);

}  // namespace mg
