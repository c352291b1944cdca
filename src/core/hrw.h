// Rendezvous (highest random weight) hashing: a key goes to the member with the highest score.
// Used to pick a node for a uid (route API) and a consumer for a client's queue events. The same key
// and member set give the same answer on every node, whatever the order of the members, and a member
// that leaves moves only its own keys.
#pragma once

#include <cstdint>
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

}  // namespace mg
