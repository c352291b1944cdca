// What sealing and opening a mesh frame costs (mesh/mesh_crypto.h), per frame and per byte, in both
// modes: authenticated only ([mesh] encrypt = off) and encrypted (on). One thread, CPU time
// (CLOCK_PROCESS_CPUTIME_ID), so the figure holds on a shared machine; the median of 5 runs.
//
//   ninja -C build mesh_crypto_bench && build/mesh_crypto_bench
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "mesh/mesh_crypto.h"

namespace {

double cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

// ns of CPU to seal and open one frame of `size` bytes.
double seal_and_open_ns(size_t size, bool encrypt, int frames) {
  mg::MeshSessionKeys keys = mg::mesh_session_keys("bench-secret", mg::mesh_transcript("{\"d\":1}", "{\"l\":2}"));
  mg::MeshRecordCipher sealer, opener;
  sealer.start(keys.dialler_to_listener, mg::MeshRecordCipher::Use::Seal, encrypt);
  opener.start(keys.dialler_to_listener, mg::MeshRecordCipher::Use::Open, encrypt);
  std::string body(size, 'x');
  size_t opened = 0;
  double t0 = cpu_ns();
  for (int i = 0; i < frames; i++) {
    std::string f = sealer.seal(mg::MeshType::Event, body);
    const char* b = nullptr;
    size_t n = 0;
    if (!opener.open(mg::MeshType::Event, f.data() + 5, f.size() - 5, b, n)) return -1;
    opened += n;
  }
  double t1 = cpu_ns();
  if (opened != size * static_cast<size_t>(frames)) return -1;
  return (t1 - t0) / frames;
}

}  // namespace

int main() {
  std::printf("%-8s %-14s %14s %12s\n", "size", "mode", "ns per frame", "MB/s");
  for (size_t size : {100, 1024, 16384, 262144}) {
    for (bool encrypt : {false, true}) {
      int frames = static_cast<int>(std::max<size_t>(200, (64u << 20) / (size + 64)));
      std::vector<double> runs;
      for (int r = 0; r < 5; r++) runs.push_back(seal_and_open_ns(size, encrypt, frames));
      std::sort(runs.begin(), runs.end());
      double ns = runs[2];
      std::printf("%-8zu %-14s %14.0f %12.0f\n", size, encrypt ? "encrypted" : "authenticated", ns, size / ns * 1e3);
    }
  }
  return 0;
}
