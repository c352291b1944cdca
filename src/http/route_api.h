// The public route API (PROTOCOL.md §6): which node a client should connect to.
//
//   GET  /route?intranet=0|1[&uid=U]      → {"tcp_addr","ws_addr","wss_addr"}
//   POST /route/batch?intranet=0|1        body ["uid", ...] → [{"uids":[...],"tcp_addr",...}, ...]
//
// A uid goes to the live node with the highest weighted rendezvous score, so every node answers the
// same for the same membership and a node that leaves moves only its own uids. Errors are
// {"msg":"...","status":N}, the shape WuKongIM clients know.
#pragma once

#include <string>
#include <vector>

#include "core/node_info.h"
#include "http/http_parser.h"

namespace mg {

class Hub;
class HttpConn;

// One node.list entry (GET /v1/nodes), for this node or a peer. `extra` is appended inside the
// object (e.g. ",\"mesh_addr\":..."), already JSON.
void append_node_json(std::string& out, const NodeInfo& m, const std::string& name, bool alive, bool self,
                      const std::string& extra);

// Index into `members` of the node for `uid` (members must not be empty).
size_t route_pick(const std::vector<NodeInfo>& members, const std::string& uid);

void handle_route_request(Hub& hub, HttpConn& conn, const HttpRequest& req);

}  // namespace mg
