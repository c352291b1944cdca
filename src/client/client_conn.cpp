#include "client/client_conn.h"

#include <algorithm>
#include <ctime>

#include "client/client_events.h"
#include "client/connect_token.h"
#include "client/worker.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/snowflake.h"
#include "core/utf8.h"
#include "http/http_response.h"
#include "http/url_query.h"
#include "http/ws_upgrade.h"
#include "net/listen_socket.h"
#include "ws/ws_frame.h"

namespace mg {

namespace {
constexpr uint32_t kHandshakeTimeoutS = 10;  // a client that never finishes its upgrade request
constexpr uint32_t kCloseLingerS = 5;        // how long a closing connection may take to flush
}  // namespace

ClientConn::ClientConn(Worker& w, unsigned listener_index)
    : Stream(w.loop()), worker_(w), listener_index_(static_cast<uint16_t>(listener_index)) {}

const ListenerConfig& ClientConn::listener() const { return worker_.config().listeners[listener_index_]; }

ListenerMetrics& listener_metrics(unsigned i) { return metrics().listeners[i]; }

uint64_t ClientConn::since_ms() const { return snowflake_unix_ms(id_); }

void ClientConn::start() {
  const PeerAddr p = peer_addr(tcp());
  if (p.family) peer_ = p;  // else keep the IP the listener's guard counted (set_guard_ip)
  accepted_s_ = last_rx_s_ = last_ping_s_ = worker_.now_s();
  const ListenerConfig& l = listener();
  const TlsSlot* tls = worker_.listener_shared(listener_index_).tls.get();
  if (tls) use_tls(tls->current().get());  // the session keeps its own reference to the context
  if (l.type == ListenerType::Tcp) {
    framer_ = std::make_unique<FrameDecoder>(l.framing, l.max_message);
    if (!tls && !worker_.limits().needs_token(listener_index_)) open("", "");  // else after TLS / the token
  } else {
    const WorkerLimits& lim = worker_.limits();
    handshake_ = std::make_unique<HttpParser>(HttpLimits{lim.max_header_bytes, lim.max_headers, 0});
  }
  if (start_reading() != 0) close_now();
}

void ClientConn::on_tls_ready() {
  if (!ws_ && !handshake_ && !worker_.limits().needs_token(listener_index_) && phase_ == Phase::Handshake) open("", "");
}

void ClientConn::on_tls_failed(const std::string& why) {
  // Before the handshake finished it is a refusal; after it (a bad record from a client that was
  // let in, possibly long open) a protocol error. Either way the connection ends here, through the
  // one close path: an open one leaves the worker's tables and its close event goes out (1006: no
  // close frame was exchanged). The stream closes once the alert is flushed.
  if (tls_established()) inc(metrics().protocol_errors);
  else inc(metrics().refused[static_cast<int>(RefuseReason::TlsHandshake)]);
  LOG_DEBUG("TLS from %s failed: %s", remote_addr().c_str(), why.c_str());
  decide_close(1006, "TLS error");
}

bool ClientConn::accept_token(const std::string& token, std::string& why) {
  const WorkerLimits& lim = worker_.limits();
  ConnectClaims claims;
  why = verify_connect_token(token, lim.token_secrets[listener_index_], static_cast<int64_t>(time(nullptr)),
                             TokenLimits{lim.max_context_bytes, lim.max_context_keys, lim.max_channels, limit_defaults::kMaxTokenBytes}, claims);
  if (!why.empty()) {
    inc(metrics().refused[static_cast<int>(RefuseReason::Token)]);
    return false;
  }
  context_ = std::move(claims.context);
  if (!claims.channels.empty()) {  // subscribed in open(), with the connection
    token_channels_ = std::make_unique<std::vector<std::string>>(std::move(claims.channels));
  }
  return true;
}

void ClientConn::refuse_tcp(const std::string& why) {
  std::string line = "error: " + why;
  write(encode_frame(listener().framing, line.data(), line.size()));
  decide_close(1008, why);
  close_after_flush();
}

void ClientConn::on_read(const char* data, size_t len) {
  inc(listener_metrics(listener_index_).bytes_in, len);
  last_rx_s_ = worker_.now_s();
  if (held_input_) {  // not read while input is held; kept in order all the same
    held_input_->append(data, len);
    return;
  }
  // Stream hands us its own buffer (the loop's read buffer or the TLS plaintext): the codec may
  // unmask the payload in place.
  const size_t used = take_input(const_cast<char*>(data), len);
  if (used < len) held_input_ = std::make_unique<std::string>(data + used, len - used);
  input_taken();
}

size_t ClientConn::take_input(char* data, size_t len) {
  size_t off = 0;
  if (phase_ == Phase::Handshake) {
    if (!handshake_) return read_tcp(data, len);  // a TCP client's connect token (its TLS handshake is done)
    off = read_handshake(data, len);
    if (phase_ != Phase::Open || off == len) return len;  // frames may come right behind the request
  }
  switch (phase_) {
    case Phase::Handshake:
      return len;
    case Phase::Open:
      return off + (ws_ ? read_ws(data + off, len - off) : read_tcp(data + off, len - off));
    case Phase::Closing:
      // We sent a close frame and wait for the client's (RFC 6455 §7.1.1); anything else is ignored.
      if (ws_ && !closing()) {
        ws_->feed(data + off, len - off);
        if (ws_->input_ended()) close_after_flush();
      }
      return len;
  }
  return len;
}

size_t ClientConn::read_ws(char* data, size_t len) {
  const size_t used = ws_->feed(data, len);
  if (ws_->finished()) {
    uint16_t code = ws_->close_code();
    if (code == 1002 || code == 1007 || code == 1009) inc(metrics().protocol_errors);
    decide_close(code, ws_->close_reason());
    close_after_flush();
  }
  return used;
}

void ClientConn::input_taken() {
  for (;;) {
    // Counted once per read: the counter is shared by every worker, an atomic add per message would
    // bounce its cache line between them.
    if (uint32_t n = worker_.take_messages_read()) inc(listener_metrics(listener_index_).messages_in, n);
    // A message begun and not finished starts the message deadline (tick): a client that trickles
    // one byte a second is closed, not kept forever. (Held input is not one: a hold is at a boundary.)
    if (phase_ == Phase::Open) {
      const bool partial = ws_ ? !ws_->idle() : framer_ && framer_->buffered() > 0;
      if (!partial) partial_since_s_ = 0;
      else if (!partial_since_s_) partial_since_s_ = worker_.now_s();
    }
    if (pause_if_queue_full() || !held_input_) return;
    // A message asked to hold, and the queue has caught up since: go on with the rest now.
    std::unique_ptr<std::string> in = std::move(held_input_);
    const size_t used = take_input(in->data(), in->size());
    if (used < in->size()) {
      in->erase(0, used);
      held_input_ = std::move(in);
    }
  }
}

bool ClientConn::hold_input() {
  if (phase_ != Phase::Open || closing() || read_ended_) return false;
  return topic_gate_closed() || hub_behind();
}

bool ClientConn::topic_gate_closed() {
  TopicGate* gate = worker_.listener_shared(listener_index_).gate.get();
  return gate && gate->should_pause();
}

bool ClientConn::hub_behind() { return worker_.host().event_intake().backlog().should_pause(); }

bool ClientConn::pause_if_queue_full() {
  // Its topic is full, or the hub is behind with the events of every client (Worker::emit): what
  // was taken is in the queue; the rest of the read (held_input_) and what follows it in the socket
  // (TCP slows the client) wait until the topic is down to half its bound, or the hub to its
  // low-water mark.
  if (phase_ != Phase::Open || closing() || read_ended_) return false;
  const bool topic_full = topic_gate_closed();
  if (!topic_full && !hub_behind()) return false;
  if (!paused_by_queue_) {
    if (!topic_full) inc(metrics().queue_backlog_pauses);
    stop_reading();
    paused_by_queue_ = true;
  }
  return true;
}

void ClientConn::resume_reading() {
  if (!paused_by_queue_ || closing()) return;
  if (topic_gate_closed() || hub_behind()) return;
  paused_by_queue_ = false;
  last_rx_s_ = worker_.now_s();
  if (held_input_) {  // what the read that paused it held is read first
    input_taken();
    if (paused_by_queue_ || closing()) return;
  }
  if (start_reading() != 0) close_now();
}

size_t ClientConn::read_handshake(const char* data, size_t len) {
  size_t used = 0;
  HttpParser::Status st = handshake_->feed(data, len, used);
  if (st == HttpParser::Status::NeedMore) return len;
  if (st == HttpParser::Status::Error) {
    refuse_handshake(handshake_->error_status(), handshake_->error_message());
    return len;
  }
  const HttpRequest& req = handshake_->request();
  const ListenerConfig& l = listener();
  if (!l.path.empty() && req.path != l.path) {
    refuse_handshake(404, "no WebSocket endpoint at " + req.path);
    return len;
  }
  std::string response, error;
  int status = check_ws_upgrade(req, response, error);
  if (status != 0) {
    refuse_handshake(status, error);
    return len;
  }
  if (!l.origins.empty()) {
    const std::string* origin = req.header("origin");
    if (!origin || std::find(l.origins.begin(), l.origins.end(), *origin) == l.origins.end()) {
      inc(metrics().refused[static_cast<int>(RefuseReason::Origin)]);
      refuse_handshake(403, "origin not allowed", false);
      return len;
    }
  }
  bool needs_token = worker_.limits().needs_token(listener_index_);
  if (needs_token) {
    std::string token, why;
    query_param(req.query, "token", token);
    if (!accept_token(token, why)) {
      refuse_handshake(401, "connect token refused: " + why, false);
      return len;
    }
  }
  std::string path = req.path, query = needs_token ? query_without(req.query, "token") : req.query;
  handshake_.reset();
  write(std::move(response));
  ws_ = std::make_unique<WsSession>(this, l.max_message);
  open(path, query);
  return used;
}

void ClientConn::refuse_handshake(int status, const std::string& message, bool count_as_bad) {
  if (count_as_bad) inc(metrics().refused[static_cast<int>(RefuseReason::BadHandshake)]);
  std::vector<std::pair<std::string, std::string>> extra;
  if (status == 426) extra.emplace_back("Sec-WebSocket-Version", "13");
  write(http_response(status, "text/plain", message + "\n", false, extra));
  decide_close(1002, message);
  handshake_.reset();
  close_after_flush();
}

void ClientConn::open(const std::string& path, const std::string& query) {
  id_ = worker_.next_client_id();
  phase_ = Phase::Open;
  worker_.register_open(this);
  if (token_channels_) {
    for (const std::string& ch : *token_channels_) worker_.subscribe(this, ch);
    token_channels_.reset();
  }
  const ListenerConfig& l = listener();
  if (!l.events) return;
  emit_event(client_open_event(l.name, remote_addr(), l.type == ListenerType::Ws, path, query));
}

size_t ClientConn::read_tcp(const char* data, size_t len) {
  size_t used = len;
  FrameDecoder::Status st = framer_->feed(data, len, [this](const char* p, size_t n) {
    if (phase_ == Phase::Handshake) {  // the first message is the connect token
      std::string token(p, n), why;
      if (token.rfind("token=", 0) == 0) token.erase(0, 6);
      if (accept_token(token, why)) {
        open("", "");
      } else {
        refuse_tcp("connect token refused: " + why);
        framer_->stop();
      }
      return false;
    }
    worker_.count_message_read();
    emit_message(!is_valid_utf8(p, n), p, n);
    if (phase_ != Phase::Open) {
      framer_->stop();
      return false;
    }
    return hold_input();
  }, &used);
  if (st == FrameDecoder::Status::TooLong) {
    inc(metrics().protocol_errors);
    decide_close(1009, "message too long");
    close_after_flush();
  }
  return used;
}

bool ClientConn::ws_message(uint8_t opcode, const uint8_t* data, size_t len) {
  worker_.count_message_read();
  emit_message(opcode == kWsBinary, reinterpret_cast<const char*>(data), len);
  return hold_input();
}

SendResult ClientConn::admit_output(size_t bytes) {
  const SendResult r = admit(bytes, worker_.limits().output_hard_limit);
  if (r == SendResult::BufferFull) {
    inc(metrics().output_closes[static_cast<int>(OutputLimit::Hard)]);
    LOG_DEBUG("client %llu closed: output buffer over the hard limit", static_cast<unsigned long long>(id_));
    decide_close(1008, "output buffer limit");
    close_now();
  }
  return r;
}

bool ClientConn::admit_tls_records(size_t bytes) {
  // The same bound for TLS: a client that floods KeyUpdates (each answered with one of ours) and
  // never reads must not grow our memory past the hard limit either. Only a full buffer drops them:
  // a record of a stream that is closing still goes out (the session's keys have moved on).
  return admit_output(bytes) != SendResult::BufferFull;
}

void ClientConn::ws_output(const uint8_t* data, size_t len) {
  // Pongs and close frames count against the same bound: a client that sends pings and never
  // reads must not grow our memory.
  if (admit_output(len) == SendResult::Ok) write(std::string(reinterpret_cast<const char*>(data), len));
}

void ClientConn::emit_message(bool binary, const char* data, size_t len) {
  if (phase_ != Phase::Open) return;  // after its close event, nothing more of this client reaches consumers
  std::string& out = worker_.event_data();
  const size_t start = out.size();
  append_client_message_event(out, binary, data, len);  // straight into the worker's batch
  worker_.emit(listener_index_, id_, context_, start);
}

void ClientConn::emit_event(const std::string& d) {
  std::string& out = worker_.event_data();
  const size_t start = out.size();
  out += d;
  worker_.emit(listener_index_, id_, context_, start);
}

bool ClientConn::subscribed(const std::string& channel) const {
  for (const SubSlot& s : subs_)
    if (s.channel->first == channel) return true;
  return false;
}

SendResult ClientConn::send(const OutMessage& msg) {
  if (phase_ != Phase::Open || (ws_ && !ws_->can_send())) return SendResult::Closing;
  const Chunk& chunk = ws_ ? msg.ws : msg.for_framing(listener().framing);
  const SendResult r = admit_output(chunk->size());
  if (r != SendResult::Ok) return r;
  write(chunk);
  ListenerMetrics& m = listener_metrics(listener_index_);
  inc(m.messages_out);
  inc(m.bytes_out, chunk->size());
  return SendResult::Ok;
}

void ClientConn::close_with(int code, const std::string& reason) {
  if (closing()) return;
  decide_close(code, reason);
  if (ws_) {
    ws_->close(static_cast<uint16_t>(code), reason);  // then wait for the client's close frame
    if (paused_by_queue_) {  // read it: a closing client sends nothing more into the queue
      paused_by_queue_ = false;
      if (held_input_) input_taken();  // first what a hold kept: its close frame may be there
      if (!closing() && start_reading() != 0) close_now();
    }
  } else {
    held_input_.reset();
    close_after_flush();
  }
}

void ClientConn::on_read_end(int status) {
  if (held_input_) {  // TLS: the close_notify came in the read that held; the client's last words first
    read_ended_ = true;
    input_taken();
    if (closed()) return;
  }
  if (status == UV_EOF && !ws_) decide_close(1000, "client closed the connection");
  else decide_close(1006, status == UV_EOF ? "connection closed without a close frame" : uv_strerror(status));
  close_now();
}

void ClientConn::tick(uint32_t now) {
  if (closed()) return;
  if (phase_ == Phase::Handshake) {
    if (waiting_for_turn()) return;  // not read for want of handshake budget: not the client's delay
    if (now - accepted_s_ >= kHandshakeTimeoutS) {  // from accept: trickling bytes does not help
      inc(metrics().refused[static_cast<int>(RefuseReason::HandshakeTimeout)]);
      close_now();
    }
    return;
  }
  if (phase_ == Phase::Closing || closing()) {
    if (now - closing_since_s_ >= kCloseLingerS) close_now();  // the client never answered our close
    return;
  }
  const ListenerConfig& l = listener();
  if (paused_by_queue_) {
    last_rx_s_ = now;  // unread, not idle
    if (partial_since_s_) partial_since_s_ = now;  // nor slow
    resume_reading();  // a pause for events in flight ends without a word from the hub
  }
  if (l.idle_timeout && now - last_rx_s_ >= l.idle_timeout) {
    close_with(1001, "idle timeout");
    return;
  }
  const WorkerLimits& lim = worker_.limits();
  if (lim.message_timeout && partial_since_s_ && !paused_by_queue_ && now - partial_since_s_ >= lim.message_timeout) {
    close_with(1008, "message not completed within " + std::to_string(lim.message_timeout) + " s");
    return;
  }
  if (queued_bytes() > lim.output_soft_limit) {
    if (!soft_since_s_) soft_since_s_ = now;
    if (now - soft_since_s_ >= lim.output_soft_seconds) {
      inc(metrics().output_closes[static_cast<int>(OutputLimit::Soft)]);
      decide_close(1008, "output buffer limit");
      close_now();
      return;
    }
  } else {
    soft_since_s_ = 0;
  }
  if (ws_ && l.ping_interval && now - last_ping_s_ >= l.ping_interval) {
    ws_->ping();
    last_ping_s_ = now;
  }
}

void ClientConn::decide_close(int code, const std::string& reason) {
  if (close_code_) return;
  close_code_ = static_cast<uint16_t>(code);
  const bool was_open = phase_ == Phase::Open;
  phase_ = Phase::Closing;  // set here only: Open -> Closing happens once, with the unregister below
  closing_since_s_ = worker_.now_s();  // a close frame or TLS alert gets a few seconds to go out
  if (!was_open) return;
  worker_.unregister(this);
  metrics().count_close(code);
  const ListenerConfig& l = listener();
  if (!l.events) return;
  emit_event(client_close_event(code, reason));
}

void ClientConn::on_close() {
  decide_close(1006, "connection lost");
  if (guard_ip_) worker_.listener_shared(listener_index_).guard->release(peer_.ip_text());
  worker_.forget(this);
}

}  // namespace mg
