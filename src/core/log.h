// Logging: one line per event, with a level, to standard error or a file. Thread-safe: each line is
// written by one fwrite under a lock. No line is written per client message at the default level.
#pragma once

#include <string>

namespace mg {

enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3 };

bool parse_log_level(const std::string& s, LogLevel& out);
void log_set_level(LogLevel level);
bool log_enabled(LogLevel level);
// Opens `path` for appending (empty: standard error). Called at start and on SIGHUP (logrotate).
bool log_open(const std::string& path, std::string& error);
void log_write(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace mg

#define MG_LOG(level, ...) \
  do { if (::mg::log_enabled(level)) ::mg::log_write(level, __VA_ARGS__); } while (0)
#define LOG_ERROR(...) MG_LOG(::mg::LogLevel::Error, __VA_ARGS__)
#define LOG_WARN(...) MG_LOG(::mg::LogLevel::Warn, __VA_ARGS__)
#define LOG_INFO(...) MG_LOG(::mg::LogLevel::Info, __VA_ARGS__)
#define LOG_DEBUG(...) MG_LOG(::mg::LogLevel::Debug, __VA_ARGS__)
