// What the control API needs of the node it runs in; the hub implements it. Handlers and the API's
// connections see the hub through this and nothing else. Hub thread only, except where noted.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "client/worker_pool.h"
#include "core/config.h"
#include "core/node_info.h"

namespace mg {

class Backbone;
class QueueHub;

class ApiHost {
 public:
  // The configuration the node started with (a reload never assigns it: see Hub::reload).
  virtual const Config& config() const = 0;
  virtual bool draining() const = 0;
  virtual uint64_t client_count() const = 0;
  // This node's workers: the API reaches them through the pool only (client/worker_pool.h), and
  // their answers come back on this (the hub's) thread.
  virtual WorkerPool& workers() = 0;
  // False when no worker holds a subscriber of `channel` (client/channel_presence.h); true may be wrong.
  virtual bool channel_maybe_held(const std::string& channel) const = 0;
  virtual QueueHub& queue() = 0;
  // The cluster backbone (the mesh or NATS), or nullptr in single-node mode.
  virtual Backbone* backbone() const = 0;
  // This node as the route API and node.list show it.
  virtual NodeInfo self_info() const = 0;
  // GET /metrics: the whole Prometheus page.
  virtual std::string render_metrics() const = 0;

 protected:
  ~ApiHost() = default;
};

}  // namespace mg
