// The disk queue's store: every disk topic's log (docs/queue-log.md), written and read by one thread
// of its own so that no write, fsync or read ever stalls the hub loop or a worker.
//
// The hub side (TopicLog, hub thread only) numbers each event, encodes it into the topic's batch and
// keeps the cursor: the lowest sequence number not consumed. Once per hub loop turn (a uv_idle
// handle, started only when something changed) the store hands every changed topic's batch, cursor
// and read request to its thread in one locked swap.
//
// The store's thread appends each batch to the topic's active segment with one write, and makes it
// durable by the topic's fsync mode:
//   batch   one fdatasync per topic per round, at most every fsync_interval: a power cut loses at
//           most the events of the last interval (docs/queue-log.md gives the measured figure).
//           While the thread waits for its next sync, batches handed over are not a reason to wake
//           it: they are written with that sync (a read or a retry wakes it at once)
//   always  one fdatasync per round, without waiting (a round holds what came during the last one)
//   off     never; the kernel writes back when it likes (a crash of the process loses nothing, a
//           power cut up to the kernel's writeback interval)
// then writes the cursor (alternating slots, synced with the same round) and deletes segments that
// lie wholly below a durable cursor. A segment is rolled when it passes segment_bytes.
//
// Reads: a topic whose backlog passes its memory window keeps only the window in memory; the rest
// is read back from the log in order (read()), a chunk at a time, by the same thread.
//
// Results (what is written and synced, read events, errors) come back to the hub thread through
// `post`, in the order the thread produced them.
#pragma once

#include <uv.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/limits.h"
#include "queue/log_recovery.h"

namespace mg {


struct LogOptions {
  std::string queue_dir;  // <state_dir>/queue
  FsyncMode fsync = FsyncMode::Batch;
  uint32_t fsync_interval_ms = 5;
  uint64_t segment_bytes = 4ull << 20;
};

// What /metrics shows of the store (LogStore::stats): a snapshot.
struct LogStoreStats {
  // Upper bounds (seconds) of the fsync latency histogram's buckets; one more bucket is +Inf.
  static constexpr size_t kSyncBuckets = 12;
  static constexpr double kSyncBounds[kSyncBuckets] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                        0.01, 0.025, 0.05, 0.1, 0.25, 1};
  uint64_t syncs = 0;                            // fdatasync calls on segments
  double sync_seconds = 0;                       // the time they took
  uint64_t sync_buckets[kSyncBuckets + 1] = {};  // of those calls, by latency (not cumulative)
  uint64_t errors = 0;                           // failed writes, syncs, cursor writes and reads
  // What recover() found at start.
  uint64_t recovered_events = 0;   // not consumed: delivered again
  uint64_t corrupt_records = 0;    // lost to checksum failures, skipped
  uint64_t corrupt_bytes = 0;
  uint64_t torn_bytes = 0;         // cut off a last segment's tail
  uint64_t refused_dirs = 0;       // topic directories left alone (unreadable, unknown version)
};

// An event read back from a log.
struct LoggedEvent {
  uint64_t seq = 0;
  uint64_t client = 0;
  std::string data, context;
};

class LogStore;
struct TopicFiles;

// A topic's log, as the hub thread sees it.
class TopicLog {
 public:
  const std::string& topic() const { return topic_; }
  // Numbers the event and adds it to the batch handed over at the end of this loop turn.
  uint64_t append(uint64_t client, std::string_view data, std::string_view context);
  // The event `seq` left this node's hands (consumed, or dropped and counted): the cursor moves past
  // it once every event before it did too.
  void done(uint64_t seq);
  uint64_t next_seq() const { return next_seq_; }
  uint64_t cursor() const { return cursor_; }
  // Events at or above memory_end() are in the log only (not in the queue's memory), waiting to be
  // read back (LogStore::read); the queue moves it as they arrive.
  uint64_t memory_end() const { return memory_end_; }
  void set_memory_end(uint64_t seq) {
    memory_end_ = seq;
    if (skip_to_ && memory_end_ >= skip_from_) {  // the range lost to a failed write: nothing to read there
      memory_end_ = std::max(memory_end_, skip_to_);
      skip_from_ = skip_to_ = 0;
    }
  }
  // Events [from, to) are not in the log (a write failed): the reader passes over them.
  void skip(uint64_t from, uint64_t to) {
    skip_from_ = from;
    skip_to_ = to;
    set_memory_end(memory_end_);
  }
  bool spilled() const { return memory_end_ < next_seq_; }
  // Events in the log only, waiting to be read back.
  uint64_t log_only() const { return next_seq_ - memory_end_; }
  // Events below this were recovered at start: they are delivered again ("r").
  uint64_t recovered_end() const { return recovered_end_; }
  // Every event appended so far counts as recovered (events imported at start from the old spool,
  // before issue 20).
  void mark_recovered() { recovered_end_ = next_seq_; }
  // Events handed to the store's thread and written (in the page cache at least), and synced.
  uint64_t written_end() const { return written_end_; }
  uint64_t synced_end() const { return synced_end_; }
  uint64_t disk_bytes() const { return disk_bytes_; }
  // One past the last event of the oldest segment: dropping the events below it frees that segment.
  uint64_t oldest_end() const { return oldest_end_; }
  // A write or sync failed and the store has not written since (retry()).
  bool failed() const { return failed_; }
  // What failed last ("<path>: <reason>"), kept after a retry succeeds.
  const std::string& error() const { return error_; }
  bool reading() const { return reading_; }
  // Forgets the records not handed over yet (the log failed: they are counted lost instead), and
  // those handed over and not written.
  void drop_batch() {
    batch_.clear();
    in_flight_.clear();
    written_bytes_ = appended_bytes_;
  }
  // Bytes of records appended and not written yet (in the batch, or handed over to the store's
  // thread): memory that a disk slower than the clients would grow without end. The queue pauses a
  // topic's producers past a bound of it (QueueHub::log_push).
  uint64_t unwritten_bytes() const { return appended_bytes_ - written_bytes_; }
  // Events not consumed yet (in memory, given out or in the log only).
  uint64_t unconsumed() const { return next_seq_ - cursor_; }

 private:
  friend class LogStore;
  TopicLog(LogStore* store, std::string topic) : store_(store), topic_(std::move(topic)) {}
  void changed();

  LogStore* store_;
  std::string topic_;
  uint64_t next_seq_ = 1, cursor_ = 1, memory_end_ = 1, recovered_end_ = 1;
  uint64_t written_end_ = 1, synced_end_ = 1, disk_bytes_ = 0, oldest_end_ = 1;
  uint64_t skip_from_ = 0, skip_to_ = 0;
  bool failed_ = false;
  std::string error_;
  bool retry_ = false;  // a retry to hand over
  // done_[i]: whether cursor_ + i is consumed; covers [cursor_, next_seq_).
  std::deque<bool> done_;
  std::string batch_;  // records not handed over yet, from batch_first_
  uint64_t appended_bytes_ = 0, written_bytes_ = 0;  // record bytes appended, and written, so far
  // Batches handed over and not written yet: (one past the batch's last seq, appended_bytes_ at its end).
  std::deque<std::pair<uint64_t, uint64_t>> in_flight_;
  uint64_t batch_first_ = 1;
  uint64_t cursor_sent_ = 0;  // the cursor last handed over
  size_t read_events_ = 0;    // a read to hand over (events wanted), 0: none
  bool reading_ = false;
  bool dirty_ = false;
  TopicFiles* files_ = nullptr;  // the store thread's side
};

class LogStore {
 public:
  using Post = std::function<void(std::function<void()>)>;
  using OnRead = std::function<void(TopicLog&, std::vector<LoggedEvent>&)>;
  // A topic's log failed (failed() is true now: its later events were not written) or works again.
  using OnFailed = std::function<void(TopicLog&)>;

  // `post` runs a task on the hub thread (the hub's mailbox).
  LogStore(uv_loop_t* loop, Post post, LogOptions options);
  ~LogStore();
  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;

  // At start, before start(): scans every topic's log (log_recovery.h) and returns the logs that hold
  // events or state; each can be had with open(topic).
  std::vector<TopicLog*> recover();
  // The log of `topic`, made when missing (its directory is made by the thread with the first batch);
  // null when recovery refused its directory (left as it is for an operator: the topic runs in memory).
  TopicLog* open(const std::string& topic);
  // Every log open now (recovered, declared or made by an import).
  std::vector<TopicLog*> logs() const;
  // `on_read`: events read back for a topic (read()); `on_written`: what a topic has written or
  // synced moved; `on_failed`: a topic's log failed, or works again after a retry (logged here).
  void set_handlers(OnRead on_read, std::function<void(TopicLog&)> on_written, OnFailed on_failed);
  void start();
  // Before start(): writes and syncs what was appended, on the calling thread (events imported at
  // start, which must be durable before their old file goes). False when a write failed (logged).
  bool flush_now();
  // Asks for up to `max_events` of `log`'s events from memory_end() on. One read at a time per topic.
  void read(TopicLog& log, size_t max_events);
  // A failed log: try again (its next batch starts a new segment).
  void retry(TopicLog& log);
  // Bytes of every log's segments.
  uint64_t total_bytes() const { return total_bytes_; }
  // Hands over what is left, syncs it whatever the fsync mode, and joins the thread. It closes the
  // store's idle handle: the loop must turn once more before the store is destroyed.
  void stop();

  const LogOptions& options() const { return opt_; }
  // For /metrics (any thread).
  LogStoreStats stats() const;

 private:
  friend class TopicLog;
  struct Job;
  struct Result;
  void mark(TopicLog* log);
  void hand_over();
  void thread_main();
  // One round of the thread: writes `work`, syncs when due (always when `final`), reads, posts the
  // results. Returns whether every write succeeded.
  bool round(std::vector<Job>& work, bool final);
  void apply(std::vector<Result>& results);

  uv_loop_t* loop_;
  Post post_;
  LogOptions opt_;
  OnRead on_read_;
  std::function<void(TopicLog&)> on_written_;
  OnFailed on_failed_;
  std::vector<std::unique_ptr<TopicLog>> logs_;
  // Made by the hub thread (open); the store's thread reads the list only in its final round, while
  // stop() waits for it.
  std::vector<std::unique_ptr<TopicFiles>> files_;
  std::vector<TopicLog*> dirty_;
  std::vector<std::string> refused_;  // topic directories recovery could not use
  uint64_t total_bytes_ = 0;          // the sum of every log's disk_bytes_ (hub thread)
  uv_idle_t idle_{};  // runs hand_over at the next loop turn; active only while something changed
  bool idle_active_ = false;
  bool started_ = false;

  std::thread thread_;
  mutable std::mutex mutex_;  // guards jobs_, stopping_ and the counters
  std::condition_variable wake_;
  std::vector<Job> jobs_;
  bool stopping_ = false;
  bool waiting_for_sync_ = false;  // the thread sleeps until its next sync (fsync = batch): batches need no wake-up
  bool urgent_ = false;            // a read or a retry was handed over: the thread wakes for it
  // The thread's own (round): files written or with a moved cursor since the last sync, and when that was.
  std::vector<TopicFiles*> unsynced_;
  std::chrono::steady_clock::time_point last_sync_;
  LogStoreStats stats_;  // guarded by mutex_ (its recovery counts are the hub thread's, set before start)
};

}  // namespace mg
