// Log lines: syslog priorities for the journal, the journal check against $JOURNAL_STREAM, and the
// text and JSON formats (core/log.h).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <regex>
#include <string>

#include "core/log.h"

namespace mg {
namespace {

TEST(Log, SyslogPriorities) {
  EXPECT_EQ(log_syslog_priority(LogLevel::Error), 3);
  EXPECT_EQ(log_syslog_priority(LogLevel::Warn), 4);
  EXPECT_EQ(log_syslog_priority(LogLevel::Info), 6);
  EXPECT_EQ(log_syslog_priority(LogLevel::Debug), 7);
}

TEST(Log, TextLineHasTimestampLevelAndMessage) {
  std::string line = log_format_line(LogLevel::Warn, LogFormat::Text, false, "disk is slow");
  EXPECT_TRUE(std::regex_match(line, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z warn  disk is slow\n)"))) << line;
}

TEST(Log, JournalLineHasPriorityAndNoTimestamp) {
  EXPECT_EQ(log_format_line(LogLevel::Error, LogFormat::Text, true, "cannot listen"), "<3>error cannot listen\n");
  EXPECT_EQ(log_format_line(LogLevel::Info, LogFormat::Text, true, "started"), "<6>info  started\n");
}

TEST(Log, JsonLineEscapesTheMessage) {
  std::string line = log_format_line(LogLevel::Info, LogFormat::Json, false, "a \"quoted\"\nline\\");
  EXPECT_TRUE(std::regex_match(line, std::regex(R"(\{"ts":"\d{4}-[^"]+Z","level":"info","msg":"a \\"quoted\\"\\nline\\\\"\}\n)")))
      << line;
  EXPECT_EQ(log_format_line(LogLevel::Debug, LogFormat::Json, true, "x").rfind("<7>{\"ts\":", 0), 0u);
}

TEST(Log, ParsesFormats) {
  LogFormat f = LogFormat::Text;
  EXPECT_TRUE(parse_log_format("json", f));
  EXPECT_EQ(f, LogFormat::Json);
  EXPECT_TRUE(parse_log_format("text", f));
  EXPECT_EQ(f, LogFormat::Text);
  EXPECT_FALSE(parse_log_format("JSON", f));
  EXPECT_FALSE(parse_log_format("", f));
}

TEST(Log, JournalStreamMustNameThisFile) {
  char path[] = "/tmp/meshgate-test-log-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  std::string other = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1);
  EXPECT_TRUE(log_fd_is_journal(fd, mine.c_str()));
  EXPECT_FALSE(log_fd_is_journal(fd, other.c_str()));
  EXPECT_FALSE(log_fd_is_journal(fd, nullptr));
  EXPECT_FALSE(log_fd_is_journal(fd, ""));
  EXPECT_FALSE(log_fd_is_journal(fd, (mine + "x").c_str()));
  EXPECT_FALSE(log_fd_is_journal(fd, "garbage"));
  close(fd);
  unlink(path);
}

}  // namespace
}  // namespace mg
