// Fuzz target: a mesh link after a valid handshake (issue 7). Two sides complete the v2 handshake in
// memory (each checks the other's proof), then the input describes frames the honest peer seals
// and attacker bytes spliced into that stream at some offset; the receiving side decodes the
// stream in pieces cut where the input says, opens every frame, and decodes each body as the Mesh
// does (mesh_decode of its type: strict JSON object, range-checked numbers).
//
// The property checked beyond "no crash": the bodies the receiver accepts are always a prefix of
// what the honest peer sealed, in order. Whatever the attacker inserts, no frame of its own is ever
// accepted, and after the first frame that fails nothing more is.
#include <cassert>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "mesh/mesh_crypto.h"
#include "mesh/mesh_wire.h"
#include "fuzz_reader.h"

namespace {

const std::string kSecret = "fuzz-secret";
const std::string kDialler = R"({"v":3,"cluster":"fuzz","id":1,"nonce":"AAAAAAAAAAAAAAAAAAAAAA==","enc":true})";
const std::string kListener = R"({"v":3,"cluster":"fuzz","id":2,"nonce":"BBBBBBBBBBBBBBBBBBBBBB==","enc":true})";

using fuzzin::Reader;

// What Mesh::on_frame reads of a body: the decoder of its frame type (mesh_wire.h), strict JSON
// and range-checked numbers.
template <typename T>
void decode_as(const char* body, size_t len) {
  T out;
  (void)mg::mesh_decode(body, len, out);
}

void parse_like_the_mesh(mg::MeshType type, const char* body, size_t len) {
  switch (type) {
    case mg::MeshType::Hello: return decode_as<mg::MeshHello>(body, len);
    case mg::MeshType::Auth: return decode_as<mg::MeshAuth>(body, len);
    case mg::MeshType::Refuse: return decode_as<mg::MeshRefuse>(body, len);
    case mg::MeshType::Members: return decode_as<mg::MeshMembers>(body, len);
    case mg::MeshType::Ping: return decode_as<mg::MeshPing>(body, len);
    case mg::MeshType::Ack: return decode_as<mg::MeshAck>(body, len);
    case mg::MeshType::Call: return decode_as<mg::MeshCall>(body, len);
    case mg::MeshType::Reply: return decode_as<mg::MeshReply>(body, len);
    case mg::MeshType::Topics: return decode_as<mg::MeshTopics>(body, len);
    case mg::MeshType::Event: return decode_as<mg::MeshEvent>(body, len);
    case mg::MeshType::Done: return decode_as<mg::MeshDone>(body, len);
    case mg::MeshType::Interest: return decode_as<mg::MeshInterest>(body, len);
    case mg::MeshType::InterestAck: return decode_as<mg::MeshInterestAck>(body, len);
    case mg::MeshType::PingReq: return decode_as<mg::MeshPingReq>(body, len);
  }
}

}  // namespace

// Seeds: mode, frame count, then (type, length, body) per frame, offset (2 bytes), attack length
// and bytes, cut sizes.
std::string b(std::initializer_list<int> bytes) {
  std::string s;
  for (int c : bytes) s += static_cast<char>(c);
  return s;
}

std::vector<std::string> fuzz_seeds() {
  return {b({1, 3, 4, 7}) + R"({"t":1})" + b({4, 11}) + R"({"conns":3})" + b({5, 2}) + "{}" + b({0, 0, 0, 16, 32}),
          b({0, 1, 6, 12}) + R"({"k":1e300})" + b({0, 5, 7}) + "garbage",
          b({1, 2, 9, 0, 10, 0, 0, 11, 9, 0, 0, 0, 5, 5}) + "abcd",
          // INTEREST (a full set, then a delta) and INTEREST_ACK
          b({1, 3, 11, 33}) + R"({"k":1,"full":true,"a":["r","s"]})" + b({11, 25}) + R"({"k":2,"r":["r"],"a":[5]})" +
              b({12, 7}) + R"({"k":2})" + b({0, 0, 0, 0, 3, 3}),
          // SWIM (protocol 4): PING with a suspicion (and its suspecter) and a leave, ACK with an
          // alive and its info, PING_REQ
          b({1, 3, 5, 81}) + R"({"k":1,"c":0,"d":99,"u":[{"i":2,"n":3,"s":1,"f":1},{"i":5,"n":9,"s":2,"l":true}]})" +
              b({6, 133}) +
              R"({"k":1,"c":4,"u":[{"i":3,"n":1765000000000,"s":0,"a":{"name":"x","mesh":"h:1",)"
              R"("weight":2.5,"conns":7,"ext":{"tcp":"a:1"},"int":{}}}]})" +
              b({14, 28}) + R"({"k":2,"target":1023,"u":[]})" + b({0, 0, 0, 0, 3, 3})};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in{data, size};
  // The handshake, both sides, as the Mesh runs it.
  const std::string t = mg::mesh_transcript(kDialler, kListener);
  std::string dialler_proof = mg::mesh_proof(kSecret, mg::MeshRole::Dialler, t);
  assert(mg::mesh_proof_matches(dialler_proof, mg::mesh_proof(kSecret, mg::MeshRole::Dialler, t)));
  assert(!mg::mesh_proof_matches(dialler_proof, mg::mesh_proof(kSecret, mg::MeshRole::Listener, t)));
  const bool encrypt = in.byte() & 1;
  mg::MeshSessionKeys keys = mg::mesh_session_keys(kSecret, t);
  mg::MeshRecordCipher sealer, opener;
  sealer.start(keys.dialler_to_listener, mg::MeshRecordCipher::Use::Seal, encrypt);
  opener.start(keys.dialler_to_listener, mg::MeshRecordCipher::Use::Open, encrypt);

  // The honest peer's frames.
  std::vector<std::string> sent;
  std::string stream;
  for (int count = in.byte() % 8; count > 0; count--) {
    auto type = static_cast<mg::MeshType>(1 + in.byte() % mg::kMeshMaxType);
    std::string body = in.bytes(in.byte());
    stream += sealer.seal(type, body);
    sent.push_back(body);
  }
  // The attacker's bytes, spliced in at an offset; then the cut points.
  size_t at = stream.empty() ? 0 : (size_t{in.byte()} << 8 | in.byte()) % (stream.size() + 1);
  std::string attack = in.bytes(in.byte());
  stream.insert(at, attack);
  std::vector<size_t> cuts;
  while (in.i < in.n) cuts.push_back(in.byte() + 1u);

  mg::MeshFrameDecoder decoder;
  std::vector<std::string> accepted;
  bool failed = false;
  auto on_frame = [&](mg::MeshType type, const char* payload, size_t len) {
    const char* body = nullptr;
    size_t body_len = 0;
    if (failed || !opener.open(type, payload, len, body, body_len)) {
      failed = true;
      decoder.stop();
      return;
    }
    accepted.emplace_back(body, body_len);
    parse_like_the_mesh(type, body, body_len);
  };
  size_t pos = 0, c = 0;
  while (pos < stream.size()) {
    size_t piece = cuts.empty() ? stream.size() : std::min(cuts[c++ % cuts.size()], stream.size() - pos);
    if (decoder.feed(stream.data() + pos, piece, on_frame) != mg::MeshFrameDecoder::Status::Ok || failed) break;
    pos += piece;
  }
  assert(accepted.size() <= sent.size());
  for (size_t i = 0; i < accepted.size(); i++) assert(accepted[i] == sent[i]);
  if (attack.empty()) assert(accepted.size() == sent.size() && !failed);
  return 0;
}
