// What every worker shares about one client listener, made by the hub at start: its TLS context
// (nullptr without TLS) and its admission guard.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <vector>

#include "net/listener_guard.h"

namespace mg {

struct ListenerShared {
  SSL_CTX* tls = nullptr;
  std::unique_ptr<ListenerGuard> guard;
};

using ListenersShared = std::vector<ListenerShared>;

}  // namespace mg
