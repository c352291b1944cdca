// The member list over NATS (nats_backbone.h): every node publishes a heartbeat on P.hb every
// dead_after/4 (at once when it connects, when its queue topics change, and when it hears a node
// it did not know, so a new node is known everywhere within one round trip); a node not heard from
// within dead_after is dead, and one that said it leaves is dead at once. Every node keeps the same
// list from the same heartbeats, so every node's route API gives the same answer for a uid.
#include "core/log.h"
#include "core/log_text.h"
#include "nats/nats_backbone.h"

namespace mg {

void NatsBackbone::send_beat(bool left) {
  NatsBeat b;
  b.info.node_id = self_;
  b.info.weight = cfg_.route_weight;
  b.info.connections = host_.client_count();
  b.info.external = host_.own_addresses(false);
  b.info.intranet = host_.own_addresses(true);
  b.name = cfg_.node_name;
  b.instance = instance_;
  b.left = left;  // a draining node serves calls until it stops (as on the mesh)
  if (!b.left) b.topics = queue_.local_topics();
  publish(prefix_ + ".hb", nats_encode(b));
  beats_sent_++;
  next_beat_ms_ = now() + std::max<uint64_t>(100, uint64_t{cfg_.mesh_dead_after} * 250);
}

void NatsBackbone::announce_topics() {
  if (!connected_ || stopped_) return;
  send_beat();
  update_partitions();
}

void NatsBackbone::on_beat(const char* body, size_t len) {
  NatsBeat b;
  if (!nats_decode(body, len, b)) {
    bad_messages_++;
    return;
  }
  const unsigned id = b.info.node_id;
  if (id == self_) {
    // Not our own (no echo): another node was given this node's id.
    duplicate_ids_++;
    uint64_t left_out = 0;
    if (b.instance != instance_ && dup_log_.admit(now(), left_out))
      LOG_ERROR("nats: another node (%s) uses this node's id %u: give every node its own [node] id (%llu such "
                "heartbeats not logged)",
                log_safe(b.name).c_str(), id, static_cast<unsigned long long>(left_out));
    return;
  }
  Member& m = members_[id];
  if (std::find(m.past_instances.begin(), m.past_instances.end(), b.instance) != m.past_instances.end()) {
    duplicate_ids_++;
    uint64_t left_out = 0;
    if (dup_log_.admit(now(), left_out))
      LOG_ERROR("nats: two nodes use id %u (%s and %s): give every node its own [node] id (%llu such heartbeats "
                "not logged)",
                id, log_safe(b.name).c_str(), log_safe(m.beat.name).c_str(), static_cast<unsigned long long>(left_out));
    return;
  }
  const bool known = m.alive;
  const bool restarted = known && m.beat.instance != b.instance;
  if (restarted) {
    m.past_instances.push_back(m.beat.instance);
    if (m.past_instances.size() > 8) m.past_instances.erase(m.past_instances.begin());
  }
  if (b.left) {
    if (m.alive) {
      m.beat = std::move(b);
      member_died(id, m, "left the cluster");
    }
    return;
  }
  if (restarted) member_died(id, m, "restarted");  // its calls and our events in its care start over
  const bool topics_changed = !m.alive || m.beat.topics != b.topics;
  m.beat = std::move(b);
  m.last_heard_ms = now();
  if (!m.alive) {
    m.alive = true;
    LOG_INFO("nats: node %u (%s) is alive", id, log_safe(m.beat.name).c_str());
    // It may not know us yet: tell it now rather than at our next beat.
    if (connected_) send_beat();
  }
  if (!topics_changed) return;
  queue_.set_remote_topics(id, m.beat.topics);
  update_partitions();
}

void NatsBackbone::member_died(unsigned id, Member& m, const char* why) {
  if (!m.alive) return;
  m.alive = false;
  deaths_++;
  LOG_WARN("nats: node %u (%s) is dead: %s", id, log_safe(m.beat.name).c_str(), why);
  fail_pending(id, "node " + std::to_string(id) + " is unavailable");
  queue_.set_remote_topics(id, {});  // events waiting for the stream's answer are sent again (at-least-once)
  update_partitions();                // its partitions are pulled by the others now
}

void NatsBackbone::check_members(uint64_t t) {
  const uint64_t dead_after = uint64_t{cfg_.mesh_dead_after} * 1000;
  for (auto& [id, m] : members_)
    if (m.alive && t - m.last_heard_ms > dead_after) member_died(id, m, "no heartbeat within dead_after");
}

std::set<unsigned> NatsBackbone::alive_ids() const {
  std::set<unsigned> out;
  for (const auto& [id, m] : members_)
    if (m.alive) out.insert(id);
  return out;
}

std::vector<NodeInfo> NatsBackbone::alive_peers() const {
  std::vector<NodeInfo> out;
  for (const auto& [id, m] : members_)
    if (m.alive) out.push_back(m.beat.info);
  return out;
}

std::vector<MemberView> NatsBackbone::members() const {
  std::vector<MemberView> out;
  for (const auto& [id, m] : members_) out.push_back(MemberView{m.beat.info, m.beat.name, "", m.alive, false, -1});
  return out;
}

}  // namespace mg
