// Server-to-client WebSocket frames and the handshake accept key (RFC 6455 §5.2, §4.2.2).
//
// A pushed message is encoded once into one buffer (header + payload) that every recipient shares. Frames are always final (FIN=1), unmasked (a
// server must not mask, §5.1), with RSV bits 0, and use the shortest length form, as §5.2 requires:
//   len <= 125 in the second byte; <= 65535 as 126 + 16-bit big-endian; else 127 + 64-bit big-endian.
// The caller keeps control frames (close, ping, pong) within 125 bytes (§5.5); that is not checked.
#include "ws/ws_frame.h"

#include <openssl/evp.h>

#include "core/base64.h"

namespace mg {

size_t ws_frame_header(uint8_t opcode, size_t len, char out[kWsMaxHeader]) {
  out[0] = static_cast<char>(0x80 | (opcode & 0x0F));
  if (len <= 125) {
    out[1] = static_cast<char>(len);
    return 2;
  }
  if (len <= 0xFFFF) {
    out[1] = static_cast<char>(126);
    out[2] = static_cast<char>(len >> 8);
    out[3] = static_cast<char>(len);
    return 4;
  }
  out[1] = static_cast<char>(127);
  const uint64_t n = len;
  for (int i = 0; i < 8; i++) out[2 + i] = static_cast<char>(n >> (56 - 8 * i));
  return 10;
}

std::string ws_encode_frame(uint8_t opcode, const char* payload, size_t len) {
  char head[kWsMaxHeader];
  const size_t head_len = ws_frame_header(opcode, len, head);
  std::string out;
  out.reserve(head_len + len);
  out.append(head, head_len);
  if (len > 0) out.append(payload, len);
  return out;
}

std::string ws_accept_key(const std::string& client_key) {
  static const char kGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  const std::string input = client_key + kGuid;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &digest_len, EVP_sha1(), nullptr) != 1) {
    return std::string();  // only on OpenSSL failure (e.g. SHA-1 unavailable); the handshake fails
  }
  return base64_encode(digest, digest_len);
}

}  // namespace mg
