// Unit tests for the route API's node choice (route/route_api.h, PROTOCOL.md §6): weighted rendezvous
// hashing of the uid over the live nodes. Every node must answer the same for the same membership
// whatever order it lists the members in, a node that leaves moves only its own uids, and weights
// set the shares.
#include "route/route_api.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace {

using mg::NodeInfo;

NodeInfo member(unsigned id, double weight = 1.0) {
  NodeInfo m{};
  m.node_id = id;
  m.weight = weight;
  m.connections = 0;
  m.external = {"ext" + std::to_string(id) + ":5100", "ws://ext" + std::to_string(id) + ":5200", ""};
  m.intranet = {"int" + std::to_string(id) + ":5100", "ws://int" + std::to_string(id) + ":5200", ""};
  return m;
}

std::vector<NodeInfo> members(std::initializer_list<unsigned> ids) {
  std::vector<NodeInfo> v;
  for (unsigned id : ids) v.push_back(member(id));
  return v;
}

std::string uid(int i) { return "user-" + std::to_string(i); }

// The node id route_pick chooses for `u`.
unsigned pick(const std::vector<NodeInfo>& m, const std::string& u) {
  const size_t i = mg::route_pick(m, u);
  EXPECT_LT(i, m.size());
  return i < m.size() ? m[i].node_id : 0;
}

TEST(RoutePick, SingleMemberGetsEveryUid) {
  const std::vector<NodeInfo> m = members({42});
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(mg::route_pick(m, uid(i)), 0u);
}

// The answers are part of the cluster's behaviour (nodes of two versions must agree): pinned, as
// route_pick gave them before it used hrw_pick_weighted.
TEST(RoutePick, PinnedAnswersNeverChange) {
  const std::vector<NodeInfo> m = {member(1, 0.5), member(2, 1.0), member(3, 2.0), member(17, 3.5), member(1023, 1.0)};
  const unsigned expected[] = {17, 3, 1023, 17, 3, 3, 1023, 17, 17, 17, 17, 17, 17, 17, 1, 3};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(pick(m, uid(i)), expected[i]) << uid(i);
}

// Equal scores (practically only members whose weight is not positive: all score 0) go to the
// lower node id, whatever the order of the list.
TEST(RoutePick, EqualScoresGoToTheLowerNodeId) {
  std::vector<NodeInfo> m = {member(9, 0.0), member(4, 0.0), member(7, 0.0)};
  for (int i = 0; i < 100; ++i) ASSERT_EQ(pick(m, uid(i)), 4u);
  std::reverse(m.begin(), m.end());
  for (int i = 0; i < 100; ++i) ASSERT_EQ(pick(m, uid(i)), 4u);
}

TEST(RoutePick, SameUidSameAnswerEveryTime) {
  const std::vector<NodeInfo> m = members({1, 2, 3, 4, 5});
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(pick(m, uid(i)), pick(m, uid(i)));
}

TEST(RoutePick, SameAnswerWhateverTheMemberOrder) {
  std::vector<NodeInfo> m = members({1, 2, 3, 4, 5, 17, 300, 1023});
  std::vector<unsigned> first;
  for (int i = 0; i < 20000; ++i) first.push_back(pick(m, uid(i)));
  std::mt19937 rng(12345);
  for (int round = 0; round < 10; ++round) {
    std::shuffle(m.begin(), m.end(), rng);
    for (int i = 0; i < 20000; ++i) ASSERT_EQ(pick(m, uid(i)), first[static_cast<size_t>(i)]) << "round " << round;
  }
  std::reverse(m.begin(), m.end());
  for (int i = 0; i < 20000; ++i) ASSERT_EQ(pick(m, uid(i)), first[static_cast<size_t>(i)]);
}

TEST(RoutePick, SameAnswerWhateverTheMemberOrderWithWeights) {
  std::vector<NodeInfo> m = {member(1, 0.5), member(2, 1.0), member(3, 2.0), member(4, 3.5)};
  std::vector<unsigned> first;
  for (int i = 0; i < 20000; ++i) first.push_back(pick(m, uid(i)));
  std::mt19937 rng(7);
  for (int round = 0; round < 5; ++round) {
    std::shuffle(m.begin(), m.end(), rng);
    for (int i = 0; i < 20000; ++i) ASSERT_EQ(pick(m, uid(i)), first[static_cast<size_t>(i)]);
  }
}

TEST(RoutePick, AddressesDoNotInfluenceTheChoice) {
  // Only the node id and weight count: two nodes may list different addresses for the same peer.
  std::vector<NodeInfo> a = members({1, 2, 3});
  std::vector<NodeInfo> b = a;
  for (NodeInfo& m : b) {
    m.external.tcp = "elsewhere:1";
    m.connections = 999;
  }
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(pick(a, uid(i)), pick(b, uid(i)));
}

TEST(RoutePick, WhenOneOfFiveLeavesOnlyItsUidsMove) {
  const std::vector<NodeInfo> all = members({1, 2, 3, 4, 5});
  for (unsigned leaver = 1; leaver <= 5; ++leaver) {
    SCOPED_TRACE(leaver);
    std::vector<NodeInfo> rest;
    for (const NodeInfo& m : all)
      if (m.node_id != leaver) rest.push_back(m);
    int moved = 0;
    const int n = 50000;
    for (int i = 0; i < n; ++i) {
      const unsigned before = pick(all, uid(i));
      const unsigned after = pick(rest, uid(i));
      if (before == leaver) {
        ++moved;
        ASSERT_NE(after, leaver);
      } else {
        ASSERT_EQ(after, before) << uid(i) << " moved though its node stayed";
      }
    }
    EXPECT_NEAR(moved, n / 5, n / 5 * 0.05) << "the leaver held about a fifth";
  }
}

TEST(RoutePick, TheLeaversUidsSpreadOverTheRemainingNodes) {
  const std::vector<NodeInfo> all = members({1, 2, 3, 4, 5});
  const std::vector<NodeInfo> rest = members({1, 2, 4, 5});
  std::map<unsigned, int> to;
  for (int i = 0; i < 50000; ++i)
    if (pick(all, uid(i)) == 3) ++to[pick(rest, uid(i))];
  ASSERT_EQ(to.size(), 4u);
  for (const auto& [node, count] : to) EXPECT_NEAR(count, 2500, 300) << node;
}

TEST(RoutePick, AJoiningNodeTakesUidsOnlyForItself) {
  const std::vector<NodeInfo> before = members({1, 2, 3, 4});
  const std::vector<NodeInfo> after = members({1, 2, 3, 4, 9});
  int taken = 0;
  for (int i = 0; i < 50000; ++i) {
    const unsigned a = pick(before, uid(i));
    const unsigned b = pick(after, uid(i));
    if (a != b) {
      ASSERT_EQ(b, 9u);
      ++taken;
    }
  }
  EXPECT_NEAR(taken, 10000, 500);
}

TEST(RoutePick, EqualWeightsGiveEvenShares) {
  const std::vector<NodeInfo> m = members({1, 2, 3, 4, 5});
  std::map<unsigned, int> count;
  const int n = 100000;
  for (int i = 0; i < n; ++i) ++count[pick(m, uid(i))];
  ASSERT_EQ(count.size(), 5u);
  for (const auto& [node, c] : count) EXPECT_NEAR(c / static_cast<double>(n), 0.2, 0.02) << node;
}

TEST(RoutePick, Weights1And3GiveAQuarterAndThreeQuarters) {
  const std::vector<NodeInfo> m = {member(1, 1.0), member(2, 3.0)};
  int light = 0, heavy = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) (pick(m, uid(i)) == 1 ? light : heavy)++;
  EXPECT_NEAR(light / static_cast<double>(n), 0.25, 0.02);
  EXPECT_NEAR(heavy / static_cast<double>(n), 0.75, 0.02);
}

TEST(RoutePick, FractionalWeightsScaleTheSameWay) {
  // Only the ratio matters: 0.5 and 1.5 is 1:3 too.
  const std::vector<NodeInfo> m = {member(10, 0.5), member(20, 1.5)};
  int light = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) light += pick(m, uid(i)) == 10;
  EXPECT_NEAR(light / static_cast<double>(n), 0.25, 0.02);
}

TEST(RoutePick, UidsOfAnyShapeGiveAValidIndex) {
  const std::vector<NodeInfo> m = members({1, 2, 3});
  for (const std::string& u : {std::string(), std::string("a"), std::string(1, '\0'), std::string(100000, 'u'),
                               std::string("\xff\xfe\x80"), std::string("caf\xc3\xa9"), std::string("a b\r\n")}) {
    EXPECT_LT(mg::route_pick(m, u), m.size());
  }
}

TEST(RoutePick, DistinctUidsThatDifferInOneByteAreSpread) {
  const std::vector<NodeInfo> m = members({1, 2});
  std::map<unsigned, int> count;
  for (int c = 0; c < 256; ++c) ++count[pick(m, std::string("uid-") + static_cast<char>(c))];
  ASSERT_EQ(count.size(), 2u);
  EXPECT_GT(count[1], 80);
  EXPECT_GT(count[2], 80);
}

}  // namespace
