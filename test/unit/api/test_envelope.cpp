// Unit tests for the control API envelope (api/envelope.h, PROTOCOL.md §5.1): parsing of
// {"m","p","i"} requests ("id" accepted for "i"), "i" echoed exactly whatever its type, the params
// of an HTTP body, and response texts that parse back with cJSON with messages escaped.
#include "api/envelope.h"

#include <gtest/gtest.h>

#include <cjson/cJSON.h>

#include <string>

namespace {

using mg::Envelope;
using mg::JsonPtr;

bool parse(const std::string& text, Envelope& env, std::string& error) {
  return mg::parse_envelope(text.data(), text.size(), env, error);
}

Envelope parse_ok(const std::string& text) {
  Envelope env;
  std::string error;
  EXPECT_TRUE(parse(text, env, error)) << error << " for " << text;
  return env;
}

std::string parse_error(const std::string& text, Envelope* out = nullptr) {
  Envelope env;
  std::string error;
  EXPECT_FALSE(parse(text, env, error)) << "accepted " << text;
  EXPECT_FALSE(error.empty()) << text;
  if (out) *out = std::move(env);
  return error;
}

JsonPtr parse_json(const std::string& text) { return JsonPtr(cJSON_Parse(text.c_str())); }

// ---------------------------------------------------------------------------------------------
// Requests

TEST(EnvelopeParse, FullRequestGivesMethodParamsAndId) {
  const Envelope env = parse_ok(R"({"m":"mesh.send","p":{"c":"123","d":"hi"},"i":7})");
  EXPECT_EQ(env.method, "mesh.send");
  ASSERT_TRUE(cJSON_IsObject(env.params));
  const cJSON* c = cJSON_GetObjectItemCaseSensitive(env.params, "c");
  ASSERT_TRUE(cJSON_IsString(c));
  EXPECT_STREQ(c->valuestring, "123");
  EXPECT_EQ(env.id_json, "7");
}

TEST(EnvelopeParse, KeyOrderDoesNotMatter) {
  const Envelope env = parse_ok(R"({"i":"x","p":{"a":1},"m":"conn.info"})");
  EXPECT_EQ(env.method, "conn.info");
  EXPECT_EQ(env.id_json, "\"x\"");
  EXPECT_NE(cJSON_GetObjectItemCaseSensitive(env.params, "a"), nullptr);
}

TEST(EnvelopeParse, WhitespaceAroundAndInsideIsAccepted) {
  const Envelope env = parse_ok(" \r\n\t{ \"m\" : \"node.list\" ,\n \"i\" : 1 }\n ");
  EXPECT_EQ(env.method, "node.list");
  EXPECT_EQ(env.id_json, "1");
}

TEST(EnvelopeParse, MissingIdEchoesNull) {
  EXPECT_EQ(parse_ok(R"({"m":"node.list"})").id_json, "null");
}

TEST(EnvelopeId, SmallIntegersAndStringsAreEchoedExactly) {
  for (const char* id : {"0", "1", "-1", "42", "2147483647", "-2147483648", "\"abc\"", "\"\"", "\"42\"",
                         "\"1463786910324359168\"", "\"with \\\"quotes\\\" and \\\\ slash\""}) {
    SCOPED_TRACE(id);
    EXPECT_EQ(parse_ok(std::string(R"({"m":"x","i":)") + id + "}").id_json, id);
  }
}

TEST(EnvelopeId, NullTrueFalseAreEchoed) {
  EXPECT_EQ(parse_ok(R"({"m":"x","i":null})").id_json, "null");
  EXPECT_EQ(parse_ok(R"({"m":"x","i":true})").id_json, "true");
  EXPECT_EQ(parse_ok(R"({"m":"x","i":false})").id_json, "false");
}

TEST(EnvelopeId, ObjectsAndArraysAreEchoedAsTheSameValue) {
  const Envelope env = parse_ok(R"({"m":"x","i":{"req":[1,"two",{"three":null}],"n":-5}})");
  EXPECT_EQ(env.id_json, R"({"req":[1,"two",{"three":null}],"n":-5})");
  EXPECT_EQ(parse_ok(R"({"m":"x","i":[]})").id_json, "[]");
  EXPECT_EQ(parse_ok(R"({"m":"x","i":{}})").id_json, "{}");
}

TEST(EnvelopeId, FractionsAreEchoedAsTheSameNumber) {
  const Envelope env = parse_ok(R"({"m":"x","i":1.5})");
  JsonPtr back = parse_json(env.id_json);
  ASSERT_TRUE(back) << env.id_json;
  EXPECT_DOUBLE_EQ(back.get()->valuedouble, 1.5);
}

TEST(EnvelopeId, IntegersOfUpTo15DigitsAreEchoedExactly) {
  for (const char* id : {"999999999999999", "-999999999999999", "123456789012345", "100000000000000"}) {
    SCOPED_TRACE(id);
    EXPECT_EQ(parse_ok(std::string(R"({"m":"x","i":)") + id + "}").id_json, id);
  }
}

// cJSON keeps numbers as doubles and would print large integer ids changed (9007199254740992 →
// 9.00719925474099e+15). The id is echoed from its text, so the client can always match the answer.
TEST(EnvelopeId, LargeIntegersAreEchoedExactly) {
  for (const char* id : {"1000000000000001", "9007199254740992", "9007199254740993", "1463786910324359168",
                         "18446744073709551615", "123456789012345678901234567890", "-9223372036854775808"}) {
    SCOPED_TRACE(id);
    EXPECT_EQ(parse_ok(std::string(R"({"m":"x","i":)") + id + "}").id_json, id);
  }
}

TEST(EnvelopeId, IdIsAcceptedForI) {
  EXPECT_EQ(parse_ok(R"({"m":"mesh.send","p":{},"id":99})").id_json, "99");
  EXPECT_EQ(parse_ok(R"({"m":"mesh.send","id":"req-1"})").id_json, "\"req-1\"");
}

TEST(EnvelopeId, IWinsOverIdWhenBothArePresent) {
  EXPECT_EQ(parse_ok(R"({"m":"x","id":2,"i":1})").id_json, "1");
  EXPECT_EQ(parse_ok(R"({"id":2,"m":"x","i":1})").id_json, "1");
}

TEST(EnvelopeId, KeysAreCaseSensitive) {
  EXPECT_EQ(parse_ok(R"({"m":"x","I":5})").id_json, "null");
  EXPECT_EQ(parse_ok(R"({"m":"x","ID":5})").id_json, "null");
}

TEST(EnvelopeId, IdIsKeptWhenTheRestOfTheRequestIsBad) {
  // So that the 101 error can still be matched to the request.
  Envelope env;
  parse_error(R"({"i":31,"p":{}})", &env);
  EXPECT_EQ(env.id_json, "31");
  parse_error(R"({"m":"x","p":[1],"i":"q"})", &env);
  EXPECT_EQ(env.id_json, "\"q\"");
  parse_error(R"({"m":5,"id":{"a":1}})", &env);
  EXPECT_EQ(env.id_json, R"({"a":1})");
}

TEST(EnvelopeParams, MissingPIsAnEmptyObject) {
  const Envelope env = parse_ok(R"({"m":"queue.unpop","i":1})");
  ASSERT_NE(env.params, nullptr);
  EXPECT_TRUE(cJSON_IsObject(env.params));
  EXPECT_EQ(cJSON_GetArraySize(env.params), 0);
}

TEST(EnvelopeParams, NullPIsAnEmptyObject) {
  const Envelope env = parse_ok(R"({"m":"queue.unpop","p":null})");
  ASSERT_NE(env.params, nullptr);
  EXPECT_TRUE(cJSON_IsObject(env.params));
  EXPECT_EQ(cJSON_GetArraySize(env.params), 0);
}

TEST(EnvelopeParams, EmptyParamsSeenByOneRequestStayEmptyForTheNext) {
  // The empty params object may be shared; nothing a request carries may leak into it.
  parse_ok(R"({"m":"a","p":{"x":1}})");
  const Envelope env = parse_ok(R"({"m":"b"})");
  EXPECT_EQ(cJSON_GetArraySize(env.params), 0);
}

TEST(EnvelopeParams, PThatIsNotAnObjectIsRejected) {
  for (const char* p : {"[]", "[1,2]", "\"str\"", "1", "0", "true", "false"}) {
    SCOPED_TRACE(p);
    const std::string e = parse_error(std::string(R"({"m":"x","p":)") + p + R"(,"i":1})");
    EXPECT_NE(e.find("\"p\""), std::string::npos) << e;
  }
}

TEST(EnvelopeParams, NestedParamsArePreserved) {
  const Envelope env = parse_ok(R"({"m":"conn.call","p":{"c":"1","f":"set_context","a":[{"k":{"deep":[1,2,3]}}]}})");
  const cJSON* a = cJSON_GetObjectItemCaseSensitive(env.params, "a");
  ASSERT_TRUE(cJSON_IsArray(a));
  EXPECT_EQ(mg::json_print(a), R"([{"k":{"deep":[1,2,3]}}])");
}

TEST(EnvelopeMethod, MissingEmptyOrNonStringMIsRejected) {
  for (const char* body : {R"({"p":{}})", R"({"m":""})", R"({"m":null})", R"({"m":1})", R"({"m":["a"]})",
                           R"({"m":{"n":"a"}})", R"({"M":"mesh.send"})", "{}"}) {
    SCOPED_TRACE(body);
    const std::string e = parse_error(body);
    EXPECT_NE(e.find("\"m\""), std::string::npos) << e;
  }
}

TEST(EnvelopeMethod, MethodIsTakenVerbatim) {
  EXPECT_EQ(parse_ok(R"({"m":"no.such.method"})").method, "no.such.method");
  EXPECT_EQ(parse_ok(R"({"m":"caf\u00e9"})").method, "caf\xc3\xa9");
}

TEST(EnvelopeMalformed, MalformedJsonIsRejected) {
  for (const char* text : {"", " ", "{", "}", "{\"m\":", "{\"m\":\"x\"", "{\"m\":\"x\",}", "{m:\"x\"}",
                           "{'m':'x'}", "{\"m\":\"x\" \"i\":1}", "ping", "nul", "{\"m\":\"unterminated}",
                           "{\"m\":\"x\",\"i\":NaN}"}) {
    SCOPED_TRACE(text);
    parse_error(text);
  }
}

TEST(EnvelopeMalformed, MalformedJsonMessageSaysSo) {
  EXPECT_NE(parse_error("{nope").find("malformed"), std::string::npos);
}

TEST(EnvelopeMalformed, NonObjectJsonIsRejectedWithAnExplanation) {
  for (const char* text : {"[]", "[{\"m\":\"x\"}]", "\"mesh.send\"", "42", "null", "true"}) {
    SCOPED_TRACE(text);
    const std::string e = parse_error(text);
    EXPECT_NE(e.find("object"), std::string::npos) << e;
  }
}

TEST(EnvelopeMalformed, LengthIsRespectedWithoutATerminatingNul) {
  // The buffer goes on past `len` with bytes that would make a different request.
  const std::string buf = R"({"m":"a","i":1}{"m":"b"})";
  Envelope env;
  std::string error;
  ASSERT_TRUE(mg::parse_envelope(buf.data(), 15, env, error)) << error;
  EXPECT_EQ(env.method, "a");
  EXPECT_EQ(env.id_json, "1");
  EXPECT_FALSE(mg::parse_envelope(buf.data(), 10, env, error));  // cut inside the object
}

TEST(EnvelopeMalformed, TrailingBytesAfterTheObjectAreRejected) {
  for (const std::string& text : {std::string(R"({"m":"x"}garbage)"), std::string(R"({"m":"x"}})"),
                                  std::string(R"({"m":"x"}{"m":"y"})"), std::string(R"({"m":"x"},)"),
                                  std::string("{\"m\":\"x\"}\0", 10)}) {
    SCOPED_TRACE(text);
    parse_error(text);
  }
  EXPECT_EQ(parse_ok("{\"m\":\"x\"} \r\n\t").method, "x");  // white space may follow
}

TEST(EnvelopeMalformed, RawNulByteInsideTheObjectIsRejected) {
  parse_error(std::string("{\"m\":\"x\"\0,\"i\":1}", 17));
}

TEST(EnvelopeMalformed, EscapedNulInAnyStringIsRejectedNotCutShort) {
  // cJSON would cut the string at the NUL: "news\u0000x" would become "news".
  for (const char* text : {R"({"m":"x\u0000y"})", R"({"m":"conn.call","p":{"c":"1","f":"subscribe","a":["news\u0000x"]}})",
                           R"({"m":"x","i":"a\u0000"})", R"({"m":"x","p":{"k\u0000":1}})"}) {
    SCOPED_TRACE(text);
    parse_error(text);
  }
  // An escaped backslash followed by "u0000" is not a NUL.
  EXPECT_EQ(parse_ok(R"({"m":"x","i":"\\u0000"})").id_json, R"("\\u0000")");
}

TEST(EnvelopeMalformed, InvalidUtf8IsRejected) {
  for (const std::string& text : {std::string("{\"m\":\"caf\xe9\"}"), std::string("{\"m\":\"\xc0\xaf\"}"),
                                  std::string("{\"m\":\"x\",\"i\":\"\xed\xa0\x80\"}")}) {
    SCOPED_TRACE(text);
    parse_error(text);
  }
  EXPECT_EQ(parse_ok("{\"m\":\"caf\xc3\xa9\"}").method, "caf\xc3\xa9");
}

// cJSON is lenient where RFC 8259 is not: it reads 01 as 1 and skips every byte up to 0x20
// (control characters) as if it were white space; json_parse_strict checks RFC 8259 first, so
// these requests get error 101.
TEST(EnvelopeMalformed, LeadingZerosAndControlBytesAreRejected) {
  for (const std::string& text : {std::string(R"({"m":"x","i":01})"), std::string("{\"m\":\"x\",\x01\"i\":1}"),
                                  std::string("\x1f{\"m\":\"x\"}")}) {
    SCOPED_TRACE(text);
    parse_error(text);
  }
}

TEST(EnvelopeMalformed, DeeplyNestedInputIsRejectedNotACrash) {
  std::string deep = R"({"m":"x","p":{"a":)";
  for (int i = 0; i < 100000; ++i) deep += '[';
  for (int i = 0; i < 100000; ++i) deep += ']';
  deep += "}}";
  Envelope env;
  std::string error;
  EXPECT_FALSE(parse(deep, env, error));
}

TEST(EnvelopeMalformed, LargeValidRequestIsAccepted) {
  const std::string big(1 << 20, 'x');
  const Envelope env = parse_ok(R"({"m":"mesh.send","p":{"c":"1","d":")" + big + R"("},"i":1})");
  const cJSON* d = cJSON_GetObjectItemCaseSensitive(env.params, "d");
  ASSERT_TRUE(cJSON_IsString(d));
  EXPECT_EQ(std::string(d->valuestring).size(), big.size());
}

// ---------------------------------------------------------------------------------------------
// HTTP params body

TEST(EnvelopeBody, EmptyOrWhitespaceBodyIsAnEmptyObject) {
  for (const char* body : {"", " ", "\r\n", "\t \n"}) {
    JsonPtr out;
    std::string error;
    ASSERT_TRUE(mg::parse_params_body(body, out, error)) << error;
    ASSERT_TRUE(cJSON_IsObject(out.get()));
    EXPECT_EQ(cJSON_GetArraySize(out.get()), 0);
  }
}

TEST(EnvelopeBody, ObjectBodyIsTheParams) {
  JsonPtr out;
  std::string error;
  ASSERT_TRUE(mg::parse_params_body(R"({"c":"5","d":"hi"})", out, error)) << error;
  EXPECT_EQ(mg::json_print(out.get()), R"({"c":"5","d":"hi"})");
}

TEST(EnvelopeBody, MalformedOrNonObjectBodyIsRejected) {
  for (const char* body : {"{", "nope", "{\"c\":}", "[]", "\"x\"", "1", "null", "{}x", "{\"c\":\"a\\u0000\"}"}) {
    SCOPED_TRACE(body);
    JsonPtr out;
    std::string error;
    EXPECT_FALSE(mg::parse_params_body(body, out, error));
    EXPECT_FALSE(error.empty());
  }
}

// ---------------------------------------------------------------------------------------------
// Responses

TEST(EnvelopeResponse, OkWithIdParsesBack) {
  const std::string id = "\"req-1\"";
  const std::string text = mg::envelope_ok(R"({"s":true})", &id);
  JsonPtr doc = parse_json(text);
  ASSERT_TRUE(doc) << text;
  EXPECT_TRUE(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(doc.get(), "E")));
  const cJSON* r = cJSON_GetObjectItemCaseSensitive(doc.get(), "r");
  ASSERT_TRUE(cJSON_IsObject(r));
  EXPECT_TRUE(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "s")));
  const cJSON* i = cJSON_GetObjectItemCaseSensitive(doc.get(), "i");
  ASSERT_TRUE(cJSON_IsString(i));
  EXPECT_STREQ(i->valuestring, "req-1");
}

TEST(EnvelopeResponse, OkWithoutIdHasNoIKey) {
  const std::string text = mg::envelope_ok("[1,2]", nullptr);
  JsonPtr doc = parse_json(text);
  ASSERT_TRUE(doc) << text;
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(doc.get(), "i"), nullptr);
  EXPECT_TRUE(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc.get(), "r")));
  EXPECT_EQ(text, R"({"E":null,"r":[1,2]})");
}

TEST(EnvelopeResponse, ErrorParsesBackWithCodeAndMessage) {
  const std::string id = "12";
  const std::string text = mg::envelope_error(202, "already popping", &id);
  JsonPtr doc = parse_json(text);
  ASSERT_TRUE(doc) << text;
  const cJSON* e = cJSON_GetObjectItemCaseSensitive(doc.get(), "E");
  ASSERT_TRUE(cJSON_IsObject(e));
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(e, "c")->valueint, 202);
  EXPECT_STREQ(cJSON_GetObjectItemCaseSensitive(e, "m")->valuestring, "already popping");
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(doc.get(), "r"), nullptr);
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(doc.get(), "i")->valueint, 12);
}

TEST(EnvelopeResponse, ErrorWithoutIdHasNoIKey) {
  const std::string text = mg::envelope_error(101, "bad", nullptr);
  JsonPtr doc = parse_json(text);
  ASSERT_TRUE(doc) << text;
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(doc.get(), "i"), nullptr);
}

TEST(EnvelopeResponse, ErrorMessageIsEscapedAndRoundTrips) {
  std::string message = "quote \" backslash \\ slash / newline \n cr \r tab \t bs \b ff \f nul ";
  message += '\0';
  message += " ctl \x01\x1f del \x7f utf8 caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 </script>";
  const std::string id = "null";
  const std::string text = mg::envelope_error(101, message, &id);
  // No raw control character may reach the wire.
  for (char ch : text) EXPECT_GE(static_cast<unsigned char>(ch), 0x20u) << text;
  JsonPtr doc = parse_json(text);
  ASSERT_TRUE(doc) << text;
  const cJSON* m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc.get(), "E"), "m");
  ASSERT_TRUE(cJSON_IsString(m));
  // cJSON's strings end at NUL: compare the part before it, then the text after it.
  EXPECT_EQ(std::string(m->valuestring), message.substr(0, message.find('\0')));
  EXPECT_NE(text.find("\\u0000 ctl \\u0001\\u001f"), std::string::npos) << text;
  EXPECT_TRUE(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(doc.get(), "i")));
}

TEST(EnvelopeResponse, EmptyAndLongMessagesRoundTrip) {
  for (const std::string& message : {std::string(), std::string(100000, 'm')}) {
    const std::string text = mg::envelope_error(501, message, nullptr);
    JsonPtr doc = parse_json(text);
    ASSERT_TRUE(doc);
    const cJSON* m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc.get(), "E"), "m");
    EXPECT_EQ(std::string(m->valuestring), message);
  }
}

TEST(EnvelopeResponse, RequestIdRoundTripsIntoBothResponses) {
  for (const char* id : {R"("abc")", "17", R"({"a":[1,{"b":null}]})", "null", "-3"}) {
    SCOPED_TRACE(id);
    const Envelope env = parse_ok(std::string(R"({"m":"x","i":)") + id + "}");
    JsonPtr want = parse_json(id);
    for (const std::string& text : {mg::envelope_ok("{}", &env.id_json), mg::envelope_error(301, "no", &env.id_json)}) {
      JsonPtr doc = parse_json(text);
      ASSERT_TRUE(doc) << text;
      EXPECT_TRUE(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(doc.get(), "i"), want.get(), true)) << text;
    }
  }
}

}  // namespace

// --- strict JSON: duplicate keys and integers read from numbers (issue 7) ---

namespace {

bool parses(const std::string& text, std::string* why = nullptr) {
  std::string w;
  bool ok = static_cast<bool>(mg::json_parse_strict(text.data(), text.size(), &w));
  if (why) *why = w;
  return ok;
}

bool integer_of(const std::string& text, int64_t lo, int64_t hi, int64_t& out) {
  mg::JsonPtr v = mg::json_parse_strict(text.data(), text.size());
  return v && mg::json_integer(v.get(), lo, hi, out);
}

}  // namespace

TEST(JsonStrict, DuplicateKeysAreRefusedAtAnyDepth) {
  std::string why;
  EXPECT_FALSE(parses(R"({"alg":"HS256","alg":"none"})", &why));
  EXPECT_NE(why.find("\"alg\" appears twice"), std::string::npos) << why;
  EXPECT_FALSE(parses(R"({"a":{"b":1,"b":1}})"));
  EXPECT_FALSE(parses(R"([{"x":1},{"y":1,"y":2}])"));
  EXPECT_FALSE(parses(R"({"a":1,"\u0061":2})"));  // the same key, escaped
  std::string many = "{";
  for (int i = 0; i < 100; i++) many += "\"k" + std::to_string(i) + "\":1,";
  EXPECT_TRUE(parses(many + "\"last\":1}"));       // the sorted path, no duplicate
  EXPECT_FALSE(parses(many + "\"k57\":1}"));       // the sorted path, one duplicate
  EXPECT_TRUE(parses(R"({"a":{"a":1},"b":[{"a":1},{"a":2}]})"));  // same key in different objects
}

TEST(JsonInteger, OnlyWholeNumbersInRange) {
  int64_t n = 0;
  EXPECT_TRUE(integer_of("1000", 1000, 4999, n));
  EXPECT_EQ(n, 1000);
  EXPECT_TRUE(integer_of("9007199254740991", 0, mg::kJsonMaxExactInt, n));
  EXPECT_EQ(n, mg::kJsonMaxExactInt);
  EXPECT_TRUE(integer_of("-5", -10, 10, n));
  EXPECT_EQ(n, -5);
  EXPECT_TRUE(integer_of("1e3", 0, 1000, n));  // an integral value, whatever its spelling
  EXPECT_EQ(n, 1000);
  for (const char* bad : {"1e300", "-1e300", "1000.5", "5000", "999", "\"1000\"", "null", "true"})
    EXPECT_FALSE(integer_of(bad, 1000, 4999, n)) << bad;
  EXPECT_FALSE(integer_of("9007199254740992", 0, mg::kJsonMaxExactInt, n));
  EXPECT_FALSE(integer_of("1e300", 0, mg::kJsonMaxExactInt, n));
  EXPECT_FALSE(mg::json_integer(nullptr, 0, 1, n));
}
