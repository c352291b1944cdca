// The hub as the node: its client addresses and member entry (route API, mesh), and the calls
// other nodes make to it (run with local_only).
#include "hub.h"

#include "api/api_methods.h"
#include "core/addr.h"

namespace mg {

NodeAddresses Hub::own_addresses(bool intranet) const {
  std::string host = intranet && !cfg_.intranet_advertise.empty() ? cfg_.intranet_advertise : cfg_.advertise;
  NodeAddresses a;
  for (const ListenerConfig& l : cfg_.listeners) {
    if (l.type == ListenerType::Tcp && !l.tls && a.tcp.empty()) a.tcp = host_port(host, l.port);
    if (l.type == ListenerType::Ws && !l.tls && a.ws.empty()) a.ws = "ws://" + host_port(host, l.port);
    if (l.type == ListenerType::Ws && l.tls && a.wss.empty()) a.wss = "wss://" + host_port(host, l.port);
  }
  const std::string& tcp = intranet ? cfg_.intranet_tcp_addr : cfg_.tcp_addr;
  const std::string& ws = intranet ? cfg_.intranet_ws_addr : cfg_.ws_addr;
  const std::string& wss = intranet ? cfg_.intranet_wss_addr : cfg_.wss_addr;
  if (!tcp.empty()) a.tcp = tcp;
  if (!ws.empty()) a.ws = ws;
  if (!wss.empty()) a.wss = wss;
  return a;
}

NodeInfo Hub::self_info() const {
  return NodeInfo{static_cast<unsigned>(cfg_.node_id), cfg_.route_weight, client_count(), own_addresses(false),
                  own_addresses(true)};
}

std::vector<NodeInfo> Hub::route_members() const {
  std::vector<NodeInfo> members{self_info()};
  if (backbone_)
    for (NodeInfo& m : backbone_->alive_peers()) members.push_back(std::move(m));
  return members;
}

void Hub::run_remote_call(const std::string& method, const cJSON* params, const char* params_text, size_t params_len,
                          Reply reply) {
  ApiCall call{*this, nullptr, params, std::move(reply), params_text, params_len};
  call.local_only = true;
  api_dispatch_remote(method, std::move(call));
}

}  // namespace mg
