// meshgate token / meshgate check-token: connect tokens (PROTOCOL.md §3.3) from the command line.
// The secret comes from a file (never from the command line, where `ps` would show it) or from a
// listener of the configuration file.
#include <cjson/cJSON.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "client/connect_token.h"
#include "core/config.h"
#include "core/json_text.h"

namespace mg {

namespace {

const char* kTokenUsage =
    "usage: meshgate token (--secret-file FILE | [-c CONFIG] --listener NAME) [--uid UID] [--ch CHANNEL]...\n"
    "                      [--ctx JSON-OBJECT] [--ttl DURATION]\n"
    "  Prints a connect token (HS256 JWT) valid for DURATION (default 1h; s, m, h, d suffixes).\n";
const char* kCheckUsage =
    "usage: meshgate check-token (--secret-file FILE | [-c CONFIG] --listener NAME) [TOKEN | -]\n"
    "  Checks a connect token (read from standard input when not given) and prints its claims.\n"
    "  Exit code 0 when valid, 1 when refused.\n";

// Where the secrets come from, shared by both tools.
struct SecretSource {
  const char* secret_file = nullptr;
  const char* config = kCliDefaultConfig;
  const char* listener = nullptr;

  // Consumes argv[i] (and its value) when it is one of ours.
  bool take(int argc, char** argv, int& i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return false;
    if (a == "--secret-file") secret_file = argv[++i];
    else if (a == "-c" || a == "--config") config = argv[++i];
    else if (a == "--listener") listener = argv[++i];
    else return false;
    return true;
  }
  // The listener's token_secret then token_secret_previous, or the file's secret.
  bool load(std::vector<std::string>& secrets) const {
    if (secret_file) {
      std::string s;
      if (!cli_read_secret_file(secret_file, s)) return false;
      secrets.push_back(s);
      return true;
    }
    if (!listener) {
      std::fprintf(stderr, "meshgate: give --secret-file FILE or --listener NAME\n");
      return false;
    }
    Config cfg;
    std::string error;
    if (!load_config(config, cfg, error)) {
      std::fprintf(stderr, "meshgate: configuration error: %s\n", error.c_str());
      return false;
    }
    for (const ListenerConfig& l : cfg.listeners) {
      if (l.name != listener) continue;
      for (const std::string& s : l.token_secrets)
        if (!s.empty()) secrets.push_back(s);
      if (secrets.empty()) std::fprintf(stderr, "meshgate: [listener.%s] has no token_secret\n", listener);
      return !secrets.empty();
    }
    std::fprintf(stderr, "meshgate: %s has no [listener.%s]\n", config, listener);
    return false;
  }
};

int usage_error(const char* usage, const std::string& why) {
  std::fprintf(stderr, "meshgate: %s\n%s", why.c_str(), usage);
  return 2;
}

}  // namespace

int cli_token(int argc, char** argv) {
  SecretSource source;
  std::string uid, ctx;
  std::vector<std::string> channels;
  long long ttl = 3600;
  for (int i = 0; i < argc; i++) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") return std::fputs(kTokenUsage, stdout), 0;
    if (source.take(argc, argv, i)) continue;
    if (i + 1 >= argc) return usage_error(kTokenUsage, "unknown argument or missing value: " + a);
    const char* v = argv[++i];
    if (a == "--uid") uid = v;
    else if (a == "--ch") channels.emplace_back(v);
    else if (a == "--ctx") ctx = v;
    else if (a == "--ttl") {
      if (!cli_parse_duration(v, ttl)) return usage_error(kTokenUsage, std::string("bad --ttl ") + v + " (e.g. 90s, 15m, 1h, 7d)");
    } else {
      return usage_error(kTokenUsage, "unknown argument " + a);
    }
  }
  std::vector<std::string> secrets;
  if (!source.load(secrets)) return 2;
  long long now = static_cast<long long>(std::time(nullptr));
  std::string claims = "{\"exp\":" + std::to_string(now + ttl) + ",\"iat\":" + std::to_string(now);
  if (!uid.empty()) {
    claims += ",\"uid\":";
    json_append_string(claims, uid);
  }
  if (!channels.empty()) {
    claims += ",\"ch\":[";
    for (size_t i = 0; i < channels.size(); i++) {
      if (i) claims += ',';
      json_append_string(claims, channels[i]);
    }
    claims += ']';
  }
  if (!ctx.empty()) {
    JsonPtr doc(cJSON_Parse(ctx.c_str()));
    if (!cJSON_IsObject(doc.get())) return usage_error(kTokenUsage, "--ctx must be a JSON object");
    claims += ",\"ctx\":" + json_print(doc.get());
  }
  claims += '}';
  std::printf("%s\n", sign_connect_token(claims, secrets.front()).c_str());
  return 0;
}

int cli_check_token(int argc, char** argv) {
  SecretSource source;
  std::string token;
  bool have_token = false;
  for (int i = 0; i < argc; i++) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") return std::fputs(kCheckUsage, stdout), 0;
    if (source.take(argc, argv, i)) continue;
    if ((a.empty() || a[0] != '-' || a == "-") && !have_token) {
      token = a;
      have_token = true;
    } else {
      return usage_error(kCheckUsage, "unknown argument " + a);
    }
  }
  if (!have_token || token == "-") token = cli_read_stdin();
  std::vector<std::string> secrets;
  if (!source.load(secrets)) return 2;
  ConnectClaims claims;
  long long now = static_cast<long long>(std::time(nullptr));
  std::string why = verify_connect_token(token, secrets, now, TokenLimits{}, claims);
  if (!why.empty()) {
    std::fprintf(stderr, "meshgate: token refused: %s\n", why.c_str());
    return 1;
  }
  std::string out = "{\"valid\":true,\"uid\":";
  json_append_string(out, claims.uid);
  out += ",\"ch\":[";
  for (size_t i = 0; i < claims.channels.size(); i++) {
    if (i) out += ',';
    json_append_string(out, claims.channels[i]);
  }
  out += "],\"ctx\":" + (claims.context.empty() ? std::string("{}") : claims.context) +
         ",\"exp\":" + std::to_string(claims.exp) + ",\"expires_in\":" + std::to_string(claims.exp - now) + "}";
  std::printf("%s\n", out.c_str());
  return 0;
}

}  // namespace mg
