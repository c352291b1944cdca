// Unit tests for mg::is_valid_utf8: RFC 3629 boundaries (first/last code point of every length),
// overlongs, surrogates, values above U+10FFFF, truncated and stray bytes, and invalid bytes placed
// where the eight-bytes-at-a-time ASCII path must notice them. Checked against a reference decoder.
#include "core/utf8.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>

namespace {

bool valid(const std::string& s) { return mg::is_valid_utf8(s.data(), s.size()); }

// Encodes any value below 2^21 in the UTF-8 bit pattern, even ones UTF-8 forbids (surrogates).
std::string raw_encode(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

TEST(Utf8, AcceptsEmptyAndPlainAscii) {
  EXPECT_TRUE(mg::is_valid_utf8(nullptr, 0));
  EXPECT_TRUE(valid(""));
  EXPECT_TRUE(valid("{\"m\":\"mesh.send\",\"p\":{\"c\":\"1\",\"d\":\"hello\"}}"));
  EXPECT_TRUE(valid(std::string("a\0b", 3)));  // NUL is U+0000, valid UTF-8
  std::string all_ascii;
  for (int c = 0; c < 0x80; ++c) all_ascii.push_back(static_cast<char>(c));
  EXPECT_TRUE(valid(all_ascii));
}

TEST(Utf8, AcceptsFirstAndLastCodePointOfEachSequenceLength) {
  EXPECT_TRUE(valid("\x7F"));
  EXPECT_TRUE(valid("\xC2\x80"));          // U+0080
  EXPECT_TRUE(valid("\xDF\xBF"));          // U+07FF
  EXPECT_TRUE(valid("\xE0\xA0\x80"));      // U+0800
  EXPECT_TRUE(valid("\xED\x9F\xBF"));      // U+D7FF, just below the surrogates
  EXPECT_TRUE(valid("\xEE\x80\x80"));      // U+E000, just above them
  EXPECT_TRUE(valid("\xEF\xBF\xBF"));      // U+FFFF
  EXPECT_TRUE(valid("\xF0\x90\x80\x80"));  // U+10000
  EXPECT_TRUE(valid("\xF4\x8F\xBF\xBF"));  // U+10FFFF
}

TEST(Utf8, AcceptsRealText) {
  EXPECT_TRUE(valid("Gr\xC3\xBC\xC3\x9F" "e, \xE4\xBD\xA0\xE5\xA5\xBD, \xF0\x9F\x98\x80!"));  // Grüße, 你好, 😀
  EXPECT_TRUE(valid("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"));  // κόσμε (Markus Kuhn's test)
}

TEST(Utf8, RejectsOverlongEncodings) {
  EXPECT_FALSE(valid("\xC0\x80"));          // U+0000 in two bytes
  EXPECT_FALSE(valid("\xC0\xAF"));          // '/' in two bytes
  EXPECT_FALSE(valid("\xC1\xBF"));          // U+007F in two bytes
  EXPECT_FALSE(valid("\xE0\x80\x80"));      // U+0000 in three bytes
  EXPECT_FALSE(valid("\xE0\x9F\xBF"));      // U+07FF in three bytes
  EXPECT_FALSE(valid("\xF0\x80\x80\x80"));  // U+0000 in four bytes
  EXPECT_FALSE(valid("\xF0\x8F\xBF\xBF"));  // U+FFFF in four bytes
}

TEST(Utf8, RejectsUtf16Surrogates) {
  EXPECT_FALSE(valid("\xED\xA0\x80"));                  // U+D800
  EXPECT_FALSE(valid("\xED\xAD\xBF"));                  // U+DB7F
  EXPECT_FALSE(valid("\xED\xBF\xBF"));                  // U+DFFF
  EXPECT_FALSE(valid("\xED\xA0\xBD\xED\xB8\x80"));      // CESU-8 pair for U+1F600
}

TEST(Utf8, RejectsCodePointsAboveU10FFFF) {
  EXPECT_FALSE(valid("\xF4\x90\x80\x80"));      // U+110000
  EXPECT_FALSE(valid("\xF7\xBF\xBF\xBF"));      // U+1FFFFF
  EXPECT_FALSE(valid("\xF8\x88\x80\x80\x80"));  // old five-byte form
  EXPECT_FALSE(valid("\xFC\x84\x80\x80\x80\x80"));
}

TEST(Utf8, RejectsBytesThatNeverAppearInUtf8) {
  for (int b : {0xC0, 0xC1, 0xF5, 0xF6, 0xF7, 0xF8, 0xFB, 0xFC, 0xFE, 0xFF}) {
    EXPECT_FALSE(valid(std::string(1, static_cast<char>(b)) + "\x80\x80\x80")) << b;
  }
}

TEST(Utf8, RejectsStrayContinuationBytes) {
  EXPECT_FALSE(valid("\x80"));
  EXPECT_FALSE(valid("\xBF"));
  EXPECT_FALSE(valid("a\x80" "b"));
  EXPECT_FALSE(valid("\xC3\xA9\xA9"));  // é followed by an extra continuation
}

TEST(Utf8, RejectsSequencesTruncatedAtTheEnd) {
  EXPECT_FALSE(valid("\xC3"));
  EXPECT_FALSE(valid("\xE4\xBD"));
  EXPECT_FALSE(valid("\xF0\x9F\x98"));
  EXPECT_FALSE(valid("abc\xF0"));
}

TEST(Utf8, RejectsSequencesInterruptedByAsciiOrANewLead) {
  EXPECT_FALSE(valid("\xC3" "a"));
  EXPECT_FALSE(valid("\xE4\xBD" "a"));
  EXPECT_FALSE(valid("\xF0\x9F\x98" "a"));
  EXPECT_FALSE(valid("\xE4\xC3\xA9"));
}

TEST(Utf8, FindsAnInvalidByteAtEveryPositionOfALongAsciiRun) {
  // The ASCII fast path reads 8 bytes at a time: the bad byte must be found wherever it falls,
  // including the last bytes that do not fill a whole word.
  for (size_t len = 1; len <= 40; ++len) {
    for (size_t pos = 0; pos < len; ++pos) {
      std::string s(len, 'x');
      s[pos] = '\xFF';
      EXPECT_FALSE(valid(s)) << "len " << len << " pos " << pos;
      s[pos] = '\x80';
      EXPECT_FALSE(valid(s)) << "len " << len << " pos " << pos;
    }
    EXPECT_TRUE(valid(std::string(len, 'x')));
  }
}

TEST(Utf8, AcceptsMultibyteCharactersAtEveryAlignment) {
  for (size_t prefix = 0; prefix < 16; ++prefix) {
    const std::string s = std::string(prefix, 'a') + "\xF0\x9F\x98\x80" + std::string(9, 'b') + "\xC3\xA9";
    EXPECT_TRUE(valid(s)) << prefix;
    EXPECT_FALSE(valid(s.substr(0, s.size() - 1))) << prefix;  // cut inside the final é
  }
}

TEST(Utf8, AgreesWithTheCodePointRulesForEveryScalarValue) {
  // Every value 0..0x1FFFFF in the UTF-8 bit pattern: valid exactly when it is a Unicode scalar
  // value (not a surrogate, not above U+10FFFF).
  for (uint32_t cp = 0; cp < 0x200000; ++cp) {
    const bool expected = cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
    const std::string s = raw_encode(cp);
    if (valid(s) != expected) {
      ADD_FAILURE() << "U+" << std::hex << cp;
      break;
    }
  }
}

TEST(Utf8, RejectsEveryTwoByteOverlongOfEveryAsciiCharacter) {
  for (uint32_t cp = 0; cp < 0x80; ++cp) {
    std::string s;
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    EXPECT_FALSE(valid(s)) << cp;
  }
}

// Utf8Stream: the same verdict as is_valid_utf8 however the text is cut (a WebSocket message split
// over fragments and reads), checked for every scalar value's encoding and every cut of mixed text.
bool stream_valid(const std::string& s, size_t cut) {
  mg::Utf8Stream u;
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t a = std::min(cut, s.size());
  return u.feed(p, a) && u.feed(p + a, s.size() - a) && u.complete();
}

TEST(Utf8Stream, AgreesWithWholeValidationForEveryScalarValueAndCut) {
  for (uint32_t cp = 0; cp < 0x200000; cp += 7) {
    const std::string s = "x" + raw_encode(cp) + "y";
    for (size_t cut = 0; cut <= s.size(); ++cut) {
      if (stream_valid(s, cut) != valid(s)) {
        ADD_FAILURE() << "U+" << std::hex << cp << " cut at " << std::dec << cut;
        return;
      }
    }
  }
}

TEST(Utf8Stream, IncompleteIsNotCompleteAndInvalidStaysInvalid) {
  mg::Utf8Stream u;
  const uint8_t euro[] = {0xE2, 0x82, 0xAC};
  EXPECT_TRUE(u.feed(euro, 2));
  EXPECT_FALSE(u.complete());  // ends inside a character
  EXPECT_TRUE(u.feed(euro + 2, 1));
  EXPECT_TRUE(u.complete());
  const uint8_t bad[] = {0xC3, 0x28};
  EXPECT_FALSE(u.feed(bad, 2));
  EXPECT_FALSE(u.feed(reinterpret_cast<const uint8_t*>("ok"), 2)) << "a rejected stream stays rejected";
  u.reset();
  EXPECT_TRUE(u.feed(reinterpret_cast<const uint8_t*>("ok, ASCII and more than eight bytes"), 35));
  EXPECT_TRUE(u.complete());
}

// Client text made valid for an event (client_events.h): URL parts percent-encoded, other text
// with U+FFFD; valid text, multi-byte characters included, unchanged.
TEST(Utf8Repair, InvalidBytesArePercentEncodedOrReplacedAndValidTextIsKept) {
  EXPECT_EQ(mg::utf8_percent_encode_invalid("/caf\xc3\xa9?a=%FF"), "/caf\xc3\xa9?a=%FF");
  EXPECT_EQ(mg::utf8_percent_encode_invalid("/\xff\xfe"), "/%FF%FE");
  EXPECT_EQ(mg::utf8_percent_encode_invalid("\xc3\x28x"), "%C3(x");               // a cut sequence
  EXPECT_EQ(mg::utf8_percent_encode_invalid("\xed\xa0\x80\xe2\x82\xac"), "%ED%A0%80\xe2\x82\xac");  // surrogate, then a euro
  EXPECT_EQ(mg::utf8_percent_encode_invalid("\xc0\xaf"), "%C0%AF");               // overlong '/'
  EXPECT_EQ(mg::utf8_percent_encode_invalid("\xf0\x9f\x98"), "%F0%9F%98");        // cut at the end
  EXPECT_EQ(mg::utf8_replace_invalid("bye \xff!"), "bye \xef\xbf\xbd!");
  EXPECT_EQ(mg::utf8_replace_invalid("\xf0\x9f\x98\x80 ok"), "\xf0\x9f\x98\x80 ok");
  for (const char* s : {"/\xff\xfe", "\xc3\x28x", "\xed\xa0\x80", "\xf4\x90\x80\x80"}) {
    const std::string a = mg::utf8_percent_encode_invalid(s), b = mg::utf8_replace_invalid(s);
    EXPECT_TRUE(mg::is_valid_utf8(a.data(), a.size())) << a;
    EXPECT_TRUE(mg::is_valid_utf8(b.data(), b.size())) << b;
  }
  EXPECT_EQ(mg::utf8_sequence_length("\xe2\x82\xac", 3), 3u);
  EXPECT_EQ(mg::utf8_sequence_length("\xe2\x82", 2), 0u);
  EXPECT_EQ(mg::utf8_sequence_length("", 0), 0u);
}

}  // namespace
