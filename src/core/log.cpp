#include "core/log.h"

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <sys/stat.h>
#include <sys/time.h>

#include "core/json_text.h"
#include "core/log_text.h"

namespace mg {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
std::atomic<int> g_format{static_cast<int>(LogFormat::Text)};
std::mutex g_mutex;
FILE* g_file = nullptr;  // nullptr means stderr
bool g_journal = false;  // stderr is the journal and no file is open

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Error: return "error";
    case LogLevel::Warn: return "warn";
    case LogLevel::Info: return "info";
    case LogLevel::Debug: return "debug";
  }
  return "?";
}

std::string timestamp() {
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm t;
  gmtime_r(&tv.tv_sec, &t);
  char buf[80];  // room for any int in every field (the compiler checks)
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                t.tm_hour, t.tm_min, t.tm_sec, static_cast<int>(tv.tv_usec / 1000));
  return buf;
}

}  // namespace

bool parse_log_level(const std::string& s, LogLevel& out) {
  static const std::pair<const char*, LogLevel> names[] = {
      {"error", LogLevel::Error}, {"warn", LogLevel::Warn}, {"info", LogLevel::Info}, {"debug", LogLevel::Debug}};
  for (const auto& [name, level] : names) {
    if (s == name) { out = level; return true; }
  }
  return false;
}

bool parse_log_format(const std::string& s, LogFormat& out) {
  if (s == "text") out = LogFormat::Text;
  else if (s == "json") out = LogFormat::Json;
  else return false;
  return true;
}

void log_set_level(LogLevel level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }

void log_set_format(LogFormat format) { g_format.store(static_cast<int>(format), std::memory_order_relaxed); }

bool log_enabled(LogLevel level) { return static_cast<int>(level) <= g_level.load(std::memory_order_relaxed); }

int log_syslog_priority(LogLevel level) {
  switch (level) {
    case LogLevel::Error: return 3;  // LOG_ERR
    case LogLevel::Warn: return 4;   // LOG_WARNING
    case LogLevel::Info: return 6;   // LOG_INFO
    case LogLevel::Debug: return 7;  // LOG_DEBUG
  }
  return 6;
}

// systemd documents $JOURNAL_STREAM as "<device>:<inode>" of the stream it connected; a process that
// inherited the variable but whose stderr was redirected elsewhere must not add prefixes.
bool log_fd_is_journal(int fd, const char* journal_stream) {
  if (!journal_stream || !*journal_stream) return false;
  unsigned long long dev = 0, ino = 0;
  char tail = 0;
  if (std::sscanf(journal_stream, "%llu:%llu%c", &dev, &ino, &tail) != 2) return false;
  struct stat st;
  if (fstat(fd, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

std::string log_format_line(LogLevel level, LogFormat format, bool journal, const std::string& message) {
  std::string line;
  if (journal) line = "<" + std::to_string(log_syslog_priority(level)) + ">";
  if (format == LogFormat::Json) {
    line += "{\"ts\":\"" + timestamp() + "\",\"level\":\"" + level_name(level) + "\",\"msg\":";
    json_append_string(line, message);
    line += '}';
  } else {
    if (!journal) line += timestamp() + ' ';  // the journal stamps every line itself
    char name[8];
    std::snprintf(name, sizeof name, "%-5s ", level_name(level));
    line += name;
    line += message;
  }
  line += '\n';
  return line;
}

std::string log_stderr_prefix(LogLevel level) {
  if (!log_fd_is_journal(2, std::getenv("JOURNAL_STREAM"))) return "";
  return "<" + std::to_string(log_syslog_priority(level)) + ">";
}

bool log_open(const std::string& path, std::string& error) {
  FILE* f = nullptr;
  if (!path.empty()) {
    f = std::fopen(path.c_str(), "a");
    if (!f) { error = path + ": " + std::strerror(errno); return false; }
    std::setvbuf(f, nullptr, _IOLBF, 0);
  }
  bool journal = !f && log_fd_is_journal(2, std::getenv("JOURNAL_STREAM"));
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_file) std::fclose(g_file);
  g_file = f;
  g_journal = journal;
  return true;
}

bool log_configure(const std::string& level, const std::string& format, const std::string& file, std::string& error) {
  LogLevel l;
  if (parse_log_level(level, l)) log_set_level(l);
  LogFormat f;
  if (parse_log_format(format, f)) log_set_format(f);
  return log_open(file, error);
}

void log_write(LogLevel level, const char* fmt, ...) {
  char message[2048];
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  if (m < 0) message[0] = '\0';
  // Call sites pass peer text through log_safe; this catches one that did not, and a character
  // that the 2 KiB cut split in two (JSON lines must stay valid UTF-8).
  const std::string safe = log_safe_line(message);
  LogFormat format = static_cast<LogFormat>(g_format.load(std::memory_order_relaxed));
  std::lock_guard<std::mutex> lock(g_mutex);
  std::string line = log_format_line(level, format, g_journal, safe);
  std::fwrite(line.data(), 1, line.size(), g_file ? g_file : stderr);
}

}  // namespace mg
