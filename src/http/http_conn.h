// One HTTP/1.1 server connection: keep-alive, pipelining, back-pressure, and the switch to
// WebSocket. What a request means is the subclass's job (api/api_server.h, route/route_api.h).
//
// One request is answered at a time: while it is out (the subclass answers later, e.g. after a
// worker reported back), reading stops and the rest of the input waits, so pipelined requests keep
// their order. A client that pipelines without reading the answers stops being read once
// kOutputPause bytes wait for it. After upgrade_websocket() the connection carries WebSocket
// messages instead (on_ws_message), its output bounded by the limit given there.
//
// Lifetime as Stream's: created with new by HttpServer, deleted after on_conn_closed(). Replies that
// come back later must find it again by serial (HttpServer::find), never keep the pointer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "http/http_parser.h"
#include "net/stream.h"
#include "ws/ws_session.h"

namespace mg {

class HttpServer;

class HttpConn : public Stream, public WsOwner {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;
  // An HTTP connection (not WebSocket) that has not completed a request within this long of being
  // ready for one (accept, or the previous answer): idle keep-alive, or a slow sender.
  static constexpr uint64_t kRequestTimeoutMs = 15000;
  // HTTP: output waiting beyond this pauses reading until the client has taken it.
  static constexpr size_t kOutputPause = 1 << 20;

  HttpConn(HttpServer& server, uint64_t serial, const HttpLimits& limits);
  void start();
  uint64_t serial() const { return serial_; }
  bool stalled(uint64_t now_ms) const;
  bool is_websocket() const { return ws_ != nullptr; }

  // HTTP: answers the current request and goes on with the next one. While the server is draining
  // the answer carries "Connection: close".
  void respond(int status, const char* content_type, const std::string& body, const Headers& extra = {});
  void respond_json(int status, const std::string& body, const Headers& extra = {}) {
    respond(status, "application/json", body, extra);
  }
  // WebSocket: one text message. A peer with more than the output limit waiting is closed.
  void send_text(const std::string& text);
  // Node shutdown: a WebSocket gets close 1001 and closes once it is written; HTTP closes now.
  void close_going_away();

 protected:
  ~HttpConn() override = default;
  // A complete request: answer it with respond() (now or later), or upgrade_websocket().
  virtual void on_request(const HttpRequest& req) = 0;
  // The JSON body of an error answer in this API's shape (a malformed request: 400, 413, 431).
  virtual std::string error_body(int status, const std::string& message) const = 0;
  // After upgrade_websocket(): a complete text or binary message.
  virtual void on_ws_message(uint8_t opcode, const uint8_t* data, size_t len) { (void)opcode, (void)data, (void)len; }
  // After upgrade_websocket(): everything queued was written.
  virtual void on_ws_drained() {}
  // Last call before delete.
  virtual void on_conn_closed() {}

  // Answers the current request with 101 and speaks WebSocket from now on: messages up to
  // `max_message` bytes, at most `max_output` bytes waiting to be written. Returns 0, or the HTTP
  // status of a bad upgrade request with `error` set (then answer it with respond()).
  int upgrade_websocket(const HttpRequest& req, uint32_t max_message, uint64_t max_output, std::string& error);
  // Stop and resume reading, for a subclass that bounds its own work in flight (WebSocket mode).
  void pause_reading();
  void resume_reading();
  bool reading_paused() const { return read_paused_; }
  HttpServer& server() { return server_; }
  const HttpServer& server() const { return server_; }
  bool ws_can_send() const { return ws_ && ws_->can_send() && !closing(); }
  uint64_t ws_max_output() const { return ws_max_output_; }

 private:
  void on_read(const char* data, size_t len) final;
  void on_read_end(int status) final;
  void on_drained() final;
  void on_close() final;
  void ws_message(uint8_t opcode, const uint8_t* data, size_t len) final;
  void ws_output(const uint8_t* data, size_t len) final;
  void parse_http();

  HttpServer& server_;
  uint64_t serial_;
  std::unique_ptr<HttpParser> parser_;
  std::unique_ptr<WsSession> ws_;
  uint64_t ws_max_output_ = 0;
  std::string unparsed_;         // input read while a request was being answered
  bool awaiting_ = false;        // an HTTP request is being answered
  bool keep_alive_ = true;
  bool read_paused_ = false;
  bool parsing_ = false;         // inside parse_http (a synchronous answer must not re-enter it)
  bool head_only_ = false;       // answering a HEAD request: headers, no body
  uint64_t ready_since_ms_ = 0;  // when this connection became ready for its next request
};

}  // namespace mg
