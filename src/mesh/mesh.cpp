#include "mesh/mesh.h"

#include <algorithm>
#include <sstream>

#include "api/api_methods.h"
#include "api/node_list.h"
#include "core/json_text.h"
#include "core/log.h"
#include "hub.h"
#include "net/listen_socket.h"

namespace mg {

namespace {

constexpr uint64_t kRedialMs = 1000;         // a failed or lost address is dialled again after this
constexpr uint64_t kRefusedRedialMs = 10000;  // ... or this, when the peer refused us
constexpr size_t kMaxPendingLinks = 64;        // links not yet authenticated, at most

// Methods another node may run here: what the API forwards, nothing else.
bool callable_remotely(const std::string& m) {
  return m == "mesh.send" || m == "mesh.publish" || m == "mesh.broadcast" || m == "channel.count" ||
         m == "conn.call" || m == "conn.info" || m == "node.stats" || m == "channel.top";
}

// Route weights are doubles by nature: any finite positive number, else 1.
double weight_field(const cJSON* obj) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, "weight");
  return cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble <= 1e6 ? v->valuedouble : 1;
}

NodeAddresses addresses_field(const cJSON* obj, const char* key) {
  const cJSON* a = cJSON_GetObjectItemCaseSensitive(obj, key);
  return NodeAddresses{mesh_read_string(a, "tcp"), mesh_read_string(a, "ws"), mesh_read_string(a, "wss")};
}

void append_addresses(std::string& s, const NodeAddresses& a) {
  s += "{\"tcp\":";
  json_append_string(s, a.tcp);
  s += ",\"ws\":";
  json_append_string(s, a.ws);
  s += ",\"wss\":";
  json_append_string(s, a.wss);
  s += '}';
}

// The raw JSON text of member `key` of a validated object text, or `fallback`.
std::string raw_field(const char* body, size_t len, const char* key, const char* fallback) {
  const char* v = nullptr;
  size_t n = 0;
  if (json_member_text(body, len, key, v, n)) return std::string(v, n);
  return fallback;
}

bool split_host_port(const std::string& addr, std::string& host, std::string& port) {
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == addr.size()) return false;
  host = addr.substr(0, colon);
  port = addr.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return true;
}

}  // namespace

Mesh::Mesh(Hub& hub, const Config& cfg)
    : hub_(hub), cfg_(cfg), loop_(hub.loop()), self_(static_cast<unsigned>(cfg.node_id)),
      heartbeat_ms_(std::max<uint64_t>(100, uint64_t{cfg.mesh_dead_after} * 1000 / 4)) {
  if (!cfg.mesh_advertise.empty()) {
    self_addr_ = cfg.mesh_advertise;
  } else {
    std::string host = !cfg.intranet_advertise.empty() ? cfg.intranet_advertise : cfg.advertise;
    if (host.empty()) host = cfg.mesh_bind;
    self_addr_ = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(cfg.mesh_port);
  }
}

Mesh::~Mesh() = default;

bool Mesh::start() {
  std::string error;
  int fd = open_listen_socket(cfg_.mesh_bind, cfg_.mesh_port, false, error);
  if (fd < 0) {
    LOG_ERROR("mesh: cannot listen on %s", error.c_str());
    return false;
  }
  int rc = start_listening(loop_, &server_, fd, &Mesh::on_connection);
  if (rc != 0) {
    LOG_ERROR("mesh: cannot listen: %s", uv_strerror(rc));
    return false;
  }
  server_.data = this;
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  uv_timer_start(&timer_, &Mesh::on_tick, 0, heartbeat_ms_);
  for (const std::string& seed : cfg_.mesh_seeds)
    if (seed != self_addr_) dials_[seed];
  started_ = true;
  LOG_INFO("mesh: node %u of cluster \"%s\" listening on %s:%d, reachable as %s, %zu seed(s)", self_,
           cfg_.mesh_cluster.c_str(), cfg_.mesh_bind.c_str(), cfg_.mesh_port, self_addr_.c_str(), cfg_.mesh_seeds.size());
  return true;
}

void Mesh::stop() {
  if (stopped_ || !started_) return;
  stopped_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&server_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
  std::vector<MeshLink*> links;
  for (auto& [serial, l] : links_) links.push_back(l);
  for (MeshLink* l : links) l->close_now();
  std::vector<unsigned> nodes;
  for (auto& [k, c] : calls_) nodes.push_back(c.node);
  for (unsigned n : nodes) fail_calls(n, "this node is shutting down");
}

// --- links ---

void Mesh::on_connection(uv_stream_t* server, int status) {
  if (status < 0) return;
  auto* self = static_cast<Mesh*>(server->data);
  auto* link = new MeshLink(*self, self->loop_, false, "", ++self->next_link_serial_);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(link->tcp())) != 0) {
    link->close_now();
    return;
  }
  size_t pending = 0;
  for (const auto& [serial, l] : self->links_) pending += !l->up;
  if (pending >= kMaxPendingLinks) {  // unauthenticated connections cannot pile up
    LOG_WARN("mesh: connection from %s refused: %zu links are still in their handshake",
             peer_address(link->tcp()).c_str(), pending);
    link->close_now();
    return;
  }
  link->dial_addr = peer_address(link->tcp());
  self->links_.emplace(link->serial, link);
  self->connected(link);
}

void Mesh::connected(MeshLink* link) {
  uv_tcp_nodelay(link->tcp(), 1);
  link->my_hello = hello_body();
  link->start(link->my_hello);
}

std::string Mesh::hello_body() const {
  std::string s = "{\"v\":" + std::to_string(kMeshProtocolVersion) + ",\"cluster\":";
  json_append_string(s, cfg_.mesh_cluster);
  s += ",\"id\":" + std::to_string(self_) + ",\"name\":";
  json_append_string(s, cfg_.node_name);
  s += ",\"nonce\":";
  json_append_string(s, mesh_nonce());  // fresh for every link: no two transcripts are alike
  s += cfg_.mesh_encrypt ? ",\"enc\":true" : ",\"enc\":false";
  s += ",\"mesh\":";
  json_append_string(s, self_addr_);
  std::ostringstream w;
  w << cfg_.route_weight;
  s += ",\"weight\":" + w.str() + ",\"conns\":" + std::to_string(hub_.client_count()) + ",\"ext\":";
  append_addresses(s, hub_.own_addresses(false));
  s += ",\"int\":";
  append_addresses(s, hub_.own_addresses(true));
  s += '}';
  return s;
}

void Mesh::dial(const std::string& addr) {
  std::string host, port;
  Dial& d = dials_[addr];
  if (!split_host_port(addr, host, port)) {
    d.next_ms = now() + kRefusedRedialMs;
    return;
  }
  d.busy = true;
  struct Resolve {
    uv_getaddrinfo_t req;
    Mesh* mesh;
    std::string addr;
  };
  auto* r = new Resolve{{}, this, addr};
  r->req.data = r;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(loop_, &r->req, [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
    std::unique_ptr<Resolve> owned(static_cast<Resolve*>(req->data));
    Mesh* self = owned->mesh;
    Dial& dd = self->dials_[owned->addr];
    if (status < 0 || !res || self->stopped_) {
      if (status < 0) LOG_DEBUG("mesh: cannot resolve %s: %s", owned->addr.c_str(), uv_strerror(status));
      dd.busy = false;
      dd.next_ms = self->now() + kRedialMs;
      uv_freeaddrinfo(res);
      return;
    }
    auto* link = new MeshLink(*self, self->loop_, true, owned->addr, ++self->next_link_serial_);
    self->links_.emplace(link->serial, link);
    auto* conn = new uv_connect_t;
    conn->data = link;
    int crc = uv_tcp_connect(conn, link->tcp(), res->ai_addr, [](uv_connect_t* c, int st) {
      auto* l = static_cast<MeshLink*>(c->data);
      delete c;
      if (st < 0 || l->closed()) {
        if (st < 0 && st != UV_ECANCELED) LOG_DEBUG("mesh: cannot connect to %s: %s", l->dial_addr.c_str(), uv_strerror(st));
        l->close_now();
        return;
      }
      static_cast<Mesh*>(l->mesh_owner())->connected(l);
    });
    uv_freeaddrinfo(res);
    if (crc != 0) {
      delete conn;
      link->close_now();
    }
  }, host.c_str(), port.c_str(), &hints);
  if (rc != 0) {
    delete r;
    d.busy = false;
    d.next_ms = now() + kRedialMs;
  }
}

MeshLink* Mesh::find_link(uint64_t serial) const {
  auto it = links_.find(serial);
  return it == links_.end() || it->second->closing() ? nullptr : it->second;
}

void Mesh::on_link_drained(MeshLink& link) {
  if (link.up) hub_.queue().remote_ready_changed();
}

void Mesh::on_link_closed(MeshLink& link) {
  links_.erase(link.serial);
  if (link.outbound) {
    Dial& d = dials_[link.dial_addr];
    d.busy = false;
    d.next_ms = now() + (link.was_refused ? kRefusedRedialMs : kRedialMs);
  }
  if (!link.up || link.replaced) return;
  auto it = members_.find(link.peer);
  if (it == members_.end() || it->second.link != &link) return;
  if (handshake_in_progress(link.peer)) {
    // Both nodes dialled at once and the peer kept the other link, which is one AUTH away here:
    // the node is not dead, its link is changing.
    it->second.link = nullptr;
    it->second.relink_deadline_ms = now() + uint64_t{cfg_.mesh_dead_after} * 1000;
    LOG_DEBUG("mesh: node %u: link closed, another is in its handshake", link.peer);
    return;
  }
  member_dead(it->second, "its link closed");
}

bool Mesh::handshake_in_progress(unsigned peer) const {
  for (const auto& [serial, l] : links_)
    if (l->peer == peer && l->hello_seen && !l->up && !l->closing()) return true;
  return false;
}

bool Mesh::send_to(Member& m, MeshType type, const std::string& body, uint64_t limit) {
  if (!m.alive) return false;
  if (m.link) return m.link->send(type, body, limit);
  if (m.held_bytes > limit) return false;
  m.held_bytes += body.size();
  m.held.emplace_back(type, body);
  return true;
}

// --- handshake ---

void Mesh::refuse(MeshLink& link, const std::string& reason) {
  refused_++;
  link.was_refused = true;  // whichever side refused, do not dial it again at once
  LOG_WARN("mesh: refused peer %s%s: %s", link.dial_addr.c_str(),
           link.peer ? (" (node " + std::to_string(link.peer) + ")").c_str() : "", reason.c_str());
  std::string body = "{\"reason\":";
  json_append_string(body, reason);
  body += '}';
  link.send_control(MeshType::Refuse, body);
  link.close_after_flush();
}

void Mesh::on_frame(MeshLink& link, MeshType type, const char* body, size_t len) {
  if (stopped_) return;
  JsonPtr doc = json_parse_strict(body, len);
  if (!doc || !cJSON_IsObject(doc.get())) {
    refuse(link, std::string("malformed ") + mesh_type_name(type) + " frame");
    return;
  }
  const cJSON* o = doc.get();
  if (type == MeshType::Refuse) {
    LOG_WARN("mesh: %s refused this node: %s", link.dial_addr.c_str(), mesh_read_string(o, "reason").c_str());
    link.was_refused = true;
    link.close_now();
    return;
  }
  if (!link.up) {
    if (type == MeshType::Hello) on_hello(link, o, body, len);
    else if (type == MeshType::Auth) on_auth(link, o);
    else refuse(link, std::string("expected HELLO and AUTH before ") + mesh_type_name(type));
    return;
  }
  auto mit = members_.find(link.peer);
  bool well_formed = true;
  switch (type) {
    case MeshType::Members: well_formed = on_members(o); break;
    case MeshType::Ping: {
      uint64_t t = 0, conns = 0;
      well_formed = mesh_read_uint(o, "t", kJsonMaxExactInt, 0, t) && mesh_read_uint(o, "conns", kJsonMaxExactInt, 0, conns);
      if (!well_formed) break;
      if (mit != members_.end()) mit->second.connections = conns;
      link.send_control(MeshType::Pong, "{\"t\":" + std::to_string(t) + "}");
      break;
    }
    case MeshType::Pong: {
      uint64_t t = 0;
      well_formed = mesh_read_uint(o, "t", kJsonMaxExactInt, 0, t);
      if (well_formed && mit != members_.end() && t <= now()) mit->second.rtt_ms = static_cast<double>(now() - t);
      break;
    }
    case MeshType::Call: well_formed = on_call(link, o, body, len); break;
    case MeshType::Reply: well_formed = on_reply(o, body, len); break;
    case MeshType::Topics: on_topics(link, o); break;
    case MeshType::Event: well_formed = on_event(link, o, body, len); break;
    case MeshType::Done: {
      uint64_t f = 0;
      well_formed = mesh_read_uint(o, "f", kJsonMaxExactInt, 0, f);
      if (well_formed) hub_.queue().remote_done(f);
      break;
    }
    default: refuse(link, std::string("unexpected ") + mesh_type_name(type) + " after the handshake"); break;
  }
  if (!well_formed) refuse(link, std::string("malformed ") + mesh_type_name(type) + " frame: a number out of range");
}

void Mesh::on_bad_frame(MeshLink& link, const std::string& why) {
  bad_frames_++;
  LOG_WARN("mesh: link %s%s closed: %s", link.dial_addr.c_str(),
           link.peer ? (" (node " + std::to_string(link.peer) + ")").c_str() : "", why.c_str());
  link.close_now();
}

void Mesh::on_hello(MeshLink& link, const cJSON* o, const char* body, size_t len) {
  if (link.hello_seen) return refuse(link, "HELLO sent twice");
  uint64_t v = 0;
  if (!mesh_read_uint(o, "v", 1u << 30, 0, v)) return refuse(link, "malformed HELLO frame: v is not a version number");
  if (v != kMeshProtocolVersion)
    return refuse(link, "protocol version " + std::to_string(v) + " is not supported (this node speaks " +
                            std::to_string(kMeshProtocolVersion) + ")");
  std::string cluster = mesh_read_string(o, "cluster");
  if (cluster != cfg_.mesh_cluster)
    return refuse(link, "cluster name \"" + cluster + "\" does not match this cluster \"" + cfg_.mesh_cluster + "\"");
  uint64_t id = 0;
  if (!mesh_read_uint(o, "id", 1023, 0, id) || id < 1) return refuse(link, "bad node id");
  unsigned peer = static_cast<unsigned>(id);
  std::string mesh_addr = mesh_read_string(o, "mesh");
  if (peer == self_) return refuse(link, "duplicate node id " + std::to_string(peer) + ": it is this node's id");
  auto it = members_.find(peer);
  if (it != members_.end() && it->second.alive && it->second.mesh_addr != mesh_addr)
    return refuse(link, "duplicate node id " + std::to_string(peer) + ": already in use by " + it->second.mesh_addr);
  std::string nonce = mesh_read_string(o, "nonce");
  if (nonce.size() < 16 || nonce.size() > 64) return refuse(link, "HELLO without a nonce of 16 to 64 characters");
  const cJSON* enc = cJSON_GetObjectItemCaseSensitive(o, "enc");
  if (!cJSON_IsBool(enc)) return refuse(link, "HELLO without \"enc\"");
  if (cJSON_IsTrue(enc) != cfg_.mesh_encrypt)
    return refuse(link, std::string("encryption is ") + (cfg_.mesh_encrypt ? "on" : "off") + " on this node and " +
                            (cfg_.mesh_encrypt ? "off" : "on") + " on the peer: set [mesh] encrypt alike on every node");
  link.peer = peer;
  link.peer_hello.assign(body, len);
  link.hello_seen = true;
  link.transcript = link.outbound ? mesh_transcript(link.my_hello, link.peer_hello)
                                  : mesh_transcript(link.peer_hello, link.my_hello);
  if (link.outbound) {
    // The dialler proves first, over a transcript holding its own fresh nonce; the listener proves
    // only after checking this proof, so a stranger who dials a node learns no proof at all.
    dials_[link.dial_addr].node = peer;
    send_auth(link, MeshRole::Dialler);
  }
}

void Mesh::send_auth(MeshLink& link, MeshRole role) {
  std::string auth = "{\"mac\":";
  json_append_string(auth, mesh_proof(cfg_.mesh_secret, role, link.transcript));
  auth += '}';
  link.send_control(MeshType::Auth, auth);
}

void Mesh::on_auth(MeshLink& link, const cJSON* o) {
  if (!link.hello_seen) return refuse(link, "AUTH before HELLO");
  MeshRole peer_role = link.outbound ? MeshRole::Listener : MeshRole::Dialler;
  if (!mesh_proof_matches(mesh_read_string(o, "mac"), mesh_proof(cfg_.mesh_secret, peer_role, link.transcript)))
    return refuse(link, "authentication failed: wrong secret");
  if (!link.outbound) send_auth(link, MeshRole::Listener);
  link.secure(mesh_session_keys(cfg_.mesh_secret, link.transcript), cfg_.mesh_encrypt);
  link_up(link);
}

void Mesh::link_up(MeshLink& link) {
  Member& m = members_[link.peer];
  if (m.link && m.link != &link) {
    // Two links to one peer (both dialled at once, or a seed and a member address): keep the one
    // dialled by the lower node id, or when one node dialled both, the one with the lower
    // transcript. Both sides compute the same answer; the side that has only the loser up yet
    // keeps the node alive while the winner finishes its handshake (on_link_closed).
    unsigned kept_dialer = m.link->outbound ? self_ : link.peer;
    unsigned new_dialer = link.outbound ? self_ : link.peer;
    bool keep_old = kept_dialer != new_dialer ? kept_dialer < new_dialer : m.link->transcript < link.transcript;
    MeshLink* loser = keep_old ? &link : m.link;
    loser->replaced = true;
    loser->close_after_flush();  // what was already written on it still reaches the peer
    if (keep_old) return;
  }
  link.up = true;
  JsonPtr hello = json_parse_strict(link.peer_hello.data(), link.peer_hello.size());
  const cJSON* h = hello.get();
  m.id = link.peer;
  m.name = mesh_read_string(h, "name");
  m.mesh_addr = mesh_read_string(h, "mesh");
  m.weight = weight_field(h);
  if (!mesh_read_uint(h, "conns", kJsonMaxExactInt, 0, m.connections)) m.connections = 0;
  m.external = addresses_field(h, "ext");
  m.intranet = addresses_field(h, "int");
  bool was_alive = m.alive;
  m.alive = true;
  m.link = &link;
  m.relink_deadline_ms = 0;
  for (auto& [type, body] : m.held) link.send_control(type, body);
  m.held.clear();
  m.held_bytes = 0;
  if (!m.mesh_addr.empty()) dials_[m.mesh_addr].node = m.id;
  if (!was_alive) LOG_INFO("mesh: node %u (%s) is alive, at %s", m.id, m.name.c_str(), m.mesh_addr.c_str());
  for (auto& [serial, l] : links_)
    if (l->up && !l->closing()) send_members(*l);  // everyone learns of everyone
  link.send_control(MeshType::Topics, topics_body());
}

void Mesh::member_dead(Member& m, const std::string& why) {
  if (!m.alive) return;
  m.alive = false;
  MeshLink* link = m.link;
  m.link = nullptr;
  m.rtt_ms = -1;
  m.relink_deadline_ms = 0;
  m.held.clear();
  m.held_bytes = 0;
  if (link) link->close_now();
  LOG_WARN("mesh: node %u (%s) is dead: %s", m.id, m.name.c_str(), why.c_str());
  fail_calls(m.id, "node " + std::to_string(m.id) + " is unavailable (" + why + ")");
  hub_.queue().set_remote_topics(m.id, {});
}

// --- membership, heartbeats ---

void Mesh::send_members(MeshLink& link) {
  std::string s = "{\"m\":[{\"id\":" + std::to_string(self_) + ",\"mesh\":";
  json_append_string(s, self_addr_);
  s += '}';
  for (const auto& [id, m] : members_) {
    if (!m.alive || m.mesh_addr.empty()) continue;
    s += ",{\"id\":" + std::to_string(id) + ",\"mesh\":";
    json_append_string(s, m.mesh_addr);
    s += '}';
  }
  s += "]}";
  link.send_control(MeshType::Members, s);
}

bool Mesh::on_members(const cJSON* o) {
  const cJSON* list = cJSON_GetObjectItemCaseSensitive(o, "m");
  const cJSON* item;
  cJSON_ArrayForEach(item, list) {
    uint64_t id = 0;
    if (!mesh_read_uint(item, "id", 1023, 0, id)) return false;
    std::string addr = mesh_read_string(item, "mesh");
    if (id < 1 || id == self_ || addr.empty() || addr == self_addr_) continue;
    auto it = members_.find(static_cast<unsigned>(id));
    if (it != members_.end() && it->second.alive) continue;
    if (dials_.size() >= 4096 && !dials_.count(addr)) continue;  // bounded, whatever peers claim
    dials_[addr].node = static_cast<unsigned>(id);
  }
  return true;
}

void Mesh::on_tick(uv_timer_t* t) { static_cast<Mesh*>(t->data)->tick(); }

void Mesh::tick() {
  uint64_t t = now();
  uint64_t dead_ms = uint64_t{cfg_.mesh_dead_after} * 1000;
  // Checked once per tick: a peer silent for dead_after minus one tick is dead by the end of this
  // tick, so death is noticed within dead_after (a live peer pings every tick: 3 pings missed).
  uint64_t silent_ms = dead_ms - heartbeat_ms_;
  std::vector<MeshLink*> links;
  for (auto& [serial, l] : links_) links.push_back(l);
  std::string ping = "{\"t\":" + std::to_string(t) + ",\"conns\":" + std::to_string(hub_.client_count()) + "}";
  for (MeshLink* l : links) {
    if (l->closing()) continue;
    if (!l->up) {
      if (t - l->opened_ms > dead_ms) l->close_now();  // a connect or handshake that never finished
      continue;
    }
    // Silent, or not reading what we send (replies and heartbeats are small but unbounded
    // otherwise): either way the node is not working with us.
    bool silent = t - l->last_heard_ms > silent_ms;
    if (silent || l->queued_bytes() > cfg_.mesh_max_link_buffer) {
      std::string why = silent ? "not heard from for " + std::to_string(cfg_.mesh_dead_after) + " s"
                               : "it does not read its link (" + std::to_string(l->queued_bytes()) + " bytes waiting)";
      auto it = members_.find(l->peer);
      if (it != members_.end() && it->second.link == l) member_dead(it->second, why);
      else l->close_now();
      continue;
    }
    l->send_control(MeshType::Ping, ping);
  }
  for (auto& [id, m] : members_)
    if (m.alive && !m.link && m.relink_deadline_ms && t >= m.relink_deadline_ms)
      member_dead(m, "its link closed and no other came up");
  std::vector<uint64_t> expired;
  for (auto& [k, c] : calls_)
    if (c.deadline_ms <= t) expired.push_back(k);
  for (uint64_t k : expired) {
    auto it = calls_.find(k);
    Reply reply = std::move(it->second.reply);
    unsigned node = it->second.node;
    calls_.erase(it);
    calls_failed_++;
    reply(ApiResult::error(501, "node " + std::to_string(node) + " did not answer within " +
                                    std::to_string(cfg_.mesh_call_timeout) + " s"));
  }
  for (auto& [addr, d] : dials_) {
    if (d.busy || t < d.next_ms || addr == self_addr_) continue;
    auto it = d.node ? members_.find(d.node) : members_.end();
    if (it != members_.end() && it->second.alive) continue;
    dial(addr);
  }
}

// --- calls ---

void Mesh::call(unsigned node, const std::string& method, const std::string& params_json, int not_here_code,
                Reply reply) {
  auto it = members_.find(node);
  if (it == members_.end()) {
    reply(ApiResult::error(not_here_code, "client not connected (node " + std::to_string(node) + " is not a member)"));
    return;
  }
  Member& m = it->second;
  if (!m.alive) {
    reply(ApiResult::error(501, "node " + std::to_string(node) + " is unavailable"));
    return;
  }
  uint64_t k = ++next_call_;
  std::string body = "{\"k\":" + std::to_string(k) + ",\"m\":";
  json_append_string(body, method);
  body += ",\"p\":" + params_json + "}";
  if (!send_to(m, MeshType::Call, body, cfg_.mesh_max_link_buffer)) {
    calls_failed_++;
    reply(ApiResult::error(501, "the link to node " + std::to_string(node) + " is congested"));
    return;
  }
  calls_.emplace(k, PendingCall{node, now() + uint64_t{cfg_.mesh_call_timeout} * 1000, std::move(reply)});
}

void Mesh::fanout(const std::string& method, const std::string& params_json, std::function<void(const FanoutCount&)> done) {
  std::vector<unsigned> peers;
  for (const auto& [id, m] : members_)
    if (m.alive) peers.push_back(id);
  if (peers.empty()) {
    done(FanoutCount{});
    return;
  }
  struct State {
    size_t pending;
    FanoutCount total;
    std::function<void(const FanoutCount&)> done;
  };
  auto state = std::make_shared<State>(State{peers.size(), {}, std::move(done)});
  for (unsigned id : peers) {
    call(id, method, params_json, 501, [state](const ApiResult& r) {
      if (r.code == 0) {
        JsonPtr res = json_parse_strict(r.result.data(), r.result.size());
        uint64_t ok = 0, failed = 0;
        if (mesh_read_uint(res.get(), "s", kJsonMaxExactInt, 0, ok) && mesh_read_uint(res.get(), "f", kJsonMaxExactInt, 0, failed)) {
          state->total.ok += ok;
          state->total.failed += failed;
        }
      }
      if (--state->pending == 0) state->done(state->total);
    });
  }
}

bool Mesh::on_call(MeshLink& link, const cJSON* o, const char* body, size_t len) {
  uint64_t k = 0;
  if (!mesh_read_uint(o, "k", kJsonMaxExactInt, 0, k)) return false;
  std::string method = mesh_read_string(o, "m");
  uint64_t serial = link.serial;
  unsigned peer = link.peer;
  Mesh* self = this;
  Reply reply = [self, serial, peer, k](const ApiResult& r) {
    std::string s = "{\"k\":" + std::to_string(k) + ",\"c\":" + std::to_string(r.code) + ",\"e\":";
    json_append_string(s, r.message);
    s += ",\"r\":" + (r.code == 0 ? r.result : std::string("null")) + "}";
    // On the link the call came on, or whichever link the caller has now (calls are matched by k).
    if (MeshLink* l = self->find_link(serial)) return l->send_control(MeshType::Reply, s);
    auto it = self->members_.find(peer);
    if (it != self->members_.end()) self->send_to(it->second, MeshType::Reply, s, UINT64_MAX);
  };
  if (hub_.draining()) {
    reply(ApiResult::error(501, "node " + std::to_string(self_) + " is draining"));
    return true;
  }
  if (!callable_remotely(method)) {
    reply(ApiResult::error(101, "method \"" + method + "\" cannot be called from another node"));
    return true;
  }
  const cJSON* p = cJSON_GetObjectItemCaseSensitive(o, "p");
  if (!cJSON_IsObject(p)) {
    reply(ApiResult::error(101, "a call needs params"));
    return true;
  }
  const char* ptext = nullptr;
  size_t plen = 0;
  json_member_text(body, len, "p", ptext, plen);
  auto doc = std::make_shared<JsonPtr>(cJSON_Duplicate(p, true));
  ApiCall call{hub_, nullptr, doc->get(), [reply, doc](const ApiResult& r) { reply(r); }, ptext, plen};
  call.local_only = true;
  api_dispatch(method, std::move(call));
  return true;
}

bool Mesh::on_reply(const cJSON* o, const char* body, size_t len) {
  uint64_t k = 0, c = 0;
  if (!mesh_read_uint(o, "k", kJsonMaxExactInt, 0, k) || !mesh_read_uint(o, "c", 65535, 101, c)) return false;
  auto it = calls_.find(k);
  if (it == calls_.end()) return true;  // answered too late: the caller already got 501
  Reply reply = std::move(it->second.reply);
  calls_.erase(it);
  int code = static_cast<int>(c);
  if (code == 0) {
    calls_ok_++;
    reply(ApiResult::ok(raw_field(body, len, "r", "null")));
  } else {
    calls_failed_++;
    reply(ApiResult::error(code, mesh_read_string(o, "e")));
  }
  return true;
}

void Mesh::fail_calls(unsigned node, const std::string& why) {
  std::vector<uint64_t> ks;
  for (auto& [k, c] : calls_)
    if (c.node == node) ks.push_back(k);
  for (uint64_t k : ks) {
    auto it = calls_.find(k);
    Reply reply = std::move(it->second.reply);
    calls_.erase(it);
    calls_failed_++;
    reply(ApiResult::error(501, why));
  }
}

// --- queue across the mesh ---

std::string Mesh::topics_body() const {
  std::string s = "{\"t\":[";
  std::vector<std::string> local = hub_.queue().local_topics();
  for (size_t i = 0; i < local.size(); i++) {
    if (i) s += ',';
    json_append_string(s, local[i]);
  }
  return s + "]}";
}

void Mesh::announce_topics() {
  std::string s = topics_body();
  for (auto& [serial, l] : links_)
    if (l->up && !l->closing()) l->send_control(MeshType::Topics, s);
}

void Mesh::on_topics(MeshLink& link, const cJSON* o) {
  std::vector<std::string> topics;
  const cJSON* item;
  cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(o, "t")) {
    if (cJSON_IsString(item) && *item->valuestring && topics.size() < 10000) topics.emplace_back(item->valuestring);
  }
  hub_.queue().set_remote_topics(link.peer, topics);
}

bool Mesh::remote_ready(unsigned node) const {
  auto it = members_.find(node);
  return it != members_.end() && it->second.alive && it->second.link && !it->second.link->closing() &&
         it->second.link->queued_bytes() < cfg_.mesh_max_link_buffer / 4;
}

void Mesh::remote_forward(unsigned node, const QueueEvent& ev) {
  auto it = members_.find(node);
  if (it == members_.end() || !it->second.link) return;
  std::string s = "{\"t\":";
  json_append_string(s, ev.topic);
  s += ",\"c\":\"" + std::to_string(ev.client) + "\",\"n\":" + std::to_string(ev.node ? ev.node : self_) +
       ",\"f\":" + std::to_string(ev.fwd) + ",\"h\":" + std::to_string(ev.hops) + ",\"d\":" + ev.data;
  if (!ev.context.empty()) s += ",\"x\":" + ev.context;
  if (ev.redelivered) s += ",\"r\":true";
  s += '}';
  if (it->second.link->send(MeshType::Event, s, cfg_.mesh_max_link_buffer)) events_forwarded_++;
}

void Mesh::remote_done(unsigned producer, uint64_t fwd) {
  auto it = members_.find(producer);
  if (it == members_.end() || !it->second.alive) return;  // it requeued them anyway
  send_to(it->second, MeshType::Done, "{\"f\":" + std::to_string(fwd) + "}", UINT64_MAX);
}

bool Mesh::on_event(MeshLink& link, const cJSON* o, const char* body, size_t len) {
  QueueEvent ev;
  ev.topic = mesh_read_string(o, "t");
  uint64_t client = 0, fwd = 0, hops = 0;
  if (!mesh_read_uint(o, "f", kJsonMaxExactInt, 0, fwd) || !mesh_read_uint(o, "h", 255, 0, hops)) return false;
  if (ev.topic.empty() || !json_client_id(cJSON_GetObjectItemCaseSensitive(o, "c"), nullptr, 0, client)) return true;
  ev.client = client;
  ev.node = link.peer;  // only the producing node forwards, so it is the client's node
  ev.fwd = fwd;
  ev.hops = static_cast<unsigned>(hops);
  ev.data = raw_field(body, len, "d", "null");
  ev.context = raw_field(body, len, "x", "");
  ev.redelivered = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "r"));
  hub_.queue().push(std::move(ev));
  return true;
}

bool Mesh::flushed() const {
  for (const auto& [serial, l] : links_)
    if (l->up && !l->closing() && l->queued_bytes() > 0) return false;
  return true;
}

// --- views ---

std::vector<NodeInfo> Mesh::alive_peers() const {
  std::vector<NodeInfo> out;
  for (const auto& [id, m] : members_)
    if (m.alive) out.push_back(NodeInfo{id, m.weight, m.connections, m.external, m.intranet});
  return out;
}

std::string Mesh::members_json() const {
  std::string s;
  for (const auto& [id, m] : members_) {
    if (!s.empty()) s += ',';
    std::string extra = ",\"mesh_addr\":";
    json_append_string(extra, m.mesh_addr);
    if (m.rtt_ms >= 0) extra += ",\"rtt_ms\":" + std::to_string(static_cast<uint64_t>(m.rtt_ms));
    append_node_json(s, NodeInfo{id, m.weight, m.connections, m.external, m.intranet}, m.name, m.alive, false, extra);
  }
  return s;
}

std::string Mesh::render_metrics() const {
  std::ostringstream o;
  size_t alive = 0;
  for (const auto& [id, m] : members_) alive += m.alive;
  o << "# HELP meshgate_mesh_members Other nodes known to this node, by state.\n# TYPE meshgate_mesh_members gauge\n"
    << "meshgate_mesh_members{state=\"alive\"} " << alive << "\nmeshgate_mesh_members{state=\"dead\"} "
    << members_.size() - alive << '\n';
  o << "# HELP meshgate_mesh_rtt_seconds Heartbeat round-trip time to each alive node.\n"
    << "# TYPE meshgate_mesh_rtt_seconds gauge\n";
  for (const auto& [id, m] : members_)
    if (m.alive && m.rtt_ms >= 0) o << "meshgate_mesh_rtt_seconds{node=\"" << id << "\"} " << m.rtt_ms / 1000.0 << '\n';
  o << "# HELP meshgate_mesh_link_queued_bytes Bytes waiting to be sent to each alive node.\n"
    << "# TYPE meshgate_mesh_link_queued_bytes gauge\n";
  for (const auto& [id, m] : members_)
    if (m.alive && m.link) o << "meshgate_mesh_link_queued_bytes{node=\"" << id << "\"} " << m.link->queued_bytes() << '\n';
  o << "# HELP meshgate_mesh_calls_total Calls forwarded to other nodes, by result.\n# TYPE meshgate_mesh_calls_total counter\n"
    << "meshgate_mesh_calls_total{result=\"ok\"} " << calls_ok_ << "\nmeshgate_mesh_calls_total{result=\"failed\"} "
    << calls_failed_ << '\n';
  o << "# HELP meshgate_mesh_bad_frames_total Links closed for a frame that failed its check (authentication, size, type).\n"
    << "# TYPE meshgate_mesh_bad_frames_total counter\nmeshgate_mesh_bad_frames_total " << bad_frames_ << '\n';
  o << "# HELP meshgate_mesh_refused_total Peers refused at the handshake.\n# TYPE meshgate_mesh_refused_total counter\n"
    << "meshgate_mesh_refused_total " << refused_ << '\n';
  o << "# HELP meshgate_mesh_events_forwarded_total Queue events sent to other nodes' consumers.\n"
    << "# TYPE meshgate_mesh_events_forwarded_total counter\nmeshgate_mesh_events_forwarded_total " << events_forwarded_ << '\n';
  return o.str();
}

}  // namespace mg
