// The hub: the main thread's loop. It owns the control API and route API listeners, the API
// connections, the queue (topics and consumers), signals, metrics, and the workers' lifecycle.
//
// Workers post client events and API results here; the hub posts work to workers. Everything in the
// hub is touched by the hub thread only, except the members marked "any thread".
#pragma once

#include <uv.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/config.h"
#include "core/mailbox.h"
#include "core/sd_notify.h"
#include "http/route_api.h"
#include "http/http_server.h"
#include "mesh/mesh.h"
#include "net/stream.h"
#include "queue/queue_hub.h"
#include "worker/worker.h"

namespace mg {

class HttpConn;

class Hub final : public MeshHost {
 public:
  explicit Hub(Config cfg);
  ~Hub();
  // Runs until drained. Returns the process exit code.
  int run();

  // --- any thread ---
  void post(Mailbox::Task task) { mailbox_.post(std::move(task)); }
  size_t backlog() const { return mailbox_.backlog(); }
  uint64_t client_count() const override { return clients_.load(std::memory_order_relaxed); }
  void client_opened() { clients_.fetch_add(1, std::memory_order_relaxed); }
  void client_closed() { clients_.fetch_sub(1, std::memory_order_relaxed); }

  // --- hub thread ---
  uv_loop_t* loop() { return &loop_; }
  const Config& config() const { return cfg_; }
  const std::string& api_token() const { return api_token_; }
  bool draining() const override { return draining_; }
  QueueHub& queue() { return queue_; }
  void push_event(QueueEvent ev) { queue_.push(std::move(ev)); }
  // The worker that owns `client`, or nullptr when the id is not of this node.
  Worker* worker_for(uint64_t client);
  // Runs `op` on every worker and calls `done` with the sum once all have answered.
  void fanout(std::function<FanoutCount(Worker&)> op, std::function<void(const FanoutCount&)> done);
  void worker_stopped(unsigned index);
  HttpConn* find_conn(uint64_t serial);
  void forget_conn(uint64_t serial);
  std::vector<NodeInfo> route_members() const;
  // This node's client addresses, as the route API hands them out.
  NodeAddresses own_addresses(bool intranet) const override;
  // MeshHost: a method another node called, run with local_only (api_dispatch_remote).
  void run_remote_call(const std::string& method, const cJSON* params, const char* params_text, size_t params_len,
                       Reply reply) override;
  // The mesh, or nullptr in single-node mode.
  Mesh* mesh() { return mesh_.get(); }
  std::string node_list_json() const;
  std::string render_metrics() const;
  // Counts a call for /metrics: a method name outside the handler table counts as "unknown".
  void count_api_call(const std::string& method, int code);

 private:
  bool open_listeners(std::vector<std::vector<int>>& worker_fds);
  bool listen_http(const std::string& host, int port, HttpRole role, uv_tcp_t& server);
  static void on_http_connection(uv_stream_t* server, int status);
  static void on_signal(uv_signal_t* s, int signum);
  static void on_tick(uv_timer_t* t);
  // systemd: STATUS= line and watchdog ping (see core/sd_notify.h).
  static void on_notify_tick(uv_timer_t* t);
  std::string status_line() const;
  void start_drain();
  void maybe_finish();
  void shutdown();
  void finish_shutdown();
  void reload();

  Config cfg_;
  uv_loop_t loop_{};
  LoopContext loop_ctx_;
  Mailbox mailbox_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<uint64_t> clients_{0};
  ListenersShared listeners_shared_;  // per client listener: TLS context and admission guard
  QueueHub queue_;
  std::unique_ptr<Mesh> mesh_;
  std::string api_token_;
  uv_tcp_t api_server_{}, route_server_{};
  bool route_open_ = false;
  uv_signal_t sig_term_{}, sig_int_{}, sig_hup_{};
  uv_timer_t tick_{}, drain_timer_{}, final_timer_{}, notify_timer_{};
  SdNotify notify_;
  std::unordered_map<uint64_t, HttpConn*> conns_;
  uint64_t next_serial_ = 0;
  // The queue spool (queue/queue_spool.h): read back at start, written at shutdown.
  void restore_spool();
  void write_spool();
  uint64_t spool_restored_ = 0;
  uint64_t last_pause_warning_ms_ = 0;
  std::map<std::string, std::shared_ptr<TopicGate>> topic_gates_;  // topics with overflow = pause
  bool draining_ = false;
  bool drain_forced_ = false;
  bool shut_down_ = false;
  bool finished_ = false;
  unsigned workers_stopped_ = 0;
  std::map<std::pair<std::string, int>, uint64_t> api_calls_;
  int exit_code_ = 0;
};

}  // namespace mg
