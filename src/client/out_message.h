// A message on its way to clients, framed once for every kind of client connection, so that a
// publish to ten thousand subscribers shares one buffer per framing instead of copying the payload.
#pragma once

#include <memory>

#include "core/config.h"
#include "net/stream.h"

namespace mg {

struct OutMessage {
  Chunk ws;     // a WebSocket frame (text or binary)
  Chunk line;   // payload + "\n" for line-framed TCP clients
  Chunk len32;  // 4-byte length + payload for len32 TCP clients

  const Chunk& for_framing(Framing f) const { return f == Framing::Line ? line : len32; }
};

// Frames `payload` for every client kind. `binary` selects the WebSocket opcode.
std::shared_ptr<const OutMessage> make_out_message(const std::string& payload, bool binary);

}  // namespace mg
