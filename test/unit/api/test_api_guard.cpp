// Unit tests for the control API's cross-site checks (api/api_guard.h): Host against the bind
// address, localhost names, IP literals and [api] hosts (DNS rebinding); Origin same-origin or
// listed; the JSON content type.
#include "api/api_guard.h"

#include <gtest/gtest.h>

#include <string>

namespace {

using mg::ApiGuard;

bool host_ok(const ApiGuard& g, const std::string& host) { return g.host_allowed(&host); }
bool origin_ok(const ApiGuard& g, const std::string& origin, const std::string& host) {
  return g.origin_allowed(&origin, &host);
}
bool json(const std::string& ct) { return ApiGuard::json_content_type(&ct); }

TEST(ApiGuardHost, LoopbackBindTakesLocalhostAndLoopbackLiteralsUnderAnyPort) {
  ApiGuard g("127.0.0.1", 6789, {}, {});
  for (const char* h : {"127.0.0.1:6789", "127.0.0.1", "localhost:6789", "LOCALHOST:6789", "localhost",
                        "dash.localhost:6789", "[::1]:6789", "127.0.0.2:6789",
                        "127.0.0.1:16789", "localhost:8080"})  // ssh -L 16789:127.0.0.1:6789
    EXPECT_TRUE(host_ok(g, h)) << h;
  // A page at http://attacker.example:6789/ whose name now resolves to 127.0.0.1 (DNS rebinding).
  for (const char* h : {"attacker.example:6789", "attacker.example", "localhost.attacker.example:6789",
                        "10.0.0.1:6789", "", ":6789", "127.0.0.1:", "[::1",
                        "127.0.0.1:6789x", "127.0.0.1:99999", "a b:6789"})
    EXPECT_FALSE(host_ok(g, h)) << h;
}

TEST(ApiGuardHost, WildcardBindTakesAnyIpLiteralButNoName) {
  ApiGuard g("0.0.0.0", 6789, {}, {});
  for (const char* h : {"10.0.0.11:6789", "192.168.1.5", "[fe80::1]:6789", "localhost:6789"})
    EXPECT_TRUE(host_ok(g, h)) << h;
  for (const char* h : {"gw1.internal:6789", "evil.example:6789"}) EXPECT_FALSE(host_ok(g, h)) << h;
  EXPECT_TRUE(host_ok(g, "10.0.0.11:16789")) << "a mapped port (docker -p 16789:6789): IP literals under any port";
  ApiGuard v6("::", 6789, {}, {});
  EXPECT_TRUE(host_ok(v6, "10.0.0.11:6789"));
}

TEST(ApiGuardHost, SpecificBindTakesItsOwnAddressOnly) {
  ApiGuard g("10.0.0.11", 6789, {}, {});
  EXPECT_TRUE(host_ok(g, "10.0.0.11:6789"));
  EXPECT_TRUE(host_ok(g, "localhost:6789"));
  EXPECT_FALSE(host_ok(g, "10.0.0.12:6789"));
  EXPECT_TRUE(host_ok(g, "10.0.0.11:6790"));  // the bind address under a mapped port
  ApiGuard v6("::1", 6789, {}, {});
  EXPECT_TRUE(host_ok(v6, "[::1]:6789"));
  ApiGuard named("gw1.internal", 6789, {}, {});
  EXPECT_TRUE(host_ok(named, "GW1.internal:6789"));
}

TEST(ApiGuardHost, HostsListNamesWithTheApiPortOrTheirOwn) {
  ApiGuard g("0.0.0.0", 6789, {"gw1.internal", "Metrics.Example:9000"}, {});
  EXPECT_TRUE(host_ok(g, "gw1.internal:6789"));
  EXPECT_TRUE(host_ok(g, "gw1.internal"));  // a proxy in front on 80/443
  EXPECT_TRUE(host_ok(g, "GW1.INTERNAL:6789"));
  EXPECT_FALSE(host_ok(g, "gw1.internal:6790"));
  EXPECT_TRUE(host_ok(g, "metrics.example:9000"));
  EXPECT_FALSE(host_ok(g, "metrics.example:6789"));
  EXPECT_FALSE(host_ok(g, "gw2.internal:6789"));
}

TEST(ApiGuardHost, NoHostHeaderIsNotABrowser) {
  ApiGuard g("127.0.0.1", 6789, {}, {});
  EXPECT_TRUE(g.host_allowed(nullptr));
}

TEST(ApiGuardOrigin, AbsentOrSameOriginOrListed) {
  ApiGuard g("127.0.0.1", 6789, {}, {"https://ops.example.com"});
  EXPECT_TRUE(g.origin_allowed(nullptr, nullptr));
  EXPECT_TRUE(origin_ok(g, "http://127.0.0.1:6789", "127.0.0.1:6789"));  // the dashboard
  EXPECT_TRUE(origin_ok(g, "http://LOCALHOST:6789", "localhost:6789"));
  EXPECT_TRUE(origin_ok(g, "http://[::1]:6789", "[::1]:6789"));
  EXPECT_TRUE(origin_ok(g, "https://gw.example", "gw.example"));  // behind a TLS proxy
  EXPECT_TRUE(origin_ok(g, "https://gw.example:6789", "gw.example:6789"));  // the scheme is the proxy's
  EXPECT_TRUE(origin_ok(g, "http://gw.example", "gw.example:80"));
  EXPECT_TRUE(origin_ok(g, "https://ops.example.com", "127.0.0.1:6789"));
  EXPECT_TRUE(origin_ok(g, "HTTPS://OPS.EXAMPLE.COM", "127.0.0.1:6789"));
  // Another page on the operator's machine, or anywhere.
  for (const char* o : {"http://127.0.0.1:8080", "http://localhost:6789", "http://evil.example", "null",
                        "file://", "http://127.0.0.1:6789.evil.example", "",
                        "chrome-extension://abc", "https://ops.example.com.evil", "http://127.0.0.1"})
    EXPECT_FALSE(origin_ok(g, o, "127.0.0.1:6789")) << o;
  const std::string origin = "http://x";
  EXPECT_FALSE(g.origin_allowed(&origin, nullptr));
}

TEST(ApiGuardContentType, ApplicationJsonWithOrWithoutParameters) {
  for (const char* ct : {"application/json", "application/json; charset=utf-8", "Application/JSON",
                         "application/json;charset=UTF-8", "application/json "})
    EXPECT_TRUE(json(ct)) << ct;
  for (const char* ct : {"text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x", "", "application/jsonx", "application/json-seq",
                         "application/vnd.api+json", "text/json", "application/json,text/plain"})
    EXPECT_FALSE(json(ct)) << ct;
  EXPECT_FALSE(ApiGuard::json_content_type(nullptr));
}

}  // namespace
