// The control API on its HTTP listener: /v1/<group>/<name> (POST), /ws/v1 (the envelope over
// WebSocket), /healthz, /readyz, /metrics, /v1/nodes and the dashboard (PROTOCOL.md §5).
//
// Over HTTP pipelined calls run side by side (HttpConn bounds them and writes the answers in
// request order). Over /ws/v1 many calls may be in flight, matched by "i"; reading pauses at
// kMaxCallsInFlight. A /ws/v1 connection can become a queue consumer: it is the queue's sink and
// writes each event it is handed as a queue.pop message.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "api/api_guard.h"
#include "api/api_host.h"
#include "core/metrics.h"
#include "http/http_server.h"
#include "queue/queue_hub.h"

namespace mg {

class ApiServer;

class ApiConn final : public HttpConn, public QueueSink {
 public:
  static constexpr uint32_t kMaxCallsInFlight = 1024;  // per /ws/v1 connection
  // A consumer is handed events while less than this is waiting to be written to it (or a quarter
  // of [api] max_output, when that is smaller).
  static constexpr uint64_t kSinkWindow = 256 * 1024;

  ApiConn(ApiServer& api, HttpServer& server, uint64_t serial);
  // A call of this WebSocket connection was answered.
  void call_done();

  // QueueSink
  bool sink_ready() const override;
  void sink_deliver(const QueueEventRef& ev, unsigned this_node, uint64_t seq) override;

 private:
  void on_request(const HttpRequest& req) override;
  std::string error_body(int status, const std::string& message) const override;
  void on_ws_message(uint8_t opcode, const uint8_t* data, size_t len) override;
  void on_ws_drained() override;
  void on_conn_closed() override;
  // Whether the request carries one of the API's tokens (or the API asks for none); remembers the
  // token's name for the calls of a /ws/v1 connection and counts the request under it.
  bool authorized(const HttpRequest& req);
  // False when the request was refused as cross-site (answered: 421, 403 or 415, and counted).
  bool same_site(const HttpRequest& req, bool writes);
  void call(const HttpRequest& req, const std::string& method);
  // GET /readyz: 503 while draining or while a queue topic's disk log has failed; 200 otherwise.
  void readyz(ApiHost& host);

  ApiServer& api_;
  uint32_t in_flight_ = 0;  // WebSocket calls not answered yet
  std::string token_name_;  // the token this connection's last authorized request carried
};

class ApiServer {
 public:
  // Open connections, at most: the public route API (another listener) cannot crowd this one out.
  static constexpr size_t kMaxConnections = 10000;
  // A request (head and body) must arrive within this long of the connection being ready for it.
  static constexpr uint64_t kRequestTimeoutMs = 15000;

  ApiServer(ApiHost& host, uv_loop_t* loop);
  bool listen() { return http_.listen(host_.config().api_bind, host_.config().api_port); }
  ApiHost& host() { return host_; }
  HttpServer& http() { return http_; }
  const HttpServer& http() const { return http_; }
  // The tokens the API accepts, [api] token and tokens (reloaded by SIGHUP: a token removed is
  // refused from then on; a /ws/v1 connection it opened stays); empty: no authentication.
  void set_tokens(std::vector<ApiToken> tokens) { tokens_ = std::move(tokens); }
  bool open_to_all() const { return tokens_.empty(); }
  // The name of the token whose secret `given` is, or nullptr.
  const std::string* token_name(const std::string& given) const;
  // Counts a request or /ws/v1 call made under token `name`, for /metrics.
  void count_token(const std::string& name) { token_calls_[name]++; }
  // The cross-site checks from `cfg`'s [api] hosts and origins, for this API's bind address and
  // port (reloaded by SIGHUP with the running address).
  void set_guard(const Config& cfg);
  const ApiGuard& guard() const { return guard_; }
  // Counts a call for /metrics: a method name outside the handler table counts as "unknown".
  void count_call(const std::string& method, int code);
  void render_metrics(PromWriter& w) const;
  // A /ws/v1 connection still has output to write (the drain waits for consumers to take events).
  bool websockets_writing() const;
  // Where ApiConn::sink_deliver writes each queue event's message before it is framed (all on the
  // hub thread, one at a time).
  std::string& event_buffer() { return event_buffer_; }

 private:
  ApiHost& host_;
  HttpServer http_;
  std::vector<ApiToken> tokens_;
  ApiGuard guard_;
  std::string event_buffer_;
  std::map<std::pair<std::string, int>, uint64_t> calls_;
  std::map<std::string, uint64_t> token_calls_;  // by token name; names of removed tokens stay
};

}  // namespace mg
