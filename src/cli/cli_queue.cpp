// meshgate queue inspect: what a state directory's disk queue holds ([queue] store = disk,
// docs/queue-log.md), read without a running node. It scans each topic directory as a start would
// (recover_topic_log with repair = false) but changes nothing: files are opened read-only, nothing
// is truncated, deleted or written, so it may also run next to a node that uses the directory.
#include <cjson/cJSON.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "core/config.h"
#include "core/json_text.h"
#include "core/log_text.h"
#include "core/utf8.h"
#include "queue/log_files.h"
#include "queue/log_format.h"
#include "queue/log_recovery.h"

namespace mg {

namespace {

const char* kQueueUsage =
    "usage: meshgate queue inspect [DIR] [-c CONFIG] [--json] [--records TOPIC [--limit N]]\n"
    "  Lists the topics of the disk queue ([queue] store = disk): per topic the events waiting after\n"
    "  its cursor, the cursor, the next sequence number, its segments and their bytes, and whether the\n"
    "  log is intact (ok, a torn tail, corrupt records, or why it cannot be used).\n"
    "  DIR: the state directory, its queue/ directory or one topic's directory; without DIR, the\n"
    "  [node] state_dir of CONFIG (default %s).\n"
    "  Read only: it never changes, truncates or deletes a file (what a start would repair is only\n"
    "  reported), needs no running node and may run next to one (the numbers are then a snapshot).\n"
    "  --json            the same as a JSON array, one object per topic\n"
    "  --records TOPIC   also print TOPIC's records after its cursor: seq, client, data, context\n"
    "  --limit N         at most N records (default all)\n"
    "  Exit code 0 when every log is intact, 1 when one is damaged or cannot be read, 2 usage.\n";

int queue_usage_error(const std::string& why) {
  std::fprintf(stderr, "meshgate: %s\n", why.c_str());
  std::fprintf(stderr, kQueueUsage, kCliDefaultConfig);
  return 2;
}

// A directory that cannot be read is a wrong argument too (exit 2), but not worth the usage text.
int queue_dir_error(const std::string& why) {
  std::fprintf(stderr, "meshgate: %s\n", why.c_str());
  return 2;
}

struct Options {
  std::string dir;
  std::string config;
  bool json = false;
  bool records = false;
  std::string records_topic;
  uint64_t limit = UINT64_MAX;
};

bool is_dir(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_file(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// One topic directory as found.
struct Topic {
  std::string dir_name;
  RecoveredLog log;
  bool usable = false;     // recover_topic_log succeeded
  uint64_t segments = 0;   // every segment file in the directory, consumed ones included
  uint64_t bytes = 0;      // their sizes
  bool damaged() const { return !usable || log.torn_bytes || log.corrupt_records || log.corrupt_bytes; }
};

// Counts the segment files of `dir` and their bytes.
void count_segments(const std::string& dir, Topic& t) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (struct dirent* e = readdir(d)) {
    uint64_t first = 0;
    struct stat st {};
    if (parse_segment_file_name(e->d_name, first) && stat((dir + "/" + e->d_name).c_str(), &st) == 0) {
      t.segments++;
      t.bytes += static_cast<uint64_t>(st.st_size);
    }
  }
  closedir(d);
}

// Scans one topic directory without changing it. A node running on the directory may be appending
// a record (which then looks like a torn tail) or removing a consumed segment (gone when it is
// read): a scan that finds either is repeated a few times, and only what stays is reported.
Topic scan_topic(const std::string& dir, const std::string& dir_name) {
  Topic t;
  t.dir_name = dir_name;
  for (int attempt = 1;; attempt++) {
    t.log = RecoveredLog{};
    t.usable = recover_topic_log(dir, t.log, /*repair=*/false);
    if ((t.usable && t.log.torn_bytes == 0) || attempt == 4) break;
    usleep(static_cast<useconds_t>(attempt) * 30000);
  }
  count_segments(dir, t);
  return t;
}

// The topic directories under `queue_dir`, by name, each scanned. False with `error` when the
// directory cannot be read (missing is no topics).
bool scan_queue_dir(const std::string& queue_dir, std::vector<Topic>& out, std::string& error) {
  std::vector<std::string> names;
  if (!list_topic_dirs(queue_dir, names)) {
    if (errno == ENOENT) return true;
    error = "cannot read " + queue_dir + ": " + std::strerror(errno);
    return false;
  }
  for (const std::string& name : names) out.push_back(scan_topic(queue_dir + "/" + name, name));
  return true;
}

// What DIR is: one topic's directory (it holds a `topic` file), a state directory (it holds a
// queue/ that is not itself a topic's directory: a topic may be named "queue"), else the queue
// directory. False with `error` when it is not a directory.
bool scan_dir_argument(const std::string& dir, std::vector<Topic>& out, std::string& error) {
  if (!is_dir(dir)) {
    error = dir + " is not a directory";
    return false;
  }
  if (is_file(dir + "/topic")) {
    std::string name = dir.substr(dir.find_last_of('/') + 1);
    out.push_back(scan_topic(dir, name));
    return true;
  }
  if (is_dir(dir + "/queue") && !is_file(dir + "/queue/topic")) return scan_queue_dir(dir + "/queue", out, error);
  return scan_queue_dir(dir, out, error);
}

// Text for a JSON string: as is when valid UTF-8 (cJSON escapes the control bytes), else escaped.
std::string json_safe(const std::string& s) {
  return is_valid_utf8(s.data(), s.size()) ? s : log_safe(s);
}

// "1 corrupt record", "2 corrupt records".
std::string count_of(uint64_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

std::string status_text(const Topic& t) {
  if (!t.usable) return log_safe(t.log.error);
  const RecoveredLog& r = t.log;
  std::string s;
  auto add = [&s](const std::string& part) { s += (s.empty() ? "" : "; ") + part; };
  if (r.torn_bytes) add("torn tail " + std::to_string(r.torn_bytes) + " bytes (cut at next start)");
  if (r.corrupt_records || r.corrupt_bytes)
    add(count_of(r.corrupt_records, "corrupt record") + " (" + std::to_string(r.corrupt_bytes) + " bytes skipped)");
  if (r.deleted_segments) add(count_of(r.deleted_segments, "consumed segment") + " (deleted at next start)");
  return s.empty() ? "ok" : s;
}

std::string topic_label(const Topic& t) {
  return t.log.topic.empty() ? "(" + log_safe(t.dir_name) + ")" : log_safe(t.log.topic);
}

// Columns on a terminal: the number of code points (the texts are escaped: no control bytes).
size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

void print_table(const std::vector<Topic>& topics) {
  using Row = std::vector<std::string>;
  std::vector<Row> rows = {{"TOPIC", "EVENTS", "CURSOR", "NEXT SEQ", "SEGMENTS", "BYTES", "STATUS"}};
  uint64_t events = 0, segments = 0, bytes = 0;
  size_t damaged = 0;
  for (const Topic& t : topics) {
    const RecoveredLog& r = t.log;
    auto num = [&t](uint64_t v) { return t.usable ? std::to_string(v) : std::string("-"); };
    rows.push_back({topic_label(t), num(r.events), num(r.cursor), num(r.next_seq), std::to_string(t.segments),
                    std::to_string(t.bytes), status_text(t)});
    if (t.usable) events += r.events;
    segments += t.segments;
    bytes += t.bytes;
    damaged += t.damaged();
  }
  std::string summary = count_of(topics.size(), "topic");
  if (damaged) summary += ", " + std::to_string(damaged) + " damaged";
  rows.push_back({"total", std::to_string(events), "", "", std::to_string(segments), std::to_string(bytes), summary});
  std::vector<size_t> width(rows[0].size(), 0);
  for (const Row& row : rows)
    for (size_t c = 0; c < row.size(); c++) width[c] = std::max(width[c], display_width(row[c]));
  for (const Row& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); c++) {
      const std::string pad(width[c] - display_width(row[c]), ' ');
      const bool left = c == 0 || c + 1 == row.size();  // the topic and the status; numbers to the right
      if (c) line += "  ";
      line += left ? row[c] + (c + 1 == row.size() ? "" : pad) : pad + row[c];
    }
    std::printf("%s\n", line.c_str());
  }
}

// Calls `each` for the records of `log` at and after its cursor, up to `limit`, reading one segment
// at a time (read-only, and only as far as the scan went: a running node may have appended since).
// Corrupt stretches are stepped over as a start steps over them. False with `error` when a segment
// cannot be read (one removed since the scan was consumed meanwhile, and is passed over).
bool read_records(const RecoveredLog& log, uint64_t limit, const std::function<void(const LogRecord&)>& each,
                  std::string& error) {
  uint64_t shown = 0;
  uint64_t last_seq = log.segments.empty() ? 0 : log.segments.front().first_seq - 1;
  std::string bytes;
  for (const LogSegment& s : log.segments) {
    const std::string path = log.dir + "/" + segment_file_name(s.first_seq);
    if (!read_whole(path, bytes, error)) {
      if (errno == ENOENT) continue;
      return false;
    }
    uint64_t first = 0;
    std::string why;
    if (!parse_segment_header(bytes, first, why)) {
      error = path + ": " + why;
      return false;
    }
    std::string_view body(bytes);
    body = body.substr(kSegmentHeaderBytes, s.bytes > kSegmentHeaderBytes ? s.bytes - kSegmentHeaderBytes : 0);
    LogScanner scan(body, 0, last_seq);
    LogRecord r;
    for (;;) {
      LogScanner::Step step = scan.next(r);
      if (step == LogScanner::Step::Record) {
        if (r.seq < log.cursor) continue;
        if (shown++ == limit) return true;
        each(r);
        continue;
      }
      if (step == LogScanner::Step::End || !scan.resync()) break;
    }
    last_seq = scan.last_seq();
  }
  return true;
}

// A record's JSON text as a JSON value in the output: parsed when it is JSON, else as an escaped string.
cJSON* json_value_of(std::string_view text) {
  if (text.empty()) return cJSON_CreateNull();
  JsonPtr v = json_parse_strict(text.data(), text.size());
  return v ? v.release() : cJSON_CreateString(log_safe(text).c_str());
}

cJSON* topic_json(const Topic& t) {
  const RecoveredLog& r = t.log;
  cJSON* o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "topic", json_safe(r.topic).c_str());
  cJSON_AddStringToObject(o, "dir", json_safe(r.dir).c_str());
  cJSON_AddBoolToObject(o, "ok", !t.damaged());
  cJSON_AddStringToObject(o, "status", json_safe(status_text(t)).c_str());
  if (!t.usable) cJSON_AddStringToObject(o, "error", json_safe(r.error).c_str());
  auto num = [o](const char* key, uint64_t v) { cJSON_AddNumberToObject(o, key, static_cast<double>(v)); };
  if (t.usable) {
    num("events", r.events);
    num("cursor", r.cursor);
    num("next_seq", r.next_seq);
  }
  num("segments", t.segments);
  num("bytes", t.bytes);
  num("torn_bytes", r.torn_bytes);
  num("corrupt_records", r.corrupt_records);
  num("corrupt_bytes", r.corrupt_bytes);
  num("consumed_segments", r.deleted_segments);
  return o;
}

int run_inspect(const Options& o) {
  std::vector<Topic> topics;
  std::string error;
  if (!o.dir.empty()) {
    if (!scan_dir_argument(o.dir, topics, error)) return queue_dir_error(error);
  } else {
    Config cfg;
    const std::string path = o.config.empty() ? kCliDefaultConfig : o.config;
    if (!load_config(path, cfg, error)) {
      std::fprintf(stderr, "meshgate: configuration error: %s\n", error.c_str());
      return 2;
    }
    const std::string state = effective_state_dir(cfg);
    if (state.empty()) return queue_dir_error(path + " sets no [node] state_dir: give DIR");
    if (!scan_queue_dir(state + "/queue", topics, error)) return queue_dir_error(error);
  }
  bool damaged = false;
  for (const Topic& t : topics) damaged = damaged || t.damaged();

  const Topic* chosen = nullptr;
  if (o.records) {
    for (const Topic& t : topics)
      if (t.log.topic == o.records_topic) chosen = &t;
    if (!chosen) {
      std::fprintf(stderr, "meshgate: no topic \"%s\" in the queue\n", log_safe(o.records_topic).c_str());
      return 2;
    }
    if (!chosen->usable) {
      std::fprintf(stderr, "meshgate: the log of \"%s\" cannot be read: %s\n", log_safe(o.records_topic).c_str(),
                   log_safe(chosen->log.error).c_str());
      return 1;
    }
  }

  if (o.json) {
    JsonPtr all(cJSON_CreateArray());
    for (const Topic& t : topics) {
      cJSON* obj = topic_json(t);
      cJSON_AddItemToArray(all.get(), obj);
      if (&t != chosen) continue;
      cJSON* records = cJSON_AddArrayToObject(obj, "records");
      bool ok = read_records(t.log, o.limit, [records](const LogRecord& r) {
        cJSON* rec = cJSON_CreateObject();
        cJSON_AddNumberToObject(rec, "seq", static_cast<double>(r.seq));
        cJSON_AddStringToObject(rec, "client", std::to_string(r.client).c_str());  // 64 bits: as text, as the API sends ids
        cJSON_AddItemToObject(rec, "data", json_value_of(r.data));
        cJSON_AddItemToObject(rec, "context", json_value_of(r.context));
        cJSON_AddItemToArray(records, rec);
      }, error);
      if (!ok) {
        std::fprintf(stderr, "meshgate: %s\n", log_safe(error).c_str());
        damaged = true;
      }
    }
    std::printf("%s\n", json_print(all.get()).c_str());
    return damaged ? 1 : 0;
  }

  print_table(topics);
  if (chosen) {
    const RecoveredLog& r = chosen->log;
    std::printf("\nrecords of %s after its cursor (%llu):\n", topic_label(*chosen).c_str(),
                static_cast<unsigned long long>(r.cursor));
    const int seq_width = static_cast<int>(std::max<size_t>(3, std::to_string(r.next_seq).size()));
    std::printf("%*s  %-20s  %s\n", seq_width, "SEQ", "CLIENT", "DATA  CONTEXT");
    bool ok = read_records(r, o.limit, [seq_width](const LogRecord& rec) {
      // The texts are JSON (a backslash there is JSON's own escape): only control bytes and bytes
      // that are not UTF-8 are escaped.
      std::string line = log_safe_line(rec.data);
      if (!rec.context.empty()) line += "  " + log_safe_line(rec.context);
      std::printf("%*llu  %-20llu  %s\n", seq_width, static_cast<unsigned long long>(rec.seq),
                  static_cast<unsigned long long>(rec.client), line.c_str());
    }, error);
    if (!ok) {
      std::fprintf(stderr, "meshgate: %s\n", log_safe(error).c_str());
      damaged = true;
    }
  }
  return damaged ? 1 : 0;
}

}  // namespace

int cli_queue(int argc, char** argv) {
  if (argc < 1) return queue_usage_error("give a sub-command: inspect");
  std::string sub = argv[0];
  if (sub == "-h" || sub == "--help") return std::printf(kQueueUsage, kCliDefaultConfig), 0;
  if (sub != "inspect") return queue_usage_error("unknown sub-command " + sub + " (there is: inspect)");
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") return std::printf(kQueueUsage, kCliDefaultConfig), 0;
    if (a == "--json") {
      o.json = true;
    } else if (a == "-c" || a == "--config" || a == "--records" || a == "--limit") {
      if (i + 1 >= argc) return queue_usage_error("missing value for " + a);
      std::string v = argv[++i];
      if (a == "--records") {
        o.records = true;
        o.records_topic = v;
      } else if (a == "--limit") {
        char* end = nullptr;
        errno = 0;
        unsigned long long n = std::strtoull(v.c_str(), &end, 10);
        if (v.empty() || v[0] == '-' || *end != '\0' || errno != 0) return queue_usage_error("bad --limit " + v);
        o.limit = n;
      } else {
        o.config = v;
      }
    } else if (!a.empty() && a[0] == '-') {
      return queue_usage_error("unknown option " + a);
    } else if (o.dir.empty()) {
      o.dir = a;
    } else {
      return queue_usage_error("give one DIR");
    }
  }
  if (o.limit != UINT64_MAX && !o.records) return queue_usage_error("--limit goes with --records TOPIC");
  if (!o.dir.empty() && !o.config.empty()) return queue_usage_error("give DIR or --config, not both");
  return run_inspect(o);
}

}  // namespace mg
