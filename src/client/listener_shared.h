// What every worker shares about one client listener, made by the hub at start: its TLS context
// (nullptr without TLS), its admission guard, and the gate of its queue topic.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "net/listener_guard.h"

namespace mg {

// Backpressure for a queue topic with overflow = pause, shared by the hub and every worker (one
// per topic; listeners of one topic share it). A worker stops reading a client of the topic after
// a read when the topic is full (the hub's verdict) or when the events it sent the hub and the hub
// has not taken yet reach the topic's bound (the hub's verdict lags its mailbox by up to a loop
// iteration's reads, several MB). Either way the overshoot is one read per connection.
struct TopicGate {
  std::atomic<bool> full{false};         // set by the hub: pending reached the bound, until half
  std::atomic<int64_t> in_flight{0};     // events posted to the hub and not yet pushed
  int64_t bound = 0;                     // [queue] max_events at start
  bool closed() const {
    return full.load(std::memory_order_relaxed) || in_flight.load(std::memory_order_relaxed) >= bound;
  }
};

struct ListenerShared {
  SSL_CTX* tls = nullptr;
  std::unique_ptr<ListenerGuard> guard;
  std::shared_ptr<TopicGate> gate;  // nullptr when its topic drops at the bound (overflow = drop)
};

using ListenersShared = std::vector<ListenerShared>;

}  // namespace mg
