// Unit tests for the mesh wire format (mesh/mesh_wire.h, docs/mesh-protocol.md): MeshFrameDecoder
// however the bytes are split, its bounds (zero length, over kMeshMaxFrame, unknown type), stop()
// from inside the callback, mesh_frame round trips, the field readers, every frame body's
// mesh_encode/mesh_decode (round trips, fallbacks, wrong kinds and out-of-range numbers, bounded
// lists), mesh_nonce, and a seeded fuzz run checked against a whole-buffer reference parse.
#include "mesh/mesh_wire.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/base64.h"
#include "queue/queue_event.h"

namespace {

using mg::kMeshMaxFrame;
using mg::mesh_frame;
using mg::mesh_nonce;
using mg::MeshFrameDecoder;
using mg::MeshType;
using Status = MeshFrameDecoder::Status;

struct Frame {
  MeshType type;
  std::string body;
  bool operator==(const Frame& o) const { return type == o.type && body == o.body; }
};
using Frames = std::vector<Frame>;

std::ostream& operator<<(std::ostream& os, const Frame& f) {
  return os << mg::mesh_type_name(f.type) << "(" << f.body.size() << " bytes)";
}

std::string be32(uint32_t n) {
  std::string s(4, '\0');
  s[0] = static_cast<char>(n >> 24);
  s[1] = static_cast<char>(n >> 16);
  s[2] = static_cast<char>(n >> 8);
  s[3] = static_cast<char>(n);
  return s;
}

Status feed(MeshFrameDecoder& d, const std::string& bytes, Frames& out) {
  return d.feed(bytes.data(), bytes.size(),
                [&](MeshType t, const char* p, size_t n) { out.push_back(Frame{t, std::string(p, n)}); });
}

// Feeds `bytes` one byte per call; returns the first non-Ok status.
Status feed_bytewise(MeshFrameDecoder& d, const std::string& bytes, Frames& out) {
  for (char c : bytes) {
    std::string one(1, c);
    Status s = feed(d, one, out);
    if (s != Status::Ok) return s;
  }
  return Status::Ok;
}

// A few frames of every type, including an empty body and a body with NULs and high bytes.
Frames sample_frames() {
  Frames fs;
  fs.push_back({MeshType::Hello, R"({"v":1,"cluster":"c","id":2,"nonce":"AAAAAAAAAAAAAAAAAAAAAA=="})"});
  fs.push_back({MeshType::Auth, R"({"mac":"K24o568eIBgIHpgJCukzpvZtVkDcq0qfV+X6pqXuggw="})"});
  fs.push_back({MeshType::Refuse, ""});
  fs.push_back({MeshType::Members, R"({"m":[{"i":1,"n":5,"s":0,"a":{"mesh":"10.0.0.1:7000"}}]})"});
  fs.push_back({MeshType::Ping, R"({"k":123,"c":4,"u":[]})"});
  fs.push_back({MeshType::Ack, R"({"k":123,"c":4,"u":[]})"});
  fs.push_back({MeshType::PingReq, R"({"k":7,"target":3,"u":[]})"});
  fs.push_back({MeshType::Call, std::string("{\"k\":1}\0\xff\x80", 10)});
  fs.push_back({MeshType::Reply, std::string(300, 'r')});
  fs.push_back({MeshType::Topics, R"({"t":["client"]})"});
  fs.push_back({MeshType::Event, std::string(70000, 'e')});  // longer than 16 bits of length
  fs.push_back({MeshType::Done, R"({"f":7})"});
  fs.push_back({MeshType::Interest, R"({"k":1,"full":true,"a":["room:1"]})"});
  fs.push_back({MeshType::InterestAck, R"({"k":1})"});
  return fs;
}

std::string encode(const Frames& fs) {
  std::string s;
  for (const Frame& f : fs) s += mesh_frame(f.type, f.body);
  return s;
}

// --- mesh_frame ---

TEST(MeshFrame, Layout) {
  std::string f = mesh_frame(MeshType::Ping, "{}");
  ASSERT_EQ(f.size(), 7u);
  EXPECT_EQ(f.substr(0, 4), be32(3));  // type + body
  EXPECT_EQ(static_cast<uint8_t>(f[4]), 5u);
  EXPECT_EQ(f.substr(5), "{}");
  std::string empty = mesh_frame(MeshType::Refuse, "");
  EXPECT_EQ(empty, be32(1) + std::string(1, '\x03'));
}

TEST(MeshFrame, TypeNames) {
  EXPECT_STREQ(mg::mesh_type_name(MeshType::Hello), "HELLO");
  EXPECT_STREQ(mg::mesh_type_name(MeshType::Event), "EVENT");
  EXPECT_STREQ(mg::mesh_type_name(static_cast<MeshType>(0)), "?");
  EXPECT_STREQ(mg::mesh_type_name(MeshType::Interest), "INTEREST");
  EXPECT_STREQ(mg::mesh_type_name(MeshType::InterestAck), "INTEREST_ACK");
  EXPECT_STREQ(mg::mesh_type_name(MeshType::PingReq), "PING_REQ");
  EXPECT_STREQ(mg::mesh_type_name(MeshType::Ack), "ACK");
  EXPECT_STREQ(mg::mesh_type_name(static_cast<MeshType>(15)), "?");
}

TEST(MeshFrame, RoundTripEveryType) {
  Frames fs = sample_frames();
  for (const Frame& f : fs) {
    MeshFrameDecoder d;
    Frames out;
    ASSERT_EQ(feed(d, mesh_frame(f.type, f.body), out), Status::Ok);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], f);
  }
}

// --- decoder: splitting ---

TEST(MeshDecoder, ManyFramesInOneChunk) {
  Frames fs = sample_frames();
  MeshFrameDecoder d;
  Frames out;
  ASSERT_EQ(feed(d, encode(fs), out), Status::Ok);
  EXPECT_EQ(out, fs);
}

TEST(MeshDecoder, ByteByByte) {
  Frames fs = sample_frames();
  MeshFrameDecoder d;
  Frames out;
  ASSERT_EQ(feed_bytewise(d, encode(fs), out), Status::Ok);
  EXPECT_EQ(out, fs);
}

TEST(MeshDecoder, NothingUntilComplete) {
  std::string f = mesh_frame(MeshType::Call, "{\"k\":1}");
  MeshFrameDecoder d;
  Frames out;
  for (size_t i = 0; i + 1 < f.size(); i++) {
    ASSERT_EQ(feed(d, f.substr(i, 1), out), Status::Ok);
    EXPECT_TRUE(out.empty()) << "after " << i + 1 << " bytes";
  }
  ASSERT_EQ(feed(d, f.substr(f.size() - 1), out), Status::Ok);
  ASSERT_EQ(out.size(), 1u);
}

// One frame split into two chunks at every point (in the length, at the type byte, in the body),
// with a whole frame before it in the first chunk and after it in the second.
TEST(MeshDecoder, SplitAtEveryPoint) {
  const Frame before{MeshType::Ping, R"({"k":1,"c":0})"};
  const Frame mid{MeshType::Call, R"({"k":7,"m":"conn.info","p":{"c":"42"}})"};
  const Frame after{MeshType::Ack, R"({"k":1})"};
  const std::string a = mesh_frame(before.type, before.body);
  const std::string m = mesh_frame(mid.type, mid.body);
  const std::string z = mesh_frame(after.type, after.body);
  for (size_t cut = 0; cut <= m.size(); cut++) {
    MeshFrameDecoder d;
    Frames out;
    ASSERT_EQ(feed(d, a + m.substr(0, cut), out), Status::Ok) << "cut " << cut;
    ASSERT_EQ(out.size(), cut == m.size() ? 2u : 1u) << "cut " << cut;
    ASSERT_EQ(feed(d, m.substr(cut) + z, out), Status::Ok) << "cut " << cut;
    EXPECT_EQ(out, (Frames{before, mid, after})) << "cut " << cut;
  }
}

// Three-way splits of a stream of frames: every pair of cut points.
TEST(MeshDecoder, SplitInThreeAtEveryPair) {
  Frames fs{{MeshType::Hello, "{\"v\":1}"}, {MeshType::Auth, ""}, {MeshType::Topics, "{\"t\":[\"a\",\"b\"]}"}};
  const std::string s = encode(fs);
  for (size_t i = 0; i <= s.size(); i++) {
    for (size_t j = i; j <= s.size(); j++) {
      MeshFrameDecoder d;
      Frames out;
      ASSERT_EQ(feed(d, s.substr(0, i), out), Status::Ok);
      ASSERT_EQ(feed(d, s.substr(i, j - i), out), Status::Ok);
      ASSERT_EQ(feed(d, s.substr(j), out), Status::Ok);
      ASSERT_EQ(out, fs) << "cuts " << i << "," << j;
    }
  }
}

TEST(MeshDecoder, EmptyFeedIsHarmless) {
  MeshFrameDecoder d;
  Frames out;
  EXPECT_EQ(d.feed(nullptr, 0, [&](MeshType, const char*, size_t) { out.push_back({}); }), Status::Ok);
  std::string f = mesh_frame(MeshType::Ping, "{}");
  ASSERT_EQ(feed(d, f.substr(0, 3), out), Status::Ok);
  EXPECT_EQ(feed(d, "", out), Status::Ok);
  ASSERT_EQ(feed(d, f.substr(3), out), Status::Ok);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].body, "{}");
}

// --- decoder: bounds ---

TEST(MeshDecoder, ZeroLengthIsTooLarge) {
  std::string bad = be32(0) + std::string(1, '\x05');
  {
    MeshFrameDecoder d;
    Frames out;
    EXPECT_EQ(feed(d, bad, out), Status::TooLarge);
  }
  {  // after a good frame in the same chunk: the good frame is delivered first
    MeshFrameDecoder d;
    Frames out;
    EXPECT_EQ(feed(d, mesh_frame(MeshType::Ping, "{}") + bad, out), Status::TooLarge);
    EXPECT_EQ(out.size(), 1u);
  }
  {  // byte by byte
    MeshFrameDecoder d;
    Frames out;
    EXPECT_EQ(feed_bytewise(d, bad, out), Status::TooLarge);
    EXPECT_TRUE(out.empty());
  }
}

// A zero length is judged once the type byte is there too (a frame header is 5 bytes): with only the
// 4 length bytes the decoder waits, and the next byte, whatever it is, is the error.
TEST(MeshDecoder, ZeroLengthDetectedWithTheFifthByte) {
  MeshFrameDecoder d;
  Frames out;
  EXPECT_EQ(feed(d, be32(0), out), Status::Ok);
  EXPECT_EQ(feed(d, std::string(1, '\x01'), out), Status::TooLarge);
  EXPECT_TRUE(out.empty());
}

TEST(MeshDecoder, MaxFrameIsAccepted) {
  // Exactly kMeshMaxFrame (type + body) is allowed: the decoder waits for the body.
  MeshFrameDecoder d;
  Frames out;
  EXPECT_EQ(feed(d, be32(kMeshMaxFrame) + std::string(1, '\x0a') + "abc", out), Status::Ok);
  EXPECT_TRUE(out.empty());
}

TEST(MeshDecoder, MaxFrameDelivered) {
  std::string body(kMeshMaxFrame - 1, 'x');
  std::string f = mesh_frame(MeshType::Event, body);
  MeshFrameDecoder d;
  size_t got = 0, frames = 0;
  auto cb = [&](MeshType t, const char*, size_t n) {
    EXPECT_EQ(t, MeshType::Event);
    got = n;
    frames++;
  };
  // In three chunks, so the partial buffer path carries it.
  ASSERT_EQ(d.feed(f.data(), 1000, cb), Status::Ok);
  ASSERT_EQ(d.feed(f.data() + 1000, f.size() - 2000, cb), Status::Ok);
  ASSERT_EQ(d.feed(f.data() + f.size() - 1000, 1000, cb), Status::Ok);
  EXPECT_EQ(frames, 1u);
  EXPECT_EQ(got, body.size());
}

TEST(MeshDecoder, OverMaxIsTooLarge) {
  for (uint32_t n : {kMeshMaxFrame + 1, kMeshMaxFrame * 2, 0x7fffffffu, 0xffffffffu}) {
    {  // with the type byte and some body
      MeshFrameDecoder d;
      Frames out;
      EXPECT_EQ(feed(d, be32(n) + std::string(1, '\x07') + "xyz", out), Status::TooLarge) << n;
    }
    {  // only the 4 length bytes, in one chunk
      MeshFrameDecoder d;
      Frames out;
      EXPECT_EQ(feed(d, be32(n), out), Status::TooLarge) << n;
    }
    {  // only the 4 length bytes, one at a time: the error comes with the 4th
      MeshFrameDecoder d;
      Frames out;
      std::string h = be32(n);
      for (int i = 0; i < 3; i++) ASSERT_EQ(feed(d, h.substr(i, 1), out), Status::Ok) << n << " byte " << i;
      EXPECT_EQ(feed(d, h.substr(3, 1), out), Status::TooLarge) << n;
    }
    {  // the 4 length bytes after a whole frame in the same chunk
      MeshFrameDecoder d;
      Frames out;
      EXPECT_EQ(feed(d, mesh_frame(MeshType::Ack, "{}") + be32(n), out), Status::TooLarge) << n;
      EXPECT_EQ(out.size(), 1u);
    }
    {  // the 4 length bytes completing a partial header held from the last feed
      MeshFrameDecoder d;
      Frames out;
      std::string s = mesh_frame(MeshType::Ack, "{}") + be32(n);
      ASSERT_EQ(feed(d, s.substr(0, s.size() - 2), out), Status::Ok);
      EXPECT_EQ(feed(d, s.substr(s.size() - 2), out), Status::TooLarge) << n;
    }
  }
}

TEST(MeshDecoder, UnknownTypeIsBadType) {
  for (int t : {0, 15, 16, 0x7f, 0x80, 0xff}) {
    std::string f = be32(3) + std::string(1, static_cast<char>(t)) + "{}";
    {
      MeshFrameDecoder d;
      Frames out;
      EXPECT_EQ(feed(d, f, out), Status::BadType) << t;
      EXPECT_TRUE(out.empty());
    }
    {  // judged as soon as the type byte arrives, before the body
      MeshFrameDecoder d;
      Frames out;
      ASSERT_EQ(feed(d, f.substr(0, 4), out), Status::Ok) << t;
      EXPECT_EQ(feed(d, f.substr(4, 1), out), Status::BadType) << t;
    }
    {  // after good frames, which are delivered
      MeshFrameDecoder d;
      Frames out;
      EXPECT_EQ(feed(d, encode(sample_frames()) + f, out), Status::BadType) << t;
      EXPECT_EQ(out, sample_frames());
    }
  }
  for (int t = 1; t <= 14; t++) {
    MeshFrameDecoder d;
    Frames out;
    EXPECT_EQ(feed(d, be32(1) + std::string(1, static_cast<char>(t)), out), Status::Ok) << t;
    EXPECT_EQ(out.size(), 1u) << t;
  }
}

// --- decoder: stop() ---

TEST(MeshDecoder, StopEndsDeliveryInOneChunk) {
  std::string s = encode(sample_frames());
  MeshFrameDecoder d;
  int n = 0;
  Status st = d.feed(s.data(), s.size(), [&](MeshType, const char*, size_t) {
    if (++n == 2) d.stop();
  });
  EXPECT_EQ(st, Status::Ok);
  EXPECT_EQ(n, 2);
  // Later input is ignored too.
  st = d.feed(s.data(), s.size(), [&](MeshType, const char*, size_t) { n++; });
  EXPECT_EQ(st, Status::Ok);
  EXPECT_EQ(n, 2);
}

TEST(MeshDecoder, StopEndsDeliveryFromPartialBuffer) {
  std::string s = encode(sample_frames());
  MeshFrameDecoder d;
  int n = 0;
  auto cb = [&](MeshType, const char*, size_t) {
    if (++n == 3) d.stop();
  };
  ASSERT_EQ(d.feed(s.data(), 3, cb), Status::Ok);  // partial header held
  EXPECT_EQ(d.feed(s.data() + 3, s.size() - 3, cb), Status::Ok);
  EXPECT_EQ(n, 3);
  EXPECT_EQ(d.feed(s.data(), s.size(), cb), Status::Ok);
  EXPECT_EQ(n, 3);
}

TEST(MeshDecoder, StopByteByByte) {
  std::string s = encode(sample_frames());
  MeshFrameDecoder d;
  int n = 0;
  for (char c : s)
    ASSERT_EQ(d.feed(&c, 1, [&](MeshType, const char*, size_t) {
      n++;
      d.stop();
    }), Status::Ok);
  EXPECT_EQ(n, 1);
}

// After stop() "the rest of the input is ignored" (mesh_wire.h) — also a bad header behind it.
// BUG: MeshFrameDecoder::frames() checks the next 4 bytes for a length over kMeshMaxFrame after its
// loop even when stopped_, so feed() returns TooLarge for input it was told to ignore (MeshLink then
// logs a spurious "frame too large" for a link that is already closing). A zero length or bad type
// after stop() is correctly ignored (those checks are inside the loop).
TEST(MeshDecoder, StopIgnoresAnOversizedHeaderBehindIt) {
  std::string s = mesh_frame(MeshType::Refuse, "{\"reason\":\"x\"}") + be32(0xffffffffu) + "junk";
  MeshFrameDecoder d;
  int n = 0;
  EXPECT_EQ(d.feed(s.data(), s.size(), [&](MeshType, const char*, size_t) {
    n++;
    d.stop();
  }), Status::Ok);
  EXPECT_EQ(n, 1);
}

TEST(MeshDecoder, StopIgnoresOtherBadInputBehindIt) {
  for (const std::string& bad : {be32(0) + "\x01", be32(3) + "\xee{}"}) {
    std::string s = mesh_frame(MeshType::Refuse, "{}") + bad;
    MeshFrameDecoder d;
    int n = 0;
    EXPECT_EQ(d.feed(s.data(), s.size(), [&](MeshType, const char*, size_t) {
      n++;
      d.stop();
    }), Status::Ok);
    EXPECT_EQ(n, 1);
  }
}

// --- frame bodies ---

template <typename T>
bool decode(const std::string& body, T& out) {
  return mg::mesh_decode(body.data(), body.size(), out);
}

// Bodies every decoder refuses: not JSON, not strict JSON, not an object.
const std::vector<std::string>& not_objects() {
  static const std::vector<std::string> v = {"",       "{",        "[]",           "\"x\"",        "1",
                                             "null",   "{} x",     "{\"t\":01}",   "{\"t\":1,\"t\":2}",
                                             "{\"a\":\"\\u0000\"}", std::string("{\"a\":\"\xff\"}")};
  return v;
}

template <typename T>
void expect_refuses_non_objects() {
  for (const std::string& b : not_objects()) {
    T out;
    EXPECT_FALSE(decode(b, out)) << b;
    EXPECT_FALSE(mg::mesh_body_is_object(b.data(), b.size())) << b;
  }
}

TEST(MeshBody, EveryDecoderRefusesWhatIsNotAnObject) {
  expect_refuses_non_objects<mg::MeshHello>();
  expect_refuses_non_objects<mg::MeshAuth>();
  expect_refuses_non_objects<mg::MeshRefuse>();
  expect_refuses_non_objects<mg::MeshMembers>();
  expect_refuses_non_objects<mg::MeshPing>();
  expect_refuses_non_objects<mg::MeshAck>();
  expect_refuses_non_objects<mg::MeshPingReq>();
  expect_refuses_non_objects<mg::MeshCall>();
  expect_refuses_non_objects<mg::MeshReply>();
  expect_refuses_non_objects<mg::MeshTopics>();
  expect_refuses_non_objects<mg::MeshEvent>();
  expect_refuses_non_objects<mg::MeshDone>();
  expect_refuses_non_objects<mg::MeshInterest>();
  expect_refuses_non_objects<mg::MeshInterestAck>();
  EXPECT_TRUE(mg::mesh_body_is_object("{}", 2));
}

mg::MeshHello sample_hello() {
  mg::MeshHello h;
  h.version = 2;
  h.cluster = "prod \"eu\"";
  h.id = 1023;
  h.name = "n\u00e9ud-1";
  h.nonce = "AAAAAAAAAAAAAAAAAAAAAA==";
  h.has_enc = true;
  h.enc = true;
  h.mesh = "[::1]:7000";
  h.weight = 2.5;
  h.conns = 9007199254740991u;
  h.ext = {"10.0.0.1:5100", "ws://a:5200", "wss://a:5300"};
  h.intranet = {"192.168.0.1:5100", "", ""};
  return h;
}

void expect_same(const mg::NodeAddresses& a, const mg::NodeAddresses& b) {
  EXPECT_EQ(a.tcp, b.tcp);
  EXPECT_EQ(a.ws, b.ws);
  EXPECT_EQ(a.wss, b.wss);
}

TEST(MeshBody, HelloWireBytes) {
  EXPECT_EQ(mg::mesh_encode(sample_hello()),
            R"({"v":2,"cluster":"prod \"eu\"","id":1023,"name":"néud-1","nonce":"AAAAAAAAAAAAAAAAAAAAAA==",)"
            R"("enc":true,"mesh":"[::1]:7000","weight":2.5,"conns":9007199254740991,)"
            R"("ext":{"tcp":"10.0.0.1:5100","ws":"ws://a:5200","wss":"wss://a:5300"},)"
            R"("int":{"tcp":"192.168.0.1:5100","ws":"","wss":""},"inc":0})");
}

TEST(MeshBody, HelloRoundTrip) {
  mg::MeshHello in = sample_hello(), out;
  ASSERT_TRUE(decode(mg::mesh_encode(in), out));
  EXPECT_EQ(out.version, 2u);
  EXPECT_EQ(out.cluster, in.cluster);
  EXPECT_EQ(out.id, 1023u);
  EXPECT_EQ(out.name, in.name);
  EXPECT_EQ(out.nonce, in.nonce);
  EXPECT_TRUE(out.has_enc);
  EXPECT_TRUE(out.enc);
  EXPECT_EQ(out.mesh, in.mesh);
  EXPECT_EQ(out.weight, 2.5);
  EXPECT_EQ(out.conns, in.conns);
  expect_same(out.ext, in.ext);
  expect_same(out.intranet, in.intranet);
  in.has_enc = false;  // written without "enc": read back as absent
  ASSERT_TRUE(decode(mg::mesh_encode(in), out));
  EXPECT_FALSE(out.has_enc);
}

TEST(MeshBody, HelloFallbacks) {
  mg::MeshHello h;
  ASSERT_TRUE(decode("{}", h));
  EXPECT_EQ(h.version, 0u);
  EXPECT_EQ(h.id, 0u);
  EXPECT_EQ(h.cluster, "");
  EXPECT_EQ(h.nonce, "");
  EXPECT_FALSE(h.has_enc);
  EXPECT_EQ(h.weight, 1);
  EXPECT_EQ(h.conns, 0u);
  expect_same(h.ext, {});
  // Wrong kinds of the fields the mesh judges itself read as their fallbacks.
  ASSERT_TRUE(decode(R"({"v":2,"id":1024,"cluster":7,"enc":"yes","conns":-1,"weight":1e7,"ext":"x","int":{"tcp":3}})", h));
  EXPECT_EQ(h.id, 0u);
  EXPECT_EQ(h.cluster, "");
  EXPECT_FALSE(h.has_enc);
  EXPECT_EQ(h.conns, 0u);
  EXPECT_EQ(h.weight, 1);
  expect_same(h.ext, {});
  expect_same(h.intranet, {});
  for (const char* w : {"0", "-1", "\"2\"", "null", "1000001"}) {
    ASSERT_TRUE(decode(std::string(R"({"v":2,"weight":)") + w + "}", h)) << w;
    EXPECT_EQ(h.weight, 1) << w;
  }
  for (const char* id : {"0", "-1", "1.5", "\"5\"", "1e300"}) {
    ASSERT_TRUE(decode(std::string(R"({"v":2,"id":)") + id + "}", h)) << id;
    EXPECT_EQ(h.id, 0u) << id;
  }
}

TEST(MeshBody, HelloVersionMustBeANumber) {
  mg::MeshHello h;
  for (const char* v : {"-1", "1.5", "\"2\"", "true", "1073741825", "1e300", "null"})
    EXPECT_FALSE(decode(std::string(R"({"v":)") + v + "}", h)) << v;
  ASSERT_TRUE(decode(R"({"v":1073741824})", h));
  EXPECT_EQ(h.version, 1u << 30);
}

TEST(MeshBody, AuthAndRefuse) {
  mg::MeshAuth a;
  EXPECT_EQ(mg::mesh_encode(mg::MeshAuth{"K24o+/="}), R"({"mac":"K24o+/="})");
  ASSERT_TRUE(decode(mg::mesh_encode(mg::MeshAuth{"K24o+/="}), a));
  EXPECT_EQ(a.mac, "K24o+/=");
  ASSERT_TRUE(decode(R"({"mac":5})", a));
  EXPECT_EQ(a.mac, "");
  mg::MeshRefuse r;
  std::string reason = "cluster name \"x\" does not match\n";
  ASSERT_TRUE(decode(mg::mesh_encode(mg::MeshRefuse{reason}), r));
  EXPECT_EQ(r.reason, reason);
  ASSERT_TRUE(decode("{}", r));
  EXPECT_EQ(r.reason, "");
}

mg::SwimUpdate sample_alive() {
  mg::SwimUpdate u{1023, 1765000000000u, mg::SwimState::Alive, false, true, {}};
  u.info.name = "n\u00e9ud";
  u.info.mesh_addr = "[::1]:7001";
  u.info.weight = 2.5;
  u.info.conns = 7;
  u.info.ext = {"10.0.0.1:5100", "ws://a:5200", ""};
  return u;
}

TEST(MeshBody, MembersRoundTrip) {
  mg::MeshMembers in, out;
  EXPECT_EQ(mg::mesh_encode(in), R"({"m":[]})");
  in.members = {sample_alive(), {5, 9, mg::SwimState::Dead, true, false, {}}, {6, 2, mg::SwimState::Suspect, false, false, {}}};
  EXPECT_EQ(mg::mesh_encode(in),
            R"({"m":[{"i":1023,"n":1765000000000,"s":0,"a":{"name":"néud","mesh":"[::1]:7001","weight":2.5,"conns":7,)"
            R"("ext":{"tcp":"10.0.0.1:5100","ws":"ws://a:5200","wss":""},"int":{"tcp":"","ws":"","wss":""}}},)"
            R"({"i":5,"n":9,"s":2,"l":true},{"i":6,"n":2,"s":1}]})");
  ASSERT_TRUE(decode(mg::mesh_encode(in), out));
  ASSERT_EQ(out.members.size(), 3u);
  EXPECT_EQ(out.members[0].id, 1023u);
  EXPECT_EQ(out.members[0].inc, 1765000000000u);
  EXPECT_TRUE(out.members[0].has_info);
  EXPECT_EQ(out.members[0].info.mesh_addr, "[::1]:7001");
  EXPECT_EQ(out.members[0].info.weight, 2.5);
  EXPECT_EQ(out.members[0].info.conns, 7u);
  expect_same(out.members[0].info.ext, in.members[0].info.ext);
  EXPECT_EQ(out.members[1].state, mg::SwimState::Dead);
  EXPECT_TRUE(out.members[1].left);
  EXPECT_FALSE(out.members[1].has_info);
  EXPECT_EQ(out.members[2].state, mg::SwimState::Suspect);
  EXPECT_EQ(mg::mesh_update_size(in.members[2]), std::string(R"({"i":6,"n":2,"s":1})").size() + 1);
}

TEST(MeshBody, UpdatesRangesAreChecked) {
  mg::MeshMembers m;
  ASSERT_TRUE(decode("{}", m));
  EXPECT_TRUE(m.members.empty());
  // "l" counts only for dead, "a" only for alive.
  ASSERT_TRUE(decode(R"({"m":[{"i":4,"n":1,"s":1,"l":true,"a":{"mesh":"x:1"}}]})", m));
  EXPECT_FALSE(m.members[0].left);
  EXPECT_FALSE(m.members[0].has_info);
  for (const char* bad : {R"({"i":0,"n":1,"s":0})", R"({"i":1024,"n":1,"s":0})", R"({"n":1,"s":0})",
                          R"({"i":1,"n":-1,"s":0})", R"({"i":1,"n":9007199254740992,"s":0})", R"({"i":1,"n":1,"s":3})",
                          R"({"i":"1","n":1,"s":0})", R"("x")"})
    EXPECT_FALSE(decode(std::string(R"({"m":[)") + bad + "]}", m)) << bad;
}

// "f": who suspects (so that relayed copies of one suspicion are not counted as confirmations).
TEST(MeshBody, SuspecterRoundTripsAndIsRangeChecked) {
  mg::SwimUpdate u{6, 2, mg::SwimState::Suspect, false, false, {}, 1023};
  mg::MeshMembers in, out;
  in.members = {u};
  EXPECT_EQ(mg::mesh_encode(in), R"({"m":[{"i":6,"n":2,"s":1,"f":1023}]})");
  ASSERT_TRUE(decode(mg::mesh_encode(in), out));
  EXPECT_EQ(out.members[0].by, 1023u);
  ASSERT_TRUE(decode(R"({"m":[{"i":6,"n":2,"s":2,"f":3}]})", out));
  EXPECT_EQ(out.members[0].by, 0u);  // only a suspicion has a suspecter
  for (const char* bad : {"1024", "-1", "1.5", "\"2\"", "null"})
    EXPECT_FALSE(decode(std::string(R"({"m":[{"i":6,"n":2,"s":1,"f":)") + bad + "}]}", out)) << bad;
}

TEST(MeshBody, PingAckPingReq) {
  mg::MeshPing p;
  EXPECT_EQ(mg::mesh_encode(mg::MeshPing{123, 4, 0, {}}), R"({"k":123,"c":4,"u":[]})");
  EXPECT_EQ(mg::mesh_encode(mg::MeshPing{1, 0, 99, {{2, 3, mg::SwimState::Suspect, false, false, {}}}}),
            R"({"k":1,"c":0,"d":99,"u":[{"i":2,"n":3,"s":1}]})");
  ASSERT_TRUE(decode(mg::mesh_encode(mg::MeshPing{9007199254740991u, 7, 5, {sample_alive()}}), p));
  EXPECT_EQ(p.seq, 9007199254740991u);
  EXPECT_EQ(p.conns, 7u);
  EXPECT_EQ(p.digest, 5u);
  ASSERT_EQ(p.updates.size(), 1u);
  EXPECT_EQ(p.updates[0].info.name, "n\u00e9ud");
  ASSERT_TRUE(decode("{}", p));
  EXPECT_EQ(p.seq, 0u);
  EXPECT_TRUE(p.updates.empty());
  for (const char* v : {"9007199254740992", "-1", "0.5", "\"1\"", "null"}) {
    EXPECT_FALSE(decode(std::string(R"({"k":)") + v + "}", p)) << v;
    EXPECT_FALSE(decode(std::string(R"({"c":)") + v + "}", p)) << v;
    EXPECT_FALSE(decode(std::string(R"({"d":)") + v + "}", p)) << v;
  }
  mg::MeshAck a;
  EXPECT_EQ(mg::mesh_encode(mg::MeshAck{5, 1, {}}), R"({"k":5,"c":1,"u":[]})");
  ASSERT_TRUE(decode(mg::mesh_encode(mg::MeshAck{5, 1, {}}), a));
  EXPECT_EQ(a.seq, 5u);
  EXPECT_FALSE(decode(R"({"k":-5})", a));
  mg::MeshPingReq r;
  EXPECT_EQ(mg::mesh_encode(mg::MeshPingReq{8, 1023, {}}), R"({"k":8,"target":1023,"u":[]})");
  ASSERT_TRUE(decode(mg::mesh_encode(mg::MeshPingReq{8, 1023, {}}), r));
  EXPECT_EQ(r.target, 1023u);
  EXPECT_FALSE(decode(R"({"k":1,"target":1024})", r));
}

TEST(MeshBody, HelloIncarnationAndSync) {
  mg::MeshHello h = sample_hello(), out;
  h.inc = 1765000000000u;
  h.sync = true;
  ASSERT_TRUE(decode(mg::mesh_encode(h), out));
  EXPECT_EQ(out.inc, 1765000000000u);
  EXPECT_TRUE(out.sync);
  ASSERT_TRUE(decode(R"({"v":4,"inc":-1,"sync":1})", out));
  EXPECT_EQ(out.inc, 0u);
  EXPECT_FALSE(out.sync);
}

TEST(MeshBody, CallKeepsParamsExact) {
  mg::MeshCall in;
  in.seq = 9007199254740991u;
  in.method = "conn.call";
  in.params_text = R"({"id":18446744073709551615,"d":{"x":[1.50,"\u00e9"]}})";
  std::string body = mg::mesh_encode(in);
  EXPECT_EQ(body, R"({"k":9007199254740991,"m":"conn.call","p":)" + in.params_text + "}");
  mg::MeshCall out;
  ASSERT_TRUE(decode(body, out));
  EXPECT_EQ(out.seq, in.seq);
  EXPECT_EQ(out.method, "conn.call");
  EXPECT_EQ(out.params_text, in.params_text);  // the big id as sent, not as a double
  ASSERT_TRUE(cJSON_IsObject(out.params.get()));
  EXPECT_TRUE(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(out.params.get(), "d")));
}

TEST(MeshBody, CallFallbacksAndRanges) {
  mg::MeshCall c;
  ASSERT_TRUE(decode("{}", c));
  EXPECT_EQ(c.seq, 0u);
  EXPECT_EQ(c.method, "");
  EXPECT_FALSE(c.params);
  EXPECT_EQ(c.params_text, "");
  mg::MeshCall none;
  none.method = "x";
  EXPECT_EQ(mg::mesh_encode(none), R"({"k":0,"m":"x","p":null})");
  for (const char* p : {"[]", "1", "\"{}\"", "null"}) {  // params that are not an object: none
    ASSERT_TRUE(decode(std::string(R"({"k":1,"m":"a","p":)") + p + "}", c)) << p;
    EXPECT_FALSE(c.params) << p;
    EXPECT_EQ(c.params_text, "") << p;
  }
  for (const char* k : {"9007199254740992", "-1", "1.5", "\"1\""})
    EXPECT_FALSE(decode(std::string(R"({"k":)") + k + R"(,"m":"a","p":{}})", c)) << k;
}

TEST(MeshBody, ReplyRoundTrip) {
  mg::MeshReply ok{7, 0, "", R"({"id":18446744073709551615})"}, out;
  EXPECT_EQ(mg::mesh_encode(ok), R"({"k":7,"c":0,"e":"","r":{"id":18446744073709551615}})");
  ASSERT_TRUE(decode(mg::mesh_encode(ok), out));
  EXPECT_EQ(out.seq, 7u);
  EXPECT_EQ(out.code, 0);
  EXPECT_EQ(out.result, ok.result);
  // An error carries no result, whatever the struct held.
  mg::MeshReply err{8, 401, "client \"x\" not connected", "{\"s\":1}"};
  EXPECT_EQ(mg::mesh_encode(err), R"({"k":8,"c":401,"e":"client \"x\" not connected","r":null})");
  ASSERT_TRUE(decode(mg::mesh_encode(err), out));
  EXPECT_EQ(out.code, 401);
  EXPECT_EQ(out.message, err.message);
  EXPECT_EQ(out.result, "null");
}

TEST(MeshBody, ReplyFallbacksAndRanges) {
  mg::MeshReply r;
  ASSERT_TRUE(decode(R"({"k":3})", r));
  EXPECT_EQ(r.code, 101);  // no code: not a success
  EXPECT_EQ(r.message, "");
  EXPECT_EQ(r.result, "null");
  ASSERT_TRUE(decode(R"({"k":3,"c":65535,"r":[1,2]})", r));
  EXPECT_EQ(r.code, 65535);
  EXPECT_EQ(r.result, "[1,2]");
  for (const char* c : {"65536", "-1", "0.5", "\"0\""})
    EXPECT_FALSE(decode(std::string(R"({"k":3,"c":)") + c + "}", r)) << c;
  EXPECT_FALSE(decode(R"({"k":-3,"c":0})", r));
}

TEST(MeshBody, TopicsRoundTripAndBound) {
  mg::MeshTopics in{{"client", "a\"b", "\u00e9"}}, out;
  EXPECT_EQ(mg::mesh_encode(mg::MeshTopics{}), R"({"t":[]})");
  ASSERT_TRUE(decode(mg::mesh_encode(in), out));
  EXPECT_EQ(out.topics, in.topics);
  // Anything but a non-empty string is skipped.
  ASSERT_TRUE(decode(R"({"t":["a","",1,null,["b"],"c"]})", out));
  EXPECT_EQ(out.topics, (std::vector<std::string>{"a", "c"}));
  ASSERT_TRUE(decode("{}", out));
  EXPECT_TRUE(out.topics.empty());
  mg::MeshTopics many;
  for (size_t i = 0; i < mg::kMeshMaxTopics + 5; i++) many.topics.push_back("t" + std::to_string(i));
  ASSERT_TRUE(decode(mg::mesh_encode(many), out));
  ASSERT_EQ(out.topics.size(), mg::kMeshMaxTopics);
  EXPECT_EQ(out.topics.back(), "t" + std::to_string(mg::kMeshMaxTopics - 1));
}

mg::QueueEvent sample_event() {
  mg::QueueEvent ev;
  ev.topic = "client";
  ev.client = 18446744073709551615u;
  ev.data = R"({"n":12345678901234567890,"s":"\u00e9"})";
  ev.context = R"({"uid":"u1"})";
  ev.node = 0;
  ev.hops = 1;
  ev.fwd = 9007199254740991u;
  ev.redelivered = true;
  return ev;
}

TEST(MeshBody, EventIsTheEventsMembersPlusHandleAndHops) {
  mg::QueueEvent ev = sample_event();
  std::string members;
  mg::append_event_members(members, ev.ref(), 3);
  std::string body = mg::mesh_encode(ev, 3);
  EXPECT_EQ(body, "{" + members + R"(,"f":9007199254740991,"h":1})");
  mg::MeshEvent out;
  ASSERT_TRUE(decode(body, out));
  EXPECT_TRUE(out.complete);
  EXPECT_EQ(out.ev.topic, ev.topic);
  EXPECT_EQ(out.ev.client, ev.client);
  EXPECT_EQ(out.ev.data, ev.data);  // exact text: the big number is not rounded
  EXPECT_EQ(out.ev.context, ev.context);
  EXPECT_EQ(out.ev.node, 3u);  // this_node stood in for 0
  EXPECT_EQ(out.ev.hops, 1u);
  EXPECT_EQ(out.ev.fwd, ev.fwd);
  EXPECT_TRUE(out.ev.redelivered);
  // No context, not redelivered: neither member is written, and both read back empty.
  ev.context.clear();
  ev.redelivered = false;
  ev.node = 7;
  body = mg::mesh_encode(ev, 3);
  EXPECT_EQ(body.find("\"x\""), std::string::npos);
  EXPECT_EQ(body.find("\"r\""), std::string::npos);
  ASSERT_TRUE(decode(body, out));
  EXPECT_EQ(out.ev.context, "");
  EXPECT_FALSE(out.ev.redelivered);
  EXPECT_EQ(out.ev.node, 7u);
}

// An EVENT the mesh cannot decode is still reported consumed by its handle (Mesh::on_event).
TEST(MeshBody, TheHandleOfAnEventThatDoesNotDecodeIsReadFromItsText) {
  const std::string bad = "{\"n\":7,\"c\":\"5\",\"t\":\"a\",\"d\":\"\xff\",\"f\":42,\"h\":1}";
  mg::MeshEvent e;
  EXPECT_FALSE(decode(bad, e));
  uint64_t fwd = 0;
  ASSERT_TRUE(mg::mesh_event_handle(bad.data(), bad.size(), fwd));
  EXPECT_EQ(fwd, 42u);
  for (const char* b : {R"({"f":0})", R"({"f":-1})", R"({"f":1.5})", R"({"f":"3"})", R"({"f":9007199254740992})",
                        R"({"t":"a"})", "not json"}) {
    EXPECT_FALSE(mg::mesh_event_handle(b, std::strlen(b), fwd)) << b;
  }
}

TEST(MeshBody, EventFallbacksAndRanges) {
  mg::MeshEvent e;
  ASSERT_TRUE(decode(R"({"t":"a","c":"5"})", e));
  EXPECT_TRUE(e.complete);
  EXPECT_EQ(e.ev.data, "null");
  EXPECT_EQ(e.ev.fwd, 0u);
  EXPECT_EQ(e.ev.hops, 0u);
  EXPECT_EQ(e.ev.node, 0u);
  // Not deliverable (no topic, or no client id as a decimal string): decoded, not complete.
  for (const char* b : {R"({"c":"5"})", R"({"t":"","c":"5"})", R"({"t":"a"})", R"({"t":"a","c":5})",
                        R"({"t":"a","c":"05"})", R"({"t":"a","c":"18446744073709551616"})", R"({"t":7,"c":"5"})"}) {
    ASSERT_TRUE(decode(b, e)) << b;
    EXPECT_FALSE(e.complete) << b;
  }
  // "n" is informative only: out of range reads as 0.
  ASSERT_TRUE(decode(R"({"t":"a","c":"5","n":5000})", e));
  EXPECT_EQ(e.ev.node, 0u);
  for (const char* b : {R"({"t":"a","c":"5","h":256})", R"({"t":"a","c":"5","h":-1})",
                        R"({"t":"a","c":"5","f":9007199254740992})", R"({"t":"a","c":"5","f":"1"})",
                        R"({"t":"a","c":"5","f":0.5})"})
    EXPECT_FALSE(decode(b, e)) << b;
}

TEST(MeshBody, Done) {
  mg::MeshDone d;
  EXPECT_EQ(mg::mesh_encode(mg::MeshDone{42}), R"({"f":42})");
  ASSERT_TRUE(decode(mg::mesh_encode(mg::MeshDone{9007199254740991u}), d));
  EXPECT_EQ(d.fwd, 9007199254740991u);
  ASSERT_TRUE(decode("{}", d));
  EXPECT_EQ(d.fwd, 0u);
  for (const char* f : {"9007199254740992", "-1", "1.5", "\"1\"", "true"})
    EXPECT_FALSE(decode(std::string(R"({"f":)") + f + "}", d)) << f;
}


// --- mesh_nonce ---

TEST(MeshNonce, SixteenRandomBytes) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; i++) {
    std::string n = mesh_nonce();
    EXPECT_EQ(n.size(), 24u);
    std::string raw;
    ASSERT_TRUE(mg::base64_decode(n, raw)) << n;
    EXPECT_EQ(raw.size(), 16u);
    seen.insert(n);
  }
  EXPECT_EQ(seen.size(), 100u);
  EXPECT_NE(mesh_nonce(), mesh_nonce());
}

// --- fuzz ---

// The whole buffer parsed at once by a separate, plain implementation of the framing rules.
Status reference_parse(const std::string& s, Frames& out) {
  size_t p = 0;
  while (s.size() - p >= 4) {
    uint32_t n = (uint32_t{static_cast<uint8_t>(s[p])} << 24) | (uint32_t{static_cast<uint8_t>(s[p + 1])} << 16) |
                 (uint32_t{static_cast<uint8_t>(s[p + 2])} << 8) | uint32_t{static_cast<uint8_t>(s[p + 3])};
    if (n > kMeshMaxFrame) return Status::TooLarge;
    if (s.size() - p < 5) break;
    if (n == 0) return Status::TooLarge;
    uint8_t t = static_cast<uint8_t>(s[p + 4]);
    if (t < 1 || t > mg::kMeshMaxType) return Status::BadType;
    if (s.size() - p - 4 < n) break;
    out.push_back(Frame{static_cast<MeshType>(t), s.substr(p + 5, n - 1)});
    p += 4 + n;
  }
  return Status::Ok;
}

// 10,000 seeded inputs: some pure random bytes, most a run of valid frames with random mutations
// (flipped bytes, wrong types, huge or zero lengths, truncation), each fed in randomly sized chunks.
// The decoder must not crash, must deliver exactly the frames the reference parse finds (so every
// body has the length its header announced, less the type byte), and end in the same status.
TEST(MeshDecoderFuzz, RandomInputRandomSplits) {
  std::mt19937_64 rng(0x6d657368);  // "mesh"
  auto pick = [&](uint64_t n) { return static_cast<size_t>(rng() % n); };
  size_t delivered_total = 0, errors = 0;
  for (int iter = 0; iter < 10000; iter++) {
    std::string s;
    if (iter % 5 == 0) {
      size_t len = pick(200);
      for (size_t i = 0; i < len; i++) s += static_cast<char>(rng());
    } else {
      size_t nframes = 1 + pick(6);
      for (size_t i = 0; i < nframes; i++) {
        std::string body(pick(i == 0 && pick(10) == 0 ? 5000 : 64), '\0');
        for (char& c : body) c = static_cast<char>(rng());
        s += mesh_frame(static_cast<MeshType>(1 + pick(10)), body);
      }
      size_t mutations = pick(4);
      for (size_t m = 0; m < mutations && !s.empty(); m++) {
        size_t at = pick(s.size());
        switch (pick(5)) {
          case 0: s[at] = static_cast<char>(rng()); break;
          case 1: s[at] ^= static_cast<char>(1u << pick(8)); break;
          case 2: s.resize(at); break;
          case 3: s.insert(at, be32(pick(2) ? 0 : kMeshMaxFrame + 1 + pick(1000))); break;
          case 4: s.insert(at, std::string(1, static_cast<char>(rng()))); break;
        }
      }
    }
    Frames want;
    Status want_st = reference_parse(s, want);

    MeshFrameDecoder d;
    Frames got;
    Status st = Status::Ok;
    size_t at = 0;
    while (at < s.size() && st == Status::Ok) {
      size_t chunk = pick(4) == 0 ? 1 : 1 + pick(s.size() - at);
      if (chunk > s.size() - at) chunk = s.size() - at;
      st = d.feed(s.data() + at, chunk, [&](MeshType t, const char* p, size_t n) {
        ASSERT_GE(static_cast<uint8_t>(t), 1u);
        ASSERT_LE(static_cast<uint8_t>(t), mg::kMeshMaxType);
        ASSERT_LT(n, kMeshMaxFrame);
        got.push_back(Frame{t, std::string(p, n)});
      });
      at += chunk;
    }
    ASSERT_EQ(st, want_st) << "iteration " << iter;
    ASSERT_EQ(got, want) << "iteration " << iter;
    delivered_total += got.size();
    errors += st != Status::Ok;
  }
  // The generator exercises both outcomes.
  EXPECT_GT(delivered_total, 10000u);
  EXPECT_GT(errors, 1000u);
}

// --- INTEREST, INTEREST_ACK (protocol version 3) ---

TEST(MeshBody, InterestWireBytes) {
  mg::MeshInterest d;
  d.seq = 42;
  d.added = {"room:1", "a\"b"};
  d.removed = {"old"};
  EXPECT_EQ(mg::mesh_encode(d), R"({"k":42,"a":["room:1","a\"b"],"r":["old"]})");
  mg::MeshInterest f;
  f.seq = 1;
  f.full = true;
  f.more = true;
  EXPECT_EQ(mg::mesh_encode(f), R"({"k":1,"full":true,"more":true})");
  mg::MeshInterest all;
  all.seq = 9007199254740991u;
  all.full = true;
  all.all = true;
  EXPECT_EQ(mg::mesh_encode(all), R"({"k":9007199254740991,"full":true,"all":true})");
  EXPECT_EQ(mg::mesh_encode(mg::MeshInterestAck{42}), R"({"k":42})");
}

TEST(MeshBody, InterestRoundTrip) {
  mg::MeshInterest in;
  in.seq = 7;
  in.full = true;
  in.more = true;
  in.added = {"x", std::string(128, 'c'), "sp ace", "\\"};
  in.removed = {"gone"};
  mg::MeshInterest out;
  ASSERT_TRUE(decode(mg::mesh_encode(in), out));
  EXPECT_EQ(out.seq, 7u);
  EXPECT_TRUE(out.full);
  EXPECT_TRUE(out.more);
  EXPECT_FALSE(out.all);
  EXPECT_EQ(out.added, in.added);
  EXPECT_EQ(out.removed, in.removed);
  mg::MeshInterestAck a;
  ASSERT_TRUE(decode(mg::mesh_encode(mg::MeshInterestAck{9007199254740991u}), a));
  EXPECT_EQ(a.seq, 9007199254740991u);
}

TEST(MeshBody, InterestFallbacksAndRanges) {
  mg::MeshInterest i;
  ASSERT_TRUE(decode("{}", i));
  EXPECT_EQ(i.seq, 0u);
  EXPECT_FALSE(i.full || i.more || i.all);
  EXPECT_TRUE(i.added.empty() && i.removed.empty());
  // Entries that are not channel names are skipped; the frame stays good.
  ASSERT_TRUE(decode(R"({"k":1,"a":["ok","",5,null,{"x":1},")" + std::string(129, 'l') + R"("],"r":"notalist"})", i));
  EXPECT_EQ(i.added, std::vector<std::string>{"ok"});
  EXPECT_TRUE(i.removed.empty());
  // A decoded frame replaces what the struct held.
  ASSERT_TRUE(decode(R"({"k":2})", i));
  EXPECT_TRUE(i.added.empty());
  for (const char* v : {"-1", "1.5", "1e300", "9007199254740992", "\"1\"", "true"}) {
    EXPECT_FALSE(decode(std::string(R"({"k":)") + v + "}", i)) << v;
    mg::MeshInterestAck a;
    EXPECT_FALSE(decode(std::string(R"({"k":)") + v + "}", a)) << v;
  }
  for (const char* key : {"full", "more", "all"})
    for (const char* v : {"1", "\"true\"", "null", "[]"})
      EXPECT_FALSE(decode(std::string("{\"") + key + "\":" + v + "}", i)) << key << "=" << v;
}

TEST(MeshBody, InterestSplit) {
  // Nothing to say still makes one frame (an empty full set is news).
  auto one = mg::mesh_interest_split(true, {}, {}, 10);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_TRUE(one[0].full);
  EXPECT_FALSE(one[0].more);
  // A full set over the budget: the first frame is full, every one but the last has "more", the
  // names keep their order and each frame holds at most the budget (or one name).
  std::vector<std::string> names;
  for (int i = 0; i < 25; i++) names.push_back("ch" + std::to_string(i));  // 3 or 4 bytes
  auto fs = mg::mesh_interest_split(true, names, {}, 10);
  ASSERT_GT(fs.size(), 1u);
  std::vector<std::string> seen;
  for (size_t i = 0; i < fs.size(); i++) {
    EXPECT_EQ(fs[i].full, i == 0) << i;
    EXPECT_EQ(fs[i].more, i + 1 < fs.size()) << i;
    size_t bytes = 0;
    for (const auto& n : fs[i].added) bytes += n.size();
    EXPECT_LE(bytes, 10u) << i;
    EXPECT_TRUE(fs[i].removed.empty());
    seen.insert(seen.end(), fs[i].added.begin(), fs[i].added.end());
  }
  EXPECT_EQ(seen, names);
  // A delta keeps additions and removals apart; a name longer than the budget gets a frame of its own.
  auto d = mg::mesh_interest_split(false, {"a", std::string(20, 'b')}, {"c"}, 10);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].added, std::vector<std::string>{"a"});
  EXPECT_EQ(d[1].added, std::vector<std::string>{std::string(20, 'b')});
  EXPECT_EQ(d[2].removed, std::vector<std::string>{"c"});
  for (const auto& f : d) EXPECT_FALSE(f.full);
  // Every frame of a realistic split stays far below the frame limit.
  std::vector<std::string> big(100000, std::string(128, '"'));  // the worst case: every byte escaped
  for (const auto& f : mg::mesh_interest_split(true, big, {}, 64u << 10))
    EXPECT_LT(mg::mesh_encode(f).size(), size_t{1} << 20);
}

}  // namespace
