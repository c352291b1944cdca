// Unit tests for the queue's spool (queue/queue_spool.h), in a temporary state directory: what a
// stopping node held comes back at the next start marked redelivered, with its client, data and
// context; damaged lines are skipped and counted; a file that cannot be read is refused with the
// reason and kept for the next shutdown; the file goes once its events are consumed, not before.
#include "queue/queue_spool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "queue/queue_event.h"
#include "queue/queue_hub.h"

namespace {

using mg::QueueEvent;
using mg::QueueHub;
using mg::QueueSpool;

constexpr unsigned kNode = 3;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + std::string("/spool-test-XXXXXX");
    path_ = mkdtemp(tmpl.data()) ? tmpl : "";
  }
  ~TempDir() {
    if (!path_.empty()) std::system(("rm -rf '" + path_ + "'").c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class Sink final : public mg::QueueSink {
 public:
  std::vector<std::string> got;
  bool sink_ready() const override { return true; }
  void sink_deliver(const mg::QueueEventRef& ev, unsigned node, uint64_t seq) override {
    got.push_back(mg::queue_pop_message(ev, node, seq));
  }
};

QueueEvent event(uint64_t client, int seq, const std::string& context = "") {
  QueueEvent ev;
  ev.topic = "client";
  ev.client = client;
  ev.data = "{\"seq\":" + std::to_string(seq) + "}";
  ev.context = context;
  return ev;
}

// A queue as a node has it at start: its listener's topic declared, nobody popping yet.
struct Node {
  QueueHub queue{kNode, mg::QueueLimits{}};
  Node() { queue.declare("client"); }
  std::vector<std::string> consume() {
    Sink sink;
    std::string error;
    EXPECT_EQ(queue.pop(&sink, {"client"}, false, error), 0) << error;
    queue.unpop(&sink);
    return sink.got;
  }
};

TEST(QueueSpool, WhatAStoppingNodeHeldComesBackRedeliveredAndTheFileGoesOnceConsumed) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.path() + "/" + mg::kQueueSpoolFile;
  {
    Node stopping;
    stopping.queue.push(event(7, 1, "{\"user\":\"ann\"}"));
    stopping.queue.push(event(8, 2));
    QueueSpool spool(dir.path(), kNode);
    EXPECT_EQ(spool.path(), path);
    EXPECT_EQ(spool.write(stopping.queue), 2u);
    EXPECT_EQ(stopping.queue.held_events(), 0u);
  }
  ASSERT_TRUE(exists(path));
  EXPECT_FALSE(exists(path + ".tmp"));

  Node started;
  QueueSpool spool(dir.path(), kNode);
  QueueSpool::Restored r = spool.restore(started.queue);
  EXPECT_EQ(r.events, 2u);
  EXPECT_EQ(r.lost_lines, 0u);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(spool.restored(), 2u);
  EXPECT_TRUE(spool.kept());
  EXPECT_EQ(started.queue.spooled_held(), 2u);

  spool.on_tick(started.queue);  // nothing consumed yet: a crash now restores them again
  EXPECT_TRUE(exists(path));
  std::vector<std::string> got = started.consume();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], "{\"e\":\"queue.pop\",\"p\":{\"n\":3,\"c\":\"7\",\"t\":\"client\",\"d\":{\"seq\":1},"
                    "\"x\":{\"user\":\"ann\"},\"r\":true},\"id\":null}");
  EXPECT_EQ(got[1], "{\"e\":\"queue.pop\",\"p\":{\"n\":3,\"c\":\"8\",\"t\":\"client\",\"d\":{\"seq\":2},\"r\":true},\"id\":null}");
  spool.on_tick(started.queue);
  EXPECT_FALSE(spool.kept());
  EXPECT_FALSE(exists(path));
  EXPECT_EQ(spool.restored(), 2u);  // a counter: it stays
  EXPECT_EQ(spool.write(started.queue), 0u);  // nothing held: no file
  EXPECT_FALSE(exists(path));
}

TEST(QueueSpool, DamagedLinesAreSkippedAndCounted) {
  TempDir dir;
  const std::string path = dir.path() + "/" + mg::kQueueSpoolFile;
  std::ofstream(path) << "{\"t\":\"client\",\"c\":\"5\",\"n\":1,\"d\":{\"seq\":1}}\n"
                      << "{\"t\":\"client\",\"c\":\"5\",\"n\":1,\"d\":{\"seq\":\n"  // cut off
                      << "\n"                                                        // blank: not counted
                      << "{\"t\":\"client\",\"c\":\"6\",\"n\":5000,\"d\":{}}\n";     // no such node
  Node started;
  QueueSpool spool(dir.path(), kNode);
  QueueSpool::Restored r = spool.restore(started.queue);
  EXPECT_EQ(r.events, 1u);
  EXPECT_EQ(r.lost_lines, 2u);
  EXPECT_TRUE(spool.kept());
  ASSERT_EQ(started.consume().size(), 1u);
  spool.on_tick(started.queue);
  EXPECT_FALSE(exists(path));
}

TEST(QueueSpool, AFileThatCannotBeReadIsRefusedWithTheReasonAndNothingRestored) {
  TempDir dir;
  const std::string not_a_dir = dir.path() + "/file";
  std::ofstream(not_a_dir) << "x\n";
  Node started;
  QueueSpool spool(not_a_dir, kNode);
  QueueSpool::Restored r = spool.restore(started.queue);
  EXPECT_EQ(r.error, not_a_dir + "/" + mg::kQueueSpoolFile + ": cannot be read");
  EXPECT_EQ(r.events, 0u);
  EXPECT_FALSE(spool.kept());
  EXPECT_EQ(spool.restored(), 0u);
  EXPECT_EQ(started.queue.held_events(), 0u);
}

TEST(QueueSpool, ASpoolNotRestoredIsKeptWithTheEventsOfTheNextShutdown) {
  TempDir dir;
  const std::string path = dir.path() + "/" + mg::kQueueSpoolFile;
  std::ofstream(path) << "{\"t\":\"client\",\"c\":\"5\",\"n\":1,\"d\":{\"seq\":1}}\n";
  Node stopping;  // its spool was never restored (as when it could not be read at start)
  stopping.queue.push(event(9, 2));
  QueueSpool spool(dir.path(), kNode);
  EXPECT_EQ(spool.write(stopping.queue), 1u);
  const std::string text = read_all(path);
  EXPECT_NE(text.find("\"c\":\"5\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"c\":\"9\""), std::string::npos) << text;
}

TEST(QueueSpool, WithoutAStateDirectoryNothingIsReadOrWritten) {
  Node node;
  node.queue.push(event(7, 1));
  QueueSpool spool("", kNode);
  EXPECT_EQ(spool.path(), "");
  EXPECT_EQ(spool.restore(node.queue).events, 0u);
  EXPECT_EQ(spool.write(node.queue), 0u);  // lost, and logged
  EXPECT_EQ(node.queue.held_events(), 0u);
}

}  // namespace
