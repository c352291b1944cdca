// Unit tests for the disk queue's store (queue/log_store.h), driven as the hub drives it: a real uv
// loop in the test thread, the store's results posted back through a Mailbox on that loop. Events
// written in many rounds (rolling segments) come back from a fresh store in order with their texts,
// in each fsync mode; consuming moves the cursor file and deletes the segments below it, out of
// order only once the gap closes; stop() writes what was never handed over; a recovered log goes on
// where it ended; a damaged record is skipped by the reader as recovery counted it; an unusable
// directory is reported and nothing breaks.
#include "queue/log_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "core/mailbox.h"
#include "log_test_files.h"
#include "queue/log_format.h"
#include "queue/log_recovery.h"

namespace {

using mg::FsyncMode;
using mg::LogOptions;
using mg::LoggedEvent;
using mg::TopicLog;

// The hub's side: a loop in this thread and the mailbox the store posts its results to.
class Loop {
 public:
  Loop() {
    uv_loop_init(&loop_);
    box_.open(&loop_);
  }
  ~Loop() {
    box_.close();
    for (int i = 0; i < 100 && uv_loop_close(&loop_) != 0; i++) uv_run(&loop_, UV_RUN_NOWAIT);
  }
  uv_loop_t* get() { return &loop_; }
  mg::LogStore::Post post() {
    return [this](std::function<void()> task) { box_.post(std::move(task)); };
  }
  // Loop turns until `done` holds (true) or `seconds` pass (false).
  bool run_until(const std::function<bool()>& done, double seconds = 30) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    for (;;) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      if (done()) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  void turn(int n = 1) {
    for (int i = 0; i < n; i++) uv_run(&loop_, UV_RUN_NOWAIT);
  }

 private:
  uv_loop_t loop_{};
  mg::Mailbox box_;
};

// A store with handlers that collect what it reports; read events move memory_end() as the queue
// moves it. Stopped (and its last results run) when it goes.
struct Store {
  Loop& loop;
  mg::LogStore store;
  std::vector<LoggedEvent> read;
  size_t empty_reads = 0;
  std::vector<std::string> errors;
  bool stopped = false;

  Store(Loop& l, const LogOptions& options) : loop(l), store(l.get(), l.post(), options) {
    store.set_handlers(
        [this](TopicLog& log, std::vector<LoggedEvent>& events) {
          if (events.empty()) empty_reads++;
          for (LoggedEvent& e : events) {
            if (e.seq < log.memory_end()) continue;
            log.set_memory_end(e.seq + 1);
            read.push_back(std::move(e));
          }
        },
        nullptr, [this](TopicLog& log) {
          if (log.failed()) errors.push_back(log.error());
        });
  }
  ~Store() { stop(); }
  void stop() {
    if (stopped) return;
    store.stop();
    stopped = true;
    loop.turn(3);  // the results posted by the last round, and the idle handle's close
  }
  TopicLog* recover_one() {
    std::vector<TopicLog*> logs = store.recover();
    EXPECT_EQ(logs.size(), 1u);
    return logs.empty() ? nullptr : logs[0];
  }
  // Appends events first..first+n-1 (texts by ev()), `per_round` to a loop turn.
  void append(TopicLog* log, uint64_t first, uint64_t n, uint64_t per_round);
  bool written(TopicLog* log) {
    return loop.run_until([log] { return log->written_end() == log->next_seq(); });
  }
  // Starts the store and writes events 1..n to "room:1", `per_round` to a loop turn; null when they
  // were not all written in time.
  TopicLog* start_with(uint64_t n, uint64_t per_round) {
    store.start();
    TopicLog* log = store.open("room:1");
    append(log, 1, n, per_round);
    return written(log) ? log : nullptr;
  }
  // Reads the log back from memory_end() in chunks of `chunk`, as the queue does, until it ends
  // or a read brings nothing.
  void read_back(TopicLog* log, size_t chunk) {
    while (log->memory_end() < log->next_seq()) {
      const size_t empty_before = empty_reads;
      store.read(*log, chunk);
      ASSERT_TRUE(loop.run_until([log] { return !log->reading(); })) << "a read never came back";
      if (empty_reads != empty_before) return;
    }
  }
};

// The texts of event `seq`: varied lengths, some contexts empty.
LoggedEvent ev(uint64_t seq) {
  LoggedEvent e;
  e.seq = seq;
  e.client = 100 + seq % 13;
  e.data = "{\"i\":" + std::to_string(seq) + ",\"pad\":\"" + std::string(seq % 11, 'x') + "\"}";
  e.context = seq % 4 == 0 ? "" : "{\"user\":" + std::to_string(seq * 3) + "}";
  return e;
}

void Store::append(TopicLog* log, uint64_t first, uint64_t n, uint64_t per_round) {
  for (uint64_t seq = first; seq < first + n; seq++) {
    const LoggedEvent e = ev(seq);
    EXPECT_EQ(log->append(e.client, e.data, e.context), seq);
    if ((seq - first + 1) % per_round == 0) loop.turn();
  }
}

// `events` are exactly ev(from)..ev(to - 1), in order (one failure at most, naming the first wrong).
void expect_events(const std::vector<LoggedEvent>& events, uint64_t from, uint64_t to,
                   const std::vector<uint64_t>& missing = {}) {
  std::vector<uint64_t> want;
  for (uint64_t seq = from; seq < to; seq++)
    if (std::find(missing.begin(), missing.end(), seq) == missing.end()) want.push_back(seq);
  ASSERT_EQ(events.size(), want.size());
  for (size_t i = 0; i < want.size(); i++) {
    const LoggedEvent e = ev(want[i]);
    const LoggedEvent& got = events[i];
    if (got.seq != e.seq || got.client != e.client || got.data != e.data || got.context != e.context) {
      ADD_FAILURE() << "event " << i << ": seq " << got.seq << " (want " << e.seq << "), client " << got.client
                    << ", data " << got.data << ", context " << got.context;
      return;
    }
  }
}

// The first sequence numbers of the segments in `dir`, in order.
std::vector<uint64_t> segments_in(const std::string& dir) {
  std::vector<uint64_t> out;
  for (const auto& [name, bytes] : mg_test::files_of(dir)) {
    uint64_t first = 0;
    if (mg::parse_segment_file_name(name, first)) out.push_back(first);
  }
  return out;
}

// The cursor in `dir`'s cursor file, 0 when there is none.
uint64_t cursor_in(const std::string& dir) {
  uint64_t generation = 0, cursor = 0;
  if (!mg::decode_cursor_file(mg_test::read_file(dir + "/cursor"), generation, cursor)) return 0;
  return cursor;
}

// Loop turns until the cursor file holds `cursor` and `segments` segments are left.
testing::AssertionResult cursor_file_reaches(Loop& loop, const std::string& dir, uint64_t cursor, size_t segments) {
  if (loop.run_until([&] { return cursor_in(dir) == cursor && segments_in(dir).size() == segments; }))
    return testing::AssertionSuccess();
  return testing::AssertionFailure() << "cursor file " << cursor_in(dir) << ", " << segments_in(dir).size()
                                     << " segments";
}

struct Fixture {
  mg_test::TempDir tmp;
  LogOptions options;
  std::string dir;  // the topic's
  Loop loop;
  explicit Fixture(FsyncMode fsync = FsyncMode::Batch, uint64_t segment_bytes = 64 << 10) {
    options.queue_dir = tmp.path() + "/queue";
    options.fsync = fsync;
    options.segment_bytes = segment_bytes;
    dir = options.queue_dir + "/room%3A1";
  }
};

// Events 1..n written to "room:1" in rounds of `per_round` by a store stopped afterwards; the
// segments it left.
std::vector<uint64_t> write_and_stop(Fixture& f, uint64_t n, uint64_t per_round) {
  {
    Store s(f.loop, f.options);
    TopicLog* log = s.start_with(n, per_round);
    EXPECT_NE(log, nullptr);
    EXPECT_EQ(log ? log->written_end() : 0, n + 1);
  }
  return segments_in(f.dir);
}

// `n` events written in rounds of 100 and the store stopped; a fresh store recovers them all and
// reads them back in chunks.
void round_trip(FsyncMode fsync, uint64_t n) {
  Fixture f(fsync);
  EXPECT_GT(write_and_stop(f, n, 100).size(), 2u) << "the segments did not roll";
  Store s(f.loop, f.options);
  TopicLog* log = s.recover_one();
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->topic(), "room:1");
  EXPECT_EQ(log->cursor(), 1u);
  EXPECT_EQ(log->memory_end(), 1u);
  EXPECT_EQ(log->next_seq(), n + 1);
  EXPECT_EQ(log->recovered_end(), n + 1);
  s.store.start();
  s.read_back(log, 700);
  expect_events(s.read, 1, n + 1);
  const mg::LogStoreStats st = s.store.stats();
  EXPECT_EQ(st.recovered_events, n);
  EXPECT_EQ(st.corrupt_records, 0u);
  EXPECT_EQ(st.torn_bytes, 0u);
}

// Every fdatasync is counted once in the latency histogram (/metrics meshgate_queue_fsync_seconds).
TEST(LogStore, EachFdatasyncIsTimedIntoOneHistogramBucket) {
  Fixture f(FsyncMode::Always);
  Store s(f.loop, f.options);
  TopicLog* log = s.start_with(500, 50);
  ASSERT_NE(log, nullptr);
  const mg::LogStoreStats st = s.store.stats();
  EXPECT_GE(st.syncs, 1u);
  uint64_t in_buckets = 0;
  for (uint64_t b : st.sync_buckets) in_buckets += b;
  EXPECT_EQ(in_buckets, st.syncs);
  EXPECT_GT(st.sync_seconds, 0.0);
  EXPECT_EQ(st.errors, 0u);
}

TEST(LogStore, TenThousandEventsComeBackFromAFreshStoreInOrder) { round_trip(FsyncMode::Batch, 10000); }
TEST(LogStore, FsyncAlwaysRoundTrips) { round_trip(FsyncMode::Always, 3000); }
TEST(LogStore, FsyncOffRoundTrips) { round_trip(FsyncMode::Off, 3000); }

// A log with nothing left to deliver keeps no segment, the active one included: the cursor file keeps
// the numbering.
TEST(LogStore, ConsumingEveryEventInOrderMovesTheCursorFileAndDeletesEverySegment) {
  Fixture f(FsyncMode::Batch, 4 << 10);
  Store s(f.loop, f.options);
  TopicLog* log = s.start_with(1000, 50);
  ASSERT_NE(log, nullptr);
  const std::vector<uint64_t> before = segments_in(f.dir);
  ASSERT_GT(before.size(), 3u);
  for (uint64_t seq = 1; seq <= 1000; seq++) {
    log->done(seq);
    if (seq % 100 == 0) f.loop.turn();
  }
  EXPECT_EQ(log->cursor(), 1001u);
  EXPECT_EQ(log->unconsumed(), 0u);
  EXPECT_TRUE(cursor_file_reaches(f.loop, f.dir, 1001, 0));
}

TEST(LogStore, OutOfOrderTheCursorMovesOnlyWhenTheGapCloses) {
  Fixture f(FsyncMode::Batch, 1 << 10);
  Store s(f.loop, f.options);
  TopicLog* log = s.start_with(200, 20);
  ASSERT_NE(log, nullptr);
  const size_t segments = segments_in(f.dir).size();
  for (uint64_t seq = 2; seq <= 200; seq += 2) log->done(seq);
  EXPECT_EQ(log->cursor(), 1u);
  EXPECT_TRUE(f.loop.run_until([&] { return cursor_in(f.dir) == 1; }));
  f.loop.run_until([] { return false; }, 0.05);
  EXPECT_EQ(cursor_in(f.dir), 1u);
  EXPECT_EQ(segments_in(f.dir).size(), segments);
  log->done(1);
  EXPECT_EQ(log->cursor(), 3u);
  EXPECT_TRUE(f.loop.run_until([&] { return cursor_in(f.dir) == 3; })) << cursor_in(f.dir);
  for (uint64_t seq = 199; seq >= 5; seq -= 2) log->done(seq);  // the gaps close from the top down
  EXPECT_EQ(log->cursor(), 3u);
  log->done(3);
  EXPECT_EQ(log->cursor(), 201u);
  EXPECT_TRUE(cursor_file_reaches(f.loop, f.dir, 201, 0));
}

// Half consumed, the store stopped: a fresh one starts at the cursor and reads only the rest; an
// event appended to the recovered log goes on from where it ended and comes back too.
TEST(LogStore, ARecoveredLogStartsAtItsCursorAndGoesOnWhereItEnded) {
  Fixture f(FsyncMode::Batch, 4 << 10);
  {
    Store s(f.loop, f.options);
    TopicLog* log = s.start_with(1000, 50);
    ASSERT_NE(log, nullptr);
    for (uint64_t seq = 1; seq <= 500; seq++) log->done(seq);
    EXPECT_TRUE(f.loop.run_until([&] { return cursor_in(f.dir) == 501; }));
  }
  {
    Store s(f.loop, f.options);
    TopicLog* log = s.recover_one();
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->cursor(), 501u);
    EXPECT_EQ(log->next_seq(), 1001u);
    EXPECT_LE(segments_in(f.dir).front(), 501u);
    EXPECT_GT(segments_in(f.dir).front(), 1u) << "the consumed segments are still there";
    s.store.start();
    s.append(log, 1001, 100, 10);
    ASSERT_TRUE(s.written(log));
    s.read_back(log, 64);
    expect_events(s.read, 501, 1101);
  }
  Store s(f.loop, f.options);
  TopicLog* log = s.recover_one();
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->cursor(), 501u);
  EXPECT_EQ(log->next_seq(), 1101u);
}

TEST(LogStore, StopWritesWhatWasNeverHandedOver) {
  Fixture f;
  {
    Store s(f.loop, f.options);
    TopicLog* log = s.start_with(30, 10);
    ASSERT_NE(log, nullptr);
    s.append(log, 31, 50, 1000);  // no loop turn: still in the hub's batch
    EXPECT_EQ(log->written_end(), 31u);
    s.stop();
    EXPECT_EQ(log->written_end(), 81u);
  }
  mg::RecoveredLog r;
  ASSERT_TRUE(mg::recover_topic_log(f.dir, r));
  EXPECT_EQ(r.events, 80u);
  EXPECT_EQ(r.next_seq, 81u);
  EXPECT_EQ(r.torn_bytes, 0u);
}

// A record of an older segment damaged after it was written, in its length (now claiming more bytes
// than the segment holds) or in its body: recovery counts one record lost, and the reader skips that
// one only, in an older segment and in the last.
TEST(LogStore, TheReaderSkipsADamagedRecordAsRecoveryCountedIt) {
  for (const bool last : {false, true}) {
    for (const int where : {2, 20}) {  // a byte of the length field; one of the body
      SCOPED_TRACE(std::string(last ? "last" : "older") + " segment, byte " + std::to_string(where));
      Fixture f(FsyncMode::Off, 4 << 10);
      const std::vector<uint64_t> segs = write_and_stop(f, 300, 10);
      ASSERT_GT(segs.size(), 2u);
      const uint64_t first = last ? segs.back() : segs[1];
      const uint64_t victim = first + 3;
      const std::string path = f.dir + "/" + mg::segment_file_name(first);
      std::string bytes = mg_test::read_file(path);
      size_t at = mg::kSegmentHeaderBytes;
      for (uint64_t seq = first; seq < victim; seq++) {
        const LoggedEvent e = ev(seq);
        at += mg::record_bytes(e.data.size(), e.context.size());
      }
      bytes[at + static_cast<size_t>(where)] ^= 0x01;
      ASSERT_TRUE(mg_test::write_file(path, bytes));
      Store s(f.loop, f.options);
      TopicLog* log = s.recover_one();
      ASSERT_NE(log, nullptr);
      EXPECT_EQ(log->next_seq(), 301u);
      EXPECT_EQ(s.store.stats().corrupt_records, 1u);
      s.store.start();
      s.read_back(log, 100);
      expect_events(s.read, 1, 301, {victim});
    }
  }
}

// A log recovery refused (here a segment of a newer format) is left as it is for an operator or a
// newer binary: the store never writes into its directory (no new segment, no cursor, no topic file),
// and open() says so with null, so its topic keeps its events in memory.
TEST(LogStore, ALogRecoveryRefusedIsNeverWrittenInto) {
  Fixture f;
  write_and_stop(f, 20, 10);
  const std::string seg = f.dir + "/" + mg::segment_file_name(1);
  std::string bytes = mg_test::read_file(seg);
  bytes[4] = 2;  // version 2
  ASSERT_TRUE(mg_test::write_file(seg, bytes));
  const auto before = mg_test::files_of(f.dir);
  Store s(f.loop, f.options);
  EXPECT_TRUE(s.store.recover().empty());
  s.store.start();
  EXPECT_EQ(s.store.open("room:1"), nullptr);
  EXPECT_NE(s.store.open("room:2"), nullptr) << "other topics are not affected";
  s.stop();
  EXPECT_EQ(mg_test::changed_files(before, mg_test::files_of(f.dir)), "");
}

// The queue directory under a regular file: mkdir fails with ENOTDIR (as root too). The log is
// failed, the error names the path and is counted once, nothing counts as written (the queue counts
// those events lost), later batches are dropped quietly and a read comes back empty.
TEST(LogStore, AnUnusableDirectoryIsReportedAndNothingBreaks) {
  Fixture f;
  ASSERT_TRUE(mg_test::write_file(f.tmp.path() + "/file", "x"));
  f.options.queue_dir = f.tmp.path() + "/file/queue";
  Store s(f.loop, f.options);
  s.store.start();
  TopicLog* log = s.store.open("room:1");
  s.append(log, 1, 10, 10);
  ASSERT_TRUE(f.loop.run_until([&] { return !s.errors.empty(); }));
  EXPECT_NE(s.errors[0].find(f.options.queue_dir), std::string::npos) << s.errors[0];
  EXPECT_NE(s.errors[0].find("Not a directory"), std::string::npos) << s.errors[0];
  EXPECT_EQ(s.store.stats().errors, 1u);
  EXPECT_TRUE(log->failed());
  EXPECT_EQ(log->written_end(), 1u);
  s.append(log, 11, 10, 5);
  f.loop.run_until([] { return false; }, 0.05);
  EXPECT_EQ(log->written_end(), 1u);
  log->done(1);
  s.store.read(*log, 10);
  EXPECT_TRUE(f.loop.run_until([&] { return !log->reading(); }));
  EXPECT_TRUE(s.read.empty());
  s.stop();
  EXPECT_EQ(s.store.stats().errors, 1u);
  EXPECT_EQ(s.errors.size(), 1u);
}

// A retry makes the log's new segment at once: while the directory is still unusable the log stays
// failed (counted, not reported again); once it is usable the retry clears the failure and the next
// events go to a segment named by the first of them.
TEST(LogStore, ARetryStaysFailedUntilItsNewSegmentCanBeMade) {
  Fixture f;
  const std::string file = f.tmp.path() + "/file";
  ASSERT_TRUE(mg_test::write_file(file, "x"));
  f.options.queue_dir = file + "/queue";
  Store s(f.loop, f.options);
  s.store.start();
  TopicLog* log = s.store.open("room:1");
  s.append(log, 1, 10, 10);
  ASSERT_TRUE(f.loop.run_until([&] { return !s.errors.empty(); }));
  s.store.retry(*log);
  ASSERT_TRUE(f.loop.run_until([&] { return s.store.stats().errors == 2; }));
  f.loop.run_until([] { return false; }, 0.05);
  EXPECT_TRUE(log->failed());
  EXPECT_EQ(s.errors.size(), 1u);

  ASSERT_EQ(unlink(file.c_str()), 0);
  ASSERT_EQ(mkdir(file.c_str(), 0700), 0);
  s.store.retry(*log);
  ASSERT_TRUE(f.loop.run_until([&] { return !log->failed(); }));
  s.append(log, 11, 10, 10);
  ASSERT_TRUE(s.written(log));
  EXPECT_EQ(access((f.options.queue_dir + "/room%3A1/" + mg::segment_file_name(11)).c_str(), F_OK), 0);
  s.stop();
  EXPECT_EQ(s.store.stats().errors, 2u);
}

}  // namespace
