// Differential fuzz target: the same client byte stream, cut at different random points, goes through
// the native codec and the wslay codec; both must report the same events (messages with their bytes,
// pings, pongs, the client's close with code and reason) and end the same way (the same violation
// code, or neither). A third run gives the native codec the whole stream at once. Two more runs, one per
// codec, ask to hold after random messages and feed what the hold left again (as a paused client's
// connection does): the events must not change, and a hold must leave the decoder between messages.
// Also checked: what a decoder reports is well formed (text is UTF-8, no message over the limit), and a
// decoder that has stopped holds nothing. Cut points come from a generator seeded by the input, so a
// failure reproduces.
#include <cassert>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/utf8.h"
#include "ws/ws_native.h"
#include "ws/ws_wslay.h"
#include "ws_seeds.h"

namespace {

uint64_t mix(uint64_t z);

struct Recorder final : mg::WsEvents {
  uint32_t max_message = 0;
  uint64_t hold_state = 0;  // 0: never hold; else the generator that says when
  std::vector<std::string> events;
  bool ws_message(uint8_t opcode, const uint8_t* data, size_t len) override {
    assert(opcode == 1 || opcode == 2);
    assert(len <= max_message);
    assert(opcode == 2 || mg::is_valid_utf8(reinterpret_cast<const char*>(data), len));
    add(opcode == 1 ? "text " : "binary ", data, len);
    if (!hold_state) return false;
    hold_state = mix(hold_state) | 1;
    return (hold_state & 3) == 0;
  }
  void ws_ping(const uint8_t* data, size_t len) override { add("ping ", data, len); }
  void ws_pong(const uint8_t* data, size_t len) override { add("pong ", data, len); }
  void ws_close(uint16_t code, const uint8_t* reason, size_t len) override {
    add("close " + std::to_string(code) + " ", reason, len);
  }
  void ws_error(uint16_t code) override { events.push_back("error " + std::to_string(code)); }
  void add(const std::string& what, const uint8_t* data, size_t len) {
    events.push_back(what);
    if (len) events.back().append(reinterpret_cast<const char*>(data), len);
  }
};

uint64_t mix(uint64_t z) {  // splitmix64
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Feeds `input` in pieces whose sizes come from `seed` (0: all at once), holding after messages chosen
// by `hold_seed` (0: never); returns the events.
std::vector<std::string> run(mg::WsDecoder& d, uint32_t max_message, const std::string& input, uint64_t seed,
                             uint64_t hold_seed = 0) {
  Recorder rec;
  rec.max_message = max_message;
  rec.hold_state = hold_seed;
  std::string buf = input;  // decoders may unmask in place
  size_t off = 0;
  uint64_t state = seed;
  while (off < buf.size() && !d.stopped()) {
    size_t n = buf.size() - off;
    if (seed) {
      state = mix(state);
      // Mostly small pieces (cuts inside headers, masks, UTF-8 sequences), sometimes large ones.
      const size_t cap = (state & 3) == 0 ? 4096 : (state & 3) == 1 ? 16 : 3;
      n = std::min(n, 1 + static_cast<size_t>((state >> 8) % cap));
    }
    const size_t before = rec.events.size();
    const size_t used = d.feed(reinterpret_cast<uint8_t*>(&buf[off]), n, rec);
    assert(used <= n);
    if (used < n) {  // held: right after a message, nothing buffered; the rest comes again
      assert(hold_seed && rec.events.size() > before && !d.stopped() && d.idle());
    }
    off += used;
  }
  if (d.stopped()) assert(d.idle());
  return rec.events;
}

void report(const char* what, const std::string& input, const std::vector<std::string>& a,
            const std::vector<std::string>& b) {
  std::fprintf(stderr, "codecs differ (%s): %zu vs %zu events; input (%zu bytes):", what, a.size(), b.size(),
               input.size());
  for (size_t i = 0; i < input.size() && i < 64; i++) std::fprintf(stderr, " %02x", static_cast<uint8_t>(input[i]));
  std::fprintf(stderr, "\n");
  for (size_t i = 0; i < a.size() || i < b.size(); i++) {
    std::fprintf(stderr, "  [%zu] %.60s | %.60s\n", i, i < a.size() ? a[i].c_str() : "-", i < b.size() ? b[i].c_str() : "-");
  }
}

}  // namespace

std::vector<std::string> fuzz_seeds() { return wsseed::seeds(); }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  uint64_t h = 1469598103934665603ull;  // FNV-1a: cut points follow from the input
  for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 1099511628211ull;
  // Two limits: one above every seed's messages, one that control frames can exceed.
  const uint32_t max_message = (h & 1) ? 100 : 3000;

  mg::NativeWsDecoder native_cut(max_message), native_whole(max_message);
  mg::WslayWsDecoder wslay_cut(max_message);
  const std::vector<std::string> a = run(native_cut, max_message, input, mix(h) | 1);
  const std::vector<std::string> b = run(wslay_cut, max_message, input, mix(h + 1) | 1);
  const std::vector<std::string> c = run(native_whole, max_message, input, 0);
  mg::NativeWsDecoder native_held(max_message);
  mg::WslayWsDecoder wslay_held(max_message);
  const std::vector<std::string> e = run(native_held, max_message, input, mix(h + 2) | 1, mix(h + 3) | 1);
  const std::vector<std::string> f = run(wslay_held, max_message, input, mix(h + 4) | 1, mix(h + 5) | 1);
  if (a != b) report("native vs wslay, both cut", input, a, b);
  if (a != c) report("native cut vs native whole", input, a, c);
  if (a != e) report("native cut vs native cut and held", input, a, e);
  if (a != f) report("native cut vs wslay cut and held", input, a, f);
  assert(a == b && a == c && a == e && a == f);
  assert(native_cut.stopped() == wslay_cut.stopped());
  return 0;
}
