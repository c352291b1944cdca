// TLS session tickets without server state (RFC 8446 §4.6.1, RFC 5077): the server seals a
// returning client's session in a ticket under a key only it holds, so a reconnect resumes (no
// certificate signature, no chain sent) without a session cache in memory.
//
// Glossary:
//   ticket key  16 bytes of name (sent in clear inside the ticket, to find the key again), 32 bytes
//               of AES-256-CBC key and 32 bytes of HMAC-SHA256 key, all random, and when it was made
//   current     the key new tickets are sealed with
//   previous    the key current was before the last rotation: its tickets still resume (and are
//               renewed under current), so a rotation does not send every client back to a full
//               handshake
//   rotation    every `rotate` seconds current becomes previous and a fresh key becomes current; a
//               key is dropped one period after it stopped being current. A ticket is honoured at most
//               `rotate` seconds after it was issued (the session timeout), which a key always covers.
//   key file    optional: current and previous kept on disk (0600) so a restart keeps resuming. Read
//               at start, rewritten on every rotation; a file with group or other permissions is
//               refused. One file per node: nodes sharing a file would each rotate to keys of their own.
//
// Thread safety: one TicketKeys per listener, used by every worker's handshakes at once (and shared
// by the contexts a certificate reload makes, so tickets resume across the swap); every method locks.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace mg {

struct TicketKey {
  unsigned char name[16];
  unsigned char aes[32];
  unsigned char hmac[32];
  int64_t created = 0;  // unix seconds
};

class TicketKeys {
 public:
  // A fresh current key made at `now`, no previous key.
  TicketKeys(uint32_t rotate_s, int64_t now);

  // Keeps the keys in `path`: reads them when the file exists (then rotates if they are due), else
  // writes the fresh ones. False with `error` when the file cannot be read, is not ours to trust
  // (group or other permissions) or cannot be written.
  bool use_file(const std::string& path, int64_t now, std::string& error);

  // Rotates when current is `rotate` seconds old or more (twice that: both keys are replaced). Then
  // rewrites the key file, if any (a failure is logged; the keys in memory are used all the same).
  // True when it rotated.
  bool rotate_if_due(int64_t now);

  // The key to seal a new ticket with (rotating first when due).
  TicketKey current(int64_t now);
  // Finds the key a ticket names: 1 current, 2 previous, 0 none (a key older than previous, or
  // not ours: the client does a full handshake).
  int find(const unsigned char name[16], int64_t now, TicketKey& out);

  uint32_t rotate_seconds() const { return rotate_; }

 private:
  bool rotate_locked(int64_t now);
  bool write_file_locked(std::string& error) const;

  std::mutex mu_;
  uint32_t rotate_;
  TicketKey cur_{};
  TicketKey prev_{};
  bool has_prev_ = false;
  std::string file_;
};

// Turns stateless tickets on for `ctx` with `keys` (the context holds a reference, dropped when it is
// freed): the ticket key callback, no server-side session cache, one ticket after a full handshake
// and a fresh one on each resumption, tickets honoured for keys->rotate_seconds().
void use_ticket_keys(SSL_CTX* ctx, std::shared_ptr<TicketKeys> keys);
// The keys use_ticket_keys gave `ctx` (nullptr if none): a reference to hand a new context of the
// same listener, or (ticket_keys_of) to rotate them in a test.
std::shared_ptr<TicketKeys> shared_ticket_keys_of(SSL_CTX* ctx);
TicketKeys* ticket_keys_of(SSL_CTX* ctx);

// What --check-config says of a ticket_key_file before start-up would read or create it: "" when
// it is usable (an existing file we can read with no group or other permissions, in the right
// format; or a missing file in a directory we may write), else what is wrong.
std::string ticket_key_file_problem(const std::string& path);

}  // namespace mg
