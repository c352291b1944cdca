// Snowflake client ids (see snowflake.h and PROTOCOL.md §2).
//
// Worker k of n hands out, within one millisecond, the sequences k, k+n, k+2n, ... below 4096, so
// snowflake_worker(id, n) == k for all of its ids and workers of one node never collide.
//
// Never reusing an id is the rule that decides what happens when time does not move forward:
//   - the clock is ahead of the last millisecond used: start that millisecond at sequence k;
//   - the clock equals it, or is behind it (stepped back, or we ran ahead after exhausting a
//     millisecond): keep handing out the remaining sequences of the last millisecond used, then move
//     to last + 1. Staying on `last` while it has sequences left, rather than jumping to last + 1 on
//     every call with an older clock, keeps the ids' time from racing away from the wall clock (one
//     millisecond per id) during a burst or after a step back.
// Before the epoch (a badly wrong clock) counts as millisecond 0. The 41-bit time field lasts until
// 2080; after that the time wraps (not handled).
#include "core/snowflake.h"

#include <stdexcept>

namespace mg {

SnowflakeGenerator::SnowflakeGenerator(unsigned node_id, unsigned worker_index, unsigned worker_count)
    : node_id_(node_id), worker_index_(worker_index), worker_count_(worker_count),
      next_seq_(worker_index) {
  if (node_id < 1 || node_id > kMaxNodeId) throw std::invalid_argument("snowflake: node id not in " + node_id_range());
  if (worker_count < 1 || worker_count > kSeqMask + 1 || worker_index >= worker_count) {
    throw std::invalid_argument("snowflake: need 0 <= worker_index < worker_count <= 4096");
  }
}

uint64_t SnowflakeGenerator::next(uint64_t unix_ms) {
  const uint64_t ms = unix_ms > kSnowflakeEpochMs ? unix_ms - kSnowflakeEpochMs : 0;
  if (ms > last_ms_) {
    last_ms_ = ms;
    next_seq_ = worker_index_;
  } else if (next_seq_ > kSeqMask) {
    ++last_ms_;
    next_seq_ = worker_index_;
  }
  const uint64_t id = (last_ms_ << (kNodeIdBits + kSeqBits)) | (node_id_ << kSeqBits) | next_seq_;
  next_seq_ += worker_count_;
  return id;
}

}  // namespace mg
