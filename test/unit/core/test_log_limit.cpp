// core/log_limit.h: the first line at once, then one per interval with the count left out; per kind,
// with the number of kinds bounded (issue 18: a stranger's flood wrote 83 MB of log in 62 s).
#include "core/log_limit.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace {

using mg::LogLimit;
using mg::LogLimitByKey;

TEST(LogLimit, FirstAtOnceThenOneAMinuteWithTheCountLeftOut) {
  LogLimit l;
  uint64_t left_out = 99;
  EXPECT_TRUE(l.admit(1000, left_out));
  EXPECT_EQ(left_out, 0u);
  for (int i = 0; i < 500; i++) EXPECT_FALSE(l.admit(1000 + i, left_out));
  EXPECT_EQ(l.flush(60999), 0u) << "not a minute yet";
  EXPECT_TRUE(l.admit(61000, left_out));
  EXPECT_EQ(left_out, 500u);
  EXPECT_FALSE(l.admit(61001, left_out));
  EXPECT_EQ(l.flush(121001), 1u) << "the last of a flood is reported by the tick";
  EXPECT_EQ(l.flush(999999), 0u);
  EXPECT_TRUE(l.quiet(999999));
}

TEST(LogLimitByKey, EachKindHasItsOwnLimitAndTheKindsAreBounded) {
  LogLimitByKey l(2);
  uint64_t left_out = 0;
  EXPECT_TRUE(l.admit("junk", 0, left_out));
  EXPECT_FALSE(l.admit("junk", 1, left_out));
  EXPECT_TRUE(l.admit("wrong cluster", 2, left_out)) << "another kind is not hidden by a flood of one";
  EXPECT_TRUE(l.admit("third", 3, left_out)) << "past max_keys: the shared limit, first line at once";
  for (int i = 0; i < 100; i++) EXPECT_FALSE(l.admit("kind " + std::to_string(i), 4, left_out));
  std::map<std::string, uint64_t> reported;
  l.flush(60003, [&](const std::string& k, uint64_t n) { reported[k] = n; });
  EXPECT_EQ(reported, (std::map<std::string, uint64_t>{{"junk", 1}, {"", 100}}));
  // Quiet kinds are forgotten: a new kind gets its own limit again.
  l.flush(200000, [](const std::string&, uint64_t) {});
  EXPECT_TRUE(l.admit("new", 200001, left_out));
  EXPECT_FALSE(l.admit("new", 200002, left_out));
  EXPECT_TRUE(l.admit("newer", 200003, left_out));
}

}  // namespace
