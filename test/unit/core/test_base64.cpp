// Unit tests for mg::base64_encode / mg::base64_decode: the RFC 4648 §10 vectors, round trips of
// every length and byte value, and the strictness the header promises (padding required, no
// whitespace, nothing outside the standard alphabet, '=' only at the end, zero pad bits).
#include "core/base64.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace {

std::string enc(const std::string& s) { return mg::base64_encode(s.data(), s.size()); }

TEST(Base64, EncodesRfc4648TestVectors) {
  EXPECT_EQ(enc(""), "");
  EXPECT_EQ(enc("f"), "Zg==");
  EXPECT_EQ(enc("fo"), "Zm8=");
  EXPECT_EQ(enc("foo"), "Zm9v");
  EXPECT_EQ(enc("foob"), "Zm9vYg==");
  EXPECT_EQ(enc("fooba"), "Zm9vYmE=");
  EXPECT_EQ(enc("foobar"), "Zm9vYmFy");
}

TEST(Base64, DecodesRfc4648TestVectorsWithoutPaddingBytes) {
  const std::vector<std::pair<std::string, std::string>> vectors = {
      {"", ""},         {"Zg==", "f"},         {"Zm8=", "fo"},         {"Zm9v", "foo"},
      {"Zm9vYg==", "foob"}, {"Zm9vYmE=", "fooba"}, {"Zm9vYmFy", "foobar"},
  };
  for (const auto& v : vectors) {
    std::string out = "garbage";
    ASSERT_TRUE(mg::base64_decode(v.first, out)) << v.first;
    EXPECT_EQ(out, v.second) << v.first;
    EXPECT_EQ(out.size(), v.second.size()) << v.first;
  }
}

TEST(Base64, UsesPlusAndSlashForValues62And63) {
  const std::string bytes("\xfb\xff\xbf", 3);  // 111110 111111 111110 111111
  EXPECT_EQ(enc(bytes), "+/+/");
  std::string out;
  ASSERT_TRUE(mg::base64_decode("+/+/", out));
  EXPECT_EQ(out, bytes);
}

TEST(Base64, RoundTripsEveryLengthUpTo300AndEveryByteValue) {
  std::string data;
  for (int len = 0; len <= 300; ++len) {
    SCOPED_TRACE(len);
    const std::string encoded = enc(data);
    EXPECT_EQ(encoded.size(), static_cast<size_t>((len + 2) / 3 * 4));
    std::string decoded;
    ASSERT_TRUE(mg::base64_decode(encoded, decoded));
    EXPECT_EQ(decoded, data);
    data.push_back(static_cast<char>((len * 37 + 11) & 0xFF));
  }
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string back;
  ASSERT_TRUE(mg::base64_decode(enc(all), back));
  EXPECT_EQ(back, all);
}

TEST(Base64, RoundTripsInputLargerThanOneOpenSslChunk) {
  // The implementation feeds OpenSSL 48 MiB (encode) / 64 MiB of text (decode) at a time.
  std::string data((50u << 20) + 1, '\0');
  uint32_t x = 12345;
  for (auto& c : data) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  const std::string encoded = enc(data);
  ASSERT_EQ(encoded.size(), (data.size() + 2) / 3 * 4);
  std::string decoded;
  ASSERT_TRUE(mg::base64_decode(encoded, decoded));
  EXPECT_TRUE(decoded == data);
}

TEST(Base64, RejectsLengthsThatAreNotAMultipleOfFour) {
  std::string out;
  for (const char* s : {"Z", "Zg", "Zg=", "Zm9vY", "Zm9vYg=", "Zm9vYg==="}) {
    EXPECT_FALSE(mg::base64_decode(s, out)) << s;
  }
}

TEST(Base64, RejectsMissingPadding) {
  std::string out;
  EXPECT_FALSE(mg::base64_decode("Zg", out));
  EXPECT_FALSE(mg::base64_decode("Zm8", out));
  EXPECT_FALSE(mg::base64_decode("Zm9vYg", out));
}

TEST(Base64, RejectsCharactersOutsideTheStandardAlphabet) {
  std::string out;
  for (const char* s : {"Zm9-", "Zm9_", "Zm9!", "Zm.v", "Zm9v*A==", "Zm9\x80"}) {
    EXPECT_FALSE(mg::base64_decode(s, out)) << s;
  }
  EXPECT_FALSE(mg::base64_decode(std::string("Zm\0v", 4), out));
}

TEST(Base64, RejectsWhitespaceAnywhere) {
  std::string out;
  for (const char* s : {" Zm9", "Zm9 ", "Zm9v\nYmFy", "Zm9vYmFy\r\n", "\tZm9vYmFy   "}) {
    EXPECT_FALSE(mg::base64_decode(s, out)) << s;
  }
}

TEST(Base64, RejectsMisplacedPadding) {
  std::string out;
  for (const char* s : {"====", "A===", "=Zg=", "Z=g=", "Zg==Zg==", "Zm8=Zm9v", "Zm=v", "=AAA"}) {
    EXPECT_FALSE(mg::base64_decode(s, out)) << s;
  }
}

TEST(Base64, RejectsNonZeroBitsUnderThePadding) {
  // "Zg==" is 'f'; "Zh==" encodes the same byte with a stray bit set (RFC 4648 §3.5).
  std::string out;
  EXPECT_TRUE(mg::base64_decode("Zg==", out));
  EXPECT_FALSE(mg::base64_decode("Zh==", out));
  EXPECT_FALSE(mg::base64_decode("Zv==", out));
  EXPECT_TRUE(mg::base64_decode("Zm8=", out));
  EXPECT_FALSE(mg::base64_decode("Zm9=", out));
}

TEST(Base64, DecodesBinaryWithEmbeddedZerosAndPaddingZeroBytes) {
  const std::string bytes("\0\0\0\0", 4);
  EXPECT_EQ(enc(bytes), "AAAAAA==");
  std::string out;
  ASSERT_TRUE(mg::base64_decode("AAAAAA==", out));
  EXPECT_EQ(out, bytes);
  ASSERT_TRUE(mg::base64_decode("AA==", out));
  EXPECT_EQ(out, std::string(1, '\0'));
}

}  // namespace
