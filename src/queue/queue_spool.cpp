#include "queue/queue_spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "core/json_text.h"
#include "core/node_info.h"

namespace mg {

namespace {

std::string line_of(const QueueEvent& ev) {
  std::string s = "{\"t\":";
  json_append_string(s, ev.topic);
  s += ",\"c\":\"" + std::to_string(ev.client) + "\",\"n\":" + std::to_string(ev.node) + ",\"d\":" + ev.data;
  if (!ev.context.empty()) s += ",\"x\":" + ev.context;
  s += "}\n";
  return s;
}

bool event_of(const std::string& line, QueueEvent& ev) {
  JsonPtr doc = json_parse_strict(line.data(), line.size());
  if (!doc || !cJSON_IsObject(doc.get())) return false;
  const cJSON* t = cJSON_GetObjectItemCaseSensitive(doc.get(), "t");
  int64_t node = 0;
  const char* d = nullptr;
  size_t dn = 0;
  if (!cJSON_IsString(t) || !*t->valuestring ||
      !json_client_id(cJSON_GetObjectItemCaseSensitive(doc.get(), "c"), nullptr, 0, ev.client) ||
      !json_integer(cJSON_GetObjectItemCaseSensitive(doc.get(), "n"), 0, kMaxNodeId, node) ||
      !json_member_text(line.data(), line.size(), "d", d, dn))
    return false;
  ev.topic = t->valuestring;
  ev.node = static_cast<unsigned>(node);
  ev.data.assign(d, dn);
  const char* x = nullptr;
  size_t xn = 0;
  if (json_member_text(line.data(), line.size(), "x", x, xn)) ev.context.assign(x, xn);
  ev.redelivered = true;
  return true;
}

}  // namespace

bool spool_write(const std::string& path, const std::vector<QueueEvent>& events, std::string& error) {
  std::string tmp = path + ".tmp";
  // A new file, never one that is there: a stale SPOOL.tmp (a crash while writing) is unlinked first,
  // and a symlink or file planted in its place after that makes the open fail rather than redirect
  // the write (O_EXCL; O_NOFOLLOW for good measure). Issue 18.
  if (unlink(tmp.c_str()) != 0 && errno != ENOENT) {
    error = tmp + ": " + std::strerror(errno);
    return false;
  }
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = tmp + ": " + std::strerror(errno);
    return false;
  }
  std::string buf;
  bool ok = true;
  for (size_t i = 0; i < events.size() && ok; i++) {
    buf += line_of(events[i]);
    if (buf.size() >= (1u << 20) || i + 1 == events.size()) {
      for (size_t off = 0; ok && off < buf.size();) {
        ssize_t n = write(fd, buf.data() + off, buf.size() - off);
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) off += static_cast<size_t>(n);
      }
      buf.clear();
    }
  }
  ok = ok && fsync(fd) == 0;
  int saved = errno;
  ok = close(fd) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    error = tmp + ": " + std::strerror(ok ? errno : saved);
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

bool spool_read(const std::string& path, std::vector<QueueEvent>& events, size_t& bad_lines, std::string& error) {
  bad_lines = 0;
  if (access(path.c_str(), F_OK) != 0 && errno == ENOENT) return true;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot be read";
    return false;
  }
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    QueueEvent ev;
    if (event_of(line, ev)) events.push_back(std::move(ev));
    else bad_lines++;
  }
  return true;
}

}  // namespace mg
