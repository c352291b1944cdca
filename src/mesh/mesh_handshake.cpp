// The handshake (PROTOCOL.md §7): HELLO both ways, then AUTH, the dialler's first, each a proof over
// both HELLOs (mesh_crypto.h); a link that passes serves its member from then on (link_up), and one
// that fails is refused with a reason.
#include <string>
#include <utility>

#include "core/log.h"
#include "core/log_text.h"
#include "mesh/mesh.h"

namespace mg {

void Mesh::connected(MeshLink* link) {
  uv_tcp_nodelay(link->tcp(), 1);
  MeshHello hello;
  hello.version = kMeshProtocolVersion;
  hello.cluster = cfg_.mesh_cluster;
  hello.id = self_;
  hello.nonce = mesh_nonce();  // fresh for every link: no two transcripts are alike
  hello.has_enc = true;
  hello.enc = cfg_.mesh_encrypt;
  SwimInfo me = self_info();
  hello.name = std::move(me.name);
  hello.mesh = std::move(me.mesh_addr);
  hello.weight = me.weight;
  hello.conns = me.conns;
  hello.ext = std::move(me.ext);
  hello.intranet = std::move(me.intranet);
  hello.inc = swim_.incarnation();
  hello.sync = swim_.live_count() == 0;  // fresh or restarted: the peer's whole table, please
  link->my_hello = mesh_encode(hello);
  link->start(link->my_hello);
}

void Mesh::refuse(MeshLink& link, const std::string& reason) {
  refused_++;
  link.was_refused = true;  // whichever side refused, do not dial it again at once
  // The reason may quote the stranger's own text (its cluster name): escaped, it cannot forge lines.
  if (may_log_about(link, reason))
    LOG_WARN("mesh: refused peer %s%s: %s", log_safe(link.dial_addr).c_str(),
             link.peer ? (" (node " + std::to_string(link.peer) + ")").c_str() : "", log_safe(reason).c_str());
  link.send_control(MeshType::Refuse, mesh_encode(MeshRefuse{reason}));
  link.close_after_flush();
}

void Mesh::on_hello(MeshLink& link, const char* body, size_t len) {
  MeshHello h;
  bool decoded = mesh_decode(body, len, h);
  if (!decoded && !mesh_body_is_object(body, len)) return refuse_malformed(link, MeshType::Hello, body, len);
  if (link.hello_seen) return refuse(link, "HELLO sent twice");
  if (!decoded) return refuse(link, "malformed HELLO frame: v is not a version number");
  if (h.version != kMeshProtocolVersion) {
    refused_version_++;
    return refuse(link, "protocol version " + std::to_string(h.version) + " is not supported (this node speaks " +
                            std::to_string(kMeshProtocolVersion) +
                            "; nodes of different versions do not link: upgrade every node, docs/cluster.md "
                            "\"Rolling upgrade\")");
  }
  if (h.cluster != cfg_.mesh_cluster)
    return refuse(link, "cluster name \"" + h.cluster + "\" does not match this cluster \"" + cfg_.mesh_cluster + "\"");
  if (h.id < 1) return refuse(link, "bad node id");
  unsigned peer = h.id;
  if (peer == self_) return refuse(link, "duplicate node id " + std::to_string(peer) + ": it is this node's id");
  auto it = members_.find(peer);
  if (it != members_.end() && it->second.alive && it->second.mesh_addr != h.mesh)
    return refuse(link, "duplicate node id " + std::to_string(peer) + ": already in use by " + it->second.mesh_addr);
  if (h.nonce.size() < 16 || h.nonce.size() > 64) return refuse(link, "HELLO without a nonce of 16 to 64 characters");
  if (!h.has_enc) return refuse(link, "HELLO without \"enc\"");
  if (h.enc != cfg_.mesh_encrypt)
    return refuse(link, std::string("encryption is ") + (cfg_.mesh_encrypt ? "on" : "off") + " on this node and " +
                            (cfg_.mesh_encrypt ? "off" : "on") + " on the peer: set [mesh] encrypt alike on every node");
  link.peer = peer;
  link.peer_hello.assign(body, len);
  link.hello_seen = true;
  link.transcript = link.outbound ? mesh_transcript(link.my_hello, link.peer_hello)
                                  : mesh_transcript(link.peer_hello, link.my_hello);
  if (link.outbound) {
    // The dialler proves first, over a transcript holding its own fresh nonce; the listener proves
    // only after checking this proof, so a stranger who dials a node learns no proof at all.
    dials_[link.dial_addr].node = peer;
    send_auth(link, MeshRole::Dialler);
  }
}

namespace {

void send_proof(MeshLink& link, MeshRole role, const std::string& secret) {
  link.send_control(MeshType::Auth, mesh_encode(MeshAuth{mesh_proof(secret, role, link.transcript)}));
}

}  // namespace

// The dialler's proof, under its current secret (the listener answers from on_auth: mesh_crypto.h
// MeshSecrets says under which).
void Mesh::send_auth(MeshLink& link, MeshRole role) {
  send_proof(link, role, mesh_secrets_in_force({cfg_.mesh_secret, cfg_.mesh_secret_accepted}).current);
}

void Mesh::on_auth(MeshLink& link, const char* body, size_t len) {
  MeshAuth a;
  if (!mesh_decode(body, len, a)) return refuse_malformed(link, MeshType::Auth, body, len);
  if (!link.hello_seen) return refuse(link, "AUTH before HELLO");
  MeshRole peer_role = link.outbound ? MeshRole::Listener : MeshRole::Dialler;
  const MeshSecrets secrets = mesh_secrets_in_force({cfg_.mesh_secret, cfg_.mesh_secret_accepted});
  const std::string* secret = mesh_proof_secret(secrets, a.mac, peer_role, link.transcript);
  if (!secret) return refuse(link, "authentication failed: wrong secret");
  if (!link.outbound) send_proof(link, MeshRole::Listener, *secret);
  link.secure(mesh_session_keys(*secret, link.transcript), cfg_.mesh_encrypt);
  link_up(link);
}

void Mesh::link_up(MeshLink& link) {
  Member& m = members_[link.peer];
  if (m.link && m.link != &link) {
    // Two links to one peer (both dialled at once, or a seed and a member address): keep the one
    // dialled by the lower node id, or when one node dialled both, the one with the lower
    // transcript. Both sides compute the same answer; the side that has only the loser up yet
    // holds what it sends to the node until the winner is up (a link's loss is not a death).
    unsigned kept_dialer = m.link->outbound ? self_ : link.peer;
    unsigned new_dialer = link.outbound ? self_ : link.peer;
    bool keep_old = kept_dialer != new_dialer ? kept_dialer < new_dialer : m.link->transcript < link.transcript;
    MeshLink* loser = keep_old ? &link : m.link;
    loser->replaced = true;
    loser->close_after_flush();  // what was already written on it still reaches the peer
    if (keep_old) return;
  }
  link.up = true;
  LOG_DEBUG("mesh: link %llu (%s, %s) to node %u up, %zu frames held", static_cast<unsigned long long>(link.serial),
            link.outbound ? "dialled" : "accepted", log_safe(link.dial_addr).c_str(), link.peer, m.held.size());
  MeshHello h;  // accepted by on_hello, so it decodes
  mesh_decode(link.peer_hello.data(), link.peer_hello.size(), h);
  m.id = link.peer;
  m.link = &link;
  m.last_linked_ms = now();
  for (auto& [type, held_body] : m.held) link.send_control(type, held_body);
  m.held.clear();
  m.held_bytes = 0;
  if (!h.mesh.empty() && (dials_.size() < kMaxDials || dials_.count(h.mesh))) dials_[h.mesh].node = m.id;
  // What the peer says of itself is first-hand: its alive at its incarnation.
  SwimUpdate self_said{link.peer, h.inc, SwimState::Alive, false, true, {}};
  self_said.info = SwimInfo{h.name, h.mesh, h.weight, h.conns, h.ext, h.intranet};
  apply_updates({self_said}, 0);
  // We hold news of it it has not refuted (suspect, or dead at its incarnation): it should hear.
  const SwimMember* known = swim_.find(link.peer);
  if (known && known->state != SwimState::Alive && known->inc >= h.inc)
    link.send_control(MeshType::Ping, mesh_encode(MeshPing{0, host_.client_count(), 0,
                                                          {SwimUpdate{link.peer, known->inc, known->state, false, false, {}}}}));
  if (h.sync) send_full_members(link);  // it knows nobody yet: every other node learns of it by gossip
  link.send_control(MeshType::Topics, topics_body());
  forget_interest(m);  // until its full set arrives on this link, it is sent every channel's calls
  send_interest_full(m);
}

}  // namespace mg
