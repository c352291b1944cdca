// Unit tests for HttpRefusals (http/http_refusals.h): every refusal counted by reason, the log
// limited to one line per reason per 10 s that says how many it left out.
#include "http/http_refusals.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "core/log.h"

namespace {

using mg::HttpRefusals;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) n++;
  return n;
}

TEST(HttpRefusals, CountsEveryRefusalButLogsAtMostOneLinePerReasonPer10s) {
  const std::string path = ::testing::TempDir() + "refusals-" + std::to_string(getpid()) + ".log";
  std::string error;
  ASSERT_TRUE(mg::log_open(path, error)) << error;
  HttpRefusals r("route API", "route");
  for (uint64_t t = 1000; t < 1100; t++) r.count(HttpRefusals::Timeout, t, "request not complete within 10 s");
  r.count(HttpRefusals::TooLarge, 1100, "body over 65536");  // another reason has its own line
  r.count(HttpRefusals::Timeout, 11000, "request not complete within 10 s");  // 10 s after the first line
  EXPECT_EQ(r.total(HttpRefusals::Timeout), 101u);
  EXPECT_EQ(r.total(HttpRefusals::TooLarge), 1u);
  EXPECT_EQ(r.total(HttpRefusals::Host), 0u);

  const std::string log = read_file(path);
  EXPECT_EQ(count_of(log, "route API refused a request (request not complete within 10 s)"), 2u) << log;
  EXPECT_EQ(count_of(log, "99 more refused for the same reason in the last 10 s"), 1u) << log;
  EXPECT_EQ(count_of(log, "route API refused a request (body over 65536)"), 1u) << log;
  unlink(path.c_str());

  mg::PromWriter w;
  HttpRefusals::family(w);
  r.render(w);
  EXPECT_NE(w.text().find("meshgate_http_refused_total{listener=\"route\",reason=\"timeout\"} 101\n"), std::string::npos)
      << w.text();
  EXPECT_NE(w.text().find("meshgate_http_refused_total{listener=\"route\",reason=\"host\"} 0\n"), std::string::npos);
}

}  // namespace
