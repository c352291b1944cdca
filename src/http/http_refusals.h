// Requests one HTTP listener refused, by reason: counted for /metrics and logged without letting a
// flood flood the log.
//
// Each reason logs its first refusal at once, then at most one line per kLogEveryMs that says how
// many more there were since the line before (the details of those are not logged). Hub thread only.
#pragma once

#include <cstdint>
#include <string>

#include "core/log_limit.h"
#include "core/metrics.h"

namespace mg {

class HttpRefusals {
 public:
  // The label value of each in meshgate_http_refused_total{reason=...}: see reason_name().
  enum Reason {
    Timeout,      // a request not complete within the listener's deadline (408)
    TooLarge,     // a body over the listener's max_body (413)
    Host,         // a Host that names none of this listener's addresses (421, control API)
    Origin,       // a cross-site Origin on a POST or /ws/v1 (403, control API)
    ContentType,  // a POST body that is not application/json (415, control API)
    kCount
  };
  static constexpr uint64_t kLogEveryMs = 10000;

  // `what` names the listener in log lines ("control API"), `label` in metrics ("api").
  HttpRefusals(std::string what, std::string label) : what_(std::move(what)), label_(std::move(label)) {
    for (LogLimit& l : logs_) l = LogLimit(kLogEveryMs);
  }

  // Counts one; logs "<what> refused a request (<detail>)" as the header says. `detail` is ours,
  // never client text (the log must stay one line per event).
  void count(Reason r, uint64_t now_ms, const std::string& detail);
  uint64_t total(Reason r) const { return totals_[r]; }
  // The samples of meshgate_http_refused_total for this listener (the family line is the caller's,
  // written once for all listeners: see family()).
  void render(PromWriter& w) const;
  static void family(PromWriter& w);
  static const char* reason_name(Reason r);

 private:
  std::string what_, label_;
  uint64_t totals_[kCount] = {};
  LogLimit logs_[kCount];  // one line per reason per kLogEveryMs (set in the constructor)
};

}  // namespace mg
