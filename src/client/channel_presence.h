// Which channels may have subscribers on this node, readable by the hub without asking the workers.
//
// A counting filter: kCounters relaxed atomic counters, indexed by a hash of the channel name. A
// worker adds a channel when it gets its first subscriber there and removes it when its last one
// leaves. A zero counter means no worker holds the channel, so a publish to it is answered at once
// (nothing delivered) without crossing to the workers and back; a non-zero counter may be another
// channel sharing it, and the publish goes to the workers as before. A subscription made before the
// publish was sent is seen: its answer (or the client's open event) reached the publisher through
// the hub's mailbox, whose lock orders the counter's update before the publish.
//
// The same two calls tell the node's exact set of channels, when it has a mesh: on_change (set before
// any worker starts) hears every worker's first and last subscriber of a channel, on the worker's
// thread; the hub posts it to its own thread, where the mesh counts workers per channel
// (Mesh::local_interest). Posted through the same mailbox as the worker's answers, so a subscribe's
// answer reaches the hub after the change it made.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

namespace mg {

class ChannelPresence {
 public:
  static constexpr size_t kCounters = 1024;
  using OnChange = std::function<void(const std::string& channel, bool held)>;
  void set_on_change(OnChange f) { on_change_ = std::move(f); }
  void add(const std::string& channel) {
    at(channel).fetch_add(1, std::memory_order_relaxed);
    if (on_change_) on_change_(channel, true);
  }
  void remove(const std::string& channel) {
    at(channel).fetch_sub(1, std::memory_order_relaxed);
    if (on_change_) on_change_(channel, false);
  }
  bool maybe_held(const std::string& channel) const { return at(channel).load(std::memory_order_relaxed) != 0; }

 private:
  std::atomic<uint32_t>& at(const std::string& channel) const {
    return counters_[std::hash<std::string>{}(channel) % kCounters];
  }
  mutable std::atomic<uint32_t> counters_[kCounters] = {};
  OnChange on_change_;  // set before the workers start, read-only afterwards
};

}  // namespace mg
