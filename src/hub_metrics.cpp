// The hub's /metrics page (every part appends its families) and the systemd STATUS= line.
#include "hub.h"

#include "core/metrics.h"
#include "core/metrics_process.h"
#include "http/http_refusals.h"

namespace mg {

std::string Hub::render_metrics() const {
  PromWriter w;
  w.family("meshgate_build_info", "gauge", "Version of this node.");
  w.sample("meshgate_build_info", {{"version", MESHGATE_VERSION}, {"node", std::to_string(cfg_.node_id)}}, 1);
  w.append(metrics().render());
  w.append(render_process_metrics(process_stats()));
  queue_.render_metrics(w);
  if (backbone_) w.append(backbone_->render_metrics());
  api_.render_metrics(w);
  render_tls_metrics(w);
  HttpRefusals::family(w);
  api_.http().refusals().render(w);
  if (route_) route_->http().refusals().render(w);
  w.family("meshgate_queue_restored_total", "counter", "Events recovered at start from the topics' disk logs: what the last run held and had not delivered.");
  w.sample("meshgate_queue_restored_total", restored_);
  w.family("meshgate_api_connections", "gauge", "Control and route API connections open now.");
  w.sample("meshgate_api_connections", api_.http().size() + (route_ ? route_->http().size() : 0));
  w.family("meshgate_hub_backlog", "gauge", "Tasks waiting for the hub thread.");
  w.sample("meshgate_hub_backlog", mailbox_.backlog());
  return w.take();
}

std::string Hub::status_line() const {
  return std::string(draining_ ? "draining: " : "") + std::to_string(client_count()) + " connections, " +
         std::to_string(queue_.consumer_count()) + " consumers";
}

}  // namespace mg
