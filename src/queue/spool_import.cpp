#include "queue/spool_import.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/json_text.h"
#include "core/log.h"
#include "core/node_info.h"
#include "queue/log_store.h"
#include "queue/queue_event.h"

namespace mg {

namespace {

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

// Reads `path` into `events`. A missing file is no events. False with `error` when the file is
// there but is not a regular file or cannot be read (then nothing is appended).
bool spool_read(const std::string& path, std::vector<QueueEvent>& events, size_t& bad_lines, std::string& error) {
  bad_lines = 0;
  FILE* in = std::fopen(path.c_str(), "re");
  if (!in && errno == ENOENT) return true;
  if (!in) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (fstat(fileno(in), &st) != 0 || !S_ISREG(st.st_mode)) {
    std::fclose(in);
    error = path + ": not a regular file";
    return false;
  }
  char* buf = nullptr;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&buf, &cap, in)) >= 0) {
    std::string line(buf, static_cast<size_t>(n));
    if (!line.empty() && line.back() == '\n') line.pop_back();
    if (line.empty()) continue;
    QueueEvent ev;
    if (event_of(line, ev)) events.push_back(std::move(ev));
    else bad_lines++;
  }
  const int saved = errno;
  const bool failed = std::ferror(in) != 0;
  std::free(buf);
  std::fclose(in);
  if (failed) {
    events.clear();
    error = path + ": " + std::strerror(saved);
    return false;
  }
  return true;
}

}  // namespace

SpoolImport import_legacy_spool(const std::string& state_dir, LogStore& store) {
  SpoolImport r;
  const std::string path = state_dir + "/" + kLegacySpoolFile;
  std::vector<QueueEvent> events;
  if (!spool_read(path, events, r.lost_lines, r.error)) {
    LOG_ERROR("queue: cannot read the spool %s: %s (left in place)", path.c_str(), r.error.c_str());
    return r;
  }
  if (events.empty() && r.lost_lines == 0) return r;
  std::vector<TopicLog*> logs;
  bool usable = true;
  for (const QueueEvent& ev : events) {
    TopicLog* log = store.open(ev.topic);
    if (!log) {
      usable = false;
      continue;
    }
    log->append(ev.client, ev.data, ev.context);
    logs.push_back(log);
  }
  if (!store.flush_now() || !usable) {
    r.error = "its events could not be written to the topics' logs";
    LOG_ERROR("queue: the spool %s is left in place: %s", path.c_str(), r.error.c_str());
    return r;
  }
  for (TopicLog* log : logs) log->mark_recovered();
  r.events = events.size();
  if (r.lost_lines)
    LOG_ERROR("queue: %zu lines of the spool %s could not be read and are lost", r.lost_lines, path.c_str());
  if (std::remove(path.c_str()) != 0)
    LOG_ERROR("queue: cannot remove the spool %s after importing it: %s (its events may come twice)", path.c_str(),
              std::strerror(errno));
  LOG_INFO("queue: %zu events of the spool %s (an older version's) moved into the topics' logs, marked redelivered",
           r.events, path.c_str());
  return r;
}

}  // namespace mg
