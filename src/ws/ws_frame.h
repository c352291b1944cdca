// Server-to-client WebSocket frame encoding (RFC 6455 §5.2: FIN set, no mask, no extensions).
//
// The codec (ws_codec.h) parses client frames and the session answers control frames with frames
// encoded here; data frames that the server pushes are encoded here once and the same bytes are shared
// by every recipient of a publish.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mg {

enum WsOpcode : uint8_t { kWsText = 0x1, kWsBinary = 0x2, kWsClose = 0x8, kWsPing = 0x9, kWsPong = 0xA };

constexpr size_t kWsMaxHeader = 10;
// Writes the header of a frame with a `len`-byte payload to `out`; returns its size (2, 4 or 10).
size_t ws_frame_header(uint8_t opcode, size_t len, char out[kWsMaxHeader]);
std::string ws_encode_frame(uint8_t opcode, const char* payload, size_t len);

// The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (SHA-1 of key + GUID, base64).
std::string ws_accept_key(const std::string& client_key);

}  // namespace mg
