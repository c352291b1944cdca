// Cross-thread messages: the only way threads talk (DESIGN.md). Any thread may post a task; the
// owning loop runs every posted task, in posting order, from a uv_async callback. uv_async_send
// coalesces wake-ups, so the callback drains the whole queue each time.
//
// Bound: tasks are small closures; the senders bound what they post (queue events are counted
// against the hub's backlog limit, API calls are bounded by the API connections that issue them).
#pragma once

#include <uv.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <vector>

namespace mg {

class Mailbox {
 public:
  using Task = std::function<void()>;

  // Registers the async handle on `loop` (call on the owning thread before any post).
  void open(uv_loop_t* loop);
  // Closes the handle (owning thread). Tasks posted afterwards are dropped.
  void close();
  // Thread-safe.
  void post(Task task);
  // Tasks posted and not yet run (approximate; for back-pressure decisions and metrics).
  size_t backlog() const { return backlog_.load(std::memory_order_relaxed); }

 private:
  static void on_async(uv_async_t* handle);
  void drain();

  uv_async_t async_{};
  std::mutex mutex_;
  std::vector<Task> tasks_;
  std::atomic<size_t> backlog_{0};
  bool open_ = false;
};

}  // namespace mg
