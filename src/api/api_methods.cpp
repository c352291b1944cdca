#include "api/api_methods.h"

#include <map>
#include <memory>
#include <vector>

#include "api/api_server.h"
#include "api/api_stats.h"
#include "api/conn_call.h"
#include "api/node_list.h"
#include "client/worker.h"
#include "core/base64.h"
#include "core/json_text.h"
#include "core/metrics.h"
#include "core/snowflake.h"
#include "cluster/backbone.h"

namespace mg {

namespace {

using Handler = void (*)(ApiCall&);

const cJSON* param(const ApiCall& c, const char* key) { return cJSON_GetObjectItemCaseSensitive(c.params, key); }

void invalid(ApiCall& c, const std::string& message) { c.reply(ApiResult::error(101, message)); }

// The JSON text of param `key` exactly as the caller wrote it (docs/decisions.md "Payloads"):
// 12345678901234567890 stays that, not cJSON's 1.2345678901234567e+19; 1E400 stays 1E400, not null;
// an object keeps its spacing and key order. The params text was checked as strict JSON before
// dispatch, so the span is a valid JSON value. cJSON's print is left only for a call without text.
std::string value_text(const ApiCall& c, const char* key, const cJSON* parsed) {
  const char* text = nullptr;
  size_t len = 0;
  if (c.params_text && json_member_text(c.params_text, c.params_len, key, text, len)) return std::string(text, len);
  return json_print(parsed);
}

// Reads "d" and "t" into a message framed for every client kind.
bool read_payload(ApiCall& c, std::shared_ptr<const OutMessage>& out) {
  const cJSON* d = param(c, "d");
  const cJSON* t = param(c, "t");
  bool binary = false;
  if (t && !cJSON_IsNull(t)) {
    if (!cJSON_IsString(t) || (std::string(t->valuestring) != "text" && std::string(t->valuestring) != "binary")) {
      invalid(c, "\"t\" must be \"text\" or \"binary\"");
      return false;
    }
    binary = std::string(t->valuestring) == "binary";
  }
  if (!d) {
    invalid(c, "\"d\" (the data to send) is missing");
    return false;
  }
  std::string payload;
  if (binary) {
    if (!cJSON_IsString(d) || !base64_decode(d->valuestring, payload)) {
      invalid(c, "\"d\" must be base64 when \"t\" is \"binary\"");
      return false;
    }
  } else if (cJSON_IsString(d)) {
    payload = d->valuestring;
  } else {
    payload = value_text(c, "d", d);
  }
  out = make_out_message(payload, binary);
  return true;
}

bool read_client(ApiCall& c, uint64_t& id) {
  const char* literal = nullptr;
  size_t literal_len = 0;
  if (c.params_text) json_member_text(c.params_text, c.params_len, "c", literal, literal_len);
  if (!json_client_id(param(c, "c"), literal, literal_len, id)) {
    invalid(c, "\"c\" must be a client id (a decimal string)");
    return false;
  }
  return true;
}

bool read_channel(ApiCall& c, std::string& channel) {
  const cJSON* ch = param(c, "c");
  if (!cJSON_IsString(ch) || !valid_channel_name(ch->valuestring)) {
    invalid(c, "\"c\" must be a channel name: 1..128 printable ASCII characters");
    return false;
  }
  channel = ch->valuestring;
  return true;
}

// The params as JSON text, to forward to another node: the text as sent when we have it (ids given
// as big numbers stay exact), else cJSON's.
std::string params_json(const ApiCall& c) {
  if (c.params_text) return std::string(c.params_text, c.params_len);
  return json_print(c.params);
}

// Runs `work` on the worker that owns `client` and replies with its result; a client of another
// node is the backbone's (unless this call came from another node: then it is not here).
void on_owner(ApiCall& c, const char* method, uint64_t client, int not_here_code, std::function<ApiResult(Worker&)> work) {
  if (c.host.workers().on_owner(client, std::move(work), c.reply)) return;
  Backbone* cluster = c.host.backbone();
  if (cluster && !c.local_only && snowflake_node(client) != static_cast<unsigned>(c.host.config().node_id)) {
    cluster->call(snowflake_node(client), method, params_json(c), not_here_code, c.reply);
    return;
  }
  c.reply(ApiResult::error(not_here_code, "client not connected"));
}

// A peer's answer to a counting fan-out: {"s":delivered,"f":failed} ("f" absent for channel.count).
// A failed call, or an answer of another shape, counts nothing.
FanoutCount peer_count(const ApiResult& r) {
  if (r.code != 0) return {};
  JsonPtr res = json_parse_strict(r.result.data(), r.result.size());
  const cJSON* f = cJSON_GetObjectItemCaseSensitive(res.get(), "f");
  int64_t ok = 0, failed = 0;
  if (!json_integer(cJSON_GetObjectItemCaseSensitive(res.get(), "s"), 0, kJsonMaxExactInt, ok) ||
      (f && !json_integer(f, 0, kJsonMaxExactInt, failed)))
    return {};
  return FanoutCount{static_cast<uint64_t>(ok), static_cast<uint64_t>(failed)};
}

// Runs a fan-out on this node's workers and, unless the call came from another node, on every
// alive node of the cluster (with `channel`, only on those that hold subscribers of it: a node left out
// would have counted 0); replies with the sum, built by `result`. With `local` false this node's
// workers are left out: they hold nothing for it (a publish to a channel none of them holds).
void cluster_fanout(ApiCall& c, const char* method, std::function<FanoutCount(Worker&)> op,
                    std::function<std::string(const FanoutCount&)> result, bool local = true,
                    const std::string* channel = nullptr) {
  Reply reply = c.reply;
  auto add = fanout_sum(2, [reply, result](const FanoutCount& n) { reply(ApiResult::ok(result(n))); });
  Backbone* cluster = c.local_only ? nullptr : c.host.backbone();
  std::string params = cluster ? params_json(c) : "";
  if (local) c.host.workers().fanout_sum(std::move(op), add);
  else add(FanoutCount{});
  if (!cluster) return add(FanoutCount{});
  cluster->fanout(method, params, [add](std::vector<ApiResult> answers) {
    std::vector<FanoutCount> counts;
    for (const ApiResult& a : answers) counts.push_back(peer_count(a));
    add(fanout_total(counts));
  }, channel);
}

// Publish and broadcast fan-out in /metrics (runs on the worker).
FanoutCount count_deliveries(FanoutCount n) {
  inc(metrics().publish_ok, n.ok);
  inc(metrics().publish_failed, n.failed);
  return n;
}

std::string fanout_result(const FanoutCount& n) {
  return "{\"s\":" + std::to_string(n.ok) + ",\"f\":" + std::to_string(n.failed) + "}";
}

// mesh.send's 401 message: why the client did not take the message.
const char* send_failure(SendResult r) {
  switch (r) {
    case SendResult::NotConnected: return "client not connected";
    case SendResult::Closing: return "send failed: the client's connection is closing";
    default: return "send failed: the client's output buffer is full";
  }
}

void mesh_send(ApiCall& c) {
  uint64_t id;
  std::shared_ptr<const OutMessage> msg;
  if (!read_client(c, id) || !read_payload(c, msg)) return;
  on_owner(c, "mesh.send", id, 401, [id, msg](Worker& w) {
    SendResult r = w.send(id, *msg);
    inc(metrics().sends[static_cast<int>(r)]);
    if (r == SendResult::Ok) return ApiResult::ok("{\"s\":true}");
    return ApiResult::error(401, send_failure(r));
  });
  if (!c.host.workers().owner(id) && !c.host.backbone()) inc(metrics().sends[static_cast<int>(SendResult::NotConnected)]);
}

void mesh_publish(ApiCall& c) {
  std::string channel;
  std::shared_ptr<const OutMessage> msg;
  if (!read_channel(c, channel) || !read_payload(c, msg)) return;
  inc(metrics().publishes);
  // A channel no worker holds is answered here: nothing to deliver, no trip to the workers.
  cluster_fanout(c, "mesh.publish", [channel, msg](Worker& w) { return count_deliveries(w.publish(channel, *msg)); },
                 fanout_result, c.host.channel_maybe_held(channel), &channel);
}

void mesh_broadcast(ApiCall& c) {
  std::shared_ptr<const OutMessage> msg;
  if (!read_payload(c, msg)) return;
  inc(metrics().publishes);
  cluster_fanout(c, "mesh.broadcast", [msg](Worker& w) { return count_deliveries(w.broadcast(*msg)); },
                 fanout_result);
}

void channel_count(ApiCall& c) {
  std::string channel;
  if (!read_channel(c, channel)) return;
  cluster_fanout(c, "channel.count", [channel](Worker& w) { return FanoutCount{w.channel_count(channel), 0}; },
                 [](const FanoutCount& n) { return "{\"s\":" + std::to_string(n.ok) + "}"; }, true, &channel);
}

void conn_call(ApiCall& c) {
  uint64_t id;
  if (!read_client(c, id)) return;
  auto call = std::make_shared<ConnCall>();
  std::string error;
  if (!parse_conn_call(param(c, "f"), param(c, "a"), *call, error)) return invalid(c, error);
  Backbone* cluster = c.host.backbone();
  if (call->fn == ConnCall::Fn::Subscribe && cluster && c.host.workers().owner(id)) {
    // The subscribe rule (docs/cluster.md "Interest routing"): answered only once every alive peer
    // knows this node holds the channel (or after call_timeout), so that a publish started anywhere
    // after the answer reaches the new subscriber. The worker's change reached the hub before its
    // answer (one mailbox), so the barrier covers it.
    Reply reply = c.reply;
    c.reply = [cluster, reply](const ApiResult& r) {
      if (r.code != 0) return reply(r);
      cluster->interest_barrier([reply, r] { reply(r); });
    };
  }
  on_owner(c, "conn.call", id, 301, [id, call](Worker& w) { return w.conn_call(id, *call); });
}

void conn_info(ApiCall& c) {
  uint64_t id;
  if (!read_client(c, id)) return;
  on_owner(c, "conn.info", id, 301, [id](Worker& w) { return w.conn_info(id); });
}

void node_list(ApiCall& c) { c.reply(ApiResult::ok(node_list_json(c.host))); }

void queue_pop(ApiCall& c) {
  const cJSON* t = param(c, "t");
  const cJSON* ack = param(c, "ack");
  int n = cJSON_IsArray(t) ? cJSON_GetArraySize(t) : 0;
  if (n < 1 || n > static_cast<int>(QueueHub::kMaxTopicsPerConsumer))
    return invalid(c, "\"t\" must be an array of 1..64 topic names");
  if (ack && !cJSON_IsBool(ack) && !cJSON_IsNull(ack)) return invalid(c, "\"ack\" must be true or false");
  std::vector<std::string> topics;
  const cJSON* item;
  cJSON_ArrayForEach(item, t) {
    if (!cJSON_IsString(item) || !*item->valuestring || std::string(item->valuestring).size() > 128)
      return invalid(c, "topic names are strings of 1..128 bytes");
    topics.emplace_back(item->valuestring);
  }
  std::string error;
  int code = c.host.queue().pop(c.ws, topics, cJSON_IsTrue(ack), error);
  c.reply(code ? ApiResult::error(code, error) : ApiResult::ok("{\"s\":true}"));
}

void queue_unpop(ApiCall& c) {
  int code = c.host.queue().unpop(c.ws);
  c.reply(code ? ApiResult::error(code, "cancel failed: this connection is not popping")
               : ApiResult::ok("{\"s\":true}"));
}

void queue_ack(ApiCall& c) {
  const cJSON* k = param(c, "k");
  if (!cJSON_IsArray(k)) return invalid(c, "\"k\" must be an array of event sequence numbers");
  std::vector<uint64_t> seqs;
  const cJSON* item;
  cJSON_ArrayForEach(item, k) {
    int64_t seq = 0;
    if (!json_integer(item, 0, kJsonMaxExactInt, seq))
      return invalid(c, "\"k\" must hold sequence numbers (integers from 0 to 2^53-1)");
    seqs.push_back(static_cast<uint64_t>(seq));
  }
  c.host.queue().ack(c.ws, seqs);
  c.reply(ApiResult::ok("{\"s\":true}"));
}

struct Method {
  Handler fn;
  bool ws_only;
  bool remote;  // another node may call it here: what the API forwards, nothing else
};

const std::map<std::string, Method>& methods() {
  static const std::map<std::string, Method> table = {
      {"mesh.send", {mesh_send, false, true}},
      {"mesh.publish", {mesh_publish, false, true}},
      {"mesh.broadcast", {mesh_broadcast, false, true}},
      {"channel.count", {channel_count, false, true}},
      {"conn.call", {conn_call, false, true}},
      {"conn.info", {conn_info, false, true}},
      {"node.list", {node_list, false, false}},
      {"queue.pop", {queue_pop, true, false}},
      {"queue.unpop", {queue_unpop, true, false}},
      {"queue.ack", {queue_ack, true, false}},
      {"node.stats", {api_node_stats, false, true}},
      {"channel.top", {api_channel_top, false, true}},
  };
  return table;
}

}  // namespace

void api_dispatch(const std::string& method, ApiCall call) {
  auto it = methods().find(method);
  if (it == methods().end()) return invalid(call, "unknown method \"" + method + "\"");
  if (it->second.ws_only && !call.ws) return invalid(call, method + " needs a /ws/v1 WebSocket connection");
  it->second.fn(call);
}

void api_dispatch_remote(const std::string& method, ApiCall call) {
  auto it = methods().find(method);
  if (it == methods().end() || !it->second.remote)
    return invalid(call, "method \"" + method + "\" cannot be called from another node");
  if (!cJSON_IsObject(call.params)) return invalid(call, "a call needs params");
  it->second.fn(call);
}

bool api_method_known(const std::string& method) { return methods().count(method) != 0; }

std::string api_method_for_path(const std::string& path) {
  if (path.rfind("/v1/", 0) != 0) return "";
  std::string rest = path.substr(4);
  size_t slash = rest.find('/');
  if (slash == std::string::npos || rest.find('/', slash + 1) != std::string::npos) return "";
  std::string name = rest.substr(0, slash) + "." + rest.substr(slash + 1);
  auto it = methods().find(name);
  if (it == methods().end() || it->second.ws_only || name == "node.list") return "";
  return name;
}

}  // namespace mg
