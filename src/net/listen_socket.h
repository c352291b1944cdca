// Listening sockets shared by several loops.
//
// libuv 1.44 has no UV_TCP_REUSEPORT, so the socket is made by hand: socket → SO_REUSEADDR →
// SO_REUSEPORT → bind → listen, then each worker wraps its own socket with uv_tcp_open. With
// SO_REUSEPORT every worker has its own accept queue on the same port and the kernel spreads
// connections over them.
#pragma once

#include <uv.h>

#include <string>

namespace mg {

// Creates a bound, listening, non-blocking socket. Returns -1 and sets `error` on failure.
int open_listen_socket(const std::string& host, int port, bool reuseport, std::string& error);

// Wraps fd in `server` (initialised on `loop`) and starts accepting with `on_connection`.
int start_listening(uv_loop_t* loop, uv_tcp_t* server, int fd, uv_connection_cb on_connection);

// "ip:port" of the peer of a connected handle, or "" when unknown.
std::string peer_address(const uv_tcp_t* handle);
// The peer's IP address alone, or "" when unknown.
std::string peer_ip(const uv_tcp_t* handle);

}  // namespace mg
