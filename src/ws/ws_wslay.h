// The `wslay` codec of ws_codec.h: wslay's event API does the parsing, fragmentation, UTF-8 and size
// checks; this adapter turns its callbacks into WsEvents and keeps it from holding memory while idle.
//
// No wslay context while idle. A context (~8.8 kB, most of it wslay's 4 KiB input buffer) is taken
// when bytes arrive and given back as soon as the connection is at a message boundary again, which for
// ordinary traffic is the end of the same read. Given back means kept as the thread's one spare
// context (wslay's state at a boundary is clean: empty input buffer, no message, empty queues), so a
// busy connection does not malloc per read. To know where the boundaries are, the adapter follows the
// frame headers itself (ws_header.h): a dozen bytes of state.
//
// Holding (ws_codec.h): wslay reads ahead into its own 4 KiB buffer, so it is handed the bytes of a run
// one data message at a time (the adapter knows where they end), and none after a message that asked to
// hold; wslay_event_recv then returns at a frame boundary with its buffer empty, and the context is given
// back as at the end of any read.
//
// Control frames are handed to wslay whole (held back in a small buffer if a read ends inside one).
// wslay 1.1.1 skips the first two bytes of *every* chunk of a close payload when it checks the reason's
// UTF-8, so a close frame cut across reads could be wrongly accepted or refused; whole, it is checked
// right.
//
// wslay answers pings and closes by queuing frames; they are drained and dropped (the session sends its
// own answers), which is also how the close code of a violation is read (wslay_event_get_status_code_sent;
// wslay sends no code for a malformed header: that is 1002). A 1-byte close payload, which wslay takes
// as "no code", is 1002 here, as RFC 6455 §5.5.1 requires.
#pragma once

#include <wslay/wslay.h>

#include <memory>
#include <string>

#include "ws/ws_codec.h"
#include "ws/ws_header.h"

namespace mg {

class WslayWsDecoder final : public WsDecoder {
 public:
  explicit WslayWsDecoder(uint32_t max_message) : max_message_(max_message) {}
  ~WslayWsDecoder() override;
  WslayWsDecoder(const WslayWsDecoder&) = delete;
  WslayWsDecoder& operator=(const WslayWsDecoder&) = delete;

  size_t feed(uint8_t* data, size_t len, WsEvents& ev) override;
  bool stopped() const override { return stopped_; }
  bool idle() const override { return !ctx_ && !held_; }
  bool at_rest() const override {
    return idle() && !stopped_ && !in_message_ && !in_payload_ && header_.have() == 0 && tracking_ && !violation_;
  }

  // Called from wslay's callbacks (through a thread-local pointer: contexts are shared).
  void on_msg(const wslay_event_on_msg_recv_arg* arg);
  void on_frame_start(const wslay_event_on_frame_recv_start_arg* arg);
  // A message of the current feed asked to hold: wslay gets no more bytes.
  bool holding() const { return holding_; }

 private:
  // Gives bytes to wslay and reports what it decided. Returns the bytes wslay took: all of them, unless
  // a data message asked to hold, in which case the count ends with it. The data messages that end
  // inside these bytes must be listed in t_current.ends (ws_wslay.cpp); the list is cleared.
  size_t give(const uint8_t* p, size_t n, WsEvents& ev);
  void hold(const uint8_t* p, size_t n);
  void release_context();

  wslay_event_context_ptr ctx_ = nullptr;  // only while a frame or a message is incomplete
  std::unique_ptr<std::string> held_;      // an incomplete control frame
  WsEvents* ev_ = nullptr;                 // during feed() only
  WsHeaderReader header_;                  // follows the frames to find message boundaries
  uint64_t remaining_ = 0;                 // payload bytes of the current frame still to come
  uint32_t max_message_;
  bool in_payload_ = false;                // the current frame's header is complete
  bool control_ = false;                   // the current frame is a control frame
  bool in_message_ = false;                // a fragmented data message is open
  bool tracking_ = true;                   // false after a malformed header (wslay reports it)
  bool violation_ = false;                 // a 1-byte close payload was seen
  bool holding_ = false;                   // during feed(): a message asked to hold
  bool stopped_ = false;
};

}  // namespace mg
