// The process_* metric family every Prometheus client library exports (resident memory, file
// descriptors, CPU time, start time), read from /proc/self on each scrape. Reading only
// /proc/self keeps it working under the unit's ProcSubset=pid.
#pragma once

#include <cstdint>
#include <string>

namespace mg {

struct ProcessStats {
  uint64_t resident_bytes = 0, virtual_bytes = 0;
  uint64_t open_fds = 0, max_fds = 0;
  double cpu_seconds = 0;       // user + system
  double start_time_s = 0;      // unix time the process started (as recorded by process_stats_start)
  uint64_t threads = 0;
};

// Records the start time; call once early in main.
void process_stats_start();
ProcessStats process_stats();
// Unix time now, in seconds.
double process_now_s();
// Prometheus text of the process_* families.
std::string render_process_metrics(const ProcessStats& s);

}  // namespace mg
