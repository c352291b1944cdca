// A worker's outbox of client events: the batch it fills with its clients' events and posts to the
// hub (queue/event_intake.h) as one task per loop turn, or sooner at kMax events or kMaxBytes.
//
// One task for the whole batch: one closure, one lock, one wake-up and two buffers instead of one of
// each per event. The hub reads the events in place and copies only those it must keep.
//
// When the hub falls behind (a burst from many clients, one hub thread), the workers stop reading the
// clients that produce events (the intake's backlog latch, ClientConn::hold_input); the overshoot is
// a batch per worker plus a message per producing connection. Only past kMaxEventsWaiting are new
// events dropped, counted (meshgate_queue_backlog_drops_total) and logged (log_drops, from the
// worker's tick).
//
// Worker thread only.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "queue/event_batch.h"

namespace mg {

class WorkerHost;

class EventOutbox {
 public:
  static constexpr size_t kMax = 256;
  static constexpr size_t kMaxBytes = 256 * 1024;
  static constexpr size_t kMaxEventsWaiting = 200000;

  explicit EventOutbox(WorkerHost& host) : host_(host) {}
  // Its flush runs after each turn of `loop`'s I/O while it holds events.
  void open(uv_loop_t* loop);
  // Posts what it holds and closes its handle (the worker's drain is over).
  void close();

  // Where the caller appends an event's "d" JSON before add().
  std::string& data() { return batch_.bytes; }
  // The event whose "d" the caller appended to data() from `data_start` on, of a client whose topic
  // is `topic` (and its gate, or null). Dropped (its "d" taken back) past kMaxEventsWaiting.
  void add(const std::string* topic, TopicGate* gate, uint64_t client, const std::string& context, size_t data_start);
  // Posts the batch to the hub now (nothing when empty).
  void flush();
  // Logs the events dropped since the last such line, at most once a minute.
  void log_drops(unsigned worker, uint32_t now_s);

 private:
  static void on_check(uv_check_t* h);

  WorkerHost& host_;
  EventBatch batch_;
  uv_check_t check_{};
  // Events dropped past kMaxEventsWaiting and not yet logged, and when the last line was.
  uint64_t drops_unlogged_ = 0;
  uint32_t drop_logged_s_ = 0;
};

}  // namespace mg
