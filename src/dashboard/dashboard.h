// The operator's dashboard (issue 12): one page with its script and style, compiled into the binary
// (src/dashboard/embed.py turns the files beside this one into a C++ source at build time), served
// by the control API at /dashboard. The page holds no data: it reads everything from the documented
// API methods (node.list, node.stats, channel.top, mesh.publish, mesh.send, conn.info, conn.call)
// with the API token the operator types in, like any other API user.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace mg {

struct DashboardAsset {
  const char* path;          // /dashboard/<file>
  const char* content_type;
  const char* body;
  size_t size;
};

extern const DashboardAsset kDashboardAssets[];
extern const size_t kDashboardAssetCount;

// The asset served at `path` (/dashboard and /dashboard/ are index.html), or nullptr.
const DashboardAsset* dashboard_asset(const std::string& path);

// Headers of every dashboard answer: a content security policy that lets the page run only its own
// script and talk only to this API, no framing, no caching of an old page after an upgrade.
std::vector<std::pair<std::string, std::string>> dashboard_headers();

}  // namespace mg
