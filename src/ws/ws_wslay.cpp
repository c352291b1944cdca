#include "ws/ws_wslay.h"

#include <cstring>
#include <vector>

namespace mg {

namespace {

// The bytes wslay may read now and the decoder its callbacks report to (one feed at a time per thread).
// wslay is never handed bytes past the end of a data message in one go (`ends`, where the run's data
// messages end, in order), and none at all after a message whose receiver asked to hold: wslay reads
// ahead into its own buffer, and after a hold nothing of the next message may be in it.
struct Current {
  WslayWsDecoder* decoder = nullptr;
  const uint8_t* in = nullptr;
  const uint8_t* in_end = nullptr;
  std::vector<const uint8_t*> ends;  // reused: no allocation per read once it has grown
  size_t next_end = 0;               // ends[next_end] is the next stop at or after `in`
};
thread_local Current t_current;

ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t* buf, size_t len, int, void*) {
  Current& c = t_current;
  while (c.next_end < c.ends.size() && c.ends[c.next_end] == c.in) {  // at a message's end
    if (c.decoder && c.decoder->holding()) break;
    c.next_end++;
  }
  const uint8_t* stop = c.next_end < c.ends.size() ? c.ends[c.next_end] : c.in_end;
  if (c.in == stop) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);  // 0 would mean end of stream
    return -1;
  }
  const size_t avail = static_cast<size_t>(stop - c.in);
  const size_t n = len < avail ? len : avail;
  std::memcpy(buf, c.in, n);
  c.in += n;
  return static_cast<ssize_t>(n);
}

ssize_t send_cb(wslay_event_context_ptr, const uint8_t*, size_t len, int, void*) {
  return static_cast<ssize_t>(len);  // wslay's own pongs and closes: the session answers instead
}

void msg_cb(wslay_event_context_ptr, const wslay_event_on_msg_recv_arg* arg, void*) {
  if (t_current.decoder) t_current.decoder->on_msg(arg);
}

void frame_start_cb(wslay_event_context_ptr, const wslay_event_on_frame_recv_start_arg* arg, void*) {
  if (t_current.decoder) t_current.decoder->on_frame_start(arg);
}

// The thread's spare context, and where new ones come from.
struct SpareContext {
  wslay_event_context_ptr ctx = nullptr;
  ~SpareContext() {
    if (ctx) wslay_event_context_free(ctx);
  }
};
thread_local SpareContext t_spare;

wslay_event_context_ptr borrow_context(uint32_t max_message) {
  wslay_event_context_ptr ctx = t_spare.ctx;
  t_spare.ctx = nullptr;
  if (!ctx) {
    wslay_event_callbacks cb;
    std::memset(&cb, 0, sizeof cb);
    cb.recv_callback = recv_cb;
    cb.send_callback = send_cb;
    cb.on_msg_recv_callback = msg_cb;
    cb.on_frame_recv_start_callback = frame_start_cb;
    if (wslay_event_context_server_init(&ctx, &cb, nullptr) != 0) return nullptr;
  }
  wslay_event_config_set_max_recv_msg_length(ctx, max_message);
  return ctx;
}

}  // namespace

WslayWsDecoder::~WslayWsDecoder() {
  if (ctx_) wslay_event_context_free(ctx_);
}

void WslayWsDecoder::release_context() {
  if (!ctx_) return;
  // Reusable only if wslay still reads and holds nothing: at a boundary it does, unless it stopped.
  if (!stopped_ && !t_spare.ctx && wslay_event_get_read_enabled(ctx_) && !wslay_event_want_write(ctx_)) {
    t_spare.ctx = ctx_;
  } else {
    wslay_event_context_free(ctx_);
  }
  ctx_ = nullptr;
}

void WslayWsDecoder::on_frame_start(const wslay_event_on_frame_recv_start_arg* arg) {
  if (arg->opcode == WSLAY_CONNECTION_CLOSE && arg->payload_length == 1) violation_ = true;
}

void WslayWsDecoder::on_msg(const wslay_event_on_msg_recv_arg* arg) {
  if (stopped_ || violation_ || !ev_) return;
  switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
    case WSLAY_BINARY_FRAME:
      if (ev_->ws_message(arg->opcode, arg->msg, arg->msg_length)) holding_ = true;
      break;
    case WSLAY_PING:
      ev_->ws_ping(arg->msg, arg->msg_length);
      break;
    case WSLAY_PONG:
      ev_->ws_pong(arg->msg, arg->msg_length);
      break;
    case WSLAY_CONNECTION_CLOSE: {
      stopped_ = true;
      const bool has_code = arg->msg_length >= 2;
      ev_->ws_close(has_code ? arg->status_code : 1005, has_code ? arg->msg + 2 : nullptr,
                    has_code ? arg->msg_length - 2 : 0);
      break;
    }
    default:
      break;
  }
}

size_t WslayWsDecoder::give(const uint8_t* p, size_t n, WsEvents& ev) {
  Current& c = t_current;
  if (n == 0 || stopped_) {
    c.ends.clear();
    return n;
  }
  if (!ctx_ && !(ctx_ = borrow_context(max_message_))) {
    c.ends.clear();
    stopped_ = true;
    ev.ws_error(1011);
    return n;
  }
  c.in = p;
  c.in_end = p + n;
  c.next_end = 0;
  const int rc = wslay_event_recv(ctx_);
  const size_t taken = holding_ ? static_cast<size_t>(c.in - p) : n;
  c.in = c.in_end = nullptr;
  c.ends.clear();
  while (wslay_event_want_write(ctx_) && wslay_event_send(ctx_) == 0) {
  }
  if (stopped_) return n;
  if (violation_) {
    stopped_ = true;
    ev.ws_error(1002);
    return n;
  }
  if (rc == WSLAY_ERR_NOMEM) {
    stopped_ = true;
    ev.ws_error(1011);
  } else if (rc != 0 || !wslay_event_get_read_enabled(ctx_)) {
    // wslay refused the input and sent a close frame: its code, or none for a malformed header.
    uint16_t code = wslay_event_get_close_sent(ctx_) ? wslay_event_get_status_code_sent(ctx_) : 1002;
    if (code == 1005 || code == 1006) code = 1002;
    stopped_ = true;
    ev.ws_error(code);
  }
  return stopped_ ? n : taken;
}

void WslayWsDecoder::hold(const uint8_t* p, size_t n) {
  if (!held_) held_ = std::make_unique<std::string>();
  held_->append(reinterpret_cast<const char*>(p), n);
}

size_t WslayWsDecoder::feed(uint8_t* data, size_t len, WsEvents& ev) {
  if (stopped_) return len;
  t_current.decoder = this;
  ev_ = &ev;
  holding_ = false;
  std::vector<const uint8_t*>& ends = t_current.ends;
  // Bytes of data frames go to wslay in one run per read (one wslay_event_recv for many small frames);
  // the run is given before any control frame, which goes whole and on its own.
  size_t run_from = 0, run_len = 0;
  size_t taken = len;
  auto extend_run = [&](size_t from, size_t to) {
    if (run_len == 0) run_from = from;
    run_len = to - run_from;  // contiguous: the run is given before anything else is
  };
  // False when a message of the run asked to hold: `taken` is where it ended.
  auto give_run = [&] {
    if (run_len == 0) return true;
    const size_t used = give(data + run_from, run_len, ev);
    run_len = 0;
    if (!holding_) return true;
    taken = run_from + used;
    return false;
  };
  size_t off = 0;
  bool held = false;
  while (off < len && !stopped_) {
    const size_t start = off;
    if (!tracking_) {
      extend_run(off, len);
      break;
    }
    if (!in_payload_) {
      if (header_.have() == 0) control_ = (data[off] & 0x08) != 0;
      size_t used = 0;
      const WsHeaderReader::Step st = header_.feed(data + off, len - off, used);
      off += used;
      if (st == WsHeaderReader::Step::Error) {  // wslay fails on the same byte
        tracking_ = false;
        if (held_) {
          if (!give_run()) {
            held = true;
            break;
          }
          hold(data + start, off - start);
          std::unique_ptr<std::string> h = std::move(held_);
          give(reinterpret_cast<const uint8_t*>(h->data()), h->size(), ev);
        } else {
          extend_run(start, off);
        }
        continue;
      }
      if (st == WsHeaderReader::Step::NeedMore) {
        if (control_) {
          if (!give_run()) {
            held = true;
            break;
          }
          hold(data + start, off - start);
        } else {
          extend_run(start, off);
        }
        break;
      }
      in_payload_ = true;
      remaining_ = header_.header().length;
      if (!control_ && remaining_ > max_message_) {
        // Refused at its header, as the native codec does: wslay would take max_message bytes of it
        // first. The frames before it in this read go to wslay first.
        if (!give_run()) {
          held = true;
          break;
        }
        if (!stopped_) {
          stopped_ = true;
          ev.ws_error(1009);
        }
        break;
      }
    }
    const size_t n = len - off < remaining_ ? len - off : static_cast<size_t>(remaining_);
    off += n;
    remaining_ -= n;
    const bool frame_done = remaining_ == 0;
    if (!control_) {
      extend_run(start, off);
      if (frame_done && header_.header().fin) ends.push_back(data + off);  // a data message ends here
    } else {
      if (!give_run()) {
        held = true;
        break;
      }
      if (!frame_done) {
        hold(data + start, off - start);
      } else if (held_) {
        hold(data + start, off - start);
        std::unique_ptr<std::string> h = std::move(held_);
        give(reinterpret_cast<const uint8_t*>(h->data()), h->size(), ev);
      } else {
        give(data + start, off - start, ev);  // the whole control frame is in this read
      }
    }
    if (frame_done) {
      if (!control_) in_message_ = !header_.header().fin;
      header_.reset();
      in_payload_ = false;
    }
  }
  if (!held && !give_run()) held = true;
  ends.clear();
  if (held) {
    // Right after a data message: a frame boundary outside any message. What the walk above saw
    // of the bytes after it is forgotten; they come again.
    header_.reset();
    in_payload_ = false;
    remaining_ = 0;
    in_message_ = false;
    tracking_ = true;
  }
  ev_ = nullptr;
  t_current.decoder = nullptr;
  if (stopped_) held_.reset();
  if (stopped_ || (!in_payload_ && header_.have() == 0 && !in_message_ && !held_)) release_context();
  return stopped_ ? len : taken;
}

}  // namespace mg
