// Framing of client messages on plain TCP listeners (PROTOCOL.md §3.2).
//
//   line:  a message ends with '\n'; a '\r' right before it is dropped. An empty line is a keep-alive
//          and yields no message.
//   len32: a 4-byte big-endian length, then that many payload bytes (a zero length is an empty message).
//
// The decoder takes bytes as they arrive and never does I/O. It keeps only the unfinished tail of a
// message (nothing while a connection is idle between messages).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "core/config.h"

namespace mg {

class FrameDecoder {
 public:
  enum class Status { Ok, Held, TooLong };
  // Returns true to hold: feeding ends right after this message (see feed).
  using OnMessage = std::function<bool(const char* data, size_t len)>;

  FrameDecoder(Framing framing, uint32_t max_message);

  // Feeds bytes; calls on_message for every complete message, in order. Returns TooLong as soon as
  // a message (complete or not) exceeds max_message; the decoder is then unusable.
  // on_message may call stop(): feeding ends after that message and returns Ok.
  // on_message may return true (hold): feeding ends after that message and returns Held; `*used` (when
  // given) is then the count of bytes of `data` taken, and the caller feeds the rest, from there, when
  // it wants more messages. Otherwise `*used` is `len`. Nothing of the rest is buffered by a hold.
  Status feed(const char* data, size_t len, const OnMessage& on_message, size_t* used = nullptr);
  void stop() { stopped_ = true; }
  // Bytes of an unfinished message held.
  size_t buffered() const { return partial_.size(); }

 private:
  Framing framing_;
  uint32_t max_message_;
  std::string partial_;
  bool stopped_ = false;
  bool failed_ = false;  // a TooLong was returned: every later feed returns TooLong
};

// One message framed for sending to a client of the given framing.
std::string encode_frame(Framing framing, const char* data, size_t len);

}  // namespace mg
