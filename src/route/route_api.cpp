#include "route/route_api.h"

#include <unordered_map>
#include <unordered_set>

#include "core/hrw.h"
#include "core/json_text.h"
#include "http/url_query.h"

namespace mg {

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

std::string route_error_body(int status, const std::string& msg) {
  std::string s = "{\"msg\":";
  json_append_string(s, msg);
  s += ",\"status\":" + std::to_string(status) + "}";
  return s;
}

void append_addresses(std::string& out, const NodeAddresses& a) {
  out += "\"tcp_addr\":";
  json_append_string(out, a.tcp);
  out += ",\"ws_addr\":";
  json_append_string(out, a.ws);
  out += ",\"wss_addr\":";
  json_append_string(out, a.wss);
}

Headers cors_headers(const Config& cfg) {
  Headers h;
  if (!cfg.cors_origin.empty()) {
    h.emplace_back("Access-Control-Allow-Origin", cfg.cors_origin);
    h.emplace_back("Vary", "Origin");
  }
  return h;
}

// One connection to the route API: every request goes to RouteApi::handle.
class RouteConn final : public HttpConn {
 public:
  RouteConn(const RouteApi& api, HttpServer& server, uint64_t serial, const HttpLimits& limits)
      : HttpConn(server, serial, limits), api_(api) {}

 private:
  void on_request(const HttpRequest& req) override { api_.handle(*this, req); }
  std::string error_body(int status, const std::string& message) const override { return route_error_body(status, message); }
  const RouteApi& api_;
};

}  // namespace

RouteApi::RouteApi(uv_loop_t* loop, const Config& cfg, Members members)
    : cfg_(cfg), members_(std::move(members)),
      http_(loop, "route API", "route", kMaxConnections, kRequestTimeoutMs,
            [this](HttpServer& server, uint64_t serial) -> HttpConn* {
              HttpLimits limits{cfg_.limits.max_header_bytes, cfg_.limits.max_headers, cfg_.route_max_body};
              return new RouteConn(*this, server, serial, limits);
            }) {}

size_t route_pick(const std::vector<NodeInfo>& members, const std::string& uid) {
  auto it = hrw_pick_weighted(
      stable_hash(uid), members, [](const NodeInfo& m) { return stable_hash(&m.node_id, sizeof m.node_id); },
      [](const NodeInfo& m) { return m.weight; },
      // Ties (practically impossible) go to the lower node id, the same on every node.
      [](const NodeInfo& a, const NodeInfo& b) { return a.node_id < b.node_id; });
  return it == members.end() ? 0 : static_cast<size_t>(it - members.begin());
}

void RouteApi::handle(HttpConn& conn, const HttpRequest& req) const {
  Headers headers = cors_headers(cfg_);
  auto fail = [&](int status, const std::string& msg) { conn.respond_json(status, route_error_body(status, msg), headers); };
  bool batch = req.path == "/route/batch";
  if (req.path != "/route" && !batch) return fail(404, "not found: the route API serves /route and /route/batch");
  if (req.method == "OPTIONS" && !cfg_.cors_origin.empty()) {
    headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    headers.emplace_back("Access-Control-Allow-Headers", "Content-Type");
    headers.emplace_back("Access-Control-Max-Age", "600");
    return conn.respond(204, "text/plain", "", headers);
  }
  const char* want = batch ? "POST" : "GET";
  if (req.method != want) {
    headers.emplace_back("Allow", want);
    return fail(405, req.path + " takes " + want);
  }
  std::string intranet_value;
  bool intranet = query_param(req.query, "intranet", intranet_value) && intranet_value == "1";
  std::vector<NodeInfo> members = members_();
  if (members.empty()) return fail(500, "no live node to route to");
  auto addresses = [&](size_t i) -> const NodeAddresses& {
    return intranet ? members[i].intranet : members[i].external;
  };

  if (!batch) {
    std::string uid;
    size_t pick = 0;
    if (query_param(req.query, "uid", uid) && !uid.empty()) {
      pick = route_pick(members, uid);
    } else {
      for (size_t i = 1; i < members.size(); i++)
        if (members[i].connections < members[pick].connections) pick = i;
    }
    std::string body = "{";
    append_addresses(body, addresses(pick));
    body += '}';
    return conn.respond_json(200, body, headers);
  }

  if (req.body.find_first_not_of(" \t\r\n") == std::string::npos) return fail(400, "the body must be a JSON array of uids");
  std::string why;
  JsonPtr doc = json_parse_strict(req.body.data(), req.body.size(), &why);
  if (!doc) return fail(400, why);
  if (!cJSON_IsArray(doc.get())) return fail(400, "the body must be a JSON array of uid strings");
  int n = cJSON_GetArraySize(doc.get());
  if (static_cast<uint32_t>(n) > cfg_.route_max_batch)
    return fail(400, "too many uids: " + std::to_string(n) + " (at most " + std::to_string(cfg_.route_max_batch) + ")");
  std::vector<std::vector<const char*>> groups(members.size());
  std::vector<size_t> order;  // groups in order of first appearance
  std::unordered_set<std::string> seen;
  const cJSON* item;
  cJSON_ArrayForEach(item, doc.get()) {
    if (!cJSON_IsString(item) || !*item->valuestring) return fail(400, "every uid must be a non-empty string");
    if (!seen.insert(item->valuestring).second) continue;
    size_t g = route_pick(members, item->valuestring);
    if (groups[g].empty()) order.push_back(g);
    groups[g].push_back(item->valuestring);
  }
  std::string body = "[";
  for (size_t gi = 0; gi < order.size(); gi++) {
    size_t g = order[gi];
    if (gi) body += ',';
    body += "{\"uids\":[";
    for (size_t i = 0; i < groups[g].size(); i++) {
      if (i) body += ',';
      json_append_string(body, groups[g][i], std::char_traits<char>::length(groups[g][i]));
    }
    body += "],";
    append_addresses(body, addresses(g));
    body += '}';
  }
  body += ']';
  conn.respond_json(200, body, headers);
}

}  // namespace mg
