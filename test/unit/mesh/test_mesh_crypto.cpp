// Unit tests for the mesh's cryptography (mesh/mesh_crypto.h, docs/mesh-protocol.md §4): the
// transcript, proofs and session keys against vectors computed independently (Python's hashlib,
// hmac and the `cryptography` package's AESGCM, script in docs/mesh-protocol.md), what each proof
// binds, and the frame protection: round trips in both modes, and a frame altered, forged,
// replayed, reordered or lost is refused.
#include "mesh/mesh_crypto.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using mg::MeshRecordCipher;
using mg::MeshRole;
using mg::MeshType;
using Use = MeshRecordCipher::Use;

std::string hex(const std::string& s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string hex(const unsigned char* p, size_t n) { return hex(std::string(reinterpret_cast<const char*>(p), n)); }

const std::string kSecret = "correct horse battery staple";
const std::string kDiallerHello = R"({"v":2,"id":1})";
const std::string kListenerHello = R"({"v":2,"id":2})";

TEST(MeshCrypto, TranscriptProofsAndKeysMatchIndependentVectors) {
  std::string t = mg::mesh_transcript(kDiallerHello, kListenerHello);
  EXPECT_EQ(hex(t), "27c337aae70a6dd1ce1603d2b0b4375ad3213b476f8d8d493f4511bc412267fb");
  EXPECT_EQ(mg::mesh_proof(kSecret, MeshRole::Dialler, t), "GVbT/hF9z8u5Ywai4sEbo77ccffmRRIIt6WFNXJIhiQ=");
  EXPECT_EQ(mg::mesh_proof(kSecret, MeshRole::Listener, t), "fvRIYBunRXNDtXYg4xSnJpoGelTvoMGLc37RalRyfoQ=");
  mg::MeshSessionKeys k = mg::mesh_session_keys(kSecret, t);
  EXPECT_EQ(hex(k.dialler_to_listener.key, 32), "68cf284988cdc424ea2d3e4bc6c972bfdd0b6817f12f553b6a0690074e900ae2");
  EXPECT_EQ(hex(k.dialler_to_listener.iv, 12), "6d670bc4dcc6a0bf8fb8bab8");
  EXPECT_EQ(hex(k.listener_to_dialler.key, 32), "a5ea97b5b26f1a3563a8f3295326fa3f7d00553e3fa5dad7b8c9e6320eaab66c");
  EXPECT_EQ(hex(k.listener_to_dialler.iv, 12), "26f4375ec4701aaf5b557c99");
}

TEST(MeshCrypto, SealedFramesMatchIndependentVectors) {
  mg::MeshSessionKeys k = mg::mesh_session_keys(kSecret, mg::mesh_transcript(kDiallerHello, kListenerHello));
  MeshRecordCipher enc;
  enc.start(k.dialler_to_listener, Use::Seal, true);
  EXPECT_EQ(hex(enc.seal(MeshType::Ping, R"({"t":1})")), "0000001805c91f1273df2c3cbb108ecb125ffb8acd91aee5f5bbaaae");
  EXPECT_EQ(hex(enc.seal(MeshType::Ping, R"({"t":1})")), "0000001805140684919e3294db2d85c264965bac8504efb6a655aefa");
  MeshRecordCipher auth;
  auth.start(k.listener_to_dialler, Use::Seal, false);
  EXPECT_EQ(hex(auth.seal(MeshType::Ack, R"({"t":1})")), "00000018067b2274223a317de7578b8ccb004f991c52365a8c140e9a");
}

TEST(MeshCrypto, ProofBindsRoleBothHellosAndSecret) {
  std::string t = mg::mesh_transcript(kDiallerHello, kListenerHello);
  std::string p = mg::mesh_proof(kSecret, MeshRole::Dialler, t);
  EXPECT_NE(p, mg::mesh_proof(kSecret, MeshRole::Listener, t));  // no reflection across roles
  EXPECT_NE(p, mg::mesh_proof(kSecret + "x", MeshRole::Dialler, t));
  EXPECT_NE(p, mg::mesh_proof(kSecret, MeshRole::Dialler, mg::mesh_transcript(kListenerHello, kDiallerHello)));
  EXPECT_NE(p, mg::mesh_proof(kSecret, MeshRole::Dialler, mg::mesh_transcript(kDiallerHello, kListenerHello + " ")));
  EXPECT_NE(p, mg::mesh_proof(kSecret, MeshRole::Dialler, mg::mesh_transcript(kDiallerHello + " ", kListenerHello)));
  // Lengths are in the transcript: moving a byte from one HELLO to the other changes it.
  EXPECT_NE(mg::mesh_transcript("ab", "c"), mg::mesh_transcript("a", "bc"));
  EXPECT_TRUE(mg::mesh_proof_matches(p, mg::mesh_proof(kSecret, MeshRole::Dialler, t)));
  EXPECT_FALSE(mg::mesh_proof_matches(p.substr(1), p));
  EXPECT_FALSE(mg::mesh_proof_matches("", p));
}

struct Pair {
  MeshRecordCipher sealer, opener;
  explicit Pair(bool encrypt) {
    mg::MeshSessionKeys k = mg::mesh_session_keys(kSecret, mg::mesh_transcript(kDiallerHello, kListenerHello));
    sealer.start(k.dialler_to_listener, Use::Seal, encrypt);
    opener.start(k.dialler_to_listener, Use::Open, encrypt);
  }
  // Opens a whole frame as the decoder hands it over (type byte, then payload and tag).
  bool open(const std::string& frame, std::string& body) {
    const char* b = nullptr;
    size_t n = 0;
    if (!opener.open(static_cast<MeshType>(frame[4]), frame.data() + 5, frame.size() - 5, b, n)) return false;
    body.assign(b, n);
    return true;
  }
};

class MeshRecord : public ::testing::TestWithParam<bool> {};

TEST_P(MeshRecord, RoundTripsInOrder) {
  Pair p(GetParam());
  std::vector<std::string> bodies = {"", "{}", R"({"k":1,"m":"mesh.publish"})", std::string(100000, 'x')};
  for (const std::string& b : bodies) {
    std::string f = p.sealer.seal(MeshType::Call, b);
    ASSERT_EQ(f.size(), 5 + b.size() + mg::kMeshTagBytes);
    if (GetParam() && b.size() > 8) {
      EXPECT_EQ(f.find(b.substr(0, 8)), std::string::npos);  // not in the clear
    } else if (!GetParam()) {
      EXPECT_EQ(f.substr(5, b.size()), b);
    }
    std::string got;
    ASSERT_TRUE(p.open(f, got));
    EXPECT_EQ(got, b);
  }
  EXPECT_EQ(p.opener.sequence(), bodies.size());
}

TEST_P(MeshRecord, EveryAlteredByteIsRefused) {
  Pair ref(GetParam());
  std::string f = ref.sealer.seal(MeshType::Event, R"({"t":"a"})");
  for (size_t i = 4; i < f.size(); i++) {  // the type, the body and the tag (the length moves the frame)
    Pair p(GetParam());
    std::string g = f;
    g[i] = static_cast<char>(g[i] ^ 1);
    std::string got;
    EXPECT_FALSE(p.open(g, got)) << "byte " << i;
  }
}

TEST_P(MeshRecord, ReplayedReorderedAndLostFramesAreRefused) {
  {  // replay: the same frame twice
    Pair p(GetParam());
    std::string f = p.sealer.seal(MeshType::Ping, R"({"t":1})");
    std::string got;
    ASSERT_TRUE(p.open(f, got));
    EXPECT_FALSE(p.open(f, got));
  }
  {  // reorder: the second frame first
    Pair p(GetParam());
    std::string a = p.sealer.seal(MeshType::Ping, R"({"t":1})");
    std::string b = p.sealer.seal(MeshType::Ping, R"({"t":2})");
    std::string got;
    EXPECT_FALSE(p.open(b, got));
  }
  {  // loss: one frame never arrives, the next is refused
    Pair p(GetParam());
    std::string got;
    ASSERT_TRUE(p.open(p.sealer.seal(MeshType::Ping, "{}"), got));
    p.sealer.seal(MeshType::Ping, "{}");
    EXPECT_FALSE(p.open(p.sealer.seal(MeshType::Ping, "{}"), got));
  }
  {  // after a failure nothing more is accepted, not even the right frame
    Pair p(GetParam());
    std::string f = p.sealer.seal(MeshType::Ping, "{}");
    std::string bad = f;
    bad.back() = static_cast<char>(bad.back() ^ 0x80);
    std::string got;
    EXPECT_FALSE(p.open(bad, got));
    EXPECT_FALSE(p.open(f, got));
  }
  {  // a frame shorter than a tag
    Pair p(GetParam());
    const char* b = nullptr;
    size_t n = 0;
    EXPECT_FALSE(p.opener.open(MeshType::Ping, "short", 5, b, n));
  }
}

TEST_P(MeshRecord, DirectionsAndModesDoNotMix) {
  mg::MeshSessionKeys k = mg::mesh_session_keys(kSecret, mg::mesh_transcript(kDiallerHello, kListenerHello));
  MeshRecordCipher sealer, wrong_direction, wrong_mode;
  sealer.start(k.dialler_to_listener, Use::Seal, GetParam());
  wrong_direction.start(k.listener_to_dialler, Use::Open, GetParam());
  wrong_mode.start(k.dialler_to_listener, Use::Open, !GetParam());
  std::string f = sealer.seal(MeshType::Ping, R"({"t":1})");
  const char* b = nullptr;
  size_t n = 0;
  EXPECT_FALSE(wrong_direction.open(MeshType::Ping, f.data() + 5, f.size() - 5, b, n));  // no reflection
  EXPECT_FALSE(wrong_mode.open(MeshType::Ping, f.data() + 5, f.size() - 5, b, n));       // no downgrade
  // Another handshake's keys (another transcript) do not open it either.
  MeshRecordCipher other;
  other.start(mg::mesh_session_keys(kSecret, mg::mesh_transcript(kDiallerHello, "{}")).dialler_to_listener, Use::Open,
              GetParam());
  EXPECT_FALSE(other.open(MeshType::Ping, f.data() + 5, f.size() - 5, b, n));
}

// A rolling change of the secret (mesh_crypto.h MeshSecrets): a proof is matched under the current
// or the accepted secret, and the answer says which, so both sides key the link alike.
TEST(MeshCrypto, ProofSecretIsTheCurrentOrTheAcceptedOne) {
  const std::string t = mg::mesh_transcript(kDiallerHello, kListenerHello);
  const std::string s1 = "secret one, the old", s2 = "secret two, the new";
  const std::string by_s1 = mg::mesh_proof(s1, MeshRole::Dialler, t);
  const mg::MeshSecrets only_s1{s1, ""}, s1_then_s2{s1, s2}, s2_then_s1{s2, s1}, only_s2{s2, ""};
  EXPECT_EQ(mg::mesh_proof_secret(only_s1, by_s1, MeshRole::Dialler, t), &only_s1.current);
  EXPECT_EQ(mg::mesh_proof_secret(s2_then_s1, by_s1, MeshRole::Dialler, t), &s2_then_s1.accepted);
  EXPECT_EQ(mg::mesh_proof_secret(s1_then_s2, by_s1, MeshRole::Dialler, t), &s1_then_s2.current);
  EXPECT_EQ(mg::mesh_proof_secret(only_s2, by_s1, MeshRole::Dialler, t), nullptr);
  EXPECT_EQ(mg::mesh_proof_secret(s2_then_s1, by_s1, MeshRole::Listener, t), nullptr);  // the role still binds
  const mg::MeshSecrets empty_accepted{s2, ""};
  EXPECT_EQ(mg::mesh_proof_secret(empty_accepted, mg::mesh_proof("", MeshRole::Dialler, t), MeshRole::Dialler, t),
            nullptr);  // an empty accepted secret is none, not the empty key
}

INSTANTIATE_TEST_SUITE_P(Modes, MeshRecord, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "Encrypted" : "Authenticated"; });

}  // namespace
