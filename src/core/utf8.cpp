// Strict UTF-8 validation (RFC 3629 §4), used on every WebSocket text message (a failure closes with
// 1007) and on text that the API forwards to clients.
//
// Accepted sequences, exactly the RFC's table (anything else is invalid):
//   00..7F
//   C2..DF 80..BF
//   E0     A0..BF 80..BF      (E0 80..9F would be overlong)
//   E1..EC 80..BF 80..BF
//   ED     80..9F 80..BF      (ED A0..BF would be a UTF-16 surrogate)
//   EE..EF 80..BF 80..BF
//   F0     90..BF 80..BF 80..BF   (F0 80..8F would be overlong)
//   F1..F3 80..BF 80..BF 80..BF
//   F4     80..8F 80..BF 80..BF   (F4 90.. would be above U+10FFFF)
// Most messages are JSON and mostly ASCII, so ASCII is skipped eight bytes at a time.
#include "core/utf8.h"

#include <cstdint>
#include <cstring>

namespace mg {

namespace {

inline bool is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }

}  // namespace

bool is_valid_utf8(const char* data, size_t len) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  const unsigned char* const end = p + len;
  while (p < end) {
    // Fast path: eight ASCII bytes at once (memcpy: no alignment or aliasing assumptions).
    while (end - p >= 8) {
      uint64_t word;
      std::memcpy(&word, p, 8);
      if (word & 0x8080808080808080ull) break;
      p += 8;
    }
    if (p == end) break;

    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    const size_t left = static_cast<size_t>(end - p);
    if (c >= 0xC2 && c <= 0xDF) {
      if (left < 2 || !is_cont(p[1])) return false;
      p += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      if (left < 3) return false;
      const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
      const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
      if (p[1] < lo || p[1] > hi || !is_cont(p[2])) return false;
      p += 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      if (left < 4) return false;
      const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
      const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
      if (p[1] < lo || p[1] > hi || !is_cont(p[2]) || !is_cont(p[3])) return false;
      p += 4;
    } else {
      return false;  // 80..BF (stray continuation), C0/C1 (overlong), F5..FF
    }
  }
  return true;
}

size_t utf8_sequence_length(const char* data, size_t left) {
  if (left == 0) return 0;
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  const unsigned char c = p[0];
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && is_cont(p[1]) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
    return left >= 3 && p[1] >= lo && p[1] <= hi && is_cont(p[2]) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
    return left >= 4 && p[1] >= lo && p[1] <= hi && is_cont(p[2]) && is_cont(p[3]) ? 4 : 0;
  }
  return 0;
}

namespace {

// Copies `text`, passing each invalid byte to `bad` instead.
template <typename Bad>
std::string repair(std::string_view text, Bad bad) {
  std::string out;
  out.reserve(text.size() + 8);
  size_t i = 0;
  while (i < text.size()) {
    size_t n = utf8_sequence_length(text.data() + i, text.size() - i);
    if (n == 0) {
      bad(out, static_cast<unsigned char>(text[i]));
      i++;
    } else {
      out.append(text.data() + i, n);
      i += n;
    }
  }
  return out;
}

}  // namespace

std::string utf8_percent_encode_invalid(std::string_view text) {
  if (is_valid_utf8(text.data(), text.size())) return std::string(text);
  return repair(text, [](std::string& out, unsigned char c) {
    static const char hex[] = "0123456789ABCDEF";
    out += '%';
    out += hex[c >> 4];
    out += hex[c & 15];
  });
}

std::string utf8_replace_invalid(std::string_view text) {
  if (is_valid_utf8(text.data(), text.size())) return std::string(text);
  return repair(text, [](std::string& out, unsigned char) { out += "\xEF\xBF\xBD"; });
}

}  // namespace mg

namespace mg {

bool Utf8Stream::feed(const uint8_t* p, size_t len) {
  if (need_ == 0xFF) return false;
  const uint8_t* const end = p + len;
  while (p < end) {
    if (need_ == 0) {
      while (end - p >= 8) {  // ASCII fast path, as in is_valid_utf8
        uint64_t word;
        std::memcpy(&word, p, 8);
        if (word & 0x8080808080808080ull) break;
        p += 8;
      }
      if (p == end) break;
      const uint8_t c = *p++;
      if (c < 0x80) continue;
      lo_ = 0x80;
      hi_ = 0xBF;
      if (c >= 0xC2 && c <= 0xDF) {
        need_ = 1;
      } else if (c >= 0xE0 && c <= 0xEF) {
        need_ = 2;
        if (c == 0xE0) lo_ = 0xA0;
        if (c == 0xED) hi_ = 0x9F;
      } else if (c >= 0xF0 && c <= 0xF4) {
        need_ = 3;
        if (c == 0xF0) lo_ = 0x90;
        if (c == 0xF4) hi_ = 0x8F;
      } else {
        need_ = 0xFF;
        return false;
      }
    } else {
      const uint8_t c = *p++;
      if (c < lo_ || c > hi_) {
        need_ = 0xFF;
        return false;
      }
      need_--;
      lo_ = 0x80;  // only the first continuation byte has a narrowed range
      hi_ = 0xBF;
    }
  }
  return true;
}

}  // namespace mg
