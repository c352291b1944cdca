#include "ws/ws_session.h"

#include <cstring>

#include "ws/ws_frame.h"

namespace mg {

WsSession::WsSession(WsOwner* owner, uint32_t max_message) : owner_(owner) {
  wslay_event_callbacks cb;
  std::memset(&cb, 0, sizeof cb);
  cb.recv_callback = &WsSession::recv_cb;
  cb.send_callback = &WsSession::send_cb;
  cb.on_msg_recv_callback = &WsSession::msg_cb;
  cb.on_frame_recv_start_callback = &WsSession::frame_start_cb;
  wslay_event_context_server_init(&ctx_, &cb, this);
  wslay_event_config_set_max_recv_msg_length(ctx_, max_message);
}

WsSession::~WsSession() {
  if (ctx_) wslay_event_context_free(ctx_);
}

ssize_t WsSession::recv_cb(wslay_event_context_ptr ctx, uint8_t* buf, size_t len, int, void* user) {
  auto* self = static_cast<WsSession*>(user);
  if (self->in_len_ == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = len < self->in_len_ ? len : self->in_len_;
  std::memcpy(buf, self->in_, n);
  self->in_ += n;
  self->in_len_ -= n;
  return static_cast<ssize_t>(n);
}

ssize_t WsSession::send_cb(wslay_event_context_ptr, const uint8_t* data, size_t len, int, void* user) {
  static_cast<WsSession*>(user)->owner_->ws_output(data, len);
  return static_cast<ssize_t>(len);
}

void WsSession::msg_cb(wslay_event_context_ptr, const wslay_event_on_msg_recv_arg* arg, void* user) {
  auto* self = static_cast<WsSession*>(user);
  if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) {
    self->owner_->ws_message(arg->opcode, arg->msg, arg->msg_length);
  } else if (arg->opcode == WSLAY_CONNECTION_CLOSE && arg->msg_length > 2) {
    self->close_reason_.assign(reinterpret_cast<const char*>(arg->msg) + 2, arg->msg_length - 2);
  }
}

void WsSession::frame_start_cb(wslay_event_context_ptr, const wslay_event_on_frame_recv_start_arg* arg, void* user) {
  // RFC 6455 §5.5.1: a close payload is empty or holds a 2-byte code; wslay takes 1 byte as "no code".
  if (arg->opcode == WSLAY_CONNECTION_CLOSE && arg->payload_length == 1) static_cast<WsSession*>(user)->violation_ = true;
}

void WsSession::pump() {
  if (!failed_code_ && wslay_event_want_write(ctx_)) wslay_event_send(ctx_);
}

void WsSession::fail_protocol() {
  if (failed_code_) return;
  failed_code_ = 1002;
  we_closed_first_ = true;
  close_reason_ = "protocol error";
  std::string payload = "\x03\xea" + close_reason_;
  std::string frame = ws_encode_frame(kWsClose, payload.data(), payload.size());
  owner_->ws_output(reinterpret_cast<const uint8_t*>(frame.data()), frame.size());
}

bool WsSession::feed(const char* data, size_t len) {
  if (failed_code_) return true;
  in_ = data;
  in_len_ = len;
  bool had_sent_close = wslay_event_get_close_sent(ctx_) != 0;
  int rc = wslay_event_recv(ctx_);
  in_ = nullptr;
  in_len_ = 0;
  if (rc == WSLAY_ERR_NOMEM) return false;
  // Our recv callback never fails, so a callback failure is wslay rejecting a frame header; it has
  // queued a close frame without a status code, which we replace with 1002.
  if (violation_ || rc != 0) {
    if (!had_sent_close) fail_protocol();
    return true;
  }
  pump();
  if (!had_sent_close && wslay_event_get_close_sent(ctx_) && !wslay_event_get_close_received(ctx_))
    we_closed_first_ = true;  // wslay refused the input (1002/1007/1009)
  // After a close is queued wslay stops reading; whatever is left of the input is ignored.
  return true;
}

void WsSession::close(uint16_t code, const std::string& reason) {
  if (failed_code_ || wslay_event_get_close_sent(ctx_)) return;
  if (!wslay_event_get_close_received(ctx_)) we_closed_first_ = true;
  close_reason_ = reason.substr(0, 123);  // a close frame's payload is at most 125 bytes
  wslay_event_queue_close(ctx_, code, reinterpret_cast<const uint8_t*>(close_reason_.data()), close_reason_.size());
  pump();
}

void WsSession::ping() {
  if (failed_code_) return;
  wslay_event_msg msg{WSLAY_PING, nullptr, 0};
  if (wslay_event_queue_msg(ctx_, &msg) == 0) pump();
}

bool WsSession::finished() const { return failed_code_ || wslay_event_get_close_sent(ctx_) != 0; }
bool WsSession::can_send() const { return !failed_code_ && wslay_event_get_close_sent(ctx_) == 0; }
bool WsSession::close_sent() const { return failed_code_ || wslay_event_get_close_sent(ctx_) != 0; }
bool WsSession::close_received() const { return !failed_code_ && wslay_event_get_close_received(ctx_) != 0; }

uint16_t WsSession::close_code() const {
  if (failed_code_) return failed_code_;
  if (we_closed_first_) return wslay_event_get_status_code_sent(ctx_);
  if (wslay_event_get_close_received(ctx_)) return wslay_event_get_status_code_received(ctx_);
  return 1006;
}

}  // namespace mg
