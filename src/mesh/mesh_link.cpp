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

void MeshLink::secure(const MeshSessionKeys& keys, bool encrypt) {
  const MeshDirectionKey& mine = outbound ? keys.dialler_to_listener : keys.listener_to_dialler;
  const MeshDirectionKey& theirs = outbound ? keys.listener_to_dialler : keys.dialler_to_listener;
  sealer_.start(mine, MeshRecordCipher::Use::Seal, encrypt);
  opener_.start(theirs, MeshRecordCipher::Use::Open, encrypt);
  decoder_.set_max_frame(kMeshMaxFrame);
}

void MeshLink::write_frame(MeshType type, const std::string& body) {
  std::string frame = sealer_.active() ? sealer_.seal(type, body) : mesh_frame(type, body);
  mesh_.count_sent(type, frame.size());
  write(std::move(frame));
}

bool MeshLink::send(MeshType type, const std::string& body, uint64_t limit) {
  if (closing() || queued_bytes() > limit) return false;
  write_frame(type, body);
  return true;
}

void MeshLink::send_control(MeshType type, const std::string& body) {
  if (!closing()) write_frame(type, body);
}

void MeshLink::on_read(const char* data, size_t len) {
  last_heard_ms = uv_now(loop());
  auto st = decoder_.feed(data, len, [this](MeshType type, const char* payload, size_t n) {
    if (closing()) return decoder_.stop();
    const char* body = payload;
    size_t body_len = n;
    if (opener_.active() && !opener_.open(type, payload, n, body, body_len)) {
      mesh_.on_bad_frame(*this, std::string("a ") + mesh_type_name(type) + " frame (number " +
                                    std::to_string(opener_.sequence()) +
                                    ") failed authentication: altered, forged, replayed, reordered or one was lost");
      return decoder_.stop();
    }
    mesh_.on_frame(*this, type, body, body_len);
    if (closing()) decoder_.stop();
  });
  if (st != MeshFrameDecoder::Status::Ok)
    mesh_.on_bad_frame(*this, st == MeshFrameDecoder::Status::TooLarge ? "frame too large" : "unknown frame type");
}

void MeshLink::on_read_end(int) { close_now(); }

void MeshLink::on_drained() { mesh_.on_link_drained(*this); }

void MeshLink::on_close() { mesh_.on_link_closed(*this); }

}  // namespace mg
