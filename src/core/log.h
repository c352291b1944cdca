// Logging: one line per event, with a level, to standard error or a file. Thread-safe: each line is
// written by one fwrite under a lock. No line is written per client message at the default level.
//
// Two line formats: text ("2026-01-01T00:00:00.000Z info  message") and JSON for log shippers
// ({"ts":"...","level":"info","msg":"..."}). When standard error is the systemd journal (systemd
// sets $JOURNAL_STREAM to the device:inode of that stream) and no log file is set, each line starts
// with its syslog priority ("<3>" error, "<4>" warn, "<6>" info, "<7>" debug) so `journalctl -p err`
// finds the errors, and the text format leaves out the timestamp the journal adds itself.
#pragma once

#include <string>

namespace mg {

enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3 };
enum class LogFormat { Text, Json };

bool parse_log_level(const std::string& s, LogLevel& out);
bool parse_log_format(const std::string& s, LogFormat& out);
void log_set_level(LogLevel level);
void log_set_format(LogFormat format);
bool log_enabled(LogLevel level);
// Opens `path` for appending (empty: standard error). Called at start and on SIGHUP (logrotate).
bool log_open(const std::string& path, std::string& error);
// The configuration's [log] level, format and file, applied at once: at start and on SIGHUP. A level
// or format that does not parse leaves the current one (the configuration check refuses them first).
// False, with `error`, when the file cannot be opened: level and format are applied all the same,
// and lines keep going where they went.
bool log_configure(const std::string& level, const std::string& format, const std::string& file, std::string& error);
void log_write(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// "<3>" (the priority of `level`) when standard error is the journal, else "": for the few messages
// written to stderr before logging is set up (a configuration error at start), so that they too are
// filed as errors.
std::string log_stderr_prefix(LogLevel level);

// The pieces of a line, exposed for the unit tests: the syslog priority of a level, whether
// $JOURNAL_STREAM names the file open on `fd`, and one formatted line (with its newline).
int log_syslog_priority(LogLevel level);
bool log_fd_is_journal(int fd, const char* journal_stream);
std::string log_format_line(LogLevel level, LogFormat format, bool journal, const std::string& message);

}  // namespace mg

#define MG_LOG(level, ...) \
  do { if (::mg::log_enabled(level)) ::mg::log_write(level, __VA_ARGS__); } while (0)
#define LOG_ERROR(...) MG_LOG(::mg::LogLevel::Error, __VA_ARGS__)
#define LOG_WARN(...) MG_LOG(::mg::LogLevel::Warn, __VA_ARGS__)
#define LOG_INFO(...) MG_LOG(::mg::LogLevel::Info, __VA_ARGS__)
#define LOG_DEBUG(...) MG_LOG(::mg::LogLevel::Debug, __VA_ARGS__)
