// The hub: the main thread's loop. It starts and stops everything else: the workers, the control
// and route APIs, the queue, the mesh; it handles signals (drain, reload) and assembles /metrics.
//
// Workers post client events and API results here; the hub posts work to workers. A worker sees the
// hub only as WorkerHost, the API only as ApiHost, the cluster backbone only as BackboneHost. Everything in the
// hub is touched by the hub thread only, except the members marked "any thread".
#pragma once

#include <uv.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/api_host.h"
#include "api/api_server.h"
#include "client/worker.h"
#include "client/worker_pool.h"
#include "core/config.h"
#include "core/mailbox.h"
#include "core/sd_notify.h"
#include "cluster/backbone.h"
#include "net/stream.h"
#include "queue/log_store.h"
#include "queue/queue_hub.h"
#include "route/route_api.h"

namespace mg {

class Hub final : public WorkerHost, public ApiHost, public BackboneHost {
 public:
  explicit Hub(Config cfg);
  ~Hub();
  // Runs until drained. Returns the process exit code.
  int run();

  // --- any thread ---
  void post(Mailbox::Task task) override { mailbox_.post(std::move(task)); }
  size_t backlog() const override { return mailbox_.backlog(); }
  uint64_t client_count() const override { return clients_.load(std::memory_order_relaxed); }
  void client_opened() override { clients_.fetch_add(1, std::memory_order_relaxed); }
  void client_closed() override { clients_.fetch_sub(1, std::memory_order_relaxed); }
  ChannelPresence& channel_presence() override { return presence_; }
  EventIntake& event_intake() override { return intake_; }
  bool channel_maybe_held(const std::string& channel) const override { return presence_.maybe_held(channel); }

  // --- hub thread ---
  uv_loop_t* loop() { return &loop_; }
  const Config& config() const override { return cfg_; }
  bool draining() const override { return draining_; }
  QueueHub& queue() override { return queue_; }
  // Every worker reads its clients paused for the queue again where their gate and the backlog are
  // open (Worker::resume_paused): a gate opened, or the intake caught up.
  void resume_producers();
  WorkerPool& workers() override { return workers_; }
  void worker_stopped(unsigned index) override;
  // This node first, then the alive peers: what the route API hands out.
  std::vector<NodeInfo> route_members() const;
  // This node's client addresses, as the route API hands them out.
  NodeAddresses own_addresses(bool intranet) const override;
  // BackboneHost: a method another node called, run with local_only (api_dispatch_remote).
  void run_remote_call(const std::string& method, const cJSON* params, const char* params_text, size_t params_len,
                       Reply reply) override;
  Backbone* backbone() const override { return backbone_.get(); }
  NodeInfo self_info() const override;
  std::string render_metrics() const override;

 private:
  bool open_listeners(std::vector<std::vector<int>>& worker_fds);
  // The backbone [cluster] backbone names: the mesh when [mesh] port is set, NATS when chosen;
  // null in single-node mode.
  std::unique_ptr<Backbone> make_backbone();
  // Start-up failed half way: closes what run() opened so far (the workers' listening sockets, the
  // API, route and mesh listeners, the loop's handles) and the loop itself. Returns the exit code, 1.
  int fail_start(std::vector<std::vector<int>>& worker_fds);
  static void on_signal(uv_signal_t* s, int signum);
  static void on_tick(uv_timer_t* t);
  // systemd: STATUS= line and watchdog ping (see core/sd_notify.h).
  static void on_notify_tick(uv_timer_t* t);
  std::string status_line() const;
  void start_drain();
  void maybe_finish();
  void shutdown();
  void finish_shutdown();
  bool http_closed() const;
  void reload();
  // Certificates (hub_tls.cpp). A reload first loads every TLS listener's files into new contexts
  // (stage_certificates: a failure is logged and counted per listener, and named in `error`), then
  // swaps them in only when the whole reload goes ahead.
  struct StagedCerts {
    struct Context {
      size_t listener;  // index in cfg_.listeners
      TlsContextRef ctx;
      std::string path;  // the cert file it was loaded from
    };
    std::vector<Context> contexts;
    std::string error;  // the first failure; "" when none
  };
  StagedCerts stage_certificates(const Config& fresh);
  void swap_certificates(StagedCerts& staged);
  // "[listener.NAME] certificate SUBJECT (SHA-256 ...), expires DATE (in N days), from PATH", after `when`.
  void log_certificate(size_t listener, const char* when, const std::string& path) const;
  void render_tls_metrics(PromWriter& w) const;
  // Makes the log store (when there is a state directory) before the topics are declared.
  void make_store();
  // Recovers every log the state directory holds into the queue and starts the store's thread.
  void start_store();

  // The configuration the node started with. Read by every thread and never assigned after start:
  // a reload builds a fresh Config and hands each part its new values (limits, token, log).
  const Config cfg_;
  uv_loop_t loop_{};
  LoopContext loop_ctx_;
  Mailbox mailbox_;
  WorkerPool workers_{mailbox_};  // answers come back through mailbox_
  std::atomic<uint64_t> clients_{0};
  ChannelPresence presence_;  // channels the workers hold subscribers of
  ListenersShared listeners_shared_;  // per client listener: TLS context, admission guard, topic gate
  QueueHub queue_;
  EventIntake intake_;  // the workers' event batches into queue_ (any thread: its latches)
  std::unique_ptr<Backbone> backbone_;  // the mesh or NATS; null in single-node mode
  ApiServer api_;
  std::unique_ptr<RouteApi> route_;  // when [route] port is set
  uv_signal_t sig_term_{}, sig_int_{}, sig_hup_{};
  uv_timer_t tick_{}, drain_timer_{}, final_timer_{}, notify_timer_{};
  SdNotify notify_;
  // The topics' disk logs, when there is a state directory (make_store): disk topics' events, and
  // what a stopping node still held (QueueHub::log_held).
  std::unique_ptr<LogStore> store_;
  uint64_t restored_ = 0;  // events recovered from the logs (and an older spool) at start
  bool draining_ = false;
  bool drain_forced_ = false;
  bool shut_down_ = false;
  bool finished_ = false;
  unsigned workers_stopped_ = 0;
  int exit_code_ = 0;
};

}  // namespace mg
