// Unit tests for queue delivery (queue/queue_hub.h, PROTOCOL.md §4), driven through fake sinks that
// record what they are handed: buffering while nobody pops, the count and byte bounds (oldest dropped,
// counted in metrics), competing consumers with per-client affinity and order, back-pressure from a
// consumer that is not ready, the 202/203 answers, and acknowledged mode (sequence numbers, the
// max_unacked window, redelivery on unpop and on ack timeout, driven with fake milliseconds).
#include "queue/queue_hub.h"

#include <gtest/gtest.h>

#include <cjson/cJSON.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/json_text.h"

namespace {

using mg::QueueEvent;
using mg::QueueHub;
using mg::QueueLimits;

// One delivered event, read back from its JSON.
struct Got {
  std::string e;
  int n = -1;
  std::string client;
  std::string topic;
  std::string d;     // JSON text of "d"
  std::string x;     // JSON text of "x", empty when absent
  bool has_k = false;
  uint64_t k = 0;
  bool id_null = false;
  int seq = -1;      // d.seq, set by the tests
};

class FakeSink final : public mg::QueueSink {
 public:
  bool ready = true;
  std::vector<std::string> raw;
  std::vector<Got> got;

  bool sink_ready() const override { return ready; }
  void sink_deliver(const mg::QueueEventRef& ev, unsigned node, uint64_t seq) override {
    std::string json = mg::queue_pop_message(ev, node, seq);
    raw.push_back(json);
    got.push_back(decode(json));
  }

  // Sequence numbers of the events of `client` this sink received, in order.
  std::vector<int> seqs_of(uint64_t client) const {
    std::vector<int> out;
    for (const Got& g : got)
      if (g.client == std::to_string(client)) out.push_back(g.seq);
    return out;
  }
  std::vector<uint64_t> ks() const {
    std::vector<uint64_t> out;
    for (const Got& g : got) out.push_back(g.k);
    return out;
  }

 private:
  static Got decode(const std::string& json) {
    Got g;
    mg::JsonPtr doc(cJSON_Parse(json.c_str()));
    EXPECT_TRUE(doc) << "not JSON: " << json;
    if (!doc) return g;
    const cJSON* root = doc.get();
    const cJSON* e = cJSON_GetObjectItemCaseSensitive(root, "e");
    if (cJSON_IsString(e)) g.e = e->valuestring;
    g.id_null = cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(root, "id"));
    const cJSON* p = cJSON_GetObjectItemCaseSensitive(root, "p");
    EXPECT_TRUE(cJSON_IsObject(p)) << json;
    if (!cJSON_IsObject(p)) return g;
    const cJSON* n = cJSON_GetObjectItemCaseSensitive(p, "n");
    if (cJSON_IsNumber(n)) g.n = n->valueint;
    const cJSON* c = cJSON_GetObjectItemCaseSensitive(p, "c");
    EXPECT_TRUE(cJSON_IsString(c)) << "client id must be a string: " << json;
    if (cJSON_IsString(c)) g.client = c->valuestring;
    const cJSON* t = cJSON_GetObjectItemCaseSensitive(p, "t");
    if (cJSON_IsString(t)) g.topic = t->valuestring;
    const cJSON* d = cJSON_GetObjectItemCaseSensitive(p, "d");
    if (d) {
      g.d = mg::json_print(d);
      const cJSON* seq = cJSON_GetObjectItemCaseSensitive(d, "seq");
      if (cJSON_IsNumber(seq)) g.seq = seq->valueint;
    }
    const cJSON* x = cJSON_GetObjectItemCaseSensitive(p, "x");
    if (x) g.x = mg::json_print(x);
    const cJSON* k = cJSON_GetObjectItemCaseSensitive(p, "k");
    if (k) {
      EXPECT_TRUE(cJSON_IsNumber(k)) << json;
      g.has_k = true;
      g.k = static_cast<uint64_t>(k->valuedouble);
    }
    return g;
  }
};

QueueLimits limits(uint32_t max_events = 10000, uint64_t max_bytes = 16 << 20, uint32_t ack_timeout_s = 30,
                   uint32_t max_unacked = 1000) {
  QueueLimits l;
  l.max_events = max_events;
  l.max_bytes = max_bytes;
  l.ack_timeout_s = ack_timeout_s;
  l.max_unacked = max_unacked;
  return l;
}

QueueEvent event(uint64_t client, int seq, const std::string& topic = "client", const std::string& context = "") {
  QueueEvent ev;
  ev.topic = topic;
  ev.client = client;
  ev.data = "{\"seq\":" + std::to_string(seq) + "}";
  ev.context = context;
  return ev;
}

int pop(QueueHub& hub, FakeSink& sink, bool ack = false, const std::vector<std::string>& topics = {"client"}) {
  std::string error;
  const int code = hub.pop(&sink, topics, ack, error);
  if (code) {
    EXPECT_FALSE(error.empty());
  }
  return code;
}

// The value of `family{topic="topic"}` in render_metrics(), or -1 when absent.
long long metric(const QueueHub& hub, const std::string& family, const std::string& topic = "client") {
  const std::string text = hub.render_metrics();
  const std::string prefix = family + "{topic=\"" + topic + "\"} ";
  const size_t at = text.find("\n" + prefix);
  if (at == std::string::npos) return -1;
  return std::stoll(text.substr(at + 1 + prefix.size()));
}

std::vector<int> range(int from, int to) {  // [from, to)
  std::vector<int> v;
  for (int i = from; i < to; ++i) v.push_back(i);
  return v;
}

// Pushes one probe event per client until it finds a client whose events go to `want` (all sinks
// ready). Returns the client id; the probes are left delivered.
uint64_t client_served_by(QueueHub& hub, const std::vector<FakeSink*>& sinks, const FakeSink* want, uint64_t start) {
  for (uint64_t c = start; c < start + 10000; ++c) {
    std::vector<size_t> before;
    for (FakeSink* s : sinks) before.push_back(s->got.size());
    hub.push(event(c, -1));
    if (want->got.size() > before[static_cast<size_t>(std::find(sinks.begin(), sinks.end(), want) - sinks.begin())])
      return c;
  }
  ADD_FAILURE() << "no client maps to the wanted consumer";
  return 0;
}

void forget_probes(std::vector<FakeSink*> sinks) {
  for (FakeSink* s : sinks) {
    std::vector<Got> kept;
    for (const Got& g : s->got)
      if (g.seq != -1) kept.push_back(g);
    s->got = kept;
  }
}

// ---------------------------------------------------------------------------------------------
// Shape of a delivered event

TEST(QueueHubEvent, DeliveredEventHasTheProtocolShape) {
  QueueHub hub(7, limits());
  FakeSink s;
  ASSERT_EQ(pop(hub, s), 0);
  hub.push(event(1463819408261513216ull, 1, "client", R"({"user_id":10000})"));
  ASSERT_EQ(s.got.size(), 1u);
  const Got& g = s.got[0];
  EXPECT_EQ(g.e, "queue.pop");
  EXPECT_EQ(g.n, 7);
  EXPECT_EQ(g.client, "1463819408261513216");  // a decimal string, exact
  EXPECT_EQ(g.topic, "client");
  EXPECT_EQ(g.d, R"({"seq":1})");
  EXPECT_EQ(g.x, R"({"user_id":10000})");
  EXPECT_FALSE(g.has_k);  // not in acknowledged mode
  EXPECT_TRUE(g.id_null);
}

// ---------------------------------------------------------------------------------------------
// Borrowed events (push(QueueEventRef), how a worker's batch hands its events over)

TEST(QueueHubBorrowed, DeliveredAtOnceTheSameAsAnOwnedEvent) {
  QueueHub hub(7, limits());
  FakeSink owned, borrowed;
  ASSERT_EQ(pop(hub, owned, false, {"a"}), 0);
  ASSERT_EQ(pop(hub, borrowed, false, {"b"}), 0);
  QueueEvent a = event(42, 1, "a", R"({"user_id":1})");
  QueueEvent b = a;
  b.topic = "b";
  hub.push(a);
  hub.push(b.ref());
  ASSERT_EQ(owned.raw.size(), 1u);
  ASSERT_EQ(borrowed.raw.size(), 1u);
  std::string expect = owned.raw[0];
  expect.replace(expect.find("\"t\":\"a\""), 7, "\"t\":\"b\"");
  EXPECT_EQ(borrowed.raw[0], expect);
  EXPECT_EQ(metric(hub, "meshgate_queue_delivered_total", "b"), 1);
}

TEST(QueueHubBorrowed, CopiedWhenItMustWait) {
  // Nobody pops yet, then a consumer that is not ready, then one that holds events for
  // acknowledgement: each time the queue keeps the event, and the borrowed bytes are reused after.
  QueueHub hub(1, limits());
  std::string topic = "client", data = R"({"seq":1})", ctx = R"({"k":1})";
  auto push_borrowed = [&](int seq) {
    data = "{\"seq\":" + std::to_string(seq) + "}";
    hub.push(mg::QueueEventRef{&topic, 9, data, ctx});
    data.assign(data.size(), 'X');  // the batch's bytes are gone once push returns
  };
  push_borrowed(1);
  FakeSink s;
  s.ready = false;
  ASSERT_EQ(pop(hub, s), 0);
  push_borrowed(2);
  EXPECT_TRUE(s.got.empty());
  s.ready = true;
  hub.sink_ready(&s);
  ASSERT_EQ(hub.unpop(&s), 0);
  FakeSink acked;
  ASSERT_EQ(pop(hub, acked, true), 0);
  push_borrowed(3);
  ASSERT_EQ(acked.got.size(), 1u);
  EXPECT_EQ(acked.got[0].seq, 3);
  ASSERT_EQ(hub.unpop(&acked), 0);  // unacknowledged: back to the topic, from the queue's own copy
  FakeSink last;
  ASSERT_EQ(pop(hub, last), 0);
  EXPECT_EQ(s.seqs_of(9), (std::vector<int>{1, 2}));
  EXPECT_EQ(last.seqs_of(9), (std::vector<int>{3}));
  EXPECT_EQ(last.got[0].x, R"({"k":1})");
}

TEST(QueueHubBorrowed, AClientWithEventsWaitingKeepsItsOrder) {
  QueueHub hub(1, limits());
  FakeSink s;
  s.ready = false;
  ASSERT_EQ(pop(hub, s), 0);
  hub.push(event(5, 1));
  s.ready = true;  // ready again, but event 1 still waits: 2 must not overtake it
  QueueEvent second = event(5, 2);
  hub.push(second.ref());
  hub.sink_ready(&s);
  EXPECT_EQ(s.seqs_of(5), (std::vector<int>{1, 2}));
}

TEST(QueueHubEvent, EmptyContextIsLeftOut) {
  QueueHub hub(1, limits());
  FakeSink s;
  ASSERT_EQ(pop(hub, s), 0);
  hub.push(event(5, 1));
  ASSERT_EQ(s.raw.size(), 1u);
  EXPECT_EQ(s.raw[0].find("\"x\""), std::string::npos) << s.raw[0];
}

TEST(QueueHubEvent, TopicNameIsEscapedInTheEvent) {
  QueueHub hub(1, limits());
  FakeSink s;
  const std::string topic = "we\"ird\\topic\n";
  ASSERT_EQ(pop(hub, s, false, {topic}), 0);
  hub.push(event(5, 1, topic));
  ASSERT_EQ(s.got.size(), 1u);
  EXPECT_EQ(s.got[0].topic, topic);
}

// ---------------------------------------------------------------------------------------------
// Buffering while nobody pops

TEST(QueueHubBuffer, EventsWaitWithNoConsumerAndAreDeliveredOnPopInOrder) {
  QueueHub hub(1, limits());
  hub.declare("client");
  for (int i = 0; i < 5; ++i) hub.push(event(10 + static_cast<uint64_t>(i % 2), i));
  EXPECT_EQ(hub.pending_events(), 5u);
  EXPECT_EQ(metric(hub, "meshgate_queue_depth"), 5);
  FakeSink s;
  ASSERT_EQ(pop(hub, s), 0);
  ASSERT_EQ(s.got.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(s.got[static_cast<size_t>(i)].seq, i);
  EXPECT_EQ(hub.pending_events(), 0u);
  EXPECT_EQ(metric(hub, "meshgate_queue_depth"), 0);
  EXPECT_EQ(metric(hub, "meshgate_queue_bytes"), 0);
  EXPECT_EQ(metric(hub, "meshgate_queue_delivered_total"), 5);
}

TEST(QueueHubBuffer, PushToAnUndeclaredTopicBuffersToo) {
  QueueHub hub(1, limits());
  hub.push(event(1, 0, "late"));
  EXPECT_EQ(hub.pending_events(), 1u);
  FakeSink s;
  ASSERT_EQ(pop(hub, s, false, {"late"}), 0);
  EXPECT_EQ(s.got.size(), 1u);
}

TEST(QueueHubBuffer, AConsumerOfAnotherTopicGetsNothing) {
  QueueHub hub(1, limits());
  FakeSink s;
  ASSERT_EQ(pop(hub, s, false, {"other"}), 0);
  hub.push(event(1, 0, "client"));
  EXPECT_TRUE(s.got.empty());
  EXPECT_EQ(hub.pending_events(), 1u);
}

TEST(QueueHubBuffer, AConsumerOfSeveralTopicsGetsEach) {
  QueueHub hub(1, limits());
  FakeSink s;
  ASSERT_EQ(pop(hub, s, false, {"a", "b", "a"}), 0);
  hub.push(event(1, 0, "a"));
  hub.push(event(1, 1, "b"));
  hub.push(event(1, 2, "c"));
  ASSERT_EQ(s.got.size(), 2u);
  EXPECT_EQ(s.got[0].topic, "a");
  EXPECT_EQ(s.got[1].topic, "b");
  EXPECT_EQ(metric(hub, "meshgate_queue_consumers", "a"), 1);  // listed twice, counted once
}

TEST(QueueHubBuffer, AfterUnpopEventsWaitAgain) {
  QueueHub hub(1, limits());
  FakeSink s;
  ASSERT_EQ(pop(hub, s), 0);
  ASSERT_EQ(hub.unpop(&s), 0);
  hub.push(event(1, 0));
  EXPECT_TRUE(s.got.empty());
  EXPECT_EQ(hub.pending_events(), 1u);
}

TEST(QueueHubBuffer, MaxEventsDropsTheOldestAndCountsThem) {
  QueueHub hub(1, limits(3));
  hub.declare("client", false);  // overflow = drop
  for (int i = 0; i < 5; ++i) hub.push(event(1, i));
  EXPECT_EQ(hub.pending_events(), 3u);
  EXPECT_EQ(metric(hub, "meshgate_queue_dropped_total"), 2);
  EXPECT_EQ(metric(hub, "meshgate_queue_depth"), 3);
  FakeSink s;
  ASSERT_EQ(pop(hub, s), 0);
  ASSERT_EQ(s.got.size(), 3u);
  EXPECT_EQ(s.seqs_of(1), (std::vector<int>{2, 3, 4}));
}

TEST(QueueHubBuffer, MaxBytesDropsTheOldestAndCountsThem) {
  // Each event is topic + data + context + 64 bytes of overhead.
  const std::string data(200, 'x');
  QueueEvent probe = event(1, 0);
  probe.data = R"({"seq":0,"pad":")" + data + "\"}";
  const uint64_t one = probe.bytes();
  QueueHub hub(1, limits(10000, one * 3));
  hub.declare("client", false);
  for (int i = 0; i < 10; ++i) {
    QueueEvent ev = event(1, i);
    ev.data = R"({"seq":)" + std::to_string(i) + R"(,"pad":")" + data + "\"}";
    hub.push(std::move(ev));
    EXPECT_LE(static_cast<uint64_t>(metric(hub, "meshgate_queue_bytes")), one * 3);
  }
  EXPECT_EQ(hub.pending_events(), 3u);
  EXPECT_EQ(metric(hub, "meshgate_queue_dropped_total"), 7);
  EXPECT_EQ(static_cast<uint64_t>(metric(hub, "meshgate_queue_bytes")), one * 3);
  FakeSink s;
  ASSERT_EQ(pop(hub, s), 0);
  EXPECT_EQ(s.seqs_of(1), (std::vector<int>{7, 8, 9}));
}

TEST(QueueHubBuffer, BoundsArePerTopic) {
  QueueHub hub(1, limits(2));
  hub.declare("a", false);
  hub.declare("b", false);
  for (int i = 0; i < 3; ++i) {
    hub.push(event(1, i, "a"));
    hub.push(event(1, i, "b"));
  }
  EXPECT_EQ(hub.pending_events(), 4u);
  EXPECT_EQ(metric(hub, "meshgate_queue_dropped_total", "a"), 1);
  EXPECT_EQ(metric(hub, "meshgate_queue_dropped_total", "b"), 1);
}

TEST(QueueHubBuffer, ManyEventsIntoASmallBufferKeepTheNewest) {
  QueueHub hub(1, limits(100));
  hub.declare("client", false);
  for (int i = 0; i < 100000; ++i) hub.push(event(static_cast<uint64_t>(i % 7 + 1), i));
  EXPECT_EQ(hub.pending_events(), 100u);
  EXPECT_EQ(metric(hub, "meshgate_queue_dropped_total"), 99900);
  FakeSink s;
  ASSERT_EQ(pop(hub, s), 0);
  ASSERT_EQ(s.got.size(), 100u);
  for (size_t i = 0; i < 100; ++i) EXPECT_EQ(s.got[i].seq, static_cast<int>(99900 + i));
}

// overflow = pause (the default): the producers are paused at the bound and resumed at half of it
// (the topic's gate closes and opens); events still arriving are kept up to four times the bound,
// then the oldest go, counted.
TEST(QueueHubBuffer, APausingTopicClosesItsGateAtTheBoundOpensItAtHalfAndDropsOnlyAtFourTimes) {
  QueueHub hub(1, limits(10));
  hub.declare("client");
  std::shared_ptr<mg::TopicGate> gate = hub.gate("client");
  ASSERT_TRUE(gate);
  int resumes = 0;
  hub.set_resume_handler([&] { resumes++; });
  for (int i = 0; i < 9; ++i) hub.push(event(1, i));
  EXPECT_FALSE(gate->full);
  hub.push(event(1, 9));
  EXPECT_TRUE(gate->full);
  EXPECT_TRUE(gate->should_pause());
  EXPECT_EQ(metric(hub, "meshgate_queue_paused"), 1);
  for (int i = 10; i < 45; ++i) hub.push(event(1, i));
  EXPECT_EQ(hub.pending_events(), 40u);
  EXPECT_EQ(metric(hub, "meshgate_queue_dropped_total"), 5);
  EXPECT_EQ(metric(hub, "meshgate_queue_pauses_total"), 1);  // no second pause while paused
  FakeSink s;
  s.ready = false;  // a consumer that cannot take anything yet: still paused
  ASSERT_EQ(pop(hub, s), 0);
  EXPECT_TRUE(gate->full);
  s.ready = true;
  hub.sink_ready(&s);
  EXPECT_EQ(s.got.size(), 40u);
  EXPECT_FALSE(gate->full);
  EXPECT_EQ(resumes, 1);
  EXPECT_EQ(metric(hub, "meshgate_queue_paused"), 0);
  EXPECT_EQ(metric(hub, "meshgate_queue_pauses_total"), 1);
}

TEST(QueueHubBuffer, OnlyADeclaredPausingTopicHasAGateAndAReloadMovesItsBound) {
  QueueHub hub(1, limits(1000));
  hub.declare("pausing");
  hub.declare("dropping", false);
  EXPECT_FALSE(hub.gate("dropping"));
  EXPECT_FALSE(hub.gate("nobody"));
  std::shared_ptr<mg::TopicGate> gate = hub.gate("pausing");
  ASSERT_TRUE(gate);
  EXPECT_EQ(gate->in_flight.high(), 1000);
  gate->in_flight.added(600);
  EXPECT_FALSE(gate->should_pause());
  hub.set_limits(limits(500));  // SIGHUP lowers max_events: the events in flight close the gate now
  EXPECT_EQ(gate->in_flight.high(), 500);
  EXPECT_TRUE(gate->should_pause());
}

TEST(QueueHubBuffer, MetricsHaveHelpTypeAndEscapedTopicLabels) {
  QueueHub hub(1, limits());
  hub.declare("client");
  hub.declare("we\"ird");
  const std::string text = hub.render_metrics();
  EXPECT_NE(text.find("# TYPE meshgate_queue_dropped_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE meshgate_queue_depth gauge\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# HELP meshgate_queue_dropped_total "), std::string::npos) << text;
  EXPECT_NE(text.find("\nmeshgate_queue_dropped_total{topic=\"client\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("{topic=\"we\\\"ird\"}"), std::string::npos) << text;
}

// ---------------------------------------------------------------------------------------------
// pop / unpop answers

TEST(QueueHubPop, SecondPopIs202) {
  QueueHub hub(1, limits());
  FakeSink s;
  ASSERT_EQ(pop(hub, s), 0);
  std::string error;
  EXPECT_EQ(hub.pop(&s, {"other"}, false, error), 202);
  EXPECT_FALSE(error.empty());
  EXPECT_TRUE(hub.is_consumer(&s));
}

TEST(QueueHubPop, UnpopWhenNotPoppingIs203) {
  QueueHub hub(1, limits());
  FakeSink s;
  EXPECT_EQ(hub.unpop(&s), 203);
  ASSERT_EQ(pop(hub, s), 0);
  EXPECT_EQ(hub.unpop(&s), 0);
  EXPECT_FALSE(hub.is_consumer(&s));
  EXPECT_EQ(hub.unpop(&s), 203);
}

TEST(QueueHubPop, PopAgainAfterUnpopIsAccepted) {
  QueueHub hub(1, limits());
  FakeSink s;
  ASSERT_EQ(pop(hub, s), 0);
  ASSERT_EQ(hub.unpop(&s), 0);
  EXPECT_EQ(pop(hub, s, true), 0);
  hub.push(event(1, 0));
  ASSERT_EQ(s.got.size(), 1u);
  EXPECT_TRUE(s.got[0].has_k);  // the new mode holds
}

TEST(QueueHubPop, TooManyTopicsOnTheNodeIs201) {
  QueueLimits l = limits();
  l.max_topics = 100;
  QueueHub hub(1, l);
  for (size_t i = 0; i < 99; ++i) hub.declare("t" + std::to_string(i));
  FakeSink s;
  std::string error;
  // Two new topics where one is left: refused whole, neither is made.
  EXPECT_EQ(hub.pop(&s, {"t0", "one", "two"}, false, error), 201);
  EXPECT_NE(error.find("max_topics 100"), std::string::npos) << error;
  EXPECT_FALSE(hub.is_consumer(&s));
  EXPECT_EQ(hub.topic_stats().size(), 99u);
  EXPECT_NE(hub.render_metrics().find("meshgate_queue_topics_refused_total 1\n"), std::string::npos);
  EXPECT_EQ(pop(hub, s, false, {"t0", "one"}), 0);  // existing topics, and one new one, still work
}

// A listener's topic is made even past max_topics: a configuration whose listeners alone pass the
// bound must not lose their events.
TEST(QueueHubTopics, ListenerTopicsAreMadeWhateverTheBound) {
  QueueLimits l = limits();
  l.max_topics = 1;
  QueueHub hub(1, l);
  hub.declare("a");
  hub.declare("b");
  FakeSink s;
  ASSERT_EQ(pop(hub, s, true, {"b"}), 0);
  hub.push(event(1, 1, "b"));
  EXPECT_EQ(s.seqs_of(1), std::vector<int>{1});
  EXPECT_NE(hub.render_metrics().find("meshgate_queue_topics_refused_total 0\n"), std::string::npos);
}

// Issue 18: topics nothing holds are forgotten after topic_idle_timeout, with their metric series;
// a listener's topic, one with events waiting or a consumer, or one another node consumes is not.
TEST(QueueHubTopics, IdleTopicsAreForgotten) {
  QueueLimits l = limits();
  l.max_topics = 6;
  l.topic_idle_s = 10;
  QueueHub hub(1, l);
  hub.declare("listener");
  FakeSink a, b;
  ASSERT_EQ(pop(hub, a, false, {"junk1", "junk2"}), 0);
  ASSERT_EQ(pop(hub, b, false, {"kept"}), 0);
  ASSERT_EQ(hub.unpop(&a), 0);
  hub.set_remote_topics(2, {"remote"});
  hub.push(event(1, 0, "waiting"));  // no consumer: it waits (a topic made by an event)
  EXPECT_EQ(hub.topic_stats().size(), 6u);
  hub.tick(1000);
  hub.tick(10999);
  EXPECT_EQ(hub.topic_stats().size(), 6u) << "not idle for 10 s yet";
  hub.tick(11000);
  std::vector<std::string> names;
  for (const mg::QueueTopicStats& t : hub.topic_stats()) names.push_back(t.topic);
  EXPECT_EQ(names, (std::vector<std::string>{"kept", "listener", "remote", "waiting"}));
  std::string m = hub.render_metrics();
  EXPECT_EQ(m.find("junk1"), std::string::npos);
  EXPECT_NE(m.find("meshgate_queue_topics_forgotten_total 2\n"), std::string::npos);
  EXPECT_NE(m.find("meshgate_queue_topics 4\n"), std::string::npos);
  // The consumer leaves; its topic is forgotten a full idle time later, and its name can be made again.
  ASSERT_EQ(hub.unpop(&b), 0);
  hub.tick(12000);
  hub.tick(21999);
  EXPECT_EQ(hub.topic_stats().size(), 4u);
  hub.tick(22000);
  EXPECT_EQ(hub.topic_stats().size(), 3u);
  EXPECT_EQ(pop(hub, a, false, {"kept"}), 0);
}

TEST(QueueHubPop, AckAndReadyFromANonConsumerAreIgnored) {
  QueueHub hub(1, limits());
  FakeSink s;
  hub.ack(&s, {1, 2, 3});
  hub.sink_ready(&s);
  hub.tick(100000);
  EXPECT_TRUE(s.got.empty());
}

// ---------------------------------------------------------------------------------------------
// Competing consumers

TEST(QueueHubCompeting, EachEventGoesToExactlyOneConsumerAndEachClientToOneConsumerInOrder) {
  QueueHub hub(1, limits());
  FakeSink a, b, c;
  ASSERT_EQ(pop(hub, a), 0);
  ASSERT_EQ(pop(hub, b), 0);
  ASSERT_EQ(pop(hub, c), 0);
  const int clients = 300, per_client = 5;
  for (int i = 0; i < per_client; ++i)
    for (int cl = 1; cl <= clients; ++cl) hub.push(event(static_cast<uint64_t>(cl), cl * 100 + i));
  EXPECT_EQ(a.got.size() + b.got.size() + c.got.size(), static_cast<size_t>(clients * per_client));
  std::multiset<int> seen;
  for (FakeSink* s : {&a, &b, &c}) {
    EXPECT_GT(s->got.size(), static_cast<size_t>(clients * per_client / 6)) << "one consumer is starved";
    for (const Got& g : s->got) seen.insert(g.seq);
  }
  for (int cl = 1; cl <= clients; ++cl) {
    int holders = 0;
    for (FakeSink* s : {&a, &b, &c}) {
      const std::vector<int> got = s->seqs_of(static_cast<uint64_t>(cl));
      if (got.empty()) continue;
      ++holders;
      std::vector<int> want;
      for (int i = 0; i < per_client; ++i) want.push_back(cl * 100 + i);
      EXPECT_EQ(got, want) << "client " << cl;
    }
    EXPECT_EQ(holders, 1) << "client " << cl;
    for (int i = 0; i < per_client; ++i) EXPECT_EQ(seen.count(cl * 100 + i), 1u);
  }
}

TEST(QueueHubCompeting, BufferedEventsAreSharedWhenConsumersArrive) {
  QueueHub hub(1, limits());
  hub.declare("client");
  for (int cl = 1; cl <= 100; ++cl) hub.push(event(static_cast<uint64_t>(cl), cl));
  FakeSink a;
  ASSERT_EQ(pop(hub, a), 0);  // the first consumer takes everything waiting
  EXPECT_EQ(a.got.size(), 100u);
}

TEST(QueueHubCompeting, NotReadyConsumerHoldsBackItsClientWhileOthersFlow) {
  QueueHub hub(1, limits());
  FakeSink a, b;
  ASSERT_EQ(pop(hub, a), 0);
  ASSERT_EQ(pop(hub, b), 0);
  const uint64_t ca = client_served_by(hub, {&a, &b}, &a, 1);
  const uint64_t cb = client_served_by(hub, {&a, &b}, &b, 1);
  forget_probes({&a, &b});
  a.ready = false;
  hub.push(event(ca, 1));
  hub.push(event(ca, 2));
  hub.push(event(cb, 101));
  hub.push(event(ca, 3));
  hub.push(event(cb, 102));
  EXPECT_TRUE(a.got.empty());
  EXPECT_EQ(b.seqs_of(cb), (std::vector<int>{101, 102}));
  EXPECT_TRUE(b.seqs_of(ca).empty()) << "the held-back client's events must not jump to another consumer";
  EXPECT_EQ(hub.pending_events(), 3u);
  // b's readiness says nothing for a.
  hub.sink_ready(&b);
  EXPECT_TRUE(a.got.empty());
  a.ready = true;
  hub.sink_ready(&a);
  EXPECT_EQ(a.seqs_of(ca), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(hub.pending_events(), 0u);
  hub.push(event(ca, 4));
  EXPECT_EQ(a.seqs_of(ca), (std::vector<int>{1, 2, 3, 4}));
}

TEST(QueueHubCompeting, NewEventOfAHeldBackClientQueuesBehindItsOlderOnes) {
  QueueHub hub(1, limits());
  FakeSink a;
  ASSERT_EQ(pop(hub, a), 0);
  a.ready = false;
  hub.push(event(9, 1));
  a.ready = true;  // ready again, but nobody told the hub yet
  hub.push(event(9, 2));
  hub.sink_ready(&a);
  EXPECT_EQ(a.seqs_of(9), (std::vector<int>{1, 2}));
}

TEST(QueueHubCompeting, ConsumerThatLeavesWhileHoldingBackHandsTheEventsOnInOrder) {
  QueueHub hub(1, limits());
  FakeSink a, b;
  ASSERT_EQ(pop(hub, a), 0);
  ASSERT_EQ(pop(hub, b), 0);
  const uint64_t ca = client_served_by(hub, {&a, &b}, &a, 1);
  forget_probes({&a, &b});
  a.ready = false;
  for (int i = 1; i <= 4; ++i) hub.push(event(ca, i));
  ASSERT_EQ(hub.unpop(&a), 0);
  EXPECT_EQ(b.seqs_of(ca), (std::vector<int>{1, 2, 3, 4}));
  EXPECT_TRUE(a.got.empty());
}

TEST(QueueHubCompeting, NoConsumerReadyKeepsEverythingBuffered) {
  QueueHub hub(1, limits());
  FakeSink a, b;
  a.ready = b.ready = false;
  ASSERT_EQ(pop(hub, a), 0);
  ASSERT_EQ(pop(hub, b), 0);
  for (int cl = 1; cl <= 20; ++cl) hub.push(event(static_cast<uint64_t>(cl), cl));
  EXPECT_EQ(hub.pending_events(), 20u);
  a.ready = b.ready = true;
  hub.sink_ready(&a);
  hub.sink_ready(&b);
  EXPECT_EQ(a.got.size() + b.got.size(), 20u);
  EXPECT_EQ(hub.pending_events(), 0u);
}

// ---------------------------------------------------------------------------------------------
// Acknowledged mode

TEST(QueueHubAck, EventsCarryIncreasingSequenceNumbers) {
  QueueHub hub(1, limits());
  FakeSink s;
  ASSERT_EQ(pop(hub, s, true), 0);
  for (int i = 0; i < 10; ++i) hub.push(event(static_cast<uint64_t>(i % 3 + 1), i));
  ASSERT_EQ(s.got.size(), 10u);
  for (size_t i = 0; i < s.got.size(); ++i) {
    EXPECT_TRUE(s.got[i].has_k);
    if (i) {
      EXPECT_GT(s.got[i].k, s.got[i - 1].k);
    }
  }
}

TEST(QueueHubAck, SequenceNumbersAreUniqueAcrossConsumers) {
  QueueHub hub(1, limits());
  FakeSink a, b;
  ASSERT_EQ(pop(hub, a, true), 0);
  ASSERT_EQ(pop(hub, b, true), 0);
  for (int cl = 1; cl <= 50; ++cl) hub.push(event(static_cast<uint64_t>(cl), cl));
  std::set<uint64_t> ks;
  for (FakeSink* s : {&a, &b})
    for (uint64_t k : s->ks()) EXPECT_TRUE(ks.insert(k).second) << k;
  EXPECT_EQ(ks.size(), 50u);
}

TEST(QueueHubAck, MaxUnackedIsRespectedAndAckFreesCapacity) {
  QueueHub hub(1, limits(10000, 16 << 20, 30, 3));
  FakeSink s;
  ASSERT_EQ(pop(hub, s, true), 0);
  for (int i = 0; i < 7; ++i) hub.push(event(1, i));
  ASSERT_EQ(s.got.size(), 3u);
  EXPECT_EQ(hub.pending_events(), 4u);
  hub.ack(&s, {s.got[0].k});
  ASSERT_EQ(s.got.size(), 4u);
  EXPECT_EQ(s.got[3].seq, 3);
  hub.ack(&s, {s.got[1].k, s.got[2].k, s.got[3].k});
  ASSERT_EQ(s.got.size(), 7u);
  EXPECT_EQ(s.seqs_of(1), range(0, 7));
  EXPECT_EQ(hub.pending_events(), 0u);
}

TEST(QueueHubAck, MaxUnackedAppliesToOtherClientsToo) {
  QueueHub hub(1, limits(10000, 16 << 20, 30, 2));
  FakeSink s;
  ASSERT_EQ(pop(hub, s, true), 0);
  for (int cl = 1; cl <= 5; ++cl) hub.push(event(static_cast<uint64_t>(cl), cl));
  EXPECT_EQ(s.got.size(), 2u);
  EXPECT_EQ(hub.pending_events(), 3u);
}

TEST(QueueHubAck, UnknownAndRepeatedAcksAreIgnored) {
  QueueHub hub(1, limits(10000, 16 << 20, 30, 2));
  FakeSink s;
  ASSERT_EQ(pop(hub, s, true), 0);
  for (int i = 0; i < 4; ++i) hub.push(event(1, i));
  ASSERT_EQ(s.got.size(), 2u);
  hub.ack(&s, {999999, 0});
  EXPECT_EQ(s.got.size(), 2u);
  const uint64_t k0 = s.got[0].k;
  hub.ack(&s, {k0, k0});
  EXPECT_EQ(s.got.size(), 3u);
  hub.ack(&s, {k0});
  EXPECT_EQ(s.got.size(), 3u);  // acking it again frees nothing more
}

TEST(QueueHubAck, AckingAnotherConsumersEventDoesNothing) {
  QueueHub hub(1, limits(10000, 16 << 20, 30, 1));
  FakeSink a, b;
  ASSERT_EQ(pop(hub, a, true), 0);
  ASSERT_EQ(pop(hub, b, true), 0);
  const uint64_t ca = client_served_by(hub, {&a, &b}, &a, 1);
  ASSERT_EQ(a.got.size(), 1u);  // the probe fills a's window of one
  hub.push(event(ca, 1));
  EXPECT_EQ(a.got.size(), 1u);
  hub.ack(&b, {a.got[0].k});
  EXPECT_EQ(a.got.size(), 1u);
  hub.ack(&a, {a.got[0].k});
  ASSERT_EQ(a.got.size(), 2u);
  EXPECT_EQ(a.got[1].seq, 1);
}

TEST(QueueHubAck, AckedEventsAreNotRedelivered) {
  QueueHub hub(1, limits(10000, 16 << 20, 30, 100));
  hub.set_now(0);
  FakeSink a, b;
  ASSERT_EQ(pop(hub, a, true), 0);
  ASSERT_EQ(pop(hub, b, true), 0);
  for (int cl = 1; cl <= 20; ++cl) hub.push(event(static_cast<uint64_t>(cl), cl));
  hub.ack(&a, a.ks());
  hub.ack(&b, b.ks());
  const size_t total = a.got.size() + b.got.size();
  hub.tick(1000000);
  ASSERT_EQ(hub.unpop(&a), 0);
  EXPECT_EQ(a.got.size() + b.got.size(), total);
  EXPECT_EQ(metric(hub, "meshgate_queue_redelivered_total"), 0);
}

TEST(QueueHubAck, UnpopReturnsUnackedEventsToAnotherConsumerInOrder) {
  QueueHub hub(1, limits());
  FakeSink a, b;
  ASSERT_EQ(pop(hub, a, true), 0);
  ASSERT_EQ(pop(hub, b, true), 0);
  const uint64_t ca = client_served_by(hub, {&a, &b}, &a, 1);
  hub.ack(&a, a.ks());
  forget_probes({&a, &b});
  for (int i = 1; i <= 5; ++i) hub.push(event(ca, i));
  ASSERT_EQ(a.seqs_of(ca), range(1, 6));
  hub.ack(&a, {a.got[0].k});  // only the first is done
  const size_t b_before = b.got.size();
  ASSERT_EQ(hub.unpop(&a), 0);  // a disconnects
  ASSERT_EQ(b.got.size(), b_before + 4);
  EXPECT_EQ(b.seqs_of(ca), range(2, 6));
  for (size_t i = b_before; i < b.got.size(); ++i) {
    EXPECT_TRUE(b.got[i].has_k);
    for (uint64_t old : a.ks()) EXPECT_NE(b.got[i].k, old) << "a redelivered event needs a new sequence number";
  }
  EXPECT_EQ(metric(hub, "meshgate_queue_redelivered_total"), 4);
  // b acknowledges under the new numbers.
  hub.ack(&b, b.ks());
  ASSERT_EQ(hub.unpop(&b), 0);
  EXPECT_EQ(hub.pending_events(), 0u);
}

TEST(QueueHubAck, UnpopWithNobodyElseKeepsUnackedEventsForTheNextConsumerInOrder) {
  QueueHub hub(1, limits());
  FakeSink a;
  ASSERT_EQ(pop(hub, a, true), 0);
  for (int i = 1; i <= 3; ++i) hub.push(event(4, i));
  hub.push(event(5, 50));
  ASSERT_EQ(hub.unpop(&a), 0);
  EXPECT_EQ(hub.pending_events(), 4u);
  hub.push(event(4, 4));  // arrives after: stays behind the returned ones
  FakeSink b;
  ASSERT_EQ(pop(hub, b, true), 0);
  EXPECT_EQ(b.seqs_of(4), range(1, 5));
  EXPECT_EQ(b.seqs_of(5), std::vector<int>{50});
}

TEST(QueueHubAck, UnackedEventsOfSeveralTopicsGoBackToTheirOwnTopics) {
  QueueHub hub(1, limits());
  FakeSink a;
  ASSERT_EQ(pop(hub, a, true, {"x", "y"}), 0);
  hub.push(event(1, 1, "x"));
  hub.push(event(1, 2, "y"));
  hub.push(event(1, 3, "x"));
  ASSERT_EQ(hub.unpop(&a), 0);
  FakeSink bx, by;
  ASSERT_EQ(pop(hub, bx, true, {"x"}), 0);
  ASSERT_EQ(pop(hub, by, true, {"y"}), 0);
  EXPECT_EQ(bx.seqs_of(1), (std::vector<int>{1, 3}));
  EXPECT_EQ(by.seqs_of(1), (std::vector<int>{2}));
}

TEST(QueueHubAck, AckTimeoutRedeliversToAnotherConsumerInOrder) {
  QueueHub hub(1, limits(10000, 16 << 20, 30, 1000));
  hub.set_now(1000);
  FakeSink a, b;
  ASSERT_EQ(pop(hub, a, true), 0);
  ASSERT_EQ(pop(hub, b, true), 0);
  const uint64_t ca = client_served_by(hub, {&a, &b}, &a, 1);
  hub.ack(&a, a.ks());
  hub.ack(&b, b.ks());
  forget_probes({&a, &b});
  for (int i = 1; i <= 3; ++i) hub.push(event(ca, i));
  ASSERT_EQ(a.seqs_of(ca), range(1, 4));
  const size_t b_before = b.got.size();
  hub.tick(1000 + 29999);  // not yet
  EXPECT_EQ(b.got.size(), b_before);
  EXPECT_EQ(a.got.size(), 3u);
  hub.tick(1000 + 30000);  // now
  EXPECT_EQ(b.seqs_of(ca), range(1, 4));
  EXPECT_EQ(a.got.size(), 3u) << "a timed-out event must go to another consumer";
  EXPECT_EQ(metric(hub, "meshgate_queue_redelivered_total"), 3);
}

TEST(QueueHubAck, OnlyTheEventsPastTheirDeadlineAreRedelivered) {
  QueueHub hub(1, limits(10000, 16 << 20, 10, 1000));
  FakeSink a, b;
  ASSERT_EQ(pop(hub, a, true), 0);
  ASSERT_EQ(pop(hub, b, true), 0);
  hub.set_now(0);
  const uint64_t ca = client_served_by(hub, {&a, &b}, &a, 1);
  hub.ack(&a, a.ks());
  hub.ack(&b, b.ks());
  forget_probes({&a, &b});
  hub.push(event(ca, 1));  // deadline 10000
  hub.set_now(5000);
  hub.push(event(ca, 2));  // deadline 15000
  hub.tick(10000);
  EXPECT_EQ(b.seqs_of(ca), std::vector<int>{1});
  hub.tick(15000);
  EXPECT_EQ(b.seqs_of(ca), (std::vector<int>{1, 2}));
}

// ack_timeout is reloaded live (Hub::reload → set_limits). After lowering it, an event delivered
// under the new timeout is redelivered when its own deadline passes, even though an older event
// (delivered under the old timeout) is not due yet: deadlines no longer grow with k.
TEST(QueueHubAck, LoweredAckTimeoutAppliesToEventsDeliveredAfterIt) {
  QueueHub hub(1, limits(10000, 16 << 20, 30, 1000));
  hub.set_now(0);
  FakeSink a, b;
  ASSERT_EQ(pop(hub, a, true), 0);
  ASSERT_EQ(pop(hub, b, true), 0);
  const uint64_t ca = client_served_by(hub, {&a, &b}, &a, 1);
  const uint64_t cb = client_served_by(hub, {&a, &b}, &a, ca + 1);
  hub.ack(&a, a.ks());
  hub.ack(&b, b.ks());
  forget_probes({&a, &b});
  hub.push(event(ca, 1));  // deadline 30000
  hub.set_limits(limits(10000, 16 << 20, 5, 1000));
  hub.set_now(1000);
  hub.push(event(cb, 2));  // deadline 6000
  hub.tick(7000);
  EXPECT_EQ(b.seqs_of(cb), std::vector<int>{2}) << "past its 5 s deadline, the event must go to b";
  EXPECT_TRUE(b.seqs_of(ca).empty());
}

TEST(QueueHubAck, AckBeforeTheDeadlinePreventsRedelivery) {
  QueueHub hub(1, limits(10000, 16 << 20, 30, 1000));
  hub.set_now(0);
  FakeSink a, b;
  ASSERT_EQ(pop(hub, a, true), 0);
  ASSERT_EQ(pop(hub, b, true), 0);
  for (int cl = 1; cl <= 10; ++cl) hub.push(event(static_cast<uint64_t>(cl), cl));
  const size_t total = a.got.size() + b.got.size();
  hub.tick(29000);
  hub.ack(&a, a.ks());
  hub.ack(&b, b.ks());
  hub.tick(31000);
  EXPECT_EQ(a.got.size() + b.got.size(), total);
}

TEST(QueueHubAck, TimedOutEventsWithASingleConsumerComeBackToIt) {
  // At-least-once: with nobody else, the same consumer gets the event again.
  QueueHub hub(1, limits(10000, 16 << 20, 30, 1000));
  hub.set_now(0);
  FakeSink a;
  ASSERT_EQ(pop(hub, a, true), 0);
  hub.push(event(1, 1));
  hub.push(event(1, 2));
  hub.tick(30000);
  ASSERT_EQ(a.got.size(), 4u);
  EXPECT_EQ(a.seqs_of(1), (std::vector<int>{1, 2, 1, 2}));
  EXPECT_GT(a.got[2].k, a.got[1].k);
}

TEST(QueueHubAck, TimedOutEventsWaitForANotReadyOtherConsumerInOrder) {
  QueueHub hub(1, limits(10000, 16 << 20, 30, 1000));
  hub.set_now(0);
  FakeSink a, b;
  ASSERT_EQ(pop(hub, a, true), 0);
  ASSERT_EQ(pop(hub, b, true), 0);
  const uint64_t ca = client_served_by(hub, {&a, &b}, &a, 1);
  hub.ack(&a, a.ks());
  hub.ack(&b, b.ks());
  forget_probes({&a, &b});
  hub.push(event(ca, 1));
  hub.push(event(ca, 2));
  b.ready = false;
  hub.tick(30000);
  EXPECT_TRUE(b.got.empty());
  EXPECT_EQ(hub.pending_events(), 2u);
  b.ready = true;
  hub.sink_ready(&b);
  EXPECT_EQ(b.seqs_of(ca), (std::vector<int>{1, 2}));
}

TEST(QueueHubAck, ConsumerLeavingAfterATimeoutLeavesNoDanglingExclusion) {
  QueueHub hub(1, limits(10000, 16 << 20, 30, 1000));
  hub.set_now(0);
  FakeSink a, b;
  ASSERT_EQ(pop(hub, a, true), 0);
  ASSERT_EQ(pop(hub, b, true), 0);
  const uint64_t ca = client_served_by(hub, {&a, &b}, &a, 1);
  hub.ack(&a, a.ks());
  hub.ack(&b, b.ks());
  forget_probes({&a, &b});
  hub.push(event(ca, 1));
  b.ready = false;
  hub.tick(30000);  // waits for b, excluding a
  ASSERT_EQ(hub.unpop(&a), 0);
  ASSERT_EQ(hub.unpop(&b), 0);
  FakeSink c;
  ASSERT_EQ(pop(hub, c, true), 0);
  EXPECT_EQ(c.seqs_of(ca), std::vector<int>{1});
}

TEST(QueueHubAck, NonAckConsumerIsNeverLimitedByMaxUnacked) {
  QueueHub hub(1, limits(10000, 16 << 20, 30, 2));
  FakeSink s;
  ASSERT_EQ(pop(hub, s, false), 0);
  for (int i = 0; i < 10; ++i) hub.push(event(1, i));
  EXPECT_EQ(s.got.size(), 10u);
  hub.tick(1000000);
  EXPECT_EQ(s.got.size(), 10u);  // nothing to redeliver either
}

// ---------------------------------------------------------------------------------------------
// Poison events: invalid text dropped at the door, failed deliveries bounded (issue 18)

long long discarded(const QueueHub& hub, const std::string& reason) {
  const std::string text = hub.render_metrics();
  const std::string prefix = "\nmeshgate_queue_discarded_total{reason=\"" + reason + "\"} ";
  const size_t at = text.find(prefix);
  if (at == std::string::npos) return -1;
  return std::stoll(text.substr(at + prefix.size()));
}

TEST(QueueHubPoison, TextThatIsNotUtf8IsDroppedAndCountedAndTheNextEventGoesThrough) {
  QueueHub hub(1, limits());
  FakeSink s;
  ASSERT_EQ(pop(hub, s, true), 0);
  QueueEvent bad_data = event(1, 1);
  bad_data.data = "{\"seq\":1,\"s\":\"\xff\"}";
  hub.push(bad_data);
  hub.push(event(1, 2, "client", "{\"uid\":\"\xc3\x28\"}"));  // the context
  const std::string topic = "client";
  const std::string data = "\"\xed\xa0\x80\"";  // a UTF-16 surrogate, borrowed
  hub.push(mg::QueueEventRef{&topic, 1, data, ""});
  EXPECT_TRUE(s.got.empty()) << s.raw[0];
  hub.push(event(1, 3));
  EXPECT_EQ(s.seqs_of(1), std::vector<int>{3});
  EXPECT_EQ(discarded(hub, "invalid_text"), 3);
  EXPECT_EQ(discarded(hub, "max_deliveries"), 0);
  EXPECT_EQ(hub.pending_events(), 0u);
}

TEST(QueueHubPoison, AnEventWhoseConsumersKeepLeavingIsDroppedAtMaxDeliveriesAndTheNextGoesOn) {
  QueueLimits l = limits();
  l.max_deliveries = 3;
  QueueHub hub(1, l);
  FakeSink first;
  ASSERT_EQ(pop(hub, first, true), 0);
  hub.push(event(1, 1));  // the poison: each consumer leaves while holding it
  hub.push(event(1, 2));  // behind it: given again each time, never charged
  ASSERT_EQ(first.seqs_of(1), (std::vector<int>{1, 2}));
  ASSERT_EQ(hub.unpop(&first), 0);
  for (int attempt = 2; attempt <= 3; ++attempt) {
    FakeSink next;
    ASSERT_EQ(pop(hub, next, true), 0);
    ASSERT_EQ(next.seqs_of(1), (std::vector<int>{1, 2})) << "delivery " << attempt;
    ASSERT_EQ(hub.unpop(&next), 0);
  }
  FakeSink last;
  ASSERT_EQ(pop(hub, last, true), 0);
  EXPECT_EQ(last.seqs_of(1), std::vector<int>{2});
  EXPECT_EQ(discarded(hub, "max_deliveries"), 1);
  hub.ack(&last, last.ks());
  EXPECT_EQ(hub.held_events(), 0u);
}

TEST(QueueHubPoison, EachTimedOutAcknowledgementCountsAsAFailedDelivery) {
  QueueLimits l = limits(10000, 16 << 20, 10, 1000);
  l.max_deliveries = 2;
  QueueHub hub(1, l);
  hub.set_now(1);
  FakeSink s;
  ASSERT_EQ(pop(hub, s, true), 0);
  hub.push(event(1, 1));
  hub.push(event(2, 1));
  hub.tick(10001);  // first failure of both: given again
  EXPECT_EQ(s.got.size(), 4u);
  hub.tick(20001);  // second failure of both: dropped
  EXPECT_EQ(s.got.size(), 4u);
  EXPECT_EQ(discarded(hub, "max_deliveries"), 2);
  EXPECT_EQ(hub.held_events(), 0u);
}

}  // namespace
