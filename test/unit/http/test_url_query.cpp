// Unit tests for query strings (http/url_query.h): url_decode and query_param edge cases.
#include "http/url_query.h"

#include <gtest/gtest.h>

#include <string>

namespace {

TEST(UrlDecode, PlainTextIsUnchanged) {
  std::string out;
  ASSERT_TRUE(mg::url_decode("abc-XYZ_0.9~", out));
  EXPECT_EQ(out, "abc-XYZ_0.9~");
  ASSERT_TRUE(mg::url_decode("", out));
  EXPECT_EQ(out, "");
}

TEST(UrlDecode, PlusIsASpace) {
  std::string out;
  ASSERT_TRUE(mg::url_decode("a+b++c+", out));
  EXPECT_EQ(out, "a b  c ");
}

TEST(UrlDecode, PercentEscapesInEitherCase) {
  std::string out;
  ASSERT_TRUE(mg::url_decode("%41%62%2f%2F%20%25%2B", out));
  EXPECT_EQ(out, "Ab// %+");
  ASSERT_TRUE(mg::url_decode("caf%C3%A9", out));
  EXPECT_EQ(out, "caf\xc3\xa9");
  ASSERT_TRUE(mg::url_decode("%00%ff", out));
  EXPECT_EQ(out, std::string("\0\xff", 2));
}

TEST(UrlDecode, EscapeAtTheVeryEnd) {
  std::string out;
  ASSERT_TRUE(mg::url_decode("x%41", out));
  EXPECT_EQ(out, "xA");
  ASSERT_TRUE(mg::url_decode("%41", out));
  EXPECT_EQ(out, "A");
}

TEST(UrlDecode, DecodedPercentIsNotDecodedAgain) {
  std::string out;
  ASSERT_TRUE(mg::url_decode("%2541", out));
  EXPECT_EQ(out, "%41");
}

TEST(UrlDecode, BadEscapesAreRejected) {
  for (const char* bad : {"%", "%4", "a%", "a%4", "%G1", "%1G", "%%", "%-1", "% 1", "%4 ", "%zz", "ab%x"}) {
    std::string out;
    EXPECT_FALSE(mg::url_decode(bad, out)) << bad;
  }
}

TEST(UrlDecode, OutputIsReplacedNotAppended) {
  std::string out = "previous";
  ASSERT_TRUE(mg::url_decode("new", out));
  EXPECT_EQ(out, "new");
}

TEST(QueryParam, FindsEachKey) {
  const std::string q = "intranet=1&uid=u%2042&token=a+b";
  std::string v;
  ASSERT_TRUE(mg::query_param(q, "intranet", v));
  EXPECT_EQ(v, "1");
  ASSERT_TRUE(mg::query_param(q, "uid", v));
  EXPECT_EQ(v, "u 42");
  ASSERT_TRUE(mg::query_param(q, "token", v));
  EXPECT_EQ(v, "a b");
}

TEST(QueryParam, MissingKeyIsFalse) {
  std::string v;
  EXPECT_FALSE(mg::query_param("a=1&b=2", "c", v));
  EXPECT_FALSE(mg::query_param("", "a", v));
  EXPECT_FALSE(mg::query_param("ab=1", "a", v));    // a prefix of a key is not the key
  EXPECT_FALSE(mg::query_param("a=1", "a=1", v));
  EXPECT_FALSE(mg::query_param("xa=1&ax=2", "a", v));
}

TEST(QueryParam, EmptyValueAndKeyWithoutEquals) {
  std::string v = "unchanged?";
  ASSERT_TRUE(mg::query_param("a=&b=2", "a", v));
  EXPECT_EQ(v, "");
  v = "x";
  ASSERT_TRUE(mg::query_param("b=2&flag", "flag", v));
  EXPECT_EQ(v, "");
}

TEST(QueryParam, FirstOccurrenceWins) {
  std::string v;
  ASSERT_TRUE(mg::query_param("uid=first&uid=second", "uid", v));
  EXPECT_EQ(v, "first");
}

TEST(QueryParam, ValueMayContainEquals) {
  std::string v;
  ASSERT_TRUE(mg::query_param("token=abc==&x=1", "token", v));
  EXPECT_EQ(v, "abc==");
}

TEST(QueryParam, EncodedKeysAreDecodedBeforeComparing) {
  std::string v;
  ASSERT_TRUE(mg::query_param("u%69d=7", "uid", v));
  EXPECT_EQ(v, "7");
  ASSERT_TRUE(mg::query_param("my+key=8", "my key", v));
  EXPECT_EQ(v, "8");
}

TEST(QueryParam, EmptyPartsAreSkipped) {
  std::string v;
  ASSERT_TRUE(mg::query_param("&&a=1&&", "a", v));
  EXPECT_EQ(v, "1");
  ASSERT_TRUE(mg::query_param("x=1&", "x", v));
  EXPECT_EQ(v, "1");
}

TEST(QueryParam, BadEscapeInTheValueIsFalse) {
  std::string v;
  EXPECT_FALSE(mg::query_param("uid=%zz", "uid", v));
  EXPECT_FALSE(mg::query_param("uid=abc%", "uid", v));
}

TEST(QueryParam, BadEscapeInAnotherPartDoesNotHideTheKey) {
  std::string v;
  ASSERT_TRUE(mg::query_param("junk%=1&uid=5", "uid", v));
  EXPECT_EQ(v, "5");
  ASSERT_TRUE(mg::query_param("other=%zz&uid=6", "uid", v));
  EXPECT_EQ(v, "6");
}

TEST(QueryParam, LongQueryWithManyParts) {
  std::string q;
  for (int i = 0; i < 10000; ++i) q += "k" + std::to_string(i) + "=v" + std::to_string(i) + "&";
  std::string v;
  ASSERT_TRUE(mg::query_param(q, "k9999", v));
  EXPECT_EQ(v, "v9999");
  EXPECT_FALSE(mg::query_param(q, "k10000", v));
}

}  // namespace
