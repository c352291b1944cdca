// One TCP link to another node, either direction. It frames and unframes (mesh_wire.h), seals and
// opens every frame after the handshake (mesh_crypto.h), and hands every frame to the Mesh, which
// owns the handshake state and membership; the link only carries bytes, bounds what waits to be
// sent, and reports when it closes or when a frame fails its check.
#pragma once

#include <cstdint>
#include <string>

#include "mesh/mesh_crypto.h"
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
  // The handshake succeeded: full-size frames, and every frame from now on sealed and opened with
  // the session keys (this side's role picks which direction key is whose).
  void secure(const MeshSessionKeys& keys, bool encrypt);

  // Handshake and identity, kept for the Mesh.
  bool outbound;
  std::string dial_addr;       // outbound: the address dialled; inbound: the peer's ip:port
  std::string source_ip;       // inbound: the peer's IP (the per-source cap on handshakes)
  uint64_t serial;             // to find the link again from a callback (it may be gone)
  std::string my_hello;        // our HELLO body, exactly as sent (half of the transcript)
  unsigned peer = 0;           // the peer's node id, from its HELLO
  std::string peer_hello;      // the peer's HELLO body, exactly as received
  std::string transcript;      // mesh_transcript of both HELLOs, once the peer's was accepted
  bool hello_seen = false;     // the peer's HELLO arrived and was accepted
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
  void write_frame(MeshType type, const std::string& body);

  Mesh& mesh_;
  MeshFrameDecoder decoder_;
  MeshRecordCipher sealer_, opener_;  // inactive until secure()
};

}  // namespace mg
