#include "net/stream.h"

#include <algorithm>

namespace mg {

namespace {
constexpr size_t kMaxBufsPerWrite = 64;
constexpr size_t kMaxBytesPerWrite = 256 * 1024;  // fairness between streams in one loop turn
}  // namespace

void LoopContext::open(uv_loop_t* l) {
  loop = l;
  l->data = this;
  uv_prepare_init(l, &prepare);
  prepare.data = this;
  uv_prepare_start(&prepare, [](uv_prepare_t* p) {
    auto* ctx = static_cast<LoopContext*>(p->data);
    // flush() never adds to `dirty` for the stream it flushes, but write callbacks are not run
    // here, so a plain swap is safe.
    std::vector<Stream*> batch;
    batch.swap(ctx->dirty);
    for (Stream* s : batch) {
      s->dirty_ = false;
      s->flush();
    }
    if (ctx->dirty.empty()) ctx->dirty.swap(batch), ctx->dirty.clear();  // keep the capacity
  });
}

void LoopContext::close() { uv_close(reinterpret_cast<uv_handle_t*>(&prepare), nullptr); }

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
  buf->base = ctx->read_buf;
  buf->len = sizeof ctx->read_buf;
}

void Stream::on_read_cb(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<Stream*>(s->data);
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
  if (!out.empty()) write_raw(std::make_shared<const std::string>(std::move(out)));
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
  if (tls_) {
    std::string out;
    tls_->encrypt(data->data(), data->size(), out);
    if (!out.empty()) write_raw(std::make_shared<const std::string>(std::move(out)));
    return;
  }
  write_raw(std::move(data));
}

void Stream::write_raw(Chunk data) {
  if (closed_ || !data || data->empty()) return;
  queued_bytes_ += data->size();
  out_.push_back(std::move(data));
  mark_dirty();
}

void Stream::mark_dirty() {
  if (dirty_ || in_flight_ > 0 || closed_) return;
  dirty_ = true;
  LoopContext::of(tcp_.loop)->dirty.push_back(this);
}

void Stream::flush() {
  if (closed_ || in_flight_ > 0) return;
  if (out_.empty()) {
    if (closing_) close_now();
    return;
  }
  uv_buf_t bufs[kMaxBufsPerWrite];
  size_t n = 0, bytes = 0;
  while (n < out_.size() && n < kMaxBufsPerWrite && bytes < kMaxBytesPerWrite) {
    const std::string& s = *out_[n];
    bufs[n] = uv_buf_init(const_cast<char*>(s.data()), static_cast<unsigned>(s.size()));
    bytes += s.size();
    n++;
  }
  auto* req = new uv_write_t;  // freed in on_write_cb, which libuv calls even when the write is cancelled
  req->data = this;
  int rc = uv_write(req, reinterpret_cast<uv_stream_t*>(&tcp_), bufs, static_cast<unsigned>(n), &Stream::on_write_cb);
  if (rc < 0) {
    delete req;
    close_now();
    return;
  }
  in_flight_ = n;
  in_flight_bytes_ = bytes;
}

void Stream::on_write_cb(uv_write_t* req, int status) {
  auto* self = static_cast<Stream*>(req->data);
  delete req;
  self->out_.erase(self->out_.begin(), self->out_.begin() + static_cast<std::ptrdiff_t>(self->in_flight_));
  self->queued_bytes_ -= self->in_flight_bytes_;
  self->in_flight_ = 0;
  self->in_flight_bytes_ = 0;
  if (self->closed_) return;  // cancelled by uv_close
  if (status < 0) {
    self->close_now();
    return;
  }
  if (self->out_.empty()) {
    std::vector<Chunk>().swap(self->out_);  // idle streams hold nothing
    if (self->closing_) {
      self->close_now();
      return;
    }
    self->on_drained();
  } else {
    self->flush();
  }
}

void Stream::close_after_flush() {
  if (closing_ || closed_) return;
  closing_ = true;
  stop_reading();
  if (out_.empty() && in_flight_ == 0) close_now();
  else mark_dirty();
}

void Stream::close_now() {
  if (closed_) return;
  closed_ = true;
  stop_reading();
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
