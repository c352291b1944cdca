// A strict JSON syntax check (RFC 8259), run before cJSON parses untrusted text.
//
// cJSON is lenient where a gateway must not be: it accepts leading zeros (`01`), control bytes
// between tokens, text after the value, and it silently cuts strings at an escaped NUL. This check
// rejects all of those with a message that says what and where, without building anything.
// Nesting is limited to kMaxJsonDepth levels (deeper input is refused, not recursed into).
#pragma once

#include <cstddef>
#include <string>

namespace mg {

constexpr int kMaxJsonDepth = 128;

// True when [data, data+len) is exactly one JSON value, optionally surrounded by white space, with
// no string containing \u0000. Otherwise false with `why` set. Does not check UTF-8.
bool json_check(const char* data, size_t len, std::string& why);

}  // namespace mg
