#include "hub.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>

#include "core/addr.h"
#include "core/log.h"
#include "core/log_text.h"
#include "core/metrics.h"
#include "core/snowflake.h"
#include "mesh/mesh.h"
#include "net/listen_socket.h"
#include "queue/queue_spool.h"

namespace mg {

namespace {

unsigned worker_count(const Config& c) {
  if (c.workers > 0) return static_cast<unsigned>(c.workers);
  unsigned n = uv_available_parallelism();
  return n ? n : 1;
}

}  // namespace

Hub::Hub(Config cfg)
    : cfg_(std::move(cfg)), queue_(static_cast<unsigned>(cfg_.node_id), cfg_.queue), api_(*this, &loop_) {
  uv_loop_init(&loop_);
  loop_ctx_.open(&loop_);
  loop_ctx_.owner = this;
  mailbox_.open(&loop_);
}

Hub::~Hub() {
  for (ListenerShared& l : listeners_shared_)
    if (l.tls) SSL_CTX_free(l.tls);
}

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

int Hub::run() {
  std::vector<std::string> names;
  for (const ListenerConfig& l : cfg_.listeners) {
    names.push_back(l.name);
    queue_.declare(l.topic, l.overflow < 0 ? cfg_.queue_pause_on_overflow : l.overflow == 1);
  }
  queue_.set_pressure_handler([this](const std::string& topic, bool full) {
    // A topic at its bound flips often while its consumer works through it: one warning a minute
    // (meshgate_queue_pauses_total counts every pause).
    uint64_t now = uv_now(&loop_);
    if (full && now - last_pause_warning_ms_ >= 60000) {
      last_pause_warning_ms_ = now;
      LOG_WARN("queue: topic \"%s\" is full: its clients are not read until it is down to half its bound",
               log_safe(topic).c_str());
    }
    LOG_DEBUG("queue: topic \"%s\" %s", log_safe(topic).c_str(), full ? "paused its producers" : "resumed its producers");
    auto gate = topic_gates_.find(topic);
    if (gate == topic_gates_.end()) return;  // a topic no listener produces into
    gate->second->full.store(full, std::memory_order_relaxed);
    if (full) return;  // workers see the gate after each client message
    resume_topic(topic);
  });
  metrics().init_listeners(names);
  unsigned n = worker_count(cfg_);
  std::vector<std::vector<int>> fds(n);
  if (!open_listeners(fds)) return 1;
  if (!api_.listen()) return 1;
  if (cfg_.route_port != 0) {
    route_ = std::make_unique<RouteApi>(&loop_, cfg_, [this] { return route_members(); });
    if (!route_->listen()) return 1;
  }
  auto on_http_empty = [this] {
    if (shut_down_ && http_closed()) finish_shutdown();
  };
  api_.http().set_on_empty(on_http_empty);
  if (route_) route_->http().set_on_empty(on_http_empty);
  if (cfg_.mesh_port != 0) {
    mesh_ = std::make_unique<Mesh>(*this, queue_, &loop_, cfg_);
    if (!mesh_->start()) return 1;
    queue_.set_remote(mesh_.get(), [this] { mesh_->announce_topics(); });
  }
  restore_spool();
  for (const ListenerConfig& l : cfg_.listeners) {
    ListenerShared shared;
    shared.guard = std::make_unique<ListenerGuard>(l.max_conns_per_ip, l.accept_rate);
    if (l.overflow < 0 ? cfg_.queue_pause_on_overflow : l.overflow == 1) {
      std::shared_ptr<TopicGate>& gate = topic_gates_[l.topic];
      if (!gate) {
        gate = std::make_shared<TopicGate>();
        gate->bound = cfg_.queue.max_events;
      }
      shared.gate = gate;
    }
    if (l.tls) {
      std::string note, error;
      shared.tls = tls_server_context(l.cert, l.key, note, error);
      if (!shared.tls) {
        LOG_ERROR("[listener.%s]: %s", l.name.c_str(), error.c_str());
        return 1;
      }
      if (!note.empty()) LOG_WARN("[listener.%s]: %s", l.name.c_str(), note.c_str());
    }
    listeners_shared_.push_back(std::move(shared));
  }
  for (const std::string& topic : queue_.paused_topics()) {  // full already (a restored spool)
    auto gate = topic_gates_.find(topic);
    if (gate != topic_gates_.end()) gate->second->full.store(true);
  }
  for (unsigned i = 0; i < n; i++)
    workers_.push_back(std::make_unique<Worker>(*this, cfg_, listeners_shared_, i, n));

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

  for (unsigned i = 0; i < n; i++) workers_[i]->start(std::move(fds[i]));
  // Every listening socket is bound and listening now (connections wait in their backlogs until the
  // workers' loops run): systemd may start what comes after us.
  uv_timer_init(&loop_, &notify_timer_);
  notify_timer_.data = this;
  if (notify_.enabled()) {
    notify_.send("READY=1\nSTATUS=" + status_line() + "\nMAINPID=" + std::to_string(uv_os_getpid()));
    uint64_t every = notify_.watchdog_interval_ms() ? std::min<uint64_t>(notify_.watchdog_interval_ms(), 1000) : 1000;
    uv_timer_start(&notify_timer_, &Hub::on_notify_tick, every, every);
  }

  LOG_INFO("meshgate %s node %d (%s): %u workers; control API on %s%s", MESHGATE_VERSION, cfg_.node_id,
           cfg_.node_name.c_str(), n, host_port(cfg_.api_bind, cfg_.api_port).c_str(),
           api_.token().empty() ? " (no API token)" : "");
  if (route_) LOG_INFO("route API on %s", host_port(cfg_.route_bind, cfg_.route_port).c_str());
  for (const ListenerConfig& l : cfg_.listeners)
    LOG_INFO("listener %s: %s%s on %s, topic %s%s", l.name.c_str(), l.type == ListenerType::Ws ? "websocket" : "tcp",
             l.tls ? " over TLS" : "", host_port(l.bind, l.port).c_str(), l.topic.c_str(),
             l.needs_token() ? ", connect tokens required" : "");
  if (!api_.token().empty() || cfg_.api_bind == "127.0.0.1" || cfg_.api_bind == "::1" || cfg_.api_bind == "localhost") {
  } else {
    LOG_WARN("the control API listens on %s without [api] token: anyone who reaches it can push to every client",
             cfg_.api_bind.c_str());
  }

  uv_run(&loop_, UV_RUN_DEFAULT);
  for (auto& w : workers_) w->join();
  int rc = uv_loop_close(&loop_);
  if (rc != 0) LOG_WARN("hub loop closed with handles still open: %s", uv_strerror(rc));
  LOG_INFO("stopped");
  return exit_code_;
}

Worker* Hub::worker_for(uint64_t client) {
  if (snowflake_node(client) != static_cast<unsigned>(cfg_.node_id) || workers_.empty()) return nullptr;
  return workers_[snowflake_worker(client, static_cast<unsigned>(workers_.size()))].get();
}

void Hub::fanout(std::function<FanoutCount(Worker&)> op, FanoutDone done) {
  FanoutDone add = fanout_join(workers_.size(), std::move(done));
  auto shared_op = std::make_shared<std::function<FanoutCount(Worker&)>>(std::move(op));
  for (auto& wp : workers_) {
    Worker* w = wp.get();
    w->post([this, w, add, shared_op] {
      FanoutCount c = (*shared_op)(*w);
      post([add, c] { add(c); });
    });
  }
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
  for (auto& w : workers_) {
    Worker* wp = w.get();
    wp->post([wp] { wp->drain(); });
  }
  uv_timer_start(&drain_timer_, [](uv_timer_t* t) {
    Hub* self = static_cast<Hub*>(t->data);
    LOG_WARN("drain_timeout reached: stopping with work left");
    self->drain_forced_ = true;
    self->shutdown();
  }, uint64_t{cfg_.drain_timeout} * 1000, 0);
  uv_timer_start(&tick_, &Hub::on_tick, 100, 100);  // check often whether the drain is done
}

void Hub::resume_topic(const std::string& topic) {
  for (auto& w : workers_) {
    Worker* wp = w.get();
    wp->post([wp, topic] { wp->resume_topic(topic); });
  }
}

void Hub::events_taken(size_t n) {
  if (!event_backlog_.taken(n)) return;
  for (auto& w : workers_) {
    Worker* wp = w.get();
    wp->post([wp] { wp->resume_backlogged(); });
  }
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
  // then shutdown() spools what is left.
  if (queue_.held_events() > 0 || consumers_busy) return;
  if (mesh_ && !mesh_->flushed()) return;  // events on their way to other nodes
  shutdown();
}

void Hub::on_tick(uv_timer_t* t) {
  Hub* self = static_cast<Hub*>(t->data);
  uint64_t now = uv_now(&self->loop_);
  self->queue_.tick(now);
  if (self->spool_kept_ && self->queue_.spooled_held() == 0)
    self->remove_spool("every event restored from it was consumed");
  self->api_.http().tick(now);
  if (self->route_) self->route_->http().tick(now);
  self->maybe_finish();
}

void Hub::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  for (auto& w : workers_) {  // workers still closing clients (forced stop) close them now
    Worker* wp = w.get();
    wp->post([wp] { wp->force_stop(); });
  }
  write_spool();
  if (mesh_) mesh_->stop();
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

void Hub::restore_spool() {
  std::string dir = effective_state_dir(cfg_);
  if (dir.empty()) return;
  std::string path = dir + "/" + kQueueSpoolFile, error;
  std::vector<QueueEvent> events;
  size_t bad = 0;
  if (!spool_read(path, events, bad, error)) {
    LOG_ERROR("queue: cannot read the spool %s: %s (left in place)", path.c_str(), error.c_str());
    return;
  }
  if (events.empty() && bad == 0) return;
  // The file stays until every restored event is consumed (on_tick removes it then): a crash before
  // that restores them again at the next start. At least once: those consumed before the crash come
  // twice (docs/decisions.md, "The spool is kept until its events are consumed").
  spool_kept_ = true;
  for (QueueEvent& ev : events) {
    ev.node = static_cast<unsigned>(cfg_.node_id);  // its clients were this node's
    ev.spooled = true;
    queue_.push(std::move(ev));
  }
  spool_restored_ = events.size();
  if (bad) LOG_ERROR("queue: %zu lines of the spool %s could not be read and are lost", bad, path.c_str());
  LOG_INFO("queue: %zu events from the last run restored from %s, marked redelivered; the file is kept until they "
           "are consumed", events.size(), path.c_str());
}

void Hub::remove_spool(const char* why) {
  spool_kept_ = false;
  std::string path = effective_state_dir(cfg_) + "/" + kQueueSpoolFile;
  if (std::remove(path.c_str()) != 0 && errno != ENOENT)
    LOG_ERROR("queue: cannot remove the spool %s: %s (its events may come twice)", path.c_str(), std::strerror(errno));
  else LOG_INFO("queue: spool %s removed: %s", path.c_str(), why);
}

void Hub::write_spool() {
  size_t held = queue_.held_events();
  if (held == 0) {
    if (spool_kept_) remove_spool("every event restored from it was consumed");
    return;
  }
  std::vector<QueueEvent> events = queue_.take_held();
  std::string dir = effective_state_dir(cfg_), error;
  if (dir.empty()) {
    LOG_ERROR("queue: %zu events lost at shutdown: no consumer took them and no [node] state_dir is set to keep "
              "them", events.size());
    return;
  }
  std::string path = dir + "/" + kQueueSpoolFile;
  std::vector<QueueEvent> all;
  size_t bad = 0;
  // A spool not restored (e.g. it could not be read at start) is kept too; a restored one is not read
  // again: its events not yet consumed are among those held.
  if (!spool_kept_) spool_read(path, all, bad, error);
  for (QueueEvent& ev : events) all.push_back(std::move(ev));
  if (!spool_write(path, all, error)) {
    LOG_ERROR("queue: %zu events lost at shutdown: cannot write the spool: %s", events.size(), error.c_str());
    return;
  }
  LOG_WARN("queue: %zu events no consumer took written to %s; they are delivered after the next start",
           events.size(), path.c_str());
}

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
