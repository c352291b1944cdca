// One WebSocket connection's protocol state (server side), on the codec of ws_codec.h.
//
// The decoder turns the client's bytes into events; this class answers them: a pong for each ping,
// the close handshake (RFC 6455 §7.1: echo the client's close, or send ours and wait for its answer),
// and a close frame with the right code when the client breaks the protocol (1002, 1007, 1009).
// Frames this class sends are handed to the owner at once (WsOwner::ws_output), so the owner's output
// queue is the only, bounded, buffer. Data frames the server pushes bypass it (ws_frame.h), so one
// publish encodes its frame once for all recipients.
//
// Memory while idle (issue 21): no decoder. It is made when bytes arrive and dropped again at the end
// of a feed that leaves it at rest (WsDecoder::at_rest: between messages, nothing held), which for
// ordinary traffic is the end of the same read; an idle connection holds the session's own bytes only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "ws/ws_codec.h"

namespace mg {

class WsOwner {
 public:
  // A complete text (opcode 1) or binary (opcode 2) message. Returns true to hold: WsSession::feed
  // returns right after it, with the rest of the input not taken.
  virtual bool ws_message(uint8_t opcode, const uint8_t* data, size_t len) = 0;
  // Bytes to write to the socket, in order.
  virtual void ws_output(const uint8_t* data, size_t len) = 0;

 protected:
  ~WsOwner() = default;
};

class WsSession final : private WsEvents {
 public:
  WsSession(WsOwner* owner, uint32_t max_message);
  WsSession(const WsSession&) = delete;
  WsSession& operator=(const WsSession&) = delete;

  // Feeds bytes read from the socket. They are modified (unmasked in place): pass a buffer that is
  // yours, such as the loop's read buffer. Input after the client's close or a violation is ignored.
  // Returns the bytes taken: `len`, or fewer when a message asked to hold (WsOwner::ws_message); the
  // rest is untouched, and is fed again, from its first byte, when the owner wants to go on.
  size_t feed(char* data, size_t len);
  // Sends a close frame (no-op if one was sent already).
  void close(uint16_t code, const std::string& reason);
  void ping();
  // True once we sent a close (ours, an echo of the client's, or for a violation): close the socket
  // after flushing, or after the client's answer when we closed first.
  bool finished() const { return sent_code_ != 0; }
  bool can_send() const { return sent_code_ == 0; }
  bool close_sent() const { return sent_code_ != 0; }
  bool close_received() const { return received_code_ != 0; }
  // The client sent its close or broke the protocol: it will send nothing more that we read.
  bool input_ended() const { return input_ended_; }
  // How this session ended: the code we sent if we closed first, otherwise the code the client sent
  // (1005 when its close frame had none); 1006 while neither happened.
  uint16_t close_code() const;
  const std::string& close_reason() const;
  // True when the decoder holds no buffer (between messages): always when there is no decoder.
  bool idle() const { return !decoder_ || decoder_->idle(); }

 private:
  bool ws_message(uint8_t opcode, const uint8_t* data, size_t len) override;
  void ws_ping(const uint8_t* data, size_t len) override;
  void ws_pong(const uint8_t* data, size_t len) override;
  void ws_close(uint16_t code, const uint8_t* reason, size_t len) override;
  void ws_error(uint16_t code) override;
  void send_frame(uint8_t opcode, const std::string& payload);
  void send_close(uint16_t code, const std::string& reason);
  void set_close_reason(std::string reason);

  WsOwner* owner_;
  std::unique_ptr<WsDecoder> decoder_;  // only while a frame or message is under way (see above)
  std::unique_ptr<std::string> close_reason_;  // only once a close has a reason
  uint32_t max_message_;
  uint16_t sent_code_ = 0;      // 0 until we send a close
  uint16_t received_code_ = 0;  // 0 until the client's close arrives
  bool we_closed_first_ = false;
  bool input_ended_ = false;    // the decoder reported the client's close or a violation
};

}  // namespace mg
