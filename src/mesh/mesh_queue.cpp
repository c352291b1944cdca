// The queue across the mesh (queue_hub.h): this mesh is the QueueHub's RemoteQueue. TOPICS tell the
// peers which topics this node has consumers for, EVENT carries a client event to a consuming node,
// DONE tells the producing node that a forwarded event was consumed.
#include <string>
#include <vector>

#include "mesh/mesh.h"

namespace mg {

std::string Mesh::topics_body() const { return mesh_encode(MeshTopics{queue_.local_topics()}); }

void Mesh::announce_topics() {
  std::string s = topics_body();
  for (auto& [serial, l] : links_)
    if (l->up && !l->closing()) l->send_control(MeshType::Topics, s);
}

bool Mesh::on_topics(MeshLink& link, const char* body, size_t len) {
  MeshTopics t;
  if (!mesh_decode(body, len, t)) return false;
  queue_.set_remote_topics(link.peer, t.topics);
  return true;
}

bool Mesh::remote_ready(unsigned node) const {
  auto it = members_.find(node);
  return it != members_.end() && it->second.alive && it->second.link && !it->second.link->closing() &&
         it->second.link->queued_bytes() < cfg_.mesh_max_link_buffer / 4;
}

void Mesh::remote_forward(unsigned node, const QueueEvent& ev) {
  auto it = members_.find(node);
  if (it == members_.end() || !it->second.link) return;
  if (it->second.link->send(MeshType::Event, mesh_encode(ev, self_), cfg_.mesh_max_link_buffer)) events_forwarded_++;
}

void Mesh::remote_done(unsigned producer, uint64_t fwd) {
  auto it = members_.find(producer);
  if (it == members_.end() || !it->second.alive) return;  // it requeued them anyway
  send_to(it->second, MeshType::Done, mesh_encode(MeshDone{fwd}), UINT64_MAX);
}

// An EVENT that cannot be read (its text is not valid UTF-8, say: an older node forwarded a poison
// event) is one bad event, not a bad link: it is dropped and counted, its producer is told it was
// consumed so it does not send it again, and the link and every other event on it go on. Cutting
// the link would make the producer declare this node dead and send the same event again.
bool Mesh::on_event(MeshLink& link, const char* body, size_t len) {
  MeshEvent e;
  if (!mesh_decode(body, len, e)) {
    uint64_t fwd = 0;
    if (mesh_event_handle(body, len, fwd)) remote_done(link.peer, fwd);
    queue_.discard(QueueHub::Discard::InvalidText);
    return true;
  }
  if (!e.complete) return true;  // nothing to deliver; the link is fine
  e.ev.node = link.peer;  // only the producing node forwards, so it is the client's node
  queue_.push(std::move(e.ev));
  return true;
}

bool Mesh::on_done(const char* body, size_t len) {
  MeshDone d;
  if (!mesh_decode(body, len, d)) return false;
  queue_.remote_done(d.fwd);
  return true;
}

}  // namespace mg
