// Fuzz target: HTTP request parsing (llhttp glue) with limits, fed in pieces.
#include <cassert>
#include <cstdint>
#include <string>
#include <vector>

#include "http/http_parser.h"

std::vector<std::string> fuzz_seeds() {
  return {"GET /route?intranet=1&uid=a HTTP/1.1\r\nHost: x\r\n\r\n",
          "POST /v1/mesh/send HTTP/1.1\r\nContent-Length: 11\r\n\r\n{\"c\":\"1\"}\r\n",
          "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
          "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
          "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x85\x01\x02\x03\x04" "abcde",
          "GET / HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mg::HttpParser parser(mg::HttpLimits{512, 8, 256});
  const char* p = reinterpret_cast<const char*>(data);
  size_t step = size ? 1 + data[0] % 17 : 1;  // the first byte picks how the input is split
  size_t off = 0;
  while (off < size) {
    size_t n = std::min(step, size - off);
    size_t used = 0;
    auto st = parser.feed(p + off, n, used);
    assert(used <= n);
    if (st == mg::HttpParser::Status::Error) {
      int s = parser.error_status();
      assert(s == 400 || s == 413 || s == 431);
      break;
    }
    if (st == mg::HttpParser::Status::Complete) {
      assert(parser.request().body.size() <= 256);
      if (parser.request().upgrade) break;
      parser.next();
      off += used;
      continue;
    }
    off += n;
  }
  return 0;
}
