#include "http/url_query.h"

namespace mg {

bool url_decode(const std::string& in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); i++) {
    char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      if (i + 2 >= in.size()) return false;
      auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return true;
}

std::string query_without(const std::string& query, const std::string& key) {
  std::string out;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string::npos) amp = query.size();
    std::string part = query.substr(pos, amp - pos);
    std::string k, dk;
    k = part.substr(0, part.find('='));
    if (!(url_decode(k, dk) && dk == key) && !part.empty()) {
      if (!out.empty()) out += '&';
      out += part;
    }
    pos = amp + 1;
  }
  return out;
}

bool query_param(const std::string& query, const std::string& key, std::string& value) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string::npos) amp = query.size();
    std::string part = query.substr(pos, amp - pos);
    size_t eq = part.find('=');
    std::string k = part.substr(0, eq);
    std::string dk;
    if (url_decode(k, dk) && dk == key) {
      std::string v = eq == std::string::npos ? "" : part.substr(eq + 1);
      return url_decode(v, value);
    }
    pos = amp + 1;
  }
  return false;
}

}  // namespace mg
