// A TCP connection on a libuv loop with a bounded-by-its-owner output queue.
//
// Glossary:
//   chunk      bytes queued for the socket, shared (a publish frames a message once and every
//              recipient queues the same buffer)
//   dirty      a stream with queued chunks and no write in flight; the loop's prepare handle writes
//              all dirty streams once per loop turn, just before it polls (as redis does), so that
//              many small writes in one turn become one writev
//   tail       the last queued chunk when the stream made it itself (write(std::string), TLS
//              records) and it is not being written: later small writes of that kind are appended
//              to it, up to kCoalesceBytes, so a run of small messages is one buffer, not one each
//   turn       one pass of the loop, from one prepare callback (just before the loop polls) to the
//              next
//   handshake budget
//              how many TLS handshake steps (reads of a stream whose handshake is not done: each
//              one a call into OpenSSL, the first of them the signature) the loop makes in one turn.
//              A stream over the budget is not read (its bytes stay in the kernel, TCP slows the
//              client): it waits for a turn, first come first served, and the next turns read the
//              waiting ones first: handshakes already begun (their expensive first step is done:
//              finishing them frees their memory and lets a client in) before new ones. Streams with their handshake done are never
//              counted, so established clients are served every turn through a reconnect storm.
//
// Writing: the prepare pass writes straight to the socket (writev) and goes through uv_write only
// for what the socket did not take (or beyond kMaxBytesPerWrite in one turn): a write that
// completes at once costs one syscall, no request and no watcher change. on_drained() is called
// whenever the queue becomes empty, from the prepare pass or a write callback.
//
// Lifetime: a Stream is created with new and deleted only in its uv_close callback (after
// on_close()). close_now() may be called from anywhere, any number of times; the object stays valid
// until the loop reaches its close phase. Exactly one uv_write is in flight at a time.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/send_result.h"
#include "net/tls.h"

namespace mg {

class Stream;
using Chunk = std::shared_ptr<const std::string>;

// Per-loop state shared by every stream of that loop; loop->data points to it.
struct LoopContext {
  uv_loop_t* loop = nullptr;
  void* owner = nullptr;  // a worker's loop: the Worker (its accept callback finds itself here); nullptr elsewhere
  uv_prepare_t prepare{};
  uv_idle_t idle{};  // running only while streams made dirty by the prepare pass itself are left over
  std::vector<Stream*> dirty;
  // The handshake budget (see the glossary): steps per turn (0: no budget), steps left this turn,
  // and the streams waiting for a turn with when they began to wait (uv_now, truncated): those whose
  // handshake has begun, then those with their first step still to make.
  uint32_t handshake_budget = 0;
  uint32_t handshake_left = 0;
  struct Waiting {
    Stream* stream;
    uint32_t since_ms;
  };
  std::deque<Waiting> handshake_waiting_begun;
  std::deque<Waiting> handshake_waiting_new;
  // Run at the start of every turn (a worker: its accept budget); true when it left work for the
  // next turn, which then polls without sleeping.
  std::function<bool()> on_turn;
  char read_buf[64 * 1024];  // every read lands here and is consumed before the next read

  void open(uv_loop_t* l);
  void close();  // closes the prepare and idle handles
  // A turn begins (the prepare callback): the budget is refilled, waiting streams are read again
  // as far as it goes, on_turn runs, dirty streams are written.
  void begin_turn();
  // The next turn polls without sleeping (work was left for it).
  void keep_awake() { uv_idle_start(&idle, [](uv_idle_t*) {}); }
  void flush_dirty();
  static LoopContext* of(uv_loop_t* l) { return static_cast<LoopContext*>(l->data); }
};

class Stream {
 public:
  explicit Stream(uv_loop_t* loop);
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  uv_tcp_t* tcp() { return &tcp_; }
  uv_loop_t* loop() const { return tcp_.loop; }
  // Starts delivering on_read / on_read_end. Returns a libuv error code or 0.
  int start_reading();
  void stop_reading();
  // Turns on TLS (server side) for this stream: reads are decrypted before on_read, writes
  // encrypted. Call before start_reading.
  void use_tls(SSL_CTX* ctx);
  // Queues bytes; written before the loop next polls. Ignored once the stream is closing.
  void write(Chunk data);
  // The same for bytes nobody else holds: small ones may share one buffer with the writes before.
  void write(std::string data);
  // Copies `a` then `b` (a frame's header and payload) into the queue as one write of bytes nobody
  // else holds: appended to the tail when it has room, so a run of small messages costs no buffer each.
  void write_copy(std::string_view a, std::string_view b);
  // Bytes queued and not yet confirmed written (including the write in flight).
  size_t queued_bytes() const { return queued_bytes_; }
  // The one output admission: may `bytes` more be queued under `limit`, the owner's hard bound on
  // queued_bytes()? Ok; BufferFull when they would pass it (the owner closes the connection: a
  // peer that does not read must not grow our memory); Closing when the stream takes nothing more
  // (write() would drop them), checked first so a stream already closing is not closed again for
  // its limit. Queues nothing.
  SendResult admit(size_t bytes, uint64_t limit) const {
    if (closing()) return SendResult::Closing;
    return queued_bytes_ + bytes > limit ? SendResult::BufferFull : SendResult::Ok;
  }
  // Stops reading and closes once the queue is written.
  void close_after_flush();
  // Closes now, dropping anything not yet written.
  void close_now();
  bool closing() const { return closing_ || closed_; }
  bool closed() const { return closed_; }
  // TLS is on and its handshake finished.
  bool tls_established() const { return tls_ && tls_->established(); }
  // Over the handshake budget: not read until a turn has room for it (its handshake timeout does
  // not run meanwhile: see on_turn_waited).
  bool waiting_for_turn() const { return waiting_; }

 protected:
  virtual ~Stream();
  virtual void on_read(const char* data, size_t len) = 0;
  // The peer closed (UV_EOF) or reading failed. The stream is still open: decide what to do.
  virtual void on_read_end(int status) = 0;
  // Everything queued has been written.
  virtual void on_drained() {}
  // Last call before delete, from the uv_close callback.
  virtual void on_close() {}
  // TLS: the handshake finished; or it failed (the stream closes right after this call).
  virtual void on_tls_ready() {}
  virtual void on_tls_failed(const std::string& why) { (void)why; }
  // It waited `ms` for a turn with room in the handshake budget and is read again now.
  virtual void on_turn_waited(uint32_t ms) { (void)ms; }
  // TLS: records the session wrote while reading (its handshake, answers to a client's KeyUpdates,
  // alerts), before they are queued. False: the owner closed the stream (an output bound) and they
  // are dropped.
  virtual bool admit_tls_records(size_t bytes) {
    (void)bytes;
    return true;
  }

 private:
  friend struct LoopContext;
  void flush();
  void mark_dirty();
  void write_raw(Chunk data);
  void write_owned(std::string data);
  // TLS: encrypts and queues the records.
  void write_encrypted(const char* data, size_t len);
  // Fills `bufs` from the queue's head (at most kMaxBufsPerWrite, about kMaxBytesPerWrite); returns
  // how many and their bytes in `bytes`.
  size_t gather(uv_buf_t* bufs, size_t& bytes);
  // `bytes` from the queue's head were written.
  void consume(size_t bytes);
  void queue_emptied();
  void read_tls(const char* data, size_t len);
  // The handshake budget at a read: true when this read may go on (counted, or paid for when it
  // was let out of the waiting list); false when the stream must wait for a turn.
  bool take_handshake_step(LoopContext* ctx);
  void wait_for_turn(LoopContext* ctx);
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read_cb(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_write_cb(uv_write_t* req, int status);
  static void on_close_cb(uv_handle_t* h);

  std::unique_ptr<TlsSession> tls_;
  uv_tcp_t tcp_{};
  // Queued chunks are out_[out_head_..]; the first in_flight_ of them are being written, the first
  // of them from head_offset_ on (the socket took the rest of it directly). The vector's storage and
  // the uv_write_t (192 bytes) exist only while something is queued or in flight: idle streams hold
  // neither.
  std::vector<Chunk> out_;
  uint32_t out_head_ = 0;
  uint32_t head_offset_ = 0;
  uint32_t in_flight_ = 0;
  bool tail_open_ = false;    // out_.back() is ours (a std::string), queued and not being written
  bool dirty_ = false;
  bool closing_ = false;      // close_after_flush was called
  bool closed_ = false;       // uv_close was called
  bool waiting_ = false;      // in one of the loop's handshake_waiting lists
  bool step_paid_ = false;    // let out of a waiting list: its next read is already counted
  bool stepped_ = false;      // made a handshake step already
  size_t in_flight_bytes_ = 0;
  size_t queued_bytes_ = 0;
};

}  // namespace mg
