#include "mesh/mesh_wire.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "core/addr.h"
#include "core/base64.h"
#include "core/json_text.h"
#include "core/node_info.h"

namespace mg {

const char* mesh_type_name(MeshType t) {
  switch (t) {
    case MeshType::Hello: return "HELLO";
    case MeshType::Auth: return "AUTH";
    case MeshType::Refuse: return "REFUSE";
    case MeshType::Members: return "MEMBERS";
    case MeshType::Ping: return "PING";
    case MeshType::Ack: return "ACK";
    case MeshType::Call: return "CALL";
    case MeshType::Reply: return "REPLY";
    case MeshType::Topics: return "TOPICS";
    case MeshType::Event: return "EVENT";
    case MeshType::Done: return "DONE";
    case MeshType::Interest: return "INTEREST";
    case MeshType::InterestAck: return "INTEREST_ACK";
    case MeshType::PingReq: return "PING_REQ";
  }
  return "?";
}

namespace {

bool known_type(uint8_t t) { return t >= 1 && t <= kMeshMaxType; }

// Appends `,"key":[...]` to a body, each element written by append_one(s, element).
template <typename T, typename AppendOne>
void append_list(std::string& s, const char* key, const std::vector<T>& list, AppendOne append_one) {
  s += ",\"";
  s += key;
  s += "\":[";
  for (size_t i = 0; i < list.size(); i++) {
    if (i) s += ',';
    append_one(s, list[i]);
  }
  s += ']';
}

}  // namespace

MeshFrameDecoder::Status MeshFrameDecoder::frames(const char* p, size_t n, size_t& used, const OnFrame& on_frame) {
  used = 0;
  while (!stopped_ && n - used >= 5) {
    uint32_t flen = read_be32(p + used);
    if (flen == 0 || flen > max_frame_) return Status::TooLarge;
    auto type = static_cast<uint8_t>(p[used + 4]);
    if (!known_type(type)) return Status::BadType;
    if (n - used - 4 < flen) break;
    on_frame(static_cast<MeshType>(type), p + used + 5, flen - 1);
    used += 4 + flen;
  }
  if (!stopped_ && n - used >= 4 && read_be32(p + used) > max_frame_) return Status::TooLarge;
  return Status::Ok;
}

MeshFrameDecoder::Status MeshFrameDecoder::feed(const char* data, size_t len, const OnFrame& on_frame) {
  size_t used = 0;
  if (partial_.empty()) {
    // Whole frames are taken straight from the input; only an unfinished tail is copied.
    Status st = frames(data, len, used, on_frame);
    if (st != Status::Ok) return st;
    if (!stopped_ && used < len) partial_.assign(data + used, len - used);
    return Status::Ok;
  }
  partial_.append(data, len);  // at most one unfinished frame plus one read
  Status st = frames(partial_.data(), partial_.size(), used, on_frame);
  if (st != Status::Ok) return st;
  if (stopped_) partial_.clear();
  else partial_.erase(0, used);
  return Status::Ok;
}

std::string mesh_frame(MeshType type, const std::string& body) {
  uint32_t n = static_cast<uint32_t>(body.size() + 1);
  std::string f;
  f.reserve(5 + body.size());
  append_be32(f, n);
  f += static_cast<char>(type);
  f += body;
  return f;
}

// --- frame bodies ---

namespace {

// The strictly parsed body, or an empty JsonPtr when it is not a JSON object.
JsonPtr parse_object(const char* body, size_t len) {
  JsonPtr doc = json_parse_strict(body, len);
  if (doc && !cJSON_IsObject(doc.get())) return JsonPtr();
  return doc;
}

// The raw JSON text of member `key` of a validated object text, or `fallback`.
std::string raw_member(const char* body, size_t len, const char* key, const char* fallback) {
  const char* v = nullptr;
  size_t n = 0;
  if (json_member_text(body, len, key, v, n)) return std::string(v, n);
  return fallback;
}

// A body of one string member: {"key":value}, and its reader ("" when missing or not a string).
std::string string_body(const char* key, const std::string& value) {
  std::string s = "{\"";
  s += key;
  s += "\":";
  json_append_string(s, value);
  s += '}';
  return s;
}

bool read_string_body(const char* body, size_t len, const char* key, std::string& out) {
  JsonPtr doc = parse_object(body, len);
  if (!doc) return false;
  out = mesh_read_string(doc.get(), key);
  return true;
}

}  // namespace

std::string mesh_encode(const MeshHello& b) {
  std::string s = "{\"v\":" + std::to_string(b.version) + ",\"cluster\":";
  json_append_string(s, b.cluster);
  s += ",\"id\":" + std::to_string(b.id) + ",\"name\":";
  json_append_string(s, b.name);
  s += ",\"nonce\":";
  json_append_string(s, b.nonce);
  if (b.has_enc) s += b.enc ? ",\"enc\":true" : ",\"enc\":false";
  s += ",\"mesh\":";
  json_append_string(s, b.mesh);
  mesh_append_weight(s, b.weight);
  s += ",\"conns\":" + std::to_string(b.conns) + ",\"ext\":";
  mesh_append_addresses(s, b.ext);
  s += ",\"int\":";
  mesh_append_addresses(s, b.intranet);
  s += ",\"inc\":" + std::to_string(b.inc);
  if (b.sync) s += ",\"sync\":true";
  s += '}';
  return s;
}

bool mesh_decode(const char* body, size_t len, MeshHello& out) {
  JsonPtr doc = parse_object(body, len);
  const cJSON* o = doc.get();
  if (!o || !mesh_read_uint(o, "v", 1u << 30, 0, out.version)) return false;
  out.cluster = mesh_read_string(o, "cluster");
  uint64_t id = 0;
  out.id = mesh_read_uint(o, "id", kMaxNodeId, 0, id) ? static_cast<unsigned>(id) : 0;
  out.name = mesh_read_string(o, "name");
  out.nonce = mesh_read_string(o, "nonce");
  const cJSON* enc = cJSON_GetObjectItemCaseSensitive(o, "enc");
  out.has_enc = cJSON_IsBool(enc);
  out.enc = cJSON_IsTrue(enc);
  out.mesh = mesh_read_string(o, "mesh");
  out.weight = mesh_read_weight(o);
  if (!mesh_read_uint(o, "conns", kJsonMaxExactInt, 0, out.conns)) out.conns = 0;
  out.ext = mesh_read_addresses(o, "ext");
  out.intranet = mesh_read_addresses(o, "int");
  if (!mesh_read_uint(o, "inc", kJsonMaxExactInt, 0, out.inc)) out.inc = 0;
  out.sync = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "sync"));
  return true;
}

std::string mesh_encode(const MeshAuth& b) { return string_body("mac", b.mac); }

bool mesh_decode(const char* body, size_t len, MeshAuth& out) { return read_string_body(body, len, "mac", out.mac); }

std::string mesh_encode(const MeshRefuse& b) { return string_body("reason", b.reason); }

bool mesh_decode(const char* body, size_t len, MeshRefuse& out) {
  return read_string_body(body, len, "reason", out.reason);
}

namespace {

void append_update(std::string& s, const SwimUpdate& u) {
  s += "{\"i\":" + std::to_string(u.id) + ",\"n\":" + std::to_string(u.inc) +
       ",\"s\":" + std::to_string(static_cast<int>(u.state));
  if (u.state == SwimState::Dead && u.left) s += ",\"l\":true";
  if (u.state == SwimState::Suspect && u.by) s += ",\"f\":" + std::to_string(u.by);
  if (u.state == SwimState::Alive && u.has_info) {
    s += ",\"a\":{\"name\":";
    json_append_string(s, u.info.name);
    s += ",\"mesh\":";
    json_append_string(s, u.info.mesh_addr);
    mesh_append_weight(s, u.info.weight);
    s += ",\"conns\":" + std::to_string(u.info.conns) + ",\"ext\":";
    mesh_append_addresses(s, u.info.ext);
    s += ",\"int\":";
    mesh_append_addresses(s, u.info.intranet);
    s += '}';
  }
  s += '}';
}

void append_updates(std::string& s, const char* key, const std::vector<SwimUpdate>& us) {
  append_list(s, key, us, append_update);
}

bool read_update(const cJSON* item, SwimUpdate& u) {
  uint64_t id = 0, state = 0;
  if (!cJSON_IsObject(item) || !mesh_read_uint(item, "i", kMaxNodeId, 0, id) || id == 0 ||
      !mesh_read_uint(item, "n", kJsonMaxExactInt, 0, u.inc) || !mesh_read_uint(item, "s", 2, 0, state))
    return false;
  u.id = static_cast<unsigned>(id);
  u.state = static_cast<SwimState>(state);
  u.left = u.state == SwimState::Dead && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "l"));
  uint64_t by = 0;
  if (!mesh_read_uint(item, "f", kMaxNodeId, 0, by)) return false;
  u.by = u.state == SwimState::Suspect ? static_cast<unsigned>(by) : 0;
  const cJSON* a = cJSON_GetObjectItemCaseSensitive(item, "a");
  u.has_info = u.state == SwimState::Alive && cJSON_IsObject(a);
  if (u.has_info) {
    u.info.name = mesh_read_string(a, "name");
    u.info.mesh_addr = mesh_read_string(a, "mesh");
    u.info.weight = mesh_read_weight(a);
    if (!mesh_read_uint(a, "conns", kJsonMaxExactInt, 0, u.info.conns)) u.info.conns = 0;
    u.info.ext = mesh_read_addresses(a, "ext");
    u.info.intranet = mesh_read_addresses(a, "int");
  }
  return true;
}

// The updates under `key` (missing: none); false when one is malformed.
bool read_updates(const cJSON* o, const char* key, std::vector<SwimUpdate>& out) {
  out.clear();
  const cJSON* item;
  cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(o, key)) {
    SwimUpdate u;
    if (!read_update(item, u)) return false;
    out.push_back(std::move(u));
  }
  return true;
}

}  // namespace

size_t mesh_update_size(const SwimUpdate& u) {
  std::string s;
  append_update(s, u);
  return s.size() + 1;
}

std::string mesh_encode(const MeshMembers& b) {
  std::string s = "{\"m\":[";
  for (size_t i = 0; i < b.members.size(); i++) {
    if (i) s += ',';
    append_update(s, b.members[i]);
  }
  return s + "]}";
}

bool mesh_decode(const char* body, size_t len, MeshMembers& out) {
  JsonPtr doc = parse_object(body, len);
  return doc && read_updates(doc.get(), "m", out.members);
}

namespace {

// PING and ACK: {"k":seq,"c":conns[,"d":digest],"u":[update,...]}.
std::string probe_body(uint64_t seq, uint64_t conns, uint64_t digest, const std::vector<SwimUpdate>& updates) {
  std::string s = "{\"k\":" + std::to_string(seq) + ",\"c\":" + std::to_string(conns);
  if (digest) s += ",\"d\":" + std::to_string(digest);
  append_updates(s, "u", updates);
  return s + '}';
}

bool read_probe(const char* body, size_t len, uint64_t& seq, uint64_t& conns, uint64_t& digest,
                std::vector<SwimUpdate>& updates) {
  JsonPtr doc = parse_object(body, len);
  const cJSON* o = doc.get();
  return o && mesh_read_uint(o, "k", kJsonMaxExactInt, 0, seq) && mesh_read_uint(o, "c", kJsonMaxExactInt, 0, conns) &&
         mesh_read_uint(o, "d", kJsonMaxExactInt, 0, digest) && read_updates(o, "u", updates);
}

}  // namespace

std::string mesh_encode(const MeshPing& b) { return probe_body(b.seq, b.conns, b.digest, b.updates); }

bool mesh_decode(const char* body, size_t len, MeshPing& out) {
  return read_probe(body, len, out.seq, out.conns, out.digest, out.updates);
}

std::string mesh_encode(const MeshAck& b) { return probe_body(b.seq, b.conns, 0, b.updates); }

bool mesh_decode(const char* body, size_t len, MeshAck& out) {
  uint64_t digest = 0;
  return read_probe(body, len, out.seq, out.conns, digest, out.updates);
}

std::string mesh_encode(const MeshPingReq& b) {
  std::string s = "{\"k\":" + std::to_string(b.seq) + ",\"target\":" + std::to_string(b.target);
  append_updates(s, "u", b.updates);
  return s + '}';
}

bool mesh_decode(const char* body, size_t len, MeshPingReq& out) {
  JsonPtr doc = parse_object(body, len);
  const cJSON* o = doc.get();
  uint64_t target = 0;
  if (!o || !mesh_read_uint(o, "k", kJsonMaxExactInt, 0, out.seq) || !mesh_read_uint(o, "target", kMaxNodeId, 0, target))
    return false;
  out.target = static_cast<unsigned>(target);
  return read_updates(o, "u", out.updates);
}

std::string mesh_encode(const MeshCall& b) {
  std::string s = "{\"k\":" + std::to_string(b.seq) + ",\"m\":";
  json_append_string(s, b.method);
  s += ",\"p\":";
  s += b.params_text.empty() ? "null" : b.params_text;
  s += '}';
  return s;
}

bool mesh_decode(const char* body, size_t len, MeshCall& out) {
  JsonPtr doc = parse_object(body, len);
  if (!doc || !mesh_read_uint(doc.get(), "k", kJsonMaxExactInt, 0, out.seq)) return false;
  out.method = mesh_read_string(doc.get(), "m");
  out.params = JsonPtr();
  out.params_text.clear();
  if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(doc.get(), "p"))) {
    out.params = JsonPtr(cJSON_DetachItemFromObjectCaseSensitive(doc.get(), "p"));
    out.params_text = raw_member(body, len, "p", "");
  }
  return true;
}

std::string mesh_encode(const MeshReply& b) {
  std::string s = "{\"k\":" + std::to_string(b.seq) + ",\"c\":" + std::to_string(b.code) + ",\"e\":";
  json_append_string(s, b.message);
  s += ",\"r\":";
  s += b.code == 0 ? b.result : "null";
  s += '}';
  return s;
}

bool mesh_decode(const char* body, size_t len, MeshReply& out) {
  JsonPtr doc = parse_object(body, len);
  uint64_t code = 0;
  if (!doc || !mesh_read_uint(doc.get(), "k", kJsonMaxExactInt, 0, out.seq) ||
      !mesh_read_uint(doc.get(), "c", 65535, 101, code))
    return false;
  out.code = static_cast<int>(code);
  out.message = mesh_read_string(doc.get(), "e");
  out.result = raw_member(body, len, "r", "null");
  return true;
}

std::string mesh_encode(const MeshTopics& b) {
  std::string s = "{\"t\":[";
  for (size_t i = 0; i < b.topics.size(); i++) {
    if (i) s += ',';
    json_append_string(s, b.topics[i]);
  }
  return s + "]}";
}

bool mesh_decode(const char* body, size_t len, MeshTopics& out) {
  JsonPtr doc = parse_object(body, len);
  if (!doc) return false;
  out.topics.clear();
  const cJSON* item;
  cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(doc.get(), "t")) {
    if (cJSON_IsString(item) && *item->valuestring && out.topics.size() < kMeshMaxTopics)
      out.topics.emplace_back(item->valuestring);
  }
  return true;
}

std::string mesh_encode(const QueueEvent& ev, unsigned this_node) {
  std::string s = "{";
  append_event_members(s, ev.ref(), this_node);
  s += ",\"f\":" + std::to_string(ev.fwd) + ",\"h\":" + std::to_string(ev.hops) + "}";
  return s;
}

bool mesh_decode(const char* body, size_t len, MeshEvent& out) {
  JsonPtr doc = parse_object(body, len);
  const cJSON* o = doc.get();
  uint64_t hops = 0, node = 0, client = 0;
  if (!o || !mesh_read_uint(o, "f", kJsonMaxExactInt, 0, out.ev.fwd) || !mesh_read_uint(o, "h", 255, 0, hops))
    return false;
  QueueEvent& ev = out.ev;
  ev.hops = static_cast<unsigned>(hops);
  ev.node = mesh_read_uint(o, "n", kMaxNodeId, 0, node) ? static_cast<unsigned>(node) : 0;
  ev.topic = mesh_read_string(o, "t");
  out.complete = !ev.topic.empty() && json_client_id(cJSON_GetObjectItemCaseSensitive(o, "c"), nullptr, 0, client);
  ev.client = out.complete ? client : 0;
  ev.data = raw_member(body, len, "d", "null");
  ev.context = raw_member(body, len, "x", "");
  ev.redelivered = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "r"));
  return true;
}

bool mesh_event_handle(const char* body, size_t len, uint64_t& fwd) {
  // cJSON without the strict check, which refused this body: cJSON reads text that is not UTF-8. "f"
  // is then read as mesh_decode reads it; 0 (absent) is no handle.
  JsonPtr doc(cJSON_ParseWithLength(body, len));
  uint64_t f = 0;
  if (!cJSON_IsObject(doc.get()) || !mesh_read_uint(doc.get(), "f", kJsonMaxExactInt, 0, f) || f == 0) return false;
  fwd = f;
  return true;
}

std::string mesh_encode(const MeshDone& b) { return "{\"f\":" + std::to_string(b.fwd) + "}"; }

bool mesh_decode(const char* body, size_t len, MeshDone& out) {
  JsonPtr doc = parse_object(body, len);
  return doc && mesh_read_uint(doc.get(), "f", kJsonMaxExactInt, 0, out.fwd);
}

namespace {

void append_string_list(std::string& s, const char* key, const std::vector<std::string>& list) {
  append_list(s, key, list, [](std::string& out, const std::string& v) { json_append_string(out, v); });
}

bool read_bool(const cJSON* obj, const char* key, bool& out) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v) return true;
  if (!cJSON_IsBool(v)) return false;
  out = cJSON_IsTrue(v);
  return true;
}

void read_channels(const cJSON* obj, const char* key, std::vector<std::string>& out) {
  const cJSON* item;
  cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(obj, key)) {
    if (!cJSON_IsString(item)) continue;
    size_t n = std::strlen(item->valuestring);
    if (n >= 1 && n <= kMeshMaxChannelName) out.emplace_back(item->valuestring, n);
  }
}

}  // namespace

std::string mesh_encode(const MeshInterest& b) {
  std::string s = "{\"k\":" + std::to_string(b.seq);
  if (b.full) s += ",\"full\":true";
  if (b.more) s += ",\"more\":true";
  if (b.all) s += ",\"all\":true";
  if (!b.added.empty()) append_string_list(s, "a", b.added);
  if (!b.removed.empty()) append_string_list(s, "r", b.removed);
  return s + "}";
}

bool mesh_decode(const char* body, size_t len, MeshInterest& out) {
  JsonPtr doc = parse_object(body, len);
  if (!doc) return false;
  out = MeshInterest{};
  if (!mesh_read_uint(doc.get(), "k", kJsonMaxExactInt, 0, out.seq) || !read_bool(doc.get(), "full", out.full) ||
      !read_bool(doc.get(), "more", out.more) || !read_bool(doc.get(), "all", out.all))
    return false;
  read_channels(doc.get(), "a", out.added);
  read_channels(doc.get(), "r", out.removed);
  return true;
}

std::string mesh_encode(const MeshInterestAck& b) { return "{\"k\":" + std::to_string(b.seq) + "}"; }

bool mesh_decode(const char* body, size_t len, MeshInterestAck& out) {
  JsonPtr doc = parse_object(body, len);
  return doc && mesh_read_uint(doc.get(), "k", kJsonMaxExactInt, 0, out.seq);
}

std::vector<MeshInterest> mesh_interest_split(bool full, const std::vector<std::string>& added,
                                              const std::vector<std::string>& removed, size_t max_bytes) {
  std::vector<MeshInterest> out(1);
  out.back().full = full;
  size_t bytes = 0;
  auto put = [&](const std::string& ch, bool add) {
    if (bytes > 0 && bytes + ch.size() > max_bytes) {
      out.emplace_back();
      bytes = 0;
    }
    (add ? out.back().added : out.back().removed).push_back(ch);
    bytes += ch.size();
  };
  for (const std::string& ch : added) put(ch, true);
  for (const std::string& ch : removed) put(ch, false);
  for (size_t i = 0; i + 1 < out.size(); i++) out[i].more = true;
  return out;
}

bool mesh_body_is_object(const char* body, size_t len) { return static_cast<bool>(parse_object(body, len)); }


void mesh_append_addresses(std::string& s, const NodeAddresses& a) {
  s += "{\"tcp\":";
  json_append_string(s, a.tcp);
  s += ",\"ws\":";
  json_append_string(s, a.ws);
  s += ",\"wss\":";
  json_append_string(s, a.wss);
  s += '}';
}

// Route weights are doubles by nature: any finite positive number up to 1e6, else 1.
double mesh_read_weight(const cJSON* o) {
  const cJSON* w = cJSON_GetObjectItemCaseSensitive(o, "weight");
  return cJSON_IsNumber(w) && w->valuedouble > 0 && w->valuedouble <= 1e6 ? w->valuedouble : 1;
}

// ,"weight":W as the C++ stream writes a double (shortest form that reads back).
void mesh_append_weight(std::string& s, double weight) {
  std::ostringstream w;
  w << weight;
  s += ",\"weight\":" + w.str();
}

NodeAddresses mesh_read_addresses(const cJSON* obj, const char* key) {
  const cJSON* a = cJSON_GetObjectItemCaseSensitive(obj, key);
  return NodeAddresses{mesh_read_string(a, "tcp"), mesh_read_string(a, "ws"), mesh_read_string(a, "wss")};
}

bool mesh_read_uint(const cJSON* obj, const char* key, uint64_t max, uint64_t fallback, uint64_t& out) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v) {
    out = fallback;
    return true;
  }
  int64_t n = 0;
  if (!json_integer(v, 0, static_cast<int64_t>(std::min<uint64_t>(max, kJsonMaxExactInt)), n)) return false;
  out = static_cast<uint64_t>(n);
  return true;
}

std::string mesh_read_string(const cJSON* obj, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? v->valuestring : "";
}

std::string mesh_nonce() {
  unsigned char n[16];
  RAND_bytes(n, sizeof n);
  return base64_encode(n, sizeof n);
}

}  // namespace mg
