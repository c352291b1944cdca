// Fuzz target: the configuration file parser.
#include <cassert>
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"

std::vector<std::string> fuzz_seeds() {
  return {"[node]\nid = 3\nworkers = 2\n[limits]\nmax_channels = 10\n",
          "[listener.ws]\ntype = ws\nport = 5200\npath = /chat\n[listener.t]\ntype = tcp\nport = 5100\nframing = len32\n",
          "[queue]\nmax_events = 5 ; comment\n# comment\n[api]\ntoken = abc\n", "[node\nid=\n"};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mg::Config cfg;
  std::string error;
  bool ok = mg::parse_config_text(std::string(reinterpret_cast<const char*>(data), size), "fuzz.conf", cfg, error);
  assert(ok || error.rfind("fuzz.conf", 0) == 0);  // every error names the file
  if (ok)
    for (const auto& l : cfg.listeners) assert(l.port >= 1 && l.port <= 65535);
  return 0;
}
