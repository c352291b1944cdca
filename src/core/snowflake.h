// Client ids: 64-bit snowflakes, as PROTOCOL.md §2.
//
//   | 41 bits: ms since the Twitter epoch | 10 bits: node id (1..kMaxNodeId) | 12 bits: sequence |
//
// Each worker thread owns a generator. Worker k of n issues only sequences s with s % n == k, so the
// worker that owns a connection is read from its id (snowflake_worker) with no shared table and no lock.
// A generator never issues the same id twice: when the sequences of one millisecond are used up, or
// the clock steps back, it moves to the next millisecond after the last one it used.
#pragma once

#include <cstdint>

#include "core/node_info.h"

namespace mg {

constexpr uint64_t kSnowflakeEpochMs = 1288834974657ull;  // 2010-11-04T01:42:54.657Z
constexpr int kSeqBits = 12;  // the node id's bits (kNodeIdBits) sit above these
constexpr uint64_t kSeqMask = (1u << kSeqBits) - 1;

class SnowflakeGenerator {
 public:
  // node_id in 1..kMaxNodeId, 0 <= worker_index < worker_count <= 4096.
  SnowflakeGenerator(unsigned node_id, unsigned worker_index, unsigned worker_count);
  // A new id for wall-clock time `unix_ms` (milliseconds since 1970).
  uint64_t next(uint64_t unix_ms);

 private:
  uint64_t node_id_;
  unsigned worker_index_, worker_count_;
  uint64_t last_ms_ = 0;  // ms since the snowflake epoch of the last id
  uint64_t next_seq_;     // next sequence to hand out within last_ms_
};

inline unsigned snowflake_node(uint64_t id) { return (id >> kSeqBits) & kMaxNodeId; }
inline unsigned snowflake_seq(uint64_t id) { return id & kSeqMask; }
inline uint64_t snowflake_unix_ms(uint64_t id) { return (id >> (kSeqBits + kNodeIdBits)) + kSnowflakeEpochMs; }
inline unsigned snowflake_worker(uint64_t id, unsigned worker_count) {
  return snowflake_seq(id) % worker_count;
}

}  // namespace mg
