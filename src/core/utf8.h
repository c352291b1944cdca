// UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mg {

bool is_valid_utf8(const char* data, size_t len);

// The length (1..4) of the valid UTF-8 sequence that starts at data[0], or 0 when the byte there
// does not start one (a stray continuation byte, an overlong, a surrogate, a cut sequence).
size_t utf8_sequence_length(const char* data, size_t left);

// Valid UTF-8 made from text that may not be, for the two kinds of client text that reach a queue
// event (client_events.h). Valid text comes out unchanged; each byte that is not part of a valid
// sequence is replaced:
//   utf8_percent_encode_invalid  by "%XX" (upper-case hex): for URL parts (path, query), where the
//                                byte and its percent-encoding mean the same, so nothing is lost;
//   utf8_replace_invalid         by U+FFFD (the replacement character), as a WebSocket client's
//                                decoder with replacement would show it: for other text.
std::string utf8_percent_encode_invalid(std::string_view text);
std::string utf8_replace_invalid(std::string_view text);

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
