// TCP client framing (see tcp_framing.h and PROTOCOL.md §3.2).
//
// Contract details the header leaves implicit:
//   - max_message counts payload bytes: not the '\n' nor a dropped '\r' (line), not the 4-byte
//     length (len32).
//   - line: an unfinished line is TooLong as soon as it provably exceeds max_message, before its '\n'
//     arrives, so a client cannot make us buffer an endless line. A final '\r' in the buffer may still
//     be the "\r\n" terminator, so it is not counted yet.
//   - len32: a length above max_message is TooLong as soon as its 4 bytes are in.
//   - After stop() the decoder delivers nothing more (later feeds return Ok and do nothing); after
//     TooLong every later feed returns TooLong.
//   - A hold ends the feed right after the message's last byte (its '\n', or its last payload byte):
//     the decoder then holds no partial message, so the caller's rest is fed again as it was.
// Why it looks like this: most reads carry whole messages, so when nothing is buffered the messages
// are handed to on_message straight from the caller's bytes. Only the unfinished tail of a read is
// copied, and the copy is released as soon as its message completes, so idle connections hold nothing.
#include "client/tcp_framing.h"

#include <algorithm>
#include <cstring>

#include "core/addr.h"

namespace mg {

namespace {

// Payload bytes an unfinished line holds for sure: a last '\r' may belong to the terminator.
size_t line_payload_so_far(size_t len, char last) { return last == '\r' ? len - 1 : len; }

}  // namespace

FrameDecoder::FrameDecoder(Framing framing, uint32_t max_message)
    : framing_(framing), max_message_(max_message) {}

FrameDecoder::Status FrameDecoder::feed(const char* data, size_t len, const OnMessage& on_message, size_t* used) {
  if (used) *used = len;
  if (failed_) return Status::TooLong;
  if (stopped_ || len == 0) return Status::Ok;
  const auto too_long = [this] {
    failed_ = true;
    std::string().swap(partial_);
    return Status::TooLong;
  };
  const char* p = data;
  const char* const end = data + len;
  bool held = false;
  // Delivers one complete message (`p` already past it). Returns false when on_message stopped the
  // decoder or asked to hold.
  const auto deliver = [&](const char* msg, size_t msg_len) {
    held = on_message(msg, msg_len);
    if (held && used) *used = static_cast<size_t>(p - data);
    return !held && !stopped_;
  };
  const auto stopped = [&] { return held && !stopped_ ? Status::Held : Status::Ok; };

  if (framing_ == Framing::Line) {
    if (!partial_.empty()) {
      const auto* nl = static_cast<const char*>(std::memchr(p, '\n', len));
      if (nl == nullptr) {
        partial_.append(p, len);
        if (line_payload_so_far(partial_.size(), partial_.back()) > max_message_) return too_long();
        return Status::Ok;
      }
      partial_.append(p, static_cast<size_t>(nl - p));
      p = nl + 1;
      if (partial_.back() == '\r') partial_.pop_back();
      if (partial_.size() > max_message_) return too_long();
      std::string msg;
      msg.swap(partial_);  // partial_ is empty (and owns no memory) before the callback runs
      if (!msg.empty() && !deliver(msg.data(), msg.size())) return stopped();
    }
    while (p < end) {
      const auto* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      if (nl == nullptr) {
        const size_t rest = static_cast<size_t>(end - p);
        if (line_payload_so_far(rest, end[-1]) > max_message_) return too_long();
        partial_.assign(p, rest);
        break;
      }
      size_t msg_len = static_cast<size_t>(nl - p);
      if (msg_len > 0 && p[msg_len - 1] == '\r') --msg_len;
      if (msg_len > max_message_) return too_long();
      const char* msg = p;
      p = nl + 1;
      if (msg_len > 0 && !deliver(msg, msg_len)) return stopped();  // empty line: keep-alive
    }
    return Status::Ok;
  }

  // len32
  if (!partial_.empty()) {
    if (partial_.size() < 4) {
      const size_t take = std::min(4 - partial_.size(), len);
      partial_.append(p, take);
      p += take;
      if (partial_.size() < 4) return Status::Ok;
      const uint32_t body = read_be32(partial_.data());
      if (body > max_message_) return too_long();
      partial_.reserve(4 + size_t{body});
    }
    const size_t want = 4 + size_t{read_be32(partial_.data())} - partial_.size();
    const size_t take = std::min(want, static_cast<size_t>(end - p));
    partial_.append(p, take);
    p += take;
    if (take < want) return Status::Ok;
    std::string msg;
    msg.swap(partial_);
    if (!deliver(msg.data() + 4, msg.size() - 4)) return stopped();
  }
  while (p < end) {
    const size_t rest = static_cast<size_t>(end - p);
    if (rest < 4) {
      partial_.assign(p, rest);
      break;
    }
    const uint32_t body = read_be32(p);
    if (body > max_message_) return too_long();
    if (rest - 4 < body) {
      partial_.reserve(4 + size_t{body});
      partial_.assign(p, rest);
      break;
    }
    const char* msg = p + 4;
    p += 4 + size_t{body};
    if (!deliver(msg, body)) return stopped();
  }
  return Status::Ok;
}

// len32 can carry at most 4 GiB - 1 per message; callers keep messages far below that (max_message).
// line cannot carry a '\n' inside a message: the client would see two messages. Not checked here.
std::string encode_frame(Framing framing, const char* data, size_t len) {
  std::string out;
  if (framing == Framing::Line) {
    out.reserve(len + 1);
    if (len > 0) out.append(data, len);
    out.push_back('\n');
  } else {
    const auto n = static_cast<uint32_t>(len);
    out.reserve(len + 4);
    append_be32(out, n);
    if (len > 0) out.append(data, len);
  }
  return out;
}

}  // namespace mg
