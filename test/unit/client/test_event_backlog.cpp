// Unit tests for the hub backlog pause (client/event_backlog.h): when a worker must stop reading a
// client, and when the hub must tell the workers to read again. The hand-over between threads is
// exercised with two real threads at the end.
#include "client/event_backlog.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace {

using mg::EventBacklog;

TEST(EventBacklog, NoPauseBelowTheHighWaterMark) {
  EventBacklog b;
  b.posted(EventBacklog::kHighWater - 1);
  EXPECT_FALSE(b.should_pause());
  EXPECT_FALSE(b.taken(EventBacklog::kHighWater - 1));  // nobody paused: no resume
  EXPECT_EQ(b.waiting(), 0u);
}

TEST(EventBacklog, PauseAtTheMarkAndOneResumeAtTheLowMark) {
  EventBacklog b;
  b.posted(EventBacklog::kHighWater);
  EXPECT_TRUE(b.should_pause());
  EXPECT_TRUE(b.should_pause());  // a second client pausing asks for the same resume
  const size_t above_low = EventBacklog::kHighWater - EventBacklog::kLowWater - 1;
  EXPECT_FALSE(b.taken(above_low));  // still above the low mark
  EXPECT_TRUE(b.taken(1));           // down to it: resume, once
  EXPECT_FALSE(b.taken(1));
  EXPECT_FALSE(b.should_pause());
}

TEST(EventBacklog, AResumeIsOwedOnlyToAPause) {
  EventBacklog b;
  b.posted(EventBacklog::kHighWater * 2);
  EXPECT_FALSE(b.taken(EventBacklog::kHighWater * 2));  // behind, but nobody asked to pause
  b.posted(EventBacklog::kHighWater);
  EXPECT_TRUE(b.should_pause());
  EXPECT_TRUE(b.taken(EventBacklog::kHighWater));
}

TEST(EventBacklog, AWorkerAndTheHubNeverLoseAResume) {
  // A worker posts batches and pauses whenever told; a paused worker waits for a resume from the
  // hub, which takes batches as they come. A lost resume would leave the worker waiting forever
  // with nothing left for the hub to take; the test would then hang, not pass.
  EventBacklog b;
  constexpr size_t kBatch = 256, kBatches = 20000;
  std::atomic<size_t> posted_batches{0}, taken_batches{0};
  std::atomic<int> resumes{0};
  std::atomic<int> pauses{0};
  std::thread worker([&] {
    for (size_t i = 0; i < kBatches; i++) {
      b.posted(kBatch);
      posted_batches.fetch_add(1);
      const int before = resumes.load();
      if (b.should_pause()) {  // only a resume from the hub ends the pause, as for a real worker
        pauses.fetch_add(1);
        while (resumes.load() == before) std::this_thread::yield();
      }
    }
  });
  std::thread hub([&] {
    // Behind from the start, so the worker pauses at least once; free-running after that.
    while (posted_batches.load() < EventBacklog::kHighWater / kBatch) std::this_thread::yield();
    while (taken_batches.load() < kBatches) {
      if (taken_batches.load() < posted_batches.load()) {
        if (b.taken(kBatch)) resumes.fetch_add(1);
        taken_batches.fetch_add(1);
      } else {
        std::this_thread::yield();
      }
    }
  });
  worker.join();
  hub.join();
  EXPECT_EQ(b.waiting(), 0u);
  EXPECT_GT(pauses.load(), 0);
}

}  // namespace
