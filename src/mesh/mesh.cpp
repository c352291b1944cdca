// Links: listening, dialling (jittered), the links' lifecycle, and the views the hub reads (alive
// peers, node.list, /metrics). Frames are dispatched here to the handlers of each job (mesh.h);
// who is alive is SWIM's to say (mesh_swim.cpp).
#include "mesh/mesh.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "core/addr.h"
#include "core/log.h"
#include "core/log_text.h"
#include "core/metrics.h"
#include "net/listen_socket.h"

namespace mg {

namespace {

constexpr uint64_t kRedialMs = 1000;         // a failed address is dialled again after this, ±50 %
constexpr uint64_t kRefusedRedialMs = 10000;  // ... or this, when the peer refused us
constexpr uint64_t kFirstDialSpreadMs = 1000;  // first dials of learned members: over N·2 ms, at most this
constexpr uint64_t kDialGraceMs = 2000;       // the higher id of a pair waits this long for the lower to dial
constexpr size_t kMaxPendingLinks = 64;        // links not yet authenticated, at most
// ... of them inbound from one IP address: one source cannot take every slot and keep real nodes
// out (issue 18: a flood from one address delayed a node's join by 7.8-15.4 s). A node dials a peer
// once at a time, so a few per address leave room for nodes behind one NAT address.
constexpr size_t kMaxPendingPerSource = 4;

// A node's first incarnation is its start time (wall clock, ms): a restarted node's alive beats
// every rumour about its previous life without remembering anything across restarts.
uint64_t wall_ms() {
  using namespace std::chrono;
  return static_cast<uint64_t>(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

}  // namespace

Mesh::Mesh(BackboneHost& host, QueueHub& queue, uv_loop_t* loop, const Config& cfg)
    : host_(host), queue_(queue), cfg_(cfg), loop_(loop), self_(static_cast<unsigned>(cfg.node_id)),
      tick_ms_(std::max<uint64_t>(10, SwimTiming::from_dead_after(uint64_t{cfg.mesh_dead_after} * 1000).probe_timeout_ms / 3)),
      swim_(self_, wall_ms(), SwimTiming::from_dead_after(uint64_t{cfg.mesh_dead_after} * 1000),
            wall_ms() ^ (uint64_t{self_} << 40)),
      rng_(wall_ms() * 31 + self_) {
  if (!cfg.mesh_advertise.empty()) {
    self_addr_ = cfg.mesh_advertise;
  } else {
    std::string host_name = !cfg.intranet_advertise.empty() ? cfg.intranet_advertise : cfg.advertise;
    if (host_name.empty()) host_name = cfg.mesh_bind;
    self_addr_ = host_port(host_name, cfg.mesh_port);
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
  uv_timer_start(&timer_, &Mesh::on_tick, 0, tick_ms_);
  uv_check_init(loop_, &interest_check_);
  interest_check_.data = this;
  for (const std::string& seed : cfg_.mesh_seeds)
    if (seed != self_addr_) dials_[seed].next_ms = now() + dial_jitter_ms(0, false);
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
  uv_close(reinterpret_cast<uv_handle_t*>(&interest_check_), nullptr);
  // Peers drop this node at once on its "left" (no suspicion). Written now, not at the loop's next
  // turn: the node may close its loop before that turn. A link that is not read gets none.
  const std::string bye = mesh_encode(MeshPing{0, 0, 0, {swim_.self_update({}, true)}});
  std::vector<MeshLink*> links;
  for (auto& [serial, l] : links_) links.push_back(l);
  for (MeshLink* l : links)
    if (l->up && !l->closing() && l->queued_bytes() == 0) l->send_control(MeshType::Ping, bye);
  if (LoopContext* ctx = LoopContext::of(loop_)) ctx->flush_dirty();
  for (MeshLink* l : links) l->close_now();
  std::vector<unsigned> nodes;
  for (auto& [k, c] : calls_) nodes.push_back(c.node);
  for (unsigned n : nodes) fail_calls(n, "this node is shutting down");
  for (auto& done : barriers_unsent_) barriers_.push_back(Barrier{0, 0, std::move(done)});
  barriers_unsent_.clear();
  settle_barriers(now(), true);
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
  const std::string ip = peer_ip(link->tcp());
  size_t pending = 0, from_ip = 0;
  for (const auto& [serial, l] : self->links_) {
    pending += !l->up;
    from_ip += !l->up && !l->outbound && l->source_ip == ip;
  }
  // Unauthenticated connections cannot pile up, nor one source take every slot.
  if (pending >= kMaxPendingLinks || from_ip >= kMaxPendingPerSource) {
    const bool full = pending >= kMaxPendingLinks;
    (full ? self->accept_refused_full_ : self->accept_refused_per_source_)++;
    if (self->may_log_stranger(full ? "every handshake slot taken" : "the address's handshake slots taken")) {
      if (full)
        LOG_WARN("mesh: connection from %s refused: %zu links are still in their handshake",
                 peer_address(link->tcp()).c_str(), pending);
      else
        LOG_WARN("mesh: connection from %s refused: %zu links from that address are still in their handshake",
                 peer_address(link->tcp()).c_str(), from_ip);
    }
    link->close_now();
    return;
  }
  link->dial_addr = peer_address(link->tcp());
  link->source_ip = ip;
  self->links_.emplace(link->serial, link);
  self->connected(link);
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
      l->mesh_owner()->connected(l);
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
  if (link.up) queue_.remote_ready_changed();
}

void Mesh::on_link_closed(MeshLink& link) {
  links_.erase(link.serial);
  last_sync_ms_.erase(link.serial);
  LOG_DEBUG("mesh: link %llu (%s, %s) to node %u closed%s%s", static_cast<unsigned long long>(link.serial),
            link.outbound ? "dialled" : "accepted", log_safe(link.dial_addr).c_str(), link.peer, link.up ? ", was up" : "",
            link.replaced ? ", replaced" : "");
  if (link.outbound) {
    Dial& d = dials_[link.dial_addr];
    d.busy = false;
    d.next_ms = now() + (link.was_refused ? kRefusedRedialMs : dial_jitter_ms(0, true));
  }
  if (!link.up || link.replaced || stopped_) return;
  auto it = members_.find(link.peer);
  if (it == members_.end() || it->second.link != &link) return;
  Member& m = it->second;
  m.link = nullptr;
  m.last_linked_ms = now();
  if (!m.alive) return;
  if (handshake_in_progress(m.id)) {
    // Both nodes dialled at once and the peer kept the other link, which is one AUTH away here:
    // what is sent to it is held for that link. Dialling or probing now would only open a third
    // link and race the one that is coming (seen as a failed call during the relink).
    LOG_DEBUG("mesh: node %u: link closed, another is in its handshake", m.id);
    return;
  }
  // Not a death (only SWIM declares one): what is sent to it is held, it is dialled again at once
  // (the lower id; the higher after a grace), and probed out of turn, indirectly since it has no
  // link: a killed node is suspected one probe timeout from now by every node.
  LOG_DEBUG("mesh: node %u: link closed, probing it and dialling again", m.id);
  if (!m.mesh_addr.empty()) {
    Dial& d = dials_[m.mesh_addr];
    d.node = m.id;
    if (!d.busy) d.next_ms = now() + (self_ < m.id ? dial_jitter_ms(m.id, true) % 100 : dial_jitter_ms(m.id, true));
  }
  start_probe(m.id, true);
}

bool Mesh::handshake_in_progress(unsigned peer) const {
  for (const auto& [serial, l] : links_)
    if (l->peer == peer && l->hello_seen && !l->up && !l->closing()) return true;
  return false;
}

uint64_t Mesh::dial_jitter_ms(unsigned id, bool redial) {
  auto uniform = [this](uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_); };
  if (redial) return uniform(kRedialMs / 2, kRedialMs * 3 / 2);
  if (id == 0) return uniform(0, 100);  // a seed
  const uint64_t spread = std::min<uint64_t>(kFirstDialSpreadMs, 2 * (swim_.live_count() + 1));
  // Of two nodes that learn of each other by gossip, the lower id dials; the higher dials too
  // only after a grace period, in case the lower one cannot reach it.
  return self_ < id ? uniform(0, spread) : kDialGraceMs + uniform(0, kRedialMs);
}

bool Mesh::send_to(Member& m, MeshType type, const std::string& body, uint64_t limit) {
  if (!m.alive) return false;
  if (m.link) return m.link->send(type, body, limit);
  if (m.held_bytes > limit) return false;
  m.held_bytes += body.size();
  m.held.emplace_back(type, body);
  return true;
}

bool Mesh::flushed() const {
  for (const auto& [serial, l] : links_)
    if (l->up && !l->closing() && l->queued_bytes() > 0) return false;
  return true;
}

// --- frames ---

void Mesh::on_frame(MeshLink& link, MeshType type, const char* body, size_t len) {
  if (stopped_) return;
  if (type == MeshType::Refuse) {
    MeshRefuse r;
    if (!mesh_decode(body, len, r)) return refuse_malformed(link, type, body, len);
    LOG_WARN("mesh: %s refused this node: %s", log_safe(link.dial_addr).c_str(), log_safe(r.reason).c_str());
    link.was_refused = true;
    link.close_now();
    return;
  }
  if (!link.up) {
    if (type == MeshType::Hello) on_hello(link, body, len);
    else if (type == MeshType::Auth) on_auth(link, body, len);
    else if (!mesh_body_is_object(body, len)) refuse_malformed(link, type, body, len);
    else refuse(link, std::string("expected HELLO and AUTH before ") + mesh_type_name(type));
    return;
  }
  bool well_formed = true;
  switch (type) {
    case MeshType::Members: well_formed = on_members(link, body, len); break;
    case MeshType::Ping: well_formed = on_ping(link, body, len); break;
    case MeshType::Ack: well_formed = on_ack(link, body, len); break;
    case MeshType::PingReq: well_formed = on_ping_req(link, body, len); break;
    case MeshType::Call: well_formed = on_call(link, body, len); break;
    case MeshType::Reply: well_formed = on_reply(body, len); break;
    case MeshType::Topics: well_formed = on_topics(link, body, len); break;
    case MeshType::Event: well_formed = on_event(link, body, len); break;
    case MeshType::Done: well_formed = on_done(body, len); break;
    case MeshType::Interest: well_formed = on_interest(link, body, len); break;
    case MeshType::InterestAck: well_formed = on_interest_ack(link, body, len); break;
    default:
      if (!mesh_body_is_object(body, len)) well_formed = false;
      else refuse(link, std::string("unexpected ") + mesh_type_name(type) + " after the handshake");
      break;
  }
  if (!well_formed) refuse_malformed(link, type, body, len);
}

void Mesh::refuse_malformed(MeshLink& link, MeshType type, const char* body, size_t len) {
  std::string why = std::string("malformed ") + mesh_type_name(type) + " frame";
  if (mesh_body_is_object(body, len)) why += ": a number out of range";
  refuse(link, why);
}

namespace {
// The kind of a warning about a stranger, for its rate limit: the reason up to the first quote or
// digit, where text the stranger chose (its cluster name, a version, a node id) begins. Keyed on the
// whole reason, a stranger rotating its cluster name would fill the tracked kinds and push a real
// misconfigured node's refusal into the shared limit.
std::string stranger_log_kind(const std::string& why) {
  size_t end = why.find_first_of("\"0123456789");
  if (end == std::string::npos) end = why.size();
  while (end > 0 && (why[end - 1] == ' ' || why[end - 1] == ':')) end--;
  return why.substr(0, end);
}
}  // namespace

bool Mesh::may_log_stranger(const std::string& why) {
  uint64_t left_out = 0;
  const std::string kind = stranger_log_kind(why);
  if (!stranger_log_.admit(kind, now(), left_out)) return false;
  if (left_out)
    LOG_WARN("mesh: %llu more warnings (%s) about connections that did not complete the handshake were left out "
             "(one a minute of each kind; meshgate_mesh_connections_refused_total, meshgate_mesh_refused_total and "
             "meshgate_mesh_bad_frames_total count them all)", static_cast<unsigned long long>(left_out), kind.c_str());
  return true;
}

bool Mesh::may_log_about(const MeshLink& link, const std::string& why) {
  return link.up || link.outbound || may_log_stranger(why);
}

void Mesh::on_bad_frame(MeshLink& link, const std::string& why) {
  bad_frames_++;
  if (may_log_about(link, why))
    LOG_WARN("mesh: link %s%s closed: %s", log_safe(link.dial_addr).c_str(),
             link.peer ? (" (node " + std::to_string(link.peer) + ")").c_str() : "", why.c_str());
  link.close_now();
}

// --- the tick ---

void Mesh::on_tick(uv_timer_t* t) { static_cast<Mesh*>(t->data)->tick(); }

void Mesh::tick() {
  uint64_t t = now();
  uint64_t dead_ms = uint64_t{cfg_.mesh_dead_after} * 1000;
  std::vector<MeshLink*> links;
  for (auto& [serial, l] : links_) links.push_back(l);
  for (MeshLink* l : links) {
    if (l->closing()) continue;
    if (!l->up) {
      if (t - l->opened_ms > dead_ms) l->close_now();  // a connect or handshake that never finished
      continue;
    }
    // A peer that does not read what we send: the link goes (and is dialled again); whether the
    // node is alive is for the probes to say.
    if (l->queued_bytes() > cfg_.mesh_max_link_buffer) {
      LOG_WARN("mesh: link to node %u closed: it does not read it (%zu bytes waiting)", l->peer, l->queued_bytes());
      l->close_now();
    }
  }
  // An alive member that has had no link for dead_after (its dials fail, or the link that was one
  // AUTH away never came): probed through others, so that it is suspected unless someone reaches it.
  for (auto& [id, m] : members_)
    if (m.alive && !m.link && m.last_linked_ms && t - m.last_linked_ms > dead_ms && !handshake_in_progress(id))
      start_probe(id, true);
  swim_tick(t);
  expire_calls(t);
  settle_barriers(t);
  stranger_log_.flush(t, [](const std::string& why, uint64_t n) {
    LOG_WARN("mesh: %llu more warnings (%s) about connections that did not complete the handshake were left out in "
             "the last minute", static_cast<unsigned long long>(n), why.empty() ? "of other kinds" : why.c_str());
  });
  dial_due(t);
}

void Mesh::dial_due(uint64_t t) {
  for (auto& [addr, d] : dials_) {
    if (d.busy || t < d.next_ms || addr == self_addr_) continue;
    auto it = d.node ? members_.find(d.node) : members_.end();
    // Not while it has a link, nor while one is in its handshake: a third link would race the one
    // that is coming, and a call sent on the link that loses the race is lost with it.
    if (it != members_.end() && (it->second.link || handshake_in_progress(d.node))) continue;
    dial(addr);
  }
}

// --- views ---

std::vector<NodeInfo> Mesh::alive_peers() const {
  std::vector<NodeInfo> out;
  for (const auto& [id, m] : members_)
    if (m.alive) out.push_back(NodeInfo{id, m.weight, m.connections, m.external, m.intranet});
  return out;
}

std::vector<MemberView> Mesh::members() const {
  std::vector<MemberView> out;
  for (const auto& [id, m] : members_)
    out.push_back(MemberView{NodeInfo{id, m.weight, m.connections, m.external, m.intranet}, m.name, m.mesh_addr,
                                 m.alive, m.suspect, m.rtt_ms});
  return out;
}

std::string Mesh::render_metrics() const {
  PromWriter w;
  uint64_t alive = 0, suspect = 0;
  for (const auto& [id, m] : members_) {
    alive += m.alive && !m.suspect;
    suspect += m.suspect;
  }
  w.family("meshgate_mesh_members", "gauge",
           "Other nodes known to this node, by SWIM state (a suspect node still counts as alive for routing).");
  w.sample("meshgate_mesh_members", {{"state", "alive"}}, alive);
  w.sample("meshgate_mesh_members", {{"state", "suspect"}}, suspect);
  w.sample("meshgate_mesh_members", {{"state", "dead"}}, members_.size() - alive - suspect);
  w.family("meshgate_mesh_probes_total", "counter",
           "Probes this node started, by result: ACK from the target (ack), through another node (indirect_ack), none (failed).");
  w.sample("meshgate_mesh_probes_total", {{"result", "ack"}}, probes_ack_);
  w.sample("meshgate_mesh_probes_total", {{"result", "indirect_ack"}}, probes_indirect_ack_);
  w.sample("meshgate_mesh_probes_total", {{"result", "failed"}}, probes_failed_);
  const struct {
    const char* name;
    const char* help;
    uint64_t value;
  } swim_counters[] = {
      {"meshgate_mesh_suspicions_total", "Nodes this node suspected because its probe of them failed.", suspicions_},
      {"meshgate_mesh_refutations_total",
       "Times this node refuted a suspicion or death of itself (its incarnation went up).", refutations_},
      {"meshgate_mesh_deaths_total", "Nodes this node declared dead when its suspicion timer ran out.", deaths_},
      {"meshgate_mesh_member_syncs_total",
       "Full member tables (MEMBERS) this node sent: to a node that asked at its handshake, or for a digest mismatch.",
       member_syncs_},
      {"meshgate_mesh_link_bytes_sent_total", "Bytes written on mesh links (frames as sent, sealed).", link_bytes_sent_},
  };
  for (const auto& c : swim_counters) {
    w.family(c.name, "counter", c.help);
    w.sample(c.name, c.value);
  }
  w.family("meshgate_mesh_rtt_seconds", "gauge", "Round-trip time of the last direct probe of each alive node.");
  for (const auto& [id, m] : members_)
    if (m.alive && m.rtt_ms >= 0) w.sample_double("meshgate_mesh_rtt_seconds", {{"node", std::to_string(id)}}, m.rtt_ms / 1000.0);
  w.family("meshgate_mesh_link_queued_bytes", "gauge", "Bytes waiting to be sent to each alive node.");
  for (const auto& [id, m] : members_)
    if (m.alive && m.link) w.sample("meshgate_mesh_link_queued_bytes", {{"node", std::to_string(id)}}, m.link->queued_bytes());
  w.family("meshgate_mesh_calls_total", "counter", "Calls forwarded to other nodes, by result.");
  w.sample("meshgate_mesh_calls_total", {{"result", "ok"}}, calls_ok_);
  w.sample("meshgate_mesh_calls_total", {{"result", "failed"}}, calls_failed_);
  w.family("meshgate_mesh_bad_frames_total", "counter",
           "Links closed for a frame that failed its check (authentication, size, type).");
  w.sample("meshgate_mesh_bad_frames_total", bad_frames_);
  w.family("meshgate_mesh_refused_total", "counter", "Peers refused at the handshake.");
  w.sample("meshgate_mesh_refused_total", refused_);
  w.family("meshgate_mesh_connections_refused_total", "counter",
           "Connections to the mesh port closed at accept, by reason: every handshake slot taken (full), or "
           "the source address's share of them (per_source).");
  w.sample("meshgate_mesh_connections_refused_total", {{"reason", "full"}}, accept_refused_full_);
  w.sample("meshgate_mesh_connections_refused_total", {{"reason", "per_source"}}, accept_refused_per_source_);
  w.family("meshgate_mesh_events_forwarded_total", "counter", "Queue events sent to other nodes' consumers.");
  w.sample("meshgate_mesh_events_forwarded_total", events_forwarded_);
  w.family("meshgate_mesh_version_refused_total", "counter",
           "Peers refused at the handshake because they speak another mesh protocol version (also in "
           "meshgate_mesh_refused_total).");
  w.sample("meshgate_mesh_version_refused_total", refused_version_);
  w.family("meshgate_mesh_frames_sent_total", "counter", "Frames written on mesh links, by type.");
  for (uint8_t t = 1; t <= kMeshMaxType; t++)
    w.sample("meshgate_mesh_frames_sent_total", {{"type", mesh_type_name(static_cast<MeshType>(t))}}, frames_sent_[t]);
  w.family("meshgate_mesh_interest_channels", "gauge",
           "Channels with subscribers: on this node (node=\"self\"), and on each alive node as it told this one "
           "(absent while not known, or when it said \"all\").");
  w.sample("meshgate_mesh_interest_channels", {{"node", "self"}}, held_channels_);
  for (const auto& [id, m] : members_)
    if (m.alive && m.interest_known && !m.interest_all)
      w.sample("meshgate_mesh_interest_channels", {{"node", std::to_string(id)}}, m.interest.size());
  w.family("meshgate_mesh_fanout_skipped_total", "counter",
           "Calls of a channel's publish or count not sent to a node, because it holds no subscriber of the channel.");
  w.sample("meshgate_mesh_fanout_skipped_total", fanout_skipped_);
  w.family("meshgate_mesh_interest_overflows_total", "counter",
           "Times a node's channel set went over [mesh] max_interest (this node's, or a peer's as kept here): "
           "it is sent every channel's calls meanwhile.");
  w.sample("meshgate_mesh_interest_overflows_total", interest_overflows_);
  w.family("meshgate_mesh_subscribe_wait_timeouts_total", "counter",
           "Subscribes answered after call_timeout because an alive node had not acknowledged the change "
           "(it may miss publishes until it catches up).");
  w.sample("meshgate_mesh_subscribe_wait_timeouts_total", barrier_timeouts_);
  return w.take();
}

}  // namespace mg
