// Unit tests for a worker's channel index (client/channel_index.h): both sides of every subscription
// stay in step through adds and removals, a publish walk survives the removal of the member it is
// at, and channel.top's order is by count, ties by name.
#include "client/channel_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace {

struct Member {
  using Slot = mg::ChannelIndex<Member>::Slot;
  int id = 0;
  std::vector<Slot> subs;
  std::vector<Slot>& subscriptions() { return subs; }
  const std::vector<Slot>& subscriptions() const { return subs; }
};

using Index = mg::ChannelIndex<Member>;

// Every slot of every member points at itself in its channel, and every channel's subscriber has a
// slot there.
void expect_in_step(const Index& index, const std::vector<Member*>& members) {
  for (const Member* m : members)
    for (const Member::Slot& s : m->subs) {
      ASSERT_LT(s.index, s.channel->second.size()) << "member " << m->id << " in " << s.name();
      EXPECT_EQ(s.channel->second[s.index], m) << "member " << m->id << " in " << s.name();
    }
  for (const auto& [name, subs] : index.channels()) {
    EXPECT_FALSE(subs.empty()) << name << " is listed without subscribers";
    for (size_t i = 0; i < subs.size(); i++) {
      bool found = false;
      for (const Member::Slot& s : subs[i]->subs) found |= s.name() == name && s.index == i;
      EXPECT_TRUE(found) << name << "[" << i << "] has no slot";
    }
  }
}

std::vector<std::string> names_of(const Member& m) {
  std::vector<std::string> out;
  for (const Member::Slot& s : m.subs) out.push_back(s.name());
  return out;
}

TEST(ChannelIndex, AddTellsTheFirstSubscriberAndIsIdempotent) {
  Index index;
  Member a{1}, b{2};
  EXPECT_TRUE(index.add(&a, "news"));
  EXPECT_FALSE(index.add(&a, "news"));
  EXPECT_FALSE(index.add(&b, "news"));
  EXPECT_EQ(index.count("news"), 2u);
  EXPECT_EQ(index.count("other"), 0u);
  EXPECT_EQ(a.subs.size(), 1u);
  expect_in_step(index, {&a, &b});
}

TEST(ChannelIndex, RemoveMovesTheLastSubscriberAndErasesAnEmptyChannel) {
  Index index;
  Member a{1}, b{2}, c{3};
  for (Member* m : {&a, &b, &c}) index.add(m, "news");
  index.add(&b, "sport");
  index.add(&b, "weather");
  std::vector<std::string> gone;
  auto on_gone = [&](const std::string& name) { gone.push_back(name); };
  index.remove(&a, "news", on_gone);  // c moves into a's place
  EXPECT_EQ(index.count("news"), 2u);
  EXPECT_TRUE(gone.empty());
  expect_in_step(index, {&a, &b, &c});
  index.remove(&a, "news", on_gone);  // not in it: nothing
  index.remove(&a, "nowhere", on_gone);
  EXPECT_EQ(index.count("news"), 2u);
  index.remove(&b, "sport", on_gone);
  EXPECT_EQ(gone, std::vector<std::string>{"sport"});
  EXPECT_EQ(index.channels().count("sport"), 0u);
  EXPECT_EQ(names_of(b), (std::vector<std::string>{"news", "weather"}));  // the order it joined them
  index.remove_all(&b, on_gone);
  EXPECT_TRUE(b.subs.empty());
  EXPECT_EQ(gone, (std::vector<std::string>{"sport", "weather"}));
  EXPECT_EQ(index.count("news"), 1u);
  index.remove_all(&c, on_gone);
  EXPECT_EQ(gone, (std::vector<std::string>{"sport", "weather", "news"}));
  EXPECT_TRUE(index.channels().empty());
  expect_in_step(index, {&a, &b, &c});
}

// A send that closes the connection it sends to removes it from all its channels during the walk.
TEST(ChannelIndex, EveryMemberIsWalkedOnceWhenTheWalkRemovesTheOneItIsAt) {
  for (int remove_every : {1, 2, 3}) {
    Index index;
    std::vector<Member> members(10);
    std::vector<Member*> all;
    for (int i = 0; i < 10; i++) {
      members[i].id = i;
      all.push_back(&members[i]);
      index.add(&members[i], "other");
      index.add(&members[i], "news");
    }
    std::vector<int> walked;
    auto noop = [](const std::string&) {};
    index.each_subscriber("news", [&](Member* m) {
      walked.push_back(m->id);
      if (m->id % remove_every == 0) index.remove_all(m, noop);
    });
    std::sort(walked.begin(), walked.end());
    EXPECT_EQ(walked, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})) << "removing every " << remove_every;
    size_t kept = 10 - (9 / remove_every + 1);
    EXPECT_EQ(index.count("news"), kept);
    EXPECT_EQ(index.count("other"), kept);
    expect_in_step(index, all);
  }
}

TEST(ChannelIndex, AWalkThatRemovesTheLastSubscriberEndsWithTheChannel) {
  Index index;
  Member a{1}, b{2};
  index.add(&a, "news");
  index.add(&b, "news");
  int walked = 0, gone = 0;
  index.each_subscriber("news", [&](Member* m) {
    walked++;
    index.remove(m, "news", [&](const std::string&) { gone++; });
  });
  EXPECT_EQ(walked, 2);
  EXPECT_EQ(gone, 1);
  EXPECT_TRUE(index.channels().empty());
  index.each_subscriber("news", [&](Member*) { walked++; });  // not listed: nothing
  EXPECT_EQ(walked, 2);
}

TEST(ChannelIndex, LargestFirstTiesByNameAtMostN) {
  Index index;
  std::vector<Member> members(4);
  // "b": 4 subscribers, "a" and "c": 2 each, "d": 1.
  for (Member& m : members) index.add(&m, "b");
  for (int i = 0; i < 2; i++) {
    index.add(&members[i], "c");
    index.add(&members[i], "a");
  }
  index.add(&members[3], "d");
  using Top = std::vector<std::pair<std::string, uint64_t>>;
  EXPECT_EQ(index.largest(10), (Top{{"b", 4}, {"a", 2}, {"c", 2}, {"d", 1}}));
  EXPECT_EQ(index.largest(2), (Top{{"b", 4}, {"a", 2}}));
  EXPECT_EQ(index.largest(0), Top{});
  EXPECT_EQ(Index().largest(3), Top{});
}

TEST(ChannelIndex, KeepLargestSortsAMergedList) {
  std::vector<std::pair<std::string, uint64_t>> counts{{"x", 1}, {"y", 7}, {"w", 7}, {"z", 3}};
  mg::keep_largest(counts, 3);
  EXPECT_EQ(counts, (std::vector<std::pair<std::string, uint64_t>>{{"w", 7}, {"y", 7}, {"z", 3}}));
}

}  // namespace
