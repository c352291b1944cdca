// Operations the API asks of one connection (conn.call), already checked for shape on the hub
// thread; the owning worker applies them and checks the limits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/call_result.h"

namespace mg {

struct ConnCall {
  enum class Fn { SetContextValue, SetContext, Subscribe, Unsubscribe, Close } fn;
  std::string key;                    // set_context_value
  std::string value_json;             // set_context_value: the value; set_context: the object
  std::vector<std::string> channels;  // subscribe / unsubscribe
  int code = 1000;                    // close
  std::string reason;                 // close
};

}  // namespace mg
