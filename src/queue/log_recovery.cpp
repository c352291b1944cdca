#include "queue/log_recovery.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "core/log_text.h"
#include "queue/log_files.h"
#include "queue/log_format.h"

namespace mg {

namespace {

// The segments of `dir`, by first sequence number.
bool list_segments(const std::string& dir, std::vector<LogSegment>& out, std::string& error) {
  DIR* d = opendir(dir.c_str());
  if (!d) {
    error = dir + ": " + std::strerror(errno);
    return false;
  }
  while (struct dirent* e = readdir(d)) {
    LogSegment s;
    if (parse_segment_file_name(e->d_name, s.first_seq)) out.push_back(s);
  }
  closedir(d);
  std::sort(out.begin(), out.end(), [](const LogSegment& a, const LogSegment& b) { return a.first_seq < b.first_seq; });
  return true;
}

// Scans one segment's bytes from the cursor on. `last` tells whether it is the topic's last segment
// (whose bad tail is torn and cut off); `last_seq` is the sequence number of the last valid record
// before it. Returns the file size to keep (smaller than the bytes only for a torn last segment).
size_t scan_segment(const std::string& bytes, bool last, RecoveredLog& out, uint64_t& last_seq) {
  std::string_view body(bytes);
  body.remove_prefix(kSegmentHeaderBytes);
  LogScanner scan(body, 0, last_seq);
  LogRecord r;
  for (;;) {
    LogScanner::Step step = scan.next(r);
    if (step == LogScanner::Step::Record) {
      const uint64_t expected = std::max(last_seq + 1, out.cursor);
      if (r.seq > expected) out.corrupt_records += r.seq - expected;  // the records of the bytes skipped
      if (r.seq >= out.cursor) out.events++;
      last_seq = r.seq;
      continue;
    }
    if (step == LogScanner::Step::End) return bytes.size();
    const size_t bad_at = scan.offset();
    const uint64_t skipped_before = scan.skipped_bytes();
    if (scan.resync()) {
      out.corrupt_bytes += scan.skipped_bytes() - skipped_before;
      continue;
    }
    // Nothing valid follows. The last segment's tail is where a power cut cut the last write short:
    // cut it off. In an older segment it is corruption (its records are counted by the gap to the
    // next segment's first record).
    if (last) {
      out.torn_bytes += body.size() - bad_at;
      return kSegmentHeaderBytes + bad_at;
    }
    out.corrupt_bytes += body.size() - bad_at;
    return bytes.size();
  }
}

// A topic directory whose making was cut short: a topic's first write makes the directory, then its
// `topic` file (written as topic.tmp, synced, renamed), and only then a segment or the cursor. A
// crash in between leaves no `topic` file, no cursor and no segment: nothing to recover, and the
// topic's next write finishes it (make_dirs). Refused instead, the topic would stay in memory at
// every later start.
bool unfinished_topic_dir(const std::string& dir) {
  struct stat st {};
  if (stat((dir + "/topic").c_str(), &st) == 0 || errno != ENOENT) return false;
  if (stat((dir + "/cursor").c_str(), &st) == 0 || errno != ENOENT) return false;
  std::vector<LogSegment> segments;
  std::string error;
  return list_segments(dir, segments, error) && segments.empty();
}

}  // namespace

bool recover_topic_log(const std::string& dir, RecoveredLog& out, bool repair) {
  out.dir = dir;
  std::string text;
  if (!read_whole(dir + "/topic", out.topic, out.error)) return false;
  if (read_whole(dir + "/cursor", text, out.error)) {
    if (!decode_cursor_file(text, out.cursor_generation, out.cursor)) {
      // Both slots bad: start from the oldest segment (everything there is delivered again).
      LOG_ERROR("queue: %s/cursor holds no valid cursor: its log is delivered again from its oldest record",
                dir.c_str());
      out.cursor = 0;
    }
  } else if (errno != ENOENT) {
    return false;
  } else {
    out.cursor = 0;  // never consumed anything: from the start
  }
  out.error.clear();
  std::vector<LogSegment> segments;
  if (!list_segments(dir, segments, out.error)) return false;
  if (out.cursor == 0) out.cursor = segments.empty() ? 1 : segments.front().first_seq;
  // A segment is consumed when the next one starts at or below the cursor.
  size_t first_kept = 0;
  while (first_kept + 1 < segments.size() && segments[first_kept + 1].first_seq <= out.cursor) first_kept++;
  const std::vector<LogSegment> consumed(segments.begin(), segments.begin() + static_cast<std::ptrdiff_t>(first_kept));
  segments.erase(segments.begin(), segments.begin() + static_cast<std::ptrdiff_t>(first_kept));

  uint64_t last_seq = segments.empty() ? out.cursor - 1 : segments.front().first_seq - 1;
  for (size_t i = 0; i < segments.size(); i++) {
    LogSegment& s = segments[i];
    const std::string path = dir + "/" + segment_file_name(s.first_seq);
    if (!read_whole(path, text, out.error)) return false;
    uint64_t first = 0;
    std::string why;
    const bool last = i + 1 == segments.size();
    if (last && text.size() < kSegmentHeaderBytes) {
      // Made, and the node stopped before its header was written: a torn tail like any other.
      out.torn_bytes += text.size();
      if (repair && unlink(path.c_str()) != 0) {
        out.error = path + ": cannot remove this segment cut short: " + std::strerror(errno);
        return false;
      }
      segments.pop_back();
      break;
    }
    if (!parse_segment_header(text, first, why)) {
      // A segment this version cannot read (a newer format, or a header destroyed): the whole log is
      // left as it is, for an operator or a newer binary; the topic runs in memory meanwhile.
      out.error = path + ": " + why;
      return false;
    }
    size_t keep = scan_segment(text, last, out, last_seq);
    if (repair && keep < text.size() && truncate(path.c_str(), static_cast<off_t>(keep)) != 0) {
      out.error = path + ": cannot cut off its torn tail: " + std::strerror(errno);
      return false;
    }
    s.bytes = keep;
  }
  // Deleted only now that every kept segment was read: a log refused above is left whole.
  for (const LogSegment& c : consumed) {
    std::string path = dir + "/" + segment_file_name(c.first_seq);
    if (!repair || unlink(path.c_str()) == 0) out.deleted_segments++;
  }
  out.next_seq = std::max(last_seq + 1, out.cursor);
  out.segments = std::move(segments);
  return true;
}

bool list_topic_dirs(const std::string& queue_dir, std::vector<std::string>& names) {
  DIR* d = opendir(queue_dir.c_str());
  if (!d) return false;
  while (struct dirent* e = readdir(d)) {
    struct stat st {};
    if (e->d_name[0] != '.' && stat((queue_dir + "/" + e->d_name).c_str(), &st) == 0 && S_ISDIR(st.st_mode))
      names.emplace_back(e->d_name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return true;
}

std::vector<RecoveredLog> recover_logs(const std::string& queue_dir) {
  std::vector<RecoveredLog> out;
  std::vector<std::string> names;
  if (!list_topic_dirs(queue_dir, names)) {
    if (errno != ENOENT) LOG_ERROR("queue: cannot read %s: %s", queue_dir.c_str(), std::strerror(errno));
    return out;
  }
  for (const std::string& name : names) {
    const std::string dir = queue_dir + "/" + name;
    if (unfinished_topic_dir(dir)) {
      LOG_INFO("queue: %s holds no log yet (its making was cut short): made again at its topic's first write",
               dir.c_str());
      continue;
    }
    RecoveredLog r;
    if (!recover_topic_log(dir, r)) {
      LOG_ERROR("queue: the log in %s cannot be used and is left as it is: %s", dir.c_str(), r.error.c_str());
      out.push_back(std::move(r));
      continue;
    }
    if (r.events || r.corrupt_records || r.corrupt_bytes || r.torn_bytes)
      LOG_INFO("queue: topic \"%s\": %llu events recovered from %s (records %llu..%llu)", log_safe(r.topic).c_str(),
               static_cast<unsigned long long>(r.events), dir.c_str(), static_cast<unsigned long long>(r.cursor),
               static_cast<unsigned long long>(r.next_seq - 1));
    if (r.corrupt_records || r.corrupt_bytes)
      LOG_ERROR("queue: topic \"%s\": %llu records failed their checksum and are lost (%llu bytes skipped)",
                log_safe(r.topic).c_str(), static_cast<unsigned long long>(r.corrupt_records),
                static_cast<unsigned long long>(r.corrupt_bytes));
    if (r.torn_bytes)
      LOG_WARN("queue: topic \"%s\": a torn tail of %llu bytes cut off its last segment (a write cut short by a "
               "crash or power cut)", log_safe(r.topic).c_str(), static_cast<unsigned long long>(r.torn_bytes));
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace mg
