#include "api/conn_call.h"

#include <algorithm>

#include "core/json_text.h"
#include "worker/client_conn.h"

namespace mg {

bool valid_channel_name(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return c >= 0x21 && c <= 0x7E; });
}

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

namespace {

// Checks a context object against the limits and stores it. Returns false with a 301 message.
bool store_context(ClientConn& conn, const WorkerLimits& lim, cJSON* obj, std::string& error) {
  int keys = cJSON_GetArraySize(obj);
  if (static_cast<uint32_t>(keys) > lim.max_context_keys) {
    error = "context would have " + std::to_string(keys) + " keys, over the limit of " + std::to_string(lim.max_context_keys);
    return false;
  }
  std::string text = keys == 0 ? "" : json_print(obj);
  if (text.size() > lim.max_context_bytes) {
    error = "context would be " + std::to_string(text.size()) + " bytes, over the limit of " +
            std::to_string(lim.max_context_bytes);
    return false;
  }
  conn.set_context(std::move(text));
  return true;
}

}  // namespace

ApiResult apply_conn_call(Worker& worker, ClientConn& conn, const ConnCall& call) {
  const WorkerLimits& lim = worker.limits();
  std::string error;
  switch (call.fn) {
    case ConnCall::Fn::SetContextValue: {
      JsonPtr ctx(cJSON_Parse(conn.context().empty() ? "{}" : conn.context().c_str()));
      JsonPtr value(cJSON_Parse(call.value_json.c_str()));
      if (!ctx || !value) return ApiResult::error(301, "context could not be updated");
      if (cJSON_GetObjectItemCaseSensitive(ctx.get(), call.key.c_str()))
        cJSON_ReplaceItemInObjectCaseSensitive(ctx.get(), call.key.c_str(), value.release());
      else
        cJSON_AddItemToObject(ctx.get(), call.key.c_str(), value.release());
      if (!store_context(conn, lim, ctx.get(), error)) return ApiResult::error(301, error);
      break;
    }
    case ConnCall::Fn::SetContext: {
      JsonPtr obj(cJSON_Parse(call.value_json.c_str()));
      if (!obj) return ApiResult::error(301, "context could not be updated");
      if (!store_context(conn, lim, obj.get(), error)) return ApiResult::error(301, error);
      break;
    }
    case ConnCall::Fn::Subscribe: {
      std::vector<std::string> fresh;
      for (const std::string& ch : call.channels) {
        bool have = std::find(conn.channels().begin(), conn.channels().end(), ch) != conn.channels().end() ||
                    std::find(fresh.begin(), fresh.end(), ch) != fresh.end();
        if (!have) fresh.push_back(ch);
      }
      if (conn.channels().size() + fresh.size() > lim.max_channels)
        return ApiResult::error(301, "subscribing would exceed the limit of " + std::to_string(lim.max_channels) +
                                         " channels per connection");
      for (std::string& ch : fresh) {
        worker.subscribe(&conn, ch);
        conn.channels().push_back(std::move(ch));
      }
      break;
    }
    case ConnCall::Fn::Unsubscribe:
      for (const std::string& ch : call.channels) {
        auto it = std::find(conn.channels().begin(), conn.channels().end(), ch);
        if (it == conn.channels().end()) continue;
        worker.unsubscribe(&conn, ch);
        conn.channels().erase(it);
      }
      break;
    case ConnCall::Fn::Close:
      conn.close_with(call.code, call.reason);
      break;
  }
  return ApiResult::ok("{\"s\":true}");
}

}  // namespace mg
