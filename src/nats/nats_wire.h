// What meshgate nodes say to each other over NATS (docs/cluster.md "NATS"): the subjects, and the
// two bodies of our own. Calls, replies, queue events and their DONE travel as the mesh's frame
// bodies (mesh/mesh_wire.h): one wire form for both backbones.
//
// Subjects, under the prefix "mg.<[mesh] cluster>" (P):
//   P.hb              every node's heartbeat (NatsBeat), heard by all: the member list
//   P.n.<id>.call     a call to node <id> (a MeshCall body; reply to the caller's inbox)
//   P.n.<id>.ev       a queue event forwarded to node <id> (a mesh EVENT body)
//   P.n.<id>.done     a DONE for node <id>, the producer of a forwarded event
//   P.n.<id>.sync     the subscribe barrier's ping (docs/cluster.md "Interest routing over NATS")
//   P.all             a fan-out to every node (mesh.broadcast)
//   P.ch.<hex>        a fan-out to the nodes holding channel <hex> (hex of the channel's bytes):
//                     each node subscribes to the channels it holds, so NATS routes by interest
// Replies go to the caller's inbox subject, as "<answering node id> <MeshReply body>".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/node_info.h"
#include "mesh/mesh_wire.h"

namespace mg {

// Lower-case hex of any bytes: one subject token (or consumer name) whatever the name holds.
std::string nats_hex(const std::string& bytes);
std::string nats_prefix(const std::string& cluster);
std::string nats_node_subject(const std::string& prefix, unsigned node, const char* kind);
// "P.ch." and the channel's bytes as lower-case hex: any channel name makes one subject token.
std::string nats_channel_subject(const std::string& prefix, const std::string& channel);

// A heartbeat: who the node is, how loaded, where its clients connect, the topics it has queue
// consumers for, and whether it is leaving. `instance` tells two lives (or two nodes given one id)
// apart: it changes at every start.
struct NatsBeat {
  NodeInfo info;
  std::string name;
  uint64_t instance = 0;
  std::vector<std::string> topics;
  bool left = false;
};
std::string nats_encode(const NatsBeat& b);
// False for a body that is not a heartbeat (an id outside 1..kMaxNodeId, missing fields).
bool nats_decode(const char* body, size_t len, NatsBeat& out);

// A reply to a call or fan-out: the answering node first, so a fan-out knows who answered.
std::string nats_reply_body(unsigned node, const MeshReply& r);
bool nats_read_reply(const char* body, size_t len, unsigned& node, MeshReply& out);

}  // namespace mg
