// Unit tests for the import of an older version's spool (queue/spool_import.h), in a temporary state
// directory: its events end up in their topics' logs, in order, with their client, data and context,
// and the file goes only once they are durable there; damaged lines are skipped and counted; a file
// that cannot be read, or logs that cannot be written, leave the file in place.
#include "queue/spool_import.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "queue/log_format.h"
#include "queue/log_recovery.h"
#include "queue/log_store.h"

namespace {

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

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// A store as the hub makes it, on a loop that is never run (the import writes on the calling thread).
struct Store {
  uv_loop_t loop{};
  std::unique_ptr<mg::LogStore> store;
  explicit Store(const std::string& state) {
    uv_loop_init(&loop);
    mg::LogOptions o;
    o.queue_dir = state + "/queue";
    store = std::make_unique<mg::LogStore>(&loop, [](std::function<void()>) {}, o);
    store->recover();
  }
  ~Store() {
    store->stop();
    uv_run(&loop, UV_RUN_DEFAULT);  // closes the store's idle handle, which lives inside the store
    store.reset();
    uv_loop_close(&loop);
  }
};

// The records of a topic's log after its cursor: "client|data|context" each.
std::vector<std::string> records_of(const std::string& state, const std::string& topic) {
  mg::RecoveredLog r;
  const std::string dir = state + "/queue/" + mg::topic_dir_name(topic);
  EXPECT_TRUE(mg::recover_topic_log(dir, r, false)) << r.error;
  std::vector<std::string> out;
  for (const mg::LogSegment& s : r.segments) {
    std::ifstream in(dir + "/" + mg::segment_file_name(s.first_seq), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    mg::LogScanner scan(std::string_view(bytes).substr(mg::kSegmentHeaderBytes));
    mg::LogRecord rec;
    while (scan.next(rec) == mg::LogScanner::Step::Record)
      out.push_back(std::to_string(rec.client) + "|" + std::string(rec.data) + "|" + std::string(rec.context));
  }
  return out;
}

constexpr const char* kSpool =
    "{\"t\":\"client\",\"c\":\"11\",\"n\":3,\"d\":{\"seq\":1},\"x\":{\"user\":\"ann\"}}\n"
    "{\"t\":\"other\",\"c\":\"12\",\"n\":3,\"d\":\"two\"}\n"
    "{\"t\":\"client\",\"c\":\"11\",\"n\":3,\"d\":{\"seq\":3}}\n";

TEST(SpoolImport, ItsEventsMoveIntoTheirTopicsLogsInOrderAndTheFileGoes) {
  TempDir dir;
  write_file(dir.path() + "/queue.spool", kSpool);
  {
    Store s(dir.path());
    mg::SpoolImport r = mg::import_legacy_spool(dir.path(), *s.store);
    EXPECT_EQ(r.events, 3u);
    EXPECT_EQ(r.lost_lines, 0u);
    EXPECT_TRUE(r.error.empty()) << r.error;
    for (mg::TopicLog* log : s.store->logs()) EXPECT_EQ(log->recovered_end(), log->next_seq()) << log->topic();
  }
  EXPECT_FALSE(exists(dir.path() + "/queue.spool"));
  EXPECT_EQ(records_of(dir.path(), "client"),
            (std::vector<std::string>{"11|{\"seq\":1}|{\"user\":\"ann\"}", "11|{\"seq\":3}|"}));
  EXPECT_EQ(records_of(dir.path(), "other"), (std::vector<std::string>{"12|\"two\"|"}));
}

TEST(SpoolImport, DamagedLinesAreSkippedAndCounted) {
  TempDir dir;
  write_file(dir.path() + "/queue.spool", std::string(kSpool) + "{\"t\":\"client\",\"c\":\"x\"}\nnot json\n");
  Store s(dir.path());
  mg::SpoolImport r = mg::import_legacy_spool(dir.path(), *s.store);
  EXPECT_EQ(r.events, 3u);
  EXPECT_EQ(r.lost_lines, 2u);
  EXPECT_FALSE(exists(dir.path() + "/queue.spool"));
}

TEST(SpoolImport, AFileThatCannotBeReadIsRefusedWithTheReasonAndLeftInPlace) {
  TempDir dir;
  ASSERT_EQ(mkdir((dir.path() + "/queue.spool").c_str(), 0700), 0);
  Store s(dir.path());
  mg::SpoolImport r = mg::import_legacy_spool(dir.path(), *s.store);
  EXPECT_EQ(r.events, 0u);
  EXPECT_NE(r.error.find("not a regular file"), std::string::npos) << r.error;
  EXPECT_TRUE(exists(dir.path() + "/queue.spool"));
  EXPECT_TRUE(s.store->logs().empty());
}

TEST(SpoolImport, WhenTheLogsCannotBeWrittenTheFileStays) {
  TempDir dir;
  write_file(dir.path() + "/queue.spool", kSpool);
  write_file(dir.path() + "/queue", "a file where the queue directory would be\n");
  Store s(dir.path());
  mg::SpoolImport r = mg::import_legacy_spool(dir.path(), *s.store);
  EXPECT_EQ(r.events, 0u);
  EXPECT_FALSE(r.error.empty());
  EXPECT_TRUE(exists(dir.path() + "/queue.spool"));
}

TEST(SpoolImport, NoFileImportsNothingAndMakesNoLog) {
  TempDir dir;
  Store s(dir.path());
  mg::SpoolImport r = mg::import_legacy_spool(dir.path(), *s.store);
  EXPECT_EQ(r.events, 0u);
  EXPECT_TRUE(r.error.empty());
  EXPECT_FALSE(exists(dir.path() + "/queue"));
}

}  // namespace
