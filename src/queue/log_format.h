// The disk queue's on-disk format (docs/queue-log.md): one directory per topic under
// <state_dir>/queue/, holding segment files of records and one cursor file. Bytes only: no file
// I/O here (queue/log_store.cpp writes and reads the files; queue/log_recovery.cpp scans them at
// start). All integers are little-endian.
//
//   <topic dir>/topic          the topic's name, as is (the directory name is only an encoding of it)
//   <topic dir>/cursor         two 32-byte cursor slots (below); the valid one with the higher
//                              generation holds the cursor
//   <topic dir>/<20 digits>.seg   a segment, named by the sequence number of its first record
//
// Segment: a 16-byte header, then records back to back.
//   header  "MGQL" | u8 version (kLogVersion) | u8[3] zero | u64 first_seq
//   record  u32 body_len | u32 crc32c(body) | body
//   body    u64 seq | u64 client | u32 data_len | data (JSON text of "d") | context (JSON text of
//           "x", the rest of the body; empty when the context is empty)
// Sequence numbers grow by one per record within a topic (1 is the first); a reader requires them
// to grow, which is also how it tells a record from bytes that only look like one.
//
// Cursor slot: "MGQC" | u8 version | u8[3] zero | u64 generation | u64 cursor | u32 crc32c(of the
// 24 bytes before it) | u32 zero. The cursor is the lowest sequence number not yet consumed: every
// record below it was consumed (acknowledged, or delivered to a consumer without acknowledgements,
// or dropped and counted). Slots are written alternately, so a write torn by a power cut leaves the
// other slot valid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mg {

// CRC-32C (Castagnoli, as iSCSI and ext4 use), continued from `crc` (0 to start).
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
// The same, always in software (slicing-by-8). crc32c uses the CPU's CRC32C instruction where there
// is one; this second entry point is for the tests, which require both to agree.
uint32_t crc32c_portable(const void* data, size_t n, uint32_t crc = 0);

constexpr uint8_t kLogVersion = 1;
constexpr size_t kSegmentHeaderBytes = 16;
constexpr size_t kRecordHeaderBytes = 8;        // body_len, crc32c
constexpr size_t kRecordMinBody = 20;           // seq, client, data_len
constexpr uint32_t kRecordMaxBody = 64u << 20;  // larger lengths are corruption, not records
constexpr size_t kCursorSlotBytes = 32;
constexpr size_t kCursorFileBytes = 2 * kCursorSlotBytes;

// One record, its texts borrowed from the bytes it was read from.
struct LogRecord {
  uint64_t seq = 0;
  uint64_t client = 0;
  std::string_view data;
  std::string_view context;
};

void append_segment_header(std::string& out, uint64_t first_seq);
// False with `error` (which names what is wrong: too short, not a segment, version N) otherwise.
bool parse_segment_header(std::string_view in, uint64_t& first_seq, std::string& error);

// The bytes append_record adds for these texts.
inline size_t record_bytes(size_t data_len, size_t context_len) {
  return kRecordHeaderBytes + kRecordMinBody + data_len + context_len;
}
void append_record(std::string& out, uint64_t seq, uint64_t client, std::string_view data, std::string_view context);

// The segment file name of a segment whose first record is `first_seq` ("00000000000000000001.seg"),
// and back (false for any other name).
std::string segment_file_name(uint64_t first_seq);
bool parse_segment_file_name(std::string_view name, uint64_t& first_seq);

// A topic's directory name under <state_dir>/queue/: the name with every byte outside
// [A-Za-z0-9_-] written as %XX (so never "." or ".."), or, when that would pass 200 bytes,
// "h-" and 16 hex digits of a hash of the name. Readers take the name from the `topic` file.
std::string topic_dir_name(std::string_view topic);

void encode_cursor_slot(char out[kCursorSlotBytes], uint64_t generation, uint64_t cursor);
bool decode_cursor_slot(const char in[kCursorSlotBytes], uint64_t& generation, uint64_t& cursor);
// The cursor of a cursor file's bytes (the valid slot with the higher generation); false when
// neither slot is valid (or the bytes are short).
bool decode_cursor_file(std::string_view in, uint64_t& generation, uint64_t& cursor);

// Walks the records in `bytes` (a segment's bytes after its header, possibly not all of them yet)
// from `offset`, requiring sequence numbers above `last_seq`.
class LogScanner {
 public:
  enum class Step {
    Record,      // `r` holds the next record; offset() is past it
    End,         // offset() == bytes.size()
    Incomplete,  // the bytes end inside a record whose header is plausible: more may come, or a torn tail
    Invalid,     // the bytes at offset() are not a record (bad length, checksum or sequence number)
  };
  explicit LogScanner(std::string_view bytes, size_t offset = 0, uint64_t last_seq = 0)
      : bytes_(bytes), offset_(offset), last_seq_(last_seq) {}
  Step next(LogRecord& r);
  // After Incomplete or Invalid, when the bytes are known to be complete: searches from offset()+1
  // for the next offset where a whole valid record starts. True: offset() is there (the bytes
  // between were skipped: skipped_bytes() grows). False: no valid record follows; offset() stays.
  bool resync();
  // Later bytes of the same segment (a longer view of the same buffer, or a buffer that grew).
  void extend(std::string_view bytes) { bytes_ = bytes; }
  size_t offset() const { return offset_; }
  uint64_t last_seq() const { return last_seq_; }
  uint64_t skipped_bytes() const { return skipped_bytes_; }

 private:
  // The record at `at`, if a whole valid one starts there.
  Step record_at(size_t at, LogRecord& r) const;
  std::string_view bytes_;
  size_t offset_;
  uint64_t last_seq_;
  uint64_t skipped_bytes_ = 0;
};

}  // namespace mg
