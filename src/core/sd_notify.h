// The systemd notify protocol (sd_notify(3)) without libsystemd, which has no static archive: one
// datagram of "KEY=value" lines sent to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an
// abstract name when it starts with '@'). Outside systemd the variable is unset and nothing is sent.
//
// meshgate sends READY=1 once every listener is open, STOPPING=1 when the drain starts, STATUS= lines
// with its connections and consumers, and WATCHDOG=1 at half the unit's WatchdogSec= while the hub
// loop runs (a hung hub stops the pings and systemd restarts the service).
#pragma once

#include <cstdint>
#include <string>

namespace mg {

class SdNotify {
 public:
  // Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID (the watchdog is ours only when the pid is
  // unset or ours). Sends nothing yet.
  SdNotify();
  ~SdNotify();
  SdNotify(const SdNotify&) = delete;
  SdNotify& operator=(const SdNotify&) = delete;

  bool enabled() const { return fd_ >= 0; }
  // The watchdog interval to ping at (half of WATCHDOG_USEC), 0 when no watchdog is configured.
  uint64_t watchdog_interval_ms() const { return watchdog_ms_; }
  // Sends `state` ("READY=1\nSTATUS=..."). False when there is no socket or the send failed.
  bool send(const std::string& state);
  // Once a tick: WATCHDOG=1 when it is due at `now_ms`, STATUS=`status` when it changed.
  void tick(uint64_t now_ms, const std::string& status);

 private:
  int fd_ = -1;
  std::string addr_;  // sockaddr_un bytes
  uint64_t watchdog_ms_ = 0, last_ping_ms_ = 0;
  bool pinged_ = false;
  std::string last_status_;
};

}  // namespace mg
