#include "http/http_server.h"

#include <openssl/crypto.h>
#include <strings.h>

#include "api/api_methods.h"
#include "api/envelope.h"
#include "core/log.h"
#include "hub.h"
#include "http/http_response.h"
#include "http/route_api.h"
#include "ws/ws_frame.h"
#include "ws/ws_upgrade.h"

namespace mg {

namespace {
constexpr uint32_t kMaxCallsInFlight = 1024;  // per /ws/v1 connection: reading pauses above this
// HTTP: a client that pipelines requests without reading the answers stops being read once this
// much output waits for it, and is read again when it has taken it.
constexpr size_t kHttpOutputPause = 1 << 20;

std::string api_error_body(int code, const std::string& message) { return envelope_error(code, message, nullptr); }
}  // namespace

HttpConn::HttpConn(Hub& hub, HttpRole role, uint64_t serial) : Stream(hub.loop()), hub_(hub), role_(role), serial_(serial) {}

bool HttpConn::stalled(uint64_t now_ms) const {
  return !ws_ && !awaiting_ && !closing() && now_ms - ready_since_ms_ > kRequestTimeoutMs;
}

void HttpConn::start() {
  ready_since_ms_ = uv_now(loop());
  const Config& c = hub_.config();
  uint32_t max_body = role_ == HttpRole::Api ? c.api_max_body : std::max<uint32_t>(c.api_max_body, c.route_max_batch * 160u);
  parser_ = std::make_unique<HttpParser>(HttpLimits{c.max_header_bytes, c.max_headers, max_body});
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
  while (!awaiting_ && !unparsed_.empty() && !closing() && !ws_ && queued_bytes() < kHttpOutputPause) {
    size_t used = 0;
    HttpParser::Status st = parser_->feed(unparsed_.data(), unparsed_.size(), used);
    if (st == HttpParser::Status::NeedMore) {
      unparsed_.clear();
      break;
    }
    if (st == HttpParser::Status::Error) {
      keep_alive_ = false;
      unparsed_.clear();
      respond_json(parser_->error_status(), api_error_body(101, parser_->error_message()));
      break;
    }
    std::string rest = unparsed_.substr(used);
    unparsed_.swap(rest);
    awaiting_ = true;
    keep_alive_ = parser_->request().keep_alive;
    head_only_ = parser_->request().method == "HEAD";
    handle_request(parser_->request());
  }
  parsing_ = false;
  bool backlogged = !ws_ && queued_bytes() >= kHttpOutputPause;
  if ((awaiting_ || backlogged) && !read_paused_ && !closing()) {  // let the rest wait in the socket
    stop_reading();
    read_paused_ = true;
  }
}

void HttpConn::respond(int status, const char* content_type, const std::string& body,
                       const std::vector<std::pair<std::string, std::string>>& extra) {
  if (closing()) return;
  bool keep = keep_alive_ && !hub_.draining();
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
  if (read_paused_ && queued_bytes() < kHttpOutputPause) {
    read_paused_ = false;
    if (start_reading() != 0) close_now();
  }
  if (!unparsed_.empty() && !parsing_) parse_http();
}

void HttpConn::handle_request(const HttpRequest& req) {
  if (role_ == HttpRole::Route) {
    handle_route_request(hub_, *this, req);
    return;
  }
  handle_api_request(req);
}

bool HttpConn::authorized(const HttpRequest& req) const {
  const std::string& token = hub_.api_token();
  if (token.empty()) return true;
  std::string given;
  const std::string* auth = req.header("authorization");
  if (auth && auth->size() > 7 && strncasecmp(auth->c_str(), "Bearer ", 7) == 0) given = auth->substr(7);  // RFC 7235: any case
  else if (!query_param(req.query, "token", given)) return false;
  return given.size() == token.size() && CRYPTO_memcmp(given.data(), token.data(), token.size()) == 0;
}

void HttpConn::handle_api_request(const HttpRequest& req) {
  const std::string& p = req.path;
  bool get = req.method == "GET" || req.method == "HEAD";
  if (p == "/healthz" || p == "/readyz" || p == "/metrics" || p == "/v1/nodes") {
    if (!get) return respond_json(405, api_error_body(101, p + " takes GET"), {{"Allow", "GET"}});
    if (p == "/healthz") return respond(200, "text/plain", "ok\n");
    if (p == "/readyz") return hub_.draining() ? respond(503, "text/plain", "draining\n") : respond(200, "text/plain", "ready\n");
    if (!authorized(req)) return respond_json(401, api_error_body(101, "missing or wrong API token"));
    if (p == "/metrics") return respond(200, "text/plain; version=0.0.4", hub_.render_metrics());
    return respond_json(200, envelope_ok(hub_.node_list_json(), nullptr));
  }
  if (p == "/ws/v1") {
    if (!authorized(req)) return respond_json(401, api_error_body(101, "missing or wrong API token"));
    if (hub_.draining()) return respond_json(503, api_error_body(501, "node is draining"));
    return upgrade_api(req);
  }
  std::string method = api_method_for_path(p);
  if (method.empty()) return respond_json(404, api_error_body(101, "no API method at " + p));
  if (req.method != "POST") return respond_json(405, api_error_body(101, p + " takes POST"), {{"Allow", "POST"}});
  if (!authorized(req)) return respond_json(401, api_error_body(101, "missing or wrong API token"));
  if (hub_.draining()) return respond_json(503, api_error_body(501, "node is draining"));
  JsonPtr params;
  std::string error;
  if (!parse_params_body(req.body, params, error)) {
    hub_.count_api_call(method, 101);
    return respond_json(400, api_error_body(101, error));
  }
  Hub* hub = &hub_;
  uint64_t serial = serial_;
  auto shared_params = std::make_shared<JsonPtr>(std::move(params));
  Reply reply = [hub, serial, method, shared_params](const ApiResult& r) {
    hub->count_api_call(method, r.code);
    HttpConn* c = hub->find_conn(serial);
    if (!c) return;
    if (r.code == 0) c->respond_json(200, envelope_ok(r.result, nullptr));
    else c->respond_json(r.code == 101 ? 400 : 200, api_error_body(r.code, r.message));
  };
  api_dispatch(method, ApiCall{hub_, nullptr, shared_params->get(), std::move(reply), req.body.data(), req.body.size()});
}

void HttpConn::upgrade_api(const HttpRequest& req) {
  std::string response, error;
  int status = check_ws_upgrade(req, response, error);
  if (status != 0) {
    keep_alive_ = false;
    return respond_json(status, api_error_body(101, error));
  }
  write(std::move(response));
  awaiting_ = false;
  ws_ = std::make_unique<WsSession>(this, hub_.config().api_max_body);
  parser_.reset();
  if (read_paused_) {
    read_paused_ = false;
    if (start_reading() != 0) return close_now();
  }
  std::string rest;
  rest.swap(unparsed_);
  if (!rest.empty()) on_read(rest.data(), rest.size());
}

void HttpConn::ws_message(uint8_t opcode, const uint8_t* data, size_t len) {
  const char* text = reinterpret_cast<const char*>(data);
  if (opcode != kWsText) {
    static const std::string no_id = "null";
    send_text(envelope_error(101, "the API takes text messages (JSON envelopes)", &no_id));
    return;
  }
  if (len == 4 && std::string(text, 4) == "ping") {
    send_text("pong");
    return;
  }
  Envelope env;
  std::string error;
  if (!parse_envelope(text, len, env, error)) {
    hub_.count_api_call(env.method.empty() ? "invalid" : env.method, 101);
    send_text(envelope_error(101, error, &env.id_json));
    return;
  }
  if (hub_.draining() && env.method.rfind("queue.", 0) != 0) {
    send_text(envelope_error(501, "node is draining", &env.id_json));
    return;
  }
  Hub* hub = &hub_;
  uint64_t serial = serial_;
  auto doc = std::make_shared<JsonPtr>(std::move(env.doc));
  std::string id = env.id_json, method = env.method;
  in_flight_++;
  if (in_flight_ >= kMaxCallsInFlight && !read_paused_) {
    stop_reading();
    read_paused_ = true;
  }
  Reply reply = [hub, serial, doc, id, method](const ApiResult& r) {
    hub->count_api_call(method, r.code);
    HttpConn* c = hub->find_conn(serial);
    if (!c) return;
    c->send_text(r.code == 0 ? envelope_ok(r.result, &id) : envelope_error(r.code, r.message, &id));
    c->call_done();
  };
  api_dispatch(method, ApiCall{hub_, this, env.params, std::move(reply), env.params_text, env.params_len});
}

void HttpConn::maybe_resume() {
  if (ws_ && read_paused_ && in_flight_ < kMaxCallsInFlight / 2 && !closing()) {
    read_paused_ = false;
    if (start_reading() != 0) close_now();
  }
}

void HttpConn::send_text(const std::string& text) {
  if (!ws_ || !ws_->can_send() || closing()) return;
  if (queued_bytes() + text.size() > hub_.config().api_max_output) {
    LOG_WARN("API connection closed: more than %llu bytes waiting to be written (a consumer that does not read)",
             static_cast<unsigned long long>(hub_.config().api_max_output));
    close_now();
    return;
  }
  write(ws_encode_frame(kWsText, text.data(), text.size()));
}

void HttpConn::ws_output(const uint8_t* data, size_t len) {
  if (queued_bytes() + len > hub_.config().api_max_output) {
    close_now();  // pings from a client that never reads
    return;
  }
  write(std::string(reinterpret_cast<const char*>(data), len));
}

bool HttpConn::sink_ready() const {
  return ws_ && ws_->can_send() && !closing() && queued_bytes() < hub_.config().api_max_output / 4;
}

void HttpConn::sink_deliver(std::string json) { send_text(json); }

void HttpConn::on_drained() {
  if (ws_) {
    hub_.queue().sink_ready(this);
  } else if (read_paused_ && !awaiting_) {  // the answers were taken: read and parse again
    read_paused_ = false;
    if (start_reading() != 0) return close_now();
    if (!unparsed_.empty()) parse_http();
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
  if (ws_) hub_.queue().unpop(this);
  hub_.forget_conn(serial_);
}

}  // namespace mg
