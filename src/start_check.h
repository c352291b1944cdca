// What would stop a configuration from starting, or make it unsafe to run, beyond what parsing
// checks (core/config.h): files it must read or write, secrets too short to protect anything, a
// node no client could connect to. `meshgate --check-config` and start-up run the same checks, so
// a file the checker passes starts (ports in use are the one thing only binding can tell).
#pragma once

#include <string>

#include "core/config.h"

namespace mg {

// The shortest secret or token accepted (bytes): [mesh] secret, [api] token, token_secret(s).
constexpr size_t kMinSecretBytes = 16;

// "" when `cfg` can start; otherwise "FILE: [section] key: what is wrong" for the first problem.
std::string check_for_start(const Config& cfg);

}  // namespace mg
