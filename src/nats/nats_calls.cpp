// Calls and fan-outs over NATS (nats_backbone.h): a call is published to the node's subject with
// this node's inbox as reply subject; answers come back "<node> <REPLY body>" and are matched by the
// inbox subject's last token. A channel's fan-out goes to P.ch.<channel>, which only the nodes that
// hold the channel subscribe to (this node's interest: local_interest).
#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/log.h"
#include "nats/nats_backbone.h"

namespace mg {

bool NatsBackbone::congested() const {
  return pending_.size() >= kMaxPending ||
         static_cast<uint64_t>(std::max(0, natsConnection_Buffered(nc_))) >= cfg_.mesh_max_link_buffer;
}

std::string NatsBackbone::inbox_subject(uint64_t seq) const { return inbox_ + "." + std::to_string(seq); }

uint64_t NatsBackbone::new_pending(Pending p) {
  uint64_t seq = ++next_seq_;
  pending_.emplace(seq, std::move(p));
  return seq;
}

void NatsBackbone::call(unsigned node, const std::string& method, const std::string& params_json, int not_here_code,
                        Reply reply) {
  auto it = members_.find(node);
  if (it == members_.end()) {
    reply(ApiResult::error(not_here_code, "client not connected (node " + std::to_string(node) + " is not a member)"));
    return;
  }
  if (!connected_ || !it->second.alive || congested()) {
    calls_failed_++;
    reply(ApiResult::error(501, !connected_          ? std::string("the NATS backbone is disconnected")
                                : !it->second.alive ? "node " + std::to_string(node) + " is unavailable"
                                                    : std::string("the NATS backbone is congested")));
    return;
  }
  Pending p{Pending::Kind::Call, {node}, now() + uint64_t{cfg_.mesh_call_timeout} * 1000, std::move(reply), {}, {}, {}};
  uint64_t seq = new_pending(std::move(p));
  MeshCall c;
  c.seq = seq;
  c.method = method;
  c.params_text = params_json;
  publish(nats_node_subject(prefix_, node, "call"), mesh_encode(c), inbox_subject(seq).c_str());
}

void NatsBackbone::fanout(const std::string& method, const std::string& params_json,
                          std::function<void(std::vector<ApiResult>)> done, const std::string* channel) {
  std::set<unsigned> alive = alive_ids();
  if (!connected_ || alive.empty()) return done({});
  if (congested()) {
    calls_failed_++;
    std::vector<ApiResult> failed;
    if (!channel)
      for (unsigned id : alive) failed.push_back(ApiResult::error(501, "node " + std::to_string(id) + ": the NATS backbone is congested"));
    return done(std::move(failed));
  }
  Pending p;
  p.kind = channel ? Pending::Kind::ChannelFanout : Pending::Kind::Fanout;
  p.waiting = std::move(alive);
  p.deadline_ms = now() + (channel ? uint64_t{cfg_.nats_publish_wait_ms} : uint64_t{cfg_.mesh_call_timeout} * 1000);
  p.done = std::move(done);
  uint64_t seq = new_pending(std::move(p));
  MeshCall c;
  c.seq = seq;
  c.method = method;
  c.params_text = params_json;
  publish(channel ? nats_channel_subject(prefix_, *channel) : prefix_ + ".all", mesh_encode(c),
          inbox_subject(seq).c_str());
}

void NatsBackbone::local_interest(const std::string& channel, bool held) {
  if (stopped_) return;
  auto it = channels_.find(channel);
  if (held) {
    LocalChannel& c = channels_[channel];
    if (c.workers++ > 0) return;
    held_channels_++;
    if (held_channels_ > cfg_.mesh_max_interest) {
      // Past the bound: one subscription to every channel's fan-out instead of one per channel
      // (a fan-out for a channel nobody here holds is answered {"s":0}).
      if (!all_channels_sub_) {
        LOG_WARN("nats: this node holds more than [mesh] max_interest (%u) channels: it takes every channel's "
                 "fan-out from now on",
                 cfg_.mesh_max_interest);
        all_channels_sub_ = subscribe(prefix_ + ".ch.*", Sub::Channel);
        for (auto& [name, lc] : channels_) unsubscribe(lc.sub);
      }
      return;
    }
    if (!all_channels_sub_) c.sub = subscribe(nats_channel_subject(prefix_, channel), Sub::Channel);
    return;
  }
  if (it == channels_.end() || it->second.workers == 0) return;
  if (--it->second.workers > 0) return;
  held_channels_--;
  unsubscribe(it->second.sub);
  channels_.erase(it);
  if (all_channels_sub_ && held_channels_ <= uint64_t{cfg_.mesh_max_interest} * 9 / 10) {
    // Back under 90% of the bound: one subscription per channel again, made before the wildcard goes
    // (a publish the server routes in between may reach this node twice, never not at all).
    for (auto& [name, lc] : channels_) lc.sub = subscribe(nats_channel_subject(prefix_, name), Sub::Channel);
    unsubscribe(all_channels_sub_);
    LOG_INFO("nats: this node holds %llu channels again, under 90%% of [mesh] max_interest: one subscription each",
             static_cast<unsigned long long>(held_channels_));
  }
}

void NatsBackbone::interest_barrier(std::function<void()> done) {
  std::set<unsigned> alive = alive_ids();
  if (!connected_ || alive.empty()) return done();
  Pending p;
  p.kind = Pending::Kind::Barrier;
  p.waiting = alive;
  p.deadline_ms = now() + uint64_t{cfg_.mesh_call_timeout} * 1000;
  p.barrier_done = std::move(done);
  uint64_t seq = new_pending(std::move(p));
  const std::string reply = inbox_subject(seq);
  for (unsigned id : alive) publish(nats_node_subject(prefix_, id, "sync"), "", reply.c_str());
}

void NatsBackbone::on_node_message(const char* kind, const MsgPtr& msg) {
  if (std::strcmp(kind, "call") == 0) return on_call(msg);
  if (std::strcmp(kind, "sync") == 0) {
    // The barrier's ping: its arrival is the answer (the node's reply names it).
    const char* reply = natsMsg_GetReply(msg.get());
    if (reply && std::strncmp(reply, "_INBOX.mg", 9) == 0) publish(reply, nats_reply_body(self_, MeshReply{0, 0, "", "null"}));
    return;
  }
  bad_messages_++;
}

void NatsBackbone::on_call(const MsgPtr& msg) {
  MeshCall c;
  const char* reply_to = natsMsg_GetReply(msg.get());
  if (!reply_to || !mesh_decode(natsMsg_GetData(msg.get()), static_cast<size_t>(natsMsg_GetDataLength(msg.get())), c)) {
    bad_messages_++;
    return;
  }
  // Answers go to a meshgate node's inbox only, never where any publisher says.
  if (std::strncmp(reply_to, "_INBOX.mg", 9) != 0) {
    bad_messages_++;
    return;
  }
  std::string subject = reply_to;
  uint64_t seq = c.seq;
  Reply reply = [this, subject, seq](const ApiResult& r) {
    if (!stopped_) publish(subject, nats_reply_body(self_, MeshReply{seq, r.code, r.message, r.result}));
  };
  if (host_.draining()) return reply(ApiResult::error(501, "node " + std::to_string(self_) + " is draining"));
  // The params live until the answer (a handler may still read them when a worker reports back).
  auto params = std::make_shared<JsonPtr>(std::move(c.params));
  host_.run_remote_call(c.method, params->get(), c.params_text.empty() ? nullptr : c.params_text.data(),
                        c.params_text.size(), [reply, params](const ApiResult& r) { reply(r); });
}

void NatsBackbone::on_reply(const MsgPtr& msg) {
  const char* subject = natsMsg_GetSubject(msg.get());
  // JetStream hands a pull's events over with their own subject (P.q...), its end with the pull's.
  if (std::strncmp(subject, inbox_.data(), inbox_.size()) != 0) return on_pulled(0, msg);
  const char* dot = std::strrchr(subject, '.');
  if (dot && dot[1] == 'p') return on_pulled(std::strtoull(dot + 2, nullptr, 10), msg);  // a pull's end
  uint64_t seq = dot ? std::strtoull(dot + 1, nullptr, 10) : 0;
  auto it = pending_.find(seq);
  if (it != pending_.end() && it->second.kind == Pending::Kind::Js) {
    auto done = std::move(it->second.js_done);
    pending_.erase(it);
    return done(msg);
  }
  unsigned node = 0;
  MeshReply r;
  if (!nats_read_reply(natsMsg_GetData(msg.get()), static_cast<size_t>(natsMsg_GetDataLength(msg.get())), node, r)) {
    bad_messages_++;
    return;
  }
  if (it == pending_.end() || (it->second.kind != Pending::Kind::ChannelFanout && !it->second.waiting.count(node))) {
    late_answers_++;  // answered already (501 at its deadline, or the node was declared dead)
    return;
  }
  Pending& p = it->second;
  p.waiting.erase(node);
  ApiResult res = r.code == 0 ? ApiResult::ok(std::move(r.result)) : ApiResult::error(r.code, std::move(r.message));
  switch (p.kind) {
    case Pending::Kind::Call: {
      Reply reply = std::move(p.reply);
      pending_.erase(it);
      (res.code == 0 ? calls_ok_ : calls_failed_)++;
      return reply(res);
    }
    case Pending::Kind::Fanout:
    case Pending::Kind::ChannelFanout: p.answers.push_back(std::move(res)); break;
    case Pending::Kind::Barrier:
    case Pending::Kind::Js: break;
  }
  if (p.waiting.empty()) finish(seq);
}

void NatsBackbone::finish(uint64_t seq) {
  auto it = pending_.find(seq);
  if (it == pending_.end()) return;
  Pending p = std::move(it->second);
  pending_.erase(it);
  switch (p.kind) {
    case Pending::Kind::Call: break;  // answered or failed by the caller of finish
    case Pending::Kind::Fanout:
    case Pending::Kind::ChannelFanout: p.done(std::move(p.answers)); break;
    case Pending::Kind::Barrier: p.barrier_done(); break;
    case Pending::Kind::Js: p.js_done(nullptr); break;
  }
}

void NatsBackbone::fail_pending(unsigned node, const std::string& why) {
  std::vector<uint64_t> seqs;
  for (auto& [seq, p] : pending_)
    if (node == 0 || p.waiting.count(node)) seqs.push_back(seq);
  for (uint64_t seq : seqs) {
    auto it = pending_.find(seq);
    if (it == pending_.end()) continue;
    Pending& p = it->second;
    if (p.kind == Pending::Kind::Call) {
      Reply reply = std::move(p.reply);
      pending_.erase(it);
      calls_failed_++;
      reply(ApiResult::error(501, why));
      continue;
    }
    if (p.kind == Pending::Kind::Js) {
      finish(seq);  // no answer: the caller acts as for a refusal
      continue;
    }
    // A fan-out counts a failed node as an error answer (a channel's fan-out: as nothing, since it
    // may not have held the channel); a barrier stops waiting for it.
    for (auto n = p.waiting.begin(); n != p.waiting.end();) {
      if (node != 0 && *n != node) {
        ++n;
        continue;
      }
      if (p.kind == Pending::Kind::Fanout) p.answers.push_back(ApiResult::error(501, why));
      n = p.waiting.erase(n);
    }
    if (p.waiting.empty() || node == 0) finish(seq);
  }
}

void NatsBackbone::expire_pending(uint64_t t) {
  std::vector<uint64_t> seqs;
  for (auto& [seq, p] : pending_)
    if (p.deadline_ms <= t) seqs.push_back(seq);
  for (uint64_t seq : seqs) {
    auto it = pending_.find(seq);
    if (it == pending_.end()) continue;  // answered by a callback of an earlier one
    Pending& p = it->second;
    const std::string why = "did not answer within " + std::to_string(cfg_.mesh_call_timeout) + " s";
    if (p.kind == Pending::Kind::Call) {
      Reply reply = std::move(p.reply);
      unsigned node = p.waiting.empty() ? 0 : *p.waiting.begin();
      pending_.erase(it);
      calls_failed_++;
      reply(ApiResult::error(501, "node " + std::to_string(node) + " " + why));
      continue;
    }
    if (p.kind == Pending::Kind::Fanout)
      for (unsigned n : p.waiting) p.answers.push_back(ApiResult::error(501, "node " + std::to_string(n) + " " + why));
    if (p.kind == Pending::Kind::Barrier && !p.waiting.empty())
      LOG_DEBUG("nats: subscribe barrier answered at call_timeout: %zu node(s) did not answer", p.waiting.size());
    finish(seq);
  }
}

}  // namespace mg
