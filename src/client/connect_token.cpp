#include "client/connect_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cmath>

#include "client/conn_ops.h"
#include "core/base64.h"
#include "core/json_text.h"

namespace mg {

namespace {

std::string hs256(const std::string& secret, const std::string& signing_input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

// A NumericDate claim (RFC 7519 §2): a JSON number of seconds, fractions allowed. Only times from
// 1970 to the end of year 9999 are taken: a larger one (1e300) would mean "never expires" and is no
// time a signer meant, and keeping the range small keeps every integer made from it far inside int64
// (issue 18: `exp` 1e300 overflowed the CLI's arithmetic).
bool numeric_date(const cJSON* v, double& out) {
  if (!cJSON_IsNumber(v)) return false;
  const double d = v->valuedouble;
  if (!(d >= 0 && d <= static_cast<double>(kMaxNumericDate))) return false;  // NaN fails too
  out = d;
  return true;
}

std::string bad_date(const char* claim) {
  return std::string("bad ") + claim + " claim: expected a number of seconds from 0 to " +
         std::to_string(kMaxNumericDate) + " (year 9999)";
}

}  // namespace

std::string sign_connect_token(const std::string& claims_json, const std::string& secret) {
  static const std::string header = R"({"alg":"HS256","typ":"JWT"})";
  std::string input = base64url_encode(header.data(), header.size()) + "." +
                      base64url_encode(claims_json.data(), claims_json.size());
  std::string mac = hs256(secret, input);
  return input + "." + base64url_encode(mac.data(), mac.size());
}

std::string verify_connect_token(const std::string& token, const std::vector<std::string>& secrets, int64_t now_s,
                                 const TokenLimits& limits, ConnectClaims& out) {
  if (token.empty()) return "missing token";
  if (token.size() > limits.max_token_bytes) return "token too long";
  size_t d1 = token.find('.');
  size_t d2 = d1 == std::string::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string::npos || token.find('.', d2 + 1) != std::string::npos) return "malformed token";
  std::string header_text, claims_text, signature;
  if (!base64url_decode(token.substr(0, d1), header_text) || !base64url_decode(token.substr(d1 + 1, d2 - d1 - 1), claims_text) ||
      !base64url_decode(token.substr(d2 + 1), signature))
    return "malformed token";

  // The signature first: nothing in an unsigned token is looked at beyond its shape.
  std::string signing_input = token.substr(0, d2);
  bool signed_ok = false;
  for (const std::string& secret : secrets) {
    if (secret.empty()) continue;
    std::string want = hs256(secret, signing_input);
    if (want.size() == signature.size() && CRYPTO_memcmp(want.data(), signature.data(), want.size()) == 0) signed_ok = true;
  }
  JsonPtr header = json_parse_strict(header_text.data(), header_text.size());
  if (!header || !cJSON_IsObject(header.get())) return "malformed token";
  const cJSON* alg = cJSON_GetObjectItemCaseSensitive(header.get(), "alg");
  if (!cJSON_IsString(alg) || std::string(alg->valuestring) != "HS256") return "unsupported algorithm (HS256 only)";
  if (!signed_ok) return "bad signature";

  JsonPtr claims = json_parse_strict(claims_text.data(), claims_text.size());
  if (!claims || !cJSON_IsObject(claims.get())) return "malformed claims";
  const cJSON* c = claims.get();
  double exp = 0, nbf = 0;
  const cJSON* exp_item = cJSON_GetObjectItemCaseSensitive(c, "exp");
  if (!exp_item) return "exp claim missing";
  if (!numeric_date(exp_item, exp)) return bad_date("exp");
  if (static_cast<double>(now_s) >= exp) return "token expired";
  const cJSON* nbf_item = cJSON_GetObjectItemCaseSensitive(c, "nbf");
  if (nbf_item) {
    if (!numeric_date(nbf_item, nbf)) return bad_date("nbf");
    if (static_cast<double>(now_s) < nbf) return "token not valid yet";
  }
  ConnectClaims result;
  result.exp = static_cast<int64_t>(std::floor(exp));  // within [0, kMaxNumericDate]: defined
  const cJSON* uid = cJSON_GetObjectItemCaseSensitive(c, "uid");
  if (uid) {
    if (!cJSON_IsString(uid)) return "uid claim must be a string";
    result.uid = uid->valuestring;
  }
  const cJSON* ctx = cJSON_GetObjectItemCaseSensitive(c, "ctx");
  if (ctx && !cJSON_IsObject(ctx)) return "ctx claim must be an object";
  JsonPtr context(ctx ? cJSON_Duplicate(ctx, true) : cJSON_CreateObject());
  if (uid && !cJSON_GetObjectItemCaseSensitive(context.get(), "uid"))
    cJSON_AddStringToObject(context.get(), "uid", result.uid.c_str());
  int keys = cJSON_GetArraySize(context.get());
  if (static_cast<uint32_t>(keys) > limits.max_context_keys) return "ctx claim has too many keys";
  if (keys > 0) result.context = json_print(context.get());
  if (result.context.size() > limits.max_context_bytes) return "ctx claim too large";
  const cJSON* ch = cJSON_GetObjectItemCaseSensitive(c, "ch");
  if (ch) {
    if (!cJSON_IsArray(ch)) return "ch claim must be an array";
    const cJSON* item;
    cJSON_ArrayForEach(item, ch) {
      if (!cJSON_IsString(item) || !valid_channel_name(item->valuestring)) return "bad channel name in ch claim";
      std::string name = item->valuestring;
      bool dup = false;
      for (const std::string& have : result.channels) dup = dup || have == name;
      if (!dup) result.channels.push_back(std::move(name));
    }
    if (result.channels.size() > limits.max_channels) return "ch claim has too many channels";
  }
  out = std::move(result);
  return "";
}

}  // namespace mg
