// Unit tests for mg::SnowflakeGenerator (core/snowflake.h): the bit layout of PROTOCOL.md §2, the
// worker-k-of-n sequence rule that lets an id name its worker, and "never the same id twice" when the
// clock stands still, runs out of sequences or steps backwards.
#include "core/snowflake.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace {

constexpr uint64_t kT0 = 1700000000000ull;  // 2023-11-14, an ordinary wall-clock time in ms

bool all_unique(std::vector<uint64_t> ids) {
  std::sort(ids.begin(), ids.end());
  return std::adjacent_find(ids.begin(), ids.end()) == ids.end();
}

TEST(Snowflake, PutsTimeNodeAndSequenceInTheirBits) {
  mg::SnowflakeGenerator gen(5, 0, 1);
  const uint64_t id = gen.next(mg::kSnowflakeEpochMs + 1000);
  EXPECT_EQ(id, (1000ull << 22) | (5ull << 12) | 0);
  EXPECT_EQ(mg::snowflake_unix_ms(id), mg::kSnowflakeEpochMs + 1000);
  EXPECT_EQ(mg::snowflake_node(id), 5u);
  EXPECT_EQ(mg::snowflake_seq(id), 0u);
}

TEST(Snowflake, FieldAccessorsReadTheProtocolExampleId) {
  // PROTOCOL.md §4's example client id: 2021-11-25T10:29:29.924Z, node bits 0, sequence 0.
  const uint64_t id = 1463786910324359168ull;
  EXPECT_EQ(mg::snowflake_unix_ms(id), 1637828969924ull);
  EXPECT_EQ(mg::snowflake_node(id), 0u);
  EXPECT_EQ(mg::snowflake_seq(id), 0u);
}

TEST(Snowflake, HighestNodeIdAndCurrentTimeRoundTrip) {
  mg::SnowflakeGenerator gen(1023, 0, 1);
  const uint64_t id = gen.next(kT0);
  EXPECT_EQ(mg::snowflake_node(id), 1023u);
  EXPECT_EQ(mg::snowflake_unix_ms(id), kT0);
  EXPECT_LT(id, 1ull << 63);  // fits a signed 64-bit integer until 2080
}

TEST(Snowflake, SequenceCountsUpWithinAMillisecondAndRestartsInTheNext) {
  mg::SnowflakeGenerator gen(1, 0, 1);
  for (unsigned s = 0; s < 10; ++s) {
    const uint64_t id = gen.next(kT0);
    EXPECT_EQ(mg::snowflake_seq(id), s);
    EXPECT_EQ(mg::snowflake_unix_ms(id), kT0);
  }
  const uint64_t id = gen.next(kT0 + 5);
  EXPECT_EQ(mg::snowflake_seq(id), 0u);
  EXPECT_EQ(mg::snowflake_unix_ms(id), kT0 + 5);
}

TEST(Snowflake, WorkerKOfNUsesKThenKPlusNThenKPlus2N) {
  mg::SnowflakeGenerator gen(1, 3, 8);
  EXPECT_EQ(mg::snowflake_seq(gen.next(kT0)), 3u);
  EXPECT_EQ(mg::snowflake_seq(gen.next(kT0)), 11u);
  EXPECT_EQ(mg::snowflake_seq(gen.next(kT0)), 19u);
  EXPECT_EQ(mg::snowflake_seq(gen.next(kT0 + 1)), 3u);
}

TEST(Snowflake, MovesToTheNextMillisecondWhenItsSequencesAreUsedUp) {
  // Worker 1 of 3 owns 1, 4, ..., 4093: 1365 sequences per millisecond.
  mg::SnowflakeGenerator gen(1, 1, 3);
  uint64_t last = 0;
  for (int i = 0; i < 1365; ++i) {
    last = gen.next(kT0);
    ASSERT_EQ(mg::snowflake_unix_ms(last), kT0);
  }
  EXPECT_EQ(mg::snowflake_seq(last), 4093u);
  const uint64_t next = gen.next(kT0);  // clock has not moved
  EXPECT_EQ(mg::snowflake_unix_ms(next), kT0 + 1);
  EXPECT_EQ(mg::snowflake_seq(next), 1u);
}

TEST(Snowflake, OneMillionIdsWithAFrozenClockAreUniqueAndIncreasing) {
  mg::SnowflakeGenerator gen(7, 0, 1);
  std::vector<uint64_t> ids;
  ids.reserve(1000000);
  for (int i = 0; i < 1000000; ++i) ids.push_back(gen.next(kT0));
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_TRUE(all_unique(ids));
  // 4096 per millisecond: it runs ahead of the frozen clock only as far as it must.
  EXPECT_EQ(mg::snowflake_unix_ms(ids.back()), kT0 + (1000000 - 1) / 4096);
}

TEST(Snowflake, OneMillionIdsWithAClockThatStepsBackwardsAreUnique) {
  mg::SnowflakeGenerator gen(7, 0, 1);
  std::vector<uint64_t> ids;
  ids.reserve(1000000);
  uint64_t clock = kT0;
  for (int i = 0; i < 1000000; ++i) {
    if (i % 1000 == 0) clock += 3;
    if (i % 250000 == 0) clock -= 60000;  // NTP steps back a minute, four times
    ids.push_back(gen.next(clock));
  }
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));  // strictly, given uniqueness
  EXPECT_TRUE(all_unique(ids));
}

TEST(Snowflake, StaysOnTheLastMillisecondWhileTheClockIsBehindIt) {
  mg::SnowflakeGenerator gen(1, 0, 1);
  const uint64_t a = gen.next(kT0);
  const uint64_t b = gen.next(kT0 - 10);  // stepped back, sequences left in kT0: keep using them
  EXPECT_EQ(mg::snowflake_unix_ms(b), kT0);
  EXPECT_EQ(mg::snowflake_seq(b), 1u);
  EXPECT_GT(b, a);
  const uint64_t c = gen.next(kT0 + 1);  // clock caught up: a fresh millisecond
  EXPECT_EQ(mg::snowflake_unix_ms(c), kT0 + 1);
  EXPECT_EQ(mg::snowflake_seq(c), 0u);
}

TEST(Snowflake, EveryIdOfWorkerKMapsBackToK) {
  for (unsigned n : {1u, 2u, 3u, 4u, 7u, 16u, 100u, 4096u}) {
    for (unsigned k : {0u, n / 2, n - 1}) {
      mg::SnowflakeGenerator gen(9, k, n);
      for (int i = 0; i < 20000; ++i) {
        const uint64_t id = gen.next(kT0 + static_cast<uint64_t>(i / 5000));
        ASSERT_EQ(mg::snowflake_worker(id, n), k) << "n=" << n << " k=" << k << " i=" << i;
        ASSERT_EQ(mg::snowflake_node(id), 9u);
      }
    }
  }
}

TEST(Snowflake, WorkersOfOneNodeNeverCollide) {
  const unsigned n = 6;
  std::vector<mg::SnowflakeGenerator> gens;
  for (unsigned k = 0; k < n; ++k) gens.emplace_back(3, k, n);
  std::vector<uint64_t> ids;
  ids.reserve(600000);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t clock = kT0 + static_cast<uint64_t>(i / 2000);  // bursts that exhaust milliseconds
    for (auto& g : gens) ids.push_back(g.next(clock));
  }
  EXPECT_TRUE(all_unique(ids));
}

TEST(Snowflake, NodesNeverCollideAtTheSameInstant) {
  mg::SnowflakeGenerator a(1, 0, 1), b(2, 0, 1);
  std::vector<uint64_t> ids;
  for (int i = 0; i < 10000; ++i) {
    ids.push_back(a.next(kT0));
    ids.push_back(b.next(kT0));
  }
  EXPECT_TRUE(all_unique(ids));
}

TEST(Snowflake, ClockBeforeTheEpochStillGivesUniqueIds) {
  mg::SnowflakeGenerator gen(1, 0, 1);
  std::vector<uint64_t> ids;
  for (int i = 0; i < 10000; ++i) ids.push_back(gen.next(1000));
  EXPECT_TRUE(all_unique(ids));
  EXPECT_EQ(mg::snowflake_unix_ms(ids.front()), mg::kSnowflakeEpochMs);
}

TEST(Snowflake, RejectsOutOfRangeNodeOrWorker) {
  EXPECT_THROW(mg::SnowflakeGenerator(0, 0, 1), std::invalid_argument);
  EXPECT_THROW(mg::SnowflakeGenerator(1024, 0, 1), std::invalid_argument);
  EXPECT_THROW(mg::SnowflakeGenerator(1, 0, 0), std::invalid_argument);
  EXPECT_THROW(mg::SnowflakeGenerator(1, 4, 4), std::invalid_argument);
  EXPECT_THROW(mg::SnowflakeGenerator(1, 0, 4097), std::invalid_argument);
  EXPECT_NO_THROW(mg::SnowflakeGenerator(1023, 4095, 4096));
}

}  // namespace
