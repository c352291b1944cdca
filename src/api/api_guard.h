// What keeps web pages away from the control API: a browser on the operator's desk can reach
// 127.0.0.1:6789 and will send what any page it shows asks, so the API checks what a browser cannot
// forge. Pure checks, no I/O (ApiConn applies them; docs/security.md "Cross-site requests").
//
// - Host (every request): names one of this API's own addresses, so a page that rebinds its DNS
//   name to 127.0.0.1 (DNS rebinding) is refused, 421. Allowed: localhost, *.localhost and loopback
//   addresses under any port (a tunnel keeps the browser's port); the bind address; any IP literal
//   when bound to a wildcard (0.0.0.0, ::); the names in [api] hosts. Loopback and IP literals are
//   taken under any port (a tunnel, a mapped port: no DNS answer gives a page an IP-literal Host);
//   for a name, a port, when given, must be the API's (an entry "name:port" allows that port
//   instead); without one (a proxy in front on 80/443) the name decides.
//   A request without Host (HTTP/1.0; HTTP/1.1 requires one) is not from a browser: allowed.
// - Origin (POST and every other method but GET and HEAD, and the /ws/v1 upgrade): absent (curl, a
//   backend), the same origin as the request (its host and port are those of the Host, itself
//   allowed: the dashboard), or listed in [api] origins (exact, case-insensitive); else 403.
// - Content-Type (every POST): application/json, parameters allowed; else 415, a missing one too
//   (a page can POST a Blob without a type and without a preflight).
#pragma once

#include <string>
#include <vector>

namespace mg {

class ApiGuard {
 public:
  // `bind` and `port`: [api] bind and port; `hosts`, `origins`: [api] hosts and origins.
  ApiGuard(std::string bind, int port, std::vector<std::string> hosts, std::vector<std::string> origins);

  // `host`: the Host header, or nullptr.
  bool host_allowed(const std::string* host) const;
  // `origin`: the Origin header, or nullptr; `host`: the request's Host (already allowed), or nullptr.
  bool origin_allowed(const std::string* origin, const std::string* host) const;
  static bool json_content_type(const std::string* content_type);

 private:
  std::string bind_;  // lower case, without IPv6 brackets
  int port_;
  bool bind_wildcard_;
  std::vector<std::string> hosts_, origins_;  // lower case
};

}  // namespace mg
