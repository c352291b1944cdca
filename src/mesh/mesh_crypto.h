// The mesh's cryptography (docs/mesh-protocol.md §4): the handshake's proofs, the session keys they
// lead to, and the protection of every frame after the handshake. OpenSSL primitives only:
// SHA-256, HMAC-SHA256, HKDF-SHA256 (RFC 5869) and AES-256-GCM. No I/O; unit-tested alone.
//
//   transcript T = SHA-256("meshgate mesh v2 transcript\0" | be32 len | dialler's HELLO
//                                                         | be32 len | listener's HELLO)
//   proof(role)  = HMAC-SHA256(secret, "meshgate mesh v2 <role> proof\0" | T)
//   keys         = HKDF-SHA256(ikm = secret, salt = T, info = "meshgate mesh v2 session keys")
//                  → key and IV for dialler → listener, key and IV for listener → dialler
//
// Each HELLO carries its sender's fresh nonce, node id, cluster, protocol version and encryption
// mode, so T binds all of them; the role label makes a dialler's proof useless as a listener's.
//
// A protected frame is `length | type | payload | tag` (16 bytes). The tag is AES-256-GCM's over
// the 5 header bytes and the payload, with the nonce IV xor the frame's sequence number (0, 1, 2,
// ... in each direction, never sent): a frame altered, forged, replayed, dropped or reordered fails
// the tag of the frame where it shows. With encryption the payload is the body encrypted; without,
// it is the body as is and only authenticated (GCM with no plaintext, all of it additional data).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "mesh/mesh_wire.h"

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

namespace mg {

enum class MeshRole { Dialler, Listener };

constexpr size_t kMeshTagBytes = 16;

// T, 32 raw bytes.
std::string mesh_transcript(const std::string& dialler_hello, const std::string& listener_hello);
// The proof a side of `role` sends in its AUTH: base64 of 32 bytes.
std::string mesh_proof(const std::string& secret, MeshRole role, const std::string& transcript);
// Compares a received proof with the expected one in constant time.
bool mesh_proof_matches(const std::string& received, const std::string& expected);

// A node's secrets during a rolling change of [mesh] secret (docs/operations.md "Rotating
// certificates and secrets"). A link is proved and keyed under one secret, the one its dialler
// proved with: a dialler proves with `current`; a listener checks that proof under `current`, then
// `accepted`, and answers under the one that matched; the dialler checks the answer the same way
// and keys the link under the secret it matched. So two nodes link while either holds the other's
// current secret, and a link keeps the keys it was made with for its whole life.
struct MeshSecrets {
  std::string current;   // [mesh] secret
  std::string accepted;  // [mesh] secret_accepted: also taken from peers; empty: none
};
// The secret of `secrets` under which `received` is `role`'s proof over `transcript`; nullptr when
// neither. Both are computed, so the time taken does not say which matched.
const std::string* mesh_proof_secret(const MeshSecrets& secrets, const std::string& received, MeshRole role,
                                     const std::string& transcript);
// The secrets new handshakes use: those the last reload set (mesh_reload_secrets, from the hub on
// SIGHUP), else `configured` (what the node started with). Hub thread (locked all the same).
MeshSecrets mesh_secrets_in_force(const MeshSecrets& configured);
void mesh_reload_secrets(MeshSecrets secrets);

struct MeshDirectionKey {
  unsigned char key[32];
  unsigned char iv[12];
};
struct MeshSessionKeys {
  MeshDirectionKey dialler_to_listener;
  MeshDirectionKey listener_to_dialler;
};
MeshSessionKeys mesh_session_keys(const std::string& secret, const std::string& transcript);

// One direction of a link's frame protection: the sealer on the sending side, the opener on the
// receiving side, each counting its own sequence numbers.
class MeshRecordCipher {
 public:
  MeshRecordCipher() = default;
  ~MeshRecordCipher();
  MeshRecordCipher(const MeshRecordCipher&) = delete;
  MeshRecordCipher& operator=(const MeshRecordCipher&) = delete;

  enum class Use { Seal, Open };
  // Keys this direction for sealing (sender) or opening (receiver); from now on frames are
  // protected. `encrypt`: confidentiality too.
  void start(const MeshDirectionKey& key, Use use, bool encrypt);
  bool active() const { return ctx_ != nullptr; }

  // Sender: the whole protected frame for (type, body).
  std::string seal(MeshType type, const char* body, size_t len);
  std::string seal(MeshType type, const std::string& body) { return seal(type, body.data(), body.size()); }

  // Receiver: `payload` is what followed the type byte of a received frame (payload and tag).
  // True with [body, body + body_len) the frame's body: in the input itself when only
  // authenticated, in this object's buffer (valid until the next call) when encrypted. False when
  // the frame is not the next one the peer sealed: altered, forged, replayed, out of order, or
  // one went missing before it. After a false the direction is unusable (the link must close).
  bool open(MeshType type, const char* payload, size_t len, const char*& body, size_t& body_len);

  uint64_t sequence() const { return seq_; }

 private:
  void nonce(unsigned char out[12]) const;

  EVP_CIPHER_CTX* ctx_ = nullptr;
  unsigned char iv_[12] = {};
  bool encrypt_ = false;
  bool failed_ = false;
  uint64_t seq_ = 0;
  std::string plain_;  // an opened encrypted body; its capacity is released after a large frame
};

}  // namespace mg
