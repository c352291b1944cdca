#include "mesh/mesh_wire.h"

#include <openssl/rand.h>

#include <algorithm>

#include "core/base64.h"
#include "core/json_text.h"

namespace mg {

const char* mesh_type_name(MeshType t) {
  switch (t) {
    case MeshType::Hello: return "HELLO";
    case MeshType::Auth: return "AUTH";
    case MeshType::Refuse: return "REFUSE";
    case MeshType::Members: return "MEMBERS";
    case MeshType::Ping: return "PING";
    case MeshType::Pong: return "PONG";
    case MeshType::Call: return "CALL";
    case MeshType::Reply: return "REPLY";
    case MeshType::Topics: return "TOPICS";
    case MeshType::Event: return "EVENT";
    case MeshType::Done: return "DONE";
  }
  return "?";
}

namespace {

uint32_t read_be32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

bool known_type(uint8_t t) { return t >= 1 && t <= 11; }

}  // namespace

MeshFrameDecoder::Status MeshFrameDecoder::frames(const char* p, size_t n, size_t& used, const OnFrame& on_frame) {
  used = 0;
  while (!stopped_ && n - used >= 5) {
    uint32_t flen = read_be32(p + used);
    if (flen == 0 || flen > max_frame_) return Status::TooLarge;
    auto type = static_cast<uint8_t>(p[used + 4]);
    if (!known_type(type)) return Status::BadType;
    if (n - used - 4 < flen) break;
    on_frame(static_cast<MeshType>(type), p + used + 5, flen - 1);
    used += 4 + flen;
  }
  if (!stopped_ && n - used >= 4 && read_be32(p + used) > max_frame_) return Status::TooLarge;
  return Status::Ok;
}

MeshFrameDecoder::Status MeshFrameDecoder::feed(const char* data, size_t len, const OnFrame& on_frame) {
  size_t used = 0;
  if (partial_.empty()) {
    // Whole frames are taken straight from the input; only an unfinished tail is copied.
    Status st = frames(data, len, used, on_frame);
    if (st != Status::Ok) return st;
    if (!stopped_ && used < len) partial_.assign(data + used, len - used);
    return Status::Ok;
  }
  partial_.append(data, len);  // at most one unfinished frame plus one read
  Status st = frames(partial_.data(), partial_.size(), used, on_frame);
  if (st != Status::Ok) return st;
  if (stopped_) partial_.clear();
  else partial_.erase(0, used);
  return Status::Ok;
}

std::string mesh_frame(MeshType type, const std::string& body) {
  uint32_t n = static_cast<uint32_t>(body.size() + 1);
  std::string f;
  f.reserve(5 + body.size());
  f += static_cast<char>(n >> 24);
  f += static_cast<char>(n >> 16);
  f += static_cast<char>(n >> 8);
  f += static_cast<char>(n);
  f += static_cast<char>(type);
  f += body;
  return f;
}

bool mesh_read_uint(const cJSON* obj, const char* key, uint64_t max, uint64_t fallback, uint64_t& out) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v) {
    out = fallback;
    return true;
  }
  int64_t n = 0;
  if (!json_integer(v, 0, static_cast<int64_t>(std::min<uint64_t>(max, kJsonMaxExactInt)), n)) return false;
  out = static_cast<uint64_t>(n);
  return true;
}

std::string mesh_read_string(const cJSON* obj, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? v->valuestring : "";
}

std::string mesh_nonce() {
  unsigned char n[16];
  RAND_bytes(n, sizeof n);
  return base64_encode(n, sizeof n);
}

}  // namespace mg
