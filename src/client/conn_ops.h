// Operations the API asks of one connection (conn.call), already checked for shape on the hub
// thread (api/conn_call.h); the owning worker applies them here and checks the per-connection limits
// (error 301), applying a call entirely or not at all. And what conn.info tells of one.
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

// Channel names: 1..128 bytes of printable ASCII (0x21..0x7E). Checked wherever a name comes in
// (conn.call, connect tokens).
bool valid_channel_name(const std::string& name);

class ClientConn;
class Worker;
ApiResult apply_conn_call(Worker& worker, ClientConn& conn, const ConnCall& call);

// conn.info's answer for an open connection: {"s":true,"x":context,"ch":[channels in the order it
// joined them],"remote_addr":..,"listener":..,"since":ms}. The context is stored as JSON text, put
// in as it is ({} when none).
ApiResult describe_conn(const ClientConn& conn);

}  // namespace mg
