// What became of bytes handed to one connection, with the reason when they were not taken (as
// uWebSockets' send status). Every layer that sends answers with it: the stream admits output
// (net/stream.h Stream::admit), a client connection or an API WebSocket sends, a worker sends to a
// client id, and the control API counts and answers it (mesh.send).
#pragma once

#include <cstdint>

namespace mg {

enum class SendResult : uint8_t {
  Ok,            // queued for the socket
  BufferFull,    // over the connection's output limit: the connection is closed for it
  Closing,       // the connection is closing or its protocol sends no more: nothing queued
  NotConnected,  // no such client here (a send by client id)
};
constexpr int kSendResultCount = 4;

}  // namespace mg
