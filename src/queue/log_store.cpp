#include "queue/log_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/log.h"
#include "core/log_text.h"
#include "queue/log_files.h"
#include "queue/log_format.h"

namespace mg {

// A topic's files, the store thread's side (made on the hub thread before the thread sees it).
struct TopicFiles {
  TopicLog* log = nullptr;
  std::string dir;
  bool dir_made = false;
  std::deque<LogSegment> segments;  // oldest first; the last is the active one
  int fd = -1;                      // the active segment, for appending
  uint64_t written_end = 1;         // one past the last record written
  uint64_t synced_end = 1;
  bool needs_sync = false;          // written or a segment made since the last sync
  bool dir_needs_sync = false;
  // The cursor: what the hub last sent, and what is in the file.
  uint64_t cursor_wanted = 1, cursor_written = 0, cursor_generation = 0;
  int cursor_fd = -1;
  // The reader (LogStore::read): the segment it is in, its bytes so far, where it is.
  uint64_t reader_segment = 0;  // first_seq of the segment in reader_bytes; 0: none
  std::string reader_bytes;
  int reader_fd = -1;
  size_t reader_offset = 0;      // in the bytes after the header
  uint64_t reader_last_seq = 0;  // the last record it passed
  uint64_t reader_next = 0;      // the sequence number it would return next (0: unknown)
  bool failed = false;           // a write failed: later batches are not written (logged once)
  std::string last_error;        // the last error logged
  bool roll = false;             // the next batch starts a new segment (after a retry)

  uint64_t bytes() const {
    uint64_t n = 0;
    for (const LogSegment& s : segments) n += s.bytes;
    return n;
  }
  void close_reader() {
    if (reader_fd >= 0) close(reader_fd);
    reader_fd = -1;
    reader_segment = 0;
    reader_bytes.clear();
    reader_bytes.shrink_to_fit();
  }
  ~TopicFiles() {
    close_reader();
    if (fd >= 0) close(fd);
    if (cursor_fd >= 0) close(cursor_fd);
  }
};

struct LogStore::Job {
  TopicFiles* files;
  std::string batch;
  uint64_t batch_first, batch_end;
  uint64_t cursor;
  size_t read_events;  // 0: no read
  uint64_t read_from;
  bool retry;
};

struct LogStore::Result {
  TopicFiles* files;
  uint64_t written_end, synced_end, disk_bytes, oldest_end;
  bool failed;
  bool read_done = false;
  std::vector<LoggedEvent> events;
  std::string error;
};

// ---------------------------------------------------------------- hub side

uint64_t TopicLog::append(uint64_t client, std::string_view data, std::string_view context) {
  const uint64_t seq = next_seq_++;
  if (batch_.empty()) batch_first_ = seq;
  const size_t before = batch_.size();
  append_record(batch_, seq, client, data, context);
  appended_bytes_ += batch_.size() - before;
  done_.push_back(false);
  changed();
  return seq;
}

void TopicLog::done(uint64_t seq) {
  if (seq < cursor_ || seq >= next_seq_) return;
  done_[seq - cursor_] = true;
  const uint64_t before = cursor_;
  while (!done_.empty() && done_.front()) {
    done_.pop_front();
    cursor_++;
  }
  if (cursor_ != before) changed();
}

void TopicLog::changed() { store_->mark(this); }

LogStore::LogStore(uv_loop_t* loop, Post post, LogOptions options)
    : loop_(loop), post_(std::move(post)), opt_(std::move(options)) {
  uv_idle_init(loop_, &idle_);
  idle_.data = this;
}

LogStore::~LogStore() {
  // stop() closes the idle handle (or the loop's owner closed every handle at a failed start).
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
}

std::vector<TopicLog*> LogStore::recover() {
  std::vector<TopicLog*> out;
  for (RecoveredLog& r : recover_logs(opt_.queue_dir)) {
    if (!r.error.empty()) {  // logged; left as it is: open() never writes there
      refused_.push_back(r.dir);
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.refused_dirs++;
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.recovered_events += r.events;
      stats_.corrupt_records += r.corrupt_records;
      stats_.corrupt_bytes += r.corrupt_bytes;
      stats_.torn_bytes += r.torn_bytes;
    }
    TopicLog* log = open(r.topic);
    TopicFiles& f = *log->files_;
    f.dir = r.dir;
    f.dir_made = true;
    f.segments.assign(r.segments.begin(), r.segments.end());
    f.written_end = f.synced_end = r.next_seq;
    f.cursor_wanted = f.cursor_written = r.cursor;
    f.cursor_generation = r.cursor_generation;
    log->next_seq_ = log->written_end_ = log->synced_end_ = r.next_seq;
    log->cursor_ = log->cursor_sent_ = log->memory_end_ = r.cursor;
    log->recovered_end_ = r.next_seq;
    log->done_.assign(r.next_seq - r.cursor, false);
    log->disk_bytes_ = f.bytes();
    total_bytes_ += log->disk_bytes_;
    out.push_back(log);
  }
  return out;
}

TopicLog* LogStore::open(const std::string& topic) {
  for (auto& l : logs_)
    if (l->topic_ == topic) return l.get();
  const std::string dir = opt_.queue_dir + "/" + topic_dir_name(topic);
  for (const std::string& r : refused_)
    if (r == dir) return nullptr;
  logs_.push_back(std::unique_ptr<TopicLog>(new TopicLog(this, topic)));
  files_.push_back(std::make_unique<TopicFiles>());
  TopicLog* log = logs_.back().get();
  log->files_ = files_.back().get();
  log->files_->log = log;
  log->files_->dir = dir;
  return log;
}

std::vector<TopicLog*> LogStore::logs() const {
  std::vector<TopicLog*> out;
  for (const auto& l : logs_) out.push_back(l.get());
  return out;
}

void LogStore::set_handlers(OnRead on_read, std::function<void(TopicLog&)> on_written, OnFailed on_failed) {
  on_read_ = std::move(on_read);
  on_written_ = std::move(on_written);
  on_failed_ = std::move(on_failed);
}

void LogStore::retry(TopicLog& log) {
  log.retry_ = true;
  mark(&log);
}

void LogStore::start() {
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { thread_main(); });
  if (!dirty_.empty()) mark(nullptr);
}

void LogStore::read(TopicLog& log, size_t max_events) {
  if (log.reading_ || max_events == 0) return;
  log.reading_ = true;
  log.read_events_ = max_events;
  mark(&log);
}

void LogStore::mark(TopicLog* log) {
  if (log && !log->dirty_) {
    log->dirty_ = true;
    dirty_.push_back(log);
  }
  if (started_ && !idle_active_ && !stopping_) {
    idle_active_ = true;
    uv_idle_start(&idle_, [](uv_idle_t* h) {
      static_cast<LogStore*>(h->data)->hand_over();
    });
  }
}

void LogStore::hand_over() {
  if (idle_active_) uv_idle_stop(&idle_);
  idle_active_ = false;
  if (dirty_.empty()) return;
  std::vector<Job> jobs;
  jobs.reserve(dirty_.size());
  for (TopicLog* log : dirty_) {
    log->dirty_ = false;
    if (!log->batch_.empty()) log->in_flight_.emplace_back(log->next_seq_, log->appended_bytes_);
    jobs.push_back(Job{log->files_, std::move(log->batch_), log->batch_first_, log->next_seq_, log->cursor_,
                       log->read_events_, log->memory_end_, log->retry_});
    log->batch_.clear();
    log->read_events_ = 0;
    log->retry_ = false;
    log->cursor_sent_ = log->cursor_;
  }
  dirty_.clear();
  // A read or a retry is wanted at once; batches alone can wait for a thread that is waiting for its
  // next sync anyway (fsync = batch): they are written with it, one wake-up per interval instead of
  // one per loop turn.
  bool urgent = false;
  for (const Job& j : jobs) urgent = urgent || j.read_events > 0 || j.retry;
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (Job& j : jobs) jobs_.push_back(std::move(j));
    urgent_ = urgent_ || urgent;
    wake = !waiting_for_sync_ || urgent;
  }
  if (wake) wake_.notify_one();
}

void LogStore::stop() {
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&idle_))) uv_close(reinterpret_cast<uv_handle_t*>(&idle_), nullptr);
  if (!started_) return;
  hand_over();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
  started_ = false;
}

void LogStore::apply(std::vector<Result>& results) {
  for (Result& r : results) {
    TopicLog& log = *r.files->log;
    log.written_end_ = r.written_end;
    log.synced_end_ = r.synced_end;
    total_bytes_ = total_bytes_ - log.disk_bytes_ + r.disk_bytes;
    log.disk_bytes_ = r.disk_bytes;
    log.oldest_end_ = r.oldest_end;
    while (!log.in_flight_.empty() && log.in_flight_.front().first <= r.written_end) {
      log.written_bytes_ = log.in_flight_.front().second;
      log.in_flight_.pop_front();
    }
    if (!r.error.empty()) log.error_ = r.error;
    if (r.failed != log.failed_) {
      log.failed_ = r.failed;
      if (on_failed_) on_failed_(log);
    }
    if (r.read_done) {
      log.reading_ = false;
      if (on_read_) on_read_(log, r.events);
    }
    if (on_written_) on_written_(log);
  }
}

LogStoreStats LogStore::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

// ---------------------------------------------------------------- the store's thread

namespace {

using Clock = std::chrono::steady_clock;

bool make_dirs(TopicFiles& f, const std::string& queue_dir, std::string& error) {
  if (f.dir_made) return true;
  for (const std::string& d : {queue_dir, f.dir})
    if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
      error = d + ": " + std::strerror(errno);
      return false;
    }
  if (!write_file_atomic(f.dir + "/topic", f.log->topic(), error) || !sync_dir(f.dir, error) ||
      !sync_dir(queue_dir, error))
    return false;
  f.dir_made = true;
  return true;
}

std::string segment_path(const TopicFiles& f, uint64_t first_seq) { return f.dir + "/" + segment_file_name(first_seq); }

// The active segment to append `first_seq` onwards to: the last one while it is under the size,
// else a new one named by `first_seq`.
bool active_segment(TopicFiles& f, uint64_t first_seq, const LogOptions& opt, std::string& error) {
  const bool room = !f.roll && !f.segments.empty() && f.segments.back().bytes < opt.segment_bytes;
  if (f.fd >= 0 && room) return true;
  if (f.fd < 0 && room) {
    const std::string path = segment_path(f, f.segments.back().first_seq);
    f.fd = open(path.c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (f.fd >= 0) return true;
    error = path + ": " + std::strerror(errno);
    return false;
  }
  if (f.fd >= 0) {  // rolled: the old one is synced before it is let go
    if (opt.fsync != FsyncMode::Off) fdatasync(f.fd);
    close(f.fd);
    f.fd = -1;
  }
  const std::string path = segment_path(f, first_seq);
  f.fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (f.fd < 0) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  std::string header;
  append_segment_header(header, first_seq);
  if (!write_all(f.fd, header, error, path)) {
    close(f.fd);
    f.fd = -1;
    unlink(path.c_str());
    return false;
  }
  f.segments.push_back(LogSegment{first_seq, header.size()});
  f.dir_needs_sync = true;
  f.roll = false;
  return true;
}

bool append_batch(TopicFiles& f, const std::string& batch, uint64_t first, uint64_t end, const LogOptions& opt,
                  std::string& error) {
  if (!make_dirs(f, opt.queue_dir, error) || !active_segment(f, first, opt, error)) return false;
  LogSegment& s = f.segments.back();
  if (!write_all(f.fd, batch, error, segment_path(f, s.first_seq))) {
    // Half a batch would read as a torn tail in the middle of the log: cut back to where it was.
    if (ftruncate(f.fd, static_cast<off_t>(s.bytes)) != 0) error += " (and the segment could not be cut back)";
    return false;
  }
  s.bytes += batch.size();
  f.written_end = end;
  f.needs_sync = true;
  return true;
}

bool write_cursor(TopicFiles& f, bool sync, std::string& error) {
  if (f.cursor_wanted == f.cursor_written || !f.dir_made) return true;
  const std::string path = f.dir + "/cursor";
  if (f.cursor_fd < 0) {
    f.cursor_fd = open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f.cursor_fd < 0) {
      error = path + ": " + std::strerror(errno);
      return false;
    }
  }
  char slot[kCursorSlotBytes];
  const uint64_t gen = ++f.cursor_generation;
  encode_cursor_slot(slot, gen, f.cursor_wanted);
  if (!pwrite_all(f.cursor_fd, std::string_view(slot, sizeof slot), (gen % 2) * kCursorSlotBytes, error, path))
    return false;
  if (sync && fdatasync(f.cursor_fd) != 0) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  f.cursor_written = f.cursor_wanted;
  return true;
}

// Deletes the segments wholly below the cursor in the file (never the active one).
void delete_consumed(TopicFiles& f) {
  bool deleted = false;
  while (f.segments.size() > 1 && f.segments[1].first_seq <= f.cursor_written) {
    if (f.reader_segment == f.segments.front().first_seq) f.close_reader();
    unlink(segment_path(f, f.segments.front().first_seq).c_str());
    f.segments.pop_front();
    deleted = true;
  }
  // Everything consumed and synced: the active segment goes too (the cursor file keeps the numbering),
  // so a queue with nothing waiting holds no segment.
  if (f.segments.size() == 1 && f.cursor_written >= f.written_end && f.written_end > f.segments.front().first_seq &&
      !f.needs_sync && !f.failed) {
    if (f.reader_segment == f.segments.front().first_seq) f.close_reader();
    if (f.fd >= 0) close(f.fd);
    f.fd = -1;
    unlink(segment_path(f, f.segments.front().first_seq).c_str());
    f.segments.pop_front();
    deleted = true;
  }
  if (deleted) f.dir_needs_sync = true;
}

// Opens the reader on the segment holding `seq`.
bool reader_seek(TopicFiles& f, uint64_t seq, std::string& error) {
  f.close_reader();
  const LogSegment* seg = nullptr;
  for (const LogSegment& s : f.segments)
    if (s.first_seq <= seq) seg = &s;
  if (!seg && !f.segments.empty()) seg = &f.segments.front();
  if (!seg) return true;
  const std::string path = segment_path(f, seg->first_seq);
  f.reader_fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (f.reader_fd < 0) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  f.reader_segment = seg->first_seq;
  f.reader_offset = 0;
  f.reader_last_seq = seg->first_seq - 1;
  f.reader_next = seq;
  return true;
}

// Up to `max_events` records from `from` on, as far as they are written.
bool read_events(TopicFiles& f, uint64_t from, size_t max_events, std::vector<LoggedEvent>& out, std::string& error) {
  if (f.reader_segment == 0 || f.reader_next != from)
    if (!reader_seek(f, from, error)) return false;
  while (f.reader_segment != 0 && out.size() < max_events) {
    const std::string path = segment_path(f, f.reader_segment);
    if (!read_from(f.reader_fd, f.reader_bytes.size(), f.reader_bytes, error, path)) return false;
    if (f.reader_bytes.size() < kSegmentHeaderBytes) break;  // being made
    std::string_view body(f.reader_bytes);
    body.remove_prefix(kSegmentHeaderBytes);
    LogScanner scan(body, f.reader_offset, f.reader_last_seq);
    LogRecord r;
    bool at_end = false;
    while (out.size() < max_events) {
      LogScanner::Step step = scan.next(r);
      if (step == LogScanner::Step::Record) {
        if (r.seq >= from) out.push_back(LoggedEvent{r.seq, r.client, std::string(r.data), std::string(r.context)});
        continue;
      }
      // Bytes that are no record were found (and counted) by recovery: step over them. Incomplete
      // is such bytes too (a damaged length running past the end): this thread writes whole
      // batches and recovery cut off a torn tail. With no valid record after them it is the end of
      // what is written so far.
      if (step != LogScanner::Step::End && scan.resync()) continue;
      at_end = true;
      break;
    }
    f.reader_offset = scan.offset();
    f.reader_last_seq = scan.last_seq();
    f.reader_next = out.empty() ? from : out.back().seq + 1;
    if (!at_end) break;
    // The end of this segment: on to the next one, if there is one.
    uint64_t next = 0;
    for (const LogSegment& s : f.segments)
      if (s.first_seq > f.reader_segment) {
        next = s.first_seq;
        break;
      }
    if (next == 0) break;
    const uint64_t want = f.reader_next;
    if (!reader_seek(f, next, error)) return false;
    f.reader_next = want;
  }
  return true;
}

}  // namespace

void LogStore::thread_main() {
  std::vector<Job> work;
  const auto interval = std::chrono::milliseconds(opt_.fsync_interval_ms);
  for (;;) {
    bool stop = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!unsynced_.empty() && opt_.fsync == FsyncMode::Batch) {
        // In batch mode, with writes to sync, the thread sleeps until the sync is due and writes what
        // came meanwhile with it; only a read, a retry or stop() wakes it sooner (hand_over).
        waiting_for_sync_ = true;
        wake_.wait_until(lock, last_sync_ + interval, [this] { return urgent_ || stopping_; });
        waiting_for_sync_ = false;
      } else {
        wake_.wait(lock, [this] { return !jobs_.empty() || stopping_; });
      }
      urgent_ = false;
      work.swap(jobs_);
      stop = stopping_;
    }
    round(work, stop);
    work.clear();
    if (stop) break;
  }
}

bool LogStore::flush_now() {
  if (started_) return true;
  std::vector<Job> work;
  hand_over();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    work.swap(jobs_);
  }
  return round(work, true);
}

bool LogStore::round(std::vector<Job>& work, bool final) {
  std::vector<TopicFiles*> touched;
  auto touch = [](std::vector<TopicFiles*>& v, TopicFiles* f) {
    for (TopicFiles* g : v)
      if (g == f) return;
    v.push_back(f);
  };
  std::vector<std::pair<TopicFiles*, std::string>> errors;
  for (Job& j : work) {
    TopicFiles& f = *j.files;
    touch(touched, &f);
    if (j.retry && f.failed) {
      // Its next batch starts a new segment (the records it failed to write are a gap, which the
      // queue counted as lost when it learnt of the failure). That segment is made now: a disk still
      // full or read-only keeps the log failed (tried again later) instead of passing for working.
      if (f.fd >= 0) close(f.fd);
      f.fd = -1;
      f.roll = true;
      std::string error;
      if (make_dirs(f, opt_.queue_dir, error) &&
          active_segment(f, j.batch.empty() ? j.batch_end : j.batch_first, opt_, error)) {
        f.failed = false;
        f.last_error.clear();
        touch(unsynced_, &f);
      } else {
        errors.emplace_back(&f, error);
      }
    }
    if (!j.batch.empty() && !f.failed) {  // a failed log's later batches are dropped (counted by the queue)
      std::string error;
      if (!append_batch(f, j.batch, j.batch_first, j.batch_end, opt_, error)) {
        f.failed = true;
        errors.emplace_back(&f, error);
      }
      touch(unsynced_, &f);
    }
    if (j.cursor != f.cursor_wanted) {
      f.cursor_wanted = j.cursor;
      touch(unsynced_, &f);
    }
  }
  if (final)  // with fsync = off, files written in earlier rounds were never synced
    for (const auto& f : files_)
      if (f->needs_sync || f->cursor_wanted != f->cursor_written) touch(unsynced_, f.get());
  const Clock::time_point now = Clock::now();
  const bool due = final || opt_.fsync != FsyncMode::Batch ||
                   now - last_sync_ >= std::chrono::milliseconds(opt_.fsync_interval_ms);
  if (due && !unsynced_.empty()) {
    const bool sync = final || opt_.fsync != FsyncMode::Off;
    LogStoreStats timed;  // this round's fdatasync calls, added to stats_ at once
    for (TopicFiles* f : unsynced_) {
      std::string error;
      if (sync && f->needs_sync && f->fd >= 0) {
        const Clock::time_point before = Clock::now();
        const int rc = fdatasync(f->fd);
        const double took = std::chrono::duration<double>(Clock::now() - before).count();
        timed.syncs++;
        timed.sync_seconds += took;
        size_t b = 0;
        while (b < LogStoreStats::kSyncBuckets && took > LogStoreStats::kSyncBounds[b]) b++;
        timed.sync_buckets[b]++;
        if (rc != 0) {
          // What the kernel could not write back is gone from its cache too (fsyncgate): the
          // records since the last sync cannot be trusted, so the log counts as failed from there.
          errors.emplace_back(f, segment_path(*f, f->segments.back().first_seq) + ": " + std::strerror(errno));
          f->failed = true;
          f->written_end = f->synced_end;
        }
      }
      if (sync && f->dir_needs_sync && f->dir_made && sync_dir(f->dir, error)) f->dir_needs_sync = false;
      if (sync) f->needs_sync = false;
      if (!f->failed) f->synced_end = f->written_end;
      if (write_cursor(*f, sync, error)) delete_consumed(*f);
      else if (!error.empty()) errors.emplace_back(f, error);
      touch(touched, f);
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.syncs += timed.syncs;
      stats_.sync_seconds += timed.sync_seconds;
      for (size_t b = 0; b <= LogStoreStats::kSyncBuckets; b++) stats_.sync_buckets[b] += timed.sync_buckets[b];
    }
    unsynced_.clear();
    last_sync_ = Clock::now();
  }
  std::vector<Result> results;
  for (TopicFiles* f : touched) {
    const uint64_t oldest_end = f->segments.size() > 1 ? f->segments[1].first_seq : f->written_end;
    results.push_back(Result{f, f->written_end, f->synced_end, f->bytes(), oldest_end, f->failed});
  }
  for (Job& j : work) {
    if (j.read_events == 0) continue;
    for (Result& r : results) {
      if (r.files != j.files) continue;
      r.read_done = true;
      std::string error;
      if (!read_events(*j.files, j.read_from, j.read_events, r.events, error)) errors.emplace_back(j.files, error);
    }
  }
  for (auto& [f, error] : errors) {
    // Logged here, not by the hub: the last round at shutdown runs after the hub stops listening.
    // One line per new error of a topic (a directory that stays unwritable fails every round).
    if (error != f->last_error)
      LOG_ERROR("queue: topic \"%s\": its disk log failed: %s", log_safe(f->log->topic()).c_str(), error.c_str());
    f->last_error = error;
    for (Result& r : results)
      if (r.files == f) r.error = error;
  }
  if (!errors.empty()) {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.errors += errors.size();
  }
  if (!results.empty()) {
    auto shared = std::make_shared<std::vector<Result>>(std::move(results));
    post_([this, shared] { apply(*shared); });
  }
  return errors.empty();
}

}  // namespace mg
