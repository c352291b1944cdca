// conn.call: remote operations on one client connection (PROTOCOL.md §5.3).
//
// parse_conn_call runs on the hub thread and rejects malformed calls (error 101) before anything
// crosses threads; the owning worker then applies the call (apply_conn_call, client/conn_ops.h).
#pragma once

#include <cjson/cJSON.h>

#include <string>

#include "client/conn_ops.h"

namespace mg {

// `fn` is the "f" field, `args` the "a" field (may be null). Returns false and sets `error`.
bool parse_conn_call(const cJSON* fn, const cJSON* args, ConnCall& out, std::string& error);

}  // namespace mg
