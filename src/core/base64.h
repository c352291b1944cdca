// Standard base64 (RFC 4648, with padding), used for binary frames in JSON and the WebSocket accept key.
#pragma once

#include <cstddef>
#include <string>

namespace mg {

std::string base64_encode(const void* data, size_t len);
// Decodes standard base64 (padding required, no whitespace). Returns false on any invalid input.
bool base64_decode(const std::string& in, std::string& out);

}  // namespace mg
