#include "api/api_guard.h"

#include <arpa/inet.h>
#include <strings.h>

#include <algorithm>
#include <cctype>

namespace mg {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// "name", "name:port", "[v6]" or "[v6]:port" → name (lower case, no brackets) and port (-1: none,
// 0: not a port). False when it is not of that shape.
bool split_authority(const std::string& text, std::string& name, int& port) {
  std::string rest;
  port = -1;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) return false;
    name = text.substr(1, close - 1);
    rest = text.substr(close + 1);
  } else {
    size_t colon = text.find(':');
    name = text.substr(0, colon);
    rest = colon == std::string::npos ? "" : text.substr(colon);
  }
  if (name.empty()) return false;
  if (!rest.empty()) {
    if (rest[0] != ':' || rest.size() < 2 || rest.size() > 6) return false;
    port = 0;
    for (size_t i = 1; i < rest.size(); i++) {
      if (!std::isdigit(static_cast<unsigned char>(rest[i]))) return false;
      port = port * 10 + (rest[i] - '0');
    }
    if (port < 1 || port > 65535) return false;
  }
  name = lower(name);
  return true;
}

bool is_ip_literal(const std::string& name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

bool is_loopback_literal(const std::string& name) {
  unsigned char v4[4], v6[16];
  if (inet_pton(AF_INET, name.c_str(), v4) == 1) return v4[0] == 127;
  static const unsigned char one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return inet_pton(AF_INET6, name.c_str(), v6) == 1 && std::equal(v6, v6 + 16, one);
}

bool is_localhost_name(const std::string& name) {
  static const std::string suffix = ".localhost";  // RFC 6761 6.3: never resolved to anything else
  return name == "localhost" ||
         (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0);
}

}  // namespace

ApiGuard::ApiGuard(std::string bind, int port, std::vector<std::string> hosts, std::vector<std::string> origins)
    : port_(port) {
  int ignored;
  if (!split_authority(bind, bind_, ignored)) bind_ = lower(bind);
  bind_wildcard_ = bind_.empty() || bind_ == "0.0.0.0" || bind_ == "::" || bind_ == "*";
  for (std::string& h : hosts) hosts_.push_back(lower(std::move(h)));
  for (std::string& o : origins) origins_.push_back(lower(std::move(o)));
}

bool ApiGuard::host_allowed(const std::string* host) const {
  if (!host) return true;
  std::string name;
  int port;
  if (!split_authority(*host, name, port)) return false;
  for (const std::string& entry : hosts_) {  // "name:port" allows that port; "name" the API's
    std::string ename;
    int eport;
    if (split_authority(entry, ename, eport) && ename == name && (eport < 0 ? port < 0 || port == port_ : eport == port))
      return true;
  }
  // Loopback under any port: an SSH tunnel or port forward (ssh -L 8080:127.0.0.1:6789) keeps the
  // browser's port, and a page of another site cannot be served under the operator's loopback.
  if (is_localhost_name(name) || is_loopback_literal(name)) return true;
  // An IP literal under any port too: no DNS answer makes a page's Host an IP literal, so the port
  // adds nothing against rebinding, and a mapped port (a container's -p 16789:6789, a NodePort, a load
  // balancer's health check) is the client's to choose.
  if (is_ip_literal(name) && (name == bind_ || bind_wildcard_)) return true;
  return name == bind_ && (port < 0 || port == port_);  // a bind address given as a name
}

bool ApiGuard::origin_allowed(const std::string* origin, const std::string* host) const {
  if (!origin) return true;
  std::string o = lower(*origin);
  if (std::find(origins_.begin(), origins_.end(), o) != origins_.end()) return true;
  // Same origin: scheme://host[:port] whose host and port are the request's.
  int default_port = o.rfind("http://", 0) == 0 ? 80 : o.rfind("https://", 0) == 0 ? 443 : 0;
  if (!default_port || !host) return false;
  std::string oname, hname;
  int oport, hport;
  if (!split_authority(o.substr(o.find("//") + 2), oname, oport) || !split_authority(*host, hname, hport)) return false;
  if (oport < 0) oport = default_port;
  if (hport < 0) hport = default_port;  // a proxy in front: the browser's port is the scheme's
  return oname == hname && oport == hport;
}

bool ApiGuard::json_content_type(const std::string* content_type) {
  if (!content_type) return false;
  static const char kJson[] = "application/json";
  const size_t n = sizeof kJson - 1;
  const std::string& v = *content_type;
  if (v.size() < n || strncasecmp(v.c_str(), kJson, n) != 0) return false;
  size_t i = n;
  while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) i++;
  return i == v.size() || v[i] == ';';  // RFC 9110 8.3.1: parameters follow a ';'
}

}  // namespace mg
