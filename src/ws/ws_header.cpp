#include "ws/ws_header.h"

#include <algorithm>
#include <cstring>

namespace mg {

// Written as three plain stages (first two bytes, extended length, the rest) that each copy what
// they can and then check: an earlier byte-at-a-time loop was miscompiled by GCC 12 at -O2 for
// position-independent executables (-fPIE, not -fPIC), losing the first two bytes' fields.

size_t WsHeaderReader::needed() const {
  if (have_ < 2) return 2;
  const uint8_t len7 = buf_[1] & 0x7F;
  const size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
  return 2 + ext + ((buf_[1] & 0x80) ? 4 : 0);
}

WsHeaderReader::Step WsHeaderReader::feed(const uint8_t* data, size_t len, size_t& used) {
  size_t i = 0;
  // Copies bytes until the header holds `upto` of them (or the input ends); true when it does.
  const auto fill = [&](size_t upto) {
    const size_t n = std::min(len - i, upto - have_);
    std::memcpy(buf_ + have_, data + i, n);
    have_ = static_cast<uint8_t>(have_ + n);
    i += n;
    return have_ == upto;
  };
  if (have_ < 2) {
    if (!fill(2)) {
      used += i;
      return Step::NeedMore;
    }
    h_.fin = (buf_[0] & 0x80) != 0;
    h_.rsv = static_cast<uint8_t>((buf_[0] >> 4) & 0x7);
    h_.opcode = buf_[0] & 0x0F;
    h_.masked = (buf_[1] & 0x80) != 0;
    h_.length = buf_[1] & 0x7F;
    if (h_.control() && (h_.length > 125 || !h_.fin)) {
      used += i;
      return Step::Error;  // RFC 6455 §5.5: control frames are final and at most 125 bytes
    }
  }
  const uint8_t len7 = buf_[1] & 0x7F;
  const size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
  if (have_ < 2 + ext) {
    if (!fill(2 + ext)) {
      used += i;
      return Step::NeedMore;
    }
    uint64_t n = 0;
    for (size_t k = 0; k < ext; k++) n = (n << 8) | buf_[2 + k];
    h_.length = n;
    // §5.2: the minimal number of bytes must be used, and the most significant bit must be 0.
    if ((ext == 2 && n < 126) || (ext == 8 && (n < 0x10000 || (n >> 63) != 0))) {
      used += i;
      return Step::Error;
    }
  }
  const bool complete = fill(needed());
  used += i;
  if (!complete) return Step::NeedMore;
  if (h_.masked) std::memcpy(h_.mask, buf_ + have_ - 4, 4);
  return Step::Done;
}

}  // namespace mg
