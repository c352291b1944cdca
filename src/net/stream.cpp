#include "net/stream.h"

#include <algorithm>

namespace mg {

namespace {
constexpr size_t kMaxBufsPerWrite = 64;
constexpr size_t kMaxBytesPerWrite = 256 * 1024;  // fairness between streams in one loop turn
// Small writes of the stream's own bytes are appended to its tail chunk up to this size.
constexpr size_t kCoalesceBytes = 16 * 1024;
constexpr int kPrepareFlushPasses = 4;
}  // namespace

void LoopContext::open(uv_loop_t* l) {
  loop = l;
  l->data = this;
  uv_prepare_init(l, &prepare);
  prepare.data = this;
  uv_idle_init(l, &idle);
  idle.data = this;
  uv_prepare_start(&prepare, [](uv_prepare_t* p) { static_cast<LoopContext*>(p->data)->begin_turn(); });
}

void LoopContext::begin_turn() {
  handshake_left = handshake_budget;
  const uint32_t now = static_cast<uint32_t>(uv_now(loop));
  while ((handshake_budget == 0 || handshake_left > 0) &&
         !(handshake_waiting_begun.empty() && handshake_waiting_new.empty())) {
    auto& from = handshake_waiting_begun.empty() ? handshake_waiting_new : handshake_waiting_begun;
    Waiting w = from.front();
    from.pop_front();
    Stream* s = w.stream;
    s->waiting_ = false;
    if (handshake_left > 0) {
      handshake_left--;
      s->step_paid_ = true;
    }
    s->on_turn_waited(now - w.since_ms);
    if (!s->closed_ && !s->closing_) s->start_reading();
  }
  bool more = on_turn && on_turn();
  flush_dirty();
  if (more || !handshake_waiting_begun.empty() || !handshake_waiting_new.empty()) keep_awake();
}

void LoopContext::flush_dirty() {
  // A flush may run on_drained(), which may write (and so dirty streams again, this one too): a few
  // more passes take those. Whatever is left after them is written next turn, and the idle handle
  // keeps the loop from sleeping in poll until then.
  uv_idle_stop(&idle);
  std::vector<Stream*> batch;
  for (int pass = 0; pass < kPrepareFlushPasses && !dirty.empty(); pass++) {
    batch.swap(dirty);
    for (Stream* s : batch) {
      if (!s->dirty_) continue;  // closed by an earlier stream's callback in this batch
      s->dirty_ = false;
      s->flush();
    }
    batch.clear();
  }
  if (!dirty.empty()) uv_idle_start(&idle, [](uv_idle_t*) {});
  else if (dirty.capacity() < batch.capacity()) dirty.swap(batch);  // keep the capacity
}

void LoopContext::close() {
  uv_close(reinterpret_cast<uv_handle_t*>(&prepare), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle), nullptr);
}

Stream::Stream(uv_loop_t* loop) {
  uv_tcp_init(loop, &tcp_);
  tcp_.data = this;
}

Stream::~Stream() = default;

int Stream::start_reading() {
  return uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &Stream::on_alloc, &Stream::on_read_cb);
}

void Stream::stop_reading() { uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_)); }

void Stream::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* ctx = LoopContext::of(h->loop);
  auto* self = static_cast<Stream*>(h->data);
  if (!self->take_handshake_step(ctx)) {
    *buf = uv_buf_init(nullptr, 0);  // libuv reads nothing and says UV_ENOBUFS: see on_read_cb
    return;
  }
  buf->base = ctx->read_buf;
  buf->len = sizeof ctx->read_buf;
}

bool Stream::take_handshake_step(LoopContext* ctx) {
  if (!tls_ || tls_->established() || ctx->handshake_budget == 0) return true;
  if (step_paid_) {
    step_paid_ = false;
  } else {
    if (ctx->handshake_left == 0) return false;
    ctx->handshake_left--;
  }
  stepped_ = true;
  return true;
}

void Stream::wait_for_turn(LoopContext* ctx) {
  // Nothing was read: the bytes wait in the socket, not in a buffer of ours.
  stop_reading();
  waiting_ = true;
  (stepped_ ? ctx->handshake_waiting_begun : ctx->handshake_waiting_new)
      .push_back({this, static_cast<uint32_t>(uv_now(ctx->loop))});
  ctx->keep_awake();  // the next turn must not sleep in poll
}

void Stream::on_read_cb(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<Stream*>(s->data);
  if (nread == UV_ENOBUFS && !self->closed_) {  // refused by on_alloc: over the handshake budget
    self->wait_for_turn(LoopContext::of(s->loop));
    return;
  }
  if (nread > 0) {
    if (self->closed_) return;
    if (self->tls_) self->read_tls(buf->base, static_cast<size_t>(nread));
    else self->on_read(buf->base, static_cast<size_t>(nread));
  } else if (nread < 0) {
    self->stop_reading();
    if (!self->closed_) self->on_read_end(static_cast<int>(nread));
  }
}

void Stream::use_tls(SSL_CTX* ctx) { tls_ = std::make_unique<TlsSession>(ctx); }

void Stream::read_tls(const char* data, size_t len) {
  std::string plain, out;
  bool was_established = tls_->established();
  TlsSession::Result r = tls_->feed(data, len, plain, out);
  if (!out.empty()) {
    if (!admit_tls_records(out.size())) return;  // over an output bound: closed by the owner
    write_raw(std::make_shared<const std::string>(std::move(out)));
  }
  if (r == TlsSession::Result::Error) {
    if (!plain.empty()) on_read(plain.data(), plain.size());  // what arrived intact before the bad record
    if (closed_) return;
    on_tls_failed(tls_->error());
    close_after_flush();  // the alert, if any, goes out first
    return;
  }
  if (!was_established && tls_->established()) on_tls_ready();
  if (!plain.empty() && !closed_) on_read(plain.data(), plain.size());
  if (r == TlsSession::Result::Closed && !closed_) {
    stop_reading();
    on_read_end(UV_EOF);
  }
}

void Stream::write(Chunk data) {
  if (closed_ || !data || data->empty()) return;
  if (tls_) return write_encrypted(data->data(), data->size());
  write_raw(std::move(data));
}

void Stream::write(std::string data) {
  if (closed_ || data.empty()) return;
  if (tls_) return write_encrypted(data.data(), data.size());
  write_owned(std::move(data));
}

void Stream::write_copy(std::string_view a, std::string_view b) {
  const size_t n = a.size() + b.size();
  if (closed_ || n == 0) return;
  if (!tls_ && tail_open_ && out_.back()->size() + n <= kCoalesceBytes) {
    auto& tail = const_cast<std::string&>(*out_.back());  // ours: see write_owned
    tail.append(a);
    tail.append(b);
    queued_bytes_ += n;
    return;
  }
  std::string data;
  data.reserve(tls_ ? n : std::max(n, kCoalesceBytes));  // room for the small writes that may follow
  data.append(a);
  data.append(b);
  write(std::move(data));
}

void Stream::write_encrypted(const char* data, size_t len) {
  std::string records;
  tls_->encrypt(data, len, records);
  write_owned(std::move(records));  // ours: later small records may join it
}

void Stream::write_raw(Chunk data) {
  if (closed_ || !data || data->empty()) return;
  queued_bytes_ += data->size();
  out_.push_back(std::move(data));
  tail_open_ = false;
  mark_dirty();
}

void Stream::write_owned(std::string data) {
  if (closed_ || data.empty()) return;
  queued_bytes_ += data.size();
  if (tail_open_ && out_.back()->size() + data.size() <= kCoalesceBytes) {
    // Ours (made below as a non-const string), queued and not in flight: the stream is already
    // dirty or will be flushed when the write in flight completes.
    const_cast<std::string&>(*out_.back()).append(data);
    return;
  }
  bool small = data.size() < kCoalesceBytes;
  out_.push_back(std::make_shared<std::string>(std::move(data)));
  tail_open_ = small;
  mark_dirty();
}

void Stream::mark_dirty() {
  if (dirty_ || in_flight_ > 0 || closed_) return;
  dirty_ = true;
  LoopContext::of(tcp_.loop)->dirty.push_back(this);
}

size_t Stream::gather(uv_buf_t* bufs, size_t& bytes) {
  size_t n = 0;
  bytes = 0;
  for (size_t i = out_head_; i < out_.size() && n < kMaxBufsPerWrite && bytes < kMaxBytesPerWrite; i++, n++) {
    const std::string& s = *out_[i];
    size_t skip = i == out_head_ ? head_offset_ : 0;
    bufs[n] = uv_buf_init(const_cast<char*>(s.data()) + skip, static_cast<unsigned>(s.size() - skip));
    bytes += s.size() - skip;
    if (i + 1 == out_.size()) tail_open_ = false;  // being written: nothing more may be appended to it
  }
  return n;
}

void Stream::consume(size_t bytes) {
  queued_bytes_ -= bytes;
  while (bytes > 0) {
    size_t left = out_[out_head_]->size() - head_offset_;
    if (bytes < left) {
      head_offset_ += static_cast<uint32_t>(bytes);
      return;
    }
    bytes -= left;
    out_[out_head_++].reset();
    head_offset_ = 0;
  }
}

void Stream::flush() {
  if (closed_ || in_flight_ > 0) return;
  if (out_head_ == out_.size()) {
    if (closing_) close_now();
    return;
  }
  uv_buf_t bufs[kMaxBufsPerWrite];
  size_t n = 0, bytes = 0, written = 0;
  // Straight to the socket while it takes everything, up to the per-turn budget.
  while (out_head_ < out_.size() && written < kMaxBytesPerWrite) {
    n = gather(bufs, bytes);
    int rc = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), bufs, static_cast<unsigned>(n));
    if (rc == UV_EAGAIN) break;
    if (rc < 0) {
      close_now();
      return;
    }
    consume(static_cast<size_t>(rc));
    written += static_cast<size_t>(rc);
    if (static_cast<size_t>(rc) < bytes) break;
  }
  if (out_head_ == out_.size()) {
    queue_emptied();
    return;
  }
  if (out_head_ >= kMaxBufsPerWrite && out_head_ * 2 >= out_.size()) {  // drop the written slots (amortised O(1))
    out_.erase(out_.begin(), out_.begin() + out_head_);
    out_head_ = 0;
  }
  // The rest goes through libuv, which writes it as the socket takes it and calls back.
  n = gather(bufs, bytes);
  auto* req = new uv_write_t;  // freed in on_write_cb, which libuv calls even when the write is cancelled
  req->data = this;
  int rc = uv_write(req, reinterpret_cast<uv_stream_t*>(&tcp_), bufs, static_cast<unsigned>(n), &Stream::on_write_cb);
  if (rc < 0) {
    delete req;
    close_now();
    return;
  }
  in_flight_ = static_cast<uint32_t>(n);
  in_flight_bytes_ = bytes;
}

void Stream::queue_emptied() {
  std::vector<Chunk>().swap(out_);  // idle streams hold nothing
  out_head_ = 0;
  head_offset_ = 0;
  tail_open_ = false;
  if (closing_) {
    close_now();
    return;
  }
  on_drained();
}

void Stream::on_write_cb(uv_write_t* req, int status) {
  auto* self = static_cast<Stream*>(req->data);
  delete req;
  for (uint32_t i = 0; i < self->in_flight_; i++) self->out_[self->out_head_ + i].reset();
  self->out_head_ += self->in_flight_;
  self->head_offset_ = 0;
  self->queued_bytes_ -= self->in_flight_bytes_;
  self->in_flight_ = 0;
  self->in_flight_bytes_ = 0;
  if (self->closed_) return;  // cancelled by uv_close
  if (status < 0) {
    self->close_now();
    return;
  }
  if (self->out_head_ == self->out_.size()) self->queue_emptied();
  else self->flush();
}

void Stream::close_after_flush() {
  if (closing_ || closed_) return;
  closing_ = true;
  stop_reading();
  if (out_head_ == out_.size() && in_flight_ == 0) close_now();
  else mark_dirty();
}

void Stream::close_now() {
  if (closed_) return;
  closed_ = true;
  stop_reading();
  if (waiting_) {  // rare (a drain, a timeout): the lists are short-lived, a search is cheap enough
    auto* ctx = LoopContext::of(tcp_.loop);
    auto& w = stepped_ ? ctx->handshake_waiting_begun : ctx->handshake_waiting_new;
    for (auto it = w.begin(); it != w.end(); ++it)
      if (it->stream == this) {
        w.erase(it);
        break;
      }
    waiting_ = false;
  }
  if (dirty_) {
    auto& d = LoopContext::of(tcp_.loop)->dirty;
    auto it = std::find(d.begin(), d.end(), this);
    if (it != d.end()) { *it = d.back(); d.pop_back(); }
    dirty_ = false;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Stream::on_close_cb);
}

void Stream::on_close_cb(uv_handle_t* h) {
  auto* self = static_cast<Stream*>(h->data);
  self->on_close();
  delete self;
}

}  // namespace mg
