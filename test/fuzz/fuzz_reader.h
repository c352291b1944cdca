// A fuzz input read front to back as a script: a byte at a time or a run of bytes. Past the end it
// reads zeros (byte) or nothing (bytes), so a script cut anywhere is still a script.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

namespace fuzzin {

struct Reader {
  const uint8_t* p;
  size_t n;
  size_t i = 0;
  bool more() const { return i < n; }
  uint8_t byte() { return i < n ? p[i++] : 0; }
  std::string bytes(size_t k) {
    k = std::min(k, n - i);
    std::string s(reinterpret_cast<const char*>(p + i), k);
    i += k;
    return s;
  }
};

}  // namespace fuzzin
