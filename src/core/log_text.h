// Text from a peer (a client, a stranger on the mesh port, an HTTP request, an OpenSSL error) made
// safe to put into one log line: it cannot end the line, start a forged one, move the cursor of a
// terminal that shows the log, or make a JSON log line invalid.
//
//   log_safe("a\nb\\c\xff")  ->  a\x0ab\\c\xff      (the escapes as text: backslash, 'x', two hex digits)
//
// Escaped: every control byte (00..1F, 7F), each byte that is not part of valid UTF-8, and the
// backslash itself (as \\), so an escaped line reads back unambiguously. Everything else, valid
// UTF-8 included, is kept.
#pragma once

#include <string>
#include <string_view>

namespace mg {

std::string log_safe(std::string_view text);

// The last line of defence, applied by log_write to every whole message: the same escapes as
// log_safe but the backslash is kept (the message is ours; only a call site that forgot log_safe
// could have let a control byte or invalid UTF-8 in).
std::string log_safe_line(std::string_view message);

}  // namespace mg
