// The NATS backbone's connection (nats_backbone.h): options from [nats], the connection's events,
// subscriptions and publishing, the hand-over of every message to the hub thread, the tick, /metrics.
#include "nats/nats_backbone.h"

#include <climits>
#include <cstring>
#include <random>

#include "core/log.h"
#include "core/log_text.h"
#include "core/metrics.h"

namespace mg {

namespace {

uint64_t new_instance(uint64_t now_ms) {
  std::random_device rd;
  return ((now_ms & 0xffffffffffull) << 12 | (rd() & 0xfff)) & ((1ull << 53) - 1);
}

}  // namespace

NatsBackbone::NatsBackbone(BackboneHost& host, QueueHub& queue, uv_loop_t* loop, const Config& cfg)
    : host_(host),
      queue_(queue),
      cfg_(cfg),
      loop_(loop),
      self_(static_cast<unsigned>(cfg.node_id)),
      prefix_(nats_prefix(cfg.mesh_cluster)),
      instance_(new_instance(uv_now(loop))) {
  for (int k = 0; k < 5; k++) tags_[k] = SubTag{this, static_cast<Sub>(k)};
}

NatsBackbone::~NatsBackbone() {
  stop();
  // The library's threads are joined: none hands a message over after this.
  nats_CloseAndWait(2000);
}

natsOptions* NatsBackbone::make_options() {
  natsOptions* o = nullptr;
  if (natsOptions_Create(&o) != NATS_OK) return nullptr;
  std::vector<const char*> urls;
  bool tls = !cfg_.nats_tls_ca.empty() || !cfg_.nats_tls_cert.empty();
  for (const std::string& s : cfg_.nats_servers) {
    urls.push_back(s.c_str());
    tls = tls || s.rfind("tls://", 0) == 0;
  }
  const std::string name = "meshgate-" + std::to_string(self_) + " " + cfg_.node_name;
  // Everything below either sets a plain value or loads a file named in the configuration; the first
  // failure is reported with what it was about.
  struct Step {
    const char* what;
    natsStatus s;
  } steps[] = {
      {"servers", natsOptions_SetServers(o, urls.data(), static_cast<int>(urls.size()))},
      {"name", natsOptions_SetName(o, name.c_str())},
      // A node does not hear its own heartbeats, broadcasts or channel fan-outs.
      {"no echo", natsOptions_SetNoEcho(o, true)},
      // One delivery thread for every subscription (not one thread per channel), which also keeps
      // the order the server sent in across subscriptions.
      {"global delivery", natsOptions_UseGlobalMessageDelivery(o, true)},
      // Each publish goes out at once instead of after the library's 1 ms batching wait: a call
      // crosses two nodes in well under a millisecond (docs/benchmarks.md "Backbones").
      {"send asap", natsOptions_SetSendAsap(o, true)},
      {"reconnect", natsOptions_SetMaxReconnect(o, -1)},
      {"reconnect wait", natsOptions_SetReconnectWait(o, 250)},
      {"reconnect jitter", natsOptions_SetReconnectJitter(o, 100, 1000)},
      // A silent server is given up within about dead_after, like a silent node.
      {"ping interval", natsOptions_SetPingInterval(o, std::max<int64_t>(500, int64_t{cfg_.mesh_dead_after} * 500))},
      {"max pings out", natsOptions_SetMaxPingsOut(o, 2)},
      {"retry on failed connect", natsOptions_SetRetryOnFailedConnect(o, true, on_connected, this)},
      {"disconnected callback", natsOptions_SetDisconnectedCB(o, on_disconnected, this)},
      {"reconnected callback", natsOptions_SetReconnectedCB(o, on_connected, this)},
      {"error handler", natsOptions_SetErrorHandler(o, on_error, this)},
      {"user", cfg_.nats_user.empty() ? NATS_OK
                                     : natsOptions_SetUserInfo(o, cfg_.nats_user.c_str(), cfg_.nats_password.c_str())},
      {"token", cfg_.nats_token.empty() ? NATS_OK : natsOptions_SetToken(o, cfg_.nats_token.c_str())},
      {"creds", cfg_.nats_creds.empty() ? NATS_OK
                                       : natsOptions_SetUserCredentialsFromFiles(o, cfg_.nats_creds.c_str(), nullptr)},
      {"tls", tls ? natsOptions_SetSecure(o, true) : NATS_OK},
      {"tls_ca", cfg_.nats_tls_ca.empty() ? NATS_OK : natsOptions_LoadCATrustedCertificates(o, cfg_.nats_tls_ca.c_str())},
      {"tls_cert", cfg_.nats_tls_cert.empty()
                       ? NATS_OK
                       : natsOptions_LoadCertificatesChain(o, cfg_.nats_tls_cert.c_str(), cfg_.nats_tls_key.c_str())},
  };
  for (const Step& st : steps) {
    if (st.s == NATS_OK) continue;
    LOG_ERROR("nats: [nats] %s: %s (%s)", st.what, natsStatus_GetText(st.s), nats_GetLastError(nullptr));
    natsOptions_Destroy(o);
    return nullptr;
  }
  return o;
}

bool NatsBackbone::start() {
  natsOptions* o = make_options();
  if (!o) return false;
  natsStatus s = natsConnection_Connect(&nc_, o);
  natsOptions_Destroy(o);
  if (s == NATS_NOT_YET_CONNECTED) {
    LOG_WARN("nats: no server of [nats] servers answers yet; retrying in the background (calls to other nodes fail "
             "with 501 meanwhile)");
  } else if (s != NATS_OK) {
    LOG_ERROR("nats: cannot connect: %s (%s)", natsStatus_GetText(s), nats_GetLastError(nullptr));
    return false;
  }
  connected_ = s == NATS_OK;
  char inbox[64];
  std::snprintf(inbox, sizeof inbox, "_INBOX.mg%u.%llx", self_, static_cast<unsigned long long>(instance_));
  inbox_ = inbox;
  beat_sub_ = subscribe(prefix_ + ".hb", Sub::Beat);
  node_sub_ = subscribe(prefix_ + ".n." + std::to_string(self_) + ".*", Sub::Node);
  all_sub_ = subscribe(prefix_ + ".all", Sub::All);
  inbox_sub_ = subscribe(inbox_ + ".*", Sub::Inbox);
  if (!beat_sub_ || !node_sub_ || !all_sub_ || !inbox_sub_) return false;
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  const uint64_t tick = std::max<uint64_t>(20, std::min<uint64_t>(100, cfg_.nats_publish_wait_ms / 2 + 1));
  uv_timer_start(&timer_, on_tick, tick, tick);
  started_ = true;
  if (connected_) {
    ensure_stream(false);
    LOG_INFO("nats: connected to %s as node %u (subjects %s.*)", natsConnection_GetConnectedUrl(nc_, inbox, sizeof inbox) == NATS_OK ? inbox : "?",
             self_, prefix_.c_str());
    send_beat();
  }
  return true;
}

void NatsBackbone::stop() {
  if (stopped_ || !nc_) return;
  stopped_ = true;
  if (connected_) send_beat(true);  // the others see this node leave at once
  // From here on nothing new waits for an answer: calls fail at once, events stay in their topics.
  connected_ = false;
  stream_ready_ = false;
  for (auto& [durable, part] : partitions_) unsubscribe(part.reply_sub);
  partitions_.clear();
  natsConnection_FlushTimeout(nc_, 1000);
  for (auto& [ch, c] : channels_) unsubscribe(c.sub);
  for (natsSubscription** s : {&beat_sub_, &node_sub_, &all_sub_, &inbox_sub_, &all_channels_sub_}) unsubscribe(*s);
  natsConnection_Close(nc_);
  natsConnection_Destroy(nc_);
  nc_ = nullptr;
  if (started_) uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
  // Whatever still waits for an answer gets one now.
  fail_pending(0, "node " + std::to_string(self_) + " is stopping");
}

natsSubscription* NatsBackbone::subscribe(const std::string& subject, Sub kind) {
  natsSubscription* sub = nullptr;
  natsStatus s = natsConnection_Subscribe(&sub, nc_, subject.c_str(), on_message, &tags_[static_cast<int>(kind)]);
  if (s != NATS_OK) {
    LOG_ERROR("nats: cannot subscribe to %s: %s", log_safe(subject).c_str(), natsStatus_GetText(s));
    return nullptr;
  }
  // What the library may hold for it before dropping (a slow consumer: counted, see on_error).
  const int bytes = static_cast<int>(std::min<uint64_t>(cfg_.nats_max_pending_bytes, INT_MAX));
  natsSubscription_SetPendingLimits(sub, 1000000, bytes);
  return sub;
}

void NatsBackbone::unsubscribe(natsSubscription*& sub) {
  if (!sub) return;
  natsSubscription_Unsubscribe(sub);
  natsSubscription_Destroy(sub);
  sub = nullptr;
}

void NatsBackbone::publish(const std::string& subject, const std::string& body, const char* reply) {
  if (!nc_) return;
  natsStatus s = reply ? natsConnection_PublishRequest(nc_, subject.c_str(), reply, body.data(), static_cast<int>(body.size()))
                       : natsConnection_Publish(nc_, subject.c_str(), body.data(), static_cast<int>(body.size()));
  if (s != NATS_OK) publish_errors_++;
}

// --- the library's threads: hand everything to the hub ---

void NatsBackbone::on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto* tag = static_cast<SubTag*>(closure);
  // Owned by the task: destroyed with it whether it runs or not (a stopping node).
  MsgPtr m(msg, natsMsg_Destroy);
  NatsBackbone* self = tag->self;
  Sub kind = tag->kind;
  // What waits for the hub thread is bounded like what waits in the library ([nats]
  // max_pending_bytes): past it a message is dropped and counted, as the library drops for a slow
  // consumer. A dropped call fails at its caller's call_timeout; a heartbeat is covered by the next;
  // a pulled event comes back from JetStream.
  const uint64_t size = static_cast<uint64_t>(natsMsg_GetDataLength(msg)) + 128;
  if (self->handoff_bytes_.fetch_add(size, std::memory_order_relaxed) + size > self->cfg_.nats_max_pending_bytes) {
    self->handoff_bytes_.fetch_sub(size, std::memory_order_relaxed);
    self->handoff_dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  self->host_.post([self, kind, m, size] {
    self->handoff_bytes_.fetch_sub(size, std::memory_order_relaxed);
    if (!self->stopped_) self->handle(kind, m);
  });
}

void NatsBackbone::on_connected(natsConnection*, void* closure) {
  auto* self = static_cast<NatsBackbone*>(closure);
  self->host_.post([self] { self->connection_changed(true); });
}

void NatsBackbone::on_disconnected(natsConnection*, void* closure) {
  auto* self = static_cast<NatsBackbone*>(closure);
  self->host_.post([self] { self->connection_changed(false); });
}

void NatsBackbone::on_error(natsConnection*, natsSubscription*, natsStatus err, void* closure) {
  auto* self = static_cast<NatsBackbone*>(closure);
  if (err == NATS_SLOW_CONSUMER) self->slow_consumer_.fetch_add(1, std::memory_order_relaxed);
  else self->async_errors_.fetch_add(1, std::memory_order_relaxed);
}

// --- hub thread ---

void NatsBackbone::connection_changed(bool up) {
  if (stopped_ || up == connected_) return;
  connected_ = up;
  if (up) {
    reconnects_++;
    char url[256];
    LOG_INFO("nats: connected to %s",
             natsConnection_GetConnectedUrl(nc_, url, sizeof url) == NATS_OK ? log_safe(url).c_str() : "?");
    send_beat();
    ensure_stream(false);  // then the partitions this node pulls
    return;
  }
  disconnects_++;
  for (auto& [durable, part] : partitions_) part.pulling = false;  // pulled again after the reconnect
  LOG_WARN("nats: disconnected from the NATS servers; reconnecting (calls to other nodes fail with 501 meanwhile)");
  fail_pending(0, "the NATS backbone is disconnected");
}

void NatsBackbone::handle(Sub kind, const MsgPtr& msg) {
  switch (kind) {
    case Sub::Beat: on_beat(natsMsg_GetData(msg.get()), static_cast<size_t>(natsMsg_GetDataLength(msg.get()))); break;
    case Sub::Node: {
      const char* subject = natsMsg_GetSubject(msg.get());
      const char* dot = std::strrchr(subject, '.');
      on_node_message(dot ? dot + 1 : "", msg);
      break;
    }
    case Sub::All:
    case Sub::Channel: on_call(msg); break;
    case Sub::Inbox: on_reply(msg); break;
  }
}

void NatsBackbone::on_tick(uv_timer_t* t) {
  auto* self = static_cast<NatsBackbone*>(t->data);
  if (self->stopped_) return;
  const uint64_t now = self->now();
  // This node stalled (a long pause of the process, a hung disk): heartbeats that came meanwhile
  // still wait in its mailbox, so it does not judge others by the silence it caused itself.
  if (self->last_tick_ms_ && now - self->last_tick_ms_ > uint64_t{self->cfg_.mesh_dead_after} * 500)
    for (auto& [id, m] : self->members_) m.last_heard_ms += now - self->last_tick_ms_;
  self->last_tick_ms_ = now;
  if (self->connected_ && now >= self->next_beat_ms_) self->send_beat();
  self->check_members(now);
  self->expire_pending(now);
  self->queue_tick(now);
}

bool NatsBackbone::flushed() const { return !nc_ || !connected_ || natsConnection_Buffered(nc_) <= 0; }

std::string NatsBackbone::render_metrics() const {
  PromWriter w;
  uint64_t alive = 0;
  for (const auto& [id, m] : members_) alive += m.alive;
  w.family("meshgate_nats_members", "gauge", "Other nodes known from their NATS heartbeats, alive or dead.");
  w.sample("meshgate_nats_members", {{"state", "alive"}}, alive);
  w.sample("meshgate_nats_members", {{"state", "dead"}}, members_.size() - alive);
  w.family("meshgate_nats_connected", "gauge", "1 while this node is connected to a NATS server.");
  w.sample("meshgate_nats_connected", connected_ ? 1 : 0);
  w.family("meshgate_nats_stream_ready", "gauge", "1 while the JetStream stream for queue events across nodes is there.");
  w.sample("meshgate_nats_stream_ready", stream_ready_ ? 1 : 0);
  w.family("meshgate_nats_pulled_unacked", "gauge", "Queue events pulled from the stream and not yet acknowledged.");
  w.sample("meshgate_nats_pulled_unacked", pulled_.size());
  uint64_t dropped = 0;
  for (natsSubscription* s : {beat_sub_, node_sub_, all_sub_, inbox_sub_, all_channels_sub_}) {
    int64_t d = 0;
    if (s && natsSubscription_GetDropped(s, &d) == NATS_OK && d > 0) dropped += static_cast<uint64_t>(d);
  }
  for (const auto& [ch, c] : channels_) {
    int64_t d = 0;
    if (c.sub && natsSubscription_GetDropped(c.sub, &d) == NATS_OK && d > 0) dropped += static_cast<uint64_t>(d);
  }
  const struct {
    const char* name;
    const char* help;
    uint64_t value;
  } counters[] = {
      {"meshgate_nats_disconnects_total", "Times this node lost its NATS server (it reconnects to any of [nats] servers).", disconnects_},
      {"meshgate_nats_connects_total", "Times this node connected or reconnected to a NATS server.", reconnects_},
      {"meshgate_nats_slow_consumer_total",
       "Times the NATS client library had more than [nats] max_pending_bytes waiting for a subscription and dropped messages.",
       slow_consumer_.load(std::memory_order_relaxed)},
      {"meshgate_nats_dropped_messages_total", "Messages the NATS client library dropped for a slow consumer (subscriptions open now).", dropped},
      {"meshgate_nats_handoff_dropped_total",
       "Messages dropped because more than [nats] max_pending_bytes already waited for this node's hub thread.",
       handoff_dropped_.load(std::memory_order_relaxed)},
      {"meshgate_nats_async_errors_total", "Other asynchronous errors the NATS client library reported.", async_errors_.load(std::memory_order_relaxed)},
      {"meshgate_nats_calls_total", "Calls to other nodes answered (ok) over NATS.", calls_ok_},
      {"meshgate_nats_calls_failed_total", "Calls to other nodes that failed: an error answer, no answer within call_timeout, a dead node or no backbone.", calls_failed_},
      {"meshgate_nats_late_answers_total", "Answers to a call or fan-out that came after it was answered (not counted in its result).", late_answers_},
      {"meshgate_nats_events_forwarded_total", "Queue events this node published into the JetStream stream (no consumer here, one on another node).", events_forwarded_},
      {"meshgate_nats_events_pulled_total", "Queue events this node pulled from the JetStream stream for its consumers.", events_pulled_},
      {"meshgate_nats_stream_refusals_total", "Queue events the stream refused or did not acknowledge in time (full, or no JetStream): kept in their topic.", stream_refusals_},
      {"meshgate_nats_bad_messages_total", "Messages on this cluster's subjects that could not be read (dropped).", bad_messages_},
      {"meshgate_nats_duplicate_id_total", "Heartbeats of another node using this node's id (a misconfiguration).", duplicate_ids_},
      {"meshgate_nats_publish_errors_total", "Publishes the NATS client library refused (closed connection, full reconnect buffer).", publish_errors_},
      {"meshgate_nats_deaths_total", "Nodes this node saw die (no heartbeat within dead_after) or leave.", deaths_},
      {"meshgate_nats_heartbeats_sent_total", "Heartbeats this node published.", beats_sent_},
  };
  for (const auto& c : counters) {
    w.family(c.name, "counter", c.help);
    w.sample(c.name, c.value);
  }
  return w.take();
}

}  // namespace mg
