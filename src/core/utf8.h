// UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mg {

bool is_valid_utf8(const char* data, size_t len);

// Validates UTF-8 that arrives in pieces (a WebSocket text message split over frames and reads):
// a sequence may be cut anywhere. Three bytes of state: how many continuation bytes are still due and
// the range the next one must fall in (it narrows after E0, ED, F0 and F4).
class Utf8Stream {
 public:
  // False as soon as the bytes seen so far cannot start any valid text; stays false.
  bool feed(const uint8_t* p, size_t len);
  // True when the text ends on a character boundary (nothing is left half-done).
  bool complete() const { return need_ == 0; }
  void reset() { need_ = 0; lo_ = 0x80; hi_ = 0xBF; }

 private:
  uint8_t need_ = 0;  // continuation bytes still due; 0xFF once invalid
  uint8_t lo_ = 0x80, hi_ = 0xBF;
};

}  // namespace mg
