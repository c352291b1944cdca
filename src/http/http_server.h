// Connections to the hub's HTTP listeners: the control API (HTTP /v1/..., WebSocket /ws/v1,
// /metrics, /healthz, /readyz) and the public route API.
//
// One request is answered at a time per connection: while an API call is out with a worker, reading
// stops and the rest of the input waits (pipelined requests keep their order). After a /ws/v1
// upgrade the connection speaks the envelope over WebSocket, many calls may be in flight (matched by
// "i"), and it can become a queue consumer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "http/http_parser.h"
#include "net/stream.h"
#include "queue/queue_hub.h"
#include "ws/ws_session.h"

namespace mg {

class Hub;

enum class HttpRole { Api, Route };

class HttpConn final : public Stream, public WsOwner, public QueueSink {
 public:
  HttpConn(Hub& hub, HttpRole role, uint64_t serial);
  void start();
  uint64_t serial() const { return serial_; }
  HttpRole role() const { return role_; }
  // An HTTP connection (not WebSocket) that has not completed a request within kRequestTimeoutMs
  // of being ready for one (accept, or the previous answer): idle keep-alive, or a slow sender.
  bool stalled(uint64_t now_ms) const;
  static constexpr uint64_t kRequestTimeoutMs = 15000;
  bool is_websocket() const { return ws_ != nullptr; }

  // HTTP: answers the current request and resumes reading.
  void respond(int status, const char* content_type, const std::string& body,
               const std::vector<std::pair<std::string, std::string>>& extra = {});
  void respond_json(int status, const std::string& body,
                    const std::vector<std::pair<std::string, std::string>>& extra = {}) {
    respond(status, "application/json", body, extra);
  }
  // WebSocket: one text message.
  void send_text(const std::string& text);
  // Node shutdown: WebSocket connections get close 1001 and close once it is written; HTTP closes.
  void close_going_away();
  // An API call of this connection came back (WebSocket mode).
  void call_done() { if (in_flight_ > 0) in_flight_--; maybe_resume(); }

  // QueueSink
  bool sink_ready() const override;
  void sink_deliver(std::string json) override;

 protected:
  void on_read(const char* data, size_t len) override;
  void on_read_end(int status) override;
  void on_drained() override;
  void on_close() override;
  void ws_message(uint8_t opcode, const uint8_t* data, size_t len) override;
  void ws_output(const uint8_t* data, size_t len) override;

 private:
  void parse_http();
  void handle_request(const HttpRequest& req);
  void handle_api_request(const HttpRequest& req);
  void upgrade_api(const HttpRequest& req);
  bool authorized(const HttpRequest& req) const;
  void maybe_resume();

  Hub& hub_;
  HttpRole role_;
  uint64_t serial_;
  std::unique_ptr<HttpParser> parser_;
  std::string unparsed_;        // input read while a request was being answered
  bool awaiting_ = false;       // an HTTP request is being answered
  bool keep_alive_ = true;
  std::unique_ptr<WsSession> ws_;
  uint32_t in_flight_ = 0;      // WebSocket calls out with workers
  bool read_paused_ = false;
  bool parsing_ = false;        // inside parse_http (a synchronous answer must not re-enter it)
  bool head_only_ = false;      // answering a HEAD request: headers, no body
  uint64_t ready_since_ms_ = 0; // when this connection became ready for its next request
};

}  // namespace mg
