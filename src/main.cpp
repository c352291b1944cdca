// meshgate: command line, configuration, start-up. The work happens in Hub (src/hub.h).
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/config.h"
#include "core/log.h"
#include "hub.h"
#include "ws/ws_codec.h"

namespace {

#ifndef MESHGATE_DEFAULT_CONFIG
#define MESHGATE_DEFAULT_CONFIG "/etc/meshgate/meshgate.conf"
#endif
// Where this build installs the configuration (meson's sysconfdir): /etc in the packages.
const char* kDefaultConfig = MESHGATE_DEFAULT_CONFIG;

void usage(FILE* out) {
  std::fprintf(out,
               "usage: meshgate [-c FILE] [--check-config] [--version]\n"
               "  -c, --config FILE   configuration file (default %s)\n"
               "  --check-config      check the configuration file and exit (0 when valid)\n"
               "  --version           print the version and exit\n",
               kDefaultConfig);
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = kDefaultConfig;
  bool check_only = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if ((a == "-c" || a == "--config") && i + 1 < argc) {
      path = argv[++i];
    } else if (a == "--check-config" || a == "-t") {
      check_only = true;
    } else if (a == "--version" || a == "-v") {
      std::printf("meshgate %s (WebSocket codec: %s)\n", MESHGATE_VERSION, mg::ws_codec_name());
      return 0;
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "meshgate: unknown argument '%s'\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }

  mg::Config cfg;
  std::string error;
  if (!mg::load_config(path, cfg, error)) {
    std::fprintf(stderr, "meshgate: configuration error: %s\n", error.c_str());
    return 1;
  }
  if (check_only) {
    std::printf("meshgate: configuration %s is valid\n", path.c_str());
    return 0;
  }
  mg::LogLevel level = mg::LogLevel::Info;
  mg::parse_log_level(cfg.log_level, level);
  mg::log_set_level(level);
  if (!mg::log_open(cfg.log_file, error)) {
    std::fprintf(stderr, "meshgate: cannot open log file: %s\n", error.c_str());
    return 1;
  }
  std::signal(SIGPIPE, SIG_IGN);  // a peer that goes away is an error code, not a signal
  mg::Hub hub(std::move(cfg));
  return hub.run();
}
