// Interest routing (docs/cluster.md "Interest routing"): which node holds which channel, so that a
// channel's publish or count is sent only to the nodes that hold subscribers of it.
//
// This node counts, per channel, the workers that hold it (local_interest, fed by the workers through
// the hub's mailbox) and tells its peers when the node's set changes: a delta per loop turn to every
// alive peer (the changes of the turn, netted: a channel taken and dropped in one turn is not sent),
// its whole set on every new link. Every INTEREST frame is numbered and acknowledged, which is what
// a subscribe waits for (interest_barrier): a publish that starts anywhere after the subscribe was
// answered finds the subscriber's node in its channel's set. Peers' sets are exact; a node over
// max_interest channels says "all" instead and is sent every channel's calls.
#include <string>
#include <utility>
#include <vector>

#include "core/log.h"
#include "mesh/mesh.h"

namespace mg {

namespace {
// Names one INTEREST frame lists, at most: a full set of 100,000 channels is a few dozen frames,
// each far below kMeshMaxFrame, so no frame keeps a link busy for long.
constexpr size_t kInterestFrameBytes = 64u << 10;
}  // namespace

void Mesh::local_interest(const std::string& channel, bool held) {
  if (stopped_) return;
  auto it = local_channels_.find(channel);
  if (held) {
    if (it == local_channels_.end()) it = local_channels_.emplace(channel, LocalChannel{}).first;
    if (it->second.workers++ > 0) return;
    held_channels_++;
  } else {
    if (it == local_channels_.end() || it->second.workers == 0) return;  // a worker drops only what it took
    if (--it->second.workers > 0) return;
    held_channels_--;
  }
  interest_dirty_.insert(channel);
  if (started_ && !interest_check_on_) {
    // Runs after this turn's I/O callbacks (the mailbox among them): one frame for the turn's changes.
    uv_check_start(&interest_check_, &Mesh::on_interest_check);
    interest_check_on_ = true;
  }
}

void Mesh::on_interest_check(uv_check_t* h) { static_cast<Mesh*>(h->data)->flush_interest(); }

void Mesh::flush_interest() {
  uv_check_stop(&interest_check_);
  interest_check_on_ = false;
  const uint64_t bound = cfg_.mesh_max_interest;
  // Over the bound peers are told "all"; back to an exact set below 90% of it, so that a node at
  // the bound does not send its whole set at every change.
  bool want_all = announce_all_ ? held_channels_ > bound - bound / 10 : held_channels_ > bound;
  std::vector<MeshInterest> frames;
  if (want_all != announce_all_) {
    announce_all_ = want_all;
    if (want_all) {
      interest_overflows_++;
      LOG_WARN("mesh: this node holds subscribers of %llu channels, over [mesh] max_interest = %llu: peers are "
               "told to send it every channel's publishes and counts until it holds fewer than %llu",
               static_cast<unsigned long long>(held_channels_), static_cast<unsigned long long>(bound),
               static_cast<unsigned long long>(bound - bound / 10));
    } else {
      LOG_INFO("mesh: this node holds subscribers of %llu channels again: peers are told which",
               static_cast<unsigned long long>(held_channels_));
    }
    std::vector<std::string> names;
    for (auto it = local_channels_.begin(); it != local_channels_.end();) {
      if (it->second.workers == 0) {
        it = local_channels_.erase(it);
        continue;
      }
      it->second.announced = !announce_all_;
      if (!announce_all_) names.push_back(it->first);
      ++it;
    }
    frames = mesh_interest_split(true, names, {}, kInterestFrameBytes);
    frames.front().all = announce_all_;
  } else {
    std::vector<std::string> added, removed;
    for (const std::string& ch : interest_dirty_) {
      auto it = local_channels_.find(ch);
      if (it == local_channels_.end()) continue;
      bool held = it->second.workers > 0;
      if (!announce_all_ && held != it->second.announced) {
        (held ? added : removed).push_back(ch);
        it->second.announced = held;
      }
      if (!held) local_channels_.erase(it);
    }
    if (!added.empty() || !removed.empty()) frames = mesh_interest_split(false, added, removed, kInterestFrameBytes);
  }
  interest_dirty_.clear();
  if (!frames.empty()) {
    std::vector<std::string> bodies;
    for (MeshInterest& f : frames) {
      f.seq = ++interest_seq_;
      bodies.push_back(mesh_encode(f));
    }
    for (auto& [id, m] : members_) {
      if (!m.alive) continue;
      for (const std::string& b : bodies) send_to(m, MeshType::Interest, b, UINT64_MAX);
      m.interest_sent = interest_seq_;
    }
  }
  // The subscribes answered during this turn wait for what was just sent (or, when their change
  // netted out, for what was sent before it).
  uint64_t deadline = now() + uint64_t{cfg_.mesh_call_timeout} * 1000;
  for (auto& done : barriers_unsent_) barriers_.push_back(Barrier{interest_seq_, deadline, std::move(done)});
  barriers_unsent_.clear();
  settle_barriers(now());
}

void Mesh::send_interest(Member& m, std::vector<MeshInterest> frames) {
  for (MeshInterest& f : frames) {
    f.seq = ++interest_seq_;
    send_to(m, MeshType::Interest, mesh_encode(f), UINT64_MAX);
  }
  m.interest_sent = interest_seq_;
}

void Mesh::send_interest_full(Member& m) {
  std::vector<std::string> names;
  if (!announce_all_)
    for (const auto& [ch, e] : local_channels_)
      if (e.workers > 0) names.push_back(ch);
  std::vector<MeshInterest> frames = mesh_interest_split(true, names, {}, kInterestFrameBytes);
  frames.front().all = announce_all_;
  send_interest(m, std::move(frames));
}

void Mesh::forget_interest(Member& m) {
  m.interest.clear();
  m.interest_known = m.interest_all = m.interest_filling = false;
}

bool Mesh::may_hold(const Member& m, const std::string& channel) const {
  return !m.interest_known || m.interest_all || m.interest.count(channel) != 0;
}

bool Mesh::on_interest(MeshLink& link, const char* body, size_t len) {
  MeshInterest in;
  if (!mesh_decode(body, len, in)) return false;
  link.send_control(MeshType::InterestAck, mesh_encode(MeshInterestAck{in.seq}));
  auto it = members_.find(link.peer);
  // A frame still arriving on a link that another replaced: the new link's full set is newer.
  if (it == members_.end() || it->second.link != &link) return true;
  Member& m = it->second;
  if (in.full) {
    forget_interest(m);
    m.interest_filling = true;
  }
  if (in.all) {
    m.interest_all = true;
    m.interest.clear();
  }
  if (!m.interest_all) {
    for (const std::string& ch : in.removed) m.interest.erase(ch);
    for (const std::string& ch : in.added) {
      if (m.interest.size() >= cfg_.mesh_max_interest && !m.interest.count(ch)) {
        // More than this node keeps for one peer: it is sent everything until its next full set.
        interest_overflows_++;
        LOG_WARN("mesh: node %u holds subscribers of more than [mesh] max_interest = %u channels: it is sent every "
                 "channel's publishes and counts until it lists fewer", m.id, cfg_.mesh_max_interest);
        m.interest_all = true;
        m.interest.clear();
        break;
      }
      m.interest.insert(ch);
    }
  }
  if (m.interest_filling && !in.more) {
    m.interest_filling = false;
    m.interest_known = true;
  }
  return true;
}

bool Mesh::on_interest_ack(MeshLink& link, const char* body, size_t len) {
  MeshInterestAck a;
  if (!mesh_decode(body, len, a)) return false;
  auto it = members_.find(link.peer);
  if (it != members_.end() && a.seq > it->second.interest_acked && a.seq <= interest_seq_) {
    it->second.interest_acked = a.seq;
    settle_barriers(now());
  }
  return true;
}

void Mesh::interest_barrier(std::function<void()> done) {
  if (!started_ || stopped_) return done();
  if (!interest_dirty_.empty()) {
    barriers_unsent_.push_back(std::move(done));  // this turn's flush sends the change it waits for
    return;
  }
  barriers_.push_back(Barrier{interest_seq_, now() + uint64_t{cfg_.mesh_call_timeout} * 1000, std::move(done)});
  settle_barriers(now());
}

void Mesh::settle_barriers(uint64_t t, bool all) {
  if (barriers_.empty()) return;
  std::vector<std::function<void()>> ready;
  for (auto it = barriers_.begin(); it != barriers_.end();) {
    bool waits = false;
    for (const auto& [id, m] : members_)
      if (m.alive && m.interest_sent >= it->seq && m.interest_acked < it->seq) {
        waits = true;
        break;
      }
    if (waits && !all && t < it->deadline_ms) {
      ++it;
      continue;
    }
    if (waits && !all) barrier_timeouts_++;
    ready.push_back(std::move(it->done));
    it = barriers_.erase(it);
  }
  for (auto& done : ready) done();
}

}  // namespace mg
