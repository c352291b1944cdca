#include "http/http_refusals.h"

#include "core/log.h"

namespace mg {

const char* HttpRefusals::reason_name(Reason r) {
  switch (r) {
    case Timeout: return "timeout";
    case TooLarge: return "body_too_large";
    case Host: return "host";
    case Origin: return "origin";
    case ContentType: return "content_type";
    case kCount: break;
  }
  return "unknown";
}

void HttpRefusals::count(Reason r, uint64_t now_ms, const std::string& detail) {
  totals_[r]++;
  if (last_log_ms_[r] != 0 && now_ms - last_log_ms_[r] < kLogEveryMs) {
    unlogged_[r]++;
    return;
  }
  if (unlogged_[r] > 0)
    LOG_WARN("%s refused a request (%s); %llu more refused for the same reason in the last %llu s", what_.c_str(),
             detail.c_str(), static_cast<unsigned long long>(unlogged_[r]),
             static_cast<unsigned long long>((now_ms - last_log_ms_[r]) / 1000));
  else
    LOG_WARN("%s refused a request (%s)", what_.c_str(), detail.c_str());
  unlogged_[r] = 0;
  last_log_ms_[r] = now_ms ? now_ms : 1;
}

void HttpRefusals::family(PromWriter& w) {
  w.family("meshgate_http_refused_total", "counter",
           "HTTP requests refused by listener (api, route) and reason (timeout, body_too_large, host, origin, "
           "content_type).");
}

void HttpRefusals::render(PromWriter& w) const {
  for (int r = 0; r < kCount; r++)
    w.sample("meshgate_http_refused_total", {{"listener", label_}, {"reason", reason_name(static_cast<Reason>(r))}},
             totals_[r]);
}

}  // namespace mg
