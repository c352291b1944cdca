// The "d" of a client's queue events (PROTOCOL.md §4): what a consumer learns of a connection.
//
//   open     {"event":"open","listener","remote_addr"[,"path","query"]}   (path and query: WebSocket)
//   message  {"frame":{"type":"text"|"binary","data","finish":true}}     (binary data in base64)
//   close    {"event":"close","code","reason"}
//
// Every string in them is valid UTF-8, so the consumer's text frame (and a mesh EVENT frame) is valid:
// in the path and query, a byte that is not part of valid UTF-8 is percent-encoded ("/\xff" is sent
// as "/%FF", the same URL, nothing lost); in a close reason it becomes U+FFFD. The listener name and
// the remote address are ours; a text message was validated by the codec (WebSocket) or is sent as
// binary (TCP).
#pragma once

#include <cstddef>
#include <string>

namespace mg {

// `websocket`: path and query are included (a TCP client has neither).
std::string client_open_event(const std::string& listener, const std::string& remote_addr, bool websocket,
                              const std::string& path, const std::string& query);
// Appends to `out` the "d" of a client's message (text as a JSON string; binary as base64).
void append_client_message_event(std::string& out, bool binary, const char* data, size_t len);
std::string client_close_event(int code, const std::string& reason);

}  // namespace mg
