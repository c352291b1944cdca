// Subjects and the heartbeat and reply bodies of the NATS backbone (nats_wire.h).
#include "nats/nats_wire.h"

#include <cctype>

namespace mg {

std::string nats_hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes.size());
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string nats_prefix(const std::string& cluster) {
  // A cluster name is 1..64 bytes of anything ([mesh] cluster): hex keeps it one subject token.
  bool plain = true;
  for (unsigned char c : cluster) plain = plain && (std::isalnum(c) || c == '-' || c == '_');
  return plain ? "mg." + cluster : "mg.x" + nats_hex(cluster);
}

std::string nats_node_subject(const std::string& prefix, unsigned node, const char* kind) {
  return prefix + ".n." + std::to_string(node) + "." + kind;
}

std::string nats_channel_subject(const std::string& prefix, const std::string& channel) {
  return prefix + ".ch." + nats_hex(channel);
}

std::string nats_encode(const NatsBeat& b) {
  std::string s = "{\"i\":" + std::to_string(b.info.node_id) + ",\"inst\":" + std::to_string(b.instance) + ",\"name\":";
  json_append_string(s, b.name);
  mesh_append_weight(s, b.info.weight);
  s += ",\"conns\":" + std::to_string(b.info.connections) + ",\"ext\":";
  mesh_append_addresses(s, b.info.external);
  s += ",\"int\":";
  mesh_append_addresses(s, b.info.intranet);
  s += ",\"t\":[";
  for (size_t i = 0; i < b.topics.size(); i++) {
    if (i) s += ',';
    json_append_string(s, b.topics[i]);
  }
  s += ']';
  if (b.left) s += ",\"l\":true";
  s += '}';
  return s;
}

bool nats_decode(const char* body, size_t len, NatsBeat& out) {
  JsonPtr doc = json_parse_strict(body, len);
  const cJSON* o = doc.get();
  uint64_t id = 0;
  if (!cJSON_IsObject(o) || !mesh_read_uint(o, "i", kMaxNodeId, 0, id) || id == 0 ||
      !mesh_read_uint(o, "inst", kJsonMaxExactInt, 0, out.instance) ||
      !mesh_read_uint(o, "conns", kJsonMaxExactInt, 0, out.info.connections))
    return false;
  out.info.node_id = static_cast<unsigned>(id);
  out.name = mesh_read_string(o, "name");
  out.info.weight = mesh_read_weight(o);
  out.info.external = mesh_read_addresses(o, "ext");
  out.info.intranet = mesh_read_addresses(o, "int");
  out.topics.clear();
  const cJSON* t = cJSON_GetObjectItemCaseSensitive(o, "t");
  const cJSON* item;
  cJSON_ArrayForEach(item, t) {
    if (out.topics.size() >= kMeshMaxTopics) break;
    if (cJSON_IsString(item) && item->valuestring[0]) out.topics.emplace_back(item->valuestring);
  }
  out.left = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "l"));
  return true;
}

std::string nats_reply_body(unsigned node, const MeshReply& r) { return std::to_string(node) + " " + mesh_encode(r); }

bool nats_read_reply(const char* body, size_t len, unsigned& node, MeshReply& out) {
  size_t i = 0;
  uint64_t n = 0;
  while (i < len && i < 5 && body[i] >= '0' && body[i] <= '9') n = n * 10 + static_cast<uint64_t>(body[i++] - '0');
  if (i == 0 || i >= len || body[i] != ' ' || n == 0 || n > kMaxNodeId) return false;
  node = static_cast<unsigned>(n);
  return mesh_decode(body + i + 1, len - i - 1, out);
}

}  // namespace mg
