#include "api/conn_call.h"

#include "core/json_text.h"

namespace mg {

namespace {

// A close code a server may send (RFC 6455 §7.4): read as an integer first, so 1e300 or 1000.5
// is refused rather than cast.
bool read_close_code(const cJSON* v, int& out) {
  int64_t code = 0;
  if (!json_integer(v, 1000, 4999, code)) return false;
  if (!((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || code >= 3000)) return false;
  out = static_cast<int>(code);
  return true;
}

bool parse_channels(const cJSON* args, std::vector<std::string>& out, std::string& error) {
  if (!cJSON_IsArray(args) || cJSON_GetArraySize(args) == 0) {
    error = "\"a\" must be a non-empty array of channel names";
    return false;
  }
  const cJSON* item;
  cJSON_ArrayForEach(item, args) {
    if (!cJSON_IsString(item) || !valid_channel_name(item->valuestring)) {
      error = "channel names are strings of 1..128 printable ASCII characters";
      return false;
    }
    out.emplace_back(item->valuestring);
  }
  return true;
}

}  // namespace

bool parse_conn_call(const cJSON* fn, const cJSON* args, ConnCall& out, std::string& error) {
  if (!cJSON_IsString(fn)) {
    error = "\"f\" must be a function name";
    return false;
  }
  std::string f = fn->valuestring;
  if (args && !cJSON_IsArray(args)) {
    error = "\"a\" must be an array";
    return false;
  }
  int argc = args ? cJSON_GetArraySize(args) : 0;
  if (f == "set_context_value") {
    out.fn = ConnCall::Fn::SetContextValue;
    const cJSON* key = argc == 2 ? cJSON_GetArrayItem(args, 0) : nullptr;
    if (!cJSON_IsString(key) || !*key->valuestring) {
      error = "set_context_value takes [key, value] with a non-empty string key";
      return false;
    }
    out.key = key->valuestring;
    out.value_json = json_print(cJSON_GetArrayItem(args, 1));
  } else if (f == "set_context") {
    out.fn = ConnCall::Fn::SetContext;
    const cJSON* obj = argc == 1 ? cJSON_GetArrayItem(args, 0) : nullptr;
    if (!cJSON_IsObject(obj)) {
      error = "set_context takes [object]";
      return false;
    }
    out.value_json = json_print(obj);
  } else if (f == "subscribe" || f == "unsubscribe") {
    out.fn = f == "subscribe" ? ConnCall::Fn::Subscribe : ConnCall::Fn::Unsubscribe;
    if (!parse_channels(args, out.channels, error)) return false;
  } else if (f == "close") {
    out.fn = ConnCall::Fn::Close;
    const cJSON* code = argc >= 1 ? cJSON_GetArrayItem(args, 0) : nullptr;
    const cJSON* reason = argc >= 2 ? cJSON_GetArrayItem(args, 1) : nullptr;
    int code_value = 0;
    if (argc > 2 || (code && !cJSON_IsNull(code) && !read_close_code(code, code_value))) {
      error = "close takes [code?, reason?]: code 1000-1003, 1007-1011 or 3000-4999";
      return false;
    }
    if (reason && !(cJSON_IsString(reason) && std::string(reason->valuestring).size() <= 123)) {
      error = "close reason must be a string of at most 123 bytes";
      return false;
    }
    if (code && !cJSON_IsNull(code)) out.code = code_value;
    if (reason) out.reason = reason->valuestring;
  } else {
    error = "unknown function \"" + f + "\" (set_context_value, set_context, subscribe, unsubscribe, close)";
    return false;
  }
  return true;
}

}  // namespace mg
