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
#include <vector>

#include <cjson/cJSON.h>

#include "core/json_text.h"
#include "core/node_info.h"
#include "mesh/swim.h"
#include "queue/queue_event.h"

namespace mg {

// 2: transcript-bound proofs, every later frame sealed. 3: INTEREST/INTEREST_ACK, and a channel's
// publishes and counts go only to the nodes that hold subscribers of it (a v2 node would never be
// told of them, so the versions do not link: docs/cluster.md "Rolling upgrade"). 4: SWIM membership
// (PING/ACK/PING_REQ with piggybacked updates, MEMBERS as a full state on request): a v3 node
// would take a link's loss for a death and never answer a probe, so the versions do not link.
constexpr int kMeshProtocolVersion = 4;
constexpr uint32_t kMeshMaxFrame = 32u << 20;  // larger frames are a protocol error
constexpr uint32_t kMeshMaxHandshakeFrame = 64u << 10;  // before a peer is authenticated

enum class MeshType : uint8_t {
  Hello = 1,    // {"v","cluster","id","name","nonce","enc","mesh","weight","conns","ext":{tcp,ws,wss},"int":{...},"inc","sync"}
  Auth = 2,     // {"mac"}: the sender's proof over both HELLOs (mesh_crypto.h); the dialler's first
  Refuse = 3,   // {"reason"}: then the sender closes
  Members = 4,  // {"m":[update,...]}: every member the sender knows (asked for, or a digest mismatch)
  Ping = 5,     // {"k":seq,"c":conns,"d":digest,"u":[update,...]}: a probe (k 0: a push, no ACK)
  Ack = 6,      // {"k":seq,"c":conns,"u":[update,...]}: answers PING k

  Call = 7,     // {"k":seq,"m":method,"p":params}: run an API method on the receiver, local scope
  Reply = 8,    // {"k":seq,"c":code,"e":message,"r":result}
  Topics = 9,   // {"t":[topic,...]}: topics the sender has local consumers for (replaces the last list)
  Event = 10,   // {"n":origin node,"c":"client id","t":topic,"d":data,"x":context,"r":redelivered,"f":handle,"h":hops}
  Done = 11,    // {"f":handle}: the forwarded event was consumed; the producer forgets its copy
  Interest = 12,     // {"k","full","more","all","a":[channel,...],"r":[channel,...]}: channels the sender holds subscribers of
  InterestAck = 13,  // {"k"}: the INTEREST frame k was applied
  PingReq = 14,      // {"k":seq,"target":id,"u":[update,...]}: probe target for me, ACK k when it answers
};
constexpr uint8_t kMeshMaxType = 14;

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

// --- frame bodies ---
//
// Every body has a struct here, written by mesh_encode and read by mesh_decode, and nowhere else.
// mesh_decode parses strictly (core/json_text.h json_parse_strict) and returns false for a body that
// is not a JSON object or holds a number of the wrong kind or out of range (the link is refused); a
// missing field reads as the fallback its struct gives. "p", "r", "d" and "x" are kept as raw JSON
// text, so big ids and any JSON value cross the mesh exactly as sent.

// HELLO {"v","cluster","id","name","nonce","enc","mesh","weight","conns","ext":{tcp,ws,wss},"int":{...},
// "inc","sync"}: "inc" the sender's SWIM incarnation (0..2^53-1, missing: 0); "sync" true when it
// knows no other member yet and wants the receiver's full MEMBERS.
// Only "v" makes mesh_decode fail (not a version number): the mesh refuses an "id" outside 1..kMaxNodeId
// (read as 0) and a HELLO without "enc" with a reason of their own; "conns" out of range reads as 0
// and "weight" that is not a finite positive number up to 1e6 as 1.
struct MeshHello {
  uint64_t version = 0;
  std::string cluster;
  unsigned id = 0;
  std::string name, nonce;
  bool has_enc = false, enc = false;
  std::string mesh;  // the sender's mesh address, as others should dial it
  double weight = 1;
  uint64_t conns = 0;
  NodeAddresses ext, intranet;
  uint64_t inc = 0;
  bool sync = false;
};

// AUTH {"mac"}: the sender's proof over both HELLOs (mesh_crypto.h).
struct MeshAuth {
  std::string mac;
};

// REFUSE {"reason"}.
struct MeshRefuse {
  std::string reason;
};

// A SWIM update on the wire: {"i":id,"n":incarnation,"s":0 alive|1 suspect|2 dead,"l":true (dead:
// it left),"a":{"name","mesh","weight","conns","ext","int"} (alive: the member's info),"f":id
// (suspect: the node that suspects it; missing: the sender)}. "i" outside 1..kMaxNodeId, "n" out of
// 0..2^53-1, "s" out of 0..2 or "f" out of 0..kMaxNodeId make the frame malformed.
// MEMBERS {"m":[update,...]}: the sender's whole table, itself first.
struct MeshMembers {
  std::vector<SwimUpdate> members;
};

// PING {"k":seq,"c":conns,"d":digest,"u":[update,...]}: "k" 0 is a push (updates that must go at
// once: a suspicion, a refutation, a leave), not answered. "d" (0: absent) is Swim::digest(), sent
// only when the sender has no news in flight.
struct MeshPing {
  uint64_t seq = 0, conns = 0, digest = 0;
  std::vector<SwimUpdate> updates;
};

// ACK {"k":seq,"c":conns,"u":[update,...]}.
struct MeshAck {
  uint64_t seq = 0, conns = 0;
  std::vector<SwimUpdate> updates;
};

// PING_REQ {"k":seq,"target":id,"u":[update,...]}.
struct MeshPingReq {
  uint64_t seq = 0;
  unsigned target = 0;
  std::vector<SwimUpdate> updates;
};

// The encoded size of one update, for the piggyback budget.
size_t mesh_update_size(const SwimUpdate& u);

// CALL {"k":seq,"m":method,"p":params}. params is the detached "p" object (null when "p" is missing
// or not an object), params_text its raw text as sent.
struct MeshCall {
  uint64_t seq = 0;
  std::string method;
  JsonPtr params;
  std::string params_text;
};

// REPLY {"k":seq,"c":code,"e":message,"r":result}: "c" 0..65535 (missing: 101), "r" raw ("null"
// when missing; written as null unless code is 0).
struct MeshReply {
  uint64_t seq = 0;
  int code = 101;
  std::string message;
  std::string result = "null";
};

// TOPICS {"t":[topic,...]}: non-empty strings, at most kMeshMaxTopics kept, anything else skipped.
constexpr size_t kMeshMaxTopics = 10000;
struct MeshTopics {
  std::vector<std::string> topics;
};

// INTEREST {"k":seq,"full":bool,"more":bool,"all":bool,"a":[channel,...],"r":[channel,...]}: which
// channels the sender holds at least one subscriber of. A delta ("full" false) adds "a" and removes
// "r"; a full set ("full" true) replaces what the receiver knew, and when it spans several frames
// every one but the last has "more" (the later ones are deltas that add). "all" true: the sender
// holds more channels than it lists (its max_interest): send it every publish until its next full
// set. "k" is the sender's sequence number of the frame, echoed by INTEREST_ACK. Entries that are
// not channel names (strings of 1..kMeshMaxChannelName bytes) are skipped.
constexpr size_t kMeshMaxChannelName = 128;
struct MeshInterest {
  uint64_t seq = 0;
  bool full = false, more = false, all = false;
  std::vector<std::string> added, removed;
};

// INTEREST_ACK {"k":seq}.
struct MeshInterestAck {
  uint64_t seq = 0;
};

// Splits one change of interest into frames whose lists hold at most `max_bytes` bytes of names
// each (at least one name a frame): a full set (`full`: `removed` must be empty) starts with a
// frame marked full and marks "more" on all but its last. Always at least one frame (an empty full
// set is one frame). Sequence numbers are left 0 for the caller.
std::vector<MeshInterest> mesh_interest_split(bool full, const std::vector<std::string>& added,
                                              const std::vector<std::string>& removed, size_t max_bytes);

// EVENT: the event's own members (queue_event.h append_event_members: "n","c","t","d","x","r") and
// "f" (the producer's handle, 0..2^53-1) and "h" (hops, 0..255). complete is false for an event the
// receiver cannot deliver (no topic, or "c" not a client id): it is dropped, the link kept. "n" is
// read when it is a node id, else 0 (the receiver knows the producer by its link anyway).
struct MeshEvent {
  QueueEvent ev;
  bool complete = false;
};

// DONE {"f":handle}.
struct MeshDone {
  uint64_t fwd = 0;
};

std::string mesh_encode(const MeshHello& b);
std::string mesh_encode(const MeshAuth& b);
std::string mesh_encode(const MeshRefuse& b);
std::string mesh_encode(const MeshMembers& b);
std::string mesh_encode(const MeshPing& b);
std::string mesh_encode(const MeshAck& b);
std::string mesh_encode(const MeshPingReq& b);
std::string mesh_encode(const MeshCall& b);  // from params_text ("null" when empty)
std::string mesh_encode(const MeshReply& b);
std::string mesh_encode(const MeshTopics& b);
// EVENT, from the event itself (ev.fwd, ev.hops included); `this_node` stands in for ev.node when
// that is 0 (an event of this node's own clients).
std::string mesh_encode(const QueueEvent& ev, unsigned this_node);
std::string mesh_encode(const MeshDone& b);
std::string mesh_encode(const MeshInterest& b);
std::string mesh_encode(const MeshInterestAck& b);

bool mesh_decode(const char* body, size_t len, MeshHello& out);
bool mesh_decode(const char* body, size_t len, MeshAuth& out);
bool mesh_decode(const char* body, size_t len, MeshRefuse& out);
bool mesh_decode(const char* body, size_t len, MeshMembers& out);
bool mesh_decode(const char* body, size_t len, MeshPing& out);
bool mesh_decode(const char* body, size_t len, MeshAck& out);
bool mesh_decode(const char* body, size_t len, MeshPingReq& out);
bool mesh_decode(const char* body, size_t len, MeshCall& out);
bool mesh_decode(const char* body, size_t len, MeshReply& out);
bool mesh_decode(const char* body, size_t len, MeshTopics& out);
bool mesh_decode(const char* body, size_t len, MeshEvent& out);
// The producer's handle "f" of an EVENT body that mesh_decode refused (its text is not valid UTF-8,
// or a member is out of range): read without the strict check, so that the event can still be reported
// consumed (DONE) and its producer does not send it again. False when no plain "f" can be read.
bool mesh_event_handle(const char* body, size_t len, uint64_t& fwd);
bool mesh_decode(const char* body, size_t len, MeshDone& out);
bool mesh_decode(const char* body, size_t len, MeshInterest& out);
bool mesh_decode(const char* body, size_t len, MeshInterestAck& out);

// True when the body is a JSON object at all: tells "malformed" from "a number out of range" after
// mesh_decode failed.
bool mesh_body_is_object(const char* body, size_t len);

// Field readers the decoders use. A missing field reads as `fallback`; a field present with the
// wrong kind or out of range makes the reader return false and the frame is malformed: no double
// from the wire is cast to an integer unchecked.
bool mesh_read_uint(const cJSON* obj, const char* key, uint64_t max, uint64_t fallback, uint64_t& out);
// A string field, or "" when it is missing or not a string.
std::string mesh_read_string(const cJSON* obj, const char* key);
// A node's client addresses as {"tcp":..,"ws":..,"wss":..}, and ,"weight":W (its route weight; read
// back as 1 unless a finite number in (0, 1e6]): the parts of a node's description every body shares.
void mesh_append_addresses(std::string& s, const NodeAddresses& a);
NodeAddresses mesh_read_addresses(const cJSON* obj, const char* key);
void mesh_append_weight(std::string& s, double weight);
double mesh_read_weight(const cJSON* o);

// A random nonce for HELLO (base64 of 16 bytes from OpenSSL's RAND_bytes).
std::string mesh_nonce();

}  // namespace mg
