// The worker pool (client/worker_pool.h): post_all reaches every worker on its own thread, on_owner
// runs on the worker a client id names and answers on the home thread, and a typed fan-out hands
// every worker's answer to one callback on the home thread. Real workers on real threads; the home
// thread is this test's, running a libuv loop with the home mailbox.
#include <gtest/gtest.h>
#include <uv.h>

#include <atomic>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/worker_pool.h"
#include "core/snowflake.h"
#include "queue/queue_hub.h"

namespace mg {
namespace {

// The least a worker needs of its host: no client ever connects in these tests.
class IdleHost final : public WorkerHost {
  static constexpr unsigned kNodeOfTheHost = 7;

 public:
  explicit IdleHost(Mailbox& home) : home_(home) {}
  uint64_t client_count() const override { return 0; }
  void client_opened() override {}
  void client_closed() override {}
  size_t backlog() const override { return home_.backlog(); }
  void post(Mailbox::Task task) override { home_.post(std::move(task)); }
  EventIntake& event_intake() override { return intake_; }
  ChannelPresence& channel_presence() override { return presence_; }
  void worker_stopped(unsigned) override { stopped++; }
  int stopped = 0;

 private:
  Mailbox& home_;
  QueueHub queue_{kNodeOfTheHost, QueueLimits{}};
  EventIntake intake_{queue_, nullptr};  // nothing is posted: no client connects
  ChannelPresence presence_;
};

std::string thread_name() {
  std::ostringstream s;
  s << std::this_thread::get_id();
  return s.str();
}

class WorkerPoolTest : public ::testing::Test {
 protected:
  static constexpr unsigned kWorkers = 3;
  static constexpr int kNode = 7;

  void SetUp() override {
    uv_loop_init(&loop_);
    home_.open(&loop_);
    cfg_.node_id = kNode;
    pool_.make(host_, cfg_, shared_, kWorkers);
    pool_.start({});
  }
  void TearDown() override {
    pool_.post_all([](Worker& w) { w.drain(); });
    run_until([this] { return host_.stopped == static_cast<int>(kWorkers); });
    pool_.join();
    home_.close();
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
  // Runs the home loop until `done` (or about five seconds).
  template <class F>
  void run_until(F done) {
    for (int i = 0; i < 5000 && !done(); i++) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_TRUE(done());
  }

  uv_loop_t loop_{};
  Mailbox home_;
  Config cfg_;
  ListenersShared shared_;
  IdleHost host_{home_};
  WorkerPool pool_{home_};
};

TEST_F(WorkerPoolTest, PostAllRunsOnEveryWorkerOnItsOwnThread) {
  std::mutex m;
  std::set<std::string> threads;
  std::atomic<unsigned> ran{0};
  pool_.post_all([&](Worker&) {
    std::lock_guard<std::mutex> g(m);
    threads.insert(thread_name());
    ran++;
  });
  run_until([&] { return ran.load() == kWorkers; });
  std::lock_guard<std::mutex> g(m);
  EXPECT_EQ(threads.size(), kWorkers);
  EXPECT_EQ(threads.count(thread_name()), 0u);
}

TEST_F(WorkerPoolTest, TypedFanoutAnswersOnceOnTheHomeThreadWithEveryWorkersAnswer) {
  const std::string home = thread_name();
  int calls = 0;
  std::vector<std::string> answers;
  std::string done_on;
  pool_.fanout<std::string>([](Worker&) { return thread_name(); },
                            [&](std::vector<std::string> all) {
                              calls++;
                              answers = std::move(all);
                              done_on = thread_name();
                            });
  run_until([&] { return calls > 0; });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(done_on, home);
  std::set<std::string> distinct(answers.begin(), answers.end());
  EXPECT_EQ(answers.size(), kWorkers);
  EXPECT_EQ(distinct.size(), kWorkers);
  EXPECT_EQ(distinct.count(home), 0u);
}

TEST_F(WorkerPoolTest, FanoutSumAddsTheWorkersCounts) {
  FanoutCount total{99, 99};
  bool done = false;
  pool_.fanout_sum([](Worker&) { return FanoutCount{2, 1}; }, [&](const FanoutCount& n) {
    total = n;
    done = true;
  });
  run_until([&] { return done; });
  EXPECT_EQ(total.ok, 2u * kWorkers);
  EXPECT_EQ(total.failed, 1u * kWorkers);
}

TEST_F(WorkerPoolTest, OnOwnerRunsOnTheWorkerTheIdNamesAndRepliesAtHome) {
  // Each worker's thread, as a fan-out sees it.
  std::vector<std::pair<Worker*, std::string>> threads;
  bool have = false;
  pool_.fanout<std::pair<Worker*, std::string>>([](Worker& w) { return std::make_pair(&w, thread_name()); },
                                               [&](auto all) {
                                                 threads = std::move(all);
                                                 have = true;
                                               });
  run_until([&] { return have; });
  const std::string home = thread_name();
  for (uint64_t seq = 0; seq < 2 * kWorkers; seq++) {
    const uint64_t client = (uint64_t{12345} << (kSeqBits + kNodeIdBits)) | (uint64_t{kNode} << kSeqBits) | seq;
    Worker* owner = pool_.owner(client);
    ASSERT_NE(owner, nullptr);
    std::string expected;
    for (auto& [w, name] : threads)
      if (w == owner) expected = name;
    std::string ran_on, replied_on;
    ASSERT_TRUE(pool_.on_owner(client, [](Worker&) { return ApiResult::ok(thread_name()); },
                               [&](const ApiResult& r) {
                                 ran_on = r.result;
                                 replied_on = thread_name();
                               }));
    run_until([&] { return !replied_on.empty(); });
    EXPECT_EQ(ran_on, expected) << "client seq " << seq;
    EXPECT_EQ(replied_on, home);
  }
  // Another node's client, or no client at all: nothing runs, no reply.
  const uint64_t elsewhere = (uint64_t{12345} << (kSeqBits + kNodeIdBits)) | (uint64_t{kNode + 1} << kSeqBits);
  EXPECT_EQ(pool_.owner(elsewhere), nullptr);
  EXPECT_FALSE(pool_.on_owner(elsewhere, [](Worker&) { return ApiResult::ok(""); },
                              [](const ApiResult&) { ADD_FAILURE() << "replied for another node's client"; }));
}

}  // namespace
}  // namespace mg
