#include "client/conn_ops.h"

#include <algorithm>

#include "client/client_conn.h"
#include "client/worker.h"
#include "core/json_text.h"

namespace mg {

bool valid_channel_name(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return c >= 0x21 && c <= 0x7E; });
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
        bool have = conn.subscribed(ch) || std::find(fresh.begin(), fresh.end(), ch) != fresh.end();
        if (!have) fresh.push_back(ch);
      }
      if (conn.subscriptions().size() + fresh.size() > lim.max_channels)
        return ApiResult::error(301, "subscribing would exceed the limit of " + std::to_string(lim.max_channels) +
                                         " channels per connection");
      for (const std::string& ch : fresh) worker.subscribe(&conn, ch);
      break;
    }
    case ConnCall::Fn::Unsubscribe:
      for (const std::string& ch : call.channels) worker.unsubscribe(&conn, ch);  // not subscribed: nothing
      break;
    case ConnCall::Fn::Close:
      conn.close_with(call.code, call.reason);
      break;
  }
  return ApiResult::ok("{\"s\":true}");
}

ApiResult describe_conn(const ClientConn& conn) {
  std::string r = "{\"s\":true,\"x\":";
  r += conn.context().empty() ? "{}" : conn.context();
  r += ",\"ch\":[";
  const std::vector<SubSlot>& subs = conn.subscriptions();
  for (size_t i = 0; i < subs.size(); i++) {
    if (i) r += ',';
    json_append_string(r, subs[i].name());
  }
  r += "],\"remote_addr\":";
  json_append_string(r, conn.remote_addr());
  r += ",\"listener\":";
  json_append_string(r, conn.listener().name);
  r += ",\"since\":" + std::to_string(conn.since_ms()) + "}";
  return ApiResult::ok(std::move(r));
}

}  // namespace mg
