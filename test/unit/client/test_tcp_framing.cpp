// Unit tests for the TCP client framing (client/tcp_framing.h, PROTOCOL.md §3.2): line and len32
// decoding however the bytes are split, keep-alive empty lines, the max_message bound (enforced before
// an over-long message is complete), stop() from inside the callback, and encode/decode round trips.
#include "client/tcp_framing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace {

using mg::FrameDecoder;
using mg::Framing;
using Status = FrameDecoder::Status;
using Msgs = std::vector<std::string>;

// Feeds `bytes` in one call and collects the messages.
Status feed_all(FrameDecoder& d, const std::string& bytes, Msgs& out) {
  return d.feed(bytes.data(), bytes.size(),
                [&](const char* p, size_t n) { out.emplace_back(p, n); return false; });
}

// Feeds `bytes` one byte per call; returns the first non-Ok status.
Status feed_bytewise(FrameDecoder& d, const std::string& bytes, Msgs& out) {
  for (char c : bytes) {
    const Status s = d.feed(&c, 1, [&](const char* p, size_t n) { out.emplace_back(p, n); return false; });
    if (s != Status::Ok) return s;
  }
  return Status::Ok;
}

std::string be32(uint32_t n) {
  std::string s(4, '\0');
  s[0] = static_cast<char>(n >> 24);
  s[1] = static_cast<char>(n >> 16);
  s[2] = static_cast<char>(n >> 8);
  s[3] = static_cast<char>(n);
  return s;
}

std::string len32(const std::string& payload) { return be32(static_cast<uint32_t>(payload.size())) + payload; }

// ---- line ----

TEST(LineFraming, DeliversOneMessageWithoutItsNewline) {
  FrameDecoder d(Framing::Line, 100);
  Msgs m;
  EXPECT_EQ(feed_all(d, "hello\n", m), Status::Ok);
  EXPECT_EQ(m, Msgs{"hello"});
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(LineFraming, DeliversManyMessagesFromOneChunkInOrder) {
  FrameDecoder d(Framing::Line, 100);
  Msgs m;
  EXPECT_EQ(feed_all(d, "a\nbb\nccc\n{\"x\":1}\n", m), Status::Ok);
  EXPECT_EQ(m, (Msgs{"a", "bb", "ccc", "{\"x\":1}"}));
}

TEST(LineFraming, DropsOneCarriageReturnBeforeTheNewlineOnly) {
  FrameDecoder d(Framing::Line, 100);
  Msgs m;
  EXPECT_EQ(feed_all(d, "crlf\r\na\rb\ntwo\r\r\n", m), Status::Ok);
  EXPECT_EQ(m, (Msgs{"crlf", "a\rb", "two\r"}));
}

TEST(LineFraming, EmptyLinesAreKeepAlivesAndYieldNoMessage) {
  FrameDecoder d(Framing::Line, 100);
  Msgs m;
  EXPECT_EQ(feed_all(d, "\n\r\n\n", m), Status::Ok);
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(feed_all(d, "x\n\n\r\ny\n", m), Status::Ok);
  EXPECT_EQ(m, (Msgs{"x", "y"}));
  // The same across a split: a lone "\r" then "\n" is still an empty line.
  EXPECT_EQ(feed_all(d, "\r", m), Status::Ok);
  EXPECT_EQ(feed_all(d, "\n", m), Status::Ok);
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(LineFraming, ByteByByteFeedingGivesTheSameMessages) {
  const std::string stream = "first\r\n\nsecond\nthird\r\n\r\nfourth\rx\n";
  const Msgs expected = {"first", "second", "third", "fourth\rx"};
  FrameDecoder whole(Framing::Line, 100);
  Msgs a;
  EXPECT_EQ(feed_all(whole, stream, a), Status::Ok);
  EXPECT_EQ(a, expected);
  FrameDecoder bytewise(Framing::Line, 100);
  Msgs b;
  EXPECT_EQ(feed_bytewise(bytewise, stream, b), Status::Ok);
  EXPECT_EQ(b, expected);
  EXPECT_EQ(bytewise.buffered(), 0u);
}

TEST(LineFraming, KeepsOnlyTheUnfinishedTail) {
  FrameDecoder d(Framing::Line, 100);
  Msgs m;
  EXPECT_EQ(feed_all(d, "one\ntw", m), Status::Ok);
  EXPECT_EQ(m, Msgs{"one"});
  EXPECT_EQ(d.buffered(), 2u);
  EXPECT_EQ(feed_all(d, "o\nthr", m), Status::Ok);
  EXPECT_EQ(m, (Msgs{"one", "two"}));
  EXPECT_EQ(d.buffered(), 3u);
  EXPECT_EQ(feed_all(d, "ee\n", m), Status::Ok);
  EXPECT_EQ(m, (Msgs{"one", "two", "three"}));
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(LineFraming, DeliversStraightFromTheInputWhenNothingIsBuffered) {
  FrameDecoder d(Framing::Line, 100);
  const std::string in = "abc\ndef\n";
  std::vector<const char*> where;
  EXPECT_EQ(d.feed(in.data(), in.size(), [&](const char* p, size_t) { where.push_back(p); return false; }), Status::Ok);
  ASSERT_EQ(where.size(), 2u);
  EXPECT_EQ(where[0], in.data());
  EXPECT_EQ(where[1], in.data() + 4);
}

TEST(LineFraming, AcceptsAMessageOfExactlyMaxMessageBytes) {
  FrameDecoder d(Framing::Line, 10);
  Msgs m;
  EXPECT_EQ(feed_all(d, std::string(10, 'x') + "\r\n", m), Status::Ok);
  EXPECT_EQ(feed_bytewise(d, std::string(10, 'y') + "\r\n", m), Status::Ok);
  EXPECT_EQ(m, (Msgs{std::string(10, 'x'), std::string(10, 'y')}));
}

TEST(LineFraming, CompleteMessageOverMaxIsTooLongAfterEarlierOnesAreDelivered) {
  FrameDecoder d(Framing::Line, 10);
  Msgs m;
  EXPECT_EQ(feed_all(d, "ok\n" + std::string(11, 'x') + "\nnever\n", m), Status::TooLong);
  EXPECT_EQ(m, Msgs{"ok"});
}

TEST(LineFraming, TooLongAsSoonAsTheUnfinishedLineExceedsMaxBeforeItsNewline) {
  FrameDecoder d(Framing::Line, 10);
  Msgs m;
  EXPECT_EQ(feed_all(d, std::string(11, 'x'), m), Status::TooLong);  // no '\n' yet
  EXPECT_TRUE(m.empty());

  FrameDecoder e(Framing::Line, 10);
  EXPECT_EQ(feed_all(e, std::string(10, 'x'), m), Status::Ok);
  EXPECT_EQ(feed_all(e, "y", m), Status::TooLong);  // buffered + new byte: 11

  FrameDecoder f(Framing::Line, 10);
  const std::string many(1000, 'z');
  size_t fed = 0;
  Status s = Status::Ok;
  while (s == Status::Ok && fed < many.size()) {
    s = f.feed(&many[fed], 1, [&](const char* p, size_t n) { m.emplace_back(p, n); return false; });
    ++fed;
  }
  EXPECT_EQ(s, Status::TooLong);
  EXPECT_EQ(fed, 11u);  // refused at the 11th byte, not at some later '\n'
}

TEST(LineFraming, ATrailingCarriageReturnMayStillBeTheTerminator) {
  FrameDecoder d(Framing::Line, 10);
  Msgs m;
  EXPECT_EQ(feed_all(d, std::string(10, 'x') + "\r", m), Status::Ok);  // 10 payload bytes so far
  EXPECT_EQ(feed_all(d, "\n", m), Status::Ok);
  EXPECT_EQ(m, Msgs{std::string(10, 'x')});

  FrameDecoder e(Framing::Line, 10);
  EXPECT_EQ(feed_all(e, std::string(10, 'x') + "\r", m), Status::Ok);
  EXPECT_EQ(feed_all(e, "x", m), Status::TooLong);  // the '\r' was payload after all
}

TEST(LineFraming, StaysFailedAfterTooLong) {
  FrameDecoder d(Framing::Line, 4);
  Msgs m;
  EXPECT_EQ(feed_all(d, "toolong", m), Status::TooLong);
  EXPECT_EQ(feed_all(d, "ok\n", m), Status::TooLong);
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(LineFraming, StopInsideTheCallbackEndsFeedingAfterThatMessage) {
  FrameDecoder d(Framing::Line, 100);
  Msgs m;
  const std::string in = "a\nb\nc\nd\n";
  const Status s = d.feed(in.data(), in.size(), [&](const char* p, size_t n) {
    m.emplace_back(p, n);
    if (m.size() == 2) d.stop();
    return false;
  });
  EXPECT_EQ(s, Status::Ok);
  EXPECT_EQ(m, (Msgs{"a", "b"}));
  EXPECT_EQ(feed_all(d, "e\n", m), Status::Ok);
  EXPECT_EQ(m.size(), 2u);
}

TEST(LineFraming, StopOnAMessageCompletedFromTheBufferedTail) {
  FrameDecoder d(Framing::Line, 100);
  Msgs m;
  EXPECT_EQ(feed_all(d, "ha", m), Status::Ok);
  const std::string in = "lf\nnext\n";
  const Status s = d.feed(in.data(), in.size(), [&](const char* p, size_t n) {
    m.emplace_back(p, n);
    d.stop();
    return false;
  });
  EXPECT_EQ(s, Status::Ok);
  EXPECT_EQ(m, Msgs{"half"});
}

// ---- len32 ----

TEST(Len32Framing, DeliversMessagesFromOneChunk) {
  FrameDecoder d(Framing::Len32, 100);
  Msgs m;
  EXPECT_EQ(feed_all(d, len32("hello") + len32("") + len32(std::string("a\n\0b", 4)), m), Status::Ok);
  EXPECT_EQ(m, (Msgs{"hello", "", std::string("a\n\0b", 4)}));
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(Len32Framing, ZeroLengthIsAnEmptyMessage) {
  FrameDecoder d(Framing::Len32, 0);
  Msgs m;
  EXPECT_EQ(feed_all(d, be32(0) + be32(0), m), Status::Ok);
  EXPECT_EQ(m, (Msgs{"", ""}));
  EXPECT_EQ(feed_bytewise(d, be32(0), m), Status::Ok);
  EXPECT_EQ(m.size(), 3u);
}

TEST(Len32Framing, ReassemblesHeadersSplitAtEveryPosition) {
  const std::string stream = len32("first") + len32("second message") + len32("");
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    FrameDecoder d(Framing::Len32, 100);
    Msgs m;
    ASSERT_EQ(feed_all(d, stream.substr(0, cut), m), Status::Ok);
    ASSERT_EQ(feed_all(d, stream.substr(cut), m), Status::Ok);
    EXPECT_EQ(m, (Msgs{"first", "second message", ""})) << "cut at " << cut;
    EXPECT_EQ(d.buffered(), 0u);
  }
}

TEST(Len32Framing, ByteByByteFeedingGivesTheSameMessages) {
  FrameDecoder d(Framing::Len32, 1000);
  Msgs m;
  const std::string big(300, 'q');  // length needs two header bytes
  EXPECT_EQ(feed_bytewise(d, len32("ab") + len32(big) + len32(""), m), Status::Ok);
  EXPECT_EQ(m, (Msgs{"ab", big, ""}));
}

TEST(Len32Framing, BufferedCountsHeaderAndPayloadBytesOfTheUnfinishedMessage) {
  FrameDecoder d(Framing::Len32, 100);
  Msgs m;
  EXPECT_EQ(feed_all(d, be32(5).substr(0, 2), m), Status::Ok);
  EXPECT_EQ(d.buffered(), 2u);
  EXPECT_EQ(feed_all(d, be32(5).substr(2) + "ab", m), Status::Ok);
  EXPECT_EQ(d.buffered(), 6u);
  EXPECT_EQ(feed_all(d, "cde", m), Status::Ok);
  EXPECT_EQ(d.buffered(), 0u);
  EXPECT_EQ(m, Msgs{"abcde"});
}

TEST(Len32Framing, LengthOverMaxIsTooLongAsSoonAsTheHeaderIsComplete) {
  FrameDecoder d(Framing::Len32, 10);
  Msgs m;
  EXPECT_EQ(feed_all(d, be32(11), m), Status::TooLong);  // no payload byte sent yet

  FrameDecoder e(Framing::Len32, 10);
  const std::string h = be32(0xFFFFFFFFu);
  EXPECT_EQ(feed_all(e, h.substr(0, 3), m), Status::Ok);
  EXPECT_EQ(feed_all(e, h.substr(3), m), Status::TooLong);
  EXPECT_EQ(feed_all(e, len32("ok"), m), Status::TooLong);  // stays failed
  EXPECT_TRUE(m.empty());
}

TEST(Len32Framing, AcceptsExactlyMaxMessageBytes) {
  FrameDecoder d(Framing::Len32, 10);
  Msgs m;
  EXPECT_EQ(feed_all(d, len32(std::string(10, 'x')), m), Status::Ok);
  EXPECT_EQ(m, Msgs{std::string(10, 'x')});
}

TEST(Len32Framing, DeliversStraightFromTheInputWhenNothingIsBuffered) {
  FrameDecoder d(Framing::Len32, 100);
  const std::string in = len32("abc") + len32("de");
  std::vector<const char*> where;
  EXPECT_EQ(d.feed(in.data(), in.size(), [&](const char* p, size_t) { where.push_back(p); return false; }), Status::Ok);
  ASSERT_EQ(where.size(), 2u);
  EXPECT_EQ(where[0], in.data() + 4);
  EXPECT_EQ(where[1], in.data() + 11);
}

TEST(Len32Framing, StopInsideTheCallbackEndsFeedingAfterThatMessage) {
  FrameDecoder d(Framing::Len32, 100);
  Msgs m;
  const std::string in = len32("a") + len32("b") + len32("c");
  const Status s = d.feed(in.data(), in.size(), [&](const char* p, size_t n) {
    m.emplace_back(p, n);
    d.stop();
    return false;
  });
  EXPECT_EQ(s, Status::Ok);
  EXPECT_EQ(m, Msgs{"a"});
  EXPECT_EQ(feed_all(d, len32("d"), m), Status::Ok);
  EXPECT_EQ(m, Msgs{"a"});
}

// ---- hold: stop right after a message, the rest fed again later ----

// Feeds `bytes` in pieces of `step`, holding after every `hold_every` messages and feeding what a hold
// left again from its first byte (as a paused client's connection does).
Msgs feed_holding(Framing framing, const std::string& bytes, size_t step, size_t hold_every) {
  FrameDecoder d(framing, 1000);
  Msgs m;
  size_t off = 0;
  while (off < bytes.size()) {
    const size_t n = std::min(step, bytes.size() - off);
    size_t used = 0;
    const size_t before = m.size();
    const Status s = d.feed(bytes.data() + off, n, [&](const char* p, size_t len) {
      m.emplace_back(p, len);
      return m.size() % hold_every == 0;
    }, &used);
    EXPECT_NE(s, Status::TooLong);
    if (s == Status::Held) {
      EXPECT_GT(m.size(), before);
      EXPECT_EQ(d.buffered(), 0u) << "a hold leaves nothing buffered";
    } else {
      EXPECT_EQ(used, n);
    }
    off += used;
  }
  return m;
}

TEST(HoldFraming, LineStopsRightAfterTheNewline) {
  FrameDecoder d(Framing::Line, 100);
  Msgs m;
  const std::string in = "a\r\nbb\n\ncc\n";
  size_t used = 0;
  EXPECT_EQ(d.feed(in.data(), in.size(), [&](const char* p, size_t n) { m.emplace_back(p, n); return true; }, &used),
            Status::Held);
  EXPECT_EQ(used, 3u);
  EXPECT_EQ(m, Msgs{"a"});
  EXPECT_EQ(d.feed(in.data() + 3, in.size() - 3, [&](const char* p, size_t n) { m.emplace_back(p, n); return true; }, &used),
            Status::Held);
  EXPECT_EQ(used, 3u);
  EXPECT_EQ(feed_all(d, in.substr(6), m), Status::Ok);  // the keep-alive line holds nothing
  EXPECT_EQ(m, (Msgs{"a", "bb", "cc"}));
}

TEST(HoldFraming, OnAMessageCompletedFromTheBufferedTail) {
  for (Framing f : {Framing::Line, Framing::Len32}) {
    FrameDecoder d(f, 100);
    Msgs m;
    const std::string wire = mg::encode_frame(f, "half", 4) + mg::encode_frame(f, "next", 4);
    const size_t first = mg::encode_frame(f, "half", 4).size();
    EXPECT_EQ(feed_all(d, wire.substr(0, 2), m), Status::Ok);
    size_t used = 0;
    EXPECT_EQ(d.feed(wire.data() + 2, wire.size() - 2, [&](const char* p, size_t n) { m.emplace_back(p, n); return true; }, &used),
              Status::Held);
    EXPECT_EQ(used, first - 2);
    EXPECT_EQ(d.buffered(), 0u);
    EXPECT_EQ(feed_all(d, wire.substr(first), m), Status::Ok);
    EXPECT_EQ(m, (Msgs{"half", "next"}));
  }
}

TEST(HoldFraming, ManyMessagesHeldEveryFewGiveTheSameMessages) {
  for (Framing f : {Framing::Line, Framing::Len32}) {
    Msgs sent;
    std::string wire;
    for (int i = 0; i < 2000; i++) {
      sent.push_back("m" + std::to_string(i));
      wire += mg::encode_frame(f, sent.back().data(), sent.back().size());
    }
    for (size_t step : {size_t{1}, size_t{7}, size_t{4096}, wire.size()}) {
      for (size_t every : {size_t{1}, size_t{3}, size_t{500}}) {
        EXPECT_EQ(feed_holding(f, wire, step, every), sent) << "step " << step << ", hold every " << every;
      }
    }
  }
}

// ---- encode ----

TEST(EncodeFrame, LineAppendsANewline) {
  EXPECT_EQ(mg::encode_frame(Framing::Line, "hi", 2), "hi\n");
  EXPECT_EQ(mg::encode_frame(Framing::Line, "", 0), "\n");
}

TEST(EncodeFrame, Len32PrefixesABigEndianLength) {
  EXPECT_EQ(mg::encode_frame(Framing::Len32, "hi", 2), std::string("\0\0\0\x02hi", 6));
  EXPECT_EQ(mg::encode_frame(Framing::Len32, "", 0), std::string(4, '\0'));
  const std::string big(0x1234 + 0x10000, 'b');
  const std::string framed = mg::encode_frame(Framing::Len32, big.data(), big.size());
  EXPECT_EQ(framed.substr(0, 4), std::string("\x00\x01\x12\x34", 4));
  EXPECT_EQ(framed.size(), big.size() + 4);
}

TEST(EncodeFrame, RoundTripsThroughTheDecoderInRandomChunks) {
  std::mt19937 rng(2024);
  for (Framing framing : {Framing::Line, Framing::Len32}) {
    Msgs sent;
    std::string stream;
    for (int i = 0; i < 500; ++i) {
      std::string msg(rng() % 200, '\0');
      for (auto& c : msg) {
        // line messages cannot contain '\n', must not end in '\r' and must not be empty
        c = static_cast<char>(framing == Framing::Line ? 'a' + rng() % 26 : rng() % 256);
      }
      if (framing == Framing::Line && msg.empty()) msg = "k";
      sent.push_back(msg);
      stream += mg::encode_frame(framing, msg.data(), msg.size());
    }
    FrameDecoder d(framing, 200);
    Msgs got;
    size_t pos = 0;
    while (pos < stream.size()) {
      const size_t n = std::min<size_t>(1 + rng() % 300, stream.size() - pos);
      ASSERT_EQ(d.feed(stream.data() + pos, n, [&](const char* p, size_t len) { got.emplace_back(p, len); return false; }),
                Status::Ok);
      pos += n;
    }
    EXPECT_EQ(got, sent);
    EXPECT_EQ(d.buffered(), 0u);
  }
}

}  // namespace
