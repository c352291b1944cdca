// UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
#pragma once

#include <cstddef>

namespace mg {

bool is_valid_utf8(const char* data, size_t len);

}  // namespace mg
