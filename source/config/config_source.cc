#include "source/config/config_source.h"

#include "absl/strings/str_cat.h"
#include "source/common/strings.h"

namespace phoenix::config {
namespace {
constexpr std::string_view kTypeUrlPrefix = "type.googleapis.com/phoenix.config.v1.";
}  // namespace

std::string_view TypeName(ResourceType type) {
  switch (type) {
    case ResourceType::kListener:
      return "Listener";
    case ResourceType::kRouteConfiguration:
      return "RouteConfiguration";
    case ResourceType::kCluster:
      return "Cluster";
    case ResourceType::kClusterLoadAssignment:
      return "ClusterLoadAssignment";
    case ResourceType::kSecret:
      return "Secret";
  }
  return "";
}

std::string_view TypeUrl(ResourceType type) {
  static const auto* urls = [] {
    auto* m = new std::map<ResourceType, std::string>;
    for (ResourceType t :
         {ResourceType::kListener, ResourceType::kRouteConfiguration, ResourceType::kCluster,
          ResourceType::kClusterLoadAssignment, ResourceType::kSecret}) {
      (*m)[t] = absl::StrCat(AbslView(kTypeUrlPrefix), AbslView(TypeName(t)));
    }
    return m;
  }();
  return urls->at(type);
}

}  // namespace phoenix::config
