// Unit tests for the channel presence filter (client/channel_presence.h): a publish may skip the
// workers only when no worker holds the channel, never when one does.
#include "client/channel_presence.h"

#include <gtest/gtest.h>

#include <string>

namespace {

TEST(ChannelPresence, EmptyHoldsNothing) {
  mg::ChannelPresence p;
  EXPECT_FALSE(p.maybe_held("news"));
  EXPECT_FALSE(p.maybe_held(""));
}

TEST(ChannelPresence, HeldUntilEveryWorkerThatAddedItRemovedIt) {
  mg::ChannelPresence p;
  p.add("news");  // worker 0's first subscriber
  p.add("news");  // worker 1's first subscriber
  EXPECT_TRUE(p.maybe_held("news"));
  p.remove("news");
  EXPECT_TRUE(p.maybe_held("news"));
  p.remove("news");
  EXPECT_FALSE(p.maybe_held("news"));
}

TEST(ChannelPresence, NeverMissesAHeldChannelAmongMany) {
  mg::ChannelPresence p;
  for (int i = 0; i < 5000; i += 2) p.add("ch" + std::to_string(i));
  for (int i = 0; i < 5000; i += 2) EXPECT_TRUE(p.maybe_held("ch" + std::to_string(i))) << i;
  // More channels than counters: some absent ones share a counter (true is allowed), but once every
  // channel is removed again nothing is held.
  for (int i = 0; i < 5000; i += 2) p.remove("ch" + std::to_string(i));
  for (int i = 0; i < 5000; i++) EXPECT_FALSE(p.maybe_held("ch" + std::to_string(i))) << i;
}

}  // namespace
