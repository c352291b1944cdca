#include "http/http_conn.h"

#include "core/log.h"
#include "http/http_response.h"
#include "http/http_server.h"
#include "http/ws_upgrade.h"
#include "ws/ws_frame.h"

namespace mg {

HttpConn::HttpConn(HttpServer& server, uint64_t serial, const HttpLimits& limits)
    : Stream(server.loop()), server_(server), serial_(serial), parser_(std::make_unique<HttpParser>(limits)) {}

bool HttpConn::stalled(uint64_t now_ms) const {
  return !ws_ && pending_.empty() && !closing() && now_ms - ready_since_ms_ > server_.request_timeout_ms();
}

void HttpConn::time_out(uint64_t now_ms) {
  if (!parser_ || !parser_->in_request()) return close_now();
  server_.refusals().count(HttpRefusals::Timeout, now_ms, "request not complete within " +
                                                              std::to_string(server_.request_timeout_ms() / 1000) + " s");
  no_more_ = true;
  write(http_response(408, "application/json", error_body(408, "the request took too long to arrive"), false));
  close_after_flush();
}

void HttpConn::start() {
  ready_since_ms_ = uv_now(loop());
  if (start_reading() != 0) close_now();
}

void HttpConn::on_read(const char* data, size_t len) {
  if (ws_) {
    ws_->feed(const_cast<char*>(data), len);  // our read buffer (or `rest` below): unmasked in place
    if (ws_->finished()) close_after_flush();
    return;
  }
  if (no_more_) return;
  unparsed_.append(data, len);
  if (!parsing_) parse_http();
}

void HttpConn::parse_http() {
  parsing_ = true;
  while (!closing() && !ws_ && !no_more_ && pending_.size() < kMaxPipelined && queued_bytes() < kOutputPause) {
    if (held_) {
      if (!pending_.empty()) break;
      held_ = false;
      dispatch();
      continue;
    }
    if (unparsed_off_ == unparsed_.size()) break;
    size_t used = 0;
    HttpParser::Status st = parser_->feed(unparsed_.data() + unparsed_off_, unparsed_.size() - unparsed_off_, used);
    if (st == HttpParser::Status::NeedMore) {
      unparsed_off_ = unparsed_.size();
      break;
    }
    if (st == HttpParser::Status::Error) {
      // Answered in its turn, after the requests before it; nothing after it is read.
      no_more_ = true;
      unparsed_.clear();
      unparsed_off_ = 0;
      pending_.push_back(Pending{});
      pending_.back().seq = current_ = next_seq_++;
      pending_.back().keep_alive = false;
      if (parser_->error_status() == 413)
        server_.refusals().count(HttpRefusals::TooLarge, uv_now(loop()), parser_->error_message());
      respond_json(parser_->error_status(), error_body(parser_->error_status(), parser_->error_message()));
      break;
    }
    unparsed_off_ += used;
    const HttpRequest& req = parser_->request();
    if ((req.upgrade || server_.draining()) && !pending_.empty()) {  // handed over alone, see the header
      held_ = true;
      break;
    }
    dispatch();
  }
  if (unparsed_off_ == unparsed_.size()) {
    // A large read parsed: its copy is in the request now, so keep no second buffer its size while
    // the connection waits for more (thousands of slow senders each hold one).
    if (unparsed_.capacity() > kKeepInputBuffer) std::string().swap(unparsed_);
    unparsed_.clear();
    unparsed_off_ = 0;
  }
  parsing_ = false;
  update_reading();
}

void HttpConn::dispatch() {
  const HttpRequest& req = parser_->request();
  pending_.push_back(Pending{});
  Pending& p = pending_.back();
  p.seq = current_ = next_seq_++;
  p.keep_alive = req.keep_alive;
  p.head_only = req.method == "HEAD";
  if (!req.keep_alive) no_more_ = true;
  on_request(req);
  if (parser_) parser_->next();  // the request is not needed after on_request (none after an upgrade)
}

void HttpConn::respond_to(uint64_t request, int status, const char* content_type, const std::string& body,
                          const Headers& extra) {
  if (closing() || ws_) return;
  auto it = pending_.begin();
  while (it != pending_.end() && it->seq != request) ++it;
  if (it == pending_.end() || it->answered) return;
  if (it != pending_.begin()) {  // earlier answers are due first: keep this one in its slot
    it->answered = true;
    it->status = status;
    it->content_type = content_type;
    it->body = body;
    it->extra = extra;
    return;
  }
  Pending p = std::move(*it);
  pending_.erase(it);
  write_answer(p, status, content_type, body, extra);
  write_answers();
}

void HttpConn::write_answer(const Pending& p, int status, const char* content_type, const std::string& body,
                            const Headers& extra) {
  if (closing()) return;
  // While draining, nothing more is handed over: the last answer due closes the connection.
  bool keep = p.keep_alive && !(server_.draining() && pending_.empty() && !held_);
  std::string response = http_response(status, content_type, body, keep, extra);
  if (p.head_only) response.resize(response.size() - body.size());  // RFC 9110 §9.3.2: no body, same headers
  write(std::move(response));
  if (!keep) {
    pending_.clear();
    close_after_flush();
  }
}

void HttpConn::write_answers() {
  while (!pending_.empty() && pending_.front().answered && !closing()) {
    Pending p = std::move(pending_.front());
    pending_.erase(pending_.begin());
    write_answer(p, p.status, p.content_type.c_str(), p.body, p.extra);
  }
  if (closing()) return;
  if (pending_.empty()) {
    ready_since_ms_ = uv_now(loop());
    if (peer_done_) return close_after_flush();
  }
  if (!parsing_) parse_http();
}

void HttpConn::update_reading() {
  if (ws_ || closing()) return;
  bool pause = held_ || no_more_ || pending_.size() >= kMaxPipelined || queued_bytes() >= kOutputPause;
  if (pause && !read_paused_) pause_reading();  // the rest waits in the socket
  else if (!pause && read_paused_) resume_reading();
}

int HttpConn::upgrade_websocket(const HttpRequest& req, uint32_t max_message, uint64_t max_output, std::string& error) {
  std::string response;
  int status = check_ws_upgrade(req, response, error);
  if (status != 0) {
    if (!pending_.empty()) pending_.back().keep_alive = false;
    no_more_ = true;
    return status;
  }
  write(std::move(response));
  pending_.clear();  // this request was handed over alone
  ws_ = std::make_unique<WsSession>(this, max_message);
  ws_max_output_ = max_output;
  parser_.reset();
  if (read_paused_) {
    resume_reading();
    if (closing()) return 0;
  }
  std::string rest = unparsed_.substr(unparsed_off_);
  unparsed_.clear();
  unparsed_off_ = 0;
  if (!rest.empty()) on_read(rest.data(), rest.size());
  return 0;
}

void HttpConn::pause_reading() {
  if (read_paused_ || closing()) return;
  stop_reading();
  read_paused_ = true;
}

void HttpConn::resume_reading() {
  if (!read_paused_ || closing()) return;
  read_paused_ = false;
  if (start_reading() != 0) close_now();
}

// Never holds: an API connection's own pause (calls in flight) stops reading between reads.
bool HttpConn::ws_message(uint8_t opcode, const uint8_t* data, size_t len) {
  on_ws_message(opcode, data, len);
  return false;
}

SendResult HttpConn::admit_ws_output(size_t bytes) {
  const SendResult r = admit(bytes, ws_max_output_);
  if (r == SendResult::BufferFull) close_now();
  return r;
}

SendResult HttpConn::send_text(const std::string& text) {
  if (!ws_can_send()) return SendResult::Closing;
  const SendResult r = admit_ws_output(text.size());
  if (r == SendResult::BufferFull)
    LOG_WARN("API connection closed: more than %llu bytes waiting to be written (a consumer that does not read)",
             static_cast<unsigned long long>(ws_max_output_));
  if (r != SendResult::Ok) return r;
  char head[kWsMaxHeader];
  write_copy(std::string_view(head, ws_frame_header(kWsText, text.size(), head)), text);
  return SendResult::Ok;
}

void HttpConn::ws_output(const uint8_t* data, size_t len) {
  // Pongs and close frames from a client that never reads count against the same bound.
  if (admit_ws_output(len) == SendResult::Ok) write(std::string(reinterpret_cast<const char*>(data), len));
}

void HttpConn::on_drained() {
  if (ws_) return on_ws_drained();
  if (read_paused_ && !parsing_) parse_http();  // the answers were taken: parse what waits, read again
}

void HttpConn::on_read_end(int status) {
  if (!ws_ && status == UV_EOF && !pending_.empty() && !closing()) {
    // The client sent everything and waits for its answers: close once they are written.
    peer_done_ = no_more_ = true;
    read_paused_ = true;  // Stream stopped reading; never start again
    return;
  }
  close_now();
}

void HttpConn::close_going_away() {
  if (ws_ && !closing()) {
    ws_->close(1001, "server shutting down");
    close_after_flush();
  } else {
    close_now();
  }
}

void HttpConn::on_close() {
  on_conn_closed();
  server_.forget(serial_);
}

}  // namespace mg
