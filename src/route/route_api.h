// The public route API (PROTOCOL.md §6): which node a client should connect to.
//
//   GET  /route?intranet=0|1[&uid=U]      → {"tcp_addr","ws_addr","wss_addr"}
//   POST /route/batch?intranet=0|1        body ["uid", ...] → [{"uids":[...],"tcp_addr",...}, ...]
//
// A uid goes to the live node with the highest weighted rendezvous score, so every node answers the
// same for the same membership and a node that leaves moves only its own uids. Errors are
// {"msg":"...","status":N}, the shape WuKongIM clients know.
#pragma once

#include <uv.h>

#include <functional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/node_info.h"
#include "http/http_server.h"

namespace mg {

// Index into `members` of the node for `uid` (members must not be empty).
size_t route_pick(const std::vector<NodeInfo>& members, const std::string& uid);

// The route API's listener. `members` lists the nodes to hand out now (this one first, then the
// alive peers); it is asked once per request.
class RouteApi {
 public:
  using Members = std::function<std::vector<NodeInfo>()>;
  // Open connections, at most: a crowd of route requests cannot take the control API's share.
  static constexpr size_t kMaxConnections = 10000;
  // A request (head and body) must arrive within this long of the connection being ready for it:
  // with [route] max_body this bounds what a crowd of slow senders can make the node hold, and
  // for how long (no authentication stands before this port).
  static constexpr uint64_t kRequestTimeoutMs = 10000;

  RouteApi(uv_loop_t* loop, const Config& cfg, Members members);
  bool listen() { return http_.listen(cfg_.route_bind, cfg_.route_port); }
  HttpServer& http() { return http_; }
  const HttpServer& http() const { return http_; }

  // One request (RouteConn calls it).
  void handle(HttpConn& conn, const HttpRequest& req) const;

 private:
  const Config& cfg_;
  Members members_;
  HttpServer http_;
};

}  // namespace mg
