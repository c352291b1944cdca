// Unit tests for the configuration loader (core/config.h): defaults when keys are absent, the shipped
// conf/meshgate.conf, every key's accepted and rejected values, and the error messages, which must
// name the file, the line and the key so that `meshgate --check-config` points at the mistake.
#include "core/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using mg::Config;
using mg::Framing;
using mg::ListenerType;

// Parses `text` as "t.conf"; expects success.
Config parse_ok(const std::string& text) {
  Config c;
  std::string error;
  EXPECT_TRUE(mg::parse_config_text(text, "t.conf", c, error)) << error << "\n--- text:\n" << text;
  return c;
}

// Parses `text` as "t.conf"; expects failure and returns the message.
std::string parse_error(const std::string& text) {
  Config c;
  std::string error;
  EXPECT_FALSE(mg::parse_config_text(text, "t.conf", c, error)) << "accepted:\n" << text;
  EXPECT_FALSE(error.empty());
  return error;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "\"" << (haystack) << "\" lacks \"" << (needle) << "\""

// The error names t.conf:LINE, the section and the key.
void expect_error_at(const std::string& text, int line, const std::string& section, const std::string& key) {
  const std::string e = parse_error(text);
  EXPECT_TRUE(starts_with(e, "t.conf:" + std::to_string(line) + ":")) << e;
  EXPECT_CONTAINS(e, "[" + section + "]");
  EXPECT_CONTAINS(e, key);
}

std::string source_root() {
  const char* root = std::getenv("MESON_SOURCE_ROOT");
  return root && *root ? root : ".";
}

const char kTwoListeners[] =
    "[listener.a]\n"
    "type = tcp\n"
    "port = 5100\n"
    "[listener.b]\n"
    "type = ws\n"
    "port = 5200\n";

// ---------------------------------------------------------------------------------------------
// Defaults

TEST(ConfigDefaults, EmptyTextGivesEveryDefault) {
  const Config c = parse_ok("");
  EXPECT_EQ(c.node_id, 1);
  EXPECT_EQ(c.node_name, "meshgate-1");
  EXPECT_EQ(c.workers, 0);
  EXPECT_EQ(c.advertise, "127.0.0.1");
  EXPECT_EQ(c.intranet_advertise, "");
  EXPECT_DOUBLE_EQ(c.route_weight, 1.0);
  EXPECT_EQ(c.drain_timeout, 10u);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.log_file, "");
  EXPECT_EQ(c.api_bind, "127.0.0.1");
  EXPECT_EQ(c.api_port, 6789);
  EXPECT_EQ(c.api_token, "");
  EXPECT_EQ(c.api_max_body, 1048576u);
  EXPECT_EQ(c.api_max_output, 67108864u);
  EXPECT_EQ(c.route_bind, "0.0.0.0");
  EXPECT_EQ(c.route_port, 5001);
  EXPECT_EQ(c.route_max_batch, 10000u);
  EXPECT_EQ(c.cors_origin, "");
  EXPECT_EQ(c.limits.max_connections, 100000u);
  EXPECT_EQ(c.limits.max_header_bytes, 8192u);
  EXPECT_EQ(c.limits.max_headers, 64u);
  EXPECT_EQ(c.limits.max_context_bytes, 4096u);
  EXPECT_EQ(c.limits.max_context_keys, 64u);
  EXPECT_EQ(c.limits.max_channels, 256u);
  EXPECT_EQ(c.limits.output_hard_limit, 4194304u);
  EXPECT_EQ(c.limits.output_soft_limit, 1048576u);
  EXPECT_EQ(c.limits.output_soft_seconds, 10u);
  EXPECT_EQ(c.queue.max_events, 10000u);
  EXPECT_EQ(c.queue.max_bytes, 16777216u);
  EXPECT_EQ(c.queue.ack_timeout_s, 30u);
  EXPECT_EQ(c.queue.max_unacked, 1000u);
  EXPECT_TRUE(c.listeners.empty());
  EXPECT_EQ(c.source_path, "t.conf");
}

TEST(ConfigDefaults, CommentsAndBlankLinesOnlyGiveDefaults) {
  const Config c = parse_ok("; a comment\n# another\n\n   \n[api]\n; nothing here\n");
  EXPECT_EQ(c.api_port, 6789);
  EXPECT_TRUE(c.listeners.empty());
}

TEST(ConfigDefaults, SettingOneKeyLeavesTheOthersOfItsSectionAtTheirDefaults) {
  const Config c = parse_ok("[api]\nport = 7000\n");
  EXPECT_EQ(c.api_port, 7000);
  EXPECT_EQ(c.api_bind, "127.0.0.1");
  EXPECT_EQ(c.api_max_body, 1048576u);
  EXPECT_EQ(c.route_port, 5001);
}

TEST(ConfigDefaults, ListenerKeysLeftOutTakeTheirDefaults) {
  const Config c = parse_ok("[listener.x]\nport = 9000\n");
  ASSERT_EQ(c.listeners.size(), 1u);
  const mg::ListenerConfig& l = c.listeners[0];
  EXPECT_EQ(l.name, "x");
  EXPECT_EQ(l.type, ListenerType::Ws);
  EXPECT_EQ(l.bind, "0.0.0.0");
  EXPECT_EQ(l.port, 9000);
  EXPECT_EQ(l.path, "");
  EXPECT_EQ(l.topic, "client");
  EXPECT_TRUE(l.events);
  EXPECT_EQ(l.framing, Framing::Line);
  EXPECT_EQ(l.max_message, 65536u);
  EXPECT_EQ(l.idle_timeout, 60u);
  EXPECT_EQ(l.ping_interval, 25u);
}

// ---------------------------------------------------------------------------------------------
// The shipped file

TEST(ConfigShippedFile, ConfMeshgateConfLoads) {
  const std::string path = source_root() + "/conf/meshgate.conf";
  Config c;
  std::string error;
  ASSERT_TRUE(mg::load_config(path, c, error)) << error << " (set MESON_SOURCE_ROOT)";
  EXPECT_EQ(c.source_path, path);
  ASSERT_EQ(c.listeners.size(), 3u);
  EXPECT_EQ(c.listeners[2].name, "wss");
  EXPECT_EQ(c.listeners[2].type, ListenerType::Ws);
  EXPECT_EQ(c.listeners[2].port, 5300);
  EXPECT_TRUE(c.listeners[2].tls);
  EXPECT_EQ(c.listeners[2].cert, "");
  EXPECT_EQ(c.listeners[0].name, "tcp");
  EXPECT_EQ(c.listeners[0].type, ListenerType::Tcp);
  EXPECT_EQ(c.listeners[0].port, 5100);
  EXPECT_EQ(c.listeners[0].framing, Framing::Line);
  EXPECT_EQ(c.listeners[0].topic, "client");
  EXPECT_EQ(c.listeners[1].name, "ws");
  EXPECT_EQ(c.listeners[1].type, ListenerType::Ws);
  EXPECT_EQ(c.listeners[1].port, 5200);
  EXPECT_EQ(c.listeners[1].path, "");
}

TEST(ConfigShippedFile, EveryValueInTheShippedFileIsTheBuiltInDefault) {
  // The file says "a key you leave out takes the value shown here": the two must agree.
  Config c;
  std::string error;
  ASSERT_TRUE(mg::load_config(source_root() + "/conf/meshgate.conf", c, error)) << error;
  const Config d;
  EXPECT_EQ(c.node_id, d.node_id);
  EXPECT_EQ(c.node_name, d.node_name);
  EXPECT_EQ(c.workers, d.workers);
  EXPECT_EQ(c.advertise, d.advertise);
  EXPECT_EQ(c.intranet_advertise, d.intranet_advertise);
  EXPECT_DOUBLE_EQ(c.route_weight, d.route_weight);
  EXPECT_EQ(c.drain_timeout, d.drain_timeout);
  EXPECT_EQ(c.log_level, d.log_level);
  EXPECT_EQ(c.log_file, d.log_file);
  EXPECT_EQ(c.api_bind, d.api_bind);
  EXPECT_EQ(c.api_port, d.api_port);
  EXPECT_EQ(c.api_token, d.api_token);
  EXPECT_EQ(c.api_max_body, d.api_max_body);
  EXPECT_EQ(c.api_max_output, d.api_max_output);
  EXPECT_EQ(c.route_bind, d.route_bind);
  EXPECT_EQ(c.route_port, d.route_port);
  EXPECT_EQ(c.route_max_batch, d.route_max_batch);
  EXPECT_EQ(c.route_max_body, d.route_max_body);
  EXPECT_EQ(c.api_hosts, d.api_hosts);
  EXPECT_EQ(c.api_origins, d.api_origins);
  EXPECT_EQ(c.tcp_addr, d.tcp_addr);
  EXPECT_EQ(c.ws_addr, d.ws_addr);
  EXPECT_EQ(c.wss_addr, d.wss_addr);
  EXPECT_EQ(c.cors_origin, d.cors_origin);
  EXPECT_EQ(c.limits.max_connections, d.limits.max_connections);
  EXPECT_EQ(c.limits.max_header_bytes, d.limits.max_header_bytes);
  EXPECT_EQ(c.limits.max_headers, d.limits.max_headers);
  EXPECT_EQ(c.limits.max_context_bytes, d.limits.max_context_bytes);
  EXPECT_EQ(c.limits.max_context_keys, d.limits.max_context_keys);
  EXPECT_EQ(c.limits.max_channels, d.limits.max_channels);
  EXPECT_EQ(c.limits.output_hard_limit, d.limits.output_hard_limit);
  EXPECT_EQ(c.limits.output_soft_limit, d.limits.output_soft_limit);
  EXPECT_EQ(c.limits.output_soft_seconds, d.limits.output_soft_seconds);
  EXPECT_EQ(c.limits.handshake_budget, d.limits.handshake_budget);
  EXPECT_EQ(c.limits.accept_budget, d.limits.accept_budget);
  EXPECT_EQ(c.listeners[2].ticket_rotate, mg::ListenerConfig().ticket_rotate);
  EXPECT_EQ(c.listeners[2].ticket_key_file, "");
  EXPECT_EQ(c.queue.max_events, d.queue.max_events);
  EXPECT_EQ(c.queue.max_bytes, d.queue.max_bytes);
  EXPECT_EQ(c.queue.ack_timeout_s, d.queue.ack_timeout_s);
  EXPECT_EQ(c.queue.max_unacked, d.queue.max_unacked);
  EXPECT_EQ(c.queue.max_topics, d.queue.max_topics);
  EXPECT_EQ(c.queue.topic_idle_s, d.queue.topic_idle_s);
  EXPECT_EQ(c.queue.max_disk, d.queue.max_disk);
  EXPECT_EQ(c.queue.max_disk_total, d.queue.max_disk_total);
  EXPECT_EQ(c.queue_storage.fsync, d.queue_storage.fsync);
  EXPECT_EQ(c.queue_storage.fsync_interval_ms, d.queue_storage.fsync_interval_ms);
  // The one exception, said in the file: it ships store = disk (issue 20); left out, a topic is in memory.
  EXPECT_TRUE(c.queue_storage.disk);
  EXPECT_FALSE(d.queue_storage.disk);
}

TEST(ConfigShippedFile, MissingFileIsAnErrorNamingThePath) {
  Config c;
  std::string error;
  EXPECT_FALSE(mg::load_config("/nonexistent/dir/meshgate.conf", c, error));
  EXPECT_CONTAINS(error, "/nonexistent/dir/meshgate.conf");
}

// ---------------------------------------------------------------------------------------------
// Accepted values

TEST(ConfigValues, EveryGlobalSectionIsReadIntoItsField) {
  const Config c = parse_ok(
      "[node]\nid = 1023\nname = n7\nworkers = 256\nadvertise = gw.example\nintranet_advertise = 10.0.0.7\n"
      "route_weight = 2.5\ndrain_timeout = 0\n"
      "[log]\nlevel = debug\nfile = /var/log/meshgate.log\n"
      "[api]\nbind = 0.0.0.0\nport = 1\ntoken = s3cret\nmax_body = 64\nmax_output = 65536\n"
      "hosts = gw1.internal, gw1.internal:9000\norigins = https://ops.example.com ,http://127.0.0.1:8080\n"
      "[route]\nbind = ::\nport = 0\nmax_batch = 1\nmax_body = 64\ntcp_addr = a:1\nws_addr = ws://b:2\nwss_addr = wss://c:3\n"
      "intranet_tcp_addr = d:4\nintranet_ws_addr = ws://e:5\nintranet_wss_addr = wss://f:6\ncors_origin = *\n"
      "[limits]\nmax_connections = 5\nmax_header_bytes = 256\nmax_headers = 4\nmax_context_bytes = 2\n"
      "max_context_keys = 1\nmax_channels = 1\noutput_hard_limit = 2048\noutput_soft_limit = 1024\n"
      "output_soft_seconds = 0\n"
      "[queue]\nmax_events = 1\nmax_bytes = 1024\nack_timeout = 1\nmax_unacked = 1\n");
  EXPECT_EQ(c.node_id, 1023);
  EXPECT_EQ(c.node_name, "n7");
  EXPECT_EQ(c.workers, 256);
  EXPECT_EQ(c.advertise, "gw.example");
  EXPECT_EQ(c.intranet_advertise, "10.0.0.7");
  EXPECT_DOUBLE_EQ(c.route_weight, 2.5);
  EXPECT_EQ(c.drain_timeout, 0u);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.log_file, "/var/log/meshgate.log");
  EXPECT_EQ(c.api_bind, "0.0.0.0");
  EXPECT_EQ(c.api_port, 1);
  EXPECT_EQ(c.api_token, "s3cret");
  EXPECT_EQ(c.api_max_body, 64u);
  EXPECT_EQ(c.api_max_output, 65536u);
  EXPECT_EQ(c.route_bind, "::");
  EXPECT_EQ(c.route_port, 0);
  EXPECT_EQ(c.route_max_batch, 1u);
  EXPECT_EQ(c.route_max_body, 64u);
  EXPECT_EQ(c.api_hosts, (std::vector<std::string>{"gw1.internal", "gw1.internal:9000"}));
  EXPECT_EQ(c.api_origins, (std::vector<std::string>{"https://ops.example.com", "http://127.0.0.1:8080"}));
  EXPECT_EQ(c.tcp_addr, "a:1");
  EXPECT_EQ(c.ws_addr, "ws://b:2");
  EXPECT_EQ(c.wss_addr, "wss://c:3");
  EXPECT_EQ(c.intranet_tcp_addr, "d:4");
  EXPECT_EQ(c.intranet_ws_addr, "ws://e:5");
  EXPECT_EQ(c.intranet_wss_addr, "wss://f:6");
  EXPECT_EQ(c.cors_origin, "*");
  EXPECT_EQ(c.limits.max_connections, 5u);
  EXPECT_EQ(c.limits.max_header_bytes, 256u);
  EXPECT_EQ(c.limits.max_headers, 4u);
  EXPECT_EQ(c.limits.max_context_bytes, 2u);
  EXPECT_EQ(c.limits.max_context_keys, 1u);
  EXPECT_EQ(c.limits.max_channels, 1u);
  EXPECT_EQ(c.limits.output_hard_limit, 2048u);
  EXPECT_EQ(c.limits.output_soft_limit, 1024u);
  EXPECT_EQ(c.limits.output_soft_seconds, 0u);
  EXPECT_EQ(c.queue.max_events, 1u);
  EXPECT_EQ(c.queue.max_bytes, 1024u);
  EXPECT_EQ(c.queue.ack_timeout_s, 1u);
  EXPECT_EQ(c.queue.max_unacked, 1u);
}

TEST(ConfigValues, RangeBoundsAreInclusive) {
  EXPECT_EQ(parse_ok("[node]\nid = 1\n").node_id, 1);
  EXPECT_EQ(parse_ok("[node]\nid = 1023\n").node_id, 1023);
  EXPECT_EQ(parse_ok("[api]\nport = 65535\n").api_port, 65535);
  EXPECT_EQ(parse_ok("[api]\nmax_body = 1073741824\n").api_max_body, 1073741824u);
  EXPECT_EQ(parse_ok("[api]\nmax_output = 1099511627776\n").api_max_output, 1099511627776ull);
  EXPECT_EQ(parse_ok("[limits]\nmax_headers = 1000\n").limits.max_headers, 1000u);
  EXPECT_EQ(parse_ok("[limits]\nmax_header_bytes = 1048576\n").limits.max_header_bytes, 1048576u);
  EXPECT_EQ(parse_ok("[queue]\nack_timeout = 86400\n").queue.ack_timeout_s, 86400u);
  EXPECT_EQ(parse_ok("[queue]\nmax_topics = 1\ntopic_idle_timeout = 1\n").queue.max_topics, 1u);
  EXPECT_DOUBLE_EQ(parse_ok("[node]\nroute_weight = 1000000\n").route_weight, 1e6);
  EXPECT_DOUBLE_EQ(parse_ok("[node]\nroute_weight = 0.001\n").route_weight, 0.001);
}

TEST(ConfigValues, EveryLogLevelIsAccepted) {
  for (const char* level : {"error", "warn", "info", "debug"})
    EXPECT_EQ(parse_ok(std::string("[log]\nlevel = ") + level + "\n").log_level, level);
}

TEST(ConfigValues, SpacesAroundKeysAndValuesAndInlineCommentsAreIgnored) {
  const Config c = parse_ok("[api]\n  port   =   7001   ; the API port\nbind=10.1.2.3\n");
  EXPECT_EQ(c.api_port, 7001);
  EXPECT_EQ(c.api_bind, "10.1.2.3");
}

TEST(ConfigValues, CrlfLineEndingsAreAccepted) {
  const Config c = parse_ok("[api]\r\nport = 7002\r\ntoken = abc\r\n[listener.w]\r\nport = 81\r\npath = /ws\r\n");
  EXPECT_EQ(c.api_port, 7002);
  EXPECT_EQ(c.api_token, "abc");
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].path, "/ws");
}

TEST(ConfigValues, LastLineWithoutNewlineIsRead) {
  EXPECT_EQ(parse_ok("[api]\nport = 7003").api_port, 7003);
}

// A key given twice is an error naming both lines (issue 11): which one counts would be a guess.
TEST(ConfigValues, AKeyGivenTwiceIsAnError) {
  std::string e = parse_error("[api]\nport = 7004\nport = 7005\n");
  EXPECT_TRUE(starts_with(e, "t.conf:3: [api] port = 7005: given twice (first at line 2)")) << e;
  e = parse_error("[api]\nport = 7004\n[node]\nid = 2\n[api]\nport = 7005\n");  // in a reopened section too
  EXPECT_TRUE(starts_with(e, "t.conf:6: [api] port")) << e;
  e = parse_error("[listener.a]\nport = 9000\nport = 9001\n");
  EXPECT_TRUE(starts_with(e, "t.conf:3: [listener.a] port = 9001: given twice (first at line 2)")) << e;
  e = parse_error("[listener.a]\nport = 9000\n[listener.a]\nport = 9001\n");
  EXPECT_CONTAINS(e, "listener defined twice");
}

TEST(ConfigValues, ASectionMayBeReopened) {
  const Config c = parse_ok("[api]\nport = 7006\n[node]\nid = 3\n[api]\ntoken = t\n");
  EXPECT_EQ(c.api_port, 7006);
  EXPECT_EQ(c.api_token, "t");
  EXPECT_EQ(c.node_id, 3);
}

// ---------------------------------------------------------------------------------------------
// Listeners

TEST(ConfigListeners, TwoListenersAreReadInFileOrder) {
  const Config c = parse_ok(kTwoListeners);
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].name, "a");
  EXPECT_EQ(c.listeners[0].type, ListenerType::Tcp);
  EXPECT_EQ(c.listeners[0].port, 5100);
  EXPECT_EQ(c.listeners[1].name, "b");
  EXPECT_EQ(c.listeners[1].type, ListenerType::Ws);
  EXPECT_EQ(c.listeners[1].port, 5200);
}

TEST(ConfigListeners, EveryListenerKeyIsRead) {
  const Config c = parse_ok(
      "[api]\nmax_output = 536870912\n"  // 8 x the largest max_message below
      "[listener.t]\ntype = tcp\nbind = 127.0.0.1\nport = 65535\ntopic = devices\nevents = off\n"
      "framing = len32\nmax_message = 16\nidle_timeout = 0\nping_interval = 86400\n"
      "[listener.w]\ntype = ws\nport = 1\npath = /chat/v1\nmax_message = 67108864\nidle_timeout = 86400\n"
      "ping_interval = 0\nevents = on\n");
  ASSERT_EQ(c.listeners.size(), 2u);
  const mg::ListenerConfig& t = c.listeners[0];
  EXPECT_EQ(t.type, ListenerType::Tcp);
  EXPECT_EQ(t.bind, "127.0.0.1");
  EXPECT_EQ(t.port, 65535);
  EXPECT_EQ(t.topic, "devices");
  EXPECT_FALSE(t.events);
  EXPECT_EQ(t.framing, Framing::Len32);
  EXPECT_EQ(t.max_message, 16u);
  EXPECT_EQ(t.idle_timeout, 0u);
  EXPECT_EQ(t.ping_interval, 86400u);
  const mg::ListenerConfig& w = c.listeners[1];
  EXPECT_EQ(w.type, ListenerType::Ws);
  EXPECT_EQ(w.port, 1);
  EXPECT_EQ(w.path, "/chat/v1");
  EXPECT_EQ(w.max_message, 67108864u);
  EXPECT_EQ(w.idle_timeout, 86400u);
  EXPECT_EQ(w.ping_interval, 0u);
  EXPECT_TRUE(w.events);
}

TEST(ConfigListeners, TicketKeysAndHandshakeBudgets) {
  const Config c = parse_ok(
      "[limits]\nhandshake_budget = 0\naccept_budget = 100\n"
      "[listener.s]\ntype = ws\nport = 443\ntls = on\nticket_rotate = 60\nticket_key_file = /var/lib/mg/t.keys\n");
  EXPECT_EQ(c.limits.handshake_budget, 0u);
  EXPECT_EQ(c.limits.accept_budget, 100u);
  EXPECT_EQ(c.listeners[0].ticket_rotate, 60u);
  EXPECT_EQ(c.listeners[0].ticket_key_file, "/var/lib/mg/t.keys");
  EXPECT_EQ(parse_ok("[listener.s]\nport = 1\ntls = on\nticket_rotate = 604800\n").listeners[0].ticket_rotate, 604800u);
  expect_error_at("[listener.s]\nport = 1\ntls = on\nticket_rotate = 59\n", 4, "listener.s", "ticket_rotate");
  expect_error_at("[listener.s]\nport = 1\ntls = on\nticket_rotate = 604801\n", 4, "listener.s", "ticket_rotate");
  EXPECT_CONTAINS(parse_error("[listener.s]\nport = 1\nticket_key_file = /x\n"), "ticket_key_file needs tls = on");
}

TEST(ConfigListeners, EveryBoolSpellingIsAccepted) {
  for (const char* on : {"on", "true", "yes", "1"})
    EXPECT_TRUE(parse_ok(std::string("[listener.x]\nport = 1\nevents = ") + on + "\n").listeners.at(0).events) << on;
  for (const char* off : {"off", "false", "no", "0"})
    EXPECT_FALSE(parse_ok(std::string("[listener.x]\nport = 1\nevents = ") + off + "\n").listeners.at(0).events) << off;
}

TEST(ConfigListeners, EmptyPathMeansAnyPath) {
  EXPECT_EQ(parse_ok("[listener.x]\nport = 1\npath =\n").listeners.at(0).path, "");
  EXPECT_EQ(parse_ok("[listener.x]\nport = 1\npath = /\n").listeners.at(0).path, "/");
}

TEST(ConfigListeners, TopicOf128BytesIsAcceptedAnd129Rejected) {
  EXPECT_EQ(parse_ok("[listener.x]\nport = 1\ntopic = " + std::string(128, 't') + "\n").listeners.at(0).topic,
            std::string(128, 't'));
  expect_error_at("[listener.x]\nport = 1\ntopic = " + std::string(129, 't') + "\n", 3, "listener.x", "topic");
}

TEST(ConfigListeners, SamePortOnDifferentBindAddressesIsAllowed) {
  const Config c = parse_ok("[listener.a]\nbind = 127.0.0.1\nport = 80\n[listener.b]\nbind = 10.0.0.1\nport = 80\n");
  EXPECT_EQ(c.listeners.size(), 2u);
}

TEST(ConfigListeners, ListenerPortMayEqualTheApiPort) {
  // Only listener ports are checked against each other here; binding reports real clashes.
  EXPECT_EQ(parse_ok("[listener.a]\nport = 6789\n").listeners.at(0).port, 6789);
}

// ---------------------------------------------------------------------------------------------
// Errors: each names t.conf:LINE, the section and the key.

TEST(ConfigErrors, UnknownKeyInAKnownSection) {
  expect_error_at("[api]\nport = 1\nprot = 2\n", 3, "api", "prot");
}

TEST(ConfigErrors, UnknownKeyInAListener) {
  expect_error_at("[listener.x]\nport = 1\n\nframe = line\n", 4, "listener.x", "frame");
}

TEST(ConfigErrors, KeyBeforeAnySectionIsUnknown) {
  expect_error_at("port = 1\n", 1, "", "port");
}

TEST(ConfigErrors, UnknownSection) {
  const std::string e = parse_error("[node]\nid = 2\n[nodes]\nid = 3\n");
  EXPECT_TRUE(starts_with(e, "t.conf:4:")) << e;
  EXPECT_CONTAINS(e, "[nodes]");
  EXPECT_CONTAINS(e, "id");
}

TEST(ConfigErrors, MisspelledListenerSectionIsUnknown) {
  expect_error_at("[listner.ws]\nport = 5200\n", 2, "listner.ws", "port");
}

TEST(ConfigErrors, ListenerSectionWithoutAName) {
  expect_error_at("[listener.]\nport = 5200\n", 2, "listener.", "port");
}

TEST(ConfigErrors, KeysAreCaseSensitive) {
  expect_error_at("[api]\nPort = 1\n", 2, "api", "Port");
}

TEST(ConfigErrors, BadNumbers) {
  for (const char* v : {"abc", "12x", "x12", "1.5", "-1", "+5", "0x10", "", "1 2", "99999999999999999999999"}) {
    SCOPED_TRACE(v);
    expect_error_at(std::string("[node]\nname = n\n[api]\nport = ") + v + "\n", 4, "api", "port");
  }
}

TEST(ConfigErrors, BadNumberMessageSaysWhatIsExpected) {
  const std::string e = parse_error("[node]\nid = one\n");
  EXPECT_CONTAINS(e, "one");
  EXPECT_CONTAINS(e, "1 to 1023");
}

TEST(ConfigErrors, OutOfRangeNumbers) {
  const struct { const char* section; const char* key; const char* value; } cases[] = {
      {"node", "id", "0"},
      {"node", "id", "1024"},
      {"node", "workers", "257"},
      {"node", "drain_timeout", "3601"},
      {"api", "port", "0"},
      {"api", "port", "65536"},
      {"api", "max_body", "63"},
      {"api", "max_body", "1073741825"},
      {"api", "max_output", "65535"},
      {"api", "max_output", "1099511627777"},
      {"route", "port", "65536"},
      {"route", "max_batch", "0"},
      {"route", "max_body", "63"},
      {"route", "max_body", "16777217"},
      {"limits", "max_connections", "0"},
      {"limits", "max_header_bytes", "255"},
      {"limits", "max_headers", "3"},
      {"limits", "max_headers", "1001"},
      {"limits", "max_context_bytes", "1"},
      {"limits", "max_channels", "0"},
      {"limits", "output_hard_limit", "1023"},
      {"limits", "output_soft_seconds", "86401"},
      {"queue", "max_events", "0"},
      {"queue", "max_bytes", "1023"},
      {"queue", "ack_timeout", "0"},
      {"queue", "ack_timeout", "86401"},
      {"queue", "max_unacked", "0"},
      {"queue", "max_unacked", "1000001"},
      {"queue", "max_topics", "0"},
      {"queue", "max_topics", "1000001"},
      {"queue", "topic_idle_timeout", "0"},
      {"queue", "topic_idle_timeout", "86401"},
  };
  for (const auto& t : cases) {
    SCOPED_TRACE(std::string(t.section) + "." + t.key + " = " + t.value);
    expect_error_at(std::string("\n[") + t.section + "]\n" + t.key + " = " + t.value + "\n", 3, t.section, t.key);
  }
}

TEST(ConfigErrors, ApiHostsAndOriginsMustLookLikeThem) {
  // An origin is scheme://host[:port], as browsers send it: a path or another scheme never matches.
  for (const char* v : {"ops.example.com", "https://ops.example.com/", "https://ops.example.com/dash", "ftp://x",
                        "*", "null"}) {
    SCOPED_TRACE(v);
    expect_error_at(std::string("[api]\norigins = ") + v + "\n", 2, "api", "origins");
  }
  for (const char* v : {"http://gw1", "gw1/x", "a b"}) {
    SCOPED_TRACE(v);
    expect_error_at(std::string("[api]\nhosts = ") + v + "\n", 2, "api", "hosts");
  }
}

TEST(ConfigErrors, OutOfRangeNumbersAreNotTruncatedIntoRange) {
  // 2^32 + 80 must not wrap to 80, nor 2^64 + 1 to 1.
  expect_error_at("[api]\nport = 4294967376\n", 2, "api", "port");
  expect_error_at("[queue]\nmax_events = 18446744073709551617\n", 2, "queue", "max_events");
}

TEST(ConfigErrors, BadRouteWeight) {
  for (const char* v : {"0", "-1", "abc", "", "1x", "nan", "inf", "1000001"}) {
    SCOPED_TRACE(v);
    expect_error_at(std::string("[node]\nroute_weight = ") + v + "\n", 2, "node", "route_weight");
  }
}

TEST(ConfigErrors, BadLogLevel) {
  expect_error_at("[log]\nlevel = verbose\n", 2, "log", "level");
  expect_error_at("[log]\nlevel =\n", 2, "log", "level");
}

TEST(ConfigErrors, BadBool) {
  for (const char* v : {"maybe", "", "2", "enabled", "of", "onn"}) {
    SCOPED_TRACE(v);
    expect_error_at(std::string("[listener.x]\nport = 1\nevents = ") + v + "\n", 3, "listener.x", "events");
  }
}

TEST(ConfigErrors, BadListenerType) {
  expect_error_at("[listener.x]\ntype = udp\nport = 1\n", 2, "listener.x", "type");
  expect_error_at("[listener.x]\ntype =\nport = 1\n", 2, "listener.x", "type");
}

TEST(ConfigErrors, BadFraming) {
  expect_error_at("[listener.x]\ntype = tcp\nframing = len16\nport = 1\n", 3, "listener.x", "framing");
}

TEST(ConfigErrors, PathMustStartWithSlash) {
  const std::string e = parse_error("[listener.x]\nport = 1\npath = chat\n");
  EXPECT_TRUE(starts_with(e, "t.conf:3:")) << e;
  EXPECT_CONTAINS(e, "path");
  EXPECT_CONTAINS(e, "/");
}

TEST(ConfigErrors, EmptyTopic) {
  expect_error_at("[listener.x]\nport = 1\ntopic =\n", 3, "listener.x", "topic");
}

TEST(ConfigErrors, ListenerNumbersOutOfRange) {
  expect_error_at("[listener.x]\nport = 0\n", 2, "listener.x", "port");
  expect_error_at("[listener.x]\nport = 65536\n", 2, "listener.x", "port");
  expect_error_at("[listener.x]\nport = http\n", 2, "listener.x", "port");
  expect_error_at("[listener.x]\nport = 1\nmax_message = 15\n", 3, "listener.x", "max_message");
  expect_error_at("[listener.x]\nport = 1\nmax_message = 67108865\n", 3, "listener.x", "max_message");
  expect_error_at("[listener.x]\nport = 1\nidle_timeout = 86401\n", 3, "listener.x", "idle_timeout");
  expect_error_at("[listener.x]\nport = 1\nidle_timeout = -1\n", 3, "listener.x", "idle_timeout");
  expect_error_at("[listener.x]\nport = 1\nping_interval = 86401\n", 3, "listener.x", "ping_interval");
}

TEST(ConfigErrors, DuplicateListenerSeparatedByAnother) {
  const std::string e = parse_error(std::string(kTwoListeners) + "[listener.a]\nport = 5300\n");
  EXPECT_TRUE(starts_with(e, "t.conf:8:")) << e;
  EXPECT_CONTAINS(e, "[listener.a]");
  EXPECT_CONTAINS(e, "twice");
}

// A listener section may not be reopened later in the file, even with a global section between.
TEST(ConfigErrors, DuplicateListenerSeparatedByAGlobalSection) {
  const std::string e = parse_error("[listener.a]\nport = 1\n[api]\nport = 2\n[listener.a]\nport = 3\n");
  EXPECT_TRUE(starts_with(e, "t.conf:6:")) << e;
  EXPECT_CONTAINS(e, "[listener.a]");
}

// A listener defined twice in a row is an error, not a merge (inih gives no callback for section
// headers: the reader counts them). Named at the first key of the second section;
// section name with the last listener's.
TEST(ConfigErrors, DuplicateListenerBackToBack) {
  const std::string e = parse_error("[listener.a]\nport = 1\n[listener.a]\nport = 2\n");
  EXPECT_TRUE(starts_with(e, "t.conf:4:")) << e;
  EXPECT_CONTAINS(e, "[listener.a]");
}

TEST(ConfigErrors, ListenerWithoutPortNamesTheFileListenerAndKey) {
  const std::string e = parse_error("[api]\nport = 7000\n[listener.nop]\ntype = ws\npath = /x\n");
  EXPECT_TRUE(starts_with(e, "t.conf")) << e;
  EXPECT_CONTAINS(e, "[listener.nop]");
  EXPECT_CONTAINS(e, "port");
}

TEST(ConfigErrors, SamePortTwiceNamesTheFileBothListenersAndThePort) {
  const std::string e = parse_error("[listener.one]\nport = 5100\n[listener.two]\ntype = tcp\nport = 5100\n");
  EXPECT_TRUE(starts_with(e, "t.conf")) << e;
  EXPECT_CONTAINS(e, "listener.one");
  EXPECT_CONTAINS(e, "listener.two");
  EXPECT_CONTAINS(e, "5100");
}

TEST(ConfigErrors, ConsumerOutputMustHoldTheLargestMessage) {
  const std::string e = parse_error("[api]\nmax_output = 65536\n[listener.a]\ntype = ws\nport = 1234\nmax_message = 65536\n");
  EXPECT_TRUE(starts_with(e, "t.conf:3:")) << e;
  EXPECT_CONTAINS(e, "max_output");
  EXPECT_CONTAINS(e, "listener.a");
}

TEST(ConfigErrors, SoftLimitAboveHardLimitNamesTheFileAndBothKeys) {
  const std::string e = parse_error("[limits]\noutput_hard_limit = 2048\noutput_soft_limit = 4096\n");
  EXPECT_TRUE(starts_with(e, "t.conf")) << e;
  EXPECT_CONTAINS(e, "output_soft_limit");
  EXPECT_CONTAINS(e, "output_hard_limit");
}

TEST(ConfigErrors, SoftLimitAboveTheDefaultHardLimitIsCaught) {
  const std::string e = parse_error("[limits]\noutput_soft_limit = 4194305\n");
  EXPECT_CONTAINS(e, "output_soft_limit");
  EXPECT_TRUE(parse_ok("[limits]\noutput_soft_limit = 4194304\n").limits.output_soft_limit == 4194304u);
}

// The cross-key errors (listener without port, same port twice, soft limit above hard limit) name
// the file but no line, unlike the contract in config.h ("FILE:LINE: [section] key: ...") and
// every other error.
TEST(ConfigErrors, ListenerWithoutPortNamesTheLineOfItsSection) {
  const std::string e = parse_error("[api]\nport = 7000\n[listener.nop]\ntype = ws\npath = /x\n");
  EXPECT_TRUE(starts_with(e, "t.conf:3:")) << e;
}

TEST(ConfigErrors, SamePortTwiceNamesTheLineOfTheSecondPort) {
  const std::string e = parse_error("[listener.one]\nport = 5100\n[listener.two]\ntype = tcp\nport = 5100\n");
  EXPECT_TRUE(starts_with(e, "t.conf:5:")) << e;
}

TEST(ConfigErrors, SoftLimitAboveHardLimitNamesALine) {
  const std::string e = parse_error("[limits]\noutput_hard_limit = 2048\noutput_soft_limit = 4096\n");
  EXPECT_TRUE(starts_with(e, "t.conf:3:")) << e;
}

TEST(ConfigErrors, SyntaxErrorNamesItsLine) {
  const std::string e = parse_error("[api]\nport = 7000\n\nthis line has no equals sign\n");
  EXPECT_TRUE(starts_with(e, "t.conf:4:")) << e;
  EXPECT_CONTAINS(e, "syntax");
}

TEST(ConfigErrors, UnclosedSectionHeaderIsASyntaxError) {
  const std::string e = parse_error("[api]\nport = 7000\n[limits\n");
  EXPECT_TRUE(starts_with(e, "t.conf:3:")) << e;
  EXPECT_CONTAINS(e, "syntax");
}

// The broken header (line 3) is reported, not the key after it that then seems to be in [api].
TEST(ConfigErrors, UnclosedSectionHeaderIsReportedRatherThanTheKeysAfterIt) {
  const std::string e = parse_error("[api]\nport = 7000\n[limits\nmax_headers = 10\n");
  EXPECT_TRUE(starts_with(e, "t.conf:3:")) << e;
}

TEST(ConfigErrors, FirstErrorWinsAmongKeyErrors) {
  const std::string e = parse_error("[api]\nport = x\nmax_body = y\n[bogus]\nk = v\n");
  EXPECT_TRUE(starts_with(e, "t.conf:2:")) << e;
  EXPECT_CONTAINS(e, "port");
}

// The first bad line wins, whether the problem is syntax or a key.
TEST(ConfigErrors, SyntaxErrorBeforeAKeyErrorIsTheOneReported) {
  const std::string e = parse_error("[api]\nnot a key value line\nport = x\n");
  EXPECT_TRUE(starts_with(e, "t.conf:2:")) << e;
}

TEST(ConfigErrors, KeyErrorBeforeASyntaxErrorIsTheOneReported) {
  const std::string e = parse_error("[api]\nport = x\nnot a key value line\n");
  EXPECT_TRUE(starts_with(e, "t.conf:2:")) << e;
  EXPECT_CONTAINS(e, "port");
}

TEST(ConfigErrors, ErrorLineCountsCommentsBlankLinesAndCrlf) {
  expect_error_at("; c\r\n\r\n# c\r\n[api]\r\n\r\nport = nope\r\n", 6, "api", "port");
}

TEST(ConfigErrors, ErrorDoesNotTouchTheOutputConfig) {
  Config c;
  c.api_port = 1234;
  std::string error;
  EXPECT_FALSE(mg::parse_config_text("[api]\nport = 7000\nbogus = 1\n", "t.conf", c, error));
  EXPECT_EQ(c.api_port, 1234);
}

TEST(ConfigErrors, LoadConfigNamesThePathInKeyErrors) {
  // load_config reads a real file: write one next to the test's working directory.
  const std::string path = testing::TempDir() + "meshgate_test_config_bad.conf";
  {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("[node]\nid = 2\n[queue]\nmax_events = lots\n", f);
    std::fclose(f);
  }
  Config c;
  std::string error;
  EXPECT_FALSE(mg::load_config(path, c, error));
  EXPECT_TRUE(starts_with(error, path + ":4:")) << error;
  EXPECT_CONTAINS(error, "max_events");
  std::remove(path.c_str());
}

// ---------------------------------------------------------------------------------------------
// Oversized and hostile input

TEST(ConfigHostile, BinaryGarbageIsAnErrorNotACrash) {
  std::string garbage;
  for (int i = 0; i < 4096; ++i) garbage += static_cast<char>((i * 131 + 7) & 0xff);
  Config c;
  std::string error;
  EXPECT_FALSE(mg::parse_config_text(garbage, "t.conf", c, error));
  EXPECT_TRUE(starts_with(error, "t.conf")) << error;
}

TEST(ConfigHostile, ManyListenersAreAllRead) {
  std::string text;
  for (int i = 1; i <= 500; ++i)
    text += "[listener.l" + std::to_string(i) + "]\nport = " + std::to_string(10000 + i) + "\n";
  const Config c = parse_ok(text);
  ASSERT_EQ(c.listeners.size(), 500u);
  EXPECT_EQ(c.listeners.back().name, "l500");
  EXPECT_EQ(c.listeners.back().port, 10500);
}

TEST(ConfigHostile, ErrorLineIsRightAfterThousandsOfLines) {
  std::string text = "[api]\n";
  for (int i = 0; i < 5000; ++i) text += "; filler\n";
  text += "port = bad\n";
  expect_error_at(text, 5002, "api", "port");
}

// Lines longer than inih's line buffer (INI_MAX_LINE = 200 in Debian's libinih, no realloc): inih
// would parse the rest of the line as a new line. Long comments are ignored; a long key line is an
// error on its own line.
TEST(ConfigHostile, OverlongValueIsNotAcceptedTruncated) {
  const std::string token(300, 'k');
  Config c;
  std::string error;
  const bool ok = mg::parse_config_text("[api]\nport = 7000\ntoken = " + token + "\n", "t.conf", c, error);
  if (ok) {
    EXPECT_EQ(c.api_token, token);
  }
}

TEST(ConfigHostile, OverlongValueIsReadWholeOrReportedOnItsOwnLine) {
  const std::string token(300, 'k');
  Config c;
  std::string error;
  const bool ok = mg::parse_config_text("[api]\nport = 7000\ntoken = " + token + "\n", "t.conf", c, error);
  if (ok) {
    EXPECT_EQ(c.api_token, token);
  } else {
    EXPECT_TRUE(starts_with(error, "t.conf:3:")) << error;
  }
}

TEST(ConfigHostile, LongCommentLineIsIgnored) {
  const std::string comment = "; " + std::string(500, 'c') + "\n";
  EXPECT_EQ(parse_ok("[api]\n" + comment + "port = 7000\n").api_port, 7000);
}

TEST(ConfigHostile, KeyErrorAfterAnOverlongCommentNamesTheRightLine) {
  const std::string comment = "; " + std::string(500, 'c') + "\n";
  const std::string e = parse_error("[api]\n" + comment + "port = bad\n");
  EXPECT_TRUE(starts_with(e, "t.conf:3:")) << e;
}

}  // namespace

namespace {

TEST(ConfigApiTokens, TokenAndNamedTokensAreAllAccepted) {
  Config c = parse_ok("[api]\ntoken = d-0123456789abcdef\ntokens = billing:b-0123456789abcdef, chat.v2:c:0123456789abcdef\n");
  std::vector<mg::ApiToken> all = mg::all_api_tokens(c);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0], (mg::ApiToken{"default", "d-0123456789abcdef"}));
  EXPECT_EQ(all[1], (mg::ApiToken{"billing", "b-0123456789abcdef"}));
  EXPECT_EQ(all[2], (mg::ApiToken{"chat.v2", "c:0123456789abcdef"}));  // split at the first colon
  EXPECT_TRUE(mg::all_api_tokens(parse_ok("")).empty());
}

TEST(ConfigApiTokens, BadListsAreErrorsThatNameNoSecret) {
  for (const char* bad : {"tokens = billing", "tokens = :s-0123456789abcdef", "tokens = bad name:s-0123456789abcdef",
                          "tokens = a:s-0123456789abcdef, a:t-0123456789abcdef",
                          "tokens = a:s-0123456789abcdef, b:s-0123456789abcdef",
                          "token = s-0123456789abcdef\ntokens = default:t-0123456789abcdef",
                          "token = s-0123456789abcdef\ntokens = a:s-0123456789abcdef"}) {
    std::string e = parse_error(std::string("[api]\n") + bad + "\n");
    EXPECT_CONTAINS(e, "[api] token");
    EXPECT_EQ(e.find("0123456789abcdef"), std::string::npos) << e;
  }
}

}  // namespace
