// meshgate's command line tools, in the same binary as the server (so the static build has them):
//
//   meshgate token        make a connect token (HS256 JWT) from a secret file or a listener's secret
//   meshgate check-token  verify a token and print its claims
//   meshgate call         call a running node's control API (address and token from the config file)
//   meshgate publish      mesh.publish on a running node
//   meshgate queue inspect  what a state directory's disk queue holds, read-only, without a node
//
// Exit codes: 0 success, 1 refused (an invalid token, an API error) or, for `queue inspect`, a log
// found damaged, 2 usage, 3 the node could not be reached or answered something that is not the API.
#pragma once

#include <string>

namespace mg {

// True when argv[1] names a tool (then *exit_code is set and the server must not start).
bool cli_run(int argc, char** argv, int* exit_code);

// The tools, each with its arguments after the tool's name.
int cli_token(int argc, char** argv);
int cli_check_token(int argc, char** argv);
int cli_call(int argc, char** argv);
int cli_publish(int argc, char** argv);
int cli_queue(int argc, char** argv);

// Shared by the tools.
extern const char* const kCliDefaultConfig;  // /etc/meshgate/meshgate.conf
// "90", "90s", "15m", "1h", "7d" -> seconds (1 s .. 10 years); false when malformed.
bool cli_parse_duration(const char* s, long long& seconds);
// The whole file without trailing white space; false (and a message on stderr) when unreadable or empty.
bool cli_read_secret_file(const char* path, std::string& out);
// Reads stdin to its end, without trailing white space.
std::string cli_read_stdin();

}  // namespace mg
