// Client byte streams that reach every part of a WebSocket decoder, for the fuzz targets' seeds:
// whole and fragmented messages, control frames inside a fragmented message, UTF-8 cut between
// fragments, every length form, close frames with and without codes, and typical violations.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace wsseed {

// A client frame: masked with a fixed key, shortest length form unless `len_form` forces 126 / 127.
inline std::string frame(uint8_t first_byte, const std::string& payload, int len_form = 0, bool mask = true) {
  static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  std::string out(1, static_cast<char>(first_byte));
  const uint8_t m = mask ? 0x80 : 0;
  const uint64_t n = payload.size();
  if (len_form == 0 && n <= 125) {
    out.push_back(static_cast<char>(m | n));
  } else if (len_form != 127 && n <= 0xFFFF) {
    out.push_back(static_cast<char>(m | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n));
  } else {
    out.push_back(static_cast<char>(m | 127));
    for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<char>(n >> s));
  }
  if (mask) out.append(reinterpret_cast<const char*>(key), 4);
  for (size_t i = 0; i < payload.size(); i++) out.push_back(static_cast<char>(payload[i] ^ (mask ? key[i & 3] : 0)));
  return out;
}

inline std::string close_payload(int code, const std::string& reason) {
  return std::string{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)} + reason;
}

inline std::vector<std::string> seeds() {
  const std::string euro = "\xe2\x82\xac";  // U+20AC, three bytes
  return {
      frame(0x81, "Hello"),
      frame(0x01, "Hel") + frame(0x80, "lo"),
      frame(0x01, "a" + euro.substr(0, 1)) + frame(0x89, "mid") + frame(0x00, euro.substr(1, 1)) +
          frame(0x80, euro.substr(2) + "z"),
      frame(0x02, std::string(200, '\x01')) + frame(0x8A, "") + frame(0x80, std::string(70000, 'b'), 127),
      frame(0x82, std::string(300, 'x'), 126) + frame(0x89, "") + frame(0x81, "") + frame(0x88, close_payload(1000, "bye")),
      frame(0x88, ""),
      frame(0x88, close_payload(4000, "ok " + euro)),
      frame(0x88, close_payload(1000, "\xff")),
      frame(0x88, close_payload(999, "")),
      frame(0x88, "\x03"),
      frame(0x81, "bad \xc3\x28 utf8"),
      frame(0x81, "cut " + euro.substr(0, 2)),
      frame(0x81, "unmasked", 0, false),
      frame(0xC1, "rsv"),
      frame(0x80, "continuation first"),
      frame(0x01, "a") + frame(0x81, "b"),
      frame(0x8B, ""),
      frame(0x09, "ping not final"),
      frame(0x81, std::string(2000, 'y')),
      frame(0x81, "short", 126),
      std::string("\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00", 10),
  };
}

}  // namespace wsseed
