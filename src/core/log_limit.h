// A warning that can come in floods (one per stranger's connection, one per refused topic): the
// first is written at once, then at most one line per interval; the lines left out are counted and
// reported with the next line written, or by a summary once the interval has passed (flush).
// The counters behind each warning (Prometheus) count every occurrence; this bounds the log only.
// One thread: the caller's (the hub's, for the mesh and the queue).
#pragma once

#include <cstdint>

namespace mg {

class LogLimit {
 public:
  explicit LogLimit(uint64_t interval_ms = 60000) : interval_ms_(interval_ms) {}

  // True when a line may be written now; `left_out` is then the lines not written since the last
  // one (to mention in it). False: this one is counted as left out.
  bool admit(uint64_t now_ms, uint64_t& left_out) {
    if (written_ && now_ms - last_ms_ < interval_ms_) {
      left_out_++;
      return false;
    }
    left_out = left_out_;
    left_out_ = 0;
    last_ms_ = now_ms;
    written_ = true;
    return true;
  }
  // Lines left out that a summary line should report now (the interval has passed since the last
  // line), or 0. Call it from a periodic tick so the last of a flood is not left unsaid.
  uint64_t flush(uint64_t now_ms) {
    if (left_out_ == 0 || now_ms - last_ms_ < interval_ms_) return 0;
    uint64_t n = left_out_;
    left_out_ = 0;
    last_ms_ = now_ms;
    return n;
  }

 private:
  uint64_t interval_ms_;
  uint64_t last_ms_ = 0;
  uint64_t left_out_ = 0;
  bool written_ = false;
};

}  // namespace mg
