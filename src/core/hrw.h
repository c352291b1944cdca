// Rendezvous (highest random weight) hashing: a key goes to the member with the highest score.
// Used to pick a node for a uid (route API), and a consumer or a consuming node for a client's queue
// events. The same key and member set give the same answer on every node, whatever the order of the
// members, and a member that leaves moves only its own keys.
//
// The pick itself is written once, here (hrw_best); callers say only what their members are:
// hrw_pick (unweighted: queue consumers and nodes) and hrw_pick_weighted (the route API's nodes).
#pragma once

#include <cstdint>
#include <iterator>
#include <string>

namespace mg {

// A 64-bit hash of bytes, stable across processes, builds and machines (not std::hash).
uint64_t stable_hash(const void* data, size_t len);
inline uint64_t stable_hash(const std::string& s) { return stable_hash(s.data(), s.size()); }

// Score of (key, member); both are stable hashes. Unweighted: pick the largest.
uint64_t hrw_score(uint64_t key_hash, uint64_t member_hash);

// Weighted score (weight > 0): -weight / ln(u), u in (0,1) derived from hrw_score. A member with
// twice the weight receives about twice the keys.
double hrw_weighted_score(uint64_t key_hash, uint64_t member_hash, double weight);

// No member is skipped / no tie-break beyond the order of the members.
struct HrwNone {
  template <class T>
  bool operator()(const T&) const { return false; }
  template <class T>
  bool operator()(const T&, const T&) const { return false; }
};

// The element of [first, last) with the highest score(e) among those for which skip(e) is false;
// `last` when there is none. Between equal scores, the later element wins only if tie_wins(later,
// earlier_best): with HrwNone the earlier one keeps it.
template <class It, class Skip, class Score, class TieWins>
It hrw_best(It first, It last, Skip skip, Score score, TieWins tie_wins) {
  It best = last;
  decltype(score(*first)) best_score{};
  for (It it = first; it != last; ++it) {
    if (skip(*it)) continue;
    const auto s = score(*it);
    if (best == last || s > best_score || (s == best_score && tie_wins(*it, *best))) {
      best = it;
      best_score = s;
    }
  }
  return best;
}

// Unweighted: the member of `members` (a container) with the highest hrw_score(key_hash,
// member_hash(m)), skipping those for which skip(m) holds; an iterator, end() when there is none.
// Equal scores mean equal member hashes (hrw_score is a bijection of the member hash for one key):
// the earlier of them wins.
template <class Members, class MemberHash, class Skip = HrwNone>
auto hrw_pick(uint64_t key_hash, const Members& members, MemberHash member_hash, Skip skip = {}) {
  return hrw_best(std::begin(members), std::end(members), skip,
                  [&](const auto& m) { return hrw_score(key_hash, member_hash(m)); }, HrwNone{});
}

// Weighted: the member with the highest hrw_weighted_score(key_hash, member_hash(m), weight(m)); an
// iterator, end() when `members` is empty. Equal scores (members whose weight is not positive all
// score 0) go to tie_wins(a, b): a beats b. The route API breaks them by the lower node id, which
// is the same on every node whatever the order of its member list.
template <class Members, class MemberHash, class Weight, class TieWins>
auto hrw_pick_weighted(uint64_t key_hash, const Members& members, MemberHash member_hash, Weight weight,
                       TieWins tie_wins) {
  return hrw_best(std::begin(members), std::end(members), HrwNone{},
                  [&](const auto& m) { return hrw_weighted_score(key_hash, member_hash(m), weight(m)); }, tie_wins);
}

}  // namespace mg
