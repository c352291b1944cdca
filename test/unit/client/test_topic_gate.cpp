// Unit tests for a pausing topic's gate (client/listener_shared.h, TopicGate): when a worker must stop
// reading a client of the topic, and when the hub owes the workers a resume for events in flight.
#include <gtest/gtest.h>

#include "client/listener_shared.h"

namespace {

using mg::TopicGate;

TEST(TopicGate, OpenBelowTheBound) {
  TopicGate g;
  g.bound = 1000;
  g.in_flight = 999;
  EXPECT_FALSE(g.should_pause());
  EXPECT_FALSE(g.taken(999));  // nobody paused: no resume
}

TEST(TopicGate, InFlightAtTheBoundPausesAndIsResumedOnceAtHalf) {
  TopicGate g;
  g.bound = 1000;
  g.in_flight = 1000;
  EXPECT_TRUE(g.should_pause());
  EXPECT_TRUE(g.should_pause());  // a second client pausing asks for the same resume
  EXPECT_FALSE(g.taken(499));     // 501 left: above half
  EXPECT_TRUE(g.taken(1));        // 500: resume, once
  EXPECT_FALSE(g.taken(100));
  EXPECT_FALSE(g.should_pause());
}

TEST(TopicGate, AFullTopicPausesWithoutAResumeFromInFlight) {
  TopicGate g;
  g.bound = 1000;
  g.full = true;
  EXPECT_TRUE(g.should_pause());  // the hub's pressure handler resumes when the topic has room
  g.in_flight = 10;
  EXPECT_FALSE(g.taken(10));
  g.full = false;
  EXPECT_FALSE(g.should_pause());
}

}  // namespace
