#include "core/metrics_process.h"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/metrics.h"

namespace mg {
namespace {

double g_start_time_s = 0;

double now_s() {
  timeval tv;
  gettimeofday(&tv, nullptr);
  return tv.tv_sec + tv.tv_usec / 1e6;
}

// /proc/self/stat: fields after the command name (which may hold spaces, so parse from the last ')').
void read_stat(ProcessStats& s) {
  FILE* f = std::fopen("/proc/self/stat", "r");
  if (!f) return;
  char buf[1024];
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  if (!p) return;
  // After ") ": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15)
  // cutime cstime priority nice num_threads(20) itrealvalue starttime vsize(23) rss(24)
  unsigned long long v[24] = {};
  int field = 3;
  for (const char* q = p + 2; *q && field <= 24; field++) {
    while (*q == ' ') q++;
    if (field > 3) v[field - 1] = std::strtoull(q, nullptr, 10);
    while (*q && *q != ' ') q++;
  }
  long ticks = sysconf(_SC_CLK_TCK);
  long page = sysconf(_SC_PAGESIZE);
  if (ticks > 0) s.cpu_seconds = static_cast<double>(v[13] + v[14]) / ticks;
  s.threads = v[19];
  s.virtual_bytes = v[22];
  if (page > 0) s.resident_bytes = v[23] * static_cast<uint64_t>(page);
}

}  // namespace

double process_now_s() { return now_s(); }

void process_stats_start() { g_start_time_s = now_s(); }

ProcessStats process_stats() {
  ProcessStats s;
  read_stat(s);
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') s.open_fds++;
    closedir(d);
    if (s.open_fds) s.open_fds--;  // the directory stream's own descriptor
  }
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) s.max_fds = rl.rlim_cur == RLIM_INFINITY ? 0 : rl.rlim_cur;
  s.start_time_s = g_start_time_s;
  return s;
}

std::string render_process_metrics(const ProcessStats& s) {
  PromWriter w;
  auto one = [&w](const char* name, const char* type, const char* help, double v) {
    w.family(name, type, help);
    w.sample_double(name, {}, v);
  };
  one("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", s.cpu_seconds);
  one("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", static_cast<double>(s.resident_bytes));
  one("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", static_cast<double>(s.virtual_bytes));
  one("process_open_fds", "gauge", "Number of open file descriptors.", static_cast<double>(s.open_fds));
  one("process_max_fds", "gauge", "Maximum number of open file descriptors.", static_cast<double>(s.max_fds));
  one("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", s.start_time_s);
  one("process_threads", "gauge", "Number of OS threads in the process.", static_cast<double>(s.threads));
  return w.take();
}

}  // namespace mg
