#include "ws/ws_header.h"

namespace mg {

size_t WsHeaderReader::needed() const {
  if (have_ < 2) return 2;
  const uint8_t len7 = buf_[1] & 0x7F;
  const size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
  return 2 + ext + ((buf_[1] & 0x80) ? 4 : 0);
}

WsHeaderReader::Step WsHeaderReader::feed(const uint8_t* data, size_t len, size_t& used) {
  size_t i = 0;
  while (i < len) {
    const size_t want = needed();
    if (have_ >= want) break;
    buf_[have_++] = data[i++];
    if (have_ == 2) {
      h_.fin = (buf_[0] & 0x80) != 0;
      h_.rsv = static_cast<uint8_t>((buf_[0] >> 4) & 0x7);
      h_.opcode = buf_[0] & 0x0F;
      h_.masked = (buf_[1] & 0x80) != 0;
      const uint8_t len7 = buf_[1] & 0x7F;
      h_.length = len7;
      if (h_.control() && (len7 > 125 || !h_.fin)) {
        used += i;
        return Step::Error;  // RFC 6455 §5.5: control frames are final and at most 125 bytes
      }
      continue;
    }
    const uint8_t len7 = buf_[1] & 0x7F;
    const size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    if (ext && have_ == 2 + ext) {
      uint64_t n = 0;
      for (size_t k = 0; k < ext; k++) n = (n << 8) | buf_[2 + k];
      h_.length = n;
      // §5.2: the minimal number of bytes must be used, and the most significant bit must be 0.
      if ((ext == 2 && n < 126) || (ext == 8 && (n < 0x10000 || (n >> 63) != 0))) {
        used += i;
        return Step::Error;
      }
    }
  }
  used += i;
  if (have_ < needed()) return Step::NeedMore;
  if (h_.masked) {
    const size_t at = have_ - 4u;
    for (size_t k = 0; k < 4; k++) h_.mask[k] = buf_[at + k];
  }
  return Step::Done;
}

}  // namespace mg
