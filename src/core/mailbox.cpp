#include "core/mailbox.h"

namespace mg {

void Mailbox::open(uv_loop_t* loop) {
  uv_async_init(loop, &async_, &Mailbox::on_async);
  async_.data = this;
  open_ = true;
}

void Mailbox::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = false;
    backlog_.fetch_sub(tasks_.size(), std::memory_order_relaxed);
    tasks_.clear();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
}

void Mailbox::post(Task task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!open_) return;
    // Counted before the owner can see the task: counting after the unlock let the owner run and
    // count it down first, and the unsigned counter wrapped (seen as a huge backlog).
    backlog_.fetch_add(1, std::memory_order_relaxed);
    tasks_.push_back(std::move(task));
  }
  uv_async_send(&async_);
}

void Mailbox::on_async(uv_async_t* handle) { static_cast<Mailbox*>(handle->data)->drain(); }

void Mailbox::drain() {
  std::vector<Task> batch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    batch.swap(tasks_);
  }
  for (auto& t : batch) {
    t();
    backlog_.fetch_sub(1, std::memory_order_relaxed);
  }
}

}  // namespace mg
