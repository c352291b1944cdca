// A warning that can come in floods (one per stranger's connection, one per refused topic): the
// first is written at once, then at most one line per interval; the lines left out are counted and
// reported with the next line written, or by a summary once the interval has passed (flush).
// The counters behind each warning (Prometheus) count every occurrence; this bounds the log only.
// One thread: the caller's (the hub's, for the mesh and the queue).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

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
  // When the last line was written (or a summary reported), for "in the last N s"; 0 before any.
  uint64_t last_ms() const { return written_ ? last_ms_ : 0; }
  // Nothing left out and no line within the interval: forgetting this limit changes nothing.
  bool quiet(uint64_t now_ms) const { return left_out_ == 0 && (!written_ || now_ms - last_ms_ >= interval_ms_); }

 private:
  uint64_t interval_ms_;
  uint64_t last_ms_ = 0;
  uint64_t left_out_ = 0;
  bool written_ = false;
};

// The same per kind of line (a key: what went wrong, without who or where), so that a flood of one
// kind does not hide a different problem (a misconfigured node's refusal among junk connections).
// At most max_keys kinds are tracked at once (kinds quiet for an interval are forgotten by flush);
// lines of further kinds share one more limit, so the log stays bounded whatever the keys.
class LogLimitByKey {
 public:
  explicit LogLimitByKey(size_t max_keys = 32, uint64_t interval_ms = 60000)
      : max_keys_(max_keys), interval_ms_(interval_ms), others_(interval_ms) {}

  // As LogLimit::admit, for a line of kind `key`.
  bool admit(const std::string& key, uint64_t now_ms, uint64_t& left_out) { return limit(key).admit(now_ms, left_out); }
  // Calls report(kind, n) for each kind whose left-out lines are due (LogLimit::flush); the shared
  // limit of untracked kinds reports with kind "". Forgets quiet kinds.
  template <class Report>
  void flush(uint64_t now_ms, Report report) {
    for (auto it = kinds_.begin(); it != kinds_.end();) {
      if (uint64_t n = it->second.flush(now_ms)) report(it->first, n);
      if (it->second.quiet(now_ms)) it = kinds_.erase(it);
      else ++it;
    }
    if (uint64_t n = others_.flush(now_ms)) report(std::string(), n);
  }

 private:
  LogLimit& limit(const std::string& key) {
    auto it = kinds_.find(key);
    if (it != kinds_.end()) return it->second;
    if (kinds_.size() >= max_keys_) return others_;
    return kinds_.emplace(key, LogLimit(interval_ms_)).first->second;
  }

  size_t max_keys_;
  uint64_t interval_ms_;
  LogLimit others_;
  std::unordered_map<std::string, LogLimit> kinds_;
};

}  // namespace mg
