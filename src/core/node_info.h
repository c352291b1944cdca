// What one node tells the others and the route API about itself: where its clients connect, how
// much of the load it takes, how loaded it is. Filled by the hub for this node and by the mesh for
// its peers (from their HELLO and heartbeats).
#pragma once

#include <cstdint>
#include <string>

namespace mg {

// A node id is 1..kMaxNodeId: it fills kNodeIdBits of every client id (core/snowflake.h), so a
// client's node is read from its id. 0 means "no node" wherever a node id is optional.
constexpr int kNodeIdBits = 10;
constexpr unsigned kMaxNodeId = (1u << kNodeIdBits) - 1;  // 1023

// "1..1023", for the error texts that give the range.
inline std::string node_id_range() { return "1.." + std::to_string(kMaxNodeId); }

// Client addresses as handed out: "host:port" for TCP, ws:// and wss:// URLs. Empty when the node
// has no such listener.
struct NodeAddresses {
  std::string tcp, ws, wss;
};

struct NodeInfo {
  unsigned node_id = 0;
  double weight = 1;          // [route] weight: its share of uids
  uint64_t connections = 0;   // client connections open on it
  NodeAddresses external, intranet;
};

}  // namespace mg
