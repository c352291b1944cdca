// The control API's methods (PROTOCOL.md §5.3), dispatched through one table by name. The same
// handlers serve HTTP (POST /v1/<group>/<name>) and /ws/v1; queue.* need a WebSocket connection.
//
// A handler checks its params on the hub thread (error 101), then hands the work to the worker that
// owns the connection, or to every worker for fan-out, and answers when they report back. `reply` is
// always called exactly once, on the hub thread.
#pragma once

#include <cjson/cJSON.h>

#include <functional>
#include <string>

#include "api/api_host.h"
#include "core/call_result.h"

namespace mg {

class ApiConn;

struct ApiCall {
  ApiHost& host;
  ApiConn* ws;           // the /ws/v1 connection, or nullptr over HTTP
  const cJSON* params;   // an object
  Reply reply;
  const char* params_text = nullptr;  // the raw JSON text of params, valid during api_dispatch only
  size_t params_len = 0;
  bool local_only = false;  // called by another node: act on this node only, forward nothing
};

// Runs `method`. Unknown methods, and queue.* over HTTP, are answered with 101 (over HTTP the
// caller maps unknown paths to 404 first, see api_method_for_path).
void api_dispatch(const std::string& method, ApiCall call);

// Runs `method` for another node (call.local_only set). A method the table does not mark remote,
// and a call without params, are answered with 101.
void api_dispatch_remote(const std::string& method, ApiCall call);

// True for a method name of the handler table. Metrics label every other name "unknown": names come
// from callers, and one series per name would let them grow /metrics without bound.
bool api_method_known(const std::string& method);

// The method for an HTTP path such as /v1/mesh/send, or "" when none is served over HTTP there.
std::string api_method_for_path(const std::string& path);

}  // namespace mg
