#include "ws/ws_native.h"

#include <cstring>

namespace mg {

namespace {

constexpr uint8_t kText = 0x1, kBinary = 0x2, kClose = 0x8, kPing = 0x9, kPong = 0xA;

// The close codes a peer may send (the same set wslay accepts): 1000..1011 except 1004..1006, which
// are reserved or only for reporting (RFC 6455 §7.4.1), and 3000..4999 for libraries and applications.
bool close_code_allowed(uint16_t c) {
  return (c >= 1000 && c <= 1011 && (c < 1004 || c > 1006)) || (c >= 3000 && c <= 4999);
}

// XORs payload with the masking key starting at key offset `phase` (RFC 6455 §5.3), eight bytes at a
// time where it can.
void unmask(uint8_t* p, size_t n, const uint8_t key[4], uint8_t phase) {
  uint8_t k[8];
  for (size_t i = 0; i < 8; i++) k[i] = key[(phase + i) & 3];
  uint64_t k64;
  std::memcpy(&k64, k, 8);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    w ^= k64;
    std::memcpy(p + i, &w, 8);
  }
  for (; i < n; i++) p[i] ^= k[i & 7];
}

}  // namespace

void NativeWsDecoder::fail(uint16_t code, WsEvents& ev) {
  stopped_ = true;
  message_.reset();
  control_.reset();
  ev.ws_error(code);
}

bool NativeWsDecoder::start_frame(WsEvents& ev) {
  const WsFrameHeader& h = header_.header();
  if (h.rsv != 0 || !h.masked) {  // no extension is negotiated; clients must mask (§5.1, §5.2)
    fail(1002, ev);
    return false;
  }
  if (h.control()) {
    if (h.opcode != kClose && h.opcode != kPing && h.opcode != kPong) {
      fail(1002, ev);
      return false;
    }
    if (h.length > max_message_) {
      fail(1009, ev);
      return false;
    }
    return true;
  }
  if (message_opcode_ == 0) {
    if (h.opcode != kText && h.opcode != kBinary) {  // a continuation with nothing to continue, or reserved
      fail(1002, ev);
      return false;
    }
    message_opcode_ = h.opcode;
  } else if (h.opcode != 0) {  // a new message before the fragmented one ended (§5.4)
    fail(1002, ev);
    return false;
  }
  if (h.length > max_message_ - message_len_) {  // message_len_ <= max_message_ always
    fail(1009, ev);
    return false;
  }
  message_len_ += h.length;
  return true;
}

size_t NativeWsDecoder::feed(uint8_t* data, size_t len, WsEvents& ev) {
  size_t off = 0;
  while (!stopped_) {
    if (!in_payload_) {
      size_t used = 0;
      WsHeaderReader::Step st = header_.feed(data + off, len - off, used);
      off += used;
      if (st == WsHeaderReader::Step::Error) {
        fail(1002, ev);
        return len;
      }
      if (st == WsHeaderReader::Step::NeedMore) return len;
      remaining_ = header_.header().length;
      mask_phase_ = 0;
      // A data frame announcing more than max_message is refused at its header (issue 11): nothing
      // would be gained by waiting for max_message bytes of it. Its other checks wait for its first
      // payload byte, like wslay's (none needed for an empty frame); a control frame is checked when
      // whole, as the wslay adapter hands them over whole.
      const bool control = header_.header().control();
      if (!control && remaining_ > max_message_) {
        fail(1009, ev);
        return len;
      }
      if (!control && remaining_ > 0 && off == len) return len;
      if (!control && !start_frame(ev)) return len;
      in_payload_ = true;
      if (remaining_ == 0) {
        if (end_frame(data + off, 0, ev)) return off;  // held
        continue;
      }
    }
    if (off == len) return len;
    const WsFrameHeader& h = header_.header();
    const bool whole = remaining_ == h.length && len - off >= remaining_;
    const size_t n = len - off < remaining_ ? len - off : static_cast<size_t>(remaining_);
    uint8_t* p = data + off;
    unmask(p, n, h.mask, mask_phase_);
    mask_phase_ = static_cast<uint8_t>((mask_phase_ + n) & 3);
    off += n;
    remaining_ -= n;
    if (!take_payload(p, n, whole, ev)) return stopped_ ? len : off;
  }
  return len;
}

bool NativeWsDecoder::take_payload(uint8_t* p, size_t n, bool whole, WsEvents& ev) {
  const WsFrameHeader& h = header_.header();
  if (h.control()) {
    if (!whole) {
      if (!control_) control_ = std::make_unique<std::string>();
      control_->append(reinterpret_cast<const char*>(p), n);
    }
  } else {
    if (message_opcode_ == kText && !utf8_.feed(p, n)) {
      fail(1007, ev);
      return false;
    }
    // Fast path: a final frame that is all here, with nothing buffered before it, is delivered in place.
    if (!(whole && h.fin && !message_)) {
      if (!message_) message_ = std::make_unique<std::string>();
      message_->append(reinterpret_cast<const char*>(p), n);
    }
  }
  if (remaining_ == 0 && end_frame(whole ? p : nullptr, n, ev)) return false;
  return !stopped_;
}

bool NativeWsDecoder::end_frame(const uint8_t* payload, size_t len, WsEvents& ev) {
  const WsFrameHeader h = header_.header();
  header_.reset();
  in_payload_ = false;
  if (h.control()) {
    std::unique_ptr<std::string> buf = std::move(control_);
    if (!start_frame(ev)) return false;
    if (buf) control_frame(h.opcode, reinterpret_cast<const uint8_t*>(buf->data()), buf->size(), ev);
    else control_frame(h.opcode, payload, len, ev);
    return false;
  }
  if (!h.fin) return false;
  if (message_opcode_ == kText && !utf8_.complete()) {
    fail(1007, ev);
    return false;
  }
  const uint8_t opcode = message_opcode_;
  message_opcode_ = 0;
  message_len_ = 0;
  utf8_.reset();
  std::unique_ptr<std::string> buf = std::move(message_);  // freed once delivered
  if (buf) return ev.ws_message(opcode, reinterpret_cast<const uint8_t*>(buf->data()), buf->size());
  return ev.ws_message(opcode, payload, len);
}

void NativeWsDecoder::control_frame(uint8_t opcode, const uint8_t* p, size_t len, WsEvents& ev) {
  if (opcode == kPing) return ev.ws_ping(p, len);
  if (opcode == kPong) return ev.ws_pong(p, len);
  // Close (§5.5.1): empty, or a 2-byte code and a UTF-8 reason.
  if (len == 1) return fail(1002, ev);
  if (len >= 2 && !is_valid_utf8(reinterpret_cast<const char*>(p) + 2, len - 2)) return fail(1007, ev);
  const uint16_t code = len >= 2 ? static_cast<uint16_t>(p[0] << 8 | p[1]) : 1005;
  if (len >= 2 && !close_code_allowed(code)) return fail(1002, ev);
  stopped_ = true;
  message_.reset();
  ev.ws_close(code, len > 2 ? p + 2 : nullptr, len > 2 ? len - 2 : 0);
}

}  // namespace mg
