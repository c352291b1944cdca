// Unit tests for connect tokens (auth/connect_token.h, PROTOCOL.md §3.3): HS256 JWTs checked against
// one or two secrets (rotation), with exp/nbf, uid/ctx/ch claims and the size limits.
//
// Tokens are made here with OpenSSL's HMAC and a base64url encoder of the test's own, never with the
// code under test, so a bug shared by signing and checking cannot hide itself.
#include "client/connect_token.h"

#include <gtest/gtest.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace {

using mg::ConnectClaims;
using mg::TokenLimits;

constexpr int64_t kNow = 1700000000;
const std::string kSecret = "s3cret-for-tests";
const std::string kHs256Header = R"({"alg":"HS256","typ":"JWT"})";

// base64url without padding, written independently of mg::base64url_encode.
std::string b64url(const std::string& in) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  size_t rest = in.size() - i;
  if (rest == 1) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
  } else if (rest == 2) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
  }
  return out;
}

std::string hmac(const EVP_MD* md, const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md, key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()), data.size(),
       mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

// header.claims.signature, signed with HMAC-`md` over `secret`.
std::string make_token(const std::string& claims, const std::string& secret = kSecret,
                       const std::string& header = kHs256Header, const EVP_MD* md = EVP_sha256()) {
  std::string input = b64url(header) + "." + b64url(claims);
  return input + "." + b64url(hmac(md, secret, input));
}

std::string exp_in(int64_t seconds) { return std::to_string(kNow + seconds); }

// Claims with a valid exp and the given extra members ("" or text starting with ',').
std::string claims(const std::string& extra = "") { return "{\"exp\":" + exp_in(60) + extra + "}"; }

std::string verify(const std::string& token, ConnectClaims& out, const std::vector<std::string>& secrets = {kSecret},
                   const TokenLimits& limits = TokenLimits{}, int64_t now = kNow) {
  return mg::verify_connect_token(token, secrets, now, limits, out);
}

ConnectClaims accepted(const std::string& token, const std::vector<std::string>& secrets = {kSecret},
                       const TokenLimits& limits = TokenLimits{}, int64_t now = kNow) {
  ConnectClaims out;
  std::string why = verify(token, out, secrets, limits, now);
  EXPECT_EQ(why, "") << "token refused: " << token;
  return out;
}

// Refused with a non-empty reason, and `out` left as it was.
std::string refused(const std::string& token, const std::vector<std::string>& secrets = {kSecret},
                    const TokenLimits& limits = TokenLimits{}, int64_t now = kNow) {
  ConnectClaims out;
  out.uid = "untouched";
  out.context = "{\"untouched\":true}";
  out.channels = {"untouched"};
  std::string why = verify(token, out, secrets, limits, now);
  EXPECT_NE(why, "") << "token accepted: " << token;
  EXPECT_EQ(out.uid, "untouched");
  EXPECT_EQ(out.context, "{\"untouched\":true}");
  EXPECT_EQ(out.channels, std::vector<std::string>{"untouched"});
  return why;
}

// The context as a parsed JSON object, for comparisons that do not depend on member order.
struct Json {
  cJSON* v;
  explicit Json(const std::string& text) : v(cJSON_Parse(text.c_str())) {}
  ~Json() { cJSON_Delete(v); }
  Json(const Json&) = delete;
  Json& operator=(const Json&) = delete;
};

bool same_json(const std::string& a, const std::string& b) {
  Json ja(a), jb(b);
  return ja.v && jb.v && cJSON_Compare(ja.v, jb.v, true);
}

// ---------------------------------------------------------------------------------------------------
// Valid tokens and what they carry
// ---------------------------------------------------------------------------------------------------

TEST(ConnectToken, ValidTokenGivesUidContextAndChannels) {
  ConnectClaims c = accepted(make_token(claims(R"(,"uid":"u-42","ctx":{"role":"admin","n":3},"ch":["news","room:7"])")));
  EXPECT_EQ(c.uid, "u-42");
  EXPECT_TRUE(same_json(c.context, R"({"role":"admin","n":3,"uid":"u-42"})")) << c.context;
  EXPECT_EQ(c.channels, (std::vector<std::string>{"news", "room:7"}));
}

TEST(ConnectToken, UidIsMergedIntoAnEmptyOrMissingContext) {
  ConnectClaims c = accepted(make_token(claims(R"(,"uid":"alice")")));
  EXPECT_EQ(c.uid, "alice");
  EXPECT_TRUE(same_json(c.context, R"({"uid":"alice"})")) << c.context;

  c = accepted(make_token(claims(R"(,"uid":"bob","ctx":{})")));
  EXPECT_TRUE(same_json(c.context, R"({"uid":"bob"})")) << c.context;
}

TEST(ConnectToken, ContextKeepsItsOwnUid) {
  ConnectClaims c = accepted(make_token(claims(R"(,"uid":"alice","ctx":{"uid":10000,"a":1})")));
  EXPECT_EQ(c.uid, "alice");
  EXPECT_TRUE(same_json(c.context, R"({"uid":10000,"a":1})")) << c.context;
}

TEST(ConnectToken, MinimalTokenIsAnonymousWithEmptyContext) {
  ConnectClaims c = accepted(make_token(claims()));
  EXPECT_EQ(c.uid, "");
  EXPECT_EQ(c.context, "");  // "" stands for {}
  EXPECT_TRUE(c.channels.empty());

  c = accepted(make_token(claims(R"(,"ctx":{})")));
  EXPECT_EQ(c.context, "");
}

TEST(ConnectToken, ContextWithoutUidIsKeptAsIs) {
  ConnectClaims c = accepted(make_token(claims(R"(,"ctx":{"user_id":10000,"tags":["a","b"],"o":{"x":null}})")));
  EXPECT_EQ(c.uid, "");
  EXPECT_TRUE(same_json(c.context, R"({"user_id":10000,"tags":["a","b"],"o":{"x":null}})")) << c.context;
}

TEST(ConnectToken, UnknownClaimsAndHeaderMembersAreIgnored) {
  accepted(make_token(claims(R"(,"iss":"backend","sub":"x","iat":1,"jti":"abc","aud":["a"])")));
  accepted(make_token(claims(), kSecret, R"({"typ":"JWT","alg":"HS256","kid":"k1"})"));
  accepted(make_token(claims(), kSecret, R"({"alg":"HS256"})"));  // typ is optional
}

TEST(ConnectToken, UidMustBeAString) {
  refused(make_token(claims(R"(,"uid":42)")));
  refused(make_token(claims(R"(,"uid":null)")));
  refused(make_token(claims(R"(,"uid":["a"])")));
}

// ---------------------------------------------------------------------------------------------------
// exp and nbf
// ---------------------------------------------------------------------------------------------------

TEST(ConnectToken, ExpIsRequired) {
  EXPECT_EQ(refused(make_token(R"({"uid":"a"})")), "exp claim missing");
  EXPECT_EQ(refused(make_token("{}")), "exp claim missing");
  refused(make_token("{\"exp\":\"" + exp_in(60) + "\"}"));  // a string is not a NumericDate
  refused(make_token(R"({"exp":null})"));
  refused(make_token(R"({"exp":true})"));
}

TEST(ConnectToken, ExpiredTokensAreRefused) {
  EXPECT_EQ(refused(make_token("{\"exp\":" + exp_in(-1) + "}")), "token expired");
  EXPECT_EQ(refused(make_token("{\"exp\":" + exp_in(-86400) + "}")), "token expired");
  EXPECT_EQ(refused(make_token("{\"exp\":0}")), "token expired");
  // RFC 7519 §4.1.4: the current time must be before exp, so exp == now is expired.
  EXPECT_EQ(refused(make_token("{\"exp\":" + exp_in(0) + "}")), "token expired");
  accepted(make_token("{\"exp\":" + exp_in(1) + "}"));
  // The same token: valid one second before its exp, refused at it.
  std::string t = make_token("{\"exp\":" + exp_in(10) + "}");
  accepted(t, {kSecret}, TokenLimits{}, kNow + 9);
  refused(t, {kSecret}, TokenLimits{}, kNow + 10);
}

TEST(ConnectToken, FractionalExpIsANumericDate) {
  accepted(make_token("{\"exp\":" + exp_in(0) + ".5}"));
  refused(make_token("{\"exp\":" + exp_in(-1) + ".5}"));
}

// Issue 18: exp 1e300 meant "never expires" here and undefined behaviour in `meshgate check-token`.
// A time outside 1970..9999 is refused with the claim named; the range keeps every integer made
// from it inside int64.
TEST(ConnectToken, DatesOutOfRangeAreRefused) {
  const std::string bad_exp = "bad exp claim: expected a number of seconds from 0 to 253402300799 (year 9999)";
  for (const char* v : {"1e300", "-1e300", "1e19", "9223372036854775807", "9223372036854775808", "-1", "-0.5",
                        "253402300800", "1.7976931348623157e308"})
    EXPECT_EQ(refused(make_token(std::string("{\"exp\":") + v + "}")), bad_exp) << v;
  for (const char* v : {"1e300", "-1", "1e19"})
    EXPECT_EQ(refused(make_token(claims(std::string(",\"nbf\":") + v))),
              "bad nbf claim: expected a number of seconds from 0 to 253402300799 (year 9999)") << v;
  EXPECT_EQ(accepted(make_token("{\"exp\":253402300799}")).exp, 253402300799);
  EXPECT_EQ(accepted(make_token("{\"exp\":" + exp_in(60) + ".75}")).exp, kNow + 60);  // rounded down
}

TEST(ConnectToken, NotBefore) {
  EXPECT_EQ(refused(make_token(claims(",\"nbf\":" + exp_in(10)))), "token not valid yet");
  EXPECT_EQ(refused(make_token(claims(",\"nbf\":" + exp_in(1)))), "token not valid yet");
  accepted(make_token(claims(",\"nbf\":" + exp_in(0))));  // nbf == now: valid from that second
  accepted(make_token(claims(",\"nbf\":" + exp_in(-3600))));
  refused(make_token(claims(",\"nbf\":\"" + exp_in(-10) + "\"")));  // not a number
  refused(make_token(claims(R"(,"nbf":null)")));
}

// ---------------------------------------------------------------------------------------------------
// Signature, secrets, algorithm
// ---------------------------------------------------------------------------------------------------

TEST(ConnectToken, WrongSecretIsRefused) {
  EXPECT_EQ(refused(make_token(claims(), "another secret")), "bad signature");
  EXPECT_EQ(refused(make_token(claims(), kSecret + "x")), "bad signature");
  EXPECT_EQ(refused(make_token(claims(), kSecret.substr(1))), "bad signature");
}

TEST(ConnectToken, EitherOfTwoSecretsIsAccepted) {
  std::string cur = make_token(claims(R"(,"uid":"new")"), "current");
  std::string prev = make_token(claims(R"(,"uid":"old")"), "previous");
  EXPECT_EQ(accepted(cur, {"current", "previous"}).uid, "new");
  EXPECT_EQ(accepted(prev, {"current", "previous"}).uid, "old");
  // After the rotation is finished, the old secret's tokens are refused.
  EXPECT_EQ(refused(prev, {"current"}), "bad signature");
  EXPECT_EQ(refused(prev, {"current", ""}), "bad signature");
  EXPECT_EQ(refused(make_token(claims(), "third"), {"current", "previous"}), "bad signature");
}

TEST(ConnectToken, EmptySecretsNeverVerify) {
  std::string unsigned_key = make_token(claims(), "");
  refused(unsigned_key, {""});
  refused(unsigned_key, {"", ""});
  refused(unsigned_key, {});
  refused(make_token(claims()), {});
}

TEST(ConnectToken, TamperedTokensAreRefused) {
  std::string t = make_token(claims(R"(,"uid":"alice")"));
  size_t d1 = t.find('.'), d2 = t.rfind('.');
  // Claims replaced by someone else's, signature kept.
  std::string forged = t.substr(0, d1 + 1) + b64url(claims(R"(,"uid":"admin")")) + t.substr(d2);
  EXPECT_EQ(refused(forged), "bad signature");
  // Signature truncated, extended, or one character changed.
  refused(t.substr(0, t.size() - 1));
  refused(t.substr(0, t.size() - 4));
  refused(t + "AAAA");
  std::string flipped = t;
  flipped[d2 + 1] = flipped[d2 + 1] == 'A' ? 'B' : 'A';
  EXPECT_EQ(refused(flipped), "bad signature");
  // No signature at all.
  refused(t.substr(0, d2 + 1));
}

TEST(ConnectToken, OnlyHs256IsAccepted) {
  const std::string hs256_only = "unsupported algorithm (HS256 only)";
  // alg none: without a signature, and with a valid HS256 signature over the same input.
  std::string input = b64url(R"({"alg":"none","typ":"JWT"})") + "." + b64url(claims());
  EXPECT_EQ(refused(input + "."), hs256_only);
  EXPECT_EQ(refused(make_token(claims(), kSecret, R"({"alg":"none","typ":"JWT"})")), hs256_only);
  // HS512 signed with HMAC-SHA512 and HS384 with HMAC-SHA384, under the right secret.
  EXPECT_EQ(refused(make_token(claims(), kSecret, R"({"alg":"HS512","typ":"JWT"})", EVP_sha512())), hs256_only);
  EXPECT_EQ(refused(make_token(claims(), kSecret, R"({"alg":"HS384","typ":"JWT"})", EVP_sha384())), hs256_only);
  // HS512 in the header over an HS256 signature: still refused.
  EXPECT_EQ(refused(make_token(claims(), kSecret, R"({"alg":"HS512","typ":"JWT"})")), hs256_only);
  // Missing, differently spelled or mistyped alg.
  EXPECT_EQ(refused(make_token(claims(), kSecret, R"({"typ":"JWT"})")), hs256_only);
  refused(make_token(claims(), kSecret, R"({"alg":"hs256"})"));
  refused(make_token(claims(), kSecret, R"({"alg":"HS256 "})"));
  refused(make_token(claims(), kSecret, R"({"alg":256})"));
  refused(make_token(claims(), kSecret, R"({"alg":["HS256"]})"));
  refused(make_token(claims(), kSecret, R"({"alg":null})"));
  refused(make_token(claims(), kSecret, R"({"alg":"RS256"})"));
}

// ---------------------------------------------------------------------------------------------------
// Malformed tokens
// ---------------------------------------------------------------------------------------------------

TEST(ConnectToken, MissingTokenIsRefused) { EXPECT_EQ(refused(""), "missing token"); }

TEST(ConnectToken, WrongNumberOfPartsIsMalformed) {
  std::string t = make_token(claims());
  size_t d2 = t.rfind('.');
  EXPECT_EQ(refused(t.substr(0, d2)), "malformed token");             // 2 parts
  EXPECT_EQ(refused(t + ".AAAA"), "malformed token");                 // 4 parts
  EXPECT_EQ(refused(t + "."), "malformed token");                     // 4 parts, the last empty
  EXPECT_EQ(refused("abc"), "malformed token");                       // 1 part
  EXPECT_EQ(refused(".."), "malformed token");                        // 3 empty parts: empty header
  EXPECT_EQ(refused("..."), "malformed token");
  EXPECT_EQ(refused(b64url(kHs256Header)), "malformed token");
}

TEST(ConnectToken, BadBase64urlIsMalformed) {
  std::string t = make_token(claims());
  size_t d1 = t.find('.'), d2 = t.rfind('.');
  std::string h = t.substr(0, d1), c = t.substr(d1 + 1, d2 - d1 - 1), s = t.substr(d2 + 1);
  // Characters outside the base64url alphabet, in each part.
  EXPECT_EQ(refused(h + "*." + c + "." + s), "malformed token");
  EXPECT_EQ(refused(h + "." + c + "!." + s), "malformed token");
  EXPECT_EQ(refused(h + "." + c + "." + s + "~"), "malformed token");
  EXPECT_EQ(refused(h + "." + c + " ." + s), "malformed token");
  EXPECT_EQ(refused(" " + t), "malformed token");
  EXPECT_EQ(refused(t + "\n"), "malformed token");
  // Standard base64's '+' and '/' are not base64url.
  std::string std_sig = s;
  for (char& ch : std_sig) {
    if (ch == '-') ch = '+';
    else if (ch == '_') ch = '/';
  }
  if (std_sig != s) {
    EXPECT_EQ(refused(h + "." + c + "." + std_sig), "malformed token");
  }
  EXPECT_EQ(refused(h + "." + c + "." + "ab+/"), "malformed token");
  // A length that no byte string encodes to (4n + 1 characters).
  ASSERT_EQ(s.size() % 4, 3u);
  EXPECT_EQ(refused(h + "." + c + "." + s + "AA"), "malformed token");
  EXPECT_EQ(refused(h + "." + c + "." + s + "A"), "bad signature");  // decodes, to 33 bytes
  EXPECT_EQ(refused("A." + c + "." + s), "malformed token");
}

TEST(ConnectToken, PaddingIsRefused) {
  // A 32-byte HMAC-SHA256 encodes to 43 characters, which standard base64 pads with one '='.
  std::string t = make_token(claims());
  ASSERT_EQ(t.size() - t.rfind('.') - 1, 43u);
  EXPECT_EQ(refused(t + "="), "malformed token");
  // A header whose encoding standard base64 would pad, given with its padding.
  std::string header2 = R"({"alg":"HS256" })";  // 16 bytes -> 22 characters + "=="
  ASSERT_EQ(b64url(header2).size() % 4, 2u);
  std::string input = b64url(header2) + "==." + b64url(claims());
  EXPECT_EQ(refused(input + "." + b64url(hmac(EVP_sha256(), kSecret, input))), "malformed token");
}

TEST(ConnectToken, NonJsonHeaderOrClaimsAreRefused) {
  // Properly signed, but the header is not JSON.
  EXPECT_EQ(refused(make_token(claims(), kSecret, "alg=HS256")), "malformed token");
  refused(make_token(claims(), kSecret, R"({"alg":"HS256")"));
  refused(make_token(claims(), kSecret, ""));
  refused(make_token(claims(), kSecret, R"(["HS256"])"));
  // Properly signed, but the claims are not a JSON object.
  EXPECT_EQ(refused(make_token("exp=" + exp_in(60))), "malformed claims");
  EXPECT_EQ(refused(make_token("{\"exp\":" + exp_in(60))), "malformed claims");
  EXPECT_EQ(refused(make_token("")), "malformed claims");
  EXPECT_EQ(refused(make_token("[" + exp_in(60) + "]")), "malformed claims");
  EXPECT_EQ(refused(make_token(exp_in(60))), "malformed claims");
  EXPECT_EQ(refused(make_token("null")), "malformed claims");
  EXPECT_EQ(refused(make_token(claims() + " {}")), "malformed claims");  // trailing text
  EXPECT_EQ(refused(make_token(std::string("{\"exp\":") + exp_in(60) + ",\"uid\":\"\xff\"}")), "malformed claims");
}

// ---------------------------------------------------------------------------------------------------
// ctx and ch claims
// ---------------------------------------------------------------------------------------------------

TEST(ConnectToken, CtxMustBeAnObject) {
  const std::string why = "ctx claim must be an object";
  EXPECT_EQ(refused(make_token(claims(R"(,"ctx":[1,2])"))), why);
  EXPECT_EQ(refused(make_token(claims(R"(,"ctx":"x")"))), why);
  EXPECT_EQ(refused(make_token(claims(R"(,"ctx":7)"))), why);
  EXPECT_EQ(refused(make_token(claims(R"(,"ctx":null)"))), why);
  EXPECT_EQ(refused(make_token(claims(R"(,"ctx":true)"))), why);
}

TEST(ConnectToken, ChMustBeAnArrayOfChannelNames) {
  EXPECT_EQ(refused(make_token(claims(R"(,"ch":"news")"))), "ch claim must be an array");
  EXPECT_EQ(refused(make_token(claims(R"(,"ch":{"news":1})"))), "ch claim must be an array");
  EXPECT_EQ(refused(make_token(claims(R"(,"ch":null)"))), "ch claim must be an array");
  const std::string bad = "bad channel name in ch claim";
  EXPECT_EQ(refused(make_token(claims(R"(,"ch":[""])"))), bad);
  EXPECT_EQ(refused(make_token(claims(R"(,"ch":["ok","has space"])"))), bad);
  EXPECT_EQ(refused(make_token(claims(R"(,"ch":["tab\there"])"))), bad);
  EXPECT_EQ(refused(make_token(claims(R"(,"ch":["caf\u00e9"])"))), bad);
  EXPECT_EQ(refused(make_token(claims(R"(,"ch":[7])"))), bad);
  EXPECT_EQ(refused(make_token(claims(R"(,"ch":[null])"))), bad);
  EXPECT_EQ(refused(make_token(claims(R"(,"ch":[["a"]])"))), bad);
  std::string long_name(129, 'x');
  EXPECT_EQ(refused(make_token(claims(",\"ch\":[\"" + long_name + "\"]"))), bad);
  std::string max_name(128, 'y');
  EXPECT_EQ(accepted(make_token(claims(",\"ch\":[\"" + max_name + "\"]"))).channels, std::vector<std::string>{max_name});
  EXPECT_EQ(accepted(make_token(claims(R"(,"ch":["!~:/#*"])"))).channels, std::vector<std::string>{"!~:/#*"});
  EXPECT_TRUE(accepted(make_token(claims(R"(,"ch":[])"))).channels.empty());
}

TEST(ConnectToken, DuplicateChannelsAreRemovedInOrder) {
  ConnectClaims c = accepted(make_token(claims(R"(,"ch":["b","a","b","c","a","a"])")));
  EXPECT_EQ(c.channels, (std::vector<std::string>{"b", "a", "c"}));
}

TEST(ConnectToken, ChOverMaxChannelsIsRefused) {
  TokenLimits lim;
  lim.max_channels = 3;
  EXPECT_EQ(accepted(make_token(claims(R"(,"ch":["a","b","c"])")), {kSecret}, lim).channels.size(), 3u);
  EXPECT_EQ(refused(make_token(claims(R"(,"ch":["a","b","c","d"])")), {kSecret}, lim), "ch claim has too many channels");
  // Counted after duplicates are removed.
  EXPECT_EQ(accepted(make_token(claims(R"(,"ch":["a","b","c","a","b","c","c"])")), {kSecret}, lim).channels.size(), 3u);
  // The default limit (256).
  std::string many = ",\"ch\":[";
  for (int i = 0; i < 257; i++) many += (i ? ",\"c" : "\"c") + std::to_string(i) + "\"";
  many += "]";
  refused(make_token(claims(many)));
}

TEST(ConnectToken, CtxOverMaxContextBytesIsRefused) {
  std::string token = make_token(claims(R"(,"uid":"u","ctx":{"blob":")" + std::string(100, 'z') + "\"}"));
  ConnectClaims c = accepted(token);
  size_t size = c.context.size();  // serialized, uid included
  ASSERT_GT(size, 100u);
  TokenLimits lim;
  lim.max_context_bytes = static_cast<uint32_t>(size);
  accepted(token, {kSecret}, lim);
  lim.max_context_bytes = static_cast<uint32_t>(size - 1);
  EXPECT_EQ(refused(token, {kSecret}, lim), "ctx claim too large");
  // The default limit (4096).
  refused(make_token(claims(R"(,"ctx":{"blob":")" + std::string(5000, 'z') + "\"}")));
}

TEST(ConnectToken, CtxOverMaxContextKeysIsRefused) {
  TokenLimits lim;
  lim.max_context_keys = 2;
  accepted(make_token(claims(R"(,"ctx":{"a":1,"b":2})")), {kSecret}, lim);
  EXPECT_EQ(refused(make_token(claims(R"(,"ctx":{"a":1,"b":2,"c":3})")), {kSecret}, lim), "ctx claim has too many keys");
  // The uid merged into the context counts as a key ...
  EXPECT_EQ(refused(make_token(claims(R"(,"uid":"u","ctx":{"a":1,"b":2})")), {kSecret}, lim),
            "ctx claim has too many keys");
  accepted(make_token(claims(R"(,"uid":"u","ctx":{"a":1})")), {kSecret}, lim);
  // ... but not when the context has its own.
  accepted(make_token(claims(R"(,"uid":"u","ctx":{"uid":1,"b":2})")), {kSecret}, lim);
}

TEST(ConnectToken, TokenOverMaxTokenBytesIsRefused) {
  std::string token = make_token(claims(R"(,"uid":"someone","ch":["a","b"])"));
  TokenLimits lim;
  lim.max_token_bytes = static_cast<uint32_t>(token.size());
  accepted(token, {kSecret}, lim);
  lim.max_token_bytes = static_cast<uint32_t>(token.size() - 1);
  EXPECT_EQ(refused(token, {kSecret}, lim), "token too long");
  // The default limit (8192), even for a correctly signed token.
  std::string big = make_token(claims(R"(,"pad":")" + std::string(9000, 'p') + "\""));
  EXPECT_EQ(refused(big), "token too long");
  // Checked before anything else: junk over the limit is "too long", not "malformed".
  EXPECT_EQ(refused(std::string(9000, '.')), "token too long");
}

// ---------------------------------------------------------------------------------------------------
// base64url
// ---------------------------------------------------------------------------------------------------

TEST(Base64url, EncodesWithoutPaddingInTheUrlAlphabet) {
  EXPECT_EQ(mg::base64url_encode("", 0), "");
  EXPECT_EQ(mg::base64url_encode("f", 1), "Zg");
  EXPECT_EQ(mg::base64url_encode("fo", 2), "Zm8");
  EXPECT_EQ(mg::base64url_encode("foo", 3), "Zm9v");
  EXPECT_EQ(mg::base64url_encode("foob", 4), "Zm9vYg");
  EXPECT_EQ(mg::base64url_encode("fooba", 5), "Zm9vYmE");
  EXPECT_EQ(mg::base64url_encode("foobar", 6), "Zm9vYmFy");
  const unsigned char hi[] = {0xFB, 0xFF, 0xBF};
  EXPECT_EQ(mg::base64url_encode(hi, 3), "-_-_");
  EXPECT_EQ(mg::base64url_encode(hi, 2), "-_8");
  EXPECT_EQ(mg::base64url_encode(kHs256Header.data(), kHs256Header.size()), "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9");
}

TEST(Base64url, DecodesWhatItEncodes) {
  std::mt19937 rng(12345);
  for (size_t len = 0; len <= 130; len++) {
    for (int round = 0; round < 4; round++) {
      std::string in(len, '\0');
      for (char& c : in) c = static_cast<char>(rng() & 0xFF);
      std::string enc = mg::base64url_encode(in.data(), in.size());
      EXPECT_EQ(enc, b64url(in));
      EXPECT_EQ(enc.find_first_of("+/="), std::string::npos) << enc;
      std::string out = "junk";
      ASSERT_TRUE(mg::base64url_decode(enc, out)) << enc;
      EXPECT_EQ(out, in);
    }
  }
  // Every byte value.
  std::string all;
  for (int i = 0; i < 256; i++) all += static_cast<char>(i);
  std::string out;
  ASSERT_TRUE(mg::base64url_decode(mg::base64url_encode(all.data(), all.size()), out));
  EXPECT_EQ(out, all);
}

TEST(Base64url, DecodeIsStrict) {
  std::string out;
  EXPECT_TRUE(mg::base64url_decode("", out));
  EXPECT_EQ(out, "");
  EXPECT_TRUE(mg::base64url_decode("-_8", out));
  EXPECT_EQ(out, "\xFB\xFF");
  EXPECT_FALSE(mg::base64url_decode("Zg==", out));  // padding
  EXPECT_FALSE(mg::base64url_decode("Zm8=", out));
  EXPECT_FALSE(mg::base64url_decode("Z", out));     // 4n + 1 characters
  EXPECT_FALSE(mg::base64url_decode("Zm9vY", out));
  EXPECT_FALSE(mg::base64url_decode("+_8", out));   // standard alphabet
  EXPECT_FALSE(mg::base64url_decode("-/8", out));
  EXPECT_FALSE(mg::base64url_decode("Zm 9", out));  // whitespace
  EXPECT_FALSE(mg::base64url_decode("Zm9v\n", out));
  EXPECT_FALSE(mg::base64url_decode("Zm9*", out));
  EXPECT_FALSE(mg::base64url_decode("Zh", out));    // non-zero unused bits ("Zg" is the encoding)
  EXPECT_FALSE(mg::base64url_decode("Zm9", out));   // "Zm8" is the encoding of "fo"
}

// What `meshgate token` makes is what a listener accepts, with only its own secret.
TEST(ConnectToken, SignedTokenVerifies) {
  std::string token = mg::sign_connect_token(R"({"exp":4102444800,"uid":"u7","ch":["room:1"]})", "cli-secret");
  ConnectClaims claims;
  EXPECT_EQ(mg::verify_connect_token(token, {"cli-secret"}, 1700000000, TokenLimits{}, claims), "");
  EXPECT_EQ(claims.uid, "u7");
  EXPECT_EQ(claims.channels, std::vector<std::string>{"room:1"});
  EXPECT_NE(mg::verify_connect_token(token, {"other"}, 1700000000, TokenLimits{}, claims), "");
  EXPECT_NE(mg::verify_connect_token(token, {"cli-secret"}, 4102444800, TokenLimits{}, claims), "");  // at exp
}

}  // namespace
