// One TCP link to another node, either direction. It frames and unframes (mesh_wire.h) and hands
// every frame to the Mesh, which owns the handshake state and membership; the link only carries
// bytes, bounds what waits to be sent, and reports when it closes.
#pragma once

#include <cstdint>
#include <string>

#include "mesh/mesh_wire.h"
#include "net/stream.h"

namespace mg {

class Mesh;

class MeshLink final : public Stream {
 public:
  MeshLink(Mesh& mesh, uv_loop_t* loop, bool outbound, std::string dial_addr, uint64_t serial);

  // Starts reading and sends our HELLO.
  void start(const std::string& hello_body);
  // Queues a frame. False, and nothing queued, when more than `limit` bytes already wait.
  bool send(MeshType type, const std::string& body, uint64_t limit);
  // Queues a frame whatever the bound (handshake, refusals, heartbeats: small and rare).
  void send_control(MeshType type, const std::string& body);
  Mesh* mesh_owner() const { return &mesh_; }
  // The peer is authenticated: full-size frames from now on.
  void authenticated() { decoder_.set_max_frame(kMeshMaxFrame); }

  // Handshake and identity, kept for the Mesh.
  bool outbound;
  std::string dial_addr;       // outbound: the address dialled
  uint64_t serial;             // to find the link again from a callback (it may be gone)
  std::string my_nonce;        // the nonce we sent in HELLO
  unsigned peer = 0;           // the peer's node id, from its HELLO
  std::string peer_hello;      // the peer's HELLO body (JSON), applied when the link is up
  bool hello_seen = false;     // the peer's HELLO arrived and was accepted
  bool auth_ok = false;        // the peer proved the secret
  bool up = false;             // both: the link serves the member
  bool replaced = false;       // closed because another link to the same peer won
  bool was_refused = false;    // the peer sent REFUSE: dial it again only after a while
  uint64_t opened_ms = 0, last_heard_ms = 0;

 protected:
  void on_read(const char* data, size_t len) override;
  void on_read_end(int status) override;
  void on_drained() override;
  void on_close() override;

 private:
  Mesh& mesh_;
  MeshFrameDecoder decoder_;
};

}  // namespace mg
