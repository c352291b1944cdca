// Unit tests for the disk queue's on-disk format (queue/log_format.h): CRC-32C against published
// values and in both of its paths, records and segment headers round trip, file and directory names,
// the cursor file's two slots (a torn or flipped slot leaves the other), and the scanner recovery
// relies on: a log cut anywhere reads as the records before the cut and then Incomplete, a damaged
// record is skipped to the next good one, damage in the last record reads as a torn tail.
#include "queue/log_format.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/hrw.h"

namespace {

using mg::LogRecord;
using mg::LogScanner;
using Step = mg::LogScanner::Step;

struct Written {
  uint64_t seq, client;
  std::string data, context;
  size_t offset;  // where its bytes start in the log
};

// A log of `n` records with seq 1..n and texts of varied lengths (some contexts empty).
struct Log {
  std::string bytes;
  std::vector<Written> records;
  explicit Log(int n) {
    for (int i = 1; i <= n; i++) {
      std::string data = "{\"n\":" + std::to_string(i) + ",\"pad\":\"" + std::string(static_cast<size_t>(i % 7), 'x') + "\"}";
      std::string context = i % 3 == 0 ? "" : "{\"user\":" + std::to_string(i * 11) + "}";
      add(static_cast<uint64_t>(i), 1000 + static_cast<uint64_t>(i), data, context);
    }
  }
  void add(uint64_t seq, uint64_t client, const std::string& data, const std::string& context) {
    records.push_back({seq, client, data, context, bytes.size()});
    mg::append_record(bytes, seq, client, data, context);
  }
  size_t end_of(size_t k) const { return k + 1 < records.size() ? records[k + 1].offset : bytes.size(); }
};

void expect_record(const LogRecord& r, const Written& w) {
  EXPECT_EQ(r.seq, w.seq);
  EXPECT_EQ(r.client, w.client);
  EXPECT_EQ(r.data, w.data);
  EXPECT_EQ(r.context, w.context);
}

// Reads the way recovery does: records until a step that is not one; on Incomplete or Invalid,
// resync() and go on, or stop where it cannot.
struct Recovered {
  std::vector<LogRecord> records;
  std::vector<Step> damage;  // the non-record steps met before each resync, in order
  size_t stop = 0;           // offset() at the end
  uint64_t skipped = 0;
};
Recovered recover(std::string_view bytes) {
  Recovered out;
  LogScanner scan(bytes);
  for (;;) {
    LogRecord r;
    const Step step = scan.next(r);
    if (step == Step::Record) {
      out.records.push_back(r);
      continue;
    }
    if (step == Step::End) break;
    out.damage.push_back(step);
    if (!scan.resync()) break;
  }
  out.stop = scan.offset();
  out.skipped = scan.skipped_bytes();
  return out;
}

// ---- CRC-32C ----

TEST(Crc32c, MatchesThePublishedCheckValues) {
  const std::string digits = "123456789";
  const std::string zeros(32, '\0');
  EXPECT_EQ(mg::crc32c(digits.data(), digits.size()), 0xE3069283u);
  EXPECT_EQ(mg::crc32c_portable(digits.data(), digits.size()), 0xE3069283u);
  EXPECT_EQ(mg::crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  EXPECT_EQ(mg::crc32c_portable(zeros.data(), zeros.size()), 0x8A9136AAu);
  EXPECT_EQ(mg::crc32c(nullptr, 0), 0u);
}

TEST(Crc32c, ContinuingFromAPartGivesTheCrcOfTheWhole) {
  const std::string text = "The quick brown fox jumps over the lazy dog, twice over: the quick brown fox.";
  for (size_t cut = 0; cut <= text.size(); cut++) {
    EXPECT_EQ(mg::crc32c(text.data() + cut, text.size() - cut, mg::crc32c(text.data(), cut)),
              mg::crc32c(text.data(), text.size()));
    EXPECT_EQ(mg::crc32c_portable(text.data() + cut, text.size() - cut, mg::crc32c_portable(text.data(), cut)),
              mg::crc32c_portable(text.data(), text.size()));
  }
}

TEST(Crc32c, HardwareAndSoftwareAgreeOnEveryLengthAndAlignment) {
  std::mt19937_64 rng(20);
  std::vector<unsigned char> buf(300 + 16);
  for (auto& b : buf) b = static_cast<unsigned char>(rng());
  for (size_t len = 0; len <= 300; len++) {
    for (int round = 0; round < 4; round++) {
      const size_t align = rng() % 16;
      const auto start = static_cast<uint32_t>(rng());
      ASSERT_EQ(mg::crc32c(buf.data() + align, len, start), mg::crc32c_portable(buf.data() + align, len, start))
          << "length " << len << ", alignment " << align;
    }
  }
}

// ---- records and segment headers ----

TEST(LogRecord, RecordsRoundTripWithEmptyLargeAndBinaryTexts) {
  std::string binary;
  for (int i = 0; i < 256; i++) binary.push_back(static_cast<char>(i));
  const std::string large(1 << 20, 'L');
  Log log(0);
  log.add(1, 0, "", "");
  log.add(2, UINT64_MAX, "{\"d\":1}", "");
  log.add(3, 7, "", "{\"x\":2}");
  log.add(4, 8, binary, binary + binary);
  log.add(5, 9, large, large.substr(1000));
  log.add(UINT64_MAX, 10, "last", "ctx");
  size_t total = 0;
  for (const Written& w : log.records) total += mg::record_bytes(w.data.size(), w.context.size());
  EXPECT_EQ(log.bytes.size(), total);

  LogScanner scan(log.bytes);
  for (const Written& w : log.records) {
    LogRecord r;
    ASSERT_EQ(scan.next(r), Step::Record);
    expect_record(r, w);
  }
  LogRecord r;
  EXPECT_EQ(scan.next(r), Step::End);
  EXPECT_EQ(scan.offset(), log.bytes.size());
  EXPECT_EQ(scan.last_seq(), UINT64_MAX);
}

TEST(SegmentHeader, RoundTripsTheFirstSequenceNumber) {
  for (uint64_t first : {uint64_t{1}, uint64_t{123456789}, UINT64_MAX}) {
    std::string bytes;
    mg::append_segment_header(bytes, first);
    ASSERT_EQ(bytes.size(), mg::kSegmentHeaderBytes);
    EXPECT_EQ(bytes.substr(0, 5), std::string("MGQL\x01", 5));
    uint64_t got = 0;
    std::string error;
    EXPECT_TRUE(mg::parse_segment_header(bytes + "records follow", got, error)) << error;
    EXPECT_EQ(got, first);
  }
}

TEST(SegmentHeader, RefusesShortBytesOtherFilesAndOtherVersionsSayingWhich) {
  std::string good;
  mg::append_segment_header(good, 42);
  uint64_t first = 0;
  std::string error;
  EXPECT_FALSE(mg::parse_segment_header(good.substr(0, 15), first, error));
  EXPECT_NE(error.find("short"), std::string::npos) << error;
  EXPECT_FALSE(mg::parse_segment_header("", first, error));
  EXPECT_NE(error.find("short"), std::string::npos) << error;

  std::string other = good;
  other[3] = 'X';
  EXPECT_FALSE(mg::parse_segment_header(other, first, error));
  EXPECT_NE(error.find("not a segment"), std::string::npos) << error;

  std::string v2 = good;
  v2[4] = 2;
  EXPECT_FALSE(mg::parse_segment_header(v2, first, error));
  EXPECT_NE(error.find("version 2"), std::string::npos) << error;
  EXPECT_EQ(first, 0u);
}

// ---- names ----

TEST(SegmentFileName, IsTwentyDigitsAndParsesBack) {
  EXPECT_EQ(mg::segment_file_name(1), "00000000000000000001.seg");
  EXPECT_EQ(mg::segment_file_name(UINT64_MAX), "18446744073709551615.seg");
  for (uint64_t first : {uint64_t{0}, uint64_t{1}, uint64_t{1234567890123}, UINT64_MAX}) {
    uint64_t got = 7;
    ASSERT_TRUE(mg::parse_segment_file_name(mg::segment_file_name(first), got));
    EXPECT_EQ(got, first);
  }
}

TEST(SegmentFileName, AnyOtherNameIsNotASegment) {
  uint64_t got = 7;
  for (const char* name : {"1.seg", "0000000000000000001.seg", "000000000000000000001.seg",
                           "0000000000000000000a.seg", "-0000000000000000001.seg", "00000000000000000001.log",
                           "00000000000000000001.seg.tmp", "00000000000000000001", "99999999999999999999.seg",
                           "18446744073709551616.seg", "", "cursor", "topic"}) {
    EXPECT_FALSE(mg::parse_segment_file_name(name, got)) << name;
  }
  EXPECT_EQ(got, 7u);
}

TEST(TopicDirName, PlainNamesStayAndEverythingElseIsPercentEncoded) {
  EXPECT_EQ(mg::topic_dir_name("client"), "client");
  EXPECT_EQ(mg::topic_dir_name("Room_42-b"), "Room_42-b");
  EXPECT_EQ(mg::topic_dir_name("."), "%2E");
  EXPECT_EQ(mg::topic_dir_name(".."), "%2E%2E");
  EXPECT_EQ(mg::topic_dir_name("a/b"), "a%2Fb");
  EXPECT_EQ(mg::topic_dir_name("room:1 %"), "room%3A1%20%25");
  EXPECT_EQ(mg::topic_dir_name("caf\xc3\xa9"), "caf%C3%A9");
  EXPECT_EQ(mg::topic_dir_name(std::string("a\0b", 3)), "a%00b");
  EXPECT_NE(mg::topic_dir_name("A"), mg::topic_dir_name("a"));
}

TEST(TopicDirName, NamesThatWouldPass200BytesAreHashed) {
  const std::string fits(200, 'a');
  EXPECT_EQ(mg::topic_dir_name(fits), fits);
  const std::string encoded_fits = std::string(197, 'a') + "/";  // 197 + 3 = 200
  EXPECT_EQ(mg::topic_dir_name(encoded_fits), std::string(197, 'a') + "%2F");

  const std::string long_name(300, 'a');
  const std::string dir = mg::topic_dir_name(long_name);
  char expected[24];
  std::snprintf(expected, sizeof expected, "h-%016llx", static_cast<unsigned long long>(mg::stable_hash(long_name)));
  EXPECT_EQ(dir, expected);
  EXPECT_EQ(dir.size(), 18u);
  EXPECT_EQ(dir.find_first_not_of("h-0123456789abcdef"), std::string::npos);

  EXPECT_EQ(mg::topic_dir_name(std::string(201, 'a')).substr(0, 2), "h-");
  EXPECT_EQ(mg::topic_dir_name(std::string(198, 'a') + "/").substr(0, 2), "h-");  // 201 once encoded
  EXPECT_NE(mg::topic_dir_name(std::string(300, 'b')), dir);
}

// ---- cursor ----

std::string cursor_file(uint64_t gen0, uint64_t cursor0, uint64_t gen1, uint64_t cursor1) {
  std::string bytes(mg::kCursorFileBytes, '\0');
  mg::encode_cursor_slot(bytes.data(), gen0, cursor0);
  mg::encode_cursor_slot(bytes.data() + mg::kCursorSlotBytes, gen1, cursor1);
  return bytes;
}

TEST(CursorFile, TheValidSlotWithTheHigherGenerationHoldsTheCursor) {
  uint64_t gen = 0, cursor = 0;
  ASSERT_TRUE(mg::decode_cursor_file(cursor_file(4, 100, 5, 120), gen, cursor));
  EXPECT_EQ(gen, 5u);
  EXPECT_EQ(cursor, 120u);
  ASSERT_TRUE(mg::decode_cursor_file(cursor_file(7, 140, 6, 130), gen, cursor));
  EXPECT_EQ(gen, 7u);
  EXPECT_EQ(cursor, 140u);

  char slot[mg::kCursorSlotBytes];
  mg::encode_cursor_slot(slot, UINT64_MAX, 1);
  ASSERT_TRUE(mg::decode_cursor_slot(slot, gen, cursor));
  EXPECT_EQ(gen, UINT64_MAX);
  EXPECT_EQ(cursor, 1u);
}

TEST(CursorFile, AFlippedOrTornSlotLeavesTheOther) {
  const std::string good = cursor_file(8, 200, 9, 210);
  for (size_t slot = 0; slot < 2; slot++) {
    const size_t at = slot * mg::kCursorSlotBytes;
    const uint64_t other_gen = slot == 0 ? 9 : 8, other_cursor = slot == 0 ? 210 : 200;
    for (size_t i = 0; i < 28; i++) {  // every byte the slot's check covers, and the check itself
      std::string bytes = good;
      bytes[at + i] ^= 0x10;
      uint64_t gen = 0, cursor = 0;
      ASSERT_TRUE(mg::decode_cursor_file(bytes, gen, cursor)) << "slot " << slot << " byte " << i;
      EXPECT_EQ(gen, other_gen);
      EXPECT_EQ(cursor, other_cursor);
    }
    for (size_t written = 0; written < 28; written++) {  // a write that stopped after `written` bytes
      std::string bytes = good;
      std::memset(&bytes[at + written], 0, mg::kCursorSlotBytes - written);
      if (bytes.compare(at, 28, good, at, 28) == 0) continue;  // the lost bytes were zeros already
      uint64_t gen = 0, cursor = 0;
      ASSERT_TRUE(mg::decode_cursor_file(bytes, gen, cursor)) << "slot " << slot << " torn at " << written;
      EXPECT_EQ(gen, other_gen);
    }
  }
}

TEST(CursorFile, NoCursorWhenBothSlotsAreBadOrTheFileIsShort) {
  uint64_t gen = 3, cursor = 4;
  std::string bytes = cursor_file(1, 10, 2, 20);
  bytes[0] ^= 1;
  bytes[mg::kCursorSlotBytes + 20] ^= 1;
  EXPECT_FALSE(mg::decode_cursor_file(bytes, gen, cursor));
  EXPECT_FALSE(mg::decode_cursor_file(std::string(mg::kCursorFileBytes, '\0'), gen, cursor));
  EXPECT_FALSE(mg::decode_cursor_file(cursor_file(1, 10, 2, 20).substr(0, mg::kCursorFileBytes - 1), gen, cursor));
  EXPECT_FALSE(mg::decode_cursor_file("", gen, cursor));
  EXPECT_EQ(gen, 3u);
  EXPECT_EQ(cursor, 4u);

  std::string v2 = cursor_file(1, 10, 2, 20);
  v2[4] = 2;
  v2[mg::kCursorSlotBytes + 4] = 2;
  EXPECT_FALSE(mg::decode_cursor_file(v2, gen, cursor));
}

// ---- scanner ----

TEST(LogScanner, ALogCutAnywhereGivesTheRecordsBeforeTheCutThenIncomplete) {
  const Log log(50);
  for (size_t cut = 0; cut <= log.bytes.size(); cut++) {
    LogScanner scan(std::string_view(log.bytes).substr(0, cut));
    size_t k = 0;
    LogRecord r;
    Step step;
    while ((step = scan.next(r)) == Step::Record) {
      ASSERT_LT(k, log.records.size());
      expect_record(r, log.records[k++]);
    }
    size_t whole = 0;
    while (whole < log.records.size() && log.end_of(whole) <= cut) whole++;
    ASSERT_EQ(k, whole) << "cut at " << cut;
    const bool at_boundary = whole == log.records.size() || log.records[whole].offset == cut;
    ASSERT_EQ(step, at_boundary ? Step::End : Step::Incomplete) << "cut at " << cut;
    EXPECT_EQ(scan.offset(), whole == 0 ? 0 : log.end_of(whole - 1));
    EXPECT_FALSE(scan.resync()) << "cut at " << cut;  // nothing whole follows a cut
    EXPECT_EQ(scan.skipped_bytes(), 0u);
  }
}

TEST(LogScanner, AFlippedByteAnywhereInARecordSkipsJustThatRecord) {
  const Log log(50);
  const size_t k = 20;
  for (size_t i = log.records[k].offset; i < log.end_of(k); i++) {
    std::string bytes = log.bytes;
    bytes[i] ^= 0x04;
    LogScanner scan(bytes);
    LogRecord r;
    for (size_t j = 0; j < k; j++) ASSERT_EQ(scan.next(r), Step::Record);
    const Step step = scan.next(r);
    ASSERT_TRUE(step == Step::Invalid || step == Step::Incomplete) << "byte " << i;
    ASSERT_TRUE(scan.resync()) << "byte " << i;
    EXPECT_EQ(scan.offset(), log.records[k + 1].offset);
    EXPECT_EQ(scan.skipped_bytes(), log.end_of(k) - log.records[k].offset);
    for (size_t j = k + 1; j < log.records.size(); j++) {
      ASSERT_EQ(scan.next(r), Step::Record) << "byte " << i << ", record " << j;
      expect_record(r, log.records[j]);
    }
    EXPECT_EQ(scan.next(r), Step::End);
  }
}

TEST(LogScanner, AFlippedLengthIsSkippedAndTheLostRecordsAreTheGapInSequenceNumbers) {
  const Log log(50);
  for (int bit : {0x01, 0x40}) {
    for (size_t byte = 0; byte < 4; byte++) {
      std::string bytes = log.bytes;
      bytes[log.records[30].offset + byte] ^= static_cast<char>(bit);
      const Recovered got = recover(bytes);
      ASSERT_EQ(got.records.size(), 49u) << "byte " << byte << " bit " << bit;
      EXPECT_EQ(got.records[29].seq, 30u);
      EXPECT_EQ(got.records[30].seq, 32u);
      EXPECT_EQ(got.stop, bytes.size());
      EXPECT_EQ(got.skipped, log.end_of(30) - log.records[30].offset);
    }
  }
}

TEST(LogScanner, DamageInTheLastRecordIsATornTailNotARecordToSkipTo) {
  const Log log(50);
  const size_t last = log.records.size() - 1;
  for (size_t i = log.records[last].offset; i < log.bytes.size(); i++) {
    std::string bytes = log.bytes;
    bytes[i] ^= 0x80;
    const Recovered got = recover(bytes);
    ASSERT_EQ(got.records.size(), last) << "byte " << i;
    ASSERT_EQ(got.damage.size(), 1u);
    EXPECT_EQ(got.stop, log.records[last].offset);  // where recovery truncates
    EXPECT_EQ(got.skipped, 0u);
  }
}

TEST(LogScanner, GarbageBetweenRecordsIsSkippedAndCounted) {
  Log log(10);
  std::mt19937_64 rng(7);
  std::string garbage(5000, '\0');
  for (auto& c : garbage) c = static_cast<char>(rng());
  garbage += std::string(3000, '\0');
  const size_t at = log.records[5].offset;
  std::string bytes = log.bytes.substr(0, at) + garbage + log.bytes.substr(at);
  const Recovered got = recover(bytes);
  ASSERT_EQ(got.records.size(), 10u);
  for (size_t j = 0; j < 10; j++) expect_record(got.records[j], log.records[j]);
  EXPECT_EQ(got.skipped, garbage.size());
  EXPECT_EQ(got.stop, bytes.size());
}

TEST(LogScanner, SequenceNumbersThatDoNotGrowAreNotRecords) {
  Log repeated(0);
  repeated.add(1, 1, "a", "");
  repeated.add(2, 1, "b", "");
  repeated.add(2, 1, "c", "");
  LogScanner scan(repeated.bytes);
  LogRecord r;
  ASSERT_EQ(scan.next(r), Step::Record);
  ASSERT_EQ(scan.next(r), Step::Record);
  EXPECT_EQ(scan.next(r), Step::Invalid);
  EXPECT_EQ(scan.offset(), repeated.records[2].offset);
  EXPECT_FALSE(scan.resync());

  Log backwards(0);
  backwards.add(5, 1, "a", "");
  backwards.add(4, 1, "b", "");
  backwards.add(9, 1, "c", "");  // a gap is allowed: the records between were lost
  const Recovered got = recover(backwards.bytes);
  ASSERT_EQ(got.records.size(), 2u);
  EXPECT_EQ(got.records[0].seq, 5u);
  EXPECT_EQ(got.records[1].seq, 9u);
  EXPECT_EQ(got.damage, std::vector<Step>{Step::Invalid});

  const Log three(3);
  LogScanner after(three.bytes, 0, 3);  // continuing a topic whose last record was 3
  EXPECT_EQ(after.next(r), Step::Invalid);
}

TEST(LogScanner, ExtendContinuesAfterIncompleteOnceMoreBytesArrive) {
  const Log log(10);
  const size_t cut = log.records[4].offset + 13;  // inside record 5's body
  LogScanner scan(std::string_view(log.bytes).substr(0, cut));
  LogRecord r;
  for (size_t j = 0; j < 4; j++) ASSERT_EQ(scan.next(r), Step::Record);
  ASSERT_EQ(scan.next(r), Step::Incomplete);
  scan.extend(std::string_view(log.bytes).substr(0, cut + 3));
  ASSERT_EQ(scan.next(r), Step::Incomplete);
  scan.extend(log.bytes);
  for (size_t j = 4; j < 10; j++) {
    ASSERT_EQ(scan.next(r), Step::Record);
    expect_record(r, log.records[j]);
  }
  EXPECT_EQ(scan.next(r), Step::End);
  EXPECT_EQ(scan.last_seq(), 10u);

  LogScanner from(log.bytes, log.records[7].offset, 7);  // starting mid-segment, as a reader after a restart
  ASSERT_EQ(from.next(r), Step::Record);
  EXPECT_EQ(r.seq, 8u);
}

}  // namespace
