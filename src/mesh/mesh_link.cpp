#include "mesh/mesh_link.h"

#include "core/log.h"
#include "mesh/mesh.h"

namespace mg {

MeshLink::MeshLink(Mesh& mesh, uv_loop_t* loop, bool is_outbound, std::string addr, uint64_t link_serial)
    : Stream(loop), outbound(is_outbound), dial_addr(std::move(addr)), serial(link_serial), mesh_(mesh) {
  opened_ms = last_heard_ms = uv_now(loop);  // a connect that hangs (a partition) times out from here
  decoder_.set_max_frame(kMeshMaxHandshakeFrame);
}

void MeshLink::start(const std::string& hello_body) {
  last_heard_ms = uv_now(loop());
  if (start_reading() != 0) {
    close_now();
    return;
  }
  send_control(MeshType::Hello, hello_body);
}

bool MeshLink::send(MeshType type, const std::string& body, uint64_t limit) {
  if (closing() || queued_bytes() > limit) return false;
  write(mesh_frame(type, body));
  return true;
}

void MeshLink::send_control(MeshType type, const std::string& body) {
  if (!closing()) write(mesh_frame(type, body));
}

void MeshLink::on_read(const char* data, size_t len) {
  last_heard_ms = uv_now(loop());
  auto st = decoder_.feed(data, len, [this](MeshType type, const char* body, size_t n) {
    if (!closing()) mesh_.on_frame(*this, type, body, n);
    if (closing()) decoder_.stop();
  });
  if (st != MeshFrameDecoder::Status::Ok) {
    LOG_WARN("mesh: link %s closed: %s", dial_addr.c_str(),
             st == MeshFrameDecoder::Status::TooLarge ? "frame too large" : "unknown frame type");
    close_now();
  }
}

void MeshLink::on_read_end(int) { close_now(); }

void MeshLink::on_drained() { mesh_.on_link_drained(*this); }

void MeshLink::on_close() { mesh_.on_link_closed(*this); }

}  // namespace mg
