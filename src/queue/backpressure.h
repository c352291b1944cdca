// A pause latch: a count of items on their way from producers (any thread) to one consumer thread,
// and the pause that keeps it bounded. Used for the client events the workers posted and the hub has
// not taken yet (queue/event_intake.h, every client), and for those of each pausing topic
// (queue/topic_gate.h, the topic's clients).
//
// A producer adds what it sends (added) and, after each message of a client, asks whether to stop
// reading that client (should_pause): yes at `high` or more. The consumer subtracts what it took
// (taken), which says when the paused producers must be told to read again: once the count is down
// to `low`, half of `high` (the one rule for every latch, as a topic's own pause resumes at half its
// bound: docs/decisions.md).
//
// The hand-over is lock-free and loses no wake-up: should_pause sets `resume_wanted` and then reads
// the count again; taken lowers the count and then reads the flag (all sequentially consistent). So
// either the producer sees that the consumer caught up and does not pause, or the consumer sees the
// flag and answers with a resume. The marks may change at any time (a reload): a paused producer is
// still resumed, at the low mark in force when the count gets there.
#pragma once

#include <atomic>
#include <cstdint>

namespace mg {

class PauseLatch {
 public:
  explicit PauseLatch(int64_t high) : high_(high) {}
  PauseLatch(const PauseLatch&) = delete;
  PauseLatch& operator=(const PauseLatch&) = delete;

  int64_t count() const { return count_.load(std::memory_order_relaxed); }
  int64_t high() const { return high_.load(std::memory_order_relaxed); }
  int64_t low() const { return high() / 2; }
  // Any thread, e.g. a reload moving a topic's bound.
  void set_high(int64_t high) { high_.store(high, std::memory_order_relaxed); }

  // Producer: `n` more on their way.
  void added(int64_t n) { count_.fetch_add(n, std::memory_order_relaxed); }
  // Producer: true at `high` or more. The caller stops reading its client and is owed a resume
  // (taken() returns true once the count is down to the low mark).
  bool should_pause() {
    const int64_t high = this->high();
    if (count_.load(std::memory_order_relaxed) < high) return false;
    if (!resume_wanted_.load()) resume_wanted_.store(true);  // a write only when not set: no line bouncing while behind
    return count_.load() >= high;
  }
  // Consumer: `n` were taken. True when the paused producers must be resumed now (once per pause).
  bool taken(int64_t n) {
    const int64_t left = count_.fetch_sub(n) - n;
    return left <= low() && resume_wanted_.load() && resume_wanted_.exchange(false);  // a write only when set
  }

 private:
  // Apart: the producers and the consumer write the count and the flag; the marks are read by all on
  // every message. None shares a cache line with the others or with the owner's state.
  alignas(64) std::atomic<int64_t> count_{0};
  alignas(64) std::atomic<bool> resume_wanted_{false};
  alignas(64) std::atomic<int64_t> high_;
};

}  // namespace mg
