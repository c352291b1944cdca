// A stand-in for libFuzzer's driver, so every fuzz target also runs in the ordinary test suite with
// g++: it feeds the target its seed inputs, then a fixed number of deterministic mutations of them
// (bit flips, byte inserts and deletes, splices, truncations). A crash, a sanitizer report or an
// assertion in the target fails the test. Real coverage-guided fuzzing: build with -Dfuzzing=true
// (clang, libFuzzer), see docs/testing.md.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// Each target lists its seeds.
std::vector<std::string> fuzz_seeds();

namespace {

uint64_t g_state = 0x9E3779B97F4A7C15ull;
uint64_t next_random() {  // splitmix64: deterministic, so a failure reproduces
  uint64_t z = (g_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::string mutate(const std::vector<std::string>& seeds) {
  std::string s = seeds[next_random() % seeds.size()];
  int edits = 1 + static_cast<int>(next_random() % 8);
  for (int i = 0; i < edits; i++) {
    size_t pos = s.empty() ? 0 : next_random() % (s.size() + 1);
    switch (next_random() % 6) {
      case 0: if (!s.empty() && pos < s.size()) s[pos] ^= static_cast<char>(1u << (next_random() % 8)); break;
      case 1: s.insert(pos, 1, static_cast<char>(next_random() & 0xFF)); break;
      case 2: if (pos < s.size()) s.erase(pos, 1 + next_random() % 4); break;
      case 3: s.resize(pos); break;
      case 4: { const std::string& o = seeds[next_random() % seeds.size()];
                size_t from = o.empty() ? 0 : next_random() % o.size();
                s.insert(pos, o.substr(from, next_random() % 64)); break; }
      case 5: s.insert(pos, std::string(1 + next_random() % 300, static_cast<char>(next_random() & 0xFF))); break;
    }
  }
  return s;
}

}  // namespace

int main() {
  std::vector<std::string> seeds = fuzz_seeds();
  const char* env = std::getenv("FUZZ_ITERATIONS");
  long iterations = env ? std::atol(env) : 20000;
  for (const std::string& s : seeds) LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  for (long i = 0; i < iterations; i++) {
    std::string s = mutate(seeds);
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }
  std::printf("%zu seeds and %ld mutations: no crash\n", seeds.size(), iterations);
  return 0;
}
