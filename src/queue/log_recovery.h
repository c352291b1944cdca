// Recovery of the disk queue's logs at start (docs/queue-log.md): each topic directory under
// <state_dir>/queue/ is scanned whole, before the node takes traffic.
//
// What a scan does to the files: segments whose records are all below the cursor (consumed) are
// deleted; the last segment is truncated after its last valid record (a tail cut short by a power
// cut, or garbage after it: "torn"). What it only counts and logs: records that fail their checksum
// (or bytes that are no record) with a valid record after them are skipped; the records lost are the
// gap in sequence numbers. Nothing is read into memory here: the queue pages the events in from
// `cursor` through the store's reader, like any backlog.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mg {

struct LogSegment {
  uint64_t first_seq = 0;
  uint64_t bytes = 0;  // the file's size, header included
};

struct RecoveredLog {
  std::string dir;    // the topic's directory
  std::string topic;  // from its `topic` file
  uint64_t cursor = 1;            // the lowest sequence number not consumed
  uint64_t cursor_generation = 0; // of the cursor slot it came from (the next write uses the other)
  uint64_t next_seq = 1;          // one past the last valid record
  std::vector<LogSegment> segments;  // oldest first, every one kept (holding records at or after the cursor, or the last)
  uint64_t events = 0;          // valid records at or after the cursor: what will be delivered again
  uint64_t corrupt_records = 0; // records lost to checksum failures (sequence gaps), skipped
  uint64_t corrupt_bytes = 0;   // bytes skipped to find the next valid record
  uint64_t torn_bytes = 0;      // bytes cut off the last segment's tail
  uint64_t deleted_segments = 0;  // consumed segments removed at this scan
  std::string error;  // the directory could not be used (unreadable, unknown format version): left as it is
};

// Scans one topic directory. False with out.error when it cannot be used. With `repair` false
// (`meshgate queue inspect`, a look without a running node) nothing is deleted or truncated: the
// counts say what a start would do.
bool recover_topic_log(const std::string& dir, RecoveredLog& out, bool repair = true);

// The names of the topic directories under `queue_dir`, sorted (entries starting with '.', and
// anything not a directory, are not). False with errno set when it cannot be read (ENOENT: missing).
bool list_topic_dirs(const std::string& queue_dir, std::vector<std::string>& names);

// Every topic directory under `queue_dir` (missing: none), each scanned; one logged line per topic
// that held anything, and an error line for each that could not be used.
std::vector<RecoveredLog> recover_logs(const std::string& queue_dir);

}  // namespace mg
