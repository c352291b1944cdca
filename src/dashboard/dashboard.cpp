#include "dashboard/dashboard.h"

namespace mg {

const DashboardAsset* dashboard_asset(const std::string& path) {
  std::string want = path == "/dashboard" || path == "/dashboard/" ? "/dashboard/index.html" : path;
  for (size_t i = 0; i < kDashboardAssetCount; i++)
    if (want == kDashboardAssets[i].path) return &kDashboardAssets[i];
  return nullptr;
}

std::vector<std::pair<std::string, std::string>> dashboard_headers() {
  return {{"Content-Security-Policy",
           "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
           "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"},
          {"X-Content-Type-Options", "nosniff"},
          {"Referrer-Policy", "no-referrer"},
          {"Cache-Control", "no-cache"}};
}

}  // namespace mg
