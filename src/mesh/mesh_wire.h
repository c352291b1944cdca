// The mesh wire format (docs/mesh-protocol.md): how nodes frame what they say to each other.
//
//   frame := length (4 bytes, big-endian, counts type + body) | type (1 byte) | body
//
// Bodies are JSON objects (UTF-8). The first frames on a link are HELLO (carrying the protocol
// version) and AUTH; anything else before both sides are authenticated closes the link. The decoder
// takes bytes as they arrive and never does I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include <cjson/cJSON.h>

namespace mg {

constexpr int kMeshProtocolVersion = 2;  // 2: transcript-bound proofs, every later frame sealed
constexpr uint32_t kMeshMaxFrame = 32u << 20;  // larger frames are a protocol error
constexpr uint32_t kMeshMaxHandshakeFrame = 64u << 10;  // before a peer is authenticated

enum class MeshType : uint8_t {
  Hello = 1,    // {"v","cluster","id","name","nonce","enc","mesh","weight","conns","ext":{tcp,ws,wss},"int":{...}}
  Auth = 2,     // {"mac"}: the sender's proof over both HELLOs (mesh_crypto.h); the dialler's first
  Refuse = 3,   // {"reason"}: then the sender closes
  Members = 4,  // {"m":[{"id","mesh"}]}: the alive members the sender knows
  Ping = 5,     // {"t":ms,"conns":n}
  Pong = 6,     // {"t":ms}: echo of the ping's t, for the round-trip time
  Call = 7,     // {"k":seq,"m":method,"p":params}: run an API method on the receiver, local scope
  Reply = 8,    // {"k":seq,"c":code,"e":message,"r":result}
  Topics = 9,   // {"t":[topic,...]}: topics the sender has local consumers for (replaces the last list)
  Event = 10,   // {"t":topic,"c":"client id","n":origin node,"f":handle,"d":data,"x":context,"h":hops}
  Done = 11,    // {"f":handle}: the forwarded event was consumed; the producer forgets its copy
};

const char* mesh_type_name(MeshType t);

class MeshFrameDecoder {
 public:
  enum class Status { Ok, TooLarge, BadType };
  using OnFrame = std::function<void(MeshType type, const char* body, size_t len)>;

  // Calls on_frame for each complete frame. After an error the decoder is unusable. on_frame may
  // call stop() (the link is closing): the rest of the input is ignored.
  Status feed(const char* data, size_t len, const OnFrame& on_frame);
  void stop() { stopped_ = true; }
  // The largest frame accepted (at most kMeshMaxFrame); small until the peer is authenticated, so
  // an unauthenticated connection cannot make us buffer 32 MiB.
  void set_max_frame(uint32_t max) { max_frame_ = max; }

 private:
  Status frames(const char* p, size_t n, size_t& used, const OnFrame& on_frame);
  std::string partial_;
  bool stopped_ = false;
  uint32_t max_frame_ = kMeshMaxFrame;
};

// A frame in the clear (HELLO, AUTH, and REFUSE before the handshake ends).
std::string mesh_frame(MeshType type, const std::string& body);

// Field readers for frame bodies (strictly parsed JSON objects). A missing field reads as
// `fallback`; a field present with the wrong kind or out of range makes the reader return false
// and the frame is malformed: no double from the wire is cast to an integer unchecked.
bool mesh_read_uint(const cJSON* obj, const char* key, uint64_t max, uint64_t fallback, uint64_t& out);
// A string field, or "" when it is missing or not a string.
std::string mesh_read_string(const cJSON* obj, const char* key);

// A random nonce for HELLO (base64 of 16 bytes from OpenSSL's RAND_bytes).
std::string mesh_nonce();

}  // namespace mg
