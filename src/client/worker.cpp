#include "client/worker.h"

#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cinttypes>
#include <cstdio>

#include "client/client_conn.h"
#include "client/conn_ops.h"
#include "core/json_text.h"
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
      ids_(static_cast<unsigned>(cfg.node_id), index, count) {
  uv_loop_init(&loop_);
  loop_ctx_.open(&loop_);
  loop_ctx_.owner = this;
  mailbox_.open(&loop_);
  uv_timer_init(&loop_, &tick_);
  tick_.data = this;
  uv_check_init(&loop_, &outbox_check_);
  outbox_check_.data = this;
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
  unsigned li = static_cast<unsigned>(reinterpret_cast<uintptr_t>(server->data));
  auto* conn = new ClientConn(*self, li);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(conn->tcp())) != 0) {
    conn->close_now();
    return;
  }
  self->admit(conn, li);
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
  if (self->backlog_drops_unlogged_ && (!self->backlog_drop_logged_s_ || now - self->backlog_drop_logged_s_ >= 60)) {
    LOG_WARN("queue: worker %u dropped %llu client event%s: %zu were waiting for the hub thread", self->index_,
             static_cast<unsigned long long>(self->backlog_drops_unlogged_), self->backlog_drops_unlogged_ == 1 ? "" : "s",
             kMaxEventsWaiting);
    self->backlog_drops_unlogged_ = 0;
    self->backlog_drop_logged_s_ = now ? now : 1;
  }
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
  while (!c->subscriptions().empty()) drop_subscription(c, c->subscriptions().size() - 1);
  host_.client_closed();
  metrics().listeners[c->listener_index()].connections.fetch_sub(1, std::memory_order_relaxed);
}

void Worker::forget(ClientConn* c) {
  // It is freed right after this: nothing may reach it any more. Its channels are found through its
  // own slots (drop_subscription keeps both sides in step), so empty slots mean no channel holds it.
  assert(!c->is_open() && c->subscriptions().empty());
  assert(!by_id_.count(c->id()) || by_id_.at(c->id()) != c);
  all_.erase(c);
  if (draining_) maybe_finish_drain();
}

void Worker::subscribe(ClientConn* c, const std::string& channel) {
  auto [it, fresh] = channels_.try_emplace(channel);
  auto* entry = &*it;
  if (fresh) host_.channel_presence().add(channel);
  std::vector<SubSlot>& mine = c->subscriptions();
  for (const SubSlot& s : mine)
    if (s.channel == entry) return;
  mine.push_back(SubSlot{entry, static_cast<uint32_t>(entry->second.size())});
  entry->second.push_back(c);
}

void Worker::unsubscribe(ClientConn* c, const std::string& channel) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  std::vector<SubSlot>& mine = c->subscriptions();
  for (size_t k = 0; k < mine.size(); k++)
    if (mine[k].channel == &*it) return drop_subscription(c, k);
}

void Worker::drop_subscription(ClientConn* c, size_t k) {
  std::vector<SubSlot>& mine = c->subscriptions();
  SubSlot slot = mine[k];
  mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(k));  // keeps the order it joined them in (conn.info)
  Subscribers& subs = slot.channel->second;
  ClientConn* moved = subs.back();
  subs[slot.index] = moved;
  subs.pop_back();
  if (moved != c) {
    for (SubSlot& s : moved->subscriptions())
      if (s.channel == slot.channel) {
        s.index = slot.index;
        break;
      }
  }
  if (!subs.empty()) return;
  host_.channel_presence().remove(slot.channel->first);
  channels_.erase(channels_.find(slot.channel->first));  // not erase(key): the key is the node's
}

void Worker::resume_topic(const std::string& topic) {
  for (ClientConn* c : all_)
    if (c->listener().topic == topic) c->resume_reading();
}

void Worker::resume_backlogged() {
  for (ClientConn* c : all_) c->resume_reading();
}

void Worker::emit(unsigned li, uint64_t client, const std::string& context, size_t data_start) {
  std::string& bytes = outbox_.bytes;
  if (host_.event_backlog().waiting() + outbox_.events.size() >= kMaxEventsWaiting) {
    bytes.resize(data_start);
    inc(metrics().queue_backlog_drops);
    backlog_drops_unlogged_++;
    return;
  }
  const size_t data_len = bytes.size() - data_start, context_at = bytes.size();
  bytes += context;
  if (outbox_.events.empty()) {
    uv_check_start(&outbox_check_, &Worker::on_outbox_check);
    outbox_.events.reserve(kOutboxMax);
  }
  outbox_.events.push_back(
      EventSlot{&cfg_.listeners[li].topic, client, data_start, data_len, context_at, context.size(), shared_[li].gate.get()});
  if (outbox_.events.size() >= kOutboxMax || bytes.size() >= kOutboxMaxBytes) flush_outbox();
}

void Worker::on_outbox_check(uv_check_t* h) { static_cast<Worker*>(h->data)->flush_outbox(); }

namespace {
// Counts a batch's events in (worker) or out of (hub) their topics' gates, one atomic add per run of
// events of one gate (a batch is mostly one listener's): the gates are shared by every worker and the
// hub, an add per event would bounce their cache lines between the threads. `on_open(topic)`, hub side:
// a gate whose producers were paused on events in flight is down to half its bound.
template <typename Slots, typename OnOpen>
void count_in_gates(const Slots& events, int64_t sign, const OnOpen& on_open) {
  TopicGate* gate = nullptr;
  const std::string* topic = nullptr;
  int64_t n = 0;
  const auto count = [&] {
    if (!gate) return;
    if (sign > 0) gate->in_flight.fetch_add(n, std::memory_order_relaxed);
    else if (gate->taken(n)) on_open(*topic);
  };
  for (const auto& e : events) {
    if (e.gate != gate) {
      count();
      gate = e.gate;
      topic = e.topic;
      n = 0;
    }
    n++;
  }
  count();
}
}  // namespace

void Worker::flush_outbox() {
  uv_check_stop(&outbox_check_);
  if (outbox_.events.empty()) return;
  // One task for the whole batch: one closure, one lock, one wake-up and two buffers instead of one
  // of each per event. The hub reads the events in place and copies only those it must keep.
  auto batch = std::make_shared<EventBatch>(std::move(outbox_));
  outbox_.bytes.clear();
  outbox_.events.clear();
  host_.event_backlog().posted(batch->events.size());
  count_in_gates(batch->events, 1, [](const std::string&) {});
  WorkerHost* host = &host_;
  host_.post([host, batch] {
    const char* bytes = batch->bytes.data();
    for (const EventSlot& e : batch->events) {
      QueueEventRef ev;
      ev.topic = e.topic;
      ev.client = e.client;
      ev.data = std::string_view(bytes + e.data_at, e.data_len);
      ev.context = std::string_view(bytes + e.context_at, e.context_len);
      host->push_event(ev);
    }
    // In their topics now, under the topics' own bounds.
    count_in_gates(batch->events, -1, [host](const std::string& topic) { host->resume_topic(topic); });
    host->events_taken(batch->events.size());
  });
}

SendResult Worker::send(uint64_t client, const OutMessage& msg) {
  auto it = by_id_.find(client);
  if (it == by_id_.end()) return SendResult::NotConnected;
  return it->second->send(msg);
}

FanoutCount Worker::publish(const std::string& channel, const OutMessage& msg) {
  FanoutCount n;
  auto it = channels_.find(channel);
  if (it == channels_.end()) return n;
  // send() may close the connection it sends to (hard limit), which unsubscribes it: the last
  // subscriber moves into its slot (and the channel's vector goes away with the last one). Walking
  // from the end, that one was already sent to and nothing is skipped. send() removes no other.
  const Subscribers& subs = it->second;
  for (size_t i = subs.size(); i-- > 0;) (subs[i]->send(msg) == SendResult::Ok ? n.ok : n.failed)++;
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

uint64_t Worker::channel_count(const std::string& channel) const {
  auto it = channels_.find(channel);
  return it == channels_.end() ? 0 : it->second.size();
}

std::vector<std::pair<std::string, uint64_t>> Worker::top_channels(size_t n) const {
  std::vector<std::pair<std::string, uint64_t>> all;
  all.reserve(channels_.size());
  for (const auto& [name, subs] : channels_) all.emplace_back(name, subs.size());
  auto larger = [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; };
  if (all.size() > n) {
    std::partial_sort(all.begin(), all.begin() + n, all.end(), larger);
    all.resize(n);
  } else {
    std::sort(all.begin(), all.end(), larger);
  }
  return all;
}

ApiResult Worker::conn_call(uint64_t client, const ConnCall& call) {
  auto it = by_id_.find(client);
  if (it == by_id_.end()) return ApiResult::error(301, "client not connected");
  return apply_conn_call(*this, *it->second, call);
}

ApiResult Worker::conn_info(uint64_t client) const {
  auto it = by_id_.find(client);
  if (it == by_id_.end()) return ApiResult::error(301, "client not connected");
  const ClientConn* c = it->second;
  std::string r = "{\"s\":true,\"x\":";
  r += c->context().empty() ? "{}" : c->context();
  r += ",\"ch\":[";
  const std::vector<SubSlot>& subs = c->subscriptions();
  for (size_t i = 0; i < subs.size(); i++) {
    if (i) r += ',';
    json_append_string(r, subs[i].channel->first);
  }
  r += "],\"remote_addr\":";
  json_append_string(r, c->remote_addr());
  r += ",\"listener\":";
  json_append_string(r, c->listener().name);
  r += ",\"since\":" + std::to_string(c->since_ms()) + "}";
  return ApiResult::ok(std::move(r));
}

void Worker::drain() {
  if (draining_) return;
  draining_ = true;
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
  flush_outbox();  // the clients' close events reach the hub before worker_stopped
  uv_close(reinterpret_cast<uv_handle_t*>(&outbox_check_), nullptr);
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
  for (const auto& entry : channels_) entries.insert(&entry);
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
  for (const auto& [name, subs] : channels_) {
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
