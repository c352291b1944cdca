// The queue's spool: events a stopping node still held for its clients, written to a file in the
// state directory at shutdown and read back at the next start (docs/decisions.md, "Drain").
//
// One event per line, a JSON object: {"t":topic,"c":"client id","n":node,"d":data,"x":context}.
// The file is written to SPOOL.tmp (made new: never through a symlink or into a file already there),
// synced, then renamed, so a crash while writing leaves either the old spool or the new one, never
// half of one. After a start restored it, the hub keeps it until every restored event is consumed.
#pragma once

#include <string>
#include <vector>

#include "queue/queue_event.h"

namespace mg {

constexpr const char* kQueueSpoolFile = "queue.spool";

// Writes `events` to `path` (replacing it). False with `error` set when it could not.
bool spool_write(const std::string& path, const std::vector<QueueEvent>& events, std::string& error);

// Reads `path` into `events` (appended; each marked redelivered). A missing file is no events.
// Lines that do not parse are skipped and counted in `bad_lines`. False with `error` when the file
// exists but cannot be read.
bool spool_read(const std::string& path, std::vector<QueueEvent>& events, size_t& bad_lines, std::string& error);

}  // namespace mg
