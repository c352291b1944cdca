// Unit tests for the HTTP/1.1 request parser (http/http_parser.h, on llhttp): requests however the
// bytes are split, pipelining (one request per Complete, the rest left for after next()), upgrades
// leaving the new protocol's bytes unconsumed, and the 431/413/400 limits.
#include "http/http_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace {

using mg::HttpLimits;
using mg::HttpParser;
using Status = HttpParser::Status;

// Feeds `bytes` in one call.
Status feed(HttpParser& p, const std::string& bytes, size_t& consumed) {
  return p.feed(bytes.data(), bytes.size(), consumed);
}

Status feed(HttpParser& p, const std::string& bytes) {
  size_t consumed = 0;
  return feed(p, bytes, consumed);
}

// Feeds one byte per call until something other than NeedMore; returns it and how many bytes were
// used in total.
Status feed_bytewise(HttpParser& p, const std::string& bytes, size_t& used) {
  used = 0;
  for (char c : bytes) {
    size_t consumed = 0;
    const Status s = p.feed(&c, 1, consumed);
    used += consumed;
    if (s != Status::NeedMore) return s;
    EXPECT_EQ(consumed, 1u);
  }
  return Status::NeedMore;
}

HttpLimits limits(uint32_t header_bytes, uint32_t headers, uint32_t body) {
  HttpLimits l;
  l.max_header_bytes = header_bytes;
  l.max_headers = headers;
  l.max_body = body;
  return l;
}

std::string chunked(const std::string& body, size_t chunk) {
  std::string out;
  for (size_t i = 0; i < body.size(); i += chunk) {
    const std::string part = body.substr(i, chunk);
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", part.size());
    out += size + part + "\r\n";
  }
  return out + "0\r\n\r\n";
}

// ---------------------------------------------------------------------------------------------
// Well-formed requests

TEST(HttpParser, SimpleGetIsComplete) {
  HttpParser p{HttpLimits{}};
  const std::string req = "GET /v1/nodes HTTP/1.1\r\nHost: localhost\r\n\r\n";
  size_t consumed = 0;
  ASSERT_EQ(feed(p, req, consumed), Status::Complete);
  EXPECT_EQ(consumed, req.size());
  const mg::HttpRequest& r = p.request();
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/v1/nodes");
  EXPECT_EQ(r.path, "/v1/nodes");
  EXPECT_EQ(r.query, "");
  EXPECT_EQ(r.body, "");
  EXPECT_TRUE(r.keep_alive);
  EXPECT_FALSE(r.upgrade);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "host");
  EXPECT_EQ(r.headers[0].second, "localhost");
  EXPECT_EQ(p.error_status(), 0);
}

TEST(HttpParser, HeaderNamesAreLowerCasedAndValuesKeptAsSent) {
  HttpParser p{HttpLimits{}};
  ASSERT_EQ(feed(p, "GET / HTTP/1.1\r\nHOST: Example.COM\r\nContent-Type: Application/JSON\r\n"
                    "X-MiXeD-CaSe: AbC\r\nAuthorization: Bearer T0k3N\r\n\r\n"),
            Status::Complete);
  const mg::HttpRequest& r = p.request();
  ASSERT_EQ(r.headers.size(), 4u);
  EXPECT_EQ(r.headers[0].first, "host");
  EXPECT_EQ(r.headers[1].first, "content-type");
  EXPECT_EQ(r.headers[2].first, "x-mixed-case");
  EXPECT_EQ(r.headers[3].first, "authorization");
  ASSERT_NE(r.header("host"), nullptr);
  EXPECT_EQ(*r.header("host"), "Example.COM");
  EXPECT_EQ(*r.header("content-type"), "Application/JSON");
  EXPECT_EQ(*r.header("x-mixed-case"), "AbC");
  EXPECT_EQ(*r.header("authorization"), "Bearer T0k3N");
  EXPECT_EQ(r.header("missing"), nullptr);
  EXPECT_EQ(r.header("Host"), nullptr);  // lookups take the lower-case name
}

TEST(HttpParser, LeadingWhitespaceOfAHeaderValueIsNotPartOfIt) {
  HttpParser p{HttpLimits{}};
  ASSERT_EQ(feed(p, "GET / HTTP/1.1\r\nHost: x\r\nX-A:    spaced value\r\nX-B:\tv\r\n\r\n"), Status::Complete);
  EXPECT_EQ(*p.request().header("x-a"), "spaced value");
  EXPECT_EQ(*p.request().header("x-b"), "v");
}

// RFC 9110 §5.5: the optional whitespace around a field value is not part of it. llhttp hands the
// trailing whitespace to on_header_value and the parser keeps it, so "Sec-WebSocket-Version: 13 "
// gets 426, a 24-byte Sec-WebSocket-Key followed by a space gets 400, and "Authorization: Bearer T "
// gets 401 — so the parser strips it.
TEST(HttpParser, TrailingWhitespaceOfAHeaderValueIsNotPartOfIt) {
  HttpParser p{HttpLimits{}};
  ASSERT_EQ(feed(p, "GET / HTTP/1.1\r\nHost: x\r\nX-A: spaced value\t \r\nSec-WebSocket-Version: 13 \r\n\r\n"),
            Status::Complete);
  EXPECT_EQ(*p.request().header("x-a"), "spaced value");
  EXPECT_EQ(*p.request().header("sec-websocket-version"), "13");
}

TEST(HttpParser, EmptyHeaderValueIsKept) {
  HttpParser p{HttpLimits{}};
  ASSERT_EQ(feed(p, "GET / HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Next: n\r\n\r\n"), Status::Complete);
  ASSERT_NE(p.request().header("x-empty"), nullptr);
  EXPECT_EQ(*p.request().header("x-empty"), "");
  EXPECT_EQ(*p.request().header("x-next"), "n");
}

TEST(HttpParser, RepeatedHeadersAreAllKeptAndHeaderReturnsTheFirst) {
  HttpParser p{HttpLimits{}};
  ASSERT_EQ(feed(p, "GET / HTTP/1.1\r\nHost: x\r\nOrigin: a\r\norigin: b\r\n\r\n"), Status::Complete);
  ASSERT_EQ(p.request().headers.size(), 3u);
  EXPECT_EQ(*p.request().header("origin"), "a");
  EXPECT_EQ(p.request().headers[2].second, "b");
}

TEST(HttpParser, PathAndQueryAreSplitAtTheFirstQuestionMark) {
  HttpParser p{HttpLimits{}};
  ASSERT_EQ(feed(p, "GET /route?intranet=1&uid=a%20b?c HTTP/1.1\r\nHost: x\r\n\r\n"), Status::Complete);
  EXPECT_EQ(p.request().target, "/route?intranet=1&uid=a%20b?c");
  EXPECT_EQ(p.request().path, "/route");
  EXPECT_EQ(p.request().query, "intranet=1&uid=a%20b?c");
}

TEST(HttpParser, EmptyQueryAfterQuestionMark) {
  HttpParser p{HttpLimits{}};
  ASSERT_EQ(feed(p, "GET /ws/v1? HTTP/1.1\r\nHost: x\r\n\r\n"), Status::Complete);
  EXPECT_EQ(p.request().path, "/ws/v1");
  EXPECT_EQ(p.request().query, "");
}

TEST(HttpParser, PercentEncodingInThePathIsKept) {
  HttpParser p{HttpLimits{}};
  ASSERT_EQ(feed(p, "GET /a%2Fb/c%20d HTTP/1.1\r\nHost: x\r\n\r\n"), Status::Complete);
  EXPECT_EQ(p.request().path, "/a%2Fb/c%20d");
}

TEST(HttpParser, PostWithContentLengthBody) {
  HttpParser p{HttpLimits{}};
  const std::string body = R"({"c":"1","d":"hello"})";
  const std::string req = "POST /v1/mesh/send HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
                          "\r\nContent-Type: application/json\r\n\r\n" + body;
  size_t consumed = 0;
  ASSERT_EQ(feed(p, req, consumed), Status::Complete);
  EXPECT_EQ(consumed, req.size());
  EXPECT_EQ(p.request().method, "POST");
  EXPECT_EQ(p.request().body, body);
}

TEST(HttpParser, PostBodyFedByteByByte) {
  HttpParser p{HttpLimits{}};
  std::string body;
  for (int i = 0; i < 500; ++i) body += static_cast<char>('a' + i % 26);
  body += std::string("\0\r\n\xff", 4);
  const std::string req = "POST /v1/mesh/publish?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
  size_t used = 0;
  ASSERT_EQ(feed_bytewise(p, req, used), Status::Complete);
  EXPECT_EQ(used, req.size());
  EXPECT_EQ(p.request().method, "POST");
  EXPECT_EQ(p.request().path, "/v1/mesh/publish");
  EXPECT_EQ(p.request().query, "x=1");
  EXPECT_EQ(*p.request().header("host"), "h");
  EXPECT_EQ(p.request().body, body);
}

TEST(HttpParser, ChunkedBodyFedByteByByteIsReassembled) {
  HttpParser p{HttpLimits{}};
  const std::string body(300, 'z');
  const std::string req = "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, 7);
  size_t used = 0;
  ASSERT_EQ(feed_bytewise(p, req, used), Status::Complete);
  EXPECT_EQ(used, req.size());
  EXPECT_EQ(p.request().body, body);
}

TEST(HttpParser, RequestSplitAtEveryPossiblePointGivesTheSameResult) {
  const std::string req = "PUT /p?q=1 HTTP/1.1\r\nHost: x\r\nX-Long-Header-Name: some value\r\nContent-Length: 5\r\n\r\nhello";
  for (size_t cut = 0; cut <= req.size(); ++cut) {
    SCOPED_TRACE(cut);
    HttpParser p{HttpLimits{}};
    size_t c1 = 0, c2 = 0;
    const Status s1 = p.feed(req.data(), cut, c1);
    if (cut < req.size()) {
      ASSERT_EQ(s1, Status::NeedMore);
      ASSERT_EQ(c1, cut);
      ASSERT_EQ(p.feed(req.data() + cut, req.size() - cut, c2), Status::Complete);
      EXPECT_EQ(c2, req.size() - cut);
    } else {
      ASSERT_EQ(s1, Status::Complete);
    }
    EXPECT_EQ(p.request().method, "PUT");
    EXPECT_EQ(p.request().path, "/p");
    EXPECT_EQ(p.request().query, "q=1");
    EXPECT_EQ(*p.request().header("x-long-header-name"), "some value");
    EXPECT_EQ(p.request().body, "hello");
  }
}

TEST(HttpParser, TwoPipelinedRequestsInOneBuffer) {
  HttpParser p{HttpLimits{}};
  const std::string first = "POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
  const std::string second = "GET /two?b=2 HTTP/1.1\r\nHost: x\r\nX-Second: yes\r\n\r\n";
  const std::string buf = first + second;
  size_t consumed = 0;
  ASSERT_EQ(p.feed(buf.data(), buf.size(), consumed), Status::Complete);
  EXPECT_EQ(consumed, first.size());
  EXPECT_EQ(p.request().method, "POST");
  EXPECT_EQ(p.request().path, "/one");
  EXPECT_EQ(p.request().body, "abc");
  p.next();
  size_t consumed2 = 0;
  ASSERT_EQ(p.feed(buf.data() + consumed, buf.size() - consumed, consumed2), Status::Complete);
  EXPECT_EQ(consumed2, second.size());
  EXPECT_EQ(p.request().method, "GET");
  EXPECT_EQ(p.request().path, "/two");
  EXPECT_EQ(p.request().query, "b=2");
  EXPECT_EQ(p.request().body, "");
  EXPECT_EQ(p.request().header("content-length"), nullptr);  // nothing left from the first
  EXPECT_EQ(*p.request().header("x-second"), "yes");
}

TEST(HttpParser, PipelinedRequestWithASecondHalfArrivingLater) {
  HttpParser p{HttpLimits{}};
  const std::string first = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string second = "GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string buf = first + second.substr(0, 10);
  size_t consumed = 0;
  ASSERT_EQ(feed(p, buf, consumed), Status::Complete);
  EXPECT_EQ(consumed, first.size());
  p.next();
  ASSERT_EQ(p.feed(buf.data() + consumed, buf.size() - consumed, consumed), Status::NeedMore);
  EXPECT_EQ(consumed, 10u);
  ASSERT_EQ(feed(p, second.substr(10), consumed), Status::Complete);
  EXPECT_EQ(p.request().path, "/b");
  EXPECT_EQ(*p.request().header("host"), "x");
}

TEST(HttpParser, ManyPipelinedRequestsAreReturnedInOrder) {
  HttpParser p{HttpLimits{}};
  std::string buf;
  for (int i = 0; i < 50; ++i) buf += "GET /r" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  size_t pos = 0;
  for (int i = 0; i < 50; ++i) {
    size_t consumed = 0;
    ASSERT_EQ(p.feed(buf.data() + pos, buf.size() - pos, consumed), Status::Complete) << i;
    EXPECT_EQ(p.request().path, "/r" + std::to_string(i));
    pos += consumed;
    p.next();
  }
  EXPECT_EQ(pos, buf.size());
}

TEST(HttpParser, KeepAliveFollowsVersionAndConnectionHeader) {
  {
    HttpParser p{HttpLimits{}};
    ASSERT_EQ(feed(p, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), Status::Complete);
    EXPECT_FALSE(p.request().keep_alive);
  }
  {
    HttpParser p{HttpLimits{}};
    ASSERT_EQ(feed(p, "GET / HTTP/1.0\r\n\r\n"), Status::Complete);
    EXPECT_FALSE(p.request().keep_alive);
  }
  {
    HttpParser p{HttpLimits{}};
    ASSERT_EQ(feed(p, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), Status::Complete);
    EXPECT_TRUE(p.request().keep_alive);
  }
}

TEST(HttpParser, UpgradeLeavesTheFollowingBytesUnconsumed) {
  HttpParser p{HttpLimits{}};
  const std::string head =
      "GET /chat?token=abc HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  const std::string ws_frame("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
  const std::string buf = head + ws_frame;
  size_t consumed = 0;
  ASSERT_EQ(feed(p, buf, consumed), Status::Complete);
  EXPECT_EQ(consumed, head.size());
  EXPECT_TRUE(p.request().upgrade);
  EXPECT_EQ(p.request().path, "/chat");
  EXPECT_EQ(p.request().query, "token=abc");
  EXPECT_EQ(*p.request().header("upgrade"), "websocket");
  EXPECT_EQ(buf.substr(consumed), ws_frame);
}

TEST(HttpParser, UpgradeFedByteByByteStopsAtTheEndOfTheHead) {
  HttpParser p{HttpLimits{}};
  const std::string head = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
  size_t used = 0;
  ASSERT_EQ(feed_bytewise(p, head + "WSDATA", used), Status::Complete);
  EXPECT_EQ(used, head.size());
  EXPECT_TRUE(p.request().upgrade);
}

TEST(HttpParser, UpgradeHeaderWithoutConnectionUpgradeIsNotAnUpgrade) {
  HttpParser p{HttpLimits{}};
  ASSERT_EQ(feed(p, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"), Status::Complete);
  EXPECT_FALSE(p.request().upgrade);
}

// ---------------------------------------------------------------------------------------------
// Limits

TEST(HttpParserLimits, LongHeaderValueOverMaxHeaderBytesIs431) {
  HttpParser p{limits(1024, 64, 1 << 20)};
  EXPECT_EQ(feed(p, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'v') + "\r\n\r\n"), Status::Error);
  EXPECT_EQ(p.error_status(), 431);
  EXPECT_FALSE(p.error_message().empty());
}

TEST(HttpParserLimits, LongUrlOverMaxHeaderBytesIs431) {
  HttpParser p{limits(1024, 64, 1 << 20)};
  EXPECT_EQ(feed(p, "GET /" + std::string(2000, 'u') + " HTTP/1.1\r\nHost: x\r\n\r\n"), Status::Error);
  EXPECT_EQ(p.error_status(), 431);
}

TEST(HttpParserLimits, OversizedHeadIsRefusedBeforeItEnds) {
  // The limit holds while the head is still arriving: no unbounded buffering.
  HttpParser p{limits(1024, 64, 1 << 20)};
  ASSERT_EQ(feed(p, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "), Status::NeedMore);
  Status s = Status::NeedMore;
  for (int i = 0; i < 100 && s == Status::NeedMore; ++i) s = feed(p, std::string(100, 'v'));
  EXPECT_EQ(s, Status::Error);
  EXPECT_EQ(p.error_status(), 431);
}

TEST(HttpParserLimits, ManySmallHeadersOverMaxHeaderBytesAre431) {
  HttpParser p{limits(1024, 1000, 1 << 20)};
  std::string req = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 300; ++i) req += "X-H" + std::to_string(i) + ": value\r\n";
  EXPECT_EQ(feed(p, req + "\r\n"), Status::Error);
  EXPECT_EQ(p.error_status(), 431);
}

TEST(HttpParserLimits, HeadJustUnderTheLimitIsAccepted) {
  HttpParser p{limits(1024, 64, 1 << 20)};
  EXPECT_EQ(feed(p, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(900, 'v') + "\r\n\r\n"), Status::Complete);
}

// The head is measured as the sum of the URL, header names and header values: the whitespace
// before a value (and the method, version, colons and line ends) is not counted, so a head of any
// size made of padding would pass. The head is measured by position instead.
TEST(HttpParserLimits, WhitespacePaddingCountsTowardsMaxHeaderBytes) {
  HttpParser p{limits(1024, 64, 1 << 20)};
  EXPECT_EQ(feed(p, "GET / HTTP/1.1\r\nHost: x\r\nX-Pad:" + std::string(100000, ' ') + "v\r\n\r\n"), Status::Error);
  EXPECT_EQ(p.error_status(), 431);
}

TEST(HttpParserLimits, TooManyHeadersIs431) {
  HttpParser p{limits(8192, 4, 1 << 20)};
  EXPECT_EQ(feed(p, "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n"), Status::Error);
  EXPECT_EQ(p.error_status(), 431);
  EXPECT_NE(p.error_message().find('4'), std::string::npos) << p.error_message();
}

TEST(HttpParserLimits, ExactlyMaxHeadersIsAccepted) {
  HttpParser p{limits(8192, 5, 1 << 20)};
  ASSERT_EQ(feed(p, "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"), Status::Complete);
  EXPECT_EQ(p.request().headers.size(), 5u);
}

TEST(HttpParserLimits, HeaderCountIsPerRequestNotPerConnection) {
  HttpParser p{limits(8192, 3, 1 << 20)};
  const std::string req = "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n";
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(feed(p, req), Status::Complete) << i;
    p.next();
  }
}

TEST(HttpParserLimits, HeadBytesArePerRequestNotPerConnection) {
  HttpParser p{limits(512, 64, 1 << 20)};
  const std::string req = "GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(400, 'v') + "\r\n\r\n";
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(feed(p, req), Status::Complete) << i;
    p.next();
  }
}

TEST(HttpParserLimits, ContentLengthOverMaxBodyIs413BeforeTheBodyArrives) {
  HttpParser p{limits(8192, 64, 1000)};
  EXPECT_EQ(feed(p, "POST /v1/mesh/send HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n"), Status::Error);
  EXPECT_EQ(p.error_status(), 413);
  EXPECT_FALSE(p.error_message().empty());
}

TEST(HttpParserLimits, HugeContentLengthIs413) {
  HttpParser p{limits(8192, 64, 1000)};
  EXPECT_EQ(feed(p, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551614\r\n\r\n"), Status::Error);
  EXPECT_EQ(p.error_status(), 413);
}

TEST(HttpParserLimits, ContentLengthEqualToMaxBodyIsAccepted) {
  HttpParser p{limits(8192, 64, 1000)};
  const std::string body(1000, 'b');
  ASSERT_EQ(feed(p, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + body), Status::Complete);
  EXPECT_EQ(p.request().body, body);
}

TEST(HttpParserLimits, ChunkedBodyOverMaxBodyIs413) {
  HttpParser p{limits(8192, 64, 1000)};
  const std::string req = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(std::string(1500, 'c'), 100);
  EXPECT_EQ(feed(p, req), Status::Error);
  EXPECT_EQ(p.error_status(), 413);
}

TEST(HttpParserLimits, ChunkedBodyOverMaxBodyIs413WhileItArrives) {
  HttpParser p{limits(8192, 64, 1000)};
  ASSERT_EQ(feed(p, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"), Status::NeedMore);
  Status s = Status::NeedMore;
  for (int i = 0; i < 100 && s == Status::NeedMore; ++i) s = feed(p, "40\r\n" + std::string(64, 'c') + "\r\n");
  EXPECT_EQ(s, Status::Error);
  EXPECT_EQ(p.error_status(), 413);
}

TEST(HttpParserLimits, ChunkedBodyOfExactlyMaxBodyIsAccepted) {
  HttpParser p{limits(8192, 64, 1000)};
  const std::string body(1000, 'c');
  ASSERT_EQ(feed(p, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, 300)), Status::Complete);
  EXPECT_EQ(p.request().body, body);
}

TEST(HttpParserLimits, HugeChunkSizeIsRefused) {
  HttpParser p{limits(8192, 64, 1000)};
  EXPECT_EQ(feed(p, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n"), Status::Error);
  EXPECT_NE(p.error_status(), 0);
}

// ---------------------------------------------------------------------------------------------
// Malformed input

TEST(HttpParserMalformed, GarbageIs400) {
  for (const std::string& junk :
       {std::string("HELLO WORLD\r\n\r\n"), std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),
        std::string("GET\r\n\r\n"), std::string("GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n"),
        std::string("GET / FTP/1.1\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"), std::string("\r\n\r\n\r\n\x01"),
        std::string("GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n"), std::string("GET / HTTP/1.1\r\nHost: x\r\nX: a\x01\x02\r\n\r\n")}) {
    SCOPED_TRACE(junk);
    HttpParser p{HttpLimits{}};
    EXPECT_EQ(feed(p, junk), Status::Error);
    EXPECT_EQ(p.error_status(), 400);
    EXPECT_FALSE(p.error_message().empty());
  }
}

TEST(HttpParserMalformed, ContentLengthWithChunkedIsRefused) {
  // Request smuggling: the two framings disagree.
  HttpParser p{HttpLimits{}};
  EXPECT_EQ(feed(p, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), Status::Error);
  EXPECT_EQ(p.error_status(), 400);
}

TEST(HttpParserMalformed, TwoDifferentContentLengthsAreRefused) {
  HttpParser p{HttpLimits{}};
  EXPECT_EQ(feed(p, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde"), Status::Error);
  EXPECT_EQ(p.error_status(), 400);
}

TEST(HttpParserMalformed, BadChunkIsRefused) {
  HttpParser p{HttpLimits{}};
  EXPECT_EQ(feed(p, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"), Status::Error);
  EXPECT_EQ(p.error_status(), 400);
}

TEST(HttpParserMalformed, AfterAnErrorEveryFeedIsAnError) {
  HttpParser p{HttpLimits{}};
  ASSERT_EQ(feed(p, "NOT HTTP AT ALL\r\n\r\n"), Status::Error);
  size_t consumed = 99;
  EXPECT_EQ(feed(p, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", consumed), Status::Error);
  EXPECT_EQ(consumed, 0u);
  EXPECT_EQ(p.error_status(), 400);
}

TEST(HttpParserMalformed, GarbageAfterAGoodRequestIsAnErrorOnlyForTheNextOne) {
  HttpParser p{HttpLimits{}};
  const std::string good = "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string buf = good + "\x01\x02garbage\r\n\r\n";
  size_t consumed = 0;
  ASSERT_EQ(feed(p, buf, consumed), Status::Complete);
  EXPECT_EQ(p.request().path, "/ok");
  EXPECT_EQ(consumed, good.size());
  p.next();
  EXPECT_EQ(p.feed(buf.data() + consumed, buf.size() - consumed, consumed), Status::Error);
  EXPECT_EQ(p.error_status(), 400);
}

TEST(HttpParserMalformed, ErrorStatusIsZeroWhileAllIsWell) {
  HttpParser p{HttpLimits{}};
  EXPECT_EQ(p.error_status(), 0);
  EXPECT_EQ(feed(p, "GET / HT"), Status::NeedMore);
  EXPECT_EQ(p.error_status(), 0);
}



// ---------------------------------------------------------------------------------------------
// RFC 9112: what a server must refuse (issue 18)

namespace strict {

// The status of the error `bytes` cause, fed whole and byte by byte (the same either way), or 0 when
// they parse to a complete request.
int status_of(const std::string& bytes) {
  HttpParser whole{HttpLimits{}};
  Status s = feed(whole, bytes);
  HttpParser bytewise{HttpLimits{}};
  size_t used = 0;
  Status b = feed_bytewise(bytewise, bytes, used);
  EXPECT_EQ(s, b) << bytes;
  EXPECT_EQ(whole.error_status(), bytewise.error_status()) << bytes;
  if (s == Status::Error) {
    EXPECT_FALSE(whole.error_message().empty());
    return whole.error_status();
  }
  EXPECT_EQ(s, Status::Complete) << bytes;
  return 0;
}

TEST(HttpParserStrict, ObsFoldIs400) {
  // §5.2: a server must reject obs-fold (or replace it, which would give a request its sender did
  // not mean); a folded line could hide a header from a proxy in front of us.
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\nX-A: one\r\n\ttwo\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\n Transfer-Encoding: chunked\r\n\r\n"), 400);
}

TEST(HttpParserStrict, Http11WithoutHostIs400) {
  // RFC 9112 §3.2: a server must answer 400 to an HTTP/1.1 request without Host.
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nX-Host: x\r\n\r\n"), 400);
  // HTTP/1.0 predates Host: accepted without one.
  EXPECT_EQ(status_of("GET / HTTP/1.0\r\n\r\n"), 0);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nhOsT: x\r\n\r\n"), 0);
}

TEST(HttpParserStrict, TwoHostHeadersAre400) {
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.0\r\nHost: x\r\nHost: y\r\n\r\n"), 400);
}

TEST(HttpParserStrict, TransferEncodingOtherThanAFinalChunkedIsRefused) {
  const std::string head = "POST / HTTP/1.1\r\nHost: x\r\n";
  const std::string body = "\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
  // §6.3: the final coding is not chunked → 400 (and close).
  EXPECT_EQ(status_of(head + "Transfer-Encoding: chunked, gzip" + body), 400);
  EXPECT_EQ(status_of(head + "Transfer-Encoding: identity" + body), 400);
  EXPECT_EQ(status_of(head + "Transfer-Encoding: gzip" + body), 400);
  EXPECT_EQ(status_of(head + "Transfer-Encoding: chunked, chunked" + body), 400);
  EXPECT_EQ(status_of(head + "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip" + body), 400);
  // §6.1: chunked last, but a coding before it we do not implement → 501.
  EXPECT_EQ(status_of(head + "Transfer-Encoding: gzip, chunked" + body), 501);
  EXPECT_EQ(status_of(head + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked" + body), 501);
  // Only chunked: fine, in any case and with white space.
  EXPECT_EQ(status_of(head + "Transfer-Encoding: chunked" + body), 0);
  EXPECT_EQ(status_of(head + "Transfer-Encoding: CHUNKED" + body), 0);
}

TEST(HttpParserStrict, RequestLineWithoutAVersionIs400) {
  // HTTP/0.9 style: no version, no headers.
  EXPECT_EQ(status_of("GET /\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET /\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / \r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/0.9\r\nHost: x\r\n\r\n"), 400);  // llhttp reads both alike
}

TEST(HttpParserStrict, VersionsOtherThan1xAre505) {
  EXPECT_EQ(status_of("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
}

}  // namespace strict
}  // namespace
