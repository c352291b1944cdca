// What every worker shares about one client listener, made by the hub at start: its TLS context's
// slot (nullptr without TLS; the hub swaps a reloaded certificate's context in), its admission
// guard, and the gate of its queue topic (the queue's: QueueHub::gate).
#pragma once

#include <memory>
#include <vector>

#include "net/listener_guard.h"
#include "net/tls_slot.h"
#include "queue/topic_gate.h"

namespace mg {

struct ListenerShared {
  std::unique_ptr<TlsSlot> tls;
  std::unique_ptr<ListenerGuard> guard;
  std::shared_ptr<TopicGate> gate;  // nullptr when its topic drops at the bound (overflow = drop)
};

using ListenersShared = std::vector<ListenerShared>;

}  // namespace mg
