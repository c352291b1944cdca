// Fuzz target: WebSocket frames from a client through a session on this binary's codec, fed in pieces
// of 1 to 13 bytes, as a client connection sees them. The replay driver builds it once per codec.
#include <cassert>
#include <cstdint>
#include <string>
#include <vector>

#include "core/utf8.h"
#include "ws/ws_session.h"
#include "ws_seeds.h"

namespace {
constexpr uint32_t kMaxMessage = 1024;

struct Owner final : mg::WsOwner {
  size_t messages = 0, out = 0;
  bool ws_message(uint8_t opcode, const uint8_t* data, size_t len) override {
    assert(opcode == 1 || opcode == 2);
    assert(len <= kMaxMessage);
    assert(opcode == 2 || mg::is_valid_utf8(reinterpret_cast<const char*>(data), len));
    messages++;
    return false;
  }
  void ws_output(const uint8_t*, size_t len) override { out += len; }
};
}  // namespace

std::vector<std::string> fuzz_seeds() { return wsseed::seeds(); }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Owner owner;
  mg::WsSession ws(&owner, kMaxMessage);
  std::vector<char> buf(data, data + size);  // the session unmasks in place
  size_t step = size ? 1 + data[0] % 13 : 1;
  for (size_t off = 0; off < size; off += step) {
    ws.feed(buf.data() + off, std::min(step, size - off));
    if (ws.finished()) {
      uint16_t code = ws.close_code();
      assert(code >= 1000 && code < 5000);
      assert(ws.input_ended() || !ws.close_received());
      break;
    }
  }
  if (ws.input_ended()) assert(ws.idle());  // nothing is held once the client is done
  return 0;
}
