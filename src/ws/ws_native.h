// Our own RFC 6455 server-side frame decoder (the `native` codec of ws_codec.h).
//
// State between reads: the header being read, the current frame's remaining length and mask phase,
// the fragmented message's opcode, length so far and UTF-8 state: under a hundred bytes. Buffers:
//   message  only while a data frame or fragmented message is incomplete across reads; freed when the
//            message is delivered
//   control  only while a control frame (at most 125 bytes) is incomplete across reads
// Fast path: a whole unfragmented frame inside one read is unmasked in place and delivered from the
// read buffer, without a copy. A hold (ws_codec.h) returns right after the message's last byte: only
// the bytes before it have been unmasked.
//
// Checks, in wslay's order so that both codecs report the same code at the same byte: frame-level
// header errors (ws_header.h) at once; when a data frame's first payload byte arrives (at once if it
// has none), or when a control frame is whole: RSV bits or a missing mask (1002), an opcode not allowed here (1002: reserved, continuation
// outside a message, a new data frame inside one), then the size (1009: message so far + this frame
// over max_message; a control frame alone over it); text bytes as they arrive (1007), a final text
// frame that ends inside a character (1007); a close frame when whole: 1 byte (1002), reason not UTF-8
// (1007), code not allowed on the wire (1002: below 1000, 1004..1006, 1012..2999, 5000 and up).
#pragma once

#include <memory>
#include <string>

#include "core/utf8.h"
#include "ws/ws_codec.h"
#include "ws/ws_header.h"

namespace mg {

class NativeWsDecoder final : public WsDecoder {
 public:
  explicit NativeWsDecoder(uint32_t max_message) : max_message_(max_message) {}
  size_t feed(uint8_t* data, size_t len, WsEvents& ev) override;
  bool stopped() const override { return stopped_; }
  // Not idle while a frame is under way, even one whose header is only partly here and needs no
  // buffer: the connection's message deadline (ws_codec.h) counts from its first byte (issue 18).
  bool idle() const override { return !message_ && !control_ && (stopped_ || header_.have() == 0); }
  // An empty non-final frame opens a message without a buffer: message_opcode_ tells.
  bool at_rest() const override { return idle() && !stopped_ && message_opcode_ == 0 && !in_payload_; }

 private:
  // The checks made when a frame's payload starts; false after reporting an error.
  bool start_frame(WsEvents& ev);
  // Payload bytes of the current frame (already unmasked). `whole`: the frame's entire payload. False
  // when decoding stops here: an error or a close was reported, or the message asked to hold.
  bool take_payload(uint8_t* p, size_t n, bool whole, WsEvents& ev);
  // The current frame is complete. True when it completed a message whose receiver asked to hold.
  bool end_frame(const uint8_t* payload, size_t len, WsEvents& ev);
  void control_frame(uint8_t opcode, const uint8_t* p, size_t len, WsEvents& ev);
  void fail(uint16_t code, WsEvents& ev);

  WsHeaderReader header_;
  std::unique_ptr<std::string> message_;  // payload of an incomplete message (see above)
  std::unique_ptr<std::string> control_;  // payload of an incomplete control frame
  uint64_t remaining_ = 0;                // payload bytes of the current frame still to come
  uint64_t message_len_ = 0;              // bytes of the current (fragmented) message so far
  uint32_t max_message_;
  Utf8Stream utf8_;                       // of the current text message
  uint8_t mask_phase_ = 0;                // payload offset mod 4 in the current frame
  uint8_t message_opcode_ = 0;            // 1 or 2 while a data message is open, else 0
  bool in_payload_ = false;               // header done, payload started (checks passed)
  bool stopped_ = false;
};

}  // namespace mg
