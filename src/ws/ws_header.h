// Reads one WebSocket frame header (RFC 6455 §5.2), resumable at any byte.
//
// The header is 2 bytes, then 0, 2 or 8 bytes of extended length, then 0 or 4 bytes of masking key.
// Frame-level errors are reported as soon as the bytes that show them arrive, as wslay_frame does,
// so both codecs fail at the same byte: after byte 2, a control frame (opcode 8..15) that is not final
// or has a 7-bit length above 125; after the extended length, a length that is not in its shortest
// form or has the top bit set.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mg {

struct WsFrameHeader {
  bool fin = false;
  bool masked = false;
  uint8_t rsv = 0;      // the three RSV bits, 0..7
  uint8_t opcode = 0;
  uint8_t mask[4] = {0, 0, 0, 0};
  uint64_t length = 0;  // payload length
  bool control() const { return (opcode & 0x8) != 0; }
};

class WsHeaderReader {
 public:
  enum class Step : uint8_t { NeedMore, Done, Error };
  // Takes header bytes from `data` (never more than the header needs) and adds their count to `used`.
  // Done: header() is the whole header; call reset() before the next frame.
  Step feed(const uint8_t* data, size_t len, size_t& used);
  const WsFrameHeader& header() const { return h_; }
  // Bytes of the current header seen so far (0 at a frame boundary).
  size_t have() const { return have_; }
  void reset() { have_ = 0; }

 private:
  size_t needed() const;  // header size, known once the second byte is in
  WsFrameHeader h_;
  uint8_t buf_[14];
  uint8_t have_ = 0;
};

}  // namespace mg
