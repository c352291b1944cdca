// Rendezvous hashing primitives (see hrw.h).
//
// Every node must compute the same score for the same (key, member), so nothing here may depend on
// the build, the platform's byte order or std::hash:
//   stable_hash  = 64-bit FNV-1a over the bytes (byte at a time, so byte order does not matter),
//                  then the splitmix64 finaliser. FNV-1a alone mixes its last bytes poorly into the
//                  high bits; the finaliser makes every input bit affect every output bit.
//   hrw_score    = splitmix64(key ^ rotl(member, 32)). The rotation keeps key == member from
//                  cancelling to a constant; splitmix64 makes the scores of one key under different
//                  members look independent, which is what makes a leaving member move only its keys.
//   weighted     = -weight / ln(u), u uniform in (0,1) from the top 53 bits of the score: the
//                  member with the largest value wins with probability weight / sum(weights)
//                  (the minimum of exponential variables with rates w_i is attained at i with
//                  probability w_i / sum w).
// These values are part of the cluster's behaviour: changing any constant reassigns keys, and the
// unit tests pin stable_hash to fixed outputs so that cannot happen silently.
#include "core/hrw.h"

#include <cmath>

namespace mg {

namespace {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;

inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

// splitmix64 (Steele, Lea, Flood 2014): golden-ratio increment, then a bijective mixer.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t stable_hash(const void* data, size_t len) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = kFnvOffset;
  for (size_t i = 0; i < len; ++i) {
    h ^= p[i];
    h *= kFnvPrime;
  }
  return splitmix64(h);
}

uint64_t hrw_score(uint64_t key_hash, uint64_t member_hash) {
  return splitmix64(key_hash ^ rotl64(member_hash, 32));
}

double hrw_weighted_score(uint64_t key_hash, uint64_t member_hash, double weight) {
  // Not a positive number: never beats a member with a positive weight (those score > 0).
  if (!(weight > 0)) return 0.0;
  // (0,1) open at both ends: ln(u) is finite and strictly negative.
  const double u = (static_cast<double>(hrw_score(key_hash, member_hash) >> 11) + 0.5) * 0x1p-53;
  return -weight / std::log(u);
}

}  // namespace mg
