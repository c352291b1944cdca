#include "ws/ws_session.h"

#include "ws/ws_frame.h"

namespace mg {

namespace {
const char* violation_reason(uint16_t code) {
  switch (code) {
    case 1007: return "invalid UTF-8";
    case 1009: return "message too big";
    case 1011: return "out of memory";
    default: return "protocol error";
  }
}
}  // namespace

WsSession::WsSession(WsOwner* owner, uint32_t max_message) : owner_(owner), max_message_(max_message) {}

size_t WsSession::feed(char* data, size_t len) {
  if (input_ended_ || len == 0) return len;
  if (!decoder_) decoder_ = make_ws_decoder(max_message_);
  const size_t used = decoder_->feed(reinterpret_cast<uint8_t*>(data), len, *this);
  if (decoder_->stopped()) input_ended_ = true;
  if (input_ended_ || decoder_->at_rest()) decoder_.reset();
  return used;
}

void WsSession::send_frame(uint8_t opcode, const std::string& payload) {
  const std::string frame = ws_encode_frame(opcode, payload.data(), payload.size());
  owner_->ws_output(reinterpret_cast<const uint8_t*>(frame.data()), frame.size());
}

void WsSession::send_close(uint16_t code, const std::string& reason) {
  sent_code_ = code;
  std::string payload;
  if (code != 1005) {  // 1005 means "no code": an empty close frame (§7.4.1)
    payload.push_back(static_cast<char>(code >> 8));
    payload.push_back(static_cast<char>(code & 0xFF));
    payload += reason.substr(0, 123);  // a control frame's payload is at most 125 bytes
  }
  send_frame(kWsClose, payload);
}

bool WsSession::ws_message(uint8_t opcode, const uint8_t* data, size_t len) { return owner_->ws_message(opcode, data, len); }

void WsSession::ws_ping(const uint8_t* data, size_t len) {
  if (!close_sent()) send_frame(kWsPong, std::string(reinterpret_cast<const char*>(data), len));
}

void WsSession::ws_pong(const uint8_t*, size_t) {}

void WsSession::ws_close(uint16_t code, const uint8_t* reason, size_t len) {
  received_code_ = code;
  if (close_sent()) return;  // the answer to ours
  set_close_reason(std::string(reinterpret_cast<const char*>(reason), len));
  send_close(code, close_reason());  // echo it (§5.5.1)
}

void WsSession::ws_error(uint16_t code) {
  if (close_sent()) return;
  we_closed_first_ = true;
  set_close_reason(violation_reason(code));
  send_close(code, close_reason());
}

void WsSession::close(uint16_t code, const std::string& reason) {
  if (close_sent()) return;
  if (!close_received()) we_closed_first_ = true;
  set_close_reason(reason.substr(0, 123));
  send_close(code, close_reason());
}

void WsSession::ping() {
  if (!close_sent()) send_frame(kWsPing, std::string());
}

const std::string& WsSession::close_reason() const {
  static const std::string none;
  return close_reason_ ? *close_reason_ : none;
}

void WsSession::set_close_reason(std::string reason) {
  if (reason.empty()) close_reason_.reset();
  else close_reason_ = std::make_unique<std::string>(std::move(reason));
}

uint16_t WsSession::close_code() const {
  if (we_closed_first_) return sent_code_;
  if (received_code_) return received_code_;
  return 1006;
}

}  // namespace mg
