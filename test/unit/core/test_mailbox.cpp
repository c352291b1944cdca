// Mailbox: tasks posted from other threads all run on the owner's loop, in order per poster, and the
// backlog count never goes below zero (it is unsigned: it once wrapped and made workers drop events).
#include <gtest/gtest.h>
#include <uv.h>

#include <atomic>
#include <thread>
#include <vector>

#include "core/mailbox.h"

namespace {

TEST(Mailbox, EveryTaskRunsOnTheOwnerInPostingOrder) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  mg::Mailbox box;
  box.open(&loop);
  constexpr int kPerThread = 50000;
  std::vector<int> last(2, -1);
  std::atomic<int> ran{0};
  bool in_order = true;
  std::thread::id owner = std::this_thread::get_id();
  bool on_owner = true;
  std::vector<std::thread> posters;
  for (int t = 0; t < 2; t++) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; i++)
        box.post([&, t, i] {
          in_order = in_order && last[t] == i - 1;
          on_owner = on_owner && std::this_thread::get_id() == owner;
          last[t] = i;
          if (++ran == 2 * kPerThread) box.close();
        });
    });
  }
  std::atomic<bool> sampling{true};
  size_t worst = 0;
  std::thread sampler([&] {
    while (sampling) worst = std::max(worst, box.backlog());
  });
  uv_run(&loop, UV_RUN_DEFAULT);  // ends when the last task closes the mailbox
  for (auto& p : posters) p.join();
  sampling = false;
  sampler.join();
  EXPECT_EQ(ran.load(), 2 * kPerThread);
  EXPECT_TRUE(in_order);
  EXPECT_TRUE(on_owner);
  EXPECT_LE(worst, static_cast<size_t>(2 * kPerThread)) << "the backlog counter wrapped below zero";
  EXPECT_EQ(box.backlog(), 0u);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
