// The queue across nodes over NATS: a JetStream work-queue stream (docs/cluster.md "Queue events
// over NATS"). The JetStream API is spoken as plain requests on this node's inbox (no call blocks the
// hub thread):
//
//   producer  an event of a topic with no consumer here, while some node has consumers for it
//             (their heartbeats say so), is published to P.q.<topic hex>.<partition> (partition: of
//             its client, so one client's events stay in one partition, in order) with a reply
//             subject: the stream's acknowledgement hands the event over (QueueHub::remote_done;
//             it now survives this node), its refusal (stream full: the bound) gives it back to its
//             topic (QueueHub::remote_refused), under the topic's own bound and overflow policy,
//             and no forwarding for a second
//   consumer  each partition of a topic is pulled by one node of those with consumers for it (a
//             rendezvous pick every node makes alike), from a durable pull consumer per partition;
//             what it pulls goes into its local topic, and is acknowledged to JetStream when the
//             local queue is done with it (consumed, or discarded as poison). An event not
//             acknowledged within ack_wait (its node died) is given again to the partition's owner
//             then: at-least-once, whichever gateway node dies
#include <algorithm>
#include <cstdio>
#include <functional>
#include <cstring>

#include "core/hrw.h"
#include "core/log.h"
#include "core/log_text.h"
#include "nats/nats_backbone.h"

namespace mg {

namespace {

constexpr unsigned kPartitions = 8;
constexpr unsigned kPullBatch = 32;
// Short: a pull made while a partition was this node's may still take its events for this long after
// it moved (they are given back, NAK, and may then come after newer ones: docs/cluster.md).
constexpr uint64_t kPullExpiresMs = 500;
constexpr size_t kMaxPulledPerPartition = 128;  // pulled, not yet done here: the credit of one partition

// The JetStream API's error in a response body, or 0 for a success.
int js_error(const char* data, size_t len, std::string& description) {
  JsonPtr doc = json_parse_strict(data, len);
  const cJSON* err = cJSON_GetObjectItemCaseSensitive(doc.get(), "error");
  if (!doc) {
    description = "not a JetStream answer";
    return -1;
  }
  if (!err) return 0;
  int64_t code = 0;
  json_integer(cJSON_GetObjectItemCaseSensitive(err, "err_code"), 0, 1 << 30, code);
  description = mesh_read_string(err, "description");
  return code ? static_cast<int>(code) : -1;
}

// A status-only message (no responders, a pull's end): its status code, else 0.
int status_of(natsMsg* m) {
  if (natsMsg_GetDataLength(m) > 0) return 0;
  const char* v = nullptr;
  if (natsMsgHeader_Get(m, "Status", &v) != NATS_OK || !v) return 0;
  return std::atoi(v);
}

// The JetStream API's answer `m` to a request: 0 for a success, else an error code with `why` set (-1:
// no answer in time, or not one of JetStream's; -2: a status only, no responders: no JetStream).
int js_answer(const std::shared_ptr<natsMsg>& m, std::string& why) {
  if (!m) {
    why = "no answer";
    return -1;
  }
  if (status_of(m.get())) {
    why = "JetStream is not enabled on the NATS servers";
    return -2;
  }
  return js_error(natsMsg_GetData(m.get()), static_cast<size_t>(natsMsg_GetDataLength(m.get())), why);
}

}  // namespace

std::string NatsBackbone::stream_name() const {
  std::string s = "MG_" + prefix_;
  for (char& c : s)
    if (c == '.') c = '_';
  return s;
}

void NatsBackbone::js_request(const std::string& subject, const std::string& body,
                              std::function<void(const MsgPtr&)> done) {
  Pending p;
  p.kind = Pending::Kind::Js;
  p.deadline_ms = now() + uint64_t{cfg_.mesh_call_timeout} * 1000;
  p.js_done = std::move(done);
  uint64_t seq = new_pending(std::move(p));
  publish(subject, body, inbox_subject(seq).c_str());
}

void NatsBackbone::ensure_stream(bool update) {
  stream_asking_ = true;  // until its answer (or none within call_timeout)
  std::string cfg = "{\"name\":\"" + stream_name() + "\",\"subjects\":[\"" + prefix_ +
                    ".q.>\"],\"retention\":\"workqueue\",\"storage\":\"file\",\"discard\":\"new\",\"max_bytes\":" +
                    std::to_string(cfg_.nats_stream_max_bytes) + ",\"num_replicas\":" +
                    std::to_string(cfg_.nats_stream_replicas) + "}";
  js_request("$JS.API.STREAM." + std::string(update ? "UPDATE." : "CREATE.") + stream_name(), cfg,
             [this, update](const MsgPtr& m) {
               std::string why;
               const int code = js_answer(m, why);
               if (code == 10058 && !update) return ensure_stream(true);  // exists with another configuration
               stream_asking_ = false;
               if (code != 0) {
                 // Asked again soon (a JetStream leader being elected after a server's loss takes
                 // seconds), then less often, up to every 10 s (no JetStream at all).
                 stream_ready_ = false;
                 next_stream_try_ms_ = now() + stream_backoff_ms_;
                 LOG_WARN("nats: queue events cannot go across nodes: stream %s: %s (asked again in %llu ms)",
                          stream_name().c_str(), why.c_str(), static_cast<unsigned long long>(stream_backoff_ms_));
                 stream_backoff_ms_ = std::min<uint64_t>(10000, 2 * stream_backoff_ms_);
                 return;
               }
               stream_backoff_ms_ = 500;
               if (!stream_ready_) LOG_INFO("nats: queue events across nodes go through JetStream stream %s", stream_name().c_str());
               stream_ready_ = true;
               for (auto& [d, part] : partitions_) part.consumer_ready = false;
               update_partitions();
               queue_.remote_ready_changed();
             });
}

// --- producer ---

bool NatsBackbone::remote_ready(unsigned node) const {
  auto it = members_.find(node);
  return connected_ && stream_ready_ && now() >= refused_until_ms_ && it != members_.end() && it->second.alive &&
         static_cast<uint64_t>(std::max(0, natsConnection_Buffered(nc_))) < cfg_.mesh_max_link_buffer / 4;
}

void NatsBackbone::remote_forward(unsigned, const QueueEvent& ev) {
  const uint64_t fwd = ev.fwd;
  const unsigned part = static_cast<unsigned>(stable_hash(&ev.client, sizeof ev.client) % kPartitions);
  events_forwarded_++;
  js_request(prefix_ + ".q." + nats_hex(ev.topic) + "." + std::to_string(part), mesh_encode(ev, self_),
             [this, fwd](const MsgPtr& m) {
               std::string why;
               const int code = js_answer(m, why);
               if (code == 0) {
                 queue_.remote_done(fwd);  // the stream holds it now
                 return kick_queue();      // room for more (QueueHub bounds what waits for answers)
               }
               stream_refusals_++;
               uint64_t left_out = 0;
               if (refusal_log_.admit(now(), left_out))
                 LOG_WARN("nats: stream %s refused a queue event (%s); events wait in their topic (%llu more not logged)",
                          stream_name().c_str(), why.c_str(),
                          static_cast<unsigned long long>(left_out));
               refused_until_ms_ = now() + 1000;
               refused_.push_back(fwd);  // given back at the next tick, in order
             });
}

// --- consumer ---

void NatsBackbone::update_partitions() {
  std::map<std::string, Partition> keep;
  if (connected_ && stream_ready_ && !stopped_) {
    for (const std::string& topic : queue_.local_topics()) {
      std::vector<unsigned> nodes{self_};
      for (const auto& [id, m] : members_)
        if (m.alive && std::find(m.beat.topics.begin(), m.beat.topics.end(), topic) != m.beat.topics.end())
          nodes.push_back(id);
      for (unsigned p = 0; p < kPartitions; p++) {
        // A durable name has at most 255 bytes and a topic up to 128 (256 in hex): its hash instead.
        char durable[48];
        std::snprintf(durable, sizeof durable, "q_%016llx_%u", static_cast<unsigned long long>(stable_hash(topic)), p);
        auto it = hrw_pick(stable_hash(durable), nodes, [](const unsigned& n) { return stable_hash(&n, sizeof n); });
        if (*it != self_) continue;
        auto old = partitions_.find(durable);
        if (old != partitions_.end()) {
          keep.emplace(durable, std::move(old->second));
          continue;
        }
        Partition part;
        part.topic = topic;
        part.filter = prefix_ + ".q." + nats_hex(topic) + "." + std::to_string(p);
        part.id = ++next_partition_id_;
        // Its pulls' own reply subject (outside the inbox's wildcard): when the partition moves on,
        // unsubscribing it leaves the server no interest in a pull still waiting there, which it then
        // drops instead of handing it the partition's next events.
        part.reply_sub = subscribe(pull_subject(part.id), Sub::Inbox);
        keep.emplace(durable, std::move(part));
      }
    }
  }
  for (auto& [durable, part] : partitions_)
    if (!keep.count(durable)) unsubscribe(part.reply_sub);
  partitions_ = std::move(keep);
  for (auto& [durable, part] : partitions_) {
    if (!part.consumer_ready) make_consumer(durable);
    else pull(durable, part);
  }
}

void NatsBackbone::make_consumer(const std::string& durable) {
  Partition& part = partitions_[durable];
  if (part.creating) return;
  part.creating = true;
  // Not acknowledged within ack_wait (dead_after: the node that pulled it died, or it stopped owning
  // the partition): given again, to whichever node pulls the partition then. A node keeps what it
  // holds with +WPI every ack_wait/3 (keep_pulled).
  const uint64_t ack_wait_ns = ack_wait_ms() * 1000000ull;
  std::string body = "{\"stream_name\":\"" + stream_name() + "\",\"config\":{\"durable_name\":\"" + durable +
                     "\",\"ack_policy\":\"explicit\",\"deliver_policy\":\"all\",\"filter_subject\":\"" + part.filter +
                     "\",\"ack_wait\":" + std::to_string(ack_wait_ns) + ",\"max_ack_pending\":" +
                     std::to_string(kMaxPulledPerPartition) + ",\"max_deliver\":-1}}";
  js_request("$JS.API.CONSUMER.DURABLE.CREATE." + stream_name() + "." + durable, body, [this, durable](const MsgPtr& m) {
    auto it = partitions_.find(durable);
    if (it == partitions_.end()) return;  // no longer ours
    it->second.creating = false;
    std::string why;
    const int code = js_answer(m, why);
    if (code != 0) {
      LOG_WARN("nats: consumer %s of stream %s: %s (tried again in 5 s)", durable.c_str(), stream_name().c_str(), why.c_str());
      it->second.retry_ms = now() + 5000;
      return;
    }
    it->second.consumer_ready = true;
    LOG_DEBUG("nats: pulling partition %s of topic %s", durable.c_str(), log_safe(it->second.topic).c_str());
    pull(durable, it->second);
  });
}

void NatsBackbone::pull(const std::string& durable, Partition& part) {
  if (part.pulling || !connected_ || part.pulled >= kMaxPulledPerPartition) return;
  part.pulling = true;
  part.batch_left = kPullBatch;
  part.pull_deadline_ms = now() + kPullExpiresMs + uint64_t{cfg_.mesh_call_timeout} * 1000;
  const std::string body = "{\"batch\":" + std::to_string(kPullBatch) +
                           ",\"expires\":" + std::to_string(kPullExpiresMs * 1000000ull) + "}";
  publish("$JS.API.CONSUMER.MSG.NEXT." + stream_name() + "." + durable, body,
          pull_subject(part.id).c_str());
}

void NatsBackbone::on_pulled(uint64_t id, const MsgPtr& m) {
  // An event names its partition by its subject (the partition's filter), a pull's end by `id`.
  const char* subject = natsMsg_GetSubject(m.get());
  auto it = partitions_.begin();
  while (it != partitions_.end() && (id ? it->second.id != id : it->second.filter != subject)) ++it;
  const char* ack = natsMsg_GetReply(m.get());
  const int status = status_of(m.get());
  if (id == 0 && status == 0 && ack && std::strncmp(ack, "$JS.ACK.", 8) == 0) {
    // An event (this node's to deliver even when the partition moved on meanwhile). One that cannot
    // be read, or whose topic is not its subject's (not written by a node), is never given again.
    if (it == partitions_.end()) {
      // A pull this node made while the partition was its own, answered after it moved: given back
      // at once for its new owner.
      publish(ack, "-NAK");
      return;
    }
    MeshEvent e;
    const bool read = mesh_decode(natsMsg_GetData(m.get()), natsMsg_GetDataLength(m.get()), e) && e.complete && e.ev.node;
    const std::string want = read ? prefix_ + ".q." + nats_hex(e.ev.topic) + "." : "";
    if (!read || std::strncmp(subject, want.c_str(), want.size()) != 0) {
      publish(ack, "+TERM");
      queue_.discard(QueueHub::Discard::InvalidText);
    } else {
      // $JS.ACK.<stream>.<consumer>.<delivered>.<...>: how often JetStream gave it out, so a
      // poison event is counted across nodes ([queue] max_deliveries).
      unsigned delivered = 1;
      std::sscanf(ack, "$JS.ACK.%*[^.].%*[^.].%u.", &delivered);
      e.ev.failures = delivered > 1 ? delivered - 1 : 0;
      e.ev.redelivered = e.ev.redelivered || delivered > 1;  // or given again before it went in
      // Its own handle here; hops 0: should its consumers here leave before it is delivered, it goes
      // back into the stream for the partition's next owner (and this copy is acknowledged then).
      e.ev.hops = 0;
      e.ev.fwd = ++next_pulled_;
      pulled_.emplace(e.ev.fwd, PulledEvent{ack, it == partitions_.end() ? "" : it->first, now()});
      if (it != partitions_.end()) it->second.pulled++;
      events_pulled_++;
      queue_.push(std::move(e.ev));
    }
    if (it != partitions_.end() && it->second.batch_left > 0 && --it->second.batch_left > 0) return;
    if (it == partitions_.end()) return;
  }
  // The batch is done: all came, or the server ended it (404 nothing, 408 expired; 409 the consumer
  // was deleted, its leader changed, too many pulls wait; 503 no JetStream). A status other than
  // 404/408 makes the consumer be made again (idempotent), a second later.
  if (it == partitions_.end()) return;
  Partition& part = it->second;
  part.pulling = false;
  if (status == 0 || status == 408 || status == 404) return pull(it->first, part);
  LOG_DEBUG("nats: a pull of partition %s ended with status %d", it->first.c_str(), status);
  part.consumer_ready = false;
  part.retry_ms = now() + 1000;
}

// Finished with here (consumed, or acknowledged by the consumer): acknowledged to JetStream.
void NatsBackbone::remote_done(unsigned, uint64_t fwd) { settle_pulled(fwd, "+ACK"); }

// Dropped here (the topic's bound): JetStream gives it again at once, to whoever pulls then.
void NatsBackbone::remote_released(unsigned, uint64_t fwd) { settle_pulled(fwd, "-NAK"); }

void NatsBackbone::settle_pulled(uint64_t fwd, const char* verdict) {
  auto it = pulled_.find(fwd);
  if (it == pulled_.end()) return;
  publish(it->second.ack_subject, verdict);
  auto part = partitions_.find(it->second.durable);
  pulled_.erase(it);
  if (part != partitions_.end() && part->second.pulled > 0 && part->second.pulled-- == kMaxPulledPerPartition)
    pull(part->first, part->second);
}

void NatsBackbone::keep_pulled(uint64_t t) {
  // Still in this node's queue (every way out of it settles the event): JetStream is told it is in
  // progress, so a slow consumer does not get a second copy at ack_wait.
  const uint64_t every_ms = ack_wait_ms() / 3;
  for (auto& [fwd, ev] : pulled_) {
    if (t - ev.pulled_ms < every_ms) continue;
    publish(ev.ack_subject, "+WPI");
    ev.pulled_ms = t;
  }
}

std::string NatsBackbone::pull_subject(uint64_t id) const { return inbox_ + "P.p" + std::to_string(id); }

uint64_t NatsBackbone::ack_wait_ms() const { return std::max<uint64_t>(1000, uint64_t{cfg_.mesh_dead_after} * 1000); }

void NatsBackbone::kick_queue() {
  if (kick_posted_) return;
  kick_posted_ = true;
  host_.post([this] {
    kick_posted_ = false;
    if (!stopped_) queue_.remote_ready_changed();
  });
}

void NatsBackbone::queue_tick(uint64_t t) {
  if (!connected_) return;
  if (!stream_ready_ && !stream_asking_ && t >= next_stream_try_ms_) ensure_stream(false);
  if (refused_until_ms_ && t >= refused_until_ms_) refused_until_ms_ = 0;
  // Events that waited for room (the client library's buffer, answers outstanding) go on.
  if (stream_ready_) queue_.remote_ready_changed();
  if (t >= next_sweep_ms_) {
    next_sweep_ms_ = t + ack_wait_ms() / 6;
    keep_pulled(t);
  }
  if (!refused_.empty()) {
    // Back to their topics newest first, each to the front: oldest first again, in order.
    std::sort(refused_.begin(), refused_.end(), std::greater<uint64_t>());
    for (uint64_t fwd : refused_) queue_.remote_refused(fwd);
    refused_.clear();
  }
  for (auto& [durable, part] : partitions_) {
    if (part.pulling && t > part.pull_deadline_ms) {
      // A pull whose end never came (a server that died with it): the consumer is made again.
      part.pulling = false;
      part.consumer_ready = false;
    }
    if (part.pulling || part.creating || t < part.retry_ms) continue;
    if (!part.consumer_ready) make_consumer(durable);
    else pull(durable, part);
  }
}

}  // namespace mg
