// The WebSocket codec boundary (server side): bytes from a client in, events out.
//
// A decoder is a resumable parser of the frames a client sends (RFC 6455 §5): it may be given the
// stream cut at any byte, does no I/O and sends nothing (answering pings and closes is the session's
// job, ws_session.h). It reassembles fragmented messages, checks UTF-8 of text messages across
// fragments and of close reasons, the close payload rules and the message size limit. Its first
// violation ends it with exactly one ws_error(code); a client close ends it with ws_close. After either,
// feed() ignores its input.
//
// Holding: the receiver may ask, by returning true from ws_message, that decoding stop right after
// that message (a queue that wants its producer paused). feed() then returns at once with the count of
// input bytes it took; the decoder is at a message boundary, holds nothing for the rest, and the caller
// feeds the rest (the bytes from that count on, untouched) whenever it likes. Events are the same as if
// nothing had been held.
//
// Memory: while a connection is idle (between messages) a decoder holds only its own few dozen bytes;
// a buffer (or a library context) exists only while a frame or a fragmented message is incomplete.
// Its owner drops even those bytes while the decoder is at_rest() (WsSession: no decoder at all
// between messages).
//
// Two implementations, picked at build time with meson's ws_codec option (make_ws_decoder):
//   native  ws_native.h, our own parser; the static build uses it (no libwslay at all)
//   wslay   ws_wslay.h, wslay's event API, a context borrowed only while a message is incomplete
// Both give the same events for the same bytes however they are cut (test/fuzz/fuzz_ws_differential).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace mg {

class WsEvents {
 public:
  // A complete text (opcode 1) or binary (opcode 2) message. Text is valid UTF-8. Returns true to hold:
  // feed() returns right after this message (see above).
  virtual bool ws_message(uint8_t opcode, const uint8_t* data, size_t len) = 0;
  virtual void ws_ping(const uint8_t* data, size_t len) = 0;
  virtual void ws_pong(const uint8_t* data, size_t len) = 0;
  // The client's close frame: its code (1005 when it had none) and reason (valid UTF-8). Last event.
  virtual void ws_close(uint16_t code, const uint8_t* reason, size_t len) = 0;
  // The client broke the protocol: the close code to answer with (1002 protocol error, 1007 invalid
  // UTF-8, 1009 message too big, 1011 out of memory). Last event.
  virtual void ws_error(uint16_t code) = 0;

 protected:
  ~WsEvents() = default;
};

class WsDecoder {
 public:
  virtual ~WsDecoder() = default;
  // Parses `len` bytes and calls `ev` for each event, in order. The bytes are the caller's to lend:
  // payload may be unmasked in place (the native decoder does, to avoid a copy). Returns the bytes
  // taken: `len`, or fewer when a message asked to hold (the bytes after them are left as they were).
  // After a close or an error the rest of the input is taken and ignored.
  virtual size_t feed(uint8_t* data, size_t len, WsEvents& ev) = 0;
  // True once a close or an error has been reported.
  virtual bool stopped() const = 0;
  // True between frames: nothing but the decoder's own fixed state is held (no buffer, no library
  // context) and no frame is under way, not even a header byte of one (a client's message deadline
  // runs while this is false).
  virtual bool idle() const = 0;
  // idle(), not stopped, and no fragmented message open: from here on a new decoder would do exactly
  // what this one does, so the owner may drop it and make another when bytes come (ws_session.h).
  virtual bool at_rest() const = 0;
};

// The decoder this build was configured with (meson -Dws_codec=...); max_message bounds a message.
std::unique_ptr<WsDecoder> make_ws_decoder(uint32_t max_message);
// "native" or "wslay".
const char* ws_codec_name();

}  // namespace mg
