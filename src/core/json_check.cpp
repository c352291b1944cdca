#include "core/json_check.h"

#include <vector>

namespace mg {

namespace {

class Checker {
 public:
  Checker(const char* s, size_t n) : s_(s), n_(n) {}

  bool run(std::string& why) {
    skip_ws();
    if (!value()) return report(why);
    skip_ws();
    if (i_ != n_) {
      err_ = "text after the JSON value";
      return report(why);
    }
    return true;
  }

 private:
  bool report(std::string& why) {
    why = "malformed JSON at byte " + std::to_string(i_) + ": " + err_;
    return false;
  }
  bool fail(const char* msg) {
    err_ = msg;
    return false;
  }
  void skip_ws() {
    while (i_ < n_ && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) i_++;
  }
  bool literal(const char* word, size_t len) {
    if (n_ - i_ < len || std::char_traits<char>::compare(s_ + i_, word, len) != 0) return fail("unexpected character");
    i_ += len;
    return true;
  }
  static bool digit(char c) { return c >= '0' && c <= '9'; }
  static bool hex(char c) { return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

  bool number() {
    if (s_[i_] == '-') i_++;
    if (i_ >= n_ || !digit(s_[i_])) return fail("a number needs digits");
    if (s_[i_] == '0') {
      i_++;
      if (i_ < n_ && digit(s_[i_])) return fail("numbers do not start with 0");
    } else {
      while (i_ < n_ && digit(s_[i_])) i_++;
    }
    if (i_ < n_ && s_[i_] == '.') {
      i_++;
      if (i_ >= n_ || !digit(s_[i_])) return fail("a fraction needs digits");
      while (i_ < n_ && digit(s_[i_])) i_++;
    }
    if (i_ < n_ && (s_[i_] == 'e' || s_[i_] == 'E')) {
      i_++;
      if (i_ < n_ && (s_[i_] == '+' || s_[i_] == '-')) i_++;
      if (i_ >= n_ || !digit(s_[i_])) return fail("an exponent needs digits");
      while (i_ < n_ && digit(s_[i_])) i_++;
    }
    return true;
  }

  bool string() {
    i_++;  // the opening quote
    while (i_ < n_) {
      unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        i_++;
        return true;
      }
      if (c < 0x20) return fail("a control character inside a string");
      if (c == '\\') {
        if (++i_ >= n_) break;
        char e = s_[i_];
        if (e == 'u') {
          if (n_ - i_ < 5 || !hex(s_[i_ + 1]) || !hex(s_[i_ + 2]) || !hex(s_[i_ + 3]) || !hex(s_[i_ + 4]))
            return fail("\\u needs four hex digits");
          if (std::char_traits<char>::compare(s_ + i_ + 1, "0000", 4) == 0)
            return fail("strings with \\u0000 are not supported (send such data with \"t\":\"binary\")");
          i_ += 5;
          continue;
        }
        if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' && e != 't')
          return fail("unknown escape in a string");
      }
      i_++;
    }
    return fail("unterminated string");
  }

  // Iterative over containers: `stack` holds '{' or '[' for each open one.
  bool value() {
    std::vector<char> stack;
    while (true) {
      skip_ws();
      if (i_ >= n_) return fail("unexpected end of input");
      char c = s_[i_];
      bool scalar_done = true;
      if (c == '{' || c == '[') {
        if (static_cast<int>(stack.size()) >= kMaxJsonDepth) return fail("nested too deeply");
        stack.push_back(c);
        i_++;
        skip_ws();
        if (i_ < n_ && s_[i_] == (c == '{' ? '}' : ']')) {
          i_++;
          stack.pop_back();
        } else {
          if (c == '{' && !key()) return false;
          continue;  // the first value of the container
        }
      } else if (c == '"') {
        if (!string()) return false;
      } else if (c == '-' || digit(c)) {
        if (!number()) return false;
      } else if (c == 't') {
        if (!literal("true", 4)) return false;
      } else if (c == 'f') {
        if (!literal("false", 5)) return false;
      } else if (c == 'n') {
        if (!literal("null", 4)) return false;
      } else {
        return fail("unexpected character");
      }
      (void)scalar_done;
      // After a value: close containers or move to the next element.
      while (true) {
        if (stack.empty()) return true;
        skip_ws();
        if (i_ >= n_) return fail("unexpected end of input");
        char open = stack.back();
        char d = s_[i_];
        if (d == ',') {
          i_++;
          if (open == '{' && !key()) return false;
          break;  // next element
        }
        if (d == (open == '{' ? '}' : ']')) {
          i_++;
          stack.pop_back();
          continue;
        }
        return fail(open == '{' ? "expected , or } in an object" : "expected , or ] in an array");
      }
    }
  }

  // A member name and its colon.
  bool key() {
    skip_ws();
    if (i_ >= n_ || s_[i_] != '"') return fail("expected a member name in quotes");
    if (!string()) return false;
    skip_ws();
    if (i_ >= n_ || s_[i_] != ':') return fail("expected : after a member name");
    i_++;
    return true;
  }

  const char* s_;
  size_t n_;
  size_t i_ = 0;
  const char* err_ = "";
};

}  // namespace

bool json_check(const char* data, size_t len, std::string& why) { return Checker(data, len).run(why); }

}  // namespace mg
