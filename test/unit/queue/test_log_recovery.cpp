// Unit tests for recovery at start (queue/log_recovery.h) on logs built byte by byte in a temporary
// directory: consumed segments deleted and the cursor honoured (or its absence, or both slots bad),
// a torn tail cut at every byte of the last records (and a second pass finding nothing), a flipped
// byte anywhere in a record skipped and counted with every later record kept, garbage at the end
// of an older segment, an unknown format version leaving the whole log untouched, a directory whose
// making a crash cut short passed over, and repair = false reporting what a repair would do without
// changing a byte. Each case checks both what
// recover_topic_log reports and what is on disk afterwards.
#include "queue/log_recovery.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/log.h"
#include "queue/log_format.h"
#include "log_test_files.h"

namespace {

using mg_test::changed_files;
using mg_test::files_of;
using mg_test::read_file;
using mg_test::write_file;

// A segment of records first..first+count-1 (texts of varied lengths, some contexts empty), with
// where each record starts and ends in the file.
struct Segment {
  uint64_t first = 0;
  std::string bytes;
  std::vector<size_t> starts;  // file offsets, one per record, and the file's end last
  Segment(uint64_t first_seq, uint64_t count) : first(first_seq) {
    mg::append_segment_header(bytes, first);
    for (uint64_t seq = first; seq < first + count; seq++) {
      starts.push_back(bytes.size());
      const std::string data = "{\"n\":" + std::to_string(seq) + ",\"pad\":\"" + std::string(seq % 5, 'p') + "\"}";
      const std::string context = seq % 3 == 0 ? "" : "{\"user\":" + std::to_string(seq * 7) + "}";
      mg::append_record(bytes, seq, 500 + seq, data, context);
    }
    starts.push_back(bytes.size());
  }
  std::string name() const { return mg::segment_file_name(first); }
  size_t record_size(size_t k) const { return starts[k + 1] - starts[k]; }
};

// A topic directory "room%3A1" (topic "room:1") in a temporary directory.
class LogDir {
 public:
  LogDir() : dir_(tmp_.path() + "/room%3A1") {
    EXPECT_FALSE(tmp_.path().empty());
    EXPECT_EQ(mkdir(dir_.c_str(), 0700), 0);
    EXPECT_TRUE(write_file(dir_ + "/topic", "room:1"));
  }
  const std::string& dir() const { return dir_; }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  void put(const Segment& s) { EXPECT_TRUE(write_file(path(s.name()), s.bytes)); }
  void put(const Segment& s, const std::string& bytes) { EXPECT_TRUE(write_file(path(s.name()), bytes)); }
  // Slot `gen % 2` holds (gen, cursor), the other (gen - 1, older).
  void cursor(uint64_t gen, uint64_t cursor, uint64_t older) {
    char slots[mg::kCursorFileBytes];
    mg::encode_cursor_slot(slots + (gen % 2) * mg::kCursorSlotBytes, gen, cursor);
    mg::encode_cursor_slot(slots + ((gen + 1) % 2) * mg::kCursorSlotBytes, gen - 1, older);
    EXPECT_TRUE(write_file(path("cursor"), std::string(slots, sizeof slots)));
  }
  std::map<std::string, std::string> files() const { return files_of(dir_); }

 private:
  mg_test::TempDir tmp_;
  std::string dir_;
};

struct Expected {
  uint64_t cursor, next_seq, events, corrupt_records, corrupt_bytes, torn_bytes, deleted_segments;
  std::vector<std::pair<uint64_t, uint64_t>> segments;  // first_seq, bytes
};

void expect_recovered(const mg::RecoveredLog& r, const Expected& e) {
  EXPECT_EQ(r.topic, "room:1");
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.cursor, e.cursor);
  EXPECT_EQ(r.next_seq, e.next_seq);
  EXPECT_EQ(r.events, e.events);
  EXPECT_EQ(r.corrupt_records, e.corrupt_records);
  EXPECT_EQ(r.corrupt_bytes, e.corrupt_bytes);
  EXPECT_EQ(r.torn_bytes, e.torn_bytes);
  EXPECT_EQ(r.deleted_segments, e.deleted_segments);
  std::vector<std::pair<uint64_t, uint64_t>> segments;
  for (const mg::LogSegment& s : r.segments) segments.emplace_back(s.first_seq, s.bytes);
  EXPECT_EQ(segments, e.segments);
}

// Three clean segments: 1..10, 11..20, 21..30.
struct ThreeSegments {
  Segment a{1, 10}, b{11, 10}, c{21, 10};
  explicit ThreeSegments(LogDir& d) {
    d.put(a);
    d.put(b);
    d.put(c);
  }
};

// The cursor in the middle of a segment, at a segment's first record, past every record: the
// segments wholly below it are deleted, the others kept as they were, the events counted from it.
TEST(LogRecovery, TheCursorDeletesTheSegmentsBelowItAndTheEventsStartThere) {
  struct Case {
    uint64_t cursor, events;
    size_t deleted;
  };
  for (const Case c : {Case{15, 16, 1}, Case{10, 21, 0}, Case{11, 20, 1}, Case{21, 10, 2}, Case{31, 0, 2}}) {
    SCOPED_TRACE("cursor " + std::to_string(c.cursor));
    LogDir d;
    ThreeSegments s(d);
    d.cursor(6, c.cursor, c.cursor - 3);
    mg::RecoveredLog r;
    ASSERT_TRUE(mg::recover_topic_log(d.dir(), r));
    const Segment* all[] = {&s.a, &s.b, &s.c};
    Expected e{c.cursor, 31, c.events, 0, 0, 0, c.deleted, {}};
    for (size_t i = c.deleted; i < 3; i++) e.segments.emplace_back(all[i]->first, all[i]->bytes.size());
    expect_recovered(r, e);
    EXPECT_EQ(r.cursor_generation, 6u);
    auto files = d.files();
    EXPECT_EQ(files.size(), 2 + 3 - c.deleted);  // topic, cursor and the segments kept
    for (size_t i = 0; i < 3; i++) {
      if (i < c.deleted) EXPECT_EQ(files.count(all[i]->name()), 0u) << all[i]->name();
      else EXPECT_EQ(files[all[i]->name()], all[i]->bytes) << all[i]->name();
    }
  }
}

TEST(LogRecovery, WithoutACursorFileEverythingFromTheFirstRecord) {
  LogDir d;
  ThreeSegments s(d);
  mg::RecoveredLog r;
  ASSERT_TRUE(mg::recover_topic_log(d.dir(), r));
  expect_recovered(r, {1, 31, 30, 0, 0, 0, 0, {{1, s.a.bytes.size()}, {11, s.b.bytes.size()}, {21, s.c.bytes.size()}}});
  EXPECT_EQ(r.cursor_generation, 0u);
  EXPECT_EQ(d.files().size(), 4u);
}

TEST(LogRecovery, BothCursorSlotsCorruptDeliversFromTheOldestRecordAndSaysSo) {
  LogDir d;
  Segment b{11, 10}, c{21, 10};  // what consumed segments left: the oldest record is 11
  d.put(b);
  d.put(c);
  d.cursor(4, 25, 22);
  std::string cursor = read_file(d.path("cursor"));
  cursor[20] ^= 0x01;                           // slot 0's cursor
  cursor[mg::kCursorSlotBytes + 25] ^= 0x10;    // slot 1's crc
  ASSERT_TRUE(write_file(d.path("cursor"), cursor));
  const std::string log_path = d.dir() + "/../recovery.log";
  std::string error;
  ASSERT_TRUE(mg::log_open(log_path, error)) << error;
  mg::RecoveredLog r;
  const bool ok = mg::recover_topic_log(d.dir(), r);
  mg::log_open("", error);
  ASSERT_TRUE(ok);
  expect_recovered(r, {11, 31, 20, 0, 0, 0, 0, {{11, b.bytes.size()}, {21, c.bytes.size()}}});
  EXPECT_NE(read_file(log_path).find(d.dir() + "/cursor holds no valid cursor"), std::string::npos)
      << read_file(log_path);
  EXPECT_EQ(read_file(d.path("cursor")), cursor);
}

// The last segment cut at every byte from the start of its third-last record to one short of its
// end: every whole record before the cut is kept, the partial bytes are cut off, and a second
// recovery finds the file clean.
TEST(LogRecovery, ATornLastSegmentIsCutAfterItsLastWholeRecordAtEveryOffset) {
  LogDir d;
  Segment a{1, 10}, b{11, 10};
  const size_t k0 = b.starts.size() - 4;  // the third-last record
  for (size_t cut = b.starts[k0]; cut < b.bytes.size(); cut++) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    d.put(a);
    d.put(b, b.bytes.substr(0, cut));
    size_t whole = k0;  // records of b wholly before the cut
    while (b.starts[whole + 1] <= cut) whole++;
    const uint64_t keep = b.starts[whole];
    mg::RecoveredLog r;
    ASSERT_TRUE(mg::recover_topic_log(d.dir(), r));
    expect_recovered(r, {1, 11 + whole, 10 + whole, 0, 0, cut - keep, 0, {{1, a.bytes.size()}, {11, keep}}});
    EXPECT_EQ(read_file(d.path(b.name())), b.bytes.substr(0, keep));
    EXPECT_EQ(read_file(d.path(a.name())), a.bytes);
    mg::RecoveredLog again;
    ASSERT_TRUE(mg::recover_topic_log(d.dir(), again));
    expect_recovered(again, {1, 11 + whole, 10 + whole, 0, 0, 0, 0, {{1, a.bytes.size()}, {11, keep}}});
  }
}

// One byte of record 15 (in the middle of the segment 11..20) flipped, at every position of the
// record and with two masks: its length, its crc, its body. Only that record is lost.
void flip_every_byte_of_a_middle_record(bool last_segment) {
  LogDir d;
  Segment a{1, 10}, b{11, 10}, c{21, 10};
  const size_t k = 4;  // record 15
  for (const char mask : {'\x01', '\x80'}) {
    for (size_t at = b.starts[k]; at < b.starts[k + 1]; at++) {
      SCOPED_TRACE("byte " + std::to_string(at - b.starts[k]) + " of the record, mask " + std::to_string(mask & 0xff));
      std::string damaged = b.bytes;
      damaged[at] = static_cast<char>(damaged[at] ^ mask);
      d.put(a);
      d.put(b, damaged);
      Expected e{1, 21, 19, 1, b.record_size(k), 0, 0, {{1, a.bytes.size()}, {11, b.bytes.size()}}};
      if (last_segment) {
        unlink(d.path(c.name()).c_str());
      } else {
        d.put(c);
        e.next_seq = 31;
        e.events = 29;
        e.segments.emplace_back(21, c.bytes.size());
      }
      mg::RecoveredLog r;
      ASSERT_TRUE(mg::recover_topic_log(d.dir(), r));
      expect_recovered(r, e);
      EXPECT_EQ(read_file(d.path(b.name())), damaged);  // skipped, not cut
    }
  }
}

TEST(LogRecovery, AFlippedByteInARecordOfTheLastSegmentLosesThatRecordOnly) { flip_every_byte_of_a_middle_record(true); }

TEST(LogRecovery, AFlippedByteInARecordOfAnOlderSegmentLosesThatRecordOnly) {
  flip_every_byte_of_a_middle_record(false);
}

TEST(LogRecovery, AFlippedRecordBelowTheCursorIsNotCountedAsLost) {
  LogDir d;
  Segment b{11, 10};
  std::string damaged = b.bytes;
  damaged[b.starts[2] + 12] ^= 0x04;  // record 13
  d.put(b, damaged);
  d.cursor(2, 15, 11);
  mg::RecoveredLog r;
  ASSERT_TRUE(mg::recover_topic_log(d.dir(), r));
  expect_recovered(r, {15, 21, 6, 0, b.record_size(2), 0, 0, {{11, b.bytes.size()}}});
}

// The last three records of the older segment 1..10 overwritten with garbage (random bytes, or
// zeros): the segment is kept whole, the next segment's records all read, the three counted lost.
TEST(LogRecovery, GarbageAtTheEndOfAnOlderSegmentLosesItsRecordsAndKeepsTheNextSegment) {
  for (const bool zeros : {false, true}) {
    SCOPED_TRACE(zeros ? "zeros" : "random bytes");
    LogDir d;
    Segment a{1, 10}, b{11, 10};
    std::string damaged = a.bytes;
    std::mt19937 rng(20);
    const size_t from = a.starts[7];
    for (size_t i = from; i < damaged.size(); i++) damaged[i] = zeros ? '\0' : static_cast<char>(rng());
    d.put(a, damaged);
    d.put(b);
    mg::RecoveredLog r;
    ASSERT_TRUE(mg::recover_topic_log(d.dir(), r));
    expect_recovered(r, {1, 21, 17, 3, damaged.size() - from, 0, 0, {{1, a.bytes.size()}, {11, b.bytes.size()}}});
    EXPECT_EQ(read_file(d.path(a.name())), damaged);
    EXPECT_EQ(read_file(d.path(b.name())), b.bytes);
  }
}

// A segment of an unknown version (2), the middle one (with a consumed segment before it and a torn
// one after it) or the last one (with two consumed before it): recovery refuses the topic, names the
// file and the version, and changes nothing at all.
TEST(LogRecovery, AnUnknownSegmentVersionLeavesTheWholeLogUntouched) {
  for (const size_t bad : {1, 2}) {
    SCOPED_TRACE("version 2 in segment " + std::to_string(bad));
    LogDir d;
    ThreeSegments s(d);
    const Segment* all[] = {&s.a, &s.b, &s.c};
    std::string v2 = all[bad]->bytes;
    v2[4] = 2;
    d.put(*all[bad], v2);
    if (bad == 1) d.put(s.c, s.c.bytes.substr(0, s.c.bytes.size() - 3));
    d.cursor(6, bad == 1 ? 15 : 25, 12);
    const auto before = d.files();
    mg::RecoveredLog r;
    EXPECT_FALSE(mg::recover_topic_log(d.dir(), r));
    EXPECT_NE(r.error.find(d.path(all[bad]->name())), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("version 2"), std::string::npos) << r.error;
    EXPECT_EQ(changed_files(before, d.files()), "");
  }
}

// A node stopped between making a segment and writing its header (a crash, a power cut): the last
// segment is shorter than a header. It is a torn tail like any other (removed, its bytes counted),
// not a reason to refuse the topic's whole log.
TEST(LogRecovery, ALastSegmentCutInsideItsHeaderIsATornTail) {
  for (const size_t len : {0, 1, 15}) {
    SCOPED_TRACE("header of " + std::to_string(len) + " bytes");
    LogDir d;
    Segment a{1, 10};
    d.put(a);
    Segment b{11, 1};
    d.put(b, b.bytes.substr(0, len));
    mg::RecoveredLog r;
    ASSERT_TRUE(mg::recover_topic_log(d.dir(), r)) << r.error;
    expect_recovered(r, {1, 11, 10, 0, 0, len, 0, {{1, a.bytes.size()}}});
    EXPECT_EQ(d.files().count(b.name()), 0u) << "the cut segment is still there";
  }
}

// Everything a repair does at once (a consumed segment, a corrupt record, a torn tail): repair =
// false reports the same counts and leaves every byte as it was; a repair afterwards does it.
TEST(LogRecovery, WithoutRepairTheCountsAreTheSameAndNoFileChanges) {
  LogDir d;
  ThreeSegments s(d);
  std::string damaged = s.b.bytes;
  damaged[s.b.starts[6] + 9] ^= 0x20;  // record 17
  d.put(s.b, damaged);
  const size_t cut = s.c.starts[8] + 5;  // inside record 29
  d.put(s.c, s.c.bytes.substr(0, cut));
  d.cursor(6, 15, 12);
  const auto before = d.files();
  const Expected e{15, 29, 13, 1, s.b.record_size(6), cut - s.c.starts[8], 1,
                   {{11, s.b.bytes.size()}, {21, s.c.starts[8]}}};
  mg::RecoveredLog look;
  ASSERT_TRUE(mg::recover_topic_log(d.dir(), look, false));
  expect_recovered(look, e);
  EXPECT_EQ(changed_files(before, d.files()), "");
  mg::RecoveredLog r;
  ASSERT_TRUE(mg::recover_topic_log(d.dir(), r, true));
  expect_recovered(r, e);
  const auto after = d.files();
  EXPECT_EQ(after.count(s.a.name()), 0u);
  EXPECT_EQ(after.at(s.b.name()), damaged);
  EXPECT_EQ(after.at(s.c.name()), s.c.bytes.substr(0, s.c.starts[8]));
}

TEST(LogRecovery, RecoverLogsScansEveryTopicDirectoryAndReportsAnUnusableOne) {
  mg_test::TempDir tmp;
  const std::string q = tmp.path() + "/queue";
  ASSERT_EQ(mkdir(q.c_str(), 0700), 0);
  for (const char* name : {"a", "b"}) {
    const std::string dir = q + "/" + name;
    ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
    ASSERT_TRUE(write_file(dir + "/topic", std::string("topic ") + name));
    Segment seg{1, 5};
    if (name[0] == 'b') seg.bytes[4] = 9;
    ASSERT_TRUE(write_file(dir + "/" + seg.name(), seg.bytes));
  }
  ASSERT_TRUE(write_file(q + "/stray", "not a directory"));
  std::vector<mg::RecoveredLog> logs = mg::recover_logs(q);
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_EQ(logs[0].topic, "topic a");
  EXPECT_EQ(logs[0].error, "");
  EXPECT_EQ(logs[0].events, 5u);
  EXPECT_EQ(logs[1].topic, "topic b");
  EXPECT_NE(logs[1].error.find("version 9"), std::string::npos) << logs[1].error;
  EXPECT_TRUE(mg::recover_logs(tmp.path() + "/missing").empty());
}

// A crash during a topic's first write leaves its directory with topic.tmp at most: no log to
// recover, and not refused either (a refused one would keep the topic in memory for good). A
// directory with a segment but no `topic` file is still refused.
TEST(LogRecovery, RecoverLogsPassesOverADirectoryWhoseMakingWasCutShort) {
  mg_test::TempDir tmp;
  const std::string q = tmp.path() + "/queue";
  ASSERT_EQ(mkdir(q.c_str(), 0700), 0);
  for (const char* name : {"cut", "empty", "nameless"}) ASSERT_EQ(mkdir((q + "/" + name).c_str(), 0700), 0);
  ASSERT_TRUE(write_file(q + "/cut/topic.tmp", "cu"));
  Segment seg{1, 3};
  ASSERT_TRUE(write_file(q + "/nameless/" + seg.name(), seg.bytes));
  std::vector<mg::RecoveredLog> logs = mg::recover_logs(q);
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(logs[0].dir, q + "/nameless");
  EXPECT_NE(logs[0].error, "");
  EXPECT_EQ(files_of(q + "/cut").size(), 1u);  // left for make_dirs, which replaces topic.tmp
}

}  // namespace
