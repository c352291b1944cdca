// One client connection (WebSocket or plain TCP) on a worker.
//
// Phases: Handshake (ws only: reading the HTTP upgrade request; TLS and connect tokens too) → Open
// (registered under its id, sends and publishes reach it, its messages become queue events) →
// Closing.
//
// One close path. Every way a connection ends (a TLS error, a codec error, a limit, a timeout, an
// API close, the drain, the peer's close or reset, a refused handshake) calls decide_close, the only
// code that leaves Open: the first call wins, and for an open connection it unregisters it from the
// worker (its id, its channels, the counts) and emits its `close` event, both exactly once. The stream
// then closes; on_close() (its uv_close callback, the one place a connection is torn down) decides
// 1006 "connection lost" if nothing was decided before, gives back its per-IP slot, and the worker
// forgets it last, just before it is freed (Worker::forget asserts, in debug builds, that none of
// its tables still reaches it).
//
// Memory while idle: the socket handle, a few counters, the peer address (20 bytes), the context text
// and channel names, and for WebSocket the session alone (no decoder between messages, ws_session.h);
// over TLS the session's SSL and nothing else (net/tls.h). Read buffers are shared per loop; output
// chunks are released as soon as they are written.
//
// Pausing for the queue: its decoder (codec or TCP framing) asks after every message whether the
// client's topic is full or the hub is behind (hold_input), and stops right after the message that
// found it so. The rest of that read is kept (held_input_, only while paused, freed once taken) and
// the socket is not read; resume_reading() takes the kept bytes first (which may pause it again),
// then reads the socket again.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "client/out_message.h"
#include "client/tcp_framing.h"
#include "client/worker.h"
#include "http/http_parser.h"
#include "net/listen_socket.h"
#include "net/stream.h"
#include "ws/ws_session.h"

namespace mg {

class Worker;

class ClientConn final : public Stream, public WsOwner {
 public:
  ClientConn(Worker& w, unsigned listener_index);

  // After uv_accept: records the peer and starts reading. A TCP connection opens at once, or
  // after its TLS handshake, or after its connect token, as its listener requires.
  void start();
  // The IP address the listener's per-IP count holds for this connection (released on close).
  void set_guard_ip(const std::string& ip) { guard_ip_ = peer_.set_ip(ip); }
  // Queues a message: Ok; Closing when the connection no longer sends (closing, or past its close
  // event); BufferFull over the hard limit (admit_output closed it).
  SendResult send(const OutMessage& msg);
  // Closes with `code`; WebSocket clients get a close frame with the code and reason.
  void close_with(int code, const std::string& reason);
  // Once-a-second checks: idle timeout, server ping, soft output limit, handshake timeout.
  void tick(uint32_t now_s);
  // Reading was paused because its queue topic was full (overflow = pause) or the hub was behind
  // with every client's events (Worker::emit): read again unless either still holds. The idle
  // timeout counts from now, since the client was not idle but unread.
  void resume_reading();

  uint64_t id() const { return id_; }
  bool is_open() const { return phase_ == Phase::Open; }
  const ListenerConfig& listener() const;
  unsigned listener_index() const { return listener_index_; }
  const std::string& context() const { return context_; }
  void set_context(std::string ctx) { context_ = std::move(ctx); }
  // The channels it is subscribed to, in the order it joined them: the worker's bookkeeping of
  // where it sits in each (changed by Worker::subscribe and friends only), each naming its channel.
  std::vector<SubSlot>& subscriptions() { return subs_; }
  const std::vector<SubSlot>& subscriptions() const { return subs_; }
  bool subscribed(const std::string& channel) const;
  std::string remote_addr() const { return peer_.text(); }
  uint64_t since_ms() const;

 protected:
  void on_read(const char* data, size_t len) override;
  void on_read_end(int status) override;
  void on_close() override;
  void on_tls_ready() override;
  void on_tls_failed(const std::string& why) override;
  // The wait for handshake budget is the server's, not the client's: its handshake timeout moves on.
  void on_turn_waited(uint32_t ms) override { accepted_s_ += (ms + 500) / 1000; }
  bool admit_tls_records(size_t bytes) override;
  bool ws_message(uint8_t opcode, const uint8_t* data, size_t len) override;
  void ws_output(const uint8_t* data, size_t len) override;
  // Every byte this connection queues once open goes through here: Stream::admit under the
  // worker's output_hard_limit, and over it the connection is closed with 1008 (and counted in
  // meshgate_output_buffer_closes_total{limit="hard"}).
  SendResult admit_output(size_t bytes);

 private:
  enum class Phase : uint8_t { Handshake, Open, Closing };
  // Takes bytes read from the client (`data` is ours to modify) in its current phase. Returns how many
  // were taken: all, or fewer when a message asked to hold (hold_input); the rest is untouched.
  size_t take_input(char* data, size_t len);
  // After input was taken: the read's counters, the message deadline, and the pause; while nothing
  // pauses it, it takes what a hold kept (held_input_) too.
  void input_taken();
  // Asked after each message: true when the queue wants this client paused now.
  bool hold_input();
  // Stops reading when the queue wants this client paused. True when it is paused.
  bool pause_if_queue_full();
  // The queue's two verdicts: its topic's gate is closed (queue/topic_gate.h), and the hub is behind
  // with every client's events (EventIntake's backlog latch). Either pauses it; a true answer is owed
  // a resume (Worker::resume_paused).
  bool topic_gate_closed();
  bool hub_behind();
  // The upgrade request; returns the bytes of it taken (`len` unless the upgrade is done and frames
  // follow the request, which are then the caller's to take).
  size_t read_handshake(const char* data, size_t len);
  size_t read_ws(char* data, size_t len);
  void refuse_handshake(int status, const std::string& message, bool count_as_bad = true);
  void open(const std::string& path, const std::string& query);
  size_t read_tcp(const char* data, size_t len);
  // Checks a connect token and applies its claims. False: refused (`why` says why).
  bool accept_token(const std::string& token, std::string& why);
  void refuse_tcp(const std::string& why);
  void emit_message(bool binary, const char* data, size_t len);
  // An open or close event ("d" JSON) for the queue.
  void emit_event(const std::string& d);
  // The one close path (see the top of this file). Does not close the stream itself: the caller
  // then flushes (close_after_flush) or drops (close_now) what is queued, as its case needs.
  void decide_close(int code, const std::string& reason);

  Worker& worker_;
  uint64_t id_ = 0;
  std::string context_;                 // JSON object text; empty means {}
  std::unique_ptr<std::vector<std::string>> token_channels_;  // a connect token's channels, until open() subscribes them
  std::vector<SubSlot> subs_;
  std::unique_ptr<HttpParser> handshake_;  // only during the WebSocket handshake
  std::unique_ptr<WsSession> ws_;          // WebSocket after the upgrade
  std::unique_ptr<FrameDecoder> framer_;   // TCP
  std::unique_ptr<std::string> held_input_;  // the rest of a read after a hold: only while paused
  uint32_t accepted_s_ = 0, last_rx_s_ = 0, last_ping_s_ = 0, soft_since_s_ = 0, closing_since_s_ = 0;
  uint16_t listener_index_;
  uint16_t close_code_ = 0;             // 0 until decided
  bool paused_by_queue_ = false;        // not read: its queue topic is full, or the hub is behind
  bool read_ended_ = false;             // the peer's end was read: no holding any more
  uint32_t partial_since_s_ = 0;        // when the unfinished message (or frame) it sends began; 0: none
  Phase phase_ = Phase::Handshake;
  bool guard_ip_ = false;                // the listener's per-IP count holds peer_'s IP
  PeerAddr peer_;                       // its IP and port (text made when asked)
};

}  // namespace mg
