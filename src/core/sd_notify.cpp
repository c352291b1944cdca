#include "core/sd_notify.h"

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace mg {

SdNotify::SdNotify() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path && (path[0] == '/' || path[0] == '@') && std::strlen(path) < sizeof(sockaddr_un::sun_path)) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    size_t len = std::strlen(path);
    std::memcpy(sa.sun_path, path, len);
    if (path[0] == '@') sa.sun_path[0] = '\0';  // abstract namespace: no trailing NUL in the length
    socklen_t salen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len + (path[0] == '@' ? 0 : 1));
    addr_.assign(reinterpret_cast<const char*>(&sa), salen);
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  }
  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* pid = std::getenv("WATCHDOG_PID");
  bool ours = !pid || std::strtoll(pid, nullptr, 10) == static_cast<long long>(getpid());
  if (fd_ >= 0 && usec && ours) {
    unsigned long long us = std::strtoull(usec, nullptr, 10);
    watchdog_ms_ = us / 2000;  // ping at half the timeout, as sd_watchdog_enabled(3) advises
    if (us > 0 && watchdog_ms_ == 0) watchdog_ms_ = 1;
  }
}

SdNotify::~SdNotify() {
  if (fd_ >= 0) close(fd_);
}

bool SdNotify::send(const std::string& state) {
  if (fd_ < 0) return false;
  ssize_t n = sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(addr_.data()),
                     static_cast<socklen_t>(addr_.size()));
  return n == static_cast<ssize_t>(state.size());
}

void SdNotify::tick(uint64_t now_ms, const std::string& status) {
  if (fd_ < 0) return;
  if (watchdog_ms_ && (!pinged_ || now_ms - last_ping_ms_ >= watchdog_ms_)) {
    send("WATCHDOG=1");
    last_ping_ms_ = now_ms;
    pinged_ = true;
  }
  if (status != last_status_) {
    send("STATUS=" + status);
    last_status_ = status;
  }
}

}  // namespace mg
