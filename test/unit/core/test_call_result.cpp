// Unit tests for the fan-out joins (core/call_result.h): every part's value handed over once, when
// the last part came; none at once for no parts (a mesh fan-out with no alive peer relies on it);
// the count join's sum.
#include "core/call_result.h"

#include <gtest/gtest.h>

#include <vector>

namespace {

using mg::FanoutCount;

TEST(FanoutJoin, NoPartsAnswersAtOnce) {
  bool done = false;
  auto part = mg::fanout_join<int>(0, [&](std::vector<int> all) {
    EXPECT_TRUE(all.empty());
    done = true;
  });
  EXPECT_TRUE(done);
}

TEST(FanoutJoin, AnswersOnceWhenTheLastPartCame) {
  int calls = 0;
  auto part = mg::fanout_join<int>(3, [&](std::vector<int> all) {
    EXPECT_EQ(all, (std::vector<int>{4, 5, 6}));  // in the order they came
    calls++;
  });
  part(4);
  part(5);
  EXPECT_EQ(calls, 0);
  part(6);
  EXPECT_EQ(calls, 1);
  auto sum = mg::fanout_sum(2, [&](const FanoutCount& n) {
    EXPECT_EQ(n.ok, 3u);
    EXPECT_EQ(n.failed, 4u);
    calls++;
  });
  sum(FanoutCount{1, 4});
  sum(FanoutCount{2, 0});
  EXPECT_EQ(calls, 2);
}

TEST(FanoutJoin, TheTotalAddsTheCountsAndIsZeroForNone) {
  FanoutCount none = mg::fanout_total({});
  EXPECT_EQ(none.ok, 0u);
  EXPECT_EQ(none.failed, 0u);
  FanoutCount two = mg::fanout_total({FanoutCount{1, 2}, FanoutCount{3, 4}});
  EXPECT_EQ(two.ok, 4u);
  EXPECT_EQ(two.failed, 6u);
}

}  // namespace
