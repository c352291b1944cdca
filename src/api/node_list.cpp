#include "api/node_list.h"

#include <sstream>

#include "api/api_host.h"
#include "core/json_text.h"
#include "cluster/backbone.h"

namespace mg {

void append_node_json(std::string& s, const NodeInfo& m, const std::string& name, bool alive, bool self,
                      const std::string& extra) {
  s += "{\"id\":" + std::to_string(m.node_id) + ",\"name\":";
  json_append_string(s, name);
  s += std::string(",\"state\":\"") + (alive ? "alive" : "dead") + "\",\"self\":" + (self ? "true" : "false") +
       ",\"connections\":" + std::to_string(m.connections);
  std::ostringstream weight;
  weight << m.weight;
  s += ",\"route_weight\":" + weight.str() + extra + ",\"addresses\":{";
  const std::pair<const char*, const std::string*> fields[] = {
      {"tcp_addr", &m.external.tcp},          {"ws_addr", &m.external.ws},          {"wss_addr", &m.external.wss},
      {"intranet_tcp_addr", &m.intranet.tcp}, {"intranet_ws_addr", &m.intranet.ws}, {"intranet_wss_addr", &m.intranet.wss}};
  for (size_t i = 0; i < 6; i++) {
    s += i ? ",\"" : "\"";
    s += fields[i].first;
    s += "\":";
    json_append_string(s, *fields[i].second);
  }
  s += "}}";
}

std::string node_list_json(const ApiHost& host) {
  std::string s = "{\"nodes\":[";
  append_node_json(s, host.self_info(), host.config().node_name, true, true, "");
  if (const Backbone* cluster = host.backbone()) {
    for (const MemberView& m : cluster->members()) {
      std::string extra;
      if (!m.addr.empty()) {
        extra = ",\"mesh_addr\":";
        json_append_string(extra, m.addr);
      }
      if (m.rtt_ms >= 0) extra += ",\"rtt_ms\":" + std::to_string(static_cast<uint64_t>(m.rtt_ms));
      s += ',';
      append_node_json(s, m.info, m.name, m.alive, false, extra);
    }
  }
  s += "]}";
  return s;
}

}  // namespace mg
