// Connect tokens (PROTOCOL.md §3.3): an HS256 JWT a client presents when it connects.
//
//   header  {"alg":"HS256","typ":"JWT"}        (alg must be HS256; anything else is refused)
//   claims  exp (required, unix seconds from 0 to kMaxNumericDate), nbf (optional, the same),
//           uid (string), ctx (object: the initial context), ch (array of channel names to
//           subscribe at once)
//
// The signature is checked with OpenSSL's HMAC against each configured secret (two may be valid at
// once, for key rotation), compared in constant time. Nothing is applied unless every check passes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base64.h"
#include "core/limits.h"

namespace mg {

// The latest exp or nbf taken (9999-12-31T23:59:59Z); earlier than 0 is refused too.
constexpr int64_t kMaxNumericDate = 253402300799;

struct ConnectClaims {
  int64_t exp = 0;                    // whole seconds (a fraction is rounded down)
  std::string uid;                    // empty when absent
  std::string context;                // JSON object text of the initial context (uid included), "" = {}
  std::vector<std::string> channels;  // to subscribe at connect
};

struct TokenLimits {
  uint32_t max_context_bytes = limit_defaults::kMaxContextBytes;
  uint32_t max_context_keys = limit_defaults::kMaxContextKeys;
  uint32_t max_channels = limit_defaults::kMaxChannels;
  uint32_t max_token_bytes = limit_defaults::kMaxTokenBytes;
};

// Returns "" and fills `out` when `token` is valid at `now_s` for one of `secrets`; otherwise a short
// reason for the refusal ("expired", "bad signature", ...).
std::string verify_connect_token(const std::string& token, const std::vector<std::string>& secrets, int64_t now_s,
                                 const TokenLimits& limits, ConnectClaims& out);

// A token for `claims_json` (a JSON object, not checked here) signed with `secret` (meshgate token).
std::string sign_connect_token(const std::string& claims_json, const std::string& secret);

}  // namespace mg
