// Admission control for one client listener, shared by every worker: at most max_per_ip open
// connections from one IP address, and at most `rate` new connections per second (a token bucket
// holding one second's worth, so a burst of `rate` is allowed). Survives reconnect storms: a refused
// connection is closed at accept, before any protocol work, and counted.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mg {

class ListenerGuard {
 public:
  enum class Verdict { Ok, PerIp, Rate };

  ListenerGuard(uint32_t max_per_ip, uint32_t rate) : max_per_ip_(max_per_ip), rate_(rate), tokens_(rate) {}

  // Thread-safe. When Ok, the connection from `ip` is counted until release(ip).
  Verdict admit(const std::string& ip, uint64_t now_ms);
  void release(const std::string& ip);
  bool tracks_ip() const { return max_per_ip_ != 0; }

 private:
  const uint32_t max_per_ip_, rate_;
  std::mutex mutex_;
  std::unordered_map<std::string, uint32_t> per_ip_;  // only IPs with open connections
  double tokens_;
  uint64_t last_ms_ = 0;
};

}  // namespace mg
