#include "net/listen_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/addr.h"

namespace mg {

int open_listen_socket(const std::string& host, int port, bool reuseport, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) {
    error = host + ":" + service + ": " + gai_strerror(rc);
    return -1;
  }
  int fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    freeaddrinfo(res);
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
    error = host + ":" + service + ": " + std::strerror(errno);
    close(fd);
    freeaddrinfo(res);
    return -1;
  }
  freeaddrinfo(res);
  return fd;
}

int start_listening(uv_loop_t* loop, uv_tcp_t* server, int fd, uv_connection_cb on_connection) {
  uv_tcp_init(loop, server);
  int rc = uv_tcp_open(server, fd);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(server), 4096, on_connection);
  return rc;
}

namespace {

// The peer's IP text and port; false when unknown.
bool peer(const uv_tcp_t* handle, std::string& ip, int& port, bool& v6) {
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(handle, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
  char buf[INET6_ADDRSTRLEN] = "";
  v6 = ss.ss_family == AF_INET6;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    uv_ip4_name(a, buf, sizeof buf);
    port = ntohs(a->sin_port);
  } else if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    uv_ip6_name(a, buf, sizeof buf);
    port = ntohs(a->sin6_port);
  } else {
    return false;
  }
  ip = buf;
  return true;
}

}  // namespace

PeerAddr peer_addr(const uv_tcp_t* handle) {
  PeerAddr p;
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(handle, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return p;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    std::memcpy(p.ip, &a->sin_addr, 4);
    p.port = ntohs(a->sin_port);
    p.family = 4;
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    std::memcpy(p.ip, &a->sin6_addr, 16);
    p.port = ntohs(a->sin6_port);
    p.family = 6;
  }
  return p;
}

std::string PeerAddr::ip_text() const {
  if (family == 0) return "";
  char buf[INET6_ADDRSTRLEN] = "";
  if (uv_inet_ntop(family == 4 ? AF_INET : AF_INET6, ip, buf, sizeof buf) != 0) return "";
  return buf;
}

std::string PeerAddr::text() const {
  if (family == 0) return "";
  return port ? host_port(ip_text(), port) : ip_text();
}

bool PeerAddr::set_ip(const std::string& text) {
  *this = PeerAddr();
  if (uv_inet_pton(AF_INET, text.c_str(), ip) == 0) family = 4;
  else if (uv_inet_pton(AF_INET6, text.c_str(), ip) == 0) family = 6;
  return family != 0;
}

std::string peer_ip(const uv_tcp_t* handle) {
  std::string ip;
  int port = 0;
  bool v6 = false;
  return peer(handle, ip, port, v6) ? ip : "";
}

std::string peer_address(const uv_tcp_t* handle) {
  std::string ip;
  int port = 0;
  bool v6 = false;
  return peer(handle, ip, port, v6) ? host_port(ip, port) : "";
}

}  // namespace mg
