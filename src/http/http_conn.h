// One HTTP/1.1 server connection: keep-alive, pipelining, back-pressure, and the switch to
// WebSocket. What a request means is the subclass's job (api/api_server.h, route/route_api.h).
//
// Pipelining: requests are handed to on_request() as they arrive, up to kMaxPipelined of them
// unanswered (the subclass may answer later, e.g. after a worker reported back); the answers are
// written strictly in request order (one answered early waits in its slot). Reading pauses while
// kMaxPipelined are unanswered, while kOutputPause bytes wait for the client (a client that
// pipelines without reading the answers), and while an upgrade request, or any request while the
// server drains, waits for the answers before it to go out (it is handed over alone). After a
// request without keep-alive nothing more is read. After upgrade_websocket() the connection
// carries WebSocket messages instead (on_ws_message), its output bounded by the limit given there.
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
  // HTTP: output waiting beyond this pauses reading until the client has taken it.
  static constexpr size_t kOutputPause = 1 << 20;
  // HTTP: requests handed over and not answered yet, at most; reading pauses at this many.
  static constexpr size_t kMaxPipelined = 16;
  // HTTP: the input buffer is freed, once parsed, when it has grown beyond this.
  static constexpr size_t kKeepInputBuffer = 16 * 1024;

  HttpConn(HttpServer& server, uint64_t serial, const HttpLimits& limits);
  void start();
  uint64_t serial() const { return serial_; }
  // HTTP: no request completed within the server's request_timeout_ms of being ready for one
  // (idle keep-alive, or a slow sender).
  bool stalled(uint64_t now_ms) const;
  // Closes a stalled connection: with 408 (counted as a refusal) when part of a request came,
  // silently when none did (an idle keep-alive connection).
  void time_out(uint64_t now_ms);
  bool is_websocket() const { return ws_ != nullptr; }

  // HTTP: the request on_request() was last called for. An answer given after on_request()
  // returned must name its request: keep this and use respond_to().
  uint64_t current_request() const { return current_; }
  // HTTP: answers request `request` (ignored if it was answered, or the connection is closing).
  // Written once every earlier request's answer is; while the server is draining, the answer to
  // the last request handed over carries "Connection: close".
  void respond_to(uint64_t request, int status, const char* content_type, const std::string& body,
                  const Headers& extra = {});
  // HTTP: answers the current request (from on_request()).
  void respond(int status, const char* content_type, const std::string& body, const Headers& extra = {}) {
    respond_to(current_, status, content_type, body, extra);
  }
  void respond_json(int status, const std::string& body, const Headers& extra = {}) {
    respond(status, "application/json", body, extra);
  }
  // WebSocket: one text message. Closing when the session sends no more (nothing queued);
  // BufferFull when the peer has more than the output limit waiting (the connection is closed).
  SendResult send_text(const std::string& text);
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
  // Every byte queued in WebSocket mode goes through here: Stream::admit under the upgrade's
  // max_output, and over it the connection is closed at once (a consumer or client that does not read).
  SendResult admit_ws_output(size_t bytes);
  uint64_t ws_max_output() const { return ws_max_output_; }

 private:
  void on_read(const char* data, size_t len) final;
  void on_read_end(int status) final;
  void on_drained() final;
  void on_close() final;
  bool ws_message(uint8_t opcode, const uint8_t* data, size_t len) final;
  void ws_output(const uint8_t* data, size_t len) final;
  // A request handed over and not yet written out; the answer's parts while earlier ones are due.
  struct Pending {
    uint64_t seq = 0;
    bool keep_alive = true;
    bool head_only = false;  // HEAD: headers, no body
    bool answered = false;
    int status = 0;
    std::string content_type, body;
    Headers extra;
  };
  void parse_http();
  void dispatch();
  // Writes the answers at the front of pending_ that are ready, in order.
  void write_answers();
  void write_answer(const Pending& p, int status, const char* content_type, const std::string& body, const Headers& extra);
  // Pauses or resumes reading as the bounds above say; parses what waits when reading goes on.
  void update_reading();

  HttpServer& server_;
  uint64_t serial_;
  std::unique_ptr<HttpParser> parser_;
  std::unique_ptr<WsSession> ws_;
  uint64_t ws_max_output_ = 0;
  std::string unparsed_;         // input not parsed yet, from unparsed_off_ on
  size_t unparsed_off_ = 0;
  std::vector<Pending> pending_;  // oldest first, at most kMaxPipelined
  uint64_t next_seq_ = 1;
  uint64_t current_ = 0;
  bool held_ = false;            // the parser holds a complete request that waits for pending_ to empty
  bool no_more_ = false;         // a request without keep-alive (or a malformed one) was taken: read no more
  bool peer_done_ = false;       // the client closed its side: close once the answers are written
  bool read_paused_ = false;
  bool parsing_ = false;         // inside parse_http (a synchronous answer must not re-enter it)
  uint64_t ready_since_ms_ = 0;  // when this connection became ready for its next request
};

}  // namespace mg
