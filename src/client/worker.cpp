#include "client/worker.h"

#include <sys/time.h>
#include <unistd.h>

#include <cassert>
#include <cinttypes>
#include <cstdio>

#include "client/client_conn.h"
#include "client/conn_ops.h"
#include "core/log.h"
#include "net/listen_socket.h"

namespace mg {

namespace {

uint64_t unix_ms() {
  timeval tv;
  gettimeofday(&tv, nullptr);
  return static_cast<uint64_t>(tv.tv_sec) * 1000 + tv.tv_usec / 1000;
}
}  // namespace

TokenSecrets token_secrets_of(const Config& c) {
  TokenSecrets secrets;
  for (const ListenerConfig& lc : c.listeners) secrets.push_back(lc.token_secrets);
  return secrets;
}

Worker::Worker(WorkerHost& host, const Config& cfg, const ListenersShared& shared, unsigned index, unsigned count)
    : host_(host), cfg_(cfg), shared_(shared), index_(index), count_(count), limits_{cfg.limits, token_secrets_of(cfg)},
      outbox_(host), ids_(static_cast<unsigned>(cfg.node_id), index, count) {
  uv_loop_init(&loop_);
  loop_ctx_.open(&loop_);
  loop_ctx_.owner = this;
  loop_ctx_.handshake_budget = limits_.handshake_budget;
  loop_ctx_.on_turn = [this] { return begin_accept_turn(); };
  mailbox_.open(&loop_);
  uv_timer_init(&loop_, &tick_);
  tick_.data = this;
  outbox_.open(&loop_);
}

Worker::~Worker() { uv_loop_close(&loop_); }

void Worker::start(std::vector<int> listen_fds) {
  thread_ = std::thread([this, fds = std::move(listen_fds)]() mutable { run(std::move(fds)); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::run(std::vector<int> listen_fds) {
  for (size_t i = 0; i < listen_fds.size(); i++) {
    auto server = std::make_unique<uv_tcp_t>();
    int rc = start_listening(&loop_, server.get(), listen_fds[i], &Worker::on_connection);
    if (rc != 0) LOG_ERROR("worker %u: listener %s: %s", index_, cfg_.listeners[i].name.c_str(), uv_strerror(rc));
    server->data = reinterpret_cast<void*>(i);  // the listener index; the worker is loop->data's owner
    servers_.push_back(std::move(server));
  }
  uv_timer_start(&tick_, &Worker::on_tick, 1000, 1000);
  uv_run(&loop_, UV_RUN_DEFAULT);
}

void Worker::on_connection(uv_stream_t* server, int status) {
  if (status < 0) return;
  auto* ctx = LoopContext::of(server->loop);
  auto* self = static_cast<Worker*>(ctx->owner);
  if (self->limits_.accept_budget) {
    if (self->accepts_left_ == 0) {  // not taken now: libuv keeps it and stops watching this listener
      self->deferred_accepts_.push_back(server);
      ctx->keep_awake();
      return;
    }
    self->accepts_left_--;
  }
  self->accept_one(server);
}

void Worker::accept_one(uv_stream_t* server) {
  unsigned li = static_cast<unsigned>(reinterpret_cast<uintptr_t>(server->data));
  auto* conn = new ClientConn(*this, li);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(conn->tcp())) != 0) {
    conn->close_now();
    return;
  }
  admit(conn, li);
}

bool Worker::begin_accept_turn() {
  accepts_left_ = limits_.accept_budget;
  while (!deferred_accepts_.empty() && !draining_ && (limits_.accept_budget == 0 || accepts_left_ > 0)) {
    uv_stream_t* server = deferred_accepts_.front();
    deferred_accepts_.pop_front();
    if (accepts_left_ > 0) accepts_left_--;
    accept_one(server);  // libuv watches the listener again from here
  }
  return !deferred_accepts_.empty();
}

bool Worker::adopt(int fd, unsigned li) {
  auto* conn = new ClientConn(*this, li);
  if (uv_tcp_open(conn->tcp(), fd) != 0) {
    ::close(fd);
    conn->close_now();
    return false;
  }
  admit(conn, li);
  return true;
}

void Worker::admit(ClientConn* conn, unsigned li) {
  all_.insert(conn);
  if (host_.client_count() >= limits_.max_connections || draining_) {
    inc(metrics().refused[static_cast<int>(RefuseReason::MaxConnections)]);
    LOG_DEBUG("connection refused: max_connections (%u) reached", limits_.max_connections);
    conn->close_now();
    return;
  }
  ListenerGuard& guard = *shared_[li].guard;
  std::string ip = peer_ip(conn->tcp());
  ListenerGuard::Verdict v = guard.admit(ip, uv_now(loop()));
  if (v != ListenerGuard::Verdict::Ok) {
    inc(metrics().refused[static_cast<int>(v == ListenerGuard::Verdict::PerIp ? RefuseReason::PerIp : RefuseReason::AcceptRate)]);
    LOG_DEBUG("connection from %s refused: %s", ip.c_str(), v == ListenerGuard::Verdict::PerIp ? "max_conns_per_ip" : "accept_rate");
    conn->close_now();
    return;
  }
  if (guard.tracks_ip()) conn->set_guard_ip(std::move(ip));
  inc(metrics().listeners[li].accepted);
  uv_tcp_nodelay(conn->tcp(), 1);
  conn->start();
}

void Worker::on_tick(uv_timer_t* t) {
  auto* self = static_cast<Worker*>(t->data);
  uint32_t now = self->now_s();
  // tick() may close connections, which removes them from all_ only in the close callback.
  for (ClientConn* c : self->all_) c->tick(now);
  self->outbox_.log_drops(self->index_, now);
}

uint64_t Worker::next_client_id() { return ids_.next(unix_ms()); }

void Worker::register_open(ClientConn* c) {
  by_id_.emplace(c->id(), c);
  host_.client_opened();
  inc(metrics().listeners[c->listener_index()].connections);
}

void Worker::unregister(ClientConn* c) {
  [[maybe_unused]] const size_t erased = by_id_.erase(c->id());
  assert(erased == 1 && "a connection is unregistered exactly once");
  channels_.remove_all(c, [this](const std::string& channel) { host_.channel_presence().remove(channel); });
  host_.client_closed();
  metrics().listeners[c->listener_index()].connections.fetch_sub(1, std::memory_order_relaxed);
}

void Worker::forget(ClientConn* c) {
  // It is freed right after this: nothing may reach it any more. Its channels are found through its
  // own slots (ChannelIndex keeps both sides in step), so empty slots mean no channel holds it.
  assert(!c->is_open() && c->subscriptions().empty());
  assert(!by_id_.count(c->id()) || by_id_.at(c->id()) != c);
  all_.erase(c);
  if (draining_) maybe_finish_drain();
}

void Worker::subscribe(ClientConn* c, const std::string& channel) {
  if (channels_.add(c, channel)) host_.channel_presence().add(channel);
}

void Worker::unsubscribe(ClientConn* c, const std::string& channel) {
  channels_.remove(c, channel, [this](const std::string& gone) { host_.channel_presence().remove(gone); });
}

void Worker::resume_paused() {
  for (ClientConn* c : all_) c->resume_reading();
}

void Worker::emit(unsigned li, uint64_t client, const std::string& context, size_t data_start) {
  outbox_.add(&cfg_.listeners[li].topic, shared_[li].gate.get(), client, context, data_start);
}

SendResult Worker::send(uint64_t client, const OutMessage& msg) {
  auto it = by_id_.find(client);
  if (it == by_id_.end()) return SendResult::NotConnected;
  return it->second->send(msg);
}

FanoutCount Worker::publish(const std::string& channel, const OutMessage& msg) {
  FanoutCount n;
  // send() may close the connection it sends to (hard limit), which unsubscribes it, and no other:
  // each_subscriber's walk allows that.
  channels_.each_subscriber(channel, [&](ClientConn* c) { (c->send(msg) == SendResult::Ok ? n.ok : n.failed)++; });
  return n;
}

FanoutCount Worker::broadcast(const OutMessage& msg) {
  FanoutCount n;
  std::vector<ClientConn*> conns;
  conns.reserve(by_id_.size());
  for (auto& [id, c] : by_id_) conns.push_back(c);
  for (ClientConn* c : conns) (c->send(msg) == SendResult::Ok ? n.ok : n.failed)++;
  return n;
}

uint64_t Worker::channel_count(const std::string& channel) const { return channels_.count(channel); }

std::vector<std::pair<std::string, uint64_t>> Worker::top_channels(size_t n) const { return channels_.largest(n); }

ApiResult Worker::conn_call(uint64_t client, const ConnCall& call) {
  auto it = by_id_.find(client);
  if (it == by_id_.end()) return ApiResult::error(301, "client not connected");
  return apply_conn_call(*this, *it->second, call);
}

ApiResult Worker::conn_info(uint64_t client) const {
  auto it = by_id_.find(client);
  if (it == by_id_.end()) return ApiResult::error(301, "client not connected");
  return describe_conn(*it->second);
}

void Worker::drain() {
  if (draining_) return;
  draining_ = true;
  deferred_accepts_.clear();  // their pending connections are closed with the listeners
  for (auto& s : servers_) uv_close(reinterpret_cast<uv_handle_t*>(s.release()), [](uv_handle_t* h) {
    delete reinterpret_cast<uv_tcp_t*>(h);
  });
  servers_.clear();
  std::vector<ClientConn*> conns(all_.begin(), all_.end());
  for (ClientConn* c : conns) {
    if (c->is_open()) c->close_with(1001, "server shutting down");
    else c->close_now();
  }
  maybe_finish_drain();
}

void Worker::force_stop() {
  drain();
  std::vector<ClientConn*> conns(all_.begin(), all_.end());
  for (ClientConn* c : conns) c->close_now();
}

void Worker::maybe_finish_drain() {
  if (!all_.empty() || drain_reported_) return;
  drain_reported_ = true;
  outbox_.close();  // the clients' close events reach the hub before worker_stopped
  uv_timer_stop(&tick_);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
  mailbox_.close();
  loop_ctx_.close();
  WorkerHost* host = &host_;
  unsigned index = index_;
  host_.post([host, index] { host->worker_stopped(index); });
}

std::string Worker::check_tables() const {
  char buf[160];
  const auto said = [&](const char* fmt, auto... args) {
    std::snprintf(buf, sizeof buf, fmt, args...);
    return std::string(buf);
  };
  for (const auto& [id, c] : by_id_) {
    if (!all_.count(c)) return said("by_id_[%" PRIu64 "] holds a connection that was freed", id);
    if (c->id() != id || !c->is_open()) return said("by_id_[%" PRIu64 "] holds connection %" PRIu64 ", not open", id, c->id());
  }
  std::unordered_set<const void*> entries;  // a slot's channel is looked up before it is read
  for (const auto& entry : channels_.channels()) entries.insert(&entry);
  size_t open = 0;
  for (const ClientConn* c : all_) {
    if (!c->is_open()) continue;
    open++;
    auto it = by_id_.find(c->id());
    if (it == by_id_.end() || it->second != c) return said("open connection %" PRIu64 " is not in by_id_", c->id());
    for (const SubSlot& s : c->subscriptions()) {
      if (!entries.count(s.channel) || s.index >= s.channel->second.size() || s.channel->second[s.index] != c)
        return said("connection %" PRIu64 "'s slot in a channel is wrong", c->id());
    }
  }
  if (open != by_id_.size()) return said("%zu open connections, %zu in by_id_", open, by_id_.size());
  for (const auto& [name, subs] : channels_.channels()) {
    if (subs.empty()) return "channel " + name + " is empty and still listed";
    for (size_t i = 0; i < subs.size(); i++) {
      const ClientConn* c = subs[i];
      if (!all_.count(const_cast<ClientConn*>(c))) return "channel " + name + " holds a connection that was freed";
      if (!c->is_open()) return said("channel %s holds connection %" PRIu64 ", not open", name.c_str(), c->id());
      bool found = false;
      for (const SubSlot& s : c->subscriptions()) found |= s.channel->first == name && s.index == i;
      if (!found) return "channel " + name + " holds a connection without its slot";
    }
  }
  if (host_.client_count() != by_id_.size())
    return said("the host counts %" PRIu64 " clients, by_id_ holds %zu", host_.client_count(), by_id_.size());
  return "";
}

}  // namespace mg
