#include "source/filters/registrations.h"

#include <mutex>

#include "source/filters/access_policy/access_policy.h"
#include "source/filters/local_ratelimit/local_ratelimit.h"
#include "source/router/router_filter.h"

namespace phoenix::filters {

void RegisterBuiltinFilters() {
  static std::once_flag once;
  std::call_once(once, [] {
    // One line per filter; each filter lives in its own folder under source/filters/.
    RegisterAccessPolicyFilter();
    RegisterLocalRateLimitFilter();
    router::RegisterRouterFilter();
  });
}

}  // namespace phoenix::filters
