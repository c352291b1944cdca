// Fuzz target: WebSocket frames from a client, through wslay, as a client connection sees them.
#include <cassert>
#include <cstdint>
#include <string>
#include <vector>

#include "ws/ws_session.h"

namespace {
struct Owner final : mg::WsOwner {
  size_t messages = 0, out = 0;
  void ws_message(uint8_t opcode, const uint8_t*, size_t len) override {
    assert(opcode == 1 || opcode == 2);
    assert(len <= 1024);
    messages++;
  }
  void ws_output(const uint8_t*, size_t len) override { out += len; }
};
}  // namespace

std::vector<std::string> fuzz_seeds() {
  // Masked client frames: text "Hello", a fragmented message, ping, close 1000.
  return {std::string("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11),
          std::string("\x01\x83\x00\x00\x00\x00Hel\x80\x82\x00\x00\x00\x00lo", 17),
          std::string("\x89\x80\x00\x00\x00\x00", 6), std::string("\x88\x82\x00\x00\x00\x00\x03\xe8", 8),
          std::string("\x82\xfe\x04\x01\x00\x00\x00\x00", 8)};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Owner owner;
  mg::WsSession ws(&owner, 1024);
  const char* p = reinterpret_cast<const char*>(data);
  size_t step = size ? 1 + data[0] % 13 : 1;
  for (size_t off = 0; off < size; off += step) {
    if (!ws.feed(p + off, std::min(step, size - off))) break;
    if (ws.finished()) {
      uint16_t code = ws.close_code();
      assert(code >= 1000 && code < 5000);
      break;
    }
  }
  return 0;
}
