#include "api/api_server.h"

#include <openssl/crypto.h>
#include <strings.h>

#include <algorithm>
#include <memory>

#include "api/api_methods.h"
#include "api/envelope.h"
#include "api/node_list.h"
#include "core/log.h"
#include "core/log_text.h"
#include "dashboard/dashboard.h"
#include "http/url_query.h"
#include "ws/ws_frame.h"

namespace mg {

namespace {
std::string api_error_body(int code, const std::string& message) { return envelope_error(code, message, nullptr); }
}  // namespace

ApiServer::ApiServer(ApiHost& host, uv_loop_t* loop)
    : host_(host),
      http_(loop, "control API", "api", kMaxConnections, kRequestTimeoutMs,
            [this](HttpServer& server, uint64_t serial) -> HttpConn* { return new ApiConn(*this, server, serial); }),
      tokens_(all_api_tokens(host.config())),
      guard_(host.config().api_bind, host.config().api_port, host.config().api_hosts, host.config().api_origins) {}

void ApiServer::set_guard(const Config& cfg) {
  const Config& running = host_.config();
  guard_ = ApiGuard(running.api_bind, running.api_port, cfg.api_hosts, cfg.api_origins);
}

void ApiServer::count_call(const std::string& method, int code) {
  static const std::string unknown = "unknown";
  const std::string& label = method == "invalid" || api_method_known(method) ? method : unknown;
  calls_[{label, code}]++;
}

const std::string* ApiServer::token_name(const std::string& given) const {
  const std::string* found = nullptr;
  for (const ApiToken& t : tokens_)  // every one compared, in constant time: no early answer to time
    if (given.size() == t.secret.size() && CRYPTO_memcmp(given.data(), t.secret.data(), given.size()) == 0) found = &t.name;
  return found;
}

void ApiServer::render_metrics(PromWriter& w) const {
  w.family("meshgate_api_calls_total", "counter", "Control API calls by method and result code (0 = success).");
  for (const auto& [key, n] : calls_)
    w.sample("meshgate_api_calls_total", {{"method", key.first}, {"code", std::to_string(key.second)}}, n);
  w.family("meshgate_api_token_requests_total", "counter",
           "Control API requests and /ws/v1 calls accepted, by the name of the token they carried.");
  for (const auto& [name, n] : token_calls_) w.sample("meshgate_api_token_requests_total", {{"token", name}}, n);
}

bool ApiServer::websockets_writing() const {
  for (const auto& [serial, c] : http_.connections())
    if (c->is_websocket() && c->queued_bytes() > 0) return true;
  return false;
}

// --- one connection ---

ApiConn::ApiConn(ApiServer& api, HttpServer& server, uint64_t serial)
    : HttpConn(server, serial, HttpLimits{api.host().config().limits.max_header_bytes, api.host().config().limits.max_headers,
                                          api.host().config().api_max_body}),
      api_(api) {}

std::string ApiConn::error_body(int, const std::string& message) const { return api_error_body(101, message); }

bool ApiConn::authorized(const HttpRequest& req) {
  if (api_.open_to_all()) return true;
  std::string given;
  const std::string* auth = req.header("authorization");
  if (auth && auth->size() > 7 && strncasecmp(auth->c_str(), "Bearer ", 7) == 0) given = auth->substr(7);  // RFC 7235: any case
  else if (!query_param(req.query, "token", given)) return false;
  const std::string* name = api_.token_name(given);
  if (!name) return false;
  token_name_ = *name;
  api_.count_token(token_name_);
  return true;
}

// Before anything else, so a refused request learns nothing of what is behind (see api_guard.h).
bool ApiConn::same_site(const HttpRequest& req, bool writes) {
  HttpRefusals& refusals = server().refusals();
  uint64_t now = uv_now(loop());
  const std::string* host = req.header("host");
  if (!api_.guard().host_allowed(host)) {
    refusals.count(HttpRefusals::Host, now, "a Host header that names none of its addresses: DNS rebinding, or add the name to [api] hosts");
    respond_json(421, api_error_body(101, "the Host header names none of this API's addresses: add the name to [api] hosts"));
    return false;
  }
  if (writes && !api_.guard().origin_allowed(req.header("origin"), host)) {
    refusals.count(HttpRefusals::Origin, now, req.method + " " + (req.path == "/ws/v1" ? "/ws/v1" : "/v1/...") +
                                                  " from a cross-site Origin: another web page, or add it to [api] origins");
    respond_json(403, api_error_body(101, "cross-site request refused: this Origin is not the API's own nor in [api] origins"));
    return false;
  }
  if (req.method == "POST" && !ApiGuard::json_content_type(req.header("content-type"))) {
    refusals.count(HttpRefusals::ContentType, now, "a POST without Content-Type: application/json");
    respond_json(415, api_error_body(101, "POST bodies must be sent with Content-Type: application/json"));
    return false;
  }
  return true;
}

void ApiConn::readyz(ApiHost& host) {
  if (host.draining()) return respond(503, "text/plain", "draining\n");
  // A node whose disk log cannot be written cannot keep what it accepts: a load balancer should send
  // new clients elsewhere until the log works again (retried every few seconds).
  const std::string failed = host.queue().failed_log();
  if (!failed.empty())
    return respond(503, "text/plain", "not ready: the queue log of topic \"" + log_safe(failed) + "\" failed\n");
  respond(200, "text/plain", "ready\n");
}

void ApiConn::on_request(const HttpRequest& req) {
  ApiHost& host = api_.host();
  const std::string& p = req.path;
  bool get = req.method == "GET" || req.method == "HEAD";
  if (!same_site(req, !get || p == "/ws/v1")) return;
  if (p == "/healthz" || p == "/readyz" || p == "/metrics" || p == "/v1/nodes") {
    if (!get) return respond_json(405, api_error_body(101, p + " takes GET"), {{"Allow", "GET"}});
    if (p == "/healthz") return respond(200, "text/plain", "ok\n");
    if (p == "/readyz") return readyz(host);
    if (!authorized(req)) return respond_json(401, api_error_body(101, "missing or wrong API token"));
    if (p == "/metrics") return respond(200, "text/plain; version=0.0.4", host.render_metrics());
    return respond_json(200, envelope_ok(node_list_json(host), nullptr));
  }
  if (p == "/dashboard" || p.rfind("/dashboard/", 0) == 0) {  // the page; its data needs the token
    if (!get) return respond_json(405, api_error_body(101, p + " takes GET"), {{"Allow", "GET"}});
    const DashboardAsset* a = dashboard_asset(p);
    if (!a) return respond_json(404, api_error_body(101, "no dashboard file at " + p));
    return respond(200, a->content_type, std::string(a->body, a->size), dashboard_headers());
  }
  if (p == "/ws/v1") {
    // Open while draining too: a consumer may still come for the events this node holds (only
    // queue.* methods are answered then, see on_ws_message).
    if (!authorized(req)) return respond_json(401, api_error_body(101, "missing or wrong API token"));
    std::string error;
    int status = upgrade_websocket(req, host.config().api_max_body, host.config().api_max_output, error);
    if (status != 0) respond_json(status, api_error_body(101, error));
    return;
  }
  std::string method = api_method_for_path(p);
  if (method.empty()) return respond_json(404, api_error_body(101, "no API method at " + p));
  if (req.method != "POST") return respond_json(405, api_error_body(101, p + " takes POST"), {{"Allow", "POST"}});
  if (!authorized(req)) return respond_json(401, api_error_body(101, "missing or wrong API token"));
  if (host.draining()) return respond_json(503, api_error_body(501, "node is draining"));
  call(req, method);
}

void ApiConn::call(const HttpRequest& req, const std::string& method) {
  JsonPtr params;
  std::string error;
  if (!parse_params_body(req.body, params, error)) {
    api_.count_call(method, 101);
    return respond_json(400, api_error_body(101, error));
  }
  ApiServer* api = &api_;
  uint64_t serial = this->serial(), request = current_request();
  auto shared_params = std::make_shared<JsonPtr>(std::move(params));
  Reply reply = [api, serial, request, method, shared_params](const ApiResult& r) {
    api->count_call(method, r.code);
    HttpConn* c = api->http().find(serial);
    if (!c) return;
    if (r.code == 0) c->respond_to(request, 200, "application/json", envelope_ok(r.result, nullptr));
    else c->respond_to(request, r.code == 101 ? 400 : 200, "application/json", api_error_body(r.code, r.message));
  };
  api_dispatch(method, ApiCall{api_.host(), nullptr, shared_params->get(), std::move(reply), req.body.data(), req.body.size()});
}

void ApiConn::on_ws_message(uint8_t opcode, const uint8_t* data, size_t len) {
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
    api_.count_call(env.method.empty() ? "invalid" : env.method, 101);
    send_text(envelope_error(101, error, &env.id_json));
    return;
  }
  if (api_.host().draining() && env.method.rfind("queue.", 0) != 0) {
    send_text(envelope_error(501, "node is draining", &env.id_json));
    return;
  }
  ApiServer* api = &api_;
  uint64_t serial = this->serial();
  auto doc = std::make_shared<JsonPtr>(std::move(env.doc));
  std::string id = env.id_json, method = env.method;
  if (!token_name_.empty()) api_.count_token(token_name_);
  in_flight_++;
  if (in_flight_ >= kMaxCallsInFlight) pause_reading();
  Reply reply = [api, serial, doc, id, method](const ApiResult& r) {
    api->count_call(method, r.code);
    auto* c = static_cast<ApiConn*>(api->http().find(serial));
    if (!c) return;
    c->send_text(r.code == 0 ? envelope_ok(r.result, &id) : envelope_error(r.code, r.message, &id));
    c->call_done();
  };
  api_dispatch(method, ApiCall{api_.host(), this, env.params, std::move(reply), env.params_text, env.params_len});
}

void ApiConn::call_done() {
  if (in_flight_ > 0) in_flight_--;
  if (reading_paused() && in_flight_ < kMaxCallsInFlight / 2) resume_reading();
}

// Events wait in their topic (bounded there, with its overflow policy) rather than in this output:
// the window only keeps the socket busy between two loop turns.
bool ApiConn::sink_ready() const {
  return ws_can_send() && queued_bytes() < std::min<uint64_t>(kSinkWindow, ws_max_output() / 4);
}

void ApiConn::sink_deliver(const QueueEventRef& ev, unsigned this_node, uint64_t seq) {
  // Written into the one buffer every delivery reuses, then copied once into the connection's output.
  std::string& message = api_.event_buffer();
  message.clear();
  append_queue_pop_message(message, ev, this_node, seq);
  send_text(message);
  if (message.capacity() > kSinkWindow) std::string().swap(message);  // one large event keeps nothing
}

void ApiConn::on_ws_drained() { api_.host().queue().sink_ready(this); }

void ApiConn::on_conn_closed() {
  if (is_websocket()) api_.host().queue().unpop(this);
}

}  // namespace mg
