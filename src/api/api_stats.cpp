#include "api/api_stats.h"

#include <algorithm>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "client/channel_index.h"
#include "client/worker.h"
#include "core/json_text.h"
#include "core/metrics.h"
#include "core/metrics_process.h"
#include "core/node_info.h"
#include "cluster/backbone.h"
#include "queue/queue_hub.h"

namespace mg {

namespace {

// Channels each worker reports to channel.top: enough that the merged sums are exact unless one
// worker holds more channels than this (then the smallest of that worker's are left out).
constexpr size_t kChannelsPerWorker = 10000;
constexpr int64_t kMaxTop = 100;

const cJSON* param(const ApiCall& c, const char* key) { return cJSON_GetObjectItemCaseSensitive(c.params, key); }

// False when the call was answered here: a bad "node", or forwarded to the node it names.
bool run_here(ApiCall& c, const char* method) {
  const cJSON* node = param(c, "node");
  if (!node || cJSON_IsNull(node)) return true;
  int64_t id = 0;
  if (!json_integer(node, 1, kMaxNodeId, id)) {
    c.reply(ApiResult::error(101, "\"node\" must be a node id (" + node_id_range() + ")"));
    return false;
  }
  if (id == c.host.config().node_id || c.local_only) return true;
  Backbone* cluster = c.host.backbone();
  bool alive = false;
  if (cluster)
    for (const NodeInfo& m : cluster->alive_peers()) alive = alive || m.node_id == static_cast<unsigned>(id);
  if (!alive) {
    c.reply(ApiResult::error(501, "node " + std::to_string(id) + " is not an alive member of the cluster"));
    return false;
  }
  std::string params = c.params_text ? std::string(c.params_text, c.params_len) : json_print(c.params);
  cluster->call(static_cast<unsigned>(id), method, params, 501, c.reply);
  return false;
}

// [{"topic","consumers","remote_consumer_nodes","pending","bytes","unacked","delivered","dropped",
//   "disk_events","disk_bytes","disk_failed"}, ...] by name (disk_*: 0 and false for a topic without a log).
std::string queue_json(const QueueHub& queue) {
  std::string s = "[";
  for (const QueueTopicStats& t : queue.topic_stats()) {
    if (s.size() > 1) s += ',';
    s += "{\"topic\":";
    json_append_string(s, t.topic);
    s += ",\"consumers\":" + std::to_string(t.consumers) + ",\"remote_consumer_nodes\":" +
         std::to_string(t.remote_consumer_nodes) + ",\"pending\":" + std::to_string(t.pending) +
         ",\"bytes\":" + std::to_string(t.bytes) + ",\"unacked\":" + std::to_string(t.unacked) +
         ",\"delivered\":" + std::to_string(t.delivered) + ",\"dropped\":" + std::to_string(t.dropped) +
         ",\"disk_events\":" + std::to_string(t.disk_events) + ",\"disk_bytes\":" + std::to_string(t.disk_bytes) +
         ",\"disk_failed\":" + (t.disk_failed ? "true" : "false") + "}";
  }
  return s + "]";
}

}  // namespace

void api_node_stats(ApiCall& c) {
  if (!run_here(c, "node.stats")) return;
  const Config& cfg = c.host.config();
  ProcessStats p = process_stats();
  std::string s = "{\"node\":" + std::to_string(cfg.node_id) + ",\"version\":\"" MESHGATE_VERSION "\",\"name\":";
  json_append_string(s, cfg.node_name);
  s += ",\"uptime_s\":" + std::to_string(static_cast<uint64_t>(std::max(0.0, process_now_s() - p.start_time_s))) +
       ",\"draining\":" + (c.host.draining() ? "true" : "false") +
       ",\"connections\":" + std::to_string(c.host.client_count()) + "," + metrics().stats_json_members() +
       ",\"queue\":" + queue_json(c.host.queue()) + ",\"process\":{\"resident_bytes\":" +
       std::to_string(p.resident_bytes) + ",\"open_fds\":" + std::to_string(p.open_fds) +
       ",\"max_fds\":" + std::to_string(p.max_fds) + ",\"cpu_seconds\":" + std::to_string(p.cpu_seconds) +
       ",\"threads\":" + std::to_string(p.threads) + "}}";
  c.reply(ApiResult::ok(s));
}

void api_channel_top(ApiCall& c) {
  const cJSON* n_param = param(c, "n");
  int64_t n = 10;
  if (n_param && !cJSON_IsNull(n_param) && !json_integer(n_param, 1, kMaxTop, n))
    return c.reply(ApiResult::error(101, "\"n\" must be an integer from 1 to 100"));
  if (!run_here(c, "channel.top")) return;
  // Each worker hands back its largest channels; they are merged here, on the hub thread, once all
  // have answered (no lock: the workers share nothing).
  using Top = std::vector<std::pair<std::string, uint64_t>>;
  Reply reply = c.reply;
  c.host.workers().fanout<Top>(
      [](Worker& w) { return w.top_channels(kChannelsPerWorker); },
      [reply, n](std::vector<Top> tops) {
        std::unordered_map<std::string, uint64_t> sums;
        for (const Top& top : tops)
          for (const auto& [name, count] : top) sums[name] += count;
        Top all(sums.begin(), sums.end());
        keep_largest(all, static_cast<size_t>(n));
        std::string s = "{\"channels\":[";
        for (size_t i = 0; i < all.size(); i++) {
          s += i ? ",{\"c\":" : "{\"c\":";
          json_append_string(s, all[i].first);
          s += ",\"s\":" + std::to_string(all[i].second) + "}";
        }
        reply(ApiResult::ok(s + "]}"));
      });
}

}  // namespace mg
