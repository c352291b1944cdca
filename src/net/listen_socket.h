// Listening sockets shared by several loops.
//
// libuv 1.44 has no UV_TCP_REUSEPORT, so the socket is made by hand: socket → SO_REUSEADDR →
// SO_REUSEPORT → bind → listen, then each worker wraps its own socket with uv_tcp_open. With
// SO_REUSEPORT every worker has its own accept queue on the same port and the kernel spreads
// connections over them.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>

namespace mg {

// A peer's address in 20 bytes, made text only when asked: a connection keeps one for its whole
// life (two strings of its text cost 64 bytes and often a heap block each).
struct PeerAddr {
  uint8_t ip[16] = {};  // IPv4 in the first 4 bytes
  uint16_t port = 0;    // 0 when only the IP is known
  uint8_t family = 0;   // 0 unknown, 4 or 6

  // The IP as peer_ip() writes it, or "" when unknown.
  std::string ip_text() const;
  // "ip:port" as peer_address() writes it (the IP alone while the port is unknown), or "" when unknown.
  std::string text() const;
  // From peer_ip()'s text (no port). False, and left unknown, when it is not an IP literal.
  bool set_ip(const std::string& ip);
};

// The peer of a connected handle; family 0 when unknown.
PeerAddr peer_addr(const uv_tcp_t* handle);

// Creates a bound, listening, non-blocking socket. Returns -1 and sets `error` on failure.
int open_listen_socket(const std::string& host, int port, bool reuseport, std::string& error);

// Wraps fd in `server` (initialised on `loop`) and starts accepting with `on_connection`.
int start_listening(uv_loop_t* loop, uv_tcp_t* server, int fd, uv_connection_cb on_connection);

// "ip:port" of the peer of a connected handle, or "" when unknown.
std::string peer_address(const uv_tcp_t* handle);
// The peer's IP address alone, or "" when unknown.
std::string peer_ip(const uv_tcp_t* handle);

}  // namespace mg
