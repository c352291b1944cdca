#include "http/ws_upgrade.h"

#include <strings.h>

#include "ws/ws_frame.h"

namespace mg {

namespace {

// Does a comma-separated header value contain `token` (case-insensitive)?
bool has_token(const std::string* value, const char* token) {
  if (!value) return false;
  size_t tlen = std::char_traits<char>::length(token);
  size_t pos = 0;
  while (pos < value->size()) {
    size_t comma = value->find(',', pos);
    if (comma == std::string::npos) comma = value->size();
    size_t b = pos, e = comma;
    while (b < e && ((*value)[b] == ' ' || (*value)[b] == '\t')) b++;
    while (e > b && ((*value)[e - 1] == ' ' || (*value)[e - 1] == '\t')) e--;
    if (e - b == tlen && strncasecmp(value->data() + b, token, tlen) == 0) return true;
    pos = comma + 1;
  }
  return false;
}

}  // namespace

int check_ws_upgrade(const HttpRequest& req, std::string& response, std::string& error) {
  if (req.http_major < 1 || (req.http_major == 1 && req.http_minor < 1)) {
    error = "a WebSocket upgrade needs HTTP/1.1";
    return 400;
  }
  if (req.method != "GET") {
    error = "a WebSocket upgrade must use GET";
    return 405;
  }
  if (!has_token(req.header("upgrade"), "websocket") || !has_token(req.header("connection"), "upgrade")) {
    error = "this port speaks WebSocket: send Upgrade: websocket and Connection: Upgrade";
    return 400;
  }
  const std::string* version = req.header("sec-websocket-version");
  if (!version || *version != "13") {
    error = "Sec-WebSocket-Version must be 13";
    return 426;
  }
  const std::string* key = req.header("sec-websocket-key");
  if (!key || key->size() != 24) {
    error = "Sec-WebSocket-Key is missing or malformed";
    return 400;
  }
  response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
             ws_accept_key(*key) + "\r\n\r\n";
  return 0;
}

}  // namespace mg
