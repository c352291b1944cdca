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
  const uint64_t last_ms = logs_[r].last_ms();
  uint64_t left_out = 0;
  if (!logs_[r].admit(now_ms, left_out)) return;
  if (left_out > 0)
    LOG_WARN("%s refused a request (%s); %llu more refused for the same reason in the last %llu s", what_.c_str(),
             detail.c_str(), static_cast<unsigned long long>(left_out),
             static_cast<unsigned long long>((now_ms - last_ms) / 1000));
  else
    LOG_WARN("%s refused a request (%s)", what_.c_str(), detail.c_str());
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
