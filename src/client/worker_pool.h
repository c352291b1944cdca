// The node's workers and every call that crosses into them. Threads talk by mailboxes only
// (DESIGN.md): the pool posts a task to a worker's mailbox, and the answer comes back through the
// home mailbox (the hub thread's), where the caller's callback runs.
//
// The hub builds, starts and joins the pool and then steps aside: the control API and the mesh reach
// the workers through it (ApiHost::workers()), never through the hub. Every method is for the home
// thread; `op`s and `work`s run on the workers' threads, `done`s and `reply`s on the home thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "client/worker.h"
#include "core/call_result.h"
#include "core/mailbox.h"

namespace mg {

class WorkerPool {
 public:
  explicit WorkerPool(Mailbox& home) : home_(home) {}

  // Makes `count` workers of node cfg.node_id (threads not started yet).
  void make(WorkerHost& host, const Config& cfg, const ListenersShared& shared, unsigned count);
  // Starts every worker's thread; `listen_fds[i]` are worker i's listening sockets.
  void start(std::vector<std::vector<int>> listen_fds);
  void join();
  size_t size() const { return workers_.size(); }

  // Runs `task` on every worker, on its thread. No answer.
  void post_all(std::function<void(Worker&)> task);
  // The worker that owns `client` (its id names the worker: snowflake_worker), or nullptr when the
  // id is not of this node or no worker runs.
  Worker* owner(uint64_t client) const;
  // Runs `work` on the worker that owns `client` and calls `reply` with its answer on the home
  // thread. False, with nothing run and `reply` not called, when no worker of this node owns it.
  bool on_owner(uint64_t client, std::function<ApiResult(Worker&)> work, Reply reply);
  // Runs `op` on every worker and calls `done` once, on the home thread, with every worker's answer
  // (in the order they came): the caller merges them there, with no lock.
  template <class T>
  void fanout(std::function<T(Worker&)> op, std::function<void(std::vector<T>)> done);
  // A counting fan-out (publish, broadcast, channel.count): `done` gets the sum.
  void fanout_sum(std::function<FanoutCount(Worker&)> op, FanoutDone done);

 private:
  Mailbox& home_;
  unsigned node_id_ = 0;
  std::vector<std::unique_ptr<Worker>> workers_;
};

template <class T>
void WorkerPool::fanout(std::function<T(Worker&)> op, std::function<void(std::vector<T>)> done) {
  std::function<void(T)> part = fanout_join<T>(workers_.size(), std::move(done));
  auto shared_op = std::make_shared<std::function<T(Worker&)>>(std::move(op));
  Mailbox* home = &home_;
  for (auto& wp : workers_) {
    Worker* w = wp.get();
    w->post([w, home, part, shared_op] {
      T answer = (*shared_op)(*w);
      home->post([part, answer = std::move(answer)]() mutable { part(std::move(answer)); });
    });
  }
}

}  // namespace mg
