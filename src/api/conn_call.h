// conn.call: remote operations on one client connection (PROTOCOL.md §5.3).
//
// parse_conn_call runs on the hub thread and rejects malformed calls (error 101) before anything
// crosses threads; apply_conn_call runs on the connection's worker and enforces the per-connection
// limits (error 301), applying a call entirely or not at all.
#pragma once

#include <cjson/cJSON.h>

#include <string>

#include "worker/conn_ops.h"
#include "worker/worker.h"

namespace mg {

class ClientConn;

// Channel names: 1..128 bytes of printable ASCII (0x21..0x7E).
bool valid_channel_name(const std::string& name);

// `fn` is the "f" field, `args` the "a" field (may be null). Returns false and sets `error`.
bool parse_conn_call(const cJSON* fn, const cJSON* args, ConnCall& out, std::string& error);

ApiResult apply_conn_call(Worker& worker, ClientConn& conn, const ConnCall& call);

}  // namespace mg
