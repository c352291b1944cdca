// Fuzz target: TCP line and len32 framing.
#include <cassert>
#include <cstdint>
#include <string>
#include <vector>

#include "client/tcp_framing.h"

std::vector<std::string> fuzz_seeds() {
  return {"hello\nworld\r\n\n", std::string("\0\0\0\5hello\0\0\0\0", 13), "no newline yet",
          std::string("\x7f\xff\xff\xff", 4)};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (mg::Framing f : {mg::Framing::Line, mg::Framing::Len32}) {
    mg::FrameDecoder dec(f, 64);
    const char* p = reinterpret_cast<const char*>(data);
    size_t half = size / 2;
    auto check = [](const char*, size_t len) {
      assert(len <= 64);
      return false;
    };
    if (dec.feed(p, half, check) == mg::FrameDecoder::Status::Ok) dec.feed(p + half, size - half, check);
    assert(dec.buffered() <= 64 + 4);
  }
  return 0;
}
