#include "queue/queue_spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include "core/json_text.h"
#include "core/log.h"
#include "queue/queue_event.h"
#include "queue/queue_hub.h"
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

// Writes `events` to `path` (replacing it). False with `error` set when it could not.
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

// Reads `path` into `events` (appended; each marked redelivered). A missing file is no events.
// Lines that do not parse are skipped and counted in `bad_lines`. False with `error` when the file
// exists but cannot be read.
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

}  // namespace

QueueSpool::QueueSpool(const std::string& state_dir, unsigned node_id)
    : path_(state_dir.empty() ? "" : state_dir + "/" + kQueueSpoolFile), node_id_(node_id) {}

QueueSpool::Restored QueueSpool::restore(QueueHub& queue) {
  Restored r;
  if (path_.empty()) return r;
  std::vector<QueueEvent> events;
  if (!spool_read(path_, events, r.lost_lines, r.error)) {
    LOG_ERROR("queue: cannot read the spool %s: %s (left in place)", path_.c_str(), r.error.c_str());
    return r;
  }
  if (events.empty() && r.lost_lines == 0) return r;
  // The file stays until every restored event is consumed (on_tick removes it then): a crash before
  // that restores them again at the next start. At least once: those consumed before the crash come
  // twice (docs/decisions.md, "The spool is kept until its events are consumed").
  kept_ = true;
  r.events = events.size();
  for (QueueEvent& ev : events) {
    ev.node = node_id_;  // its clients were this node's
    ev.spooled = true;
    queue.push(std::move(ev));
  }
  restored_ = r.events;
  if (r.lost_lines)
    LOG_ERROR("queue: %zu lines of the spool %s could not be read and are lost", r.lost_lines, path_.c_str());
  LOG_INFO("queue: %zu events from the last run restored from %s, marked redelivered; the file is kept until they "
           "are consumed", r.events, path_.c_str());
  return r;
}

void QueueSpool::on_tick(const QueueHub& queue) {
  if (kept_ && queue.spooled_held() == 0) remove("every event restored from it was consumed");
}

void QueueSpool::remove(const char* why) {
  kept_ = false;
  if (std::remove(path_.c_str()) != 0 && errno != ENOENT)
    LOG_ERROR("queue: cannot remove the spool %s: %s (its events may come twice)", path_.c_str(), std::strerror(errno));
  else LOG_INFO("queue: spool %s removed: %s", path_.c_str(), why);
}

size_t QueueSpool::write(QueueHub& queue) {
  if (queue.held_events() == 0) {
    if (kept_) remove("every event restored from it was consumed");
    return 0;
  }
  std::vector<QueueEvent> events = queue.take_held();
  if (path_.empty()) {
    LOG_ERROR("queue: %zu events lost at shutdown: no consumer took them and no [node] state_dir is set to keep "
              "them", events.size());
    return 0;
  }
  std::vector<QueueEvent> all;
  size_t bad = 0;
  std::string error;
  // A spool not restored (e.g. it could not be read at start) is kept too; a restored one is not read
  // again: its events not yet consumed are among those held.
  if (!kept_) spool_read(path_, all, bad, error);
  for (QueueEvent& ev : events) all.push_back(std::move(ev));
  if (!spool_write(path_, all, error)) {
    LOG_ERROR("queue: %zu events lost at shutdown: cannot write the spool: %s", events.size(), error.c_str());
    return 0;
  }
  LOG_WARN("queue: %zu events no consumer took written to %s; they are delivered after the next start",
           events.size(), path_.c_str());
  return events.size();
}

}  // namespace mg
