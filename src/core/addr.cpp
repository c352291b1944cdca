#include "core/addr.h"

#include <cstdlib>

namespace mg {

std::string host_port(const std::string& host, int port) {
  bool v6 = host.find(':') != std::string::npos && host.front() != '[';
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bool split_host_port(const std::string& addr, std::string& host, std::string& port) {
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == addr.size()) return false;
  host = addr.substr(0, colon);
  port = addr.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return true;
}

bool split_host_port(const std::string& addr, std::string& host, int& port) {
  std::string text;
  if (!split_host_port(addr, host, text) || text.size() > 5) return false;
  char* end = nullptr;
  long n = std::strtol(text.c_str(), &end, 10);
  if (*end || n < 1 || n > 65535) return false;
  port = static_cast<int>(n);
  return true;
}

}  // namespace mg
