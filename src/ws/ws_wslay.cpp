#include "ws/ws_wslay.h"

#include <cstring>

namespace mg {

namespace {

// The bytes wslay may read now and the decoder its callbacks report to (one feed at a time per thread).
struct Current {
  WslayWsDecoder* decoder = nullptr;
  const uint8_t* in = nullptr;
  size_t in_len = 0;
};
thread_local Current t_current;

ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t* buf, size_t len, int, void*) {
  Current& c = t_current;
  if (c.in_len == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);  // 0 would mean end of stream
    return -1;
  }
  const size_t n = len < c.in_len ? len : c.in_len;
  std::memcpy(buf, c.in, n);
  c.in += n;
  c.in_len -= n;
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
      ev_->ws_message(arg->opcode, arg->msg, arg->msg_length);
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

void WslayWsDecoder::give(const uint8_t* p, size_t n, WsEvents& ev) {
  if (n == 0 || stopped_) return;
  if (!ctx_ && !(ctx_ = borrow_context(max_message_))) {
    stopped_ = true;
    ev.ws_error(1011);
    return;
  }
  t_current.in = p;
  t_current.in_len = n;
  const int rc = wslay_event_recv(ctx_);
  t_current.in = nullptr;
  t_current.in_len = 0;
  while (wslay_event_want_write(ctx_) && wslay_event_send(ctx_) == 0) {
  }
  if (stopped_) return;
  if (violation_) {
    stopped_ = true;
    ev.ws_error(1002);
    return;
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
}

void WslayWsDecoder::hold(const uint8_t* p, size_t n) {
  if (!held_) held_ = std::make_unique<std::string>();
  held_->append(reinterpret_cast<const char*>(p), n);
}

void WslayWsDecoder::feed(uint8_t* data, size_t len, WsEvents& ev) {
  if (stopped_) return;
  t_current.decoder = this;
  ev_ = &ev;
  // Bytes of data frames go to wslay in one run per read (one wslay_event_recv for many small frames);
  // the run is given before any control frame, which goes whole and on its own.
  size_t run_from = 0, run_len = 0;
  auto extend_run = [&](size_t from, size_t to) {
    if (run_len == 0) run_from = from;
    run_len = to - run_from;  // contiguous: the run is given before anything else is
  };
  auto give_run = [&] {
    if (run_len) give(data + run_from, run_len, ev);
    run_len = 0;
  };
  size_t off = 0;
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
          give_run();
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
          give_run();
          hold(data + start, off - start);
        } else {
          extend_run(start, off);
        }
        break;
      }
      in_payload_ = true;
      remaining_ = header_.header().length;
    }
    const size_t n = len - off < remaining_ ? len - off : static_cast<size_t>(remaining_);
    off += n;
    remaining_ -= n;
    const bool frame_done = remaining_ == 0;
    if (!control_) {
      extend_run(start, off);
    } else {
      give_run();
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
  give_run();
  ev_ = nullptr;
  t_current.decoder = nullptr;
  if (stopped_) held_.reset();
  if (stopped_ || (!in_payload_ && header_.have() == 0 && !in_message_ && !held_)) release_context();
}

}  // namespace mg
