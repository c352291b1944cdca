// Unit tests for the shape checks of conn.call (api/conn_call.h, PROTOCOL.md §5.3): for each
// function, the argument arrays it accepts and those it rejects with a message (error 101), the
// WebSocket close codes a backend may ask for, the 123-byte close reason bound, and channel names
// (1..128 bytes of printable ASCII).
#include "api/conn_call.h"

#include <gtest/gtest.h>

#include <cjson/cJSON.h>

#include <string>
#include <vector>

#include "core/json_text.h"

namespace {

using mg::ConnCall;
using mg::JsonPtr;
using Fn = ConnCall::Fn;

// Parses `f` and `a` (JSON texts; an empty `a` means the field is absent).
bool call(const std::string& f, const std::string& a, ConnCall& out, std::string& error) {
  JsonPtr fn(cJSON_Parse(f.c_str()));
  EXPECT_TRUE(fn) << "test bug: bad JSON " << f;
  JsonPtr args;
  if (!a.empty()) {
    args = JsonPtr(cJSON_Parse(a.c_str()));
    EXPECT_TRUE(args) << "test bug: bad JSON " << a;
  }
  return mg::parse_conn_call(fn.get(), args.get(), out, error);
}

ConnCall accepted(const std::string& f, const std::string& a) {
  ConnCall out{};
  std::string error;
  EXPECT_TRUE(call(f, a, out, error)) << "f=" << f << " a=" << a << ": " << error;
  return out;
}

std::string rejected(const std::string& f, const std::string& a) {
  ConnCall out{};
  std::string error;
  EXPECT_FALSE(call(f, a, out, error)) << "accepted f=" << f << " a=" << a;
  EXPECT_FALSE(error.empty()) << "f=" << f << " a=" << a;
  return error;
}

std::string json_str(const std::string& s) { return mg::json_string(s); }

// ---------------------------------------------------------------------------------------------
// The function name

TEST(ConnCallFunction, MissingOrNonStringFunctionIsRejected) {
  ConnCall out{};
  std::string error;
  EXPECT_FALSE(mg::parse_conn_call(nullptr, nullptr, out, error));
  EXPECT_FALSE(error.empty());
  for (const char* f : {"null", "1", "true", "[\"close\"]", "{\"f\":\"close\"}"}) rejected(f, "[]");
}

TEST(ConnCallFunction, UnknownFunctionIsRejectedAndNamed) {
  const std::string e = rejected("\"kick\"", "[]");
  EXPECT_NE(e.find("kick"), std::string::npos) << e;
  rejected("\"\"", "[]");
  rejected("\"Close\"", "[]");  // names are case-sensitive
  rejected("\"close \"", "[]");
}

TEST(ConnCallFunction, ArgsThatAreNotAnArrayAreRejected) {
  for (const char* a : {"{}", "\"x\"", "1", "true", "{\"0\":\"ch\"}"})
    for (const char* f : {"\"close\"", "\"subscribe\"", "\"set_context\"", "\"set_context_value\""}) rejected(f, a);
}

// ---------------------------------------------------------------------------------------------
// set_context_value [key, value]

TEST(ConnCallSetContextValue, KeyAndAnyJsonValueAreAccepted) {
  for (const char* value : {"1", "\"v\"", "null", "true", "[1,2]", "{\"a\":{\"b\":[]}}", "-0.5"}) {
    SCOPED_TRACE(value);
    const ConnCall c = accepted("\"set_context_value\"", std::string("[\"user_id\",") + value + "]");
    EXPECT_EQ(c.fn, Fn::SetContextValue);
    EXPECT_EQ(c.key, "user_id");
    JsonPtr want(cJSON_Parse(value)), got(cJSON_Parse(c.value_json.c_str()));
    ASSERT_TRUE(got) << c.value_json;
    EXPECT_TRUE(cJSON_Compare(want.get(), got.get(), true)) << c.value_json;
  }
}

TEST(ConnCallSetContextValue, KeyWithUnicodeAndPunctuationIsKept) {
  const ConnCall c = accepted("\"set_context_value\"", R"(["k\u00e9y.with \"quotes\"", 1])");
  EXPECT_EQ(c.key, "k\xc3\xa9y.with \"quotes\"");
}

TEST(ConnCallSetContextValue, WrongShapesAreRejected) {
  for (const char* a : {"", "[]", "[\"k\"]", "[\"k\",1,2]", "[1,1]", "[null,1]", "[\"\",1]", "[[\"k\"],1]",
                        "[{\"k\":1},1]"}) {
    SCOPED_TRACE(a);
    rejected("\"set_context_value\"", a);
  }
}

// ---------------------------------------------------------------------------------------------
// set_context [object]

TEST(ConnCallSetContext, OneObjectIsAccepted) {
  const ConnCall c = accepted("\"set_context\"", R"([{"user_id":10000,"roles":["a","b"]}])");
  EXPECT_EQ(c.fn, Fn::SetContext);
  JsonPtr got(cJSON_Parse(c.value_json.c_str()));
  ASSERT_TRUE(cJSON_IsObject(got.get()));
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(got.get(), "user_id")->valueint, 10000);
}

TEST(ConnCallSetContext, EmptyObjectIsAccepted) {
  EXPECT_EQ(accepted("\"set_context\"", "[{}]").value_json, "{}");
}

TEST(ConnCallSetContext, WrongShapesAreRejected) {
  for (const char* a : {"", "[]", "[{},{}]", "[[]]", "[null]", "[\"{}\"]", "[1]", "[{}, 1]"}) {
    SCOPED_TRACE(a);
    rejected("\"set_context\"", a);
  }
}

// ---------------------------------------------------------------------------------------------
// subscribe / unsubscribe [ch, ...]

TEST(ConnCallSubscribe, ChannelsAreAcceptedInOrder) {
  const ConnCall c = accepted("\"subscribe\"", R"(["news","room:42","a"])");
  EXPECT_EQ(c.fn, Fn::Subscribe);
  EXPECT_EQ(c.channels, (std::vector<std::string>{"news", "room:42", "a"}));
  const ConnCall u = accepted("\"unsubscribe\"", R"(["room:42"])");
  EXPECT_EQ(u.fn, Fn::Unsubscribe);
  EXPECT_EQ(u.channels, std::vector<std::string>{"room:42"});
}

TEST(ConnCallSubscribe, DuplicateChannelsInOneCallAreAccepted) {
  EXPECT_EQ(accepted("\"subscribe\"", R"(["x","x"])").channels.size(), 2u);
}

TEST(ConnCallSubscribe, ChannelOf128BytesIsAcceptedAnd129Rejected) {
  EXPECT_EQ(accepted("\"subscribe\"", "[" + json_str(std::string(128, 'c')) + "]").channels.at(0).size(), 128u);
  rejected("\"subscribe\"", "[" + json_str(std::string(129, 'c')) + "]");
  rejected("\"unsubscribe\"", "[" + json_str(std::string(129, 'c')) + "]");
}

TEST(ConnCallSubscribe, WrongShapesAreRejected) {
  for (const char* f : {"\"subscribe\"", "\"unsubscribe\""}) {
    for (const char* a : {"", "[]", "[1]", "[null]", "[[\"a\"]]", "[\"\"]", "[\"ok\",\"\"]", "[\"ok\",2]",
                          "[\"has space\"]", "[\"tab\\t\"]", "[\"caf\\u00e9\"]"}) {
      SCOPED_TRACE(std::string(f) + " " + a);
      rejected(f, a);
    }
  }
}

TEST(ConnCallSubscribe, OneBadChannelRejectsTheWholeCall) {
  ConnCall out{};
  std::string error;
  EXPECT_FALSE(call("\"subscribe\"", R"(["good","bad one","also-good"])", out, error));
  EXPECT_NE(error.find("128"), std::string::npos) << error;
}

TEST(ConnCallSubscribe, ManyChannelsInOneCallAreAccepted) {
  std::string a = "[";
  for (int i = 0; i < 1000; ++i) a += (i ? ",\"ch" : "\"ch") + std::to_string(i) + "\"";
  a += "]";
  EXPECT_EQ(accepted("\"subscribe\"", a).channels.size(), 1000u);
}

// ---------------------------------------------------------------------------------------------
// close [code?, reason?]

TEST(ConnCallClose, NoArgumentsMeansCode1000AndNoReason) {
  for (const char* a : {"", "[]", "[null]"}) {
    SCOPED_TRACE(a);
    const ConnCall c = accepted("\"close\"", a);
    EXPECT_EQ(c.fn, Fn::Close);
    EXPECT_EQ(c.code, 1000);
    EXPECT_EQ(c.reason, "");
  }
}

TEST(ConnCallClose, ValidCodesAreAccepted) {
  for (int code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4321, 4999}) {
    SCOPED_TRACE(code);
    EXPECT_EQ(accepted("\"close\"", "[" + std::to_string(code) + "]").code, code);
  }
}

TEST(ConnCallClose, ReservedAndOutOfRangeCodesAreRejected) {
  // 1004 reserved; 1005, 1006 and 1015 must never be sent; 2000-2999 reserved for extensions.
  for (int code : {0, -1, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535, 65536, 100000}) {
    SCOPED_TRACE(code);
    const std::string e = rejected("\"close\"", "[" + std::to_string(code) + "]");
    EXPECT_NE(e.find("code"), std::string::npos) << e;
  }
}

TEST(ConnCallClose, NonIntegerOrNonNumberCodesAreRejected) {
  for (const char* code : {"1000.5", "3000.0001", "\"1000\"", "true", "[1000]", "{}", "1e300", "-1e300",
                           "4294968296", "-2147482648"}) {
    SCOPED_TRACE(code);
    rejected("\"close\"", std::string("[") + code + "]");
  }
}

TEST(ConnCallClose, CodeAndReasonAreKept) {
  const ConnCall c = accepted("\"close\"", R"([4001,"banned"])");
  EXPECT_EQ(c.code, 4001);
  EXPECT_EQ(c.reason, "banned");
}

TEST(ConnCallClose, ReasonWithNullCodeKeepsTheDefaultCode) {
  const ConnCall c = accepted("\"close\"", R"([null,"bye"])");
  EXPECT_EQ(c.code, 1000);
  EXPECT_EQ(c.reason, "bye");
}

TEST(ConnCallClose, ReasonOf123BytesIsAcceptedAnd124Rejected) {
  EXPECT_EQ(accepted("\"close\"", "[1000," + json_str(std::string(123, 'r')) + "]").reason.size(), 123u);
  const std::string e = rejected("\"close\"", "[1000," + json_str(std::string(124, 'r')) + "]");
  EXPECT_NE(e.find("123"), std::string::npos) << e;
}

TEST(ConnCallClose, ReasonIsMeasuredInBytesNotCharacters) {
  // 41 three-byte characters = 123 bytes; 42 = 126 bytes.
  std::string ok, over;
  for (int i = 0; i < 41; ++i) ok += "\xe2\x82\xac";
  over = ok + "\xe2\x82\xac";
  EXPECT_EQ(accepted("\"close\"", "[1000," + json_str(ok) + "]").reason, ok);
  rejected("\"close\"", "[1000," + json_str(over) + "]");
}

TEST(ConnCallClose, HugeReasonIsRejected) {
  rejected("\"close\"", "[1000," + json_str(std::string(1 << 20, 'r')) + "]");
}

TEST(ConnCallClose, WrongShapesAreRejected) {
  for (const char* a : {"[1000,\"r\",1]", "[1000,1]", "[1000,[\"r\"]]", "[\"bye\"]", "[1000,{}]", "[1000,true]"}) {
    SCOPED_TRACE(a);
    rejected("\"close\"", a);
  }
}

// ---------------------------------------------------------------------------------------------
// valid_channel_name

TEST(ChannelName, EmptyIsInvalid) { EXPECT_FALSE(mg::valid_channel_name("")); }

TEST(ChannelName, OneTo128BytesAreValid) {
  EXPECT_TRUE(mg::valid_channel_name("a"));
  EXPECT_TRUE(mg::valid_channel_name(std::string(127, 'x')));
  EXPECT_TRUE(mg::valid_channel_name(std::string(128, 'x')));
  EXPECT_FALSE(mg::valid_channel_name(std::string(129, 'x')));
  EXPECT_FALSE(mg::valid_channel_name(std::string(100000, 'x')));
}

TEST(ChannelName, EveryPrintableAsciiCharacterIsValid) {
  for (int c = 0x21; c <= 0x7e; ++c) EXPECT_TRUE(mg::valid_channel_name(std::string(1, static_cast<char>(c)))) << c;
  EXPECT_TRUE(mg::valid_channel_name("room:42/sub-topic_{a}.b~!@#$%^&*()"));
}

TEST(ChannelName, SpaceAndControlCharactersAreInvalid) {
  EXPECT_FALSE(mg::valid_channel_name(" "));
  EXPECT_FALSE(mg::valid_channel_name("a b"));
  EXPECT_FALSE(mg::valid_channel_name("trailing "));
  for (int c = 0; c < 0x20; ++c) EXPECT_FALSE(mg::valid_channel_name("a" + std::string(1, static_cast<char>(c)) + "b")) << c;
  EXPECT_FALSE(mg::valid_channel_name("a\x7f"));
  EXPECT_FALSE(mg::valid_channel_name(std::string("a\0b", 3)));
}

TEST(ChannelName, NonAsciiIsInvalid) {
  EXPECT_FALSE(mg::valid_channel_name("caf\xc3\xa9"));
  EXPECT_FALSE(mg::valid_channel_name("\xe2\x82\xac"));
  EXPECT_FALSE(mg::valid_channel_name("\xff"));
  EXPECT_FALSE(mg::valid_channel_name("\x80"));
}

}  // namespace
