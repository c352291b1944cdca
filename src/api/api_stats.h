// The read-only methods an operator's view needs (docs/api.md "Node statistics"): node.stats and
// channel.top. The dashboard (src/dashboard/) reads them like any other API user does.
//
// Both act on one node: this one, or the node named by the optional param "node" (an alive mesh
// member; the call is forwarded to it and answered with its result).
#pragma once

#include "api/api_methods.h"

namespace mg {

// {} or {"node":N} -> {"node","version","name","uptime_s","draining","connections","listeners":[...],"publishes",
// "deliveries":{"ok","failed"},"sends":{...},"refused":{reason:n},"closes":{code:n},"output_buffer_closes",
// "protocol_errors","queue":[{"topic","consumers","pending","bytes","unacked","delivered","dropped"}],
// "process":{"resident_bytes","open_fds","max_fds","cpu_seconds","threads"}}
void api_node_stats(ApiCall& c);
// {"n":1..100 (default 10)} or with "node" -> {"channels":[{"c":name,"s":subscribers}, ...]} largest first.
void api_channel_top(ApiCall& c);

}  // namespace mg
