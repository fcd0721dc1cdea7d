#include "source/server/filter_registrations.h"

#include <mutex>

#include "source/filters/access_policy/access_policy.h"
#include "source/filters/global_ratelimit/global_ratelimit.h"
#include "source/filters/grpc_stats/grpc_stats.h"
#include "source/filters/local_ratelimit/local_ratelimit.h"
#include "source/router/router_filter.h"

namespace phoenix::server {

void RegisterBuiltinFilters() {
  static std::once_flag once;
  std::call_once(once, [] {
    // One line per filter; each filter lives in its own folder under source/filters/.
    filters::RegisterAccessPolicyFilter();
    filters::RegisterGlobalRateLimitFilter();
    filters::RegisterGrpcStatsFilter();
    filters::RegisterLocalRateLimitFilter();
    router::RegisterRouterFilter();
  });
}

}  // namespace phoenix::server
