#include "http/http_conn.h"

#include "core/log.h"
#include "http/http_response.h"
#include "http/http_server.h"
#include "ws/ws_frame.h"
#include "ws/ws_upgrade.h"

namespace mg {

HttpConn::HttpConn(HttpServer& server, uint64_t serial, const HttpLimits& limits)
    : Stream(server.loop()), server_(server), serial_(serial), parser_(std::make_unique<HttpParser>(limits)) {}

bool HttpConn::stalled(uint64_t now_ms) const {
  return !ws_ && !awaiting_ && !closing() && now_ms - ready_since_ms_ > kRequestTimeoutMs;
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
  unparsed_.append(data, len);
  if (!awaiting_) parse_http();
}

void HttpConn::parse_http() {
  parsing_ = true;
  while (!awaiting_ && !unparsed_.empty() && !closing() && !ws_ && queued_bytes() < kOutputPause) {
    size_t used = 0;
    HttpParser::Status st = parser_->feed(unparsed_.data(), unparsed_.size(), used);
    if (st == HttpParser::Status::NeedMore) {
      unparsed_.clear();
      break;
    }
    if (st == HttpParser::Status::Error) {
      keep_alive_ = false;
      unparsed_.clear();
      respond_json(parser_->error_status(), error_body(parser_->error_status(), parser_->error_message()));
      break;
    }
    std::string rest = unparsed_.substr(used);
    unparsed_.swap(rest);
    awaiting_ = true;
    keep_alive_ = parser_->request().keep_alive;
    head_only_ = parser_->request().method == "HEAD";
    on_request(parser_->request());
  }
  parsing_ = false;
  bool backlogged = !ws_ && queued_bytes() >= kOutputPause;
  if ((awaiting_ || backlogged) && !read_paused_ && !closing()) pause_reading();  // the rest waits in the socket
}

void HttpConn::respond(int status, const char* content_type, const std::string& body, const Headers& extra) {
  if (closing()) return;
  bool keep = keep_alive_ && !server_.draining();
  std::string response = http_response(status, content_type, body, keep, extra);
  if (head_only_) response.resize(response.size() - body.size());  // RFC 9110 §9.3.2: no body, same headers
  write(std::move(response));
  awaiting_ = false;
  head_only_ = false;
  ready_since_ms_ = uv_now(loop());
  if (!keep) {
    close_after_flush();
    return;
  }
  parser_->next();
  if (read_paused_ && queued_bytes() < kOutputPause) resume_reading();
  if (!unparsed_.empty() && !parsing_) parse_http();
}

int HttpConn::upgrade_websocket(const HttpRequest& req, uint32_t max_message, uint64_t max_output, std::string& error) {
  std::string response;
  int status = check_ws_upgrade(req, response, error);
  if (status != 0) {
    keep_alive_ = false;
    return status;
  }
  write(std::move(response));
  awaiting_ = false;
  ws_ = std::make_unique<WsSession>(this, max_message);
  ws_max_output_ = max_output;
  parser_.reset();
  if (read_paused_) {
    resume_reading();
    if (closing()) return 0;
  }
  std::string rest;
  rest.swap(unparsed_);
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

void HttpConn::ws_message(uint8_t opcode, const uint8_t* data, size_t len) { on_ws_message(opcode, data, len); }

void HttpConn::send_text(const std::string& text) {
  if (!ws_can_send()) return;
  if (queued_bytes() + text.size() > ws_max_output_) {
    LOG_WARN("API connection closed: more than %llu bytes waiting to be written (a consumer that does not read)",
             static_cast<unsigned long long>(ws_max_output_));
    close_now();
    return;
  }
  write(ws_encode_frame(kWsText, text.data(), text.size()));
}

void HttpConn::ws_output(const uint8_t* data, size_t len) {
  if (queued_bytes() + len > ws_max_output_) {
    close_now();  // pings from a client that never reads
    return;
  }
  write(std::string(reinterpret_cast<const char*>(data), len));
}

void HttpConn::on_drained() {
  if (ws_) return on_ws_drained();
  if (read_paused_ && !awaiting_) {  // the answers were taken: read and parse again
    resume_reading();
    if (!closing() && !unparsed_.empty()) parse_http();
  }
}

void HttpConn::on_read_end(int) { close_now(); }

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
