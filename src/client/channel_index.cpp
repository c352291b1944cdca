#include "client/channel_index.h"

#include <algorithm>

namespace mg {

void keep_largest(std::vector<std::pair<std::string, uint64_t>>& counts, size_t n) {
  const auto larger = [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; };
  if (counts.size() > n) {
    std::partial_sort(counts.begin(), counts.begin() + static_cast<std::ptrdiff_t>(n), counts.end(), larger);
    counts.resize(n);
  } else {
    std::sort(counts.begin(), counts.end(), larger);
  }
}

}  // namespace mg
