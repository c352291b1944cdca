// Decoder throughput: large client messages through this build's WebSocket codec (built once per codec:
// build/codec_bench_native, build/codec_bench_wslay). For each message size it makes one
// masked client stream of --count messages, each either one frame or cut into 16 KiB fragments, and
// feeds it in 64 KiB reads (the size of a worker's read buffer) to a fresh decoder, --runs times.
// Prints the median time per message and MB/s of payload. The stream is re-masked before each run
// because the native decoder unmasks in place.
//
//   ninja -C build codec_bench_native && build/codec_bench_native [--count N] [--runs R]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include <algorithm>

#include "ws/ws_codec.h"

namespace {

struct Count final : mg::WsEvents {
  size_t messages = 0, bytes = 0, errors = 0;
  bool ws_message(uint8_t, const uint8_t*, size_t n) override {
    messages++;
    bytes += n;
    return false;
  }
  void ws_ping(const uint8_t*, size_t) override {}
  void ws_pong(const uint8_t*, size_t) override {}
  void ws_close(uint16_t, const uint8_t*, size_t) override {}
  void ws_error(uint16_t) override { errors++; }
};

void append_frame(std::string& out, uint8_t first, const char* p, size_t n) {
  static const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
  out.push_back(static_cast<char>(first));
  if (n <= 125) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<char>(static_cast<uint64_t>(n) >> s));
  }
  out.append(reinterpret_cast<const char*>(key), 4);
  for (size_t i = 0; i < n; i++) out.push_back(static_cast<char>(p[i] ^ key[i & 3]));
}

std::string stream(size_t size, size_t count, bool fragmented) {
  std::string text(size, 'a');
  for (size_t i = 0; i < size; i += 97) text[i] = static_cast<char>('a' + i % 26);  // text, checked as UTF-8
  std::string out;
  for (size_t m = 0; m < count; m++) {
    if (!fragmented) {
      append_frame(out, 0x81, text.data(), size);
      continue;
    }
    const size_t frag = 16384;
    for (size_t off = 0; off < size; off += frag) {
      const size_t n = std::min(frag, size - off);
      const bool first = off == 0, last = off + n == size;
      append_frame(out, static_cast<uint8_t>((last ? 0x80 : 0) | (first ? 0x1 : 0x0)), text.data() + off, n);
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  size_t count = 200, runs = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--count")) count = std::strtoul(argv[i + 1], nullptr, 10);
    if (!std::strcmp(argv[i], "--runs")) runs = std::strtoul(argv[i + 1], nullptr, 10);
  }
  std::printf("codec %s, %zu messages per run, %zu runs, 64 KiB reads\n", mg::ws_codec_name(), count, runs);
  for (size_t size : {size_t{64} << 10, size_t{1} << 20}) {
    for (bool fragmented : {false, true}) {
      const std::string wire = stream(size, count, fragmented);
      std::vector<double> secs;
      for (size_t r = 0; r < runs; r++) {
        std::string buf = wire;
        auto d = mg::make_ws_decoder(static_cast<uint32_t>(size));
        Count c;
        const auto t0 = std::chrono::steady_clock::now();
        for (size_t off = 0; off < buf.size(); off += 65536) {
          d->feed(reinterpret_cast<uint8_t*>(&buf[off]), std::min<size_t>(65536, buf.size() - off), c);
        }
        secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        if (c.messages != count || c.errors || !d->idle()) {
          std::fprintf(stderr, "wrong result: %zu messages, %zu errors\n", c.messages, c.errors);
          return 1;
        }
      }
      std::sort(secs.begin(), secs.end());
      const double med = secs[secs.size() / 2];
      std::printf("%5zu KiB %-10s median %8.1f us/message  %7.0f MB/s\n", size >> 10,
                  fragmented ? "16K-frags" : "one frame", med / count * 1e6, size * count / med / 1e6);
    }
  }
  return 0;
}
