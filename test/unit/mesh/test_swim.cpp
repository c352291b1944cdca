// Unit tests for the SWIM state machine (mesh/swim.h): the merge rules (a stale rumour loses to a
// newer incarnation, a dead member rejoins with a higher one), refutation of news about this node,
// Lifeguard's suspicion timeout shrinking with confirmations, suspicion expiry, the dissemination
// queue's retransmit limit and byte budget, the probe round robin, the digest, and the timing
// derived from dead_after.
#include "mesh/swim.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace {

using mg::Swim;
using mg::SwimState;
using mg::SwimTiming;
using mg::SwimUpdate;

SwimUpdate alive(unsigned id, uint64_t inc) {
  SwimUpdate u{id, inc, SwimState::Alive, false, true, {}};
  u.info.name = "n" + std::to_string(id);
  u.info.mesh_addr = "127.0.0.1:" + std::to_string(7000 + id);
  return u;
}
SwimUpdate suspect(unsigned id, uint64_t inc) { return SwimUpdate{id, inc, SwimState::Suspect, false, false, {}}; }
SwimUpdate dead(unsigned id, uint64_t inc) { return SwimUpdate{id, inc, SwimState::Dead, false, false, {}}; }

SwimTiming timing() { return SwimTiming::from_dead_after(3000); }

Swim make(unsigned n_members) {
  Swim s(1, 1000, timing(), 42);
  for (unsigned id = 2; id <= n_members + 1; id++) s.apply(alive(id, 10), 0, 0);
  return s;
}

size_t one_byte(const SwimUpdate&) { return 1; }

TEST(SwimTiming, FromDeadAfter) {
  SwimTiming t = SwimTiming::from_dead_after(3000);
  EXPECT_EQ(t.probe_interval_ms, 300u);
  EXPECT_EQ(t.probe_timeout_ms, 150u);
  EXPECT_EQ(t.suspicion_min_ms, 1500u);
  EXPECT_EQ(t.suspicion_max_ms, 2400u);
  SwimTiming small = SwimTiming::from_dead_after(200);
  EXPECT_EQ(small.probe_interval_ms, 50u);
  EXPECT_GE(small.suspicion_max_ms, small.suspicion_min_ms);
}

TEST(SwimMerge, AliveOverridesOnlyOlderIncarnations) {
  Swim s = make(1);
  EXPECT_EQ(s.apply(alive(2, 10), 9, 0), Swim::Merge::Stale);
  EXPECT_EQ(s.apply(alive(2, 9), 9, 0), Swim::Merge::Stale);
  EXPECT_EQ(s.apply(alive(2, 11), 9, 0), Swim::Merge::Applied);
  EXPECT_EQ(s.find(2)->inc, 11u);
}

TEST(SwimMerge, SuspectOverridesAliveOfSameOrOlderIncarnation) {
  Swim s = make(1);
  EXPECT_EQ(s.apply(suspect(2, 9), 3, 0), Swim::Merge::Stale);  // older than what we know
  EXPECT_EQ(s.apply(suspect(2, 10), 3, 0), Swim::Merge::Applied);
  EXPECT_EQ(s.find(2)->state, SwimState::Suspect);
  // The member refutes with a higher incarnation: alive again.
  EXPECT_EQ(s.apply(alive(2, 11), 2, 5), Swim::Merge::Applied);
  EXPECT_EQ(s.find(2)->state, SwimState::Alive);
  // A late copy of the old suspicion loses.
  EXPECT_EQ(s.apply(suspect(2, 10), 4, 6), Swim::Merge::Stale);
  EXPECT_EQ(s.find(2)->state, SwimState::Alive);
}

TEST(SwimMerge, DeadOverridesAliveAndSuspectOfSameIncarnation) {
  Swim s = make(2);
  EXPECT_EQ(s.apply(dead(2, 9), 3, 0), Swim::Merge::Stale);
  EXPECT_EQ(s.apply(dead(2, 10), 3, 0), Swim::Merge::Applied);
  EXPECT_EQ(s.find(2)->state, SwimState::Dead);
  s.apply(suspect(3, 10), 2, 0);
  EXPECT_EQ(s.apply(dead(3, 10), 2, 0), Swim::Merge::Applied);
  // Dead stays dead for its incarnation: neither alive nor suspect of it bring it back.
  EXPECT_EQ(s.apply(alive(2, 10), 2, 0), Swim::Merge::Stale);
  EXPECT_EQ(s.apply(suspect(2, 10), 2, 0), Swim::Merge::Stale);
}

TEST(SwimMerge, RejoinWithNewIncarnationBeatsStaleDeadRumour) {
  Swim s = make(1);
  s.apply(dead(2, 10), 3, 0);
  // Restarted: its incarnation is its new start time, far above the old one.
  EXPECT_EQ(s.apply(alive(2, 5000), 0, 10), Swim::Merge::Applied);
  EXPECT_EQ(s.find(2)->state, SwimState::Alive);
  // Rumours about its previous life still circulate: none of them wins.
  EXPECT_EQ(s.apply(dead(2, 10), 3, 11), Swim::Merge::Stale);
  EXPECT_EQ(s.apply(suspect(2, 10), 3, 11), Swim::Merge::Stale);
  EXPECT_EQ(s.find(2)->state, SwimState::Alive);
  EXPECT_EQ(s.find(2)->inc, 5000u);
}

TEST(SwimMerge, AliveWithoutInfoOfUnknownMemberIsIgnored) {
  Swim s = make(0);
  SwimUpdate u = alive(5, 1);
  u.has_info = false;
  EXPECT_EQ(s.apply(u, 2, 0), Swim::Merge::Stale);
  EXPECT_EQ(s.find(5), nullptr);
}

// A suspicion of an id this node never heard of: no table entry, so no probe turn (made-up ids
// would starve the real members' probes) and no weight in N or K.
TEST(SwimMerge, SuspectOfUnknownMemberIsIgnored) {
  Swim s = make(1);
  for (unsigned id = 3; id <= 1000; id++) EXPECT_EQ(s.apply(suspect(id, 1), 2, 0), Swim::Merge::Stale);
  EXPECT_EQ(s.find(3), nullptr);
  EXPECT_EQ(s.live_count(), 1u);
  EXPECT_EQ(s.next_probe_target(), 2u);
  EXPECT_EQ(s.next_probe_target(), 2u);
}

// A member info with an overlong string (a peer's made-up name of megabytes) is not stored: 1,023
// of them would fill memory, and a full MEMBERS would pass the frame limit.
TEST(SwimMerge, OverlongInfoIsNotTaken) {
  Swim s = make(1);
  SwimUpdate big = alive(5, 1);
  big.info.name.assign(1025, 'x');
  EXPECT_EQ(s.apply(big, 2, 0), Swim::Merge::Stale);  // unknown, and no info to route to
  EXPECT_EQ(s.find(5), nullptr);
  big = alive(2, 11);
  big.info.ext.wss.assign(100000, 'x');
  EXPECT_EQ(s.apply(big, 2, 0), Swim::Merge::Applied);  // the incarnation still counts
  EXPECT_EQ(s.find(2)->inc, 11u);
  EXPECT_EQ(s.find(2)->info.name, "n2");  // the info known before is kept
  EXPECT_TRUE(s.find(2)->info.ext.wss.empty());
  SwimUpdate fits = alive(6, 1);
  fits.info.name.assign(1024, 'x');
  EXPECT_EQ(s.apply(fits, 2, 0), Swim::Merge::Applied);
}

TEST(SwimRefute, SuspicionOfSelfBumpsIncarnation) {
  Swim s = make(1);
  EXPECT_EQ(s.apply(suspect(1, 999), 2, 0), Swim::Merge::Stale);  // older than ours
  EXPECT_EQ(s.incarnation(), 1000u);
  EXPECT_EQ(s.apply(suspect(1, 1000), 2, 0), Swim::Merge::Refuted);
  EXPECT_EQ(s.incarnation(), 1001u);
  EXPECT_EQ(s.apply(dead(1, 1005), 2, 0), Swim::Merge::Refuted);
  EXPECT_EQ(s.incarnation(), 1006u);
  EXPECT_EQ(s.apply(alive(1, 2000), 2, 0), Swim::Merge::Stale);
  SwimUpdate me = s.self_update({}, false);
  EXPECT_EQ(me.inc, 1006u);
  EXPECT_EQ(me.state, SwimState::Alive);
}

// A rumour about this node near the wire's ceiling (2^53 - 1, the largest exact JSON integer):
// the refutation must stay encodable (a 2^53 would make every frame carrying it malformed at the
// receivers, which close the link), and a rumour at or past the ceiling must not wrap it around.
TEST(SwimRefute, IncarnationNeverPassesTheWireCeiling) {
  const uint64_t ceiling = (uint64_t{1} << 53) - 1;
  EXPECT_EQ(mg::kSwimMaxIncarnation, ceiling);
  Swim s = make(1);
  EXPECT_EQ(s.apply(suspect(1, ceiling - 1), 2, 0), Swim::Merge::Refuted);
  EXPECT_EQ(s.incarnation(), ceiling);
  EXPECT_EQ(s.apply(suspect(1, ceiling), 2, 0), Swim::Merge::Stale);  // nothing outranks it
  EXPECT_EQ(s.incarnation(), ceiling);
  EXPECT_EQ(s.apply(dead(1, UINT64_MAX), 2, 0), Swim::Merge::Stale);  // no wrap to 0
  EXPECT_EQ(s.incarnation(), ceiling);
  EXPECT_EQ(s.apply(alive(2, ceiling + 1), 2, 0), Swim::Merge::Stale);  // off the wire's range
  EXPECT_EQ(s.find(2)->inc, 10u);
  EXPECT_EQ(Swim(1, UINT64_MAX, timing(), 1).incarnation(), ceiling);
}

TEST(SwimSuspicion, TimeoutShrinksWithConfirmations) {
  SwimTiming t = timing();
  uint64_t prev = mg::swim_suspicion_timeout(t, 0, 3);
  EXPECT_EQ(prev, t.suspicion_max_ms);
  for (unsigned c = 1; c <= 3; c++) {
    uint64_t next = mg::swim_suspicion_timeout(t, c, 3);
    EXPECT_LT(next, prev);
    prev = next;
  }
  EXPECT_EQ(mg::swim_suspicion_timeout(t, 3, 3), t.suspicion_min_ms);
  EXPECT_EQ(mg::swim_suspicion_timeout(t, 10, 3), t.suspicion_min_ms);
  EXPECT_EQ(mg::swim_suspicion_timeout(t, 0, 0), t.suspicion_min_ms);  // nobody could confirm
}

TEST(SwimSuspicion, SmallClusterExpectsFewerConfirmations) {
  Swim s = make(1);  // only the suspect besides this node: no one can confirm
  SwimUpdate out;
  ASSERT_TRUE(s.suspect(2, 0, out));
  EXPECT_EQ(s.find(2)->suspect_deadline_ms, timing().suspicion_min_ms);
  s.postpone_suspicions(500);
  EXPECT_EQ(s.find(2)->suspect_deadline_ms, timing().suspicion_min_ms + 500);
}

TEST(SwimSuspicion, ConfirmationsBringTheDeadlineForward) {
  Swim s = make(5);
  SwimUpdate out;
  ASSERT_TRUE(s.suspect(2, 100, out));
  EXPECT_EQ(out.state, SwimState::Suspect);
  EXPECT_FALSE(s.suspect(2, 100, out));  // already suspected by this node
  EXPECT_EQ(s.find(2)->suspect_deadline_ms, 100 + timing().suspicion_max_ms);
  EXPECT_EQ(s.apply(suspect(2, 10), 3, 110), Swim::Merge::Confirmed);
  EXPECT_EQ(s.apply(suspect(2, 10), 3, 120), Swim::Merge::Stale);  // the same node twice
  uint64_t one = s.find(2)->suspect_deadline_ms;
  EXPECT_LT(one, 100 + timing().suspicion_max_ms);
  s.apply(suspect(2, 10), 4, 130);
  s.apply(suspect(2, 10), 5, 130);
  EXPECT_EQ(s.find(2)->suspect_deadline_ms, 100 + timing().suspicion_min_ms);
  EXPECT_TRUE(s.expire_suspicions(100 + timing().suspicion_min_ms - 1).empty());
  std::vector<unsigned> gone = s.expire_suspicions(100 + timing().suspicion_min_ms);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0], 2u);
  EXPECT_EQ(s.find(2)->state, SwimState::Dead);
}

// Every node relays the suspicions it applies: copies of node 2's suspicion of 6 arriving through
// nodes 3, 4 and 5 are one suspecter, not three confirmations (Lifeguard counts independent
// suspecters; counting relays took every suspicion to the minimum timeout).
TEST(SwimSuspicion, RelayedCopiesOfOneSuspicionAreNotConfirmations) {
  Swim s = make(6);
  SwimUpdate by2 = suspect(6, 10);
  by2.by = 2;
  EXPECT_EQ(s.apply(by2, 3, 100), Swim::Merge::Applied);
  EXPECT_EQ(s.apply(by2, 4, 110), Swim::Merge::Stale);
  EXPECT_EQ(s.apply(by2, 5, 120), Swim::Merge::Stale);
  EXPECT_EQ(s.find(6)->suspecters, std::set<unsigned>{2});
  EXPECT_EQ(s.find(6)->suspect_deadline_ms, 100 + timing().suspicion_max_ms);
  SwimUpdate self_claim = suspect(6, 10);
  self_claim.by = 6;  // the suspect cannot confirm itself
  EXPECT_EQ(s.apply(self_claim, 6, 130), Swim::Merge::Stale);
  SwimUpdate by4 = suspect(6, 10);
  by4.by = 4;  // node 4's own probe failed too, relayed by 5
  EXPECT_EQ(s.apply(by4, 5, 140), Swim::Merge::Confirmed);
  EXPECT_EQ(s.find(6)->suspect_deadline_ms, 100 + mg::swim_suspicion_timeout(timing(), 1, 3));
  SwimUpdate mine;
  ASSERT_TRUE(s.suspect(6, 150, mine));
  EXPECT_EQ(mine.by, 1u);  // this node's suspicion names it
}

TEST(SwimSuspicion, SuspectFromAnotherNodeStartsTimerAndConfirmsWithOwn) {
  Swim s = make(3);
  EXPECT_EQ(s.apply(suspect(2, 10), 3, 0), Swim::Merge::Applied);
  SwimUpdate out;
  EXPECT_TRUE(s.suspect(2, 10, out));  // this node's own probe failed too: a confirmation
  EXPECT_EQ(s.find(2)->suspecters.size(), 2u);
  EXPECT_EQ(s.find(2)->suspect_deadline_ms, mg::swim_suspicion_timeout(timing(), 1, 2));
}

TEST(SwimDissemination, RetransmitLimit) {
  Swim s = make(7);  // N = 8: λ·⌈log2(9)⌉ = 3·4 = 12
  EXPECT_EQ(s.retransmit_limit(), 12u);
  while (s.piggyback(1000, one_byte).size()) {
  }
  s.enqueue(dead(2, 10));
  unsigned sent = 0;
  while (!s.piggyback(1000, one_byte).empty()) sent++;
  EXPECT_EQ(sent, 12u);
  EXPECT_TRUE(s.queue_empty());
}

TEST(SwimDissemination, NewestFirstWithinBudgetAndReplacesOlderNewsOfAMember) {
  Swim s = make(3);
  while (!s.piggyback(1000, one_byte).empty()) {
  }
  s.enqueue(alive(2, 11));
  s.enqueue(alive(3, 11));
  s.enqueue(dead(2, 11));  // replaces the alive about 2
  EXPECT_EQ(s.queue_size(), 2u);
  std::vector<SwimUpdate> one = s.piggyback(1, one_byte);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].id, 2u);
  EXPECT_EQ(one[0].state, SwimState::Dead);
  EXPECT_EQ(s.piggyback(2, one_byte).size(), 2u);
}

// An update that alone exceeds the byte budget (a member info with a very long name) can never be
// piggybacked: it must leave the queue, or the queue is never empty and the digest exchange (sent
// only with no news in flight) stops for good.
TEST(SwimDissemination, UpdateLargerThanTheBudgetLeavesTheQueue) {
  Swim s = make(3);
  while (!s.piggyback(1000, one_byte).empty()) {
  }
  SwimUpdate big = alive(2, 11);
  big.info.name.assign(5000, 'x');
  s.enqueue(big);
  s.enqueue(alive(3, 11));
  auto size = [](const SwimUpdate& u) { return u.info.name.size() + 10; };
  std::vector<SwimUpdate> sent = s.piggyback(1200, size);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].id, 3u);
  EXPECT_EQ(s.queue_size(), 1u);  // only 3's, still to be retransmitted
  while (!s.piggyback(1200, size).empty()) {
  }
  EXPECT_TRUE(s.queue_empty());
}

TEST(SwimProbe, RoundRobinVisitsEveryoneOncePerPass) {
  Swim s = make(9);
  for (int pass = 0; pass < 3; pass++) {
    std::multiset<unsigned> seen;
    for (int i = 0; i < 9; i++) seen.insert(s.next_probe_target());
    EXPECT_EQ(seen.size(), 9u);
    for (unsigned id = 2; id <= 10; id++) EXPECT_EQ(seen.count(id), 1u) << "pass " << pass << " node " << id;
  }
}

TEST(SwimProbe, SkipsDeadMembersAndHelpersExcludeTarget) {
  Swim s = make(4);
  s.apply(dead(3, 10), 2, 0);
  std::set<unsigned> seen;
  for (int i = 0; i < 9; i++) seen.insert(s.next_probe_target());
  EXPECT_EQ(seen, (std::set<unsigned>{2, 4, 5}));
  std::vector<unsigned> h = s.indirect_helpers(2, 3);
  EXPECT_EQ(h.size(), 2u);
  for (unsigned id : h) EXPECT_TRUE(id == 4 || id == 5);
  Swim empty(1, 1, timing(), 1);
  EXPECT_EQ(empty.next_probe_target(), 0u);
}

TEST(SwimDigest, AgreesOnSameViewAndDiffersOtherwise) {
  Swim a = make(3);
  Swim b(1, 1000, timing(), 7);
  for (unsigned id = 4; id >= 2; id--) b.apply(alive(id, 10), 0, 0);
  EXPECT_EQ(a.digest(), b.digest());
  b.apply(suspect(3, 10), 2, 0);
  EXPECT_NE(a.digest(), b.digest());
  std::vector<SwimUpdate> full = a.full_state({});
  EXPECT_EQ(full.size(), 4u);
}

}  // namespace

namespace {

// PING_REQ served for others: a requester flooding PING_REQs about one member gets one relay (one
// PING sent) until that one is answered or expires; the ACK counts only from the target.
TEST(SwimRelays, OnePerRequesterAndTargetAndOnlyTheTargetAnswers) {
  mg::SwimRelays r;
  EXPECT_TRUE(r.admit(2, 3, 7, 100, 1000));
  for (uint64_t k = 0; k < 10000; k++) EXPECT_FALSE(r.admit(2, 3, 8 + k, 101 + k, 1000));
  EXPECT_EQ(r.size(), 1u);
  EXPECT_TRUE(r.admit(2, 4, 9, 200, 1000));  // another target
  EXPECT_TRUE(r.admit(5, 3, 1, 300, 1000));  // another requester
  EXPECT_EQ(r.size(), 3u);
  unsigned requester = 0;
  uint64_t req_seq = 0;
  EXPECT_FALSE(r.answered(100, 4, requester, req_seq));  // not from the target: proves nothing
  EXPECT_FALSE(r.answered(101, 3, requester, req_seq));  // never admitted
  ASSERT_TRUE(r.answered(100, 3, requester, req_seq));
  EXPECT_EQ(requester, 2u);
  EXPECT_EQ(req_seq, 7u);
  EXPECT_FALSE(r.answered(100, 3, requester, req_seq));  // once
  EXPECT_TRUE(r.admit(2, 3, 10, 400, 2000));  // the pair is free again
  r.expire(1000);
  EXPECT_EQ(r.size(), 1u);
  EXPECT_FALSE(r.admit(2, 3, 11, 500, 3000));  // 400 is still pending
  r.expire(2000);
  EXPECT_EQ(r.size(), 0u);
  EXPECT_TRUE(r.admit(2, 3, 12, 600, 3000));
}

// A probe's ACK counts from its target, or from a helper it was asked through; the sequence
// numbers are predictable, so any other peer's ACK must not keep a dead member alive.
TEST(SwimProbe, AnsweredOnlyByTheTargetOrAnAskedHelper) {
  mg::SwimProbe p;
  p.target = 4;
  EXPECT_TRUE(p.answered_by(4));
  EXPECT_FALSE(p.answered_by(5));
  p.helpers = {5, 6};
  EXPECT_TRUE(p.answered_by(5));
  EXPECT_TRUE(p.answered_by(6));
  EXPECT_FALSE(p.answered_by(7));
  EXPECT_FALSE(p.answered_by(0));
}

}  // namespace
