// Unit tests for the frame header reader (ws/ws_header.h): every length form, masked or not, fed
// whole in one call and one byte at a time, and the errors it must report at the byte that shows them.
#include "ws/ws_header.h"

#include <gtest/gtest.h>

#include <vector>

namespace {

using mg::WsHeaderReader;
using Step = WsHeaderReader::Step;

struct Fed {
  Step step;
  size_t used;
  mg::WsFrameHeader h;
};

Fed whole(const std::vector<uint8_t>& bytes) {
  WsHeaderReader r;
  size_t used = 0;
  Step s = r.feed(bytes.data(), bytes.size(), used);
  return Fed{s, used, r.header()};
}

Fed bytewise(const std::vector<uint8_t>& bytes) {
  WsHeaderReader r;
  size_t used = 0;
  Step s = Step::NeedMore;
  for (size_t k = 0; k < bytes.size() && s == Step::NeedMore; k++) s = r.feed(&bytes[k], 1, used);
  return Fed{s, used, r.header()};
}

TEST(WsHeaderReader, MaskedShortHeaderInOneCall) {
  for (const Fed& f : {whole({0x81, 0x86, 1, 2, 3, 4}), bytewise({0x81, 0x86, 1, 2, 3, 4})}) {
    EXPECT_EQ(f.step, Step::Done);
    EXPECT_EQ(f.used, 6u);
    EXPECT_TRUE(f.h.fin);
    EXPECT_TRUE(f.h.masked);
    EXPECT_EQ(f.h.opcode, 1);
    EXPECT_EQ(f.h.length, 6u);
    EXPECT_EQ(f.h.mask[0], 1);
    EXPECT_EQ(f.h.mask[3], 4);
  }
}

TEST(WsHeaderReader, SixteenAndSixtyFourBitLengths) {
  for (const Fed& f : {whole({0x82, 0xFE, 0x01, 0x00, 9, 8, 7, 6}), bytewise({0x82, 0xFE, 0x01, 0x00, 9, 8, 7, 6})}) {
    EXPECT_EQ(f.step, Step::Done);
    EXPECT_EQ(f.used, 8u);
    EXPECT_EQ(f.h.opcode, 2);
    EXPECT_EQ(f.h.length, 256u);
    EXPECT_EQ(f.h.mask[0], 9);
  }
  const std::vector<uint8_t> big = {0x02, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0};  // not final, unmasked, 65536
  for (const Fed& f : {whole(big), bytewise(big)}) {
    EXPECT_EQ(f.step, Step::Done);
    EXPECT_EQ(f.used, 10u);
    EXPECT_FALSE(f.h.fin);
    EXPECT_FALSE(f.h.masked);
    EXPECT_EQ(f.h.length, 65536u);
  }
}

TEST(WsHeaderReader, TakesNoByteBeyondTheHeader) {
  WsHeaderReader r;
  const std::vector<uint8_t> bytes = {0x81, 0x82, 1, 2, 3, 4, 'h', 'i'};
  size_t used = 0;
  EXPECT_EQ(r.feed(bytes.data(), bytes.size(), used), Step::Done);
  EXPECT_EQ(used, 6u);
}

TEST(WsHeaderReader, ErrorsAtTheByteThatShowsThem) {
  // A control frame over 125 bytes: known at byte 2.
  Fed f = whole({0x89, 0xFE, 0x00, 0x80});
  EXPECT_EQ(f.step, Step::Error);
  EXPECT_EQ(f.used, 2u);
  // A 16-bit length that fits in 7 bits: known at byte 4.
  f = bytewise({0x81, 0xFE, 0x00, 0x05, 1, 2, 3, 4});
  EXPECT_EQ(f.step, Step::Error);
  EXPECT_EQ(f.used, 4u);
  // A 64-bit length with the top bit set.
  f = whole({0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(f.step, Step::Error);
  EXPECT_EQ(f.used, 10u);
}

TEST(WsHeaderReader, ResetReadsTheNextHeader) {
  WsHeaderReader r;
  const std::vector<uint8_t> a = {0x81, 0x80, 1, 2, 3, 4}, b = {0x88, 0x02};
  size_t used = 0;
  ASSERT_EQ(r.feed(a.data(), a.size(), used), Step::Done);
  r.reset();
  used = 0;
  ASSERT_EQ(r.feed(b.data(), b.size(), used), Step::Done);
  EXPECT_EQ(r.header().opcode, 8);
  EXPECT_FALSE(r.header().masked);
  EXPECT_EQ(r.header().length, 2u);
}

}  // namespace
