// Unit tests for the WebSocket codec this executable is linked with (built once per codec, see
// test/meson.build): what a client's bytes turn into, however they are cut, and what the session
// sends back. RFC 6455 sections are named where a case checks one of its rules.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../../fuzz/ws_seeds.h"
#include "ws/ws_codec.h"
#include "ws/ws_session.h"

namespace {

using wsseed::close_payload;
using wsseed::frame;

struct Rec final : mg::WsEvents {
  std::vector<std::string> ev;
  size_t hold_every = 0;  // > 0: ask to hold after every this many messages
  size_t messages = 0;
  bool ws_message(uint8_t opcode, const uint8_t* d, size_t n) override {
    add(opcode == 1 ? "text:" : "binary:", d, n);
    return hold_every && ++messages % hold_every == 0;
  }
  void ws_ping(const uint8_t* d, size_t n) override { add("ping:", d, n); }
  void ws_pong(const uint8_t* d, size_t n) override { add("pong:", d, n); }
  void ws_close(uint16_t code, const uint8_t* d, size_t n) override { add("close " + std::to_string(code) + ":", d, n); }
  void ws_error(uint16_t code) override { ev.push_back("error " + std::to_string(code)); }
  void add(const std::string& what, const uint8_t* d, size_t n) {
    ev.push_back(what + std::string(reinterpret_cast<const char*>(d), n));
  }
};

// Feeds `wire` in pieces of `step` bytes (0: all at once) to a fresh decoder; returns its events.
std::vector<std::string> decode(const std::string& wire, size_t step = 0, uint32_t max_message = 1 << 20) {
  auto d = mg::make_ws_decoder(max_message);
  Rec rec;
  std::string buf = wire;
  if (step == 0) step = buf.size() ? buf.size() : 1;
  for (size_t off = 0; off < buf.size(); off += step) {
    d->feed(reinterpret_cast<uint8_t*>(&buf[off]), std::min(step, buf.size() - off), rec);
  }
  return rec.ev;
}

using Events = std::vector<std::string>;

// Feeds `wire` in pieces of `step` bytes (0: all at once), asking to hold after every `hold_every`
// messages; what a hold leaves is fed again from its first byte, as ClientConn does when resumed.
// Checks that a hold leaves the decoder between messages.
std::vector<std::string> decode_holding(const std::string& wire, size_t step, size_t hold_every,
                                        uint32_t max_message = 1 << 20) {
  auto d = mg::make_ws_decoder(max_message);
  Rec rec;
  rec.hold_every = hold_every;
  std::string buf = wire;
  if (step == 0) step = buf.size() ? buf.size() : 1;
  size_t off = 0;
  while (off < buf.size()) {
    const size_t n = std::min(step, buf.size() - off);
    const size_t before = rec.ev.size();
    const size_t used = d->feed(reinterpret_cast<uint8_t*>(&buf[off]), n, rec);
    EXPECT_LE(used, n);
    if (used < n) {
      EXPECT_GT(rec.ev.size(), before) << "a hold comes right after a message";
      EXPECT_TRUE(d->idle()) << "a hold leaves nothing buffered";
      EXPECT_FALSE(d->stopped());
    }
    off += used;
  }
  return rec.ev;
}

// Every case is decoded whole and cut at every byte: the events must not depend on the cuts, nor on
// holds after any message.
void expect_events(const std::string& wire, const Events& want, uint32_t max_message = 1 << 20) {
  EXPECT_EQ(decode(wire, 0, max_message), want) << "whole";
  EXPECT_EQ(decode(wire, 1, max_message), want) << "byte by byte";
  EXPECT_EQ(decode(wire, 7, max_message), want) << "7-byte pieces";
  EXPECT_EQ(decode_holding(wire, 0, 1, max_message), want) << "whole, holding after every message";
  EXPECT_EQ(decode_holding(wire, 7, 2, max_message), want) << "7-byte pieces, holding after every second";
}

const std::string kEuro = "\xe2\x82\xac";

TEST(WsCodec, NameIsTheBuildChoice) {
  const std::string name = mg::ws_codec_name();
  EXPECT_TRUE(name == "native" || name == "wslay");
}

TEST(WsCodec, WholeMessages) {
  expect_events(frame(0x81, "Hello") + frame(0x82, std::string("\x00\x01\x02", 3)) + frame(0x81, ""),
                {"text:Hello", "binary:" + std::string("\x00\x01\x02", 3), "text:"});
}

TEST(WsCodec, EveryLengthForm) {  // §5.2: 7-bit, 16-bit and 64-bit lengths
  const std::string mid(300, 'm'), big(70000, 'b');
  expect_events(frame(0x82, mid) + frame(0x82, big), {"binary:" + mid, "binary:" + big});
}

TEST(WsCodec, FragmentsWithControlFramesBetween) {  // §5.4: control frames may be injected
  expect_events(frame(0x01, "He") + frame(0x89, "p1") + frame(0x00, "ll") + frame(0x8A, "") + frame(0x80, "o"),
                {"ping:p1", "pong:", "text:Hello"});
}

TEST(WsCodec, Utf8CutBetweenFragments) {  // §8.1: validity is of the whole message
  expect_events(frame(0x01, "a" + kEuro.substr(0, 1)) + frame(0x00, kEuro.substr(1, 1)) + frame(0x80, kEuro.substr(2)),
                {"text:a" + kEuro});
}

TEST(WsCodec, InvalidUtf8Is1007) {
  expect_events(frame(0x81, "ok") + frame(0x81, "bad \xc3\x28"), {"text:ok", "error 1007"});
  expect_events(frame(0x81, "cut " + kEuro.substr(0, 2)), {"error 1007"});  // ends inside a character
  expect_events(frame(0x01, "x\xff") + frame(0x80, "y"), {"error 1007"});   // found in the first fragment
  expect_events(frame(0x81, "\xed\xa0\x80"), {"error 1007"});                // a surrogate
  expect_events(frame(0x82, "\xff"), {"binary:\xff"});                       // binary is not checked
}

TEST(WsCodec, MessageOverTheLimitIs1009) {
  expect_events(frame(0x81, std::string(100, 'x')), {"text:" + std::string(100, 'x')}, 100);
  expect_events(frame(0x81, std::string(101, 'x')), {"error 1009"}, 100);
  expect_events(frame(0x01, std::string(60, 'x')) + frame(0x80, std::string(41, 'x')), {"error 1009"}, 100);
  // A 2^40-byte frame is refused on its first payload byte, never buffered.
  expect_events(frame(0x82, "").substr(0, 1) + std::string("\xff\x00\x00\x01\x00\x00\x00\x00\x00", 9) +
                    std::string("\x01\x02\x03\x04x", 5),
                {"error 1009"}, 100);
}

TEST(WsCodec, CloseFrames) {  // §5.5.1, §7.4
  expect_events(frame(0x88, close_payload(1000, "bye")), {"close 1000:bye"});
  expect_events(frame(0x88, close_payload(4001, kEuro)), {"close 4001:" + kEuro});
  expect_events(frame(0x88, ""), {"close 1005:"});
  expect_events(frame(0x88, close_payload(1001, "")) + frame(0x81, "after"), {"close 1001:"});  // nothing after
}

TEST(WsCodec, BadCloseFrames) {
  expect_events(frame(0x88, "\x03"), {"error 1002"});                      // 1 byte: half a code
  expect_events(frame(0x88, close_payload(999, "")), {"error 1002"});      // not a close code
  expect_events(frame(0x88, close_payload(1005, "")), {"error 1002"});     // reserved for reporting
  expect_events(frame(0x88, close_payload(1015, "")), {"error 1002"});
  expect_events(frame(0x88, close_payload(5000, "")), {"error 1002"});
  expect_events(frame(0x88, close_payload(1000, "\xff")), {"error 1007"});  // reason not UTF-8
}

TEST(WsCodec, ProtocolViolationsAre1002) {
  expect_events(frame(0x81, "hi", 0, false), {"error 1002"});               // unmasked (§5.1)
  expect_events(frame(0xC1, "hi"), {"error 1002"});                         // RSV1 without an extension
  expect_events(frame(0x83, "x"), {"error 1002"});                          // reserved data opcode
  expect_events(frame(0x8B, ""), {"error 1002"});                           // reserved control opcode
  expect_events(frame(0x80, "x"), {"error 1002"});                          // continuation of nothing
  expect_events(frame(0x01, "a") + frame(0x81, "b"), {"error 1002"});       // new message inside one
  expect_events(frame(0x09, "p"), {"error 1002"});                          // fragmented ping (§5.5)
  expect_events(frame(0x89, std::string(126, 'p'), 126), {"error 1002"});   // control over 125 bytes
  expect_events(frame(0x81, "short", 126), {"error 1002"});                 // length not in shortest form
  expect_events(std::string("\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00", 10), {"error 1002"});  // top bit
  expect_events(frame(0x81, "ok") + frame(0x81, "x", 0, false) + frame(0x81, "never"), {"text:ok", "error 1002"});
}

TEST(WsCodec, IdleBetweenMessagesOnly) {
  auto d = mg::make_ws_decoder(1 << 20);
  Rec rec;
  std::string wire = frame(0x01, "part one ") + frame(0x80, "and two");
  const size_t first = frame(0x01, "part one ").size();
  EXPECT_TRUE(d->idle());
  d->feed(reinterpret_cast<uint8_t*>(&wire[0]), first + 9, rec);  // into the second frame's payload
  EXPECT_FALSE(d->idle()) << "a fragmented message is open";
  d->feed(reinterpret_cast<uint8_t*>(&wire[first + 9]), wire.size() - first - 9, rec);
  EXPECT_TRUE(d->idle()) << "the message was delivered: nothing may stay allocated";
  EXPECT_EQ(rec.ev, Events({"text:part one and two"}));
  std::string half = frame(0x82, std::string(1000, 'z')).substr(0, 500);
  d->feed(reinterpret_cast<uint8_t*>(&half[0]), half.size(), rec);
  EXPECT_FALSE(d->idle()) << "half a frame is held";
}

// Issue 18: a frame is under way from its first header byte, buffer or not: the connection's
// message deadline runs while idle() is false (the native codec said idle until a payload arrived).
TEST(WsCodec, NotIdleInsideAFrameHeader) {
  std::string wire = frame(0x81, "hello");
  for (size_t cut : {size_t{1}, size_t{2}, size_t{5}, size_t{6}}) {  // 6: the whole header, no payload
    auto d = mg::make_ws_decoder(1 << 20);
    Rec rec;
    std::string w = wire;
    d->feed(reinterpret_cast<uint8_t*>(&w[0]), cut, rec);
    EXPECT_FALSE(d->idle()) << cut << " header bytes";
    d->feed(reinterpret_cast<uint8_t*>(&w[cut]), w.size() - cut, rec);
    EXPECT_TRUE(d->idle());
    EXPECT_EQ(rec.ev, Events({"text:hello"}));
  }
}

// ---- holding: stop right after a message, take the rest later ----

TEST(WsCodec, HoldStopsRightAfterTheMessage) {
  const std::string a = frame(0x81, "first"), b = frame(0x82, "second"), c = frame(0x81, "third");
  std::string wire = a + b + c;
  auto d = mg::make_ws_decoder(1 << 20);
  Rec rec;
  rec.hold_every = 1;
  size_t used = d->feed(reinterpret_cast<uint8_t*>(&wire[0]), wire.size(), rec);
  EXPECT_EQ(used, a.size());
  EXPECT_EQ(rec.ev, Events({"text:first"}));
  EXPECT_TRUE(d->idle());
  EXPECT_EQ(wire.substr(a.size()), b + c) << "the rest is left as it was (still masked)";
  used += d->feed(reinterpret_cast<uint8_t*>(&wire[used]), wire.size() - used, rec);
  EXPECT_EQ(used, a.size() + b.size());
  rec.hold_every = 0;
  used += d->feed(reinterpret_cast<uint8_t*>(&wire[used]), wire.size() - used, rec);
  EXPECT_EQ(used, wire.size());
  EXPECT_EQ(rec.ev, Events({"text:first", "binary:second", "text:third"}));
}

TEST(WsCodec, HoldAfterAFragmentedMessageAndAroundControlFrames) {
  const std::string msg = frame(0x01, "He") + frame(0x89, "p") + frame(0x80, "llo");
  const std::string rest = frame(0x8A, "") + frame(0x81, "next") + frame(0x88, close_payload(1000, "bye"));
  std::string wire = msg + rest;
  auto d = mg::make_ws_decoder(1 << 20);
  Rec rec;
  rec.hold_every = 1;
  // Cut inside the first fragment: the hold comes in the second piece, right after "llo".
  size_t used = d->feed(reinterpret_cast<uint8_t*>(&wire[0]), 5, rec);
  EXPECT_EQ(used, 5u);
  used += d->feed(reinterpret_cast<uint8_t*>(&wire[used]), wire.size() - used, rec);
  EXPECT_EQ(used, msg.size());
  EXPECT_EQ(rec.ev, Events({"ping:p", "text:Hello"}));
  used += d->feed(reinterpret_cast<uint8_t*>(&wire[used]), wire.size() - used, rec);
  EXPECT_EQ(used, msg.size() + frame(0x8A, "").size() + frame(0x81, "next").size());
  used += d->feed(reinterpret_cast<uint8_t*>(&wire[used]), wire.size() - used, rec);
  EXPECT_EQ(used, wire.size());
  EXPECT_TRUE(d->stopped());
  EXPECT_EQ(rec.ev, Events({"ping:p", "text:Hello", "pong:", "text:next", "close 1000:bye"}));
}

TEST(WsCodec, HoldBeforeAViolationReportsItOnTheNextFeed) {
  std::string wire = frame(0x81, "ok") + frame(0x81, "bad \xc3\x28");
  auto d = mg::make_ws_decoder(1 << 20);
  Rec rec;
  rec.hold_every = 1;
  const size_t used = d->feed(reinterpret_cast<uint8_t*>(&wire[0]), wire.size(), rec);
  EXPECT_EQ(used, frame(0x81, "ok").size());
  EXPECT_EQ(rec.ev, Events({"text:ok"}));
  EXPECT_EQ(d->feed(reinterpret_cast<uint8_t*>(&wire[used]), wire.size() - used, rec), wire.size() - used);
  EXPECT_EQ(rec.ev, Events({"text:ok", "error 1007"}));
}

TEST(WsCodec, ManySmallMessagesHeldEveryFew) {  // the burst a paused client sends in one read
  std::string wire;
  Events want;
  for (int i = 0; i < 3000; i++) {
    const std::string m = "m" + std::to_string(i);
    wire += frame(0x81, m);
    want.push_back("text:" + m);
  }
  EXPECT_EQ(decode_holding(wire, 0, 1), want);
  EXPECT_EQ(decode_holding(wire, 0, 97), want);
  EXPECT_EQ(decode_holding(wire, 4096, 13), want);
  EXPECT_EQ(decode_holding(wire, 5000, 1000), want);
}

// ---- the session: answers to pings and closes ----

struct Owner final : mg::WsOwner {
  std::vector<std::string> messages;
  std::string out;
  bool hold = false;
  bool ws_message(uint8_t, const uint8_t* d, size_t n) override {
    messages.emplace_back(reinterpret_cast<const char*>(d), n);
    return hold;
  }
  void ws_output(const uint8_t* d, size_t n) override { out.append(reinterpret_cast<const char*>(d), n); }
};

void feed(mg::WsSession& s, std::string wire) { s.feed(&wire[0], wire.size()); }

// Server frames are unmasked (§5.1).
std::string server_frame(uint8_t first_byte, const std::string& payload) { return frame(first_byte, payload, 0, false); }

TEST(WsSession, AnswersPingWithPong) {
  Owner o;
  mg::WsSession s(&o, 1000);
  feed(s, frame(0x89, "abc") + frame(0x81, "m"));
  EXPECT_EQ(o.out, server_frame(0x8A, "abc"));
  EXPECT_EQ(o.messages, std::vector<std::string>({"m"}));
  EXPECT_TRUE(s.can_send());
}

TEST(WsSession, EchoesTheClientsClose) {
  Owner o;
  mg::WsSession s(&o, 1000);
  feed(s, frame(0x88, close_payload(4000, "done")));
  EXPECT_EQ(o.out, server_frame(0x88, close_payload(4000, "done")));
  EXPECT_TRUE(s.finished());
  EXPECT_TRUE(s.close_received());
  EXPECT_EQ(s.close_code(), 4000);
  EXPECT_EQ(s.close_reason(), "done");
  EXPECT_FALSE(s.can_send());
}

TEST(WsSession, EmptyCloseIsAnsweredEmpty) {
  Owner o;
  mg::WsSession s(&o, 1000);
  feed(s, frame(0x88, ""));
  EXPECT_EQ(o.out, server_frame(0x88, ""));
  EXPECT_EQ(s.close_code(), 1005);
}

TEST(WsSession, ViolationSendsItsCode) {
  Owner o;
  mg::WsSession s(&o, 10);
  feed(s, frame(0x81, "eleven byte"));
  EXPECT_EQ(o.out, server_frame(0x88, close_payload(1009, "message too big")));
  EXPECT_EQ(s.close_code(), 1009);
  EXPECT_TRUE(s.input_ended());
  EXPECT_TRUE(s.idle());
  feed(s, frame(0x89, "late"));
  EXPECT_EQ(o.out, server_frame(0x88, close_payload(1009, "message too big"))) << "nothing after the close";
}

TEST(WsSession, FeedReturnsWhatAHoldLeft) {
  Owner o;
  o.hold = true;
  mg::WsSession s(&o, 1000);
  std::string wire = frame(0x81, "one") + frame(0x81, "two");
  EXPECT_EQ(s.feed(&wire[0], wire.size()), frame(0x81, "one").size());
  EXPECT_EQ(o.messages, std::vector<std::string>({"one"}));
  EXPECT_TRUE(s.idle());
  o.hold = false;
  const size_t first = frame(0x81, "one").size();
  EXPECT_EQ(s.feed(&wire[first], wire.size() - first), wire.size() - first);
  EXPECT_EQ(o.messages, std::vector<std::string>({"one", "two"}));
}

TEST(WsSession, ServerCloseWaitsForTheAnswer) {
  Owner o;
  mg::WsSession s(&o, 1000);
  s.close(1001, "going away");
  EXPECT_EQ(o.out, server_frame(0x88, close_payload(1001, "going away")));
  EXPECT_FALSE(s.input_ended());
  feed(s, frame(0x81, "in flight") + frame(0x89, "no pong now") + frame(0x88, close_payload(1001, "")));
  EXPECT_EQ(o.messages, std::vector<std::string>({"in flight"}));
  EXPECT_EQ(o.out, server_frame(0x88, close_payload(1001, "going away"))) << "no pong and no second close";
  EXPECT_TRUE(s.input_ended());
  EXPECT_EQ(s.close_code(), 1001);
  EXPECT_EQ(s.close_reason(), "going away");
}

}  // namespace
