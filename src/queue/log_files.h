// The file operations the disk queue's log needs (queue/log_store.cpp, queue/log_recovery.cpp):
// whole reads and writes that retry short transfers and EINTR, each saying what failed in `error`
// ("<path>: <strerror>"). Blocking: the store calls them on its own thread, recovery before the node
// takes traffic.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mg {

// Appends the bytes of `fd` from `offset` to its end to `out`.
bool read_from(int fd, uint64_t offset, std::string& out, std::string& error, const std::string& path);
// The whole file at `path` into `out` (replaced).
bool read_whole(const std::string& path, std::string& out, std::string& error);
// Writes all of `bytes` at the file's end (O_APPEND) or position.
bool write_all(int fd, std::string_view bytes, std::string& error, const std::string& path);
bool pwrite_all(int fd, std::string_view bytes, uint64_t offset, std::string& error, const std::string& path);
// fsync of a directory, after a file in it was made or removed, so the entry itself is durable.
bool sync_dir(const std::string& dir, std::string& error);
// A file made new with these bytes, synced, then renamed over `path` (never half a file there).
bool write_file_atomic(const std::string& path, std::string_view bytes, std::string& error);

}  // namespace mg
