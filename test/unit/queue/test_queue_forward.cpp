// QueueHub across nodes, with a fake mesh: events of a topic with no local consumer go to a node
// that advertises consumers; the producing node keeps each until that node reports it consumed, and
// sends it again when the node dies or stops consuming the topic, or does not report in time. A
// consuming node delivers other nodes' events to its own consumers only.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "queue/queue_hub.h"

namespace {

using mg::QueueEvent;
using mg::QueueHub;
using mg::QueueLimits;

struct FakeRemote final : mg::RemoteQueue {
  bool ready = true;
  std::vector<std::pair<unsigned, QueueEvent>> sent;        // (node, event) forwarded
  std::vector<std::pair<unsigned, uint64_t>> done;         // (producer, handle) reported consumed
  bool remote_ready(unsigned) const override { return ready; }
  void remote_forward(unsigned node, const QueueEvent& ev) override { sent.emplace_back(node, ev); }
  void remote_done(unsigned producer, uint64_t fwd) override { done.emplace_back(producer, fwd); }
};

struct Sink final : mg::QueueSink {
  std::vector<std::string> got;
  bool sink_ready() const override { return true; }
  void sink_deliver(const mg::QueueEventRef& ev, unsigned node, uint64_t seq) override {
    got.push_back(mg::queue_pop_message(ev, node, seq));
  }
};

QueueLimits limits() {
  QueueLimits l;
  l.ack_timeout_s = 5;
  return l;
}

QueueEvent event(uint64_t client, int seq) {
  QueueEvent ev;
  ev.topic = "client";
  ev.client = client;
  ev.data = "{\"seq\":" + std::to_string(seq) + "}";
  return ev;
}

TEST(QueueForward, WithoutLocalConsumersEventsGoToANodeThatConsumesTheTopic) {
  QueueHub hub(1, limits());
  FakeRemote mesh;
  hub.set_remote(&mesh, [] {});
  hub.push(event(100, 0));  // nobody consumes yet: it waits
  EXPECT_TRUE(mesh.sent.empty());
  hub.set_remote_topics(2, {"client"});
  ASSERT_EQ(mesh.sent.size(), 1u);
  EXPECT_EQ(mesh.sent[0].first, 2u);
  EXPECT_NE(mesh.sent[0].second.fwd, 0u) << "a forwarded event carries the producer's handle";
  EXPECT_EQ(hub.remote_in_flight(2), 1u);
  hub.remote_done(mesh.sent[0].second.fwd);
  EXPECT_EQ(hub.remote_in_flight(2), 0u);
}

// A consuming node acknowledges late what it got before the producing node restarted: the handles
// of the producer's previous life must not name events of its new one (which would then count as
// consumed, and a disk topic's log would pass them). Each life starts its handles at random.
TEST(QueueForward, HandlesOfAPreviousLifeNameNoEventOfTheNext) {
  FakeRemote mesh;
  std::vector<uint64_t> first_life;
  {
    QueueHub hub(1, limits());
    hub.set_remote(&mesh, [] {});
    hub.set_remote_topics(2, {"client"});
    for (int i = 0; i < 100; i++) hub.push(event(7, i));
    for (const auto& [node, ev] : mesh.sent) first_life.push_back(ev.fwd);
  }
  mesh.sent.clear();
  QueueHub hub(1, limits());
  hub.set_remote(&mesh, [] {});
  hub.set_remote_topics(2, {"client"});
  for (int i = 0; i < 100; i++) hub.push(event(8, i));
  ASSERT_EQ(mesh.sent.size(), 100u);
  for (uint64_t fwd : first_life) hub.remote_done(fwd);
  EXPECT_EQ(hub.remote_in_flight(2), 100u) << "a handle of the previous life consumed an event of this one";
  for (const auto& [node, ev] : mesh.sent) EXPECT_LT(ev.fwd, uint64_t{1} << 53) << "exact as a JSON number";
}

TEST(QueueForward, LocalConsumersArePreferred) {
  QueueHub hub(1, limits());
  FakeRemote mesh;
  hub.set_remote(&mesh, [] {});
  hub.set_remote_topics(2, {"client"});
  Sink local;
  std::string error;
  ASSERT_EQ(hub.pop(&local, {"client"}, false, error), 0);
  for (int i = 0; i < 20; i++) hub.push(event(100 + i, i));
  EXPECT_EQ(local.got.size(), 20u);
  EXPECT_TRUE(mesh.sent.empty());
}

TEST(QueueForward, EventsHeldForADeadNodeGoToTheNextConsumer) {
  QueueHub hub(1, limits());
  FakeRemote mesh;
  hub.set_remote(&mesh, [] {});
  hub.set_remote_topics(2, {"client"});
  for (int i = 0; i < 5; i++) hub.push(event(7, i));
  ASSERT_EQ(mesh.sent.size(), 5u);
  hub.remote_done(mesh.sent[0].second.fwd);  // node 2 consumed the first only
  hub.set_remote_topics(3, {"client"});
  hub.set_remote_topics(2, {});  // node 2 died
  ASSERT_EQ(mesh.sent.size(), 9u) << "the four unconsumed events are sent again";
  for (size_t i = 5; i < 9; i++) {
    EXPECT_EQ(mesh.sent[i].first, 3u);
    EXPECT_EQ(mesh.sent[i].second.data, "{\"seq\":" + std::to_string(i - 4) + "}") << "in their order";
  }
}

TEST(QueueForward, UnreportedEventsAreSentAgainAfterTwiceTheAckTimeout) {
  QueueHub hub(1, limits());
  FakeRemote mesh;
  hub.set_remote(&mesh, [] {});
  hub.set_now(0);
  hub.set_remote_topics(2, {"client"});
  hub.push(event(9, 0));
  ASSERT_EQ(mesh.sent.size(), 1u);
  hub.tick(9000);
  EXPECT_EQ(mesh.sent.size(), 1u);
  hub.tick(10000);
  EXPECT_EQ(mesh.sent.size(), 2u) << "not reported within 2 x 5 s: sent again (at least once)";
}

// Issue 18: the consuming node's failures do not travel back, so the producer charges its own copy:
// an event whose remote consumers keep leaving (or never report) is dropped at max_deliveries, not
// sent around forever; only the oldest is charged when a node stops consuming, so the one behind it
// carries on.
TEST(QueueForward, AnEventWhoseRemoteConsumersKeepLeavingIsDroppedAtMaxDeliveries) {
  QueueLimits l = limits();
  l.max_deliveries = 3;
  QueueHub hub(1, l);
  FakeRemote mesh;
  hub.set_remote(&mesh, [] {});
  hub.push(event(7, 1));  // the poison
  hub.push(event(7, 2));  // behind it
  for (int attempt = 1; attempt <= 3; attempt++) {
    const size_t before = mesh.sent.size();
    hub.set_remote_topics(2, {"client"});
    ASSERT_EQ(mesh.sent.size(), before + 2u) << "attempt " << attempt;
    hub.set_remote_topics(2, {});  // its consumer died holding the first
  }
  hub.set_remote_topics(2, {"client"});
  ASSERT_FALSE(mesh.sent.empty());
  EXPECT_EQ(mesh.sent.back().second.data, "{\"seq\":2}") << "only the one behind it is sent again";
  EXPECT_EQ(hub.remote_in_flight(2), 1u);
  EXPECT_NE(hub.render_metrics().find("meshgate_queue_discarded_total{reason=\"max_deliveries\"} 1\n"),
            std::string::npos) << hub.render_metrics();
}

TEST(QueueForward, EachUnreportedForwardCountsAsAFailedDelivery) {
  QueueLimits l = limits();
  l.max_deliveries = 2;
  QueueHub hub(1, l);
  FakeRemote mesh;
  hub.set_remote(&mesh, [] {});
  hub.set_now(0);
  hub.set_remote_topics(2, {"client"});
  hub.push(event(9, 0));
  hub.push(event(10, 0));
  ASSERT_EQ(mesh.sent.size(), 2u);
  hub.tick(10000);  // neither reported within 2 x 5 s: each charged once, sent again
  ASSERT_EQ(mesh.sent.size(), 4u);
  hub.tick(20000);  // charged twice: dropped
  EXPECT_EQ(mesh.sent.size(), 4u);
  EXPECT_EQ(hub.remote_in_flight(2), 0u);
}

TEST(QueueForward, AConsumingNodeReportsConsumptionAtDeliveryOrAtAck) {
  QueueHub hub(2, limits());
  FakeRemote mesh;
  hub.set_remote(&mesh, [] {});
  Sink plain, acking;
  std::string error;
  ASSERT_EQ(hub.pop(&plain, {"client"}, false, error), 0);
  QueueEvent ev = event(5, 0);
  ev.node = 1;
  ev.fwd = 77;
  ev.hops = 1;
  hub.push(ev);
  ASSERT_EQ(mesh.done.size(), 1u);
  EXPECT_EQ(mesh.done[0], std::make_pair(1u, uint64_t{77}));
  ASSERT_EQ(hub.unpop(&plain), 0);
  ASSERT_EQ(hub.pop(&acking, {"client"}, true, error), 0);
  ev.fwd = 78;
  hub.push(ev);
  EXPECT_EQ(mesh.done.size(), 1u) << "acknowledged mode: not consumed until acked";
  hub.ack(&acking, {1});
  ASSERT_EQ(mesh.done.size(), 2u);
  EXPECT_EQ(mesh.done[1].second, 78u);
}

TEST(QueueForward, AnotherNodesEventIsNeverForwardedAgainNorKeptWithoutConsumers) {
  QueueHub hub(2, limits());
  FakeRemote mesh;
  hub.set_remote(&mesh, [] {});
  hub.set_remote_topics(3, {"client"});
  QueueEvent ev = event(5, 0);
  ev.node = 1;
  ev.fwd = 9;
  ev.hops = 1;
  hub.push(ev);
  EXPECT_TRUE(mesh.sent.empty()) << "only the producing node forwards";
  EXPECT_EQ(hub.pending_events(), 0u) << "with no local consumer the producer keeps it, not us";
}

}  // namespace
