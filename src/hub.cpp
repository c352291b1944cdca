#include "hub.h"

#include <unistd.h>

#include <csignal>
#include <thread>

#include "core/addr.h"
#include "core/log.h"
#include "core/metrics.h"
#include "mesh/mesh.h"
#ifdef MESHGATE_NATS
#include "nats/nats_backbone.h"
#endif
#include "net/listen_socket.h"
#include "queue/spool_import.h"

namespace mg {

namespace {

unsigned worker_count(const Config& c) {
  if (c.workers > 0) return static_cast<unsigned>(c.workers);
  unsigned n = uv_available_parallelism();
  return n ? n : 1;
}

}  // namespace

Hub::Hub(Config cfg)
    : cfg_(std::move(cfg)),
      queue_(static_cast<unsigned>(cfg_.node_id), cfg_.queue),
      intake_(queue_, [this] { resume_producers(); }),
      api_(*this, &loop_) {
  uv_loop_init(&loop_);
  loop_ctx_.open(&loop_);
  mailbox_.open(&loop_);
}

Hub::~Hub() = default;

bool Hub::open_listeners(std::vector<std::vector<int>>& worker_fds) {
  for (auto& fds : worker_fds) {
    for (const ListenerConfig& l : cfg_.listeners) {
      std::string error;
      int fd = open_listen_socket(l.bind, l.port, true, error);
      if (fd < 0) {
        LOG_ERROR("cannot listen for [listener.%s] on %s", l.name.c_str(), error.c_str());
        return false;
      }
      fds.push_back(fd);
    }
  }
  return true;
}

std::unique_ptr<Backbone> Hub::make_backbone() {
#ifdef MESHGATE_NATS
  if (cfg_.backbone == BackboneKind::Nats) return std::make_unique<NatsBackbone>(*this, queue_, &loop_, cfg_);
#endif
  if (cfg_.mesh_port != 0) return std::make_unique<Mesh>(*this, queue_, &loop_, cfg_);
  return nullptr;
}

int Hub::fail_start(std::vector<std::vector<int>>& worker_fds) {
  for (auto& fds : worker_fds)
    for (int fd : fds) ::close(fd);
  worker_fds.clear();
  // Nothing has run yet: every handle open now is a listener, a timer or the loop's own (mailbox,
  // prepare), owned by a member, so closing them all with no callback is the whole clean-up.
  uv_walk(&loop_, [](uv_handle_t* h, void*) {
    if (!uv_is_closing(h)) uv_close(h, nullptr);
  }, nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop_);
  if (rc != 0) LOG_WARN("hub loop closed with handles still open: %s", uv_strerror(rc));
  return 1;
}

int Hub::run() {
  std::vector<std::string> names;
  make_store();
  for (const ListenerConfig& l : cfg_.listeners) {
    names.push_back(l.name);
    queue_.declare(l.topic, l.overflow < 0 ? cfg_.queue_pause_on_overflow : l.overflow == 1, topic_on_disk(cfg_, l));
  }
  queue_.set_resume_handler([this] { resume_producers(); });
  metrics().init_listeners(names);
  unsigned n = worker_count(cfg_);
  std::vector<std::vector<int>> fds(n);
  if (!open_listeners(fds) || !api_.listen()) return fail_start(fds);
  if (cfg_.route_port != 0) {
    route_ = std::make_unique<RouteApi>(&loop_, cfg_, [this] { return route_members(); });
    if (!route_->listen()) return fail_start(fds);
  }
  auto on_http_empty = [this] {
    if (shut_down_ && http_closed()) finish_shutdown();
  };
  api_.http().set_on_empty(on_http_empty);
  if (route_) route_->http().set_on_empty(on_http_empty);
  backbone_ = make_backbone();
  if (backbone_) {
    if (!backbone_->start()) return fail_start(fds);
    queue_.set_remote(backbone_.get(), [this] { backbone_->announce_topics(); });
    presence_.set_on_change([this](const std::string& channel, bool held) {
      post([this, channel, held] { backbone_->local_interest(channel, held); });
    });
  }
  start_store();
  for (const ListenerConfig& l : cfg_.listeners) {
    ListenerShared shared;
    shared.guard = std::make_unique<ListenerGuard>(l.max_conns_per_ip, l.accept_rate);
    if (l.overflow < 0 ? cfg_.queue_pause_on_overflow : l.overflow == 1) shared.gate = queue_.gate(l.topic);
    if (l.tls) {
      std::string note, error;
      TlsContextRef ctx(tls_server_context(l.cert, l.key, TicketOptions{l.ticket_rotate, l.ticket_key_file, nullptr},
                                           note, error));
      if (!ctx) {
        LOG_ERROR("[listener.%s]: %s", l.name.c_str(), error.c_str());
        return fail_start(fds);
      }
      if (!note.empty()) LOG_WARN("[listener.%s]: %s", l.name.c_str(), note.c_str());
      shared.tls = std::make_unique<TlsSlot>(std::move(ctx));
    }
    listeners_shared_.push_back(std::move(shared));
  }
  workers_.make(*this, cfg_, listeners_shared_, n);

  uv_signal_init(&loop_, &sig_term_);
  uv_signal_init(&loop_, &sig_int_);
  uv_signal_init(&loop_, &sig_hup_);
  sig_term_.data = sig_int_.data = sig_hup_.data = this;
  uv_signal_start(&sig_term_, &Hub::on_signal, SIGTERM);
  uv_signal_start(&sig_int_, &Hub::on_signal, SIGINT);
  uv_signal_start(&sig_hup_, &Hub::on_signal, SIGHUP);
  uv_timer_init(&loop_, &tick_);
  uv_timer_init(&loop_, &drain_timer_);
  tick_.data = drain_timer_.data = this;
  uv_timer_start(&tick_, &Hub::on_tick, 1000, 1000);
  queue_.set_now(uv_now(&loop_));

  workers_.start(std::move(fds));
  LOG_INFO("meshgate %s node %d (%s): %u workers; control API on %s%s", MESHGATE_VERSION, cfg_.node_id,
           cfg_.node_name.c_str(), n, host_port(cfg_.api_bind, cfg_.api_port).c_str(),
           api_.open_to_all() ? " (no API token)" : "");
  for (size_t i = 0; i < cfg_.listeners.size(); i++) log_certificate(i, "", cfg_.listeners[i].cert);
  if (route_) LOG_INFO("route API on %s", host_port(cfg_.route_bind, cfg_.route_port).c_str());
  for (const ListenerConfig& l : cfg_.listeners)
    LOG_INFO("listener %s: %s%s on %s, topic %s (%s)%s", l.name.c_str(), l.type == ListenerType::Ws ? "websocket" : "tcp",
             l.tls ? " over TLS" : "", host_port(l.bind, l.port).c_str(), l.topic.c_str(),
             topic_on_disk(cfg_, l) ? "on disk" : "in memory", l.needs_token() ? ", connect tokens required" : "");
  if (store_) {
    const FsyncMode f = cfg_.queue_storage.fsync;
    LOG_INFO("queue: disk logs in %s (fsync = %s)", store_->options().queue_dir.c_str(),
             f == FsyncMode::Batch ? ("batch, at most every " + std::to_string(cfg_.queue_storage.fsync_interval_ms) +
                                      " ms").c_str() : f == FsyncMode::Always ? "always" : "off");
  }
  if (!api_.open_to_all() || cfg_.api_bind == "127.0.0.1" || cfg_.api_bind == "::1" || cfg_.api_bind == "localhost") {
  } else {
    LOG_WARN("the control API listens on %s without [api] token: anyone who reaches it can push to every client",
             cfg_.api_bind.c_str());
  }

  // Every listening socket is bound and listening now (connections wait in their backlogs until the
  // workers' loops run), and the lines above named them: systemd may start what comes after us. READY=1
  // goes after those lines so that the journal shows every listener before systemd's "Started".
  uv_timer_init(&loop_, &notify_timer_);
  notify_timer_.data = this;
  if (notify_.enabled()) {
    notify_.send("READY=1\nSTATUS=" + status_line() + "\nMAINPID=" + std::to_string(uv_os_getpid()));
    uint64_t every = notify_.watchdog_interval_ms() ? std::min<uint64_t>(notify_.watchdog_interval_ms(), 1000) : 1000;
    uv_timer_start(&notify_timer_, &Hub::on_notify_tick, every, every);
  }

  uv_run(&loop_, UV_RUN_DEFAULT);
  workers_.join();
  int rc = uv_loop_close(&loop_);
  if (rc != 0) LOG_WARN("hub loop closed with handles still open: %s", uv_strerror(rc));
  LOG_INFO("stopped");
  return exit_code_;
}

void Hub::on_signal(uv_signal_t* s, int signum) {
  Hub* self = static_cast<Hub*>(s->data);
  if (signum == SIGHUP) return self->reload();
  if (self->draining_) {
    LOG_WARN("second stop signal: stopping now");
    self->drain_forced_ = true;
    return self->shutdown();
  }
  LOG_INFO("signal %d: draining (at most %u s)", signum, self->cfg_.drain_timeout);
  self->start_drain();
}

void Hub::on_notify_tick(uv_timer_t* t) {
  Hub* self = static_cast<Hub*>(t->data);
  self->notify_.tick(uv_now(&self->loop_), self->status_line());
}

void Hub::start_drain() {
  draining_ = true;
  notify_.send("STOPPING=1\nSTATUS=" + status_line());
  api_.http().set_draining(true);  // answers say "Connection: close"
  if (route_) {
    route_->http().set_draining(true);
    route_->http().stop_listening();
  }
  workers_.post_all([](Worker& w) { w.drain(); });
  uv_timer_start(&drain_timer_, [](uv_timer_t* t) {
    Hub* self = static_cast<Hub*>(t->data);
    LOG_WARN("drain_timeout reached: stopping with work left");
    self->drain_forced_ = true;
    self->shutdown();
  }, uint64_t{cfg_.drain_timeout} * 1000, 0);
  uv_timer_start(&tick_, &Hub::on_tick, 100, 100);  // check often whether the drain is done
}

void Hub::make_store() {
  const std::string state = effective_state_dir(cfg_);
  if (state.empty()) return;  // no disk topic then (check_for_start refuses store = disk without one)
  LogOptions o;
  o.queue_dir = state + "/queue";
  o.fsync = cfg_.queue_storage.fsync;
  o.fsync_interval_ms = cfg_.queue_storage.fsync_interval_ms;
  store_ = std::make_unique<LogStore>(&loop_, [this](Mailbox::Task t) { mailbox_.post(std::move(t)); }, std::move(o));
  queue_.set_store(store_.get());
}

void Hub::start_store() {
  if (!store_) return;
  for (TopicLog* log : store_->recover()) restored_ += log->unconsumed();
  restored_ += import_legacy_spool(effective_state_dir(cfg_), *store_).events;
  for (TopicLog* log : store_->logs())
    if (log->unconsumed() > 0) queue_.adopt_log(log);
  store_->start();
}

void Hub::resume_producers() {
  workers_.post_all([](Worker& w) { w.resume_paused(); });
}

void Hub::worker_stopped(unsigned) {
  workers_stopped_++;
  maybe_finish();
}

void Hub::maybe_finish() {
  if (!draining_ || shut_down_ || workers_stopped_ < workers_.size()) return;
  // Every client is closed and its close event is in the queue: wait until the queue has handed
  // what it holds to consumers and their connections have written it (or no consumer is left).
  bool consumers_busy = api_.websockets_writing();
  // Events this node still holds wait for a consumer, here or on another node, until drain_timeout;
  // then shutdown() appends what is left to the topics' disk logs (QueueHub::log_held).
  if (queue_.held_events() > 0 || consumers_busy) return;
  if (backbone_ && !backbone_->flushed()) return;  // events on their way to other nodes
  shutdown();
}

void Hub::on_tick(uv_timer_t* t) {
  Hub* self = static_cast<Hub*>(t->data);
  uint64_t now = uv_now(&self->loop_);
  self->queue_.tick(now);
  self->api_.http().tick(now);
  if (self->route_) self->route_->http().tick(now);
  self->maybe_finish();
}

void Hub::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  workers_.post_all([](Worker& w) { w.force_stop(); });  // workers still closing clients (forced stop) close them now
  queue_.log_held();
  if (store_) store_->stop();  // what the logs hold is synced, whatever the fsync mode
  if (backbone_) backbone_->stop();
  api_.http().stop_listening();
  if (route_) route_->http().stop_listening();
  for (uv_signal_t* s : {&sig_term_, &sig_int_, &sig_hup_}) uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&notify_timer_), nullptr);
  // API WebSocket clients get a close frame (1001) if they read it within a second; then the rest
  // of the loop closes.
  api_.http().close_all_going_away();
  if (route_) route_->http().close_all_going_away();
  uv_timer_init(&loop_, &final_timer_);
  final_timer_.data = this;
  uv_timer_start(&final_timer_, [](uv_timer_t* t) { static_cast<Hub*>(t->data)->finish_shutdown(); }, 1000, 0);
  if (http_closed()) finish_shutdown();
}

bool Hub::http_closed() const { return api_.http().size() == 0 && (!route_ || route_->http().size() == 0); }

void Hub::finish_shutdown() {
  if (finished_) return;
  finished_ = true;
  api_.http().close_all_now();
  if (route_) route_->http().close_all_now();
  mailbox_.close();
  loop_ctx_.close();
  uv_close(reinterpret_cast<uv_handle_t*>(&final_timer_), nullptr);
}

}  // namespace mg
