// base64 (RFC 4648): standard with padding, for binary frames in JSON and the WebSocket accept key;
// base64url without padding, for connect tokens.
#pragma once

#include <cstddef>
#include <string>

namespace mg {

std::string base64_encode(const void* data, size_t len);
// Decodes standard base64 (padding required, no whitespace). Returns false on any invalid input.
bool base64_decode(const std::string& in, std::string& out);

// base64url without padding (RFC 7515 §2), as JWTs (connect tokens) use it.
bool base64url_decode(const std::string& in, std::string& out);
std::string base64url_encode(const void* data, size_t len);

}  // namespace mg
