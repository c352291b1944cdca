#include "queue/log_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mg {

namespace {

bool fail(std::string& error, const std::string& path) {
  error = path + ": " + std::strerror(errno);
  return false;
}

}  // namespace

bool read_from(int fd, uint64_t offset, std::string& out, std::string& error, const std::string& path) {
  char buf[1 << 16];
  for (;;) {
    ssize_t n = pread(fd, buf, sizeof buf, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(error, path);
    if (n == 0) return true;
    out.append(buf, static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
}

bool read_whole(const std::string& path, std::string& out, std::string& error) {
  out.clear();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(error, path);
  struct stat st {};
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) out.reserve(static_cast<size_t>(st.st_size));
  bool ok = read_from(fd, 0, out, error, path);
  close(fd);
  return ok;
}

bool write_all(int fd, std::string_view bytes, std::string& error, const std::string& path) {
  while (!bytes.empty()) {
    ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(error, path);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool pwrite_all(int fd, std::string_view bytes, uint64_t offset, std::string& error, const std::string& path) {
  while (!bytes.empty()) {
    ssize_t n = pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(error, path);
    bytes.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

bool sync_dir(const std::string& dir, std::string& error) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail(error, dir);
  bool ok = fsync(fd) == 0 || fail(error, dir);
  close(fd);
  return ok;
}

bool write_file_atomic(const std::string& path, std::string_view bytes, std::string& error) {
  const std::string tmp = path + ".tmp";
  unlink(tmp.c_str());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return fail(error, tmp);
  bool ok = write_all(fd, bytes, error, tmp) && (fdatasync(fd) == 0 || fail(error, tmp));
  close(fd);
  if (ok && rename(tmp.c_str(), path.c_str()) != 0) ok = fail(error, path);
  if (!ok) unlink(tmp.c_str());
  return ok;
}

}  // namespace mg
