#include "mesh/swim.h"

#include <algorithm>
#include <cmath>

namespace mg {

const char* swim_state_name(SwimState s) {
  switch (s) {
    case SwimState::Alive: return "alive";
    case SwimState::Suspect: return "suspect";
    case SwimState::Dead: return "dead";
  }
  return "?";
}

SwimTiming SwimTiming::from_dead_after(uint64_t dead_after_ms) {
  SwimTiming t;
  t.probe_interval_ms = std::max<uint64_t>(50, dead_after_ms / 10);
  t.probe_timeout_ms = t.probe_interval_ms / 2;
  // Half of dead_after: a node stalled for less (plus one probe interval) is never declared dead.
  t.suspicion_min_ms = dead_after_ms / 2;
  // A killed node is suspected one probe timeout after its link closed; the last of the others
  // must still be within dead_after when its timer runs out with no confirmation at all.
  t.suspicion_max_ms = std::max(t.suspicion_min_ms, dead_after_ms - 2 * t.probe_interval_ms);
  return t;
}

uint64_t swim_suspicion_timeout(const SwimTiming& t, unsigned confirmations, unsigned expected) {
  if (expected == 0) return t.suspicion_min_ms;
  double frac = std::log(std::min(confirmations, expected) + 1.0) / std::log(expected + 1.0);
  double span = static_cast<double>(t.suspicion_max_ms - t.suspicion_min_ms);
  double timeout = static_cast<double>(t.suspicion_max_ms) - span * frac;
  return std::max(t.suspicion_min_ms, static_cast<uint64_t>(std::max(0.0, std::floor(timeout))));
}

Swim::Swim(unsigned self, uint64_t incarnation, SwimTiming timing, uint64_t seed)
    : self_(self), inc_(std::min(incarnation, kSwimMaxIncarnation)), t_(timing), rng_(seed) {}

const SwimMember* Swim::find(unsigned id) const {
  auto it = members_.find(id);
  return it == members_.end() ? nullptr : &it->second;
}

size_t Swim::live_count() const {
  size_t n = 0;
  for (const auto& [id, m] : members_) n += m.state != SwimState::Dead;
  return n;
}

// The merge rules (SWIM §4.2, memberlist state.go):
//   alive(i)   overrides alive/suspect with inc < i, and dead with inc < i (a rejoin);
//   suspect(i) overrides alive with inc <= i, and suspect with inc < i;
//   dead(i)    overrides alive/suspect with inc <= i (and a suspect's "left" upgrade);
// an unknown member is taken alive (with its info) or dead (so that an older alive of it still
// circulating loses), not suspect: a suspicion of a member this node has no info of gives it nothing
// to probe or route to, and as a live member it would take a probe turn each pass (a peer naming
// a thousand made-up ids would starve the probes of the real members) and count in N and K.
// News about this node is refuted (refute()).
namespace {

bool info_fits(const SwimInfo& i) {
  for (const std::string* s : {&i.name, &i.mesh_addr, &i.ext.tcp, &i.ext.ws, &i.ext.wss, &i.intranet.tcp,
                               &i.intranet.ws, &i.intranet.wss})
    if (s->size() > kSwimMaxInfoString) return false;
  return true;
}

}  // namespace

Swim::Merge Swim::apply(const SwimUpdate& u, unsigned from, uint64_t now) {
  if (u.id == 0 || u.inc > kSwimMaxIncarnation) return Merge::Stale;
  if (u.has_info && !info_fits(u.info)) {
    SwimUpdate bare = u;
    bare.has_info = false;
    bare.info = SwimInfo{};
    return apply(bare, from, now);
  }
  if (u.id == self_) return refute(u);
  auto it = members_.find(u.id);
  if (it == members_.end()) {
    if (u.state == SwimState::Alive && !u.has_info) return Merge::Stale;  // nothing to route to
    if (u.state == SwimState::Suspect) return Merge::Stale;
    SwimMember& m = members_[u.id];
    m.id = u.id;
    set_state(m, u, now);
    enqueue(u);
    return Merge::Applied;
  }
  SwimMember& m = it->second;
  // Who suspects: the suspecter the update names (a relayed suspicion is still its author's), else
  // the node it came from; never the suspect itself.
  const unsigned suspecter = u.state != SwimState::Suspect || u.by == u.id ? 0 : u.by ? u.by : from;
  bool wins = false;
  switch (u.state) {
    case SwimState::Alive: wins = u.inc > m.inc; break;
    case SwimState::Suspect:
      if (m.state == SwimState::Suspect && u.inc == m.inc) {
        // Same suspicion from another node: a confirmation (Lifeguard), the timer shortens.
        if (!suspecter || suspecter == self_ || !m.suspecters.insert(suspecter).second) return Merge::Stale;
        m.suspect_deadline_ms = m.suspect_since_ms + suspicion_timeout(m);
        return Merge::Confirmed;
      }
      wins = m.state == SwimState::Alive ? u.inc >= m.inc : m.state == SwimState::Suspect && u.inc > m.inc;
      break;
    case SwimState::Dead: wins = m.state != SwimState::Dead ? u.inc >= m.inc : false; break;
  }
  if (!wins) return Merge::Stale;
  SwimUpdate merged = u;
  if (u.state == SwimState::Alive && !u.has_info && m.has_info) {
    merged.has_info = true;
    merged.info = m.info;
  }
  if (u.state == SwimState::Alive && !merged.has_info) return Merge::Stale;
  set_state(m, merged, now);
  if (suspecter) m.suspecters.insert(suspecter);
  if (u.state == SwimState::Suspect) m.suspect_deadline_ms = now + suspicion_timeout(m);
  enqueue(merged);
  return Merge::Applied;
}

void Swim::set_state(SwimMember& m, const SwimUpdate& u, uint64_t now) {
  m.inc = u.inc;
  m.state = u.state;
  m.left = u.state == SwimState::Dead && u.left;
  if (u.has_info) {
    m.has_info = true;
    m.info = u.info;
  }
  m.suspecters.clear();
  m.suspect_since_ms = now;
  m.suspect_deadline_ms = now + t_.suspicion_max_ms;
}

uint64_t Swim::suspicion_timeout(const SwimMember& m) const {
  size_t others = live_count() >= 1 ? live_count() - 1 : 0;
  unsigned expected = static_cast<unsigned>(std::min<size_t>(t_.expected_confirmations, others));
  unsigned confirmations = m.suspecters.empty() ? 0 : static_cast<unsigned>(m.suspecters.size()) - 1;
  return swim_suspicion_timeout(t_, confirmations, expected);
}

void Swim::postpone_suspicions(uint64_t ms) {
  for (auto& [id, m] : members_)
    if (m.state == SwimState::Suspect) m.suspect_deadline_ms += ms;
}

Swim::Merge Swim::refute(const SwimUpdate& u) {
  if (u.state == SwimState::Alive || u.inc < inc_) return Merge::Stale;
  // At the ceiling there is nothing to outrank it with (and u.inc + 1 would not go on the wire).
  if (u.inc >= kSwimMaxIncarnation) return Merge::Stale;
  inc_ = u.inc + 1;  // the caller disseminates this node's alive(inc_) at once
  return Merge::Refuted;
}

bool Swim::suspect(unsigned id, uint64_t now, SwimUpdate& out) {
  auto it = members_.find(id);
  if (it == members_.end() || it->second.state == SwimState::Dead) return false;
  SwimMember& m = it->second;
  if (m.state == SwimState::Suspect && m.suspecters.count(self_)) return false;
  out = SwimUpdate{id, m.inc, SwimState::Suspect, false, false, {}, self_};
  if (m.state == SwimState::Suspect) {
    m.suspecters.insert(self_);
    m.suspect_deadline_ms = m.suspect_since_ms + suspicion_timeout(m);
    return true;
  }
  apply(out, self_, now);
  return true;
}

std::vector<unsigned> Swim::expire_suspicions(uint64_t now) {
  std::vector<unsigned> dead;
  for (auto& [id, m] : members_) {
    if (m.state != SwimState::Suspect || now < m.suspect_deadline_ms) continue;
    m.state = SwimState::Dead;
    m.suspecters.clear();
    enqueue(SwimUpdate{id, m.inc, SwimState::Dead, false, false, {}});
    dead.push_back(id);
  }
  return dead;
}

SwimUpdate Swim::self_update(const SwimInfo& info, bool left) const {
  SwimUpdate u{self_, inc_, left ? SwimState::Dead : SwimState::Alive, left, !left, {}};
  if (!left) u.info = info;
  return u;
}

void Swim::set_conns(unsigned id, uint64_t conns) {
  auto it = members_.find(id);
  if (it != members_.end()) it->second.info.conns = conns;
}

unsigned Swim::next_probe_target() {
  for (int attempt = 0; attempt < 2; attempt++) {
    while (probe_pos_ < probe_order_.size()) {
      unsigned id = probe_order_[probe_pos_++];
      const SwimMember* m = find(id);
      if (m && m->state != SwimState::Dead) return id;
    }
    // A new pass: every non-dead member once, in a fresh random order (SWIM §4.3).
    probe_order_.clear();
    for (const auto& [id, m] : members_)
      if (m.state != SwimState::Dead) probe_order_.push_back(id);
    std::shuffle(probe_order_.begin(), probe_order_.end(), rng_);
    probe_pos_ = 0;
  }
  return 0;
}

std::vector<unsigned> Swim::indirect_helpers(unsigned target, unsigned k) {
  std::vector<unsigned> pool;
  for (const auto& [id, m] : members_)
    if (id != target && m.state == SwimState::Alive) pool.push_back(id);
  std::shuffle(pool.begin(), pool.end(), rng_);
  if (pool.size() > k) pool.resize(k);
  return pool;
}

unsigned Swim::retransmit_limit() const {
  unsigned n = static_cast<unsigned>(live_count()) + 1;
  unsigned log2n = 0;
  while ((1u << log2n) < n + 1) log2n++;  // ⌈log2(N+1)⌉
  return t_.retransmit_mult * std::max(1u, log2n);
}

void Swim::enqueue(const SwimUpdate& u) { queue_[u.id] = Queued{u, 0, ++queue_order_}; }

std::vector<SwimUpdate> Swim::piggyback(size_t budget, const std::function<size_t(const SwimUpdate&)>& size_of) {
  std::vector<Queued*> order;
  for (auto& [id, q] : queue_) order.push_back(&q);
  std::sort(order.begin(), order.end(), [](const Queued* a, const Queued* b) { return a->order > b->order; });
  std::vector<SwimUpdate> out;
  const unsigned limit = retransmit_limit();
  size_t used = 0;
  for (Queued* q : order) {
    size_t n = size_of(q->u);
    if (n > budget) {
      // It can never ride (a member info longer than the budget): dropped, or it would stay
      // queued for good and, the queue never empty, stop the digest exchange that carries it.
      q->transmits = limit;
      continue;
    }
    if (used + n > budget) continue;
    used += n;
    out.push_back(q->u);
    q->transmits++;
  }
  for (auto it = queue_.begin(); it != queue_.end();)
    it = it->second.transmits >= limit ? queue_.erase(it) : std::next(it);
  return out;
}

uint64_t Swim::digest() const {
  // FNV-1a over (id, inc, state) in id order, this node included, plus the count.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; i++) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  uint64_t count = 0;
  bool self_done = false;
  auto add_self = [&]() {
    mix(self_);
    mix(inc_);
    mix(0);
    count++;
    self_done = true;
  };
  for (const auto& [id, m] : members_) {
    if (!self_done && id > self_) add_self();
    if (m.state == SwimState::Dead) continue;
    mix(id);
    mix(m.inc);
    mix(static_cast<uint64_t>(m.state));
    count++;
  }
  if (!self_done) add_self();
  mix(count);
  return h & ((uint64_t{1} << 53) - 1);  // exact in JSON
}

std::vector<SwimUpdate> Swim::full_state(const SwimInfo& self_info) const {
  std::vector<SwimUpdate> out;
  out.push_back(self_update(self_info, false));
  for (const auto& [id, m] : members_) {
    if (m.state != SwimState::Dead && !m.has_info) continue;
    SwimUpdate u{id, m.inc, m.state, m.left, m.has_info && m.state != SwimState::Dead, {}};
    if (u.has_info) u.info = m.info;
    out.push_back(u);
  }
  return out;
}

bool SwimProbe::answered_by(unsigned from) const {
  return from == target || std::find(helpers.begin(), helpers.end(), from) != helpers.end();
}

bool SwimRelays::admit(unsigned requester, unsigned target, uint64_t req_seq, uint64_t seq, uint64_t deadline_ms) {
  if (!pairs_.emplace(requester, target).second) return false;
  by_seq_[seq] = Relay{requester, target, req_seq, deadline_ms};
  return true;
}

bool SwimRelays::answered(uint64_t seq, unsigned from, unsigned& requester, uint64_t& req_seq) {
  auto it = by_seq_.find(seq);
  if (it == by_seq_.end() || it->second.target != from) return false;
  requester = it->second.requester;
  req_seq = it->second.req_seq;
  pairs_.erase({it->second.requester, it->second.target});
  by_seq_.erase(it);
  return true;
}

void SwimRelays::expire(uint64_t now) {
  for (auto it = by_seq_.begin(); it != by_seq_.end();) {
    if (now < it->second.deadline_ms) {
      ++it;
      continue;
    }
    pairs_.erase({it->second.requester, it->second.target});
    it = by_seq_.erase(it);
  }
}

}  // namespace mg
