// Operations the API asks of one connection (conn.call), already checked for shape on the hub
// thread; the owning worker applies them and checks the limits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mg {

struct ConnCall {
  enum class Fn { SetContextValue, SetContext, Subscribe, Unsubscribe, Close } fn;
  std::string key;                    // set_context_value
  std::string value_json;             // set_context_value: the value; set_context: the object
  std::vector<std::string> channels;  // subscribe / unsubscribe
  int code = 1000;                    // close
  std::string reason;                 // close
};

// What a call comes back with, on the hub thread: code 0 is success, else an API error code.
struct ApiResult {
  int code = 0;
  std::string message;  // when code != 0
  std::string result;   // JSON text of "r" when code == 0
  static ApiResult ok(std::string r) { return ApiResult{0, "", std::move(r)}; }
  static ApiResult error(int c, std::string m) { return ApiResult{c, std::move(m), ""}; }
};

}  // namespace mg
