#include "cli/cli.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

namespace mg {

bool cli_run(int argc, char** argv, int* exit_code) {
  if (argc < 2) return false;
  struct Tool { const char* name; int (*run)(int, char**); };
  static const Tool tools[] = {
      {"token", cli_token}, {"check-token", cli_check_token}, {"call", cli_call}, {"publish", cli_publish},
      {"queue", cli_queue}};
  for (const Tool& t : tools) {
    if (std::strcmp(argv[1], t.name) == 0) {
      *exit_code = t.run(argc - 2, argv + 2);
      return true;
    }
  }
  return false;
}

#ifndef MESHGATE_DEFAULT_CONFIG
#define MESHGATE_DEFAULT_CONFIG "/etc/meshgate/meshgate.conf"
#endif
// Where this build installs the configuration (meson's sysconfdir): /etc in the packages.
const char* const kCliDefaultConfig = MESHGATE_DEFAULT_CONFIG;

namespace {
void trim_right(std::string& s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
}
}  // namespace

bool cli_parse_duration(const char* s, long long& seconds) {
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s, &end, 10);
  if (end == s || errno != 0 || v <= 0) return false;
  long long unit = 1;
  if (*end == 's') unit = 1, end++;
  else if (*end == 'm') unit = 60, end++;
  else if (*end == 'h') unit = 3600, end++;
  else if (*end == 'd') unit = 86400, end++;
  if (*end != '\0') return false;
  const long long ten_years = 10LL * 366 * 86400;
  if (v > ten_years / unit) return false;
  seconds = v * unit;
  return true;
}

bool cli_read_secret_file(const char* path, std::string& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "meshgate: cannot read the secret file %s: %s\n", path, std::strerror(errno));
    return false;
  }
  out.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  trim_right(out);
  if (out.empty()) {
    std::fprintf(stderr, "meshgate: the secret file %s is empty\n", path);
    return false;
  }
  return true;
}

std::string cli_read_stdin() {
  std::ostringstream o;
  o << std::cin.rdbuf();
  std::string s = o.str();
  trim_right(s);
  return s;
}

}  // namespace mg