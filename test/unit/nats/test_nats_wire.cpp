// The NATS backbone's subjects and bodies (src/nats/nats_wire.h): what one node writes, another
// reads back the same; what is not a heartbeat or a reply is refused, never half read.
#include "nats/nats_wire.h"

#include <gtest/gtest.h>

#include <cstring>

namespace mg {
namespace {

TEST(NatsWire, SubjectsAreTokensWhateverTheNames) {
  EXPECT_EQ(nats_prefix("prod-eu_1"), "mg.prod-eu_1");
  // A name with a dot, a wildcard or a space would split or widen the subject: hex instead.
  EXPECT_EQ(nats_prefix("a.b"), "mg.x612e62");
  EXPECT_EQ(nats_prefix("*"), "mg.x2a");
  EXPECT_EQ(nats_node_subject("mg.c", 17, "call"), "mg.c.n.17.call");
  EXPECT_EQ(nats_channel_subject("mg.c", "news.>"), "mg.c.ch.6e6577732e3e");
  EXPECT_EQ(nats_channel_subject("mg.c", std::string("\xff\x00 ", 3)), "mg.c.ch.ff0020");
  EXPECT_NE(nats_channel_subject("mg.c", "ab"), nats_channel_subject("mg.c", "AB"));
}

TEST(NatsWire, BeatRoundTrip) {
  NatsBeat b;
  b.info.node_id = 1023;
  b.info.weight = 2.5;
  b.info.connections = 123456789012;
  b.info.external = {"h:1", "ws://h:2/", "wss://h:3/"};
  b.info.intranet = {"10.0.0.1:1", "", ""};
  b.name = "edge \"7\"\n";
  b.instance = (1ull << 53) - 1;
  b.topics = {"events", "t\xc3\xa9"};
  NatsBeat out;
  std::string s = nats_encode(b);
  ASSERT_TRUE(nats_decode(s.data(), s.size(), out)) << s;
  EXPECT_EQ(out.info.node_id, 1023u);
  EXPECT_DOUBLE_EQ(out.info.weight, 2.5);
  EXPECT_EQ(out.info.connections, 123456789012u);
  EXPECT_EQ(out.info.external.wss, "wss://h:3/");
  EXPECT_EQ(out.info.intranet.tcp, "10.0.0.1:1");
  EXPECT_EQ(out.name, b.name);
  EXPECT_EQ(out.instance, b.instance);
  EXPECT_EQ(out.topics, b.topics);
  EXPECT_FALSE(out.left);
  b.left = true;
  s = nats_encode(b);
  ASSERT_TRUE(nats_decode(s.data(), s.size(), out));
  EXPECT_TRUE(out.left);
}

TEST(NatsWire, BeatRefusesWhatIsNotOne) {
  NatsBeat out;
  for (const char* bad : {"", "null", "[]", "{}", "{\"i\":0,\"inst\":1}", "{\"i\":1024,\"inst\":1}",
                          "{\"i\":1,\"inst\":-1}", "{\"i\":\"1\",\"inst\":1}", "{\"i\":1,\"conns\":1.5}",
                          "{\"i\":1,\"inst\":1", "{\"i\":1,\"i\":2}"}) {
    EXPECT_FALSE(nats_decode(bad, std::strlen(bad), out)) << bad;
  }
  // Topics that are not non-empty strings are skipped, the beat kept.
  const char* odd = "{\"i\":5,\"inst\":9,\"t\":[\"a\",1,\"\",null,\"b\"]}";
  ASSERT_TRUE(nats_decode(odd, std::strlen(odd), out));
  EXPECT_EQ(out.topics, (std::vector<std::string>{"a", "b"}));
}

TEST(NatsWire, ReplyNamesItsNode) {
  MeshReply r{42, 0, "", "{\"s\":3,\"f\":0}"};
  std::string s = nats_reply_body(7, r);
  unsigned node = 0;
  MeshReply out;
  ASSERT_TRUE(nats_read_reply(s.data(), s.size(), node, out)) << s;
  EXPECT_EQ(node, 7u);
  EXPECT_EQ(out.seq, 42u);
  EXPECT_EQ(out.code, 0);
  EXPECT_EQ(out.result, r.result);
  MeshReply err{1, 501, "node 3 is draining", "null"};
  s = nats_reply_body(1023, err);
  ASSERT_TRUE(nats_read_reply(s.data(), s.size(), node, out));
  EXPECT_EQ(node, 1023u);
  EXPECT_EQ(out.code, 501);
  EXPECT_EQ(out.message, "node 3 is draining");
  for (const char* bad : {"", " {}", "7", "7{}", "0 {\"k\":1,\"c\":0}", "1024 {\"k\":1,\"c\":0}",
                          "123456 {\"k\":1}", "7 not json", "x7 {\"k\":1}"}) {
    EXPECT_FALSE(nats_read_reply(bad, std::strlen(bad), node, out)) << bad;
  }
}

}  // namespace
}  // namespace mg
