// meshgate call / meshgate publish: the control API of a running node from the command line. The
// node's address and API token are read from its configuration file ([api] bind, port, token), so
// on the node itself `meshgate call node.stats` just works; --api and $MESHGATE_API_TOKEN override.
#include <cjson/cJSON.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/cli_http.h"
#include "core/addr.h"
#include "core/config.h"
#include "core/json_text.h"

namespace mg {

namespace {

const char* kCallUsage =
    "usage: meshgate call [-c CONFIG] [--api HOST:PORT] [--timeout SECONDS] METHOD [PARAMS-JSON | -]\n"
    "  Calls METHOD (e.g. node.stats, conn.info, mesh.send; see docs/api.md) on the node of CONFIG and\n"
    "  prints the result. The API token comes from CONFIG or $MESHGATE_API_TOKEN.\n";
const char* kPublishUsage =
    "usage: meshgate publish [-c CONFIG] [--api HOST:PORT] [--timeout SECONDS] CHANNEL DATA|-\n"
    "  Publishes DATA (text; - reads standard input) to every subscriber of CHANNEL in the cluster and\n"
    "  prints {\"s\":delivered,\"f\":failed}.\n";

struct Target {
  std::string config;
  std::string api;  // HOST:PORT given with --api
  int timeout_s = 10;
};

// Consumes a shared option at argv[i]; -1 on a bad value, 1 when taken, 0 when not ours.
int take_option(int argc, char** argv, int& i, Target& t) {
  std::string a = argv[i];
  if (a != "-c" && a != "--config" && a != "--api" && a != "--timeout") return 0;
  if (i + 1 >= argc) return -1;
  const char* v = argv[++i];
  if (a == "--api") t.api = v;
  else if (a == "--timeout") t.timeout_s = std::atoi(v);
  else t.config = v;
  return t.timeout_s > 0 ? 1 : -1;
}

// A listener on every address is reached on loopback.
std::string connect_host(const std::string& bind) {
  if (bind.empty() || bind == "0.0.0.0" || bind == "*") return "127.0.0.1";
  if (bind == "::" || bind == "[::]") return "::1";
  return bind;
}

// Calls `method` with `params` (JSON text) and prints the result; the exit code of the tool.
int run_call(const Target& t, const std::string& method, const std::string& params) {
  std::string host, token, error;
  int port = 0;
  if (t.api.empty() || !t.config.empty()) {
    Config cfg;
    std::string path = t.config.empty() ? kCliDefaultConfig : t.config;
    if (!load_config(path, cfg, error)) {
      std::fprintf(stderr, "meshgate: configuration error: %s\n", error.c_str());
      return 2;
    }
    host = connect_host(cfg.api_bind);
    port = cfg.api_port;
    std::vector<ApiToken> tokens = all_api_tokens(cfg);  // [api] token, else the first of [api] tokens
    if (!tokens.empty()) token = tokens.front().secret;
  }
  if (!t.api.empty() && !split_host_port(t.api, host, port)) {
    std::fprintf(stderr, "meshgate: --api wants HOST:PORT, not %s\n", t.api.c_str());
    return 2;
  }
  if (const char* env = std::getenv("MESHGATE_API_TOKEN")) token = env;
  if (method.rfind("queue.", 0) == 0) {
    std::fprintf(stderr, "meshgate: %s needs a /ws/v1 WebSocket connection, not one HTTP call\n", method.c_str());
    return 2;
  }
  size_t dot = method.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == method.size() || method.find('/') != std::string::npos) {
    std::fprintf(stderr, "meshgate: a method is GROUP.NAME (e.g. node.stats), not %s\n", method.c_str());
    return 2;
  }
  bool list = method == "node.list";
  std::string path = list ? "/v1/nodes" : "/v1/" + method.substr(0, dot) + "/" + method.substr(dot + 1);
  CliHttpResponse r;
  if (!cli_http(host, port, list ? "GET" : "POST", path, params, token, t.timeout_s, r, error)) {
    std::fprintf(stderr, "meshgate: %s\n", error.c_str());
    return 3;
  }
  JsonPtr doc(cJSON_Parse(r.body.c_str()));
  const cJSON* e = cJSON_GetObjectItemCaseSensitive(doc.get(), "E");
  if (!cJSON_IsObject(doc.get()) || !e) {
    std::fprintf(stderr, "meshgate: HTTP %d with a body that is not an API answer: %.200s\n", r.status, r.body.c_str());
    return 3;
  }
  if (!cJSON_IsNull(e)) {
    const cJSON* c = cJSON_GetObjectItemCaseSensitive(e, "c");
    const cJSON* m = cJSON_GetObjectItemCaseSensitive(e, "m");
    std::fprintf(stderr, "meshgate: error %d: %s (HTTP %d)\n", cJSON_IsNumber(c) ? c->valueint : 0,
                 cJSON_IsString(m) ? m->valuestring : "?", r.status);
    return 1;
  }
  std::printf("%s\n", json_print(cJSON_GetObjectItemCaseSensitive(doc.get(), "r")).c_str());
  return 0;
}

int usage_error(const char* usage, const std::string& why) {
  std::fprintf(stderr, "meshgate: %s\n%s", why.c_str(), usage);
  return 2;
}

// Splits argv into shared options and positional arguments.
int parse(int argc, char** argv, const char* usage, Target& t, std::vector<std::string>& args) {
  for (int i = 0; i < argc; i++) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") return std::fputs(usage, stdout), 0;
    int taken = take_option(argc, argv, i, t);
    if (taken < 0) return usage_error(usage, "missing or bad value for " + a);
    if (taken == 0) {
      if (a.size() > 1 && a[0] == '-') return usage_error(usage, "unknown option " + a);
      args.push_back(a);
    }
  }
  return -1;
}

}  // namespace

int cli_call(int argc, char** argv) {
  Target t;
  std::vector<std::string> args;
  int rc = parse(argc, argv, kCallUsage, t, args);
  if (rc >= 0) return rc;
  if (args.empty() || args.size() > 2) return usage_error(kCallUsage, "give METHOD and optionally PARAMS-JSON");
  std::string params = args.size() == 2 ? (args[1] == "-" ? cli_read_stdin() : args[1]) : "{}";
  return run_call(t, args[0], params);
}

int cli_publish(int argc, char** argv) {
  Target t;
  std::vector<std::string> args;
  int rc = parse(argc, argv, kPublishUsage, t, args);
  if (rc >= 0) return rc;
  if (args.size() != 2) return usage_error(kPublishUsage, "give CHANNEL and DATA");
  std::string params = "{\"c\":";
  json_append_string(params, args[0]);
  params += ",\"d\":";
  json_append_string(params, args[1] == "-" ? cli_read_stdin() : args[1]);
  return run_call(t, "mesh.publish", params + "}");
}

}  // namespace mg
