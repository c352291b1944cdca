// The queue's spool: events a stopping node still held for its clients, written to a file in the
// state directory at shutdown and read back at the next start (docs/decisions.md, "Drain").
//
// One event per line, a JSON object: {"t":topic,"c":"client id","n":node,"d":data,"x":context}.
// The file is written to SPOOL.tmp (made new: never through a symlink or into a file already there),
// synced, then renamed, so a crash while writing leaves either the old spool or the new one, never
// half of one. After a start restored it, the file is kept until every restored event is consumed:
// a crash before that restores them again (at least once; "The spool is kept until its events are
// consumed").
//
// QueueSpool owns the file: its path, reading it back into the queue, writing the queue's held events
// at shutdown, removing it once consumed, and the counts /metrics shows. Hub thread only. It is meant
// to grow into the queue's disk log, so the hub sees only these calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mg {

class QueueHub;

constexpr const char* kQueueSpoolFile = "queue.spool";

class QueueSpool {
 public:
  // `state_dir`: where the file lives ("": no spool, events held at shutdown are lost, and the log
  // says how many). `node_id`: this node, which restored events are marked as (their clients were
  // its own).
  QueueSpool(const std::string& state_dir, unsigned node_id);

  // What restore() found (also logged).
  struct Restored {
    size_t events = 0;      // pushed into the queue, marked redelivered and spooled
    size_t lost_lines = 0;  // lines that did not parse: skipped, their events lost
    std::string error;      // the file is there but could not be read: left in place, nothing restored
  };
  // At start: reads the file back into `queue`. A missing file (or no state_dir) is no events.
  Restored restore(QueueHub& queue);
  // About once a second: removes the file once every event restored from it is consumed.
  void on_tick(const QueueHub& queue);
  // At shutdown: takes every event `queue` still holds and writes it to the file, after the events
  // of a spool that was there but not restored (it could not be read at start); with none held,
  // removes a restored file. Returns the number of events written (0 also when they are lost: logged).
  size_t write(QueueHub& queue);

  const std::string& path() const { return path_; }
  // Events restored at start (meshgate_queue_restored_total).
  uint64_t restored() const { return restored_; }
  // The file was restored and some of its events are not consumed yet.
  bool kept() const { return kept_; }

 private:
  void remove(const char* why);

  std::string path_;  // "" when there is no state_dir
  unsigned node_id_;
  uint64_t restored_ = 0;
  bool kept_ = false;
};

}  // namespace mg
