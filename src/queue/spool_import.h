// The spool of meshgate before issue 20 (`queue.spool` in the state directory: the events a stopping
// node still held, one JSON object per line, {"t":topic,"c":"client id","n":node,"d":data,"x":context}),
// imported once into the topics' logs at the first start of this version, so an upgrade of a drained
// node loses nothing. Since issue 20 a stopping node keeps what it holds in the logs themselves
// (QueueHub::log_held): there is one mechanism, and this file only reads the old one.
//
// The events are appended to their topics' logs (queue/log_store.h), made durable, and only then is
// the file removed; marked redelivered ("r"), as the spool's were. A file that is not a regular file
// or cannot be read is left in place and nothing is imported (a part read would be removed with
// the rest lost); lines that do not parse are skipped and counted.
#pragma once

#include <cstddef>
#include <string>

namespace mg {

class LogStore;

constexpr const char* kLegacySpoolFile = "queue.spool";

struct SpoolImport {
  size_t events = 0;      // appended to the logs and synced
  size_t lost_lines = 0;  // lines that did not parse: their events are lost (logged)
  std::string error;      // the file is there but could not be read or imported: left in place
};

// Before the store's thread starts (LogStore::flush_now). A missing file is nothing to import.
SpoolImport import_legacy_spool(const std::string& state_dir, LogStore& store);

}  // namespace mg
