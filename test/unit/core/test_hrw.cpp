// Unit tests for rendezvous hashing (core/hrw.h): the properties the route API and queue delivery
// rely on (order independence, minimal movement when a member leaves or joins, even and weighted
// shares), and pinned hash values so the assignment of keys can never change silently between
// versions (nodes of different versions in one cluster must agree).
#include "core/hrw.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bitset>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace {

struct Member {
  std::string name;
  uint64_t hash;
  double weight;
};

std::vector<Member> make_members(int n) {
  std::vector<Member> m;
  for (int i = 1; i <= n; ++i) {
    const std::string name = "node-" + std::to_string(i);
    m.push_back({name, mg::stable_hash(name), 1.0});
  }
  return m;
}

uint64_t key_hash(int i) { return mg::stable_hash("uid:" + std::to_string(i)); }

uint64_t hash_of(const Member& m) { return m.hash; }
double weight_of(const Member& m) { return m.weight; }

// members must not be empty.
const std::string& pick(uint64_t key, const std::vector<Member>& members) {
  return mg::hrw_pick(key, members, hash_of)->name;
}

const std::string& pick_weighted(uint64_t key, const std::vector<Member>& members) {
  return mg::hrw_pick_weighted(key, members, hash_of, weight_of, mg::HrwNone{})->name;
}

TEST(StableHash, PinnedValuesNeverChange) {
  // FNV-1a 64 then the splitmix64 finaliser. Changing these reassigns every uid in a running cluster.
  EXPECT_EQ(mg::stable_hash(std::string()), 0xc3817c016ba4ff30ull);
  EXPECT_EQ(mg::stable_hash(std::string("a")), 0x5f29c2aadd9b8527ull);
  EXPECT_EQ(mg::stable_hash(std::string("meshgate")), 0xb6b755ee53e350e3ull);
  EXPECT_EQ(mg::stable_hash(std::string("uid:10000")), 0x715382ab5e4b8ec0ull);
  EXPECT_EQ(mg::stable_hash(std::string("The quick brown fox jumps over the lazy dog")),
            0xb369407b33a35157ull);
}

TEST(StableHash, PointerAndStringOverloadsAgreeAndBytesAfterLenAreIgnored) {
  const char buf[] = "node-1XYZ";
  EXPECT_EQ(mg::stable_hash(buf, 6), mg::stable_hash(std::string("node-1")));
  EXPECT_NE(mg::stable_hash(std::string()), mg::stable_hash(std::string(1, '\0')));
  EXPECT_NE(mg::stable_hash(std::string(1, '\0')), mg::stable_hash(std::string(2, '\0')));
}

TEST(StableHash, NoCollisionsAmongOneMillionSequentialUids) {
  std::vector<uint64_t> h;
  h.reserve(1000000);
  for (int i = 0; i < 1000000; ++i) h.push_back(key_hash(i));
  std::sort(h.begin(), h.end());
  EXPECT_EQ(std::adjacent_find(h.begin(), h.end()), h.end());
}

TEST(StableHash, FlippingOneInputBitFlipsAboutHalfTheOutputBits) {
  std::mt19937_64 rng(7);
  double total = 0;
  int samples = 0;
  for (int t = 0; t < 2000; ++t) {
    std::string s(1 + rng() % 24, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    const uint64_t base = mg::stable_hash(s);
    const size_t bit = rng() % (s.size() * 8);
    s[bit / 8] = static_cast<char>(s[bit / 8] ^ (1 << (bit % 8)));
    total += static_cast<double>(std::bitset<64>(base ^ mg::stable_hash(s)).count());
    ++samples;
  }
  EXPECT_NEAR(total / samples, 32.0, 1.0);
}

TEST(HrwScore, PinnedValueNeverChanges) {
  EXPECT_EQ(mg::hrw_score(1, 2), 0xc4858308e5949c49ull);
  EXPECT_NEAR(mg::hrw_weighted_score(1, 2, 1.0), 3.7820703261943844, 1e-12);
}

TEST(HrwScore, KeyAndMemberAreNotInterchangeable) {
  const uint64_t a = mg::stable_hash(std::string("x")), b = mg::stable_hash(std::string("y"));
  EXPECT_NE(mg::hrw_score(a, b), mg::hrw_score(b, a));
  EXPECT_NE(mg::hrw_score(a, a), mg::hrw_score(b, b));
}

TEST(Hrw, AnswerDoesNotDependOnTheOrderOfMembers) {
  std::vector<Member> members = make_members(10);
  std::vector<std::string> first;
  for (int k = 0; k < 20000; ++k) first.push_back(pick(key_hash(k), members));
  std::mt19937 rng(42);
  for (int round = 0; round < 5; ++round) {
    std::shuffle(members.begin(), members.end(), rng);
    for (int k = 0; k < 20000; ++k) ASSERT_EQ(pick(key_hash(k), members), first[static_cast<size_t>(k)]) << k;
  }
}

TEST(Hrw, WhenOneOfTenMembersLeavesOnlyItsKeysMove) {
  const std::vector<Member> all = make_members(10);
  std::vector<Member> rest = all;
  rest.erase(rest.begin() + 3);  // node-4 leaves
  int moved = 0;
  for (int k = 0; k < 100000; ++k) {
    const std::string& before = pick(key_hash(k), all);
    const std::string& after = pick(key_hash(k), rest);
    if (before == "node-4") {
      ++moved;
      EXPECT_NE(after, "node-4");
    } else {
      ASSERT_EQ(after, before) << "key " << k << " moved without its member leaving";
    }
  }
  EXPECT_NEAR(moved, 10000, 600);  // the leaver held about a tenth
}

TEST(Hrw, AJoiningMemberTakesKeysOnlyForItself) {
  const std::vector<Member> before = make_members(9);
  const std::vector<Member> after = make_members(10);
  int taken = 0;
  for (int k = 0; k < 100000; ++k) {
    const std::string& a = pick(key_hash(k), before);
    const std::string& b = pick(key_hash(k), after);
    if (a != b) {
      ASSERT_EQ(b, "node-10");
      ++taken;
    }
  }
  EXPECT_NEAR(taken, 10000, 600);
}

TEST(Hrw, TenEqualMembersGetEvenShares) {
  const std::vector<Member> members = make_members(10);
  std::map<std::string, int> count;
  for (int k = 0; k < 100000; ++k) ++count[pick(key_hash(k), members)];
  ASSERT_EQ(count.size(), 10u);
  for (const auto& c : count) EXPECT_NEAR(c.second, 10000, 500) << c.first;
}

TEST(HrwWeighted, Weights1To2To3GiveSharesWithin3PercentOfOneTwoThreeSixths) {
  std::vector<Member> members = make_members(3);
  for (size_t i = 0; i < 3; ++i) members[i].weight = static_cast<double>(i + 1);
  std::map<std::string, int> count;
  const int n = 200000;
  for (int k = 0; k < n; ++k) ++count[pick_weighted(key_hash(k), members)];
  for (size_t i = 0; i < 3; ++i) {
    const double expected = static_cast<double>(i + 1) / 6.0;
    const double share = count[members[i].name] / static_cast<double>(n);
    EXPECT_NEAR(share, expected, expected * 0.03) << members[i].name;
  }
}

TEST(HrwWeighted, EqualWeightsPickTheSameMemberAsUnweighted) {
  std::vector<Member> members = make_members(7);
  for (auto& m : members) m.weight = 2.5;
  for (int k = 0; k < 50000; ++k) {
    ASSERT_EQ(pick_weighted(key_hash(k), members), pick(key_hash(k), members)) << k;
  }
}

TEST(HrwWeighted, RaisingOneWeightOnlyMovesKeysToThatMember) {
  std::vector<Member> before = make_members(5);
  std::vector<Member> after = before;
  after[2].weight = 3.0;
  int moved = 0;
  for (int k = 0; k < 50000; ++k) {
    const std::string& a = pick_weighted(key_hash(k), before);
    const std::string& b = pick_weighted(key_hash(k), after);
    if (a != b) {
      ASSERT_EQ(b, after[2].name);
      ++moved;
    }
  }
  EXPECT_GT(moved, 0);
}

TEST(HrwWeighted, ScoresArePositiveAndFiniteForExtremeHashes) {
  for (uint64_t key : {0ull, 1ull, ~0ull, 0x8000000000000000ull}) {
    for (uint64_t member : {0ull, 1ull, ~0ull, 0x8000000000000000ull}) {
      const double s = mg::hrw_weighted_score(key, member, 1.0);
      EXPECT_GT(s, 0.0);
      EXPECT_TRUE(std::isfinite(s));
    }
  }
}

TEST(HrwWeighted, ScoreScalesLinearlyWithWeight) {
  const uint64_t key = key_hash(5), member = mg::stable_hash(std::string("node-1"));
  const double one = mg::hrw_weighted_score(key, member, 1.0);
  EXPECT_DOUBLE_EQ(mg::hrw_weighted_score(key, member, 4.0), 4.0 * one);
}

TEST(HrwWeighted, NonPositiveWeightNeverBeatsAPositiveOne) {
  std::vector<Member> members = make_members(3);
  members[0].weight = 0.0;
  members[1].weight = -1.0;
  for (int k = 0; k < 10000; ++k) ASSERT_EQ(pick_weighted(key_hash(k), members), "node-3");
}

// --- the pick helpers themselves ---

TEST(HrwPick, NoMembersOrAllSkippedGivesEnd) {
  const std::vector<Member> none;
  EXPECT_EQ(mg::hrw_pick(key_hash(1), none, hash_of), none.end());
  EXPECT_EQ(mg::hrw_pick_weighted(key_hash(1), none, hash_of, weight_of, mg::HrwNone{}), none.end());
  const std::vector<Member> members = make_members(3);
  EXPECT_EQ(mg::hrw_pick(key_hash(1), members, hash_of, [](const Member&) { return true; }), members.end());
}

// The highest score wins, as a plain loop over the scores finds it; a skipped member never wins and
// the others keep their keys (the queue skips the consumer an event just failed on).
TEST(HrwPick, PicksTheHighestScoreAndNeverASkippedMember) {
  const std::vector<Member> members = make_members(6);
  for (int k = 0; k < 20000; ++k) {
    const uint64_t key = key_hash(k);
    size_t top = 0, second = 0;
    for (size_t i = 1; i < members.size(); ++i)
      if (mg::hrw_score(key, members[i].hash) > mg::hrw_score(key, members[top].hash)) top = i;
    second = top == 0 ? 1 : 0;
    for (size_t i = 0; i < members.size(); ++i)
      if (i != top && mg::hrw_score(key, members[i].hash) > mg::hrw_score(key, members[second].hash)) second = i;
    ASSERT_EQ(mg::hrw_pick(key, members, hash_of) - members.begin(), static_cast<long>(top)) << k;
    auto skip_top = [&](const Member& m) { return &m == &members[top]; };
    ASSERT_EQ(mg::hrw_pick(key, members, hash_of, skip_top) - members.begin(), static_cast<long>(second)) << k;
  }
}

TEST(HrwPick, EqualMemberHashesGoToTheEarlierMember) {
  const std::vector<Member> twins = {{"first", 42, 1.0}, {"second", 42, 1.0}};
  for (int k = 0; k < 100; ++k) EXPECT_EQ(pick(key_hash(k), twins), "first");
  EXPECT_EQ(pick_weighted(key_hash(1), twins), "first");
}

// Members whose weight is not positive all score 0: tie_wins decides, whatever their order.
TEST(HrwPickWeighted, EqualScoresGoWhereTieWinsSays) {
  std::vector<Member> members = {{"b", 2, 0.0}, {"a", 1, 0.0}, {"c", 3, 0.0}};
  auto lower_name = [](const Member& a, const Member& b) { return a.name < b.name; };
  for (int k = 0; k < 100; ++k) {
    EXPECT_EQ(mg::hrw_pick_weighted(key_hash(k), members, hash_of, weight_of, lower_name)->name, "a");
    EXPECT_EQ(pick_weighted(key_hash(k), members), "b");  // no tie-break: the first one
  }
  std::reverse(members.begin(), members.end());
  EXPECT_EQ(mg::hrw_pick_weighted(key_hash(7), members, hash_of, weight_of, lower_name)->name, "a");
}

}  // namespace
