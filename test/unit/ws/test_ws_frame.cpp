// Unit tests for server-to-client WebSocket frames and the accept key (ws/ws_frame.h): the RFC 6455
// handshake example, the exact header bytes at each length-encoding boundary, and frames read back by
// wslay's own frame parser (the library our clients' frames go through), so both ends agree.
#include "ws/ws_frame.h"

#include <gtest/gtest.h>
#include <wslay/wslay.h>

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <string>

namespace {

std::string frame(uint8_t opcode, const std::string& payload) {
  return mg::ws_encode_frame(opcode, payload.data(), payload.size());
}

std::string bytes(std::initializer_list<int> list) {
  std::string s;
  for (int b : list) s.push_back(static_cast<char>(b));
  return s;
}

// A whole frame read back with wslay_frame_recv.
struct Parsed {
  bool ok = false;
  uint8_t fin = 0, rsv = 0, opcode = 0, mask = 0;
  uint64_t payload_length = 0;
  std::string payload;
};

struct Source {
  const std::string* data;
  size_t pos;
};

ssize_t recv_from_source(uint8_t* buf, size_t len, int /*flags*/, void* user_data) {
  auto* src = static_cast<Source*>(user_data);
  const size_t n = std::min(len, src->data->size() - src->pos);
  if (n == 0) return -1;  // wslay treats it as "nothing to read" (want read)
  std::memcpy(buf, src->data->data() + src->pos, n);
  src->pos += n;
  return static_cast<ssize_t>(n);
}

ssize_t send_nothing(const uint8_t*, size_t, int, void*) { return -1; }
int no_mask(uint8_t*, size_t, void*) { return -1; }

Parsed parse_with_wslay(const std::string& wire, size_t* consumed) {
  Parsed out;
  Source src{&wire, 0};
  wslay_frame_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof callbacks);
  callbacks.send_callback = send_nothing;
  callbacks.recv_callback = recv_from_source;
  callbacks.genmask_callback = no_mask;
  wslay_frame_context_ptr ctx = nullptr;
  if (wslay_frame_context_init(&ctx, &callbacks, &src) != 0) return out;
  bool first = true;
  for (;;) {
    wslay_frame_iocb iocb;
    std::memset(&iocb, 0, sizeof iocb);
    const ssize_t r = wslay_frame_recv(ctx, &iocb);
    if (r < 0) break;
    if (first) {
      out.fin = iocb.fin;
      out.rsv = iocb.rsv;
      out.opcode = iocb.opcode;
      out.mask = iocb.mask;
      out.payload_length = iocb.payload_length;
      first = false;
    }
    out.payload.append(reinterpret_cast<const char*>(iocb.data), iocb.data_length);
    if (out.payload.size() == out.payload_length) {
      out.ok = true;
      break;
    }
  }
  wslay_frame_context_free(ctx);
  if (consumed) *consumed = src.pos;
  return out;
}

TEST(WsAcceptKey, MatchesTheRfc6455Section1_3Example) {
  EXPECT_EQ(mg::ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WsAcceptKey, MatchesAnotherKnownHandshake) {
  EXPECT_EQ(mg::ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw=="), "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

TEST(WsAcceptKey, IsTwentyEightCharactersOfBase64ForAnyKey) {
  // SHA-1 is 20 bytes: 28 base64 characters with one '=' of padding.
  for (const char* key : {"", "a", "AQIDBAUGBwgJCgsMDQ4PEA=="}) {
    const std::string accept = mg::ws_accept_key(key);
    EXPECT_EQ(accept.size(), 28u) << key;
    EXPECT_EQ(accept.back(), '=') << key;
  }
  EXPECT_NE(mg::ws_accept_key("AQIDBAUGBwgJCgsMDQ4PEA=="), mg::ws_accept_key("AQIDBAUGBwgJCgsMDQ4PEQ=="));
}

TEST(WsEncodeFrame, EmptyPayloadIsTwoHeaderBytes) {
  EXPECT_EQ(frame(mg::kWsText, ""), bytes({0x81, 0x00}));
  EXPECT_EQ(frame(mg::kWsPing, ""), bytes({0x89, 0x00}));
}

TEST(WsEncodeFrame, RfcExampleUnmaskedHelloIsByteExact) {
  // RFC 6455 §5.7: a single-frame unmasked text message "Hello".
  EXPECT_EQ(frame(mg::kWsText, "Hello"), bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
}

TEST(WsEncodeFrame, Length125FitsInTheSecondByte) {
  const std::string f = frame(mg::kWsBinary, std::string(125, 'x'));
  ASSERT_EQ(f.size(), 2u + 125u);
  EXPECT_EQ(f.substr(0, 2), bytes({0x82, 125}));
}

TEST(WsEncodeFrame, Length126UsesTheSixteenBitForm) {
  const std::string f = frame(mg::kWsBinary, std::string(126, 'x'));
  ASSERT_EQ(f.size(), 4u + 126u);
  EXPECT_EQ(f.substr(0, 4), bytes({0x82, 126, 0x00, 0x7E}));
}

TEST(WsEncodeFrame, Length65535IsTheLargestSixteenBitForm) {
  const std::string f = frame(mg::kWsText, std::string(65535, 'x'));
  ASSERT_EQ(f.size(), 4u + 65535u);
  EXPECT_EQ(f.substr(0, 4), bytes({0x81, 126, 0xFF, 0xFF}));
}

TEST(WsEncodeFrame, Length65536UsesTheSixtyFourBitForm) {
  const std::string f = frame(mg::kWsText, std::string(65536, 'x'));
  ASSERT_EQ(f.size(), 10u + 65536u);
  EXPECT_EQ(f.substr(0, 10), bytes({0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}));
}

TEST(WsEncodeFrame, SetsFinAndOpcodeAndNeverMaskOrRsv) {
  for (uint8_t op : {mg::kWsText, mg::kWsBinary, mg::kWsClose, mg::kWsPing, mg::kWsPong}) {
    const std::string f = frame(op, "abc");
    EXPECT_EQ(static_cast<uint8_t>(f[0]), 0x80 | op);
    EXPECT_EQ(static_cast<uint8_t>(f[1]) & 0x80, 0) << "mask bit set";
    EXPECT_EQ(f.substr(2), "abc");
  }
}

TEST(WsEncodeFrame, CloseFrameCarriesStatusCodeAndReason) {
  const std::string payload = bytes({0x03, 0xE9}) + "going away";  // 1001
  EXPECT_EQ(frame(mg::kWsClose, payload), bytes({0x88, 12}) + payload);
}

TEST(WsEncodeFrame, WslayParsesBackEveryLengthForm) {
  for (size_t len : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u, 200000u}) {
    std::string payload(len, '\0');
    for (size_t i = 0; i < len; ++i) payload[i] = static_cast<char>(i * 7 + 3);
    const std::string wire = frame(mg::kWsBinary, payload);
    size_t consumed = 0;
    const Parsed p = parse_with_wslay(wire, &consumed);
    ASSERT_TRUE(p.ok) << "len " << len;
    EXPECT_EQ(p.fin, 1) << len;
    EXPECT_EQ(p.rsv, 0) << len;
    EXPECT_EQ(p.opcode, WSLAY_BINARY_FRAME) << len;
    EXPECT_EQ(p.mask, 0) << len;
    EXPECT_EQ(p.payload_length, len);
    EXPECT_TRUE(p.payload == payload) << len;
    EXPECT_EQ(consumed, wire.size()) << len;
  }
}

TEST(WsEncodeFrame, WslayParsesBackTextAndControlFrames) {
  const Parsed text = parse_with_wslay(frame(mg::kWsText, "{\"a\":1}"), nullptr);
  ASSERT_TRUE(text.ok);
  EXPECT_EQ(text.opcode, WSLAY_TEXT_FRAME);
  EXPECT_EQ(text.payload, "{\"a\":1}");
  const Parsed ping = parse_with_wslay(frame(mg::kWsPing, "p"), nullptr);
  ASSERT_TRUE(ping.ok);
  EXPECT_EQ(ping.opcode, WSLAY_PING);
  EXPECT_EQ(ping.payload, "p");
  const Parsed pong = parse_with_wslay(frame(mg::kWsPong, ""), nullptr);
  ASSERT_TRUE(pong.ok);
  EXPECT_EQ(pong.opcode, WSLAY_PONG);
}

}  // namespace
