#include "core/log_text.h"

#include "core/utf8.h"

namespace mg {

namespace {

std::string escape(std::string_view text, bool backslash) {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    const size_t n = utf8_sequence_length(text.data() + i, text.size() - i);
    if (n > 1) {  // a valid multi-byte character
      out.append(text.data() + i, n);
      i += n;
      continue;
    }
    if (n == 1 && c >= 0x20 && c != 0x7F && (c != '\\' || !backslash)) {
      out += static_cast<char>(c);
    } else if (c == '\\') {
      out += "\\\\";
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
    i++;
  }
  return out;
}

}  // namespace

std::string log_safe(std::string_view text) { return escape(text, true); }

std::string log_safe_line(std::string_view message) { return escape(message, false); }

}  // namespace mg
