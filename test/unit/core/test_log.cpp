// Log lines: syslog priorities for the journal, the journal check against $JOURNAL_STREAM, and the
// text and JSON formats (core/log.h).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <regex>
#include <string>

#include "core/log.h"
#include "core/log_text.h"

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

// log_configure (start and SIGHUP): the level filters, the format shapes the line, the file takes
// the lines; a file that cannot be opened is an error and the lines keep going where they went.
TEST(Log, ConfigureAppliesLevelFormatAndFile) {
  char path[] = "/tmp/meshgate-test-log-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::string error;
  ASSERT_TRUE(log_configure("warn", "json", path, error)) << error;
  LOG_INFO("not written: below the level");
  LOG_WARN("written as json");
  EXPECT_FALSE(log_configure("error", "text", "/nonexistent-dir/meshgate.log", error));
  EXPECT_NE(error.find("/nonexistent-dir/meshgate.log"), std::string::npos);
  LOG_WARN("not written: below the new level");
  LOG_ERROR("written as text to the same file");
  ASSERT_TRUE(log_configure("info", "text", "", error));  // back to standard error for the other tests
  std::FILE* f = std::fopen(path, "r");
  ASSERT_NE(f, nullptr);
  std::string text;
  char buf[512];
  while (std::fgets(buf, sizeof buf, f)) text += buf;
  std::fclose(f);
  unlink(path);
  EXPECT_EQ(text.find("not written"), std::string::npos) << text;
  EXPECT_NE(text.find("\"msg\":\"written as json\""), std::string::npos) << text;
  EXPECT_NE(text.find("error written as text to the same file"), std::string::npos) << text;
}

// Peer text in a log line (core/log_text.h): nothing in it can end the line or forge another.
TEST(LogText, ControlBytesInvalidUtf8AndBackslashesAreEscaped) {
  EXPECT_EQ(log_safe("cluster\n2026-01-01 error forged\r"), "cluster\\x0a2026-01-01 error forged\\x0d");
  EXPECT_EQ(log_safe("\x1b[2J\x7f\t"), "\\x1b[2J\\x7f\\x09");
  EXPECT_EQ(log_safe("a\\x0ab"), "a\\\\x0ab");  // a literal backslash cannot pass for an escape
  EXPECT_EQ(log_safe("\xff\xc3\x28 caf\xc3\xa9"), "\\xff\\xc3( caf\xc3\xa9");
  EXPECT_EQ(log_safe(std::string("nul\0x", 5)), "nul\\x00x");
  EXPECT_EQ(log_safe("plain text"), "plain text");
  // The whole-message pass keeps our own backslashes and escapes only what cannot be in a line.
  EXPECT_EQ(log_safe_line("a\\b\nc\xe2\x82"), "a\\b\\x0ac\\xe2\\x82");
  const std::string json = log_format_line(LogLevel::Warn, LogFormat::Json, false, log_safe_line("x\xff"));
  EXPECT_NE(json.find("\"msg\":\"x\\\\xff\"}"), std::string::npos) << json;
}

}  // namespace
}  // namespace mg
