// Remote calls: an API method run on another node (CALL), its answer (REPLY) matched by sequence
// number, the deadline every call has (call_timeout), and the fan-out of one method to every alive
// peer. Calls that arrive here are run by the host (BackboneHost::run_remote_call), on this node only.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/json_text.h"
#include "mesh/mesh.h"

#include "core/log.h"

namespace mg {

void Mesh::call(unsigned node, const std::string& method, const std::string& params_json, int not_here_code,
                Reply reply) {
  auto it = members_.find(node);
  if (it == members_.end()) {
    reply(ApiResult::error(not_here_code, "client not connected (node " + std::to_string(node) + " is not a member)"));
    return;
  }
  Member& m = it->second;
  if (!m.alive) {
    reply(ApiResult::error(501, "node " + std::to_string(node) + " is unavailable"));
    return;
  }
  MeshCall c;
  c.seq = ++next_call_;
  c.method = method;
  c.params_text = params_json;
  if (!send_to(m, MeshType::Call, mesh_encode(c), cfg_.mesh_max_link_buffer)) {
    calls_failed_++;
    reply(ApiResult::error(501, "the link to node " + std::to_string(node) + " is congested"));
    return;
  }
  calls_.emplace(c.seq, PendingCall{node, now() + uint64_t{cfg_.mesh_call_timeout} * 1000, std::move(reply)});
}

void Mesh::fanout(const std::string& method, const std::string& params_json,
                  std::function<void(std::vector<ApiResult>)> done, const std::string* channel) {
  std::vector<unsigned> peers;
  for (const auto& [id, m] : members_) {
    if (!m.alive) continue;
    if (channel && !may_hold(m, *channel)) {
      fanout_skipped_++;
      continue;
    }
    peers.push_back(id);
  }
  std::function<void(ApiResult)> part = fanout_join<ApiResult>(peers.size(), std::move(done));
  for (unsigned id : peers) call(id, method, params_json, 501, [part](const ApiResult& r) { part(r); });
}

bool Mesh::on_call(MeshLink& link, const char* body, size_t len) {
  MeshCall c;
  if (!mesh_decode(body, len, c)) return false;
  uint64_t serial = link.serial;
  unsigned peer = link.peer;
  uint64_t seq = c.seq;
  Reply reply = [this, serial, peer, seq](const ApiResult& r) {
    std::string answer = mesh_encode(MeshReply{seq, r.code, r.message, r.result});
    // On the link the call came on, or whichever link the caller has now (calls are matched by k).
    if (MeshLink* l = find_link(serial)) return l->send_control(MeshType::Reply, answer);
    auto it = members_.find(peer);
    if (it != members_.end()) send_to(it->second, MeshType::Reply, answer, UINT64_MAX);
  };
  if (host_.draining()) {
    reply(ApiResult::error(501, "node " + std::to_string(self_) + " is draining"));
    return true;
  }
  // The params live until the answer (a handler may still read them when a worker reports back).
  auto params = std::make_shared<JsonPtr>(std::move(c.params));
  host_.run_remote_call(c.method, params->get(), c.params_text.empty() ? nullptr : c.params_text.data(),
                        c.params_text.size(), [reply, params](const ApiResult& r) { reply(r); });
  return true;
}

bool Mesh::on_reply(const char* body, size_t len) {
  MeshReply r;
  if (!mesh_decode(body, len, r)) return false;
  auto it = calls_.find(r.seq);
  if (it == calls_.end()) return true;  // answered too late: the caller already got 501
  Reply reply = std::move(it->second.reply);
  calls_.erase(it);
  if (r.code == 0) {
    calls_ok_++;
    reply(ApiResult::ok(std::move(r.result)));
  } else {
    calls_failed_++;
    reply(ApiResult::error(r.code, std::move(r.message)));
  }
  return true;
}

void Mesh::fail_call(uint64_t seq, const std::string& why) {
  auto it = calls_.find(seq);
  if (it == calls_.end()) return;
  Reply reply = std::move(it->second.reply);
  calls_.erase(it);
  calls_failed_++;
  LOG_DEBUG("mesh: call %llu failed: %s", static_cast<unsigned long long>(seq), why.c_str());
  reply(ApiResult::error(501, why));
}

void Mesh::fail_calls(unsigned node, const std::string& why) {
  std::vector<uint64_t> seqs;
  for (auto& [k, c] : calls_)
    if (c.node == node) seqs.push_back(k);
  for (uint64_t k : seqs) fail_call(k, why);
}

void Mesh::expire_calls(uint64_t t) {
  std::vector<std::pair<uint64_t, unsigned>> expired;
  for (auto& [k, c] : calls_)
    if (c.deadline_ms <= t) expired.emplace_back(k, c.node);
  for (const auto& [k, node] : expired)
    fail_call(k, "node " + std::to_string(node) + " did not answer within " + std::to_string(cfg_.mesh_call_timeout) +
                     " s");
}

}  // namespace mg
