// SWIM membership with Lifeguard's suspicion (Das et al. 2002; Dadgar et al. 2018, as in HashiCorp
// memberlist): who is in the cluster, in which state, and whom to probe next. A pure state machine:
// no I/O, no clock (times are passed in, in ms), randomness from a seeded generator, so the unit
// tests drive it step by step. The mesh (mesh_swim.cpp) does the sending and acts on the changes.
//
// Glossary:
//   incarnation  a number only the member itself raises; a node starts with its start time in ms
//                (wall clock), so a restarted node outranks every rumour about its previous life
//   update       {id, incarnation, state, info when alive}: what one node tells others of a member
//   suspect      a probe of the member failed (directly and through others); dead when the
//                suspicion timer runs out, unless the member refutes (alive with a higher incarnation)
//   confirmation another node independently suspects the same member: the timer shortens
//   pass         one round of direct probes over every non-dead member, in a shuffled order
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/node_info.h"

namespace mg {

enum class SwimState : uint8_t { Alive = 0, Suspect = 1, Dead = 2 };

// The highest incarnation: the wire carries incarnations as exact JSON integers (mesh_wire.h), so
// one above 2^53 - 1 would make every frame that carries it malformed for the receiver. Swim never
// raises its own past it, and takes no update above it.
constexpr uint64_t kSwimMaxIncarnation = (uint64_t{1} << 53) - 1;

// The longest string of a member's info (name, mesh address, each client address) that is taken:
// with at most kMaxNodeId members, it bounds the member table and a full MEMBERS (some 8 MB).
constexpr size_t kSwimMaxInfoString = 1024;
const char* swim_state_name(SwimState s);

// What the route API and node.list need of a member, spread with its alive updates.
struct SwimInfo {
  std::string name, mesh_addr;
  double weight = 1;
  uint64_t conns = 0;
  NodeAddresses ext, intranet;
};

struct SwimUpdate {
  unsigned id = 0;
  uint64_t inc = 0;
  SwimState state = SwimState::Alive;
  bool left = false;      // dead: the member said so itself (a graceful stop), no suspicion needed
  bool has_info = false;  // alive: `info` is set
  SwimInfo info;
  // Suspect: the node whose probe failed (0: not said). Confirmations count distinct suspecters,
  // not the nodes that relayed one suspicion: every node relays what it applies.
  unsigned by = 0;
};

// Times derived from [mesh] dead_after (docs/decisions.md "SWIM timing").
struct SwimTiming {
  uint64_t probe_interval_ms = 300;  // one direct probe started per interval
  uint64_t probe_timeout_ms = 150;   // no ACK by then: indirect probes through `indirect_k` others
  uint64_t suspicion_min_ms = 1500;  // with `expected_confirmations` or more confirmations
  uint64_t suspicion_max_ms = 2400;  // with none
  unsigned indirect_k = 3;
  unsigned expected_confirmations = 3;
  unsigned retransmit_mult = 3;  // λ: an update is sent λ·⌈log2(N+1)⌉ times
  static SwimTiming from_dead_after(uint64_t dead_after_ms);
};

// Lifeguard's suspicion timeout with C `confirmations` independent suspicions out of K `expected`:
// max(min, max - (max - min)·log(C+1)/log(K+1)); min when K is 0 (too few members to confirm).
uint64_t swim_suspicion_timeout(const SwimTiming& t, unsigned confirmations, unsigned expected);

struct SwimMember {
  unsigned id = 0;
  uint64_t inc = 0;
  SwimState state = SwimState::Alive;
  bool left = false;
  bool has_info = false;
  SwimInfo info;
  // Suspect: when the timer started, when it runs out, and who suspects (the confirmations).
  uint64_t suspect_since_ms = 0, suspect_deadline_ms = 0;
  std::set<unsigned> suspecters;
};

class Swim {
 public:
  enum class Merge {
    Stale,     // nothing new: an older or equal rumour
    Applied,   // the member's state or incarnation changed (queued for dissemination)
    Confirmed, // a suspicion already held got one more independent confirmation
    Refuted,   // news about this node that it refuted: its incarnation went up, alive queued
  };

  // `incarnation` above kSwimMaxIncarnation is taken as kSwimMaxIncarnation.
  Swim(unsigned self, uint64_t incarnation, SwimTiming timing, uint64_t seed);

  unsigned self() const { return self_; }
  uint64_t incarnation() const { return inc_; }
  const SwimTiming& timing() const { return t_; }
  const std::map<unsigned, SwimMember>& members() const { return members_; }
  const SwimMember* find(unsigned id) const;
  // Members not dead (alive or suspect), this node not included.
  size_t live_count() const;

  // Merges an update heard from node `from` (0: first-hand, e.g. a HELLO) at `now`; a suspicion
  // counts as `u.by`'s, or `from`'s when it does not say. The merge
  // rules are in swim.cpp; an update about this node is refuted when it says suspect or dead. An
  // update with an incarnation above kSwimMaxIncarnation is stale; one about this node at
  // kSwimMaxIncarnation cannot be outranked, so it is stale too (not refuted). An info with a
  // string over kSwimMaxInfoString is not taken: the update counts as one without info.
  Merge apply(const SwimUpdate& u, unsigned from, uint64_t now);
  // This node suspects `id` (its probe failed): the update to push to every member, or none
  // (returns false) when it is not alive/suspect or this node already suspects it.
  bool suspect(unsigned id, uint64_t now, SwimUpdate& out);
  // Suspicions whose timer ran out at `now`: they are dead now (queued), their ids returned.
  std::vector<unsigned> expire_suspicions(uint64_t now);
  // This node did not run for `ms` (a stopped process, a starved loop): every suspicion timer
  // moves on by as much, so that it judges nobody on time it did not watch.
  void postpone_suspicions(uint64_t ms);
  // This node's own alive update (with `info`), or its "left" when stopping.
  SwimUpdate self_update(const SwimInfo& info, bool left) const;
  // Updates the member info of an alive member seen first-hand (connections change often: not
  // disseminated, each node hears them from the probes it exchanges).
  void set_conns(unsigned id, uint64_t conns);

  // --- probing ---
  // The next member to probe: round-robin over a shuffled list of the non-dead members,
  // reshuffled at each new pass; 0 when there is none.
  unsigned next_probe_target();
  // Up to `k` members other than `target` (alive, random) to probe it indirectly.
  std::vector<unsigned> indirect_helpers(unsigned target, unsigned k);

  // --- dissemination ---
  // Queues an update for piggybacking: it replaces an older queued one about the same member.
  void enqueue(const SwimUpdate& u);
  // Up to `budget` bytes of queued updates (sizes by `size_of`), newest first; each returned one
  // counts one transmission and leaves the queue after λ·⌈log2(N+1)⌉. One larger than `budget`
  // by itself leaves the queue unsent (full MEMBERS, on a digest mismatch, carry it).
  std::vector<SwimUpdate> piggyback(size_t budget, const std::function<size_t(const SwimUpdate&)>& size_of);
  bool queue_empty() const { return queue_.empty(); }
  size_t queue_size() const { return queue_.size(); }
  unsigned retransmit_limit() const;
  // count + hash of (id, inc, state) of every non-dead member and this node: two nodes that agree
  // have the same digest.
  uint64_t digest() const;
  // Every member (and this node with `self_info`) as updates: a full MEMBERS.
  std::vector<SwimUpdate> full_state(const SwimInfo& self_info) const;

 private:
  struct Queued {
    SwimUpdate u;
    unsigned transmits = 0;
    uint64_t order = 0;  // higher: newer
  };
  void set_state(SwimMember& m, const SwimUpdate& u, uint64_t now);
  // The timeout of `m`'s suspicion for its current confirmations: K is at most the members
  // that could confirm (neither this node nor the suspect).
  uint64_t suspicion_timeout(const SwimMember& m) const;
  Merge refute(const SwimUpdate& u);

  unsigned self_;
  uint64_t inc_;
  SwimTiming t_;
  std::mt19937_64 rng_;
  std::map<unsigned, SwimMember> members_;  // never this node
  std::vector<unsigned> probe_order_;
  size_t probe_pos_ = 0;
  std::map<unsigned, Queued> queue_;  // by member id
  uint64_t queue_order_ = 0;
};

// A probe this node started (the mesh keeps them by sequence number): direct, then through helpers
// after the probe timeout (at once when there is no link to the target); failed at end_ms without
// an ACK. Only the target, or a helper it was asked through, can answer it: the sequence numbers
// are no secret, and an ACK from any other peer would keep a dead member alive.
struct SwimProbe {
  unsigned target = 0;
  uint64_t start_ms = 0, indirect_ms = 0, end_ms = 0;
  bool indirect_sent = false;
  std::vector<unsigned> helpers;  // the members sent PING_REQ for it
  bool answered_by(unsigned from) const;
};

// The probes this node runs for others (PING_REQ), by the sequence number of its own PING. At most
// one per requester and target at a time: a requester probes a member once at a time anyway, so a
// PING_REQ repeated while one is pending is not served again. A peer thus gets this node to send at
// most one PING per member per probe interval (the relay's life), and holds at most one entry per
// member here, however many PING_REQs it sends.
class SwimRelays {
 public:
  // Takes the PING_REQ `req_seq` of `requester` about `target`, to be served by this node's PING
  // `seq` until `deadline_ms`; false (not to be served) when one of that pair is pending.
  bool admit(unsigned requester, unsigned target, uint64_t req_seq, uint64_t seq, uint64_t deadline_ms);
  // An ACK `seq` from node `from`: true when it answers a pending relay from that relay's target
  // (an ACK from anyone else proves nothing); the relay ends, `requester` and `req_seq` say whom to
  // pass the ACK to.
  bool answered(uint64_t seq, unsigned from, unsigned& requester, uint64_t& req_seq);
  // Drops the relays whose deadline is past `now`.
  void expire(uint64_t now);
  size_t size() const { return by_seq_.size(); }

 private:
  struct Relay {
    unsigned requester = 0, target = 0;
    uint64_t req_seq = 0, deadline_ms = 0;
  };
  std::map<uint64_t, Relay> by_seq_;
  std::set<std::pair<unsigned, unsigned>> pairs_;  // (requester, target) of by_seq_
};

}  // namespace mg
