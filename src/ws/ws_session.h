// One WebSocket connection's protocol state, on wslay's event API (server side).
//
// wslay parses client frames, reassembles fragmented messages, validates UTF-8 in text messages,
// enforces the message size limit and answers ping and close frames. Whatever wslay wants to send is
// handed to the owner at once (WsOutput::ws_output), so wslay's own queue is always empty and the
// owner's output queue is the only, bounded, buffer. Data frames the server pushes bypass wslay
// (ws_frame.h) so one publish encodes its frame once for all recipients.
//
// Close codes sent on bad input: 1002 protocol violation, 1007 invalid UTF-8, 1009 too big. Where
// wslay fails without a status code (a malformed frame header, a 1-byte close payload) this class
// sends the 1002 close frame itself and stops using wslay for that connection.
#pragma once

#include <wslay/wslay.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace mg {

class WsOwner {
 public:
  // A complete text (opcode 1) or binary (opcode 2) message.
  virtual void ws_message(uint8_t opcode, const uint8_t* data, size_t len) = 0;
  // Bytes to write to the socket, in order.
  virtual void ws_output(const uint8_t* data, size_t len) = 0;

 protected:
  ~WsOwner() = default;
};

class WsSession {
 public:
  WsSession(WsOwner* owner, uint32_t max_message);
  ~WsSession();
  WsSession(const WsSession&) = delete;
  WsSession& operator=(const WsSession&) = delete;

  // Feeds bytes read from the socket. Returns false on a fatal error: close the socket now.
  bool feed(const char* data, size_t len);
  // Queues a close frame (no-op if one was sent already).
  void close(uint16_t code, const std::string& reason);
  void ping();
  // True once both sides have sent close, or we sent one: the socket should close after flushing.
  bool finished() const;
  // May data frames still be sent?
  bool can_send() const;
  bool close_sent() const;
  bool close_received() const;
  // The close code that describes how this session ended: the code we sent if we closed first,
  // otherwise the code the client sent (1005 when its close frame had none).
  uint16_t close_code() const;
  const std::string& close_reason() const { return close_reason_; }

 private:
  static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t* buf, size_t len, int flags, void* user);
  static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t* data, size_t len, int flags, void* user);
  static void msg_cb(wslay_event_context_ptr ctx, const wslay_event_on_msg_recv_arg* arg, void* user);
  static void frame_start_cb(wslay_event_context_ptr ctx, const wslay_event_on_frame_recv_start_arg* arg,
                             void* user);
  void pump();
  // Ends the session with 1002 sent by us, for violations wslay reports without a status code.
  void fail_protocol();

  wslay_event_context_ptr ctx_ = nullptr;
  WsOwner* owner_;
  const char* in_ = nullptr;
  size_t in_len_ = 0;
  bool we_closed_first_ = false;
  bool violation_ = false;     // seen by frame_start_cb, acted on after wslay_event_recv
  uint16_t failed_code_ = 0;   // set by fail_protocol(): wslay is not used any more
  std::string close_reason_;
};

}  // namespace mg
