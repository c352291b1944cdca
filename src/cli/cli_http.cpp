#include "cli/cli_http.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/addr.h"

namespace mg {

namespace {

int connect_to(const std::string& host, int port, int timeout_s, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) {
    error = host + ": " + gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = res; a; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    timeval tv{timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    error = "cannot connect to " + host + ":" + std::to_string(port) + ": " + std::strerror(errno);
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

}  // namespace

bool cli_http(const std::string& host, int port, const std::string& method, const std::string& path,
              const std::string& body, const std::string& token, int timeout_s, CliHttpResponse& out,
              std::string& error) {
  int fd = connect_to(host, port, timeout_s, error);
  if (fd < 0) return false;
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: " + host_port(host, port) + "\r\nConnection: close\r\nUser-Agent: meshgate-cli\r\n";
  if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
  if (method != "GET") req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n";
  if (method != "GET") req += body;
  for (size_t sent = 0; sent < req.size();) {
    ssize_t n = send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      error = std::string("cannot send the request: ") + std::strerror(errno);
      close(fd);
      return false;
    }
    sent += static_cast<size_t>(n);
  }
  std::string in;
  char buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      error = errno == EAGAIN || errno == EWOULDBLOCK ? "no answer within " + std::to_string(timeout_s) + " s"
                                                      : std::string("read failed: ") + std::strerror(errno);
      close(fd);
      return false;
    }
    in.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  size_t head_end = in.find("\r\n\r\n");
  if (in.compare(0, 9, "HTTP/1.1 ") != 0 || head_end == std::string::npos) {
    error = "the answer is not HTTP/1.1 (is this the control API port?)";
    return false;
  }
  out.status = std::atoi(in.c_str() + 9);
  out.body = in.substr(head_end + 4);
  return true;
}

}  // namespace mg
