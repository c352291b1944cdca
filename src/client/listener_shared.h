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
// per topic; listeners of one topic share it). A worker stops reading a client of the topic right
// after a message (ClientConn::hold_input) when the topic is full (the hub's verdict) or when the
// events the workers sent the hub and the hub has not taken yet reach the topic's bound (the hub's
// verdict lags its mailbox by up to a loop iteration's reads, several MB). The workers post their
// events in batches (Worker::kOutboxMax), so the overshoot is up to a batch per worker.
//
// Resumes: the hub tells every worker to resume the topic's clients when the topic is down to half
// its bound (pressure handler), and when events in flight that paused a client are down to half the
// bound (taken). The second hand-over is lock-free and loses no wake-up, as EventBacklog's:
// should_pause sets `resume_wanted` and then reads the count again; taken lowers the count and then
// takes the flag.
struct TopicGate {
  std::atomic<bool> full{false};         // set by the hub: pending reached the bound, until half
  std::atomic<int64_t> in_flight{0};     // events posted to the hub and not yet pushed
  std::atomic<bool> resume_wanted{false};  // a client was paused on in_flight: a resume is owed
  int64_t bound = 0;                     // [queue] max_events at start
  // Worker: true when a client of the topic must stop being read. When in_flight is what closes the
  // gate, the caller is owed a resume (taken() returns true once in_flight is down to half the bound).
  bool should_pause() {
    if (in_flight.load(std::memory_order_relaxed) >= bound) {
      if (!resume_wanted.load()) resume_wanted.store(true);  // a write only when not set
      if (in_flight.load() >= bound) return true;
    }
    return full.load(std::memory_order_relaxed);
  }
  // Hub thread: `n` events of the topic were pushed. True when the paused clients must be resumed.
  bool taken(int64_t n) {
    const int64_t left = in_flight.fetch_sub(n) - n;
    return left <= bound / 2 && resume_wanted.load() && resume_wanted.exchange(false);  // a write only when set
  }
};

struct ListenerShared {
  SSL_CTX* tls = nullptr;
  std::unique_ptr<ListenerGuard> guard;
  std::shared_ptr<TopicGate> gate;  // nullptr when its topic drops at the bound (overflow = drop)
};

using ListenersShared = std::vector<ListenerShared>;

}  // namespace mg
