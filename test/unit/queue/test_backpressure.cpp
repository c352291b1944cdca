// Unit tests for the pause latch (queue/backpressure.h), used by the hub's backlog of client events
// and by every pausing topic's gate (queue/topic_gate.h): when a producer must stop reading a client,
// when the consumer owes the producers a resume, a change of the marks, and the hand-over between
// two real threads.
#include "queue/backpressure.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "queue/topic_gate.h"

namespace {

using mg::PauseLatch;
using mg::TopicGate;

TEST(PauseLatch, NoPauseBelowTheHighMark) {
  PauseLatch l(1000);
  l.added(999);
  EXPECT_FALSE(l.should_pause());
  EXPECT_FALSE(l.taken(999));  // nobody paused: no resume
  EXPECT_EQ(l.count(), 0);
}

TEST(PauseLatch, PauseAtTheHighMarkAndOneResumeAtHalf) {
  PauseLatch l(1000);
  EXPECT_EQ(l.low(), 500);
  l.added(1000);
  EXPECT_TRUE(l.should_pause());
  EXPECT_TRUE(l.should_pause());  // a second client pausing asks for the same resume
  EXPECT_FALSE(l.taken(499));     // 501 left: above the low mark
  EXPECT_TRUE(l.taken(1));        // 500: resume, once
  EXPECT_FALSE(l.taken(100));
  EXPECT_FALSE(l.should_pause());
}

TEST(PauseLatch, AResumeIsOwedOnlyToAPause) {
  PauseLatch l(1000);
  l.added(2000);
  EXPECT_FALSE(l.taken(2000));  // behind, but nobody asked to pause
  l.added(1000);
  EXPECT_TRUE(l.should_pause());
  EXPECT_TRUE(l.taken(1000));
}

TEST(PauseLatch, TheMarksMoveAtRunTime) {
  // A reload lowers a topic's bound: the next message pauses at the new mark, and the producer is
  // resumed at half of it.
  PauseLatch l(1000);
  l.added(600);
  EXPECT_FALSE(l.should_pause());
  l.set_high(500);
  EXPECT_EQ(l.low(), 250);
  EXPECT_TRUE(l.should_pause());
  EXPECT_FALSE(l.taken(300));  // 300 left: above the new low mark
  EXPECT_TRUE(l.taken(50));    // 250
  // Raised while a producer is paused: it is resumed at the new, higher low mark.
  l.added(250);  // 500
  EXPECT_TRUE(l.should_pause());
  l.set_high(2000);
  EXPECT_TRUE(l.taken(1));  // 499 <= 1000
}

TEST(TopicGate, AFullTopicPausesWithoutAResumeFromInFlight) {
  TopicGate g(1000);
  g.full = true;
  EXPECT_TRUE(g.should_pause());  // the queue resumes when the topic has room
  g.in_flight.added(10);
  EXPECT_FALSE(g.in_flight.taken(10));
  g.full = false;
  EXPECT_FALSE(g.should_pause());
  g.in_flight.added(1000);
  EXPECT_TRUE(g.should_pause());  // in flight at the bound closes it too
  EXPECT_TRUE(g.in_flight.taken(500));
}

TEST(PauseLatch, AProducerAndTheConsumerNeverLoseAResume) {
  // A producer adds batches and pauses whenever told; a paused producer waits for a resume from the
  // consumer, which takes batches as they come. A lost resume would leave the producer waiting
  // forever with nothing left for the consumer to take; the test would then hang, not pass.
  constexpr int64_t kHigh = 16384, kBatch = 256, kBatches = 20000;
  PauseLatch l(kHigh);
  std::atomic<int64_t> posted_batches{0}, taken_batches{0};
  std::atomic<int> resumes{0};
  std::atomic<int> pauses{0};
  std::thread producer([&] {
    for (int64_t i = 0; i < kBatches; i++) {
      l.added(kBatch);
      posted_batches.fetch_add(1);
      const int before = resumes.load();
      if (l.should_pause()) {  // only a resume from the consumer ends the pause, as for a real worker
        pauses.fetch_add(1);
        while (resumes.load() == before) std::this_thread::yield();
      }
    }
  });
  std::thread consumer([&] {
    // Behind from the start, so the producer pauses at least once; free-running after that.
    while (posted_batches.load() < kHigh / kBatch) std::this_thread::yield();
    while (taken_batches.load() < kBatches) {
      if (taken_batches.load() < posted_batches.load()) {
        if (l.taken(kBatch)) resumes.fetch_add(1);
        taken_batches.fetch_add(1);
      } else {
        std::this_thread::yield();
      }
    }
  });
  producer.join();
  consumer.join();
  EXPECT_EQ(l.count(), 0);
  EXPECT_GT(pauses.load(), 0);
}

}  // namespace
