// The build's codec choice (meson -Dws_codec=wslay): linked into the executable, not into the core library,
// so one core serves binaries of either codec.
#include "ws/ws_wslay.h"

namespace mg {

std::unique_ptr<WsDecoder> make_ws_decoder(uint32_t max_message) {
  return std::make_unique<WslayWsDecoder>(max_message);
}

const char* ws_codec_name() { return "wslay"; }

}  // namespace mg
