#include "client/worker_pool.h"

#include "core/snowflake.h"

namespace mg {

void WorkerPool::make(WorkerHost& host, const Config& cfg, const ListenersShared& shared, unsigned count) {
  node_id_ = static_cast<unsigned>(cfg.node_id);
  for (unsigned i = 0; i < count; i++) workers_.push_back(std::make_unique<Worker>(host, cfg, shared, i, count));
}

void WorkerPool::start(std::vector<std::vector<int>> listen_fds) {
  for (size_t i = 0; i < workers_.size(); i++)
    workers_[i]->start(i < listen_fds.size() ? std::move(listen_fds[i]) : std::vector<int>{});
}

void WorkerPool::join() {
  for (auto& w : workers_) w->join();
}

void WorkerPool::post_all(std::function<void(Worker&)> task) {
  auto shared_task = std::make_shared<std::function<void(Worker&)>>(std::move(task));
  for (auto& wp : workers_) {
    Worker* w = wp.get();
    w->post([w, shared_task] { (*shared_task)(*w); });
  }
}

Worker* WorkerPool::owner(uint64_t client) const {
  if (snowflake_node(client) != node_id_ || workers_.empty()) return nullptr;
  return workers_[snowflake_worker(client, static_cast<unsigned>(workers_.size()))].get();
}

bool WorkerPool::on_owner(uint64_t client, std::function<ApiResult(Worker&)> work, Reply reply) {
  Worker* w = owner(client);
  if (!w) return false;
  Mailbox* home = &home_;
  w->post([w, home, work = std::move(work), reply = std::move(reply)] {
    ApiResult r = work(*w);
    home->post([reply, r = std::move(r)] { reply(r); });
  });
  return true;
}

void WorkerPool::fanout_sum(std::function<FanoutCount(Worker&)> op, FanoutDone done) {
  fanout<FanoutCount>(std::move(op),
                      [done = std::move(done)](std::vector<FanoutCount> answers) { done(fanout_total(answers)); });
}

}  // namespace mg
