#include "net/listener_guard.h"

#include <algorithm>

namespace mg {

ListenerGuard::Verdict ListenerGuard::admit(const std::string& ip, uint64_t now_ms) {
  if (!max_per_ip_ && !rate_) return Verdict::Ok;
  std::lock_guard<std::mutex> lock(mutex_);
  if (rate_) {
    // Workers pass their own loop's cached time, which may lag another worker's: only a later time
    // refills (an earlier one would wrap the unsigned difference and fill the bucket).
    if (now_ms > last_ms_) {
      if (last_ms_) tokens_ = std::min<double>(rate_, tokens_ + static_cast<double>(now_ms - last_ms_) * rate_ / 1000.0);
      last_ms_ = now_ms;
    }
    if (tokens_ < 1) return Verdict::Rate;
  }
  if (max_per_ip_) {
    uint32_t& n = per_ip_[ip];
    if (n >= max_per_ip_) return Verdict::PerIp;
    n++;
  }
  if (rate_) tokens_ -= 1;
  return Verdict::Ok;
}

void ListenerGuard::release(const std::string& ip) {
  if (!max_per_ip_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = per_ip_.find(ip);
  if (it == per_ip_.end()) return;
  if (--it->second == 0) per_ip_.erase(it);
}

}  // namespace mg
