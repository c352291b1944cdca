#include "http/http_response.h"

namespace mg {

const char* http_status_text(int status) {
  switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

std::string http_response(int status, const char* content_type, const std::string& body, bool keep_alive,
                          const std::vector<std::pair<std::string, std::string>>& extra) {
  std::string r;
  r.reserve(160 + body.size());
  r += "HTTP/1.1 ";
  r += std::to_string(status);
  r += ' ';
  r += http_status_text(status);
  r += "\r\nServer: meshgate\r\nContent-Type: ";
  r += content_type;
  r += "\r\nContent-Length: ";
  r += std::to_string(body.size());
  r += keep_alive ? "\r\nConnection: keep-alive\r\n" : "\r\nConnection: close\r\n";
  for (const auto& [k, v] : extra) {
    r += k;
    r += ": ";
    r += v;
    r += "\r\n";
  }
  r += "\r\n";
  r += body;
  return r;
}

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
