// Membership and failure detection over the links (SWIM + Lifeguard, docs/cluster.md §4): one
// probe per probe interval (PING, ACK), indirect probes through others (PING_REQ) when the ACK does
// not come, suspicions pushed at once to every member, deaths by each node's own suspicion timer,
// updates piggybacked on every probe frame, and the full MEMBERS only to a node that asks for it
// (a fresh one) or whose digest differs. The state machine is swim.h; this file does the sending
// and acts on what changes (member_changed).
#include <string>
#include <utility>
#include <vector>

#include "core/log.h"
#include "core/log_text.h"
#include "mesh/mesh.h"

namespace mg {

namespace {

constexpr size_t kGossipBudget = 1200;     // bytes of updates piggybacked on one frame
constexpr uint64_t kSyncEveryMs = 5000;    // a full MEMBERS for a digest mismatch, at most this often a link

}  // namespace

SwimInfo Mesh::self_info() const {
  SwimInfo i;
  i.name = cfg_.node_name;
  i.mesh_addr = self_addr_;
  i.weight = cfg_.route_weight;
  i.conns = host_.client_count();
  i.ext = host_.own_addresses(false);
  i.intranet = host_.own_addresses(true);
  return i;
}

std::vector<SwimUpdate> Mesh::gossip() { return swim_.piggyback(kGossipBudget, mesh_update_size); }

void Mesh::member_changed(unsigned id, const std::string& why) {
  const SwimMember* s = swim_.find(id);
  if (!s || id == self_) return;
  Member& m = members_[id];
  m.id = id;
  if (s->has_info) {
    m.name = s->info.name;
    m.mesh_addr = s->info.mesh_addr;
    m.weight = s->info.weight;
    m.connections = s->info.conns;
    m.external = s->info.ext;
    m.intranet = s->info.intranet;
  }
  const bool was_alive = m.alive;
  // Alive needs its info (a suspicion may name a member this node never heard of): there is
  // nothing to route to or dial without it.
  m.alive = s->state != SwimState::Dead && s->has_info;
  m.suspect = s->state == SwimState::Suspect;
  if (m.alive && !was_alive) {
    LOG_INFO("mesh: node %u (%s) is alive, at %s", m.id, log_safe(m.name).c_str(), log_safe(m.mesh_addr).c_str());
    if (!m.mesh_addr.empty() && m.mesh_addr != self_addr_ && (dials_.size() < kMaxDials || dials_.count(m.mesh_addr))) {
      Dial& d = dials_[m.mesh_addr];
      d.node = id;
      if (!m.link && !d.busy) d.next_ms = now() + dial_jitter_ms(id, false);
    }
    return;
  }
  if (m.alive || !was_alive) return;
  // Dead (SWIM's verdict): what waited for it is dropped, its calls fail, its link goes.
  MeshLink* link = m.link;
  m.link = nullptr;
  m.rtt_ms = -1;
  m.held.clear();
  m.held_bytes = 0;
  if (link) link->close_now();
  LOG_WARN("mesh: node %u (%s) is dead: %s", m.id, log_safe(m.name).c_str(), log_safe(why).c_str());
  fail_calls(m.id, "node " + std::to_string(m.id) + " is unavailable (" + why + ")");
  queue_.set_remote_topics(m.id, {});
  forget_interest(m);
  settle_barriers(now());  // a subscribe does not wait for a dead node
}

void Mesh::apply_updates(const std::vector<SwimUpdate>& updates, unsigned from) {
  // Refutations are pushed once, after the whole list: a frame of many rumours about this node
  // (each above the last) must not make it write one PING per rumour on every link.
  const SwimUpdate* refuted = nullptr;
  for (const SwimUpdate& u : updates) {
    switch (swim_.apply(u, from, now())) {
      case Swim::Merge::Refuted:
        refutations_++;
        refuted = &u;
        break;
      case Swim::Merge::Applied:
        member_changed(u.id, u.left ? "it left" : "node " + std::to_string(from) + " says so");
        break;
      case Swim::Merge::Stale:
      case Swim::Merge::Confirmed:
        break;
    }
  }
  if (!refuted) return;
  SwimUpdate me = swim_.self_update(self_info(), false);
  swim_.enqueue(me);
  push_update(me);
  LOG_INFO("mesh: node %u says this node is %s (incarnation %llu): refuted with incarnation %llu", from,
           swim_state_name(refuted->state), static_cast<unsigned long long>(refuted->inc),
           static_cast<unsigned long long>(me.inc));
}

void Mesh::push_update(const SwimUpdate& u) {
  const std::string body = mesh_encode(MeshPing{0, host_.client_count(), 0, {u}});
  for (auto& [serial, l] : links_)
    if (l->up && !l->closing()) l->send_control(MeshType::Ping, body);
}

void Mesh::start_probe(unsigned target, bool no_link) {
  auto it = members_.find(target);
  if (it == members_.end() || !it->second.alive) return;
  for (const auto& [seq, p] : probes_)
    if (p.target == target) return;  // one probe of a member at a time
  const uint64_t t = now();
  const SwimTiming& tm = swim_.timing();
  SwimProbe p;
  p.target = target;
  p.start_ms = t;
  MeshLink* link = it->second.link;
  no_link = no_link || !link || link->closing();
  p.indirect_ms = no_link ? t : t + tm.probe_timeout_ms;
  p.end_ms = no_link ? t + tm.probe_timeout_ms : t + tm.probe_interval_ms;
  const uint64_t seq = ++next_probe_seq_;
  probes_[seq] = p;
  if (!no_link) {
    MeshPing ping{seq, host_.client_count(), swim_.queue_empty() ? swim_.digest() : 0, gossip()};
    link->send_control(MeshType::Ping, mesh_encode(ping));
  }
}

void Mesh::probe_failed(unsigned target) {
  probes_failed_++;
  SwimUpdate u;
  if (!swim_.suspect(target, now(), u)) return;
  suspicions_++;
  const SwimMember* s = swim_.find(target);
  LOG_INFO("mesh: node %u (%s) is suspect: no ACK, directly or through others", target,
           log_safe(s && s->has_info ? s->info.name : "").c_str());
  // The first suspicions go to every member at once, so that every timer starts together; later
  // confirmations past what shortens the timer ride on the probes.
  if (s && s->suspecters.size() <= swim_.timing().expected_confirmations + 1) push_update(u);
  else swim_.enqueue(u);
  member_changed(target, "");
}

void Mesh::swim_tick(uint64_t t) {
  const SwimTiming& tm = swim_.timing();
  const uint64_t gap = last_tick_ms_ ? t - last_tick_ms_ : 0;
  last_tick_ms_ = t;
  if (gap > 4 * tick_ms_ && gap > tm.probe_timeout_ms) {
    // This loop did not run for a while (stopped, starved): the ACKs and refutations of that time
    // are still unread, and timers run before input. Judge nobody on time not watched.
    for (auto& [seq, p] : probes_) {
      p.indirect_ms += gap;
      p.end_ms += gap;
    }
    swim_.postpone_suspicions(gap);
    next_probe_ms_ = t + tm.probe_interval_ms;
    return;
  }
  std::vector<unsigned> failed;
  for (auto it = probes_.begin(); it != probes_.end();) {
    SwimProbe& p = it->second;
    if (!p.indirect_sent && t >= p.indirect_ms) {
      p.indirect_sent = true;
      unsigned asked = 0;  // k helpers among the members this node has a link to, in random order
      for (unsigned helper : swim_.indirect_helpers(p.target, ~0u)) {
        auto h = members_.find(helper);
        if (h == members_.end() || !h->second.link || h->second.link->closing()) continue;
        h->second.link->send_control(MeshType::PingReq, mesh_encode(MeshPingReq{it->first, p.target, gossip()}));
        p.helpers.push_back(helper);
        if (++asked == tm.indirect_k) break;
      }
    }
    // One tick past the end: libuv runs timers before it reads input, so the loop polls at least
    // once after the deadline and an ACK already in the socket is read before the verdict.
    if (t >= p.end_ms + tick_ms_) {
      failed.push_back(p.target);
      it = probes_.erase(it);
    } else {
      ++it;
    }
  }
  for (unsigned target : failed) probe_failed(target);
  relays_.expire(t);
  if (t >= next_probe_ms_) {
    // A member this node has no link to yet (learned by gossip, its dial pending) is left to the
    // others this pass: probing it now would only suspect a node that is just not dialled yet. A
    // link that closes gets its probe out of turn (on_link_closed).
    next_probe_ms_ = t + tm.probe_interval_ms;
    unsigned target = swim_.next_probe_target();
    auto m = members_.find(target);
    if (target && m != members_.end() && m->second.link) start_probe(target, false);
  }
  // As for probes: one tick past the deadline, so a refutation already in the socket is read first.
  for (unsigned id : swim_.expire_suspicions(t > tick_ms_ ? t - tick_ms_ : 0)) {
    deaths_++;
    member_changed(id, "suspected and not refuted within the suspicion timeout (no ACK, directly or through others)");
  }
}

void Mesh::send_full_members(MeshLink& link) {
  member_syncs_++;
  link.send_control(MeshType::Members, mesh_encode(MeshMembers{swim_.full_state(self_info())}));
}

bool Mesh::on_members(MeshLink& link, const char* body, size_t len) {
  MeshMembers b;
  if (!mesh_decode(body, len, b)) return false;
  apply_updates(b.members, link.peer);
  return true;
}

void Mesh::heard_from(unsigned peer, uint64_t conns, const std::vector<SwimUpdate>& updates) {
  swim_.set_conns(peer, conns);
  auto it = members_.find(peer);
  if (it != members_.end()) it->second.connections = conns;
  apply_updates(updates, peer);
}

bool Mesh::on_ping(MeshLink& link, const char* body, size_t len) {
  MeshPing ping;
  if (!mesh_decode(body, len, ping)) return false;
  heard_from(link.peer, ping.conns, ping.updates);
  if (link.closing()) return true;
  if (ping.seq) link.send_control(MeshType::Ack, mesh_encode(MeshAck{ping.seq, host_.client_count(), gossip()}));
  // Anti-entropy: both sides have no news in flight and still disagree: the prober gets our table.
  const uint64_t t = now();
  if (ping.digest && swim_.queue_empty() && ping.digest != swim_.digest()) {
    auto [last, fresh] = last_sync_ms_.emplace(link.serial, t);
    if (fresh || t - last->second >= kSyncEveryMs) {
      last->second = t;
      send_full_members(link);
    }
  }
  return true;
}

bool Mesh::on_ack(MeshLink& link, const char* body, size_t len) {
  MeshAck ack;
  if (!mesh_decode(body, len, ack)) return false;
  heard_from(link.peer, ack.conns, ack.updates);
  auto m = members_.find(link.peer);
  unsigned requester = 0;
  uint64_t req_seq = 0;
  if (relays_.answered(ack.seq, link.peer, requester, req_seq)) {
    // The target of a PING_REQ answered: the requester gets its ACK (on its link of now, if any).
    auto req = members_.find(requester);
    if (req != members_.end() && req->second.link && !req->second.link->closing())
      req->second.link->send_control(MeshType::Ack, mesh_encode(MeshAck{req_seq, host_.client_count(), gossip()}));
    return true;
  }
  auto p = probes_.find(ack.seq);
  if (p == probes_.end()) return true;  // late: the probe already ended
  if (!p->second.answered_by(link.peer)) return true;  // neither the target nor a helper asked
  if (p->second.target == link.peer) {
    probes_ack_++;
    if (m != members_.end()) m->second.rtt_ms = static_cast<double>(now() - p->second.start_ms);
  } else {
    probes_indirect_ack_++;
  }
  probes_.erase(p);
  return true;
}

bool Mesh::on_ping_req(MeshLink& link, const char* body, size_t len) {
  MeshPingReq req;
  if (!mesh_decode(body, len, req)) return false;
  apply_updates(req.updates, link.peer);
  auto it = members_.find(req.target);
  if (it == members_.end() || !it->second.link || it->second.link->closing()) return true;  // cannot help
  // One at a time per (requester, target): a flood of PING_REQs gets no more PINGs sent.
  const uint64_t seq = next_probe_seq_ + 1;
  if (!relays_.admit(link.peer, req.target, req.seq, seq, now() + swim_.timing().probe_interval_ms)) return true;
  next_probe_seq_ = seq;
  it->second.link->send_control(MeshType::Ping, mesh_encode(MeshPing{seq, host_.client_count(), 0, gossip()}));
  return true;
}

}  // namespace mg
