// meshgate: command line, configuration, start-up. The work happens in Hub (src/hub.h).
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/cli.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics_process.h"
#include "hub.h"
#include "start_check.h"
#include "ws/ws_codec.h"

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: meshgate [-c FILE] [--check-config] [--version]\n"
               "       meshgate token|check-token|call|publish|queue ...   (each with --help)\n"
               "  -c, --config FILE   configuration file (default %s)\n"
               "  --check-config      check the configuration file and exit (0 when valid)\n"
               "  --version           print the version and exit\n"
               "tools:\n"
               "  token         make a connect token:    meshgate token --secret-file F --uid U --ch room:1 --ttl 1h\n"
               "  check-token   check a connect token:   meshgate check-token --secret-file F TOKEN\n"
               "  call          call a running node:     meshgate call node.stats '{}'\n"
               "  publish       publish to a channel:    meshgate publish room:1 hello\n"
               "  queue         the disk queue, offline: meshgate queue inspect /var/lib/meshgate\n",
               mg::kCliDefaultConfig);
}

}  // namespace

int main(int argc, char** argv) {
  int tool_rc = 0;
  if (mg::cli_run(argc, argv, &tool_rc)) return tool_rc;
  mg::process_stats_start();
  std::string path = mg::kCliDefaultConfig;
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
    std::fprintf(stderr, "%smeshgate: configuration error: %s\n", mg::log_stderr_prefix(mg::LogLevel::Error).c_str(),
                 error.c_str());
    return 1;
  }
  error = mg::check_for_start(cfg);
  if (!error.empty()) {
    std::fprintf(stderr, "meshgate: configuration error: %s\n", error.c_str());
    return 1;
  }
  if (check_only) {
    std::printf("meshgate: configuration %s is valid\n", path.c_str());
    return 0;
  }
  if (!mg::log_configure(cfg.log_level, cfg.log_format, cfg.log_file, error)) {
    std::fprintf(stderr, "%smeshgate: cannot open log file: %s\n", mg::log_stderr_prefix(mg::LogLevel::Error).c_str(),
                 error.c_str());
    return 1;
  }
  std::signal(SIGPIPE, SIG_IGN);  // a peer that goes away is an error code, not a signal
  mg::Hub hub(std::move(cfg));
  return hub.run();
}
