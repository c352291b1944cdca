// Client events posted by the workers and not yet taken by the hub, and the pause that keeps their
// number bounded (the workers decode in parallel; one hub thread queues and delivers).
//
// Any thread: a worker adds what it posts (posted) and, after reading a client, asks whether to stop
// reading it (should_pause). The hub thread subtracts what it took (taken), which says when every
// worker must be told to read its paused clients again.
//
// The hand-over is lock-free and loses no wake-up: should_pause sets `resume_wanted` and then reads
// the count again; taken lowers the count and then takes the flag (all sequentially consistent). So
// either the worker sees that the hub caught up and does not pause, or the hub sees the flag and
// answers with a resume.
#pragma once

#include <atomic>
#include <cstddef>

namespace mg {

class EventBacklog {
 public:
  // A client is not read further (from its next message on) at kHighWater events waiting, until the
  // hub is down to kLowWater.
  static constexpr size_t kHighWater = 16384;
  static constexpr size_t kLowWater = kHighWater / 4;

  size_t waiting() const { return waiting_.load(std::memory_order_relaxed); }
  void posted(size_t n) { waiting_.fetch_add(n, std::memory_order_relaxed); }
  // True at kHighWater or more: the caller stops reading its client, and is owed a resume (taken()
  // returns true once the count is down to kLowWater).
  bool should_pause() {
    if (waiting_.load(std::memory_order_relaxed) < kHighWater) return false;
    if (!resume_wanted_.load()) resume_wanted_.store(true);  // a write only when not set: no line bouncing while behind
    return waiting_.load() >= kHighWater;
  }
  // The hub took `n` events. True when the workers must resume their paused clients now.
  bool taken(size_t n) {
    const size_t left = waiting_.fetch_sub(n) - n;
    return left <= kLowWater && resume_wanted_.exchange(false);
  }

 private:
  // Apart: every worker reads them, the hub writes them; neither shares a line with other state.
  alignas(64) std::atomic<size_t> waiting_{0};
  alignas(64) std::atomic<bool> resume_wanted_{false};
};

}  // namespace mg
