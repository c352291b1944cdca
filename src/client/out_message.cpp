#include "client/out_message.h"

#include "client/tcp_framing.h"
#include "ws/ws_frame.h"

namespace mg {

std::shared_ptr<const OutMessage> make_out_message(const std::string& payload, bool binary) {
  auto m = std::make_shared<OutMessage>();
  m->ws = std::make_shared<const std::string>(ws_encode_frame(binary ? kWsBinary : kWsText, payload.data(), payload.size()));
  m->line = std::make_shared<const std::string>(encode_frame(Framing::Line, payload.data(), payload.size()));
  m->len32 = std::make_shared<const std::string>(encode_frame(Framing::Len32, payload.data(), payload.size()));
  return m;
}

}  // namespace mg
